//! The event loop: one thread, non-blocking sockets, `poll(2)`.
//!
//! The same loop runs natively and under WASI (wasi-libc maps `poll` to `poll_oneoff` on
//! wasip1 and to `wasi:io/poll` on wasip2), so every build serves connections concurrently with
//! the same model and a comparison measures the runtime, not two different servers.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use crate::app::{Reply, answer};
use crate::config::{Config, Mode};
use crate::http::{Limits, Parsed, chunked_framing_limit, parse, write_response};

/// How long a closing connection may keep sending before it is dropped (lingering close: the
/// unread bytes would otherwise make the kernel reset the connection and lose the response).
const LINGER: Duration = Duration::from_secs(2);

/// Receive buffer size for one `read`.
const READ_CHUNK: usize = 64 << 10;

/// Buffers larger than this are released after use, so idle connections stay small.
const KEEP_CAPACITY: usize = 256 << 10;

/// Opens the listener described by `cfg` (or adopts the one handed in) and prints
/// `listening on <addr>` on stdout, which runtimes read to learn the port.
pub fn listen(cfg: &Config) -> io::Result<TcpListener> {
    let listener = match cfg.listen_fd {
        // SAFETY: the runtime hands this descriptor to the process as a listening socket
        // (`wasmtime run --tcplisten`, `ECHO_LISTEN_FD`); nothing else in the process owns it.
        Some(fd) => unsafe { TcpListener::from_raw_fd(fd) },
        None => TcpListener::bind((cfg.host.as_str(), cfg.port))?,
    };
    listener.set_nonblocking(true)?;
    let mut stdout = io::stdout().lock();
    match listener.local_addr() {
        Ok(addr) => writeln!(stdout, "listening on {addr}")?,
        Err(_) => writeln!(stdout, "listening on fd {}", listener.as_raw_fd())?,
    }
    stdout.flush()?;
    Ok(listener)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Send what is queued, then close.
    Closing,
    /// Output sent and write side shut; discard input until EOF or the deadline.
    Draining(Instant),
}

/// The protocol side of one connection, without its socket: request bytes go in
/// (`inbuf`), responses come out (appended to the caller's buffer). Kept free of I/O so the
/// framing of a whole byte stream can be tested exhaustively.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Received bytes not yet answered.
    pub(crate) inbuf: Vec<u8>,
    need_total: Option<usize>,
    head_done: bool,
    continue_sent: bool,
    /// When the first bytes of the current request's head arrived.
    head_started: Option<Instant>,
    /// A response that ends the connection has been produced.
    pub(crate) closing: bool,
    /// A response that may not be sent before the instant (`GET /sleep`); requests after it
    /// wait behind it so pipelined answers keep their order.
    held: Option<(Instant, Vec<u8>)>,
}

impl Session {
    /// The instant the held response is due, if one is held.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.held.as_ref().map(|(t, _)| *t)
    }

    /// Whether a request head is partly received (the header timeout runs).
    fn head_pending(&self) -> bool {
        self.head_started.is_some() && !self.head_done
    }

    /// Moves a held response that is due to `out`; returns whether it did.
    pub(crate) fn release(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        match self.held.take() {
            Some((at, bytes)) if now >= at => {
                out.extend_from_slice(&bytes);
                true
            }
            other => {
                self.held = other;
                false
            }
        }
    }

    /// Answers every complete request in `inbuf` (pipelining included), appending the
    /// responses to `out`, until a held or closing response or an incomplete request.
    pub(crate) fn process(&mut self, limits: Limits, seed: bool, now: Instant, out: &mut Vec<u8>) {
        if self.held.is_some() || self.closing {
            return;
        }
        let mut consumed = 0;
        while consumed < self.inbuf.len() {
            if let Some(total) = self.need_total
                && self.inbuf.len() - consumed < total
            {
                break;
            }
            match parse(&self.inbuf[consumed..], limits) {
                Parsed::Complete(req, used) => {
                    let keep_alive = req.keep_alive && !seed;
                    let start = out.len();
                    let reply = answer(&req, out, keep_alive, seed);
                    consumed += used;
                    self.need_total = None;
                    self.head_done = false;
                    self.continue_sent = false;
                    self.head_started = None;
                    self.closing = !keep_alive;
                    if let Reply::Delayed(d) = reply
                        && !d.is_zero()
                    {
                        // From the moment the request is parsed, not from the loop's wake-up:
                        // earlier connections' work in the same pass must not shorten the wait.
                        self.held = Some((now.max(Instant::now()) + d, out.split_off(start)));
                        break;
                    }
                    if self.closing {
                        break;
                    }
                }
                Parsed::Incomplete {
                    head_done,
                    expect_continue,
                    need_total,
                } => {
                    self.need_total = need_total;
                    self.head_done = head_done;
                    self.head_started.get_or_insert(now);
                    if head_done && expect_continue && !self.continue_sent {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.continue_sent = true;
                    }
                    break;
                }
                Parsed::Rejected(r) => {
                    write_response(out, r.status, &[r.reason.as_bytes()], false, seed);
                    self.closing = true;
                    // Leave the unread request in the buffer so the close lingers.
                    return;
                }
            }
        }
        self.inbuf.drain(..consumed);
        if self.inbuf.is_empty() && self.inbuf.capacity() > KEEP_CAPACITY {
            self.inbuf = Vec::new();
        }
    }
}

/// Most bytes a connection buffers before the parser must have decided: a whole head, a
/// whole chunked body with its framing, and one read.
pub(crate) fn inbuf_cap(limits: Limits) -> usize {
    limits
        .max_header_bytes
        .saturating_add(chunked_framing_limit(limits))
        .saturating_add(READ_CHUNK)
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    session: Session,
    out: Vec<u8>,
    out_pos: usize,
    state: State,
    last_active: Instant,
}

struct Ctx<'a> {
    cfg: &'a Config,
    limits: Limits,
    seed: bool,
    scratch: Vec<u8>,
}

/// Serves HTTP on `listener` until an unrecoverable listener error.
pub fn serve(cfg: &Config, listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut ctx = Ctx {
        cfg,
        limits: Limits {
            max_body_bytes: cfg.max_body_bytes,
            max_header_bytes: cfg.max_header_bytes,
        },
        seed: cfg.mode == Mode::Seed,
        scratch: vec![0u8; READ_CHUNK],
    };
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut active = 0usize;
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut slots: Vec<usize> = Vec::new();
    loop {
        pfds.clear();
        slots.clear();
        // Seed mode reproduces the demo: the next connection is accepted only when the
        // current one is finished.
        let accepting = !ctx.seed || active == 0;
        pfds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: if accepting { libc::POLLIN } else { 0 },
            revents: 0,
        });
        let now = Instant::now();
        let mut next_deadline: Option<Instant> = None;
        for (i, c) in conns.iter().enumerate() {
            let Some(c) = c else { continue };
            let events = if c.out_pos < c.out.len() {
                libc::POLLOUT
            } else if c.session.held.is_some() {
                // Nothing to read until the held response is out: pipelined requests wait in
                // the kernel's buffer, which also pushes back on the client.
                0
            } else {
                libc::POLLIN
            };
            pfds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
            slots.push(i);
            let d = c.deadline(cfg);
            next_deadline = Some(next_deadline.map_or(d, |n| n.min(d)));
        }
        let timeout_ms = match next_deadline {
            None => -1,
            Some(d) => {
                // Rounded up: waking early would only spin until the deadline.
                let left = d.saturating_duration_since(now);
                let ms = left.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `pfds` is a valid, initialised slice of pollfd for the duration of the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        if accepting && pfds[0].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        // Not every WASI host implements TCP_NODELAY; the loop batches writes
                        // per response anyway, so a failure here is harmless.
                        let _ = stream.set_nodelay(true);
                        let conn = Conn::new(stream, now);
                        match free.pop() {
                            Some(i) => conns[i] = Some(conn),
                            None => conns.push(Some(conn)),
                        }
                        active += 1;
                        if ctx.seed {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // Aborted handshakes, descriptor exhaustion: keep serving what we have.
                    Err(_) => break,
                }
            }
        }
        for (k, &slot) in slots.iter().enumerate() {
            let revents = pfds[k + 1].revents;
            let Some(c) = conns[slot].as_mut() else {
                continue;
            };
            // Connections without events are only visited when one of their deadlines is due.
            if revents == 0 && now < c.deadline(cfg) {
                continue;
            }
            if !c.step(revents, &mut ctx, now) {
                conns[slot] = None;
                free.push(slot);
                active -= 1;
            }
        }
    }
}

impl Conn {
    fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            session: Session::default(),
            out: Vec::new(),
            out_pos: 0,
            state: State::Open,
            last_active: now,
        }
    }

    /// The next instant something must happen on this connection without an event.
    fn deadline(&self, cfg: &Config) -> Instant {
        match self.state {
            State::Draining(until) => until,
            _ => {
                if let Some(at) = self.session.wake_at() {
                    return at;
                }
                let idle = self.last_active + cfg.idle_timeout;
                match self.session.head_started {
                    Some(t) if !self.session.head_done => idle.min(t + cfg.header_timeout),
                    _ => idle,
                }
            }
        }
    }

    /// Handles poll events and due deadlines; returns `false` when the connection is finished.
    fn step(&mut self, revents: i16, ctx: &mut Ctx<'_>, now: Instant) -> bool {
        let readable = revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
        let mut eof = false;
        let mut fresh = false;
        if readable || matches!(self.state, State::Draining(_)) {
            let cap = inbuf_cap(ctx.limits);
            loop {
                if matches!(self.state, State::Open) && self.session.inbuf.len() >= cap {
                    // Bounded buffering: the rest waits in the kernel until this is parsed.
                    break;
                }
                match self.stream.read(&mut ctx.scratch) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.last_active = now;
                        if matches!(self.state, State::Open) {
                            self.session.inbuf.extend_from_slice(&ctx.scratch[..n]);
                            fresh = true;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            if let State::Draining(until) = self.state {
                return !eof && now < until;
            }
        }
        if matches!(self.state, State::Open) {
            if self.session.release(now, &mut self.out) {
                self.last_active = now;
                fresh = true;
            }
            if fresh {
                self.session
                    .process(ctx.limits, ctx.seed, now, &mut self.out);
            }
            if self.session.closing && self.session.held.is_none() {
                self.state = State::Closing;
            } else if now >= self.deadline(ctx.cfg) {
                if !self.session.head_pending() {
                    // Idle past the timeout: close without a word.
                    return false;
                }
                // A client that trickles its head (slowloris) gets a 408; the close lingers
                // like any refusal so the answer is not lost to a reset.
                write_response(
                    &mut self.out,
                    408,
                    &[b"request head not received in time"],
                    false,
                    ctx.seed,
                );
                self.session.closing = true;
                self.state = State::Closing;
            }
        } else if now >= self.deadline(ctx.cfg) {
            // Closing with a response the client does not read, or draining past the linger.
            return false;
        }
        if self.flush().is_err() {
            return false;
        }
        if self.out_pos < self.out.len() {
            // Still sending; a client that closed its read side will error the next write.
            return true;
        }
        match self.state {
            State::Open => !eof || self.session.held.is_some(),
            State::Closing => {
                let _ = self.stream.shutdown(Shutdown::Write);
                if self.session.inbuf.is_empty() || eof {
                    false
                } else {
                    self.session.inbuf = Vec::new();
                    self.state = State::Draining(now + LINGER);
                    true
                }
            }
            State::Draining(until) => !eof && now < until,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.out_pos = 0;
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Ok(())
    }
}
