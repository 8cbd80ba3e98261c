//! The event loop: one thread, non-blocking sockets, `poll(2)`.
//!
//! The same loop runs natively and under WASI (wasi-libc maps `poll` to `poll_oneoff` on
//! wasip1 and to `wasi:io/poll` on wasip2), so every build serves connections concurrently with
//! the same model and a comparison measures the runtime, not two different servers.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use crate::app::respond;
use crate::config::{Config, Mode};
use crate::http::{Limits, Parsed, parse, write_response};

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

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    state: State,
    need_total: Option<usize>,
    head_done: bool,
    continue_sent: bool,
    last_active: Instant,
    head_started: Option<Instant>,
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
                let ms = d.saturating_duration_since(now).as_millis() + 1;
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
            let keep = if revents != 0 {
                c.on_ready(revents, &mut ctx, now)
            } else {
                c.on_tick(&ctx, now)
            };
            if !keep {
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
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            state: State::Open,
            need_total: None,
            head_done: false,
            continue_sent: false,
            last_active: now,
            head_started: None,
        }
    }

    fn deadline(&self, cfg: &Config) -> Instant {
        match self.state {
            State::Draining(until) => until,
            _ => {
                let idle = self.last_active + cfg.idle_timeout;
                match self.head_started {
                    Some(t) if !self.head_done => idle.min(t + cfg.header_timeout),
                    _ => idle,
                }
            }
        }
    }

    /// Called when the connection had no event; closes it when its deadline has passed.
    fn on_tick(&mut self, ctx: &Ctx<'_>, now: Instant) -> bool {
        if now < self.deadline(ctx.cfg) {
            return true;
        }
        if matches!(self.state, State::Open) && self.head_started.is_some() && !self.head_done {
            // A client that trickles its head (slowloris) gets a 408 and is closed.
            write_response(
                &mut self.out,
                408,
                &[b"request head not received in time"],
                false,
                ctx.seed,
            );
            let _ = self.flush();
        }
        false
    }

    /// Handles poll events; returns `false` when the connection is finished.
    fn on_ready(&mut self, revents: i16, ctx: &mut Ctx<'_>, now: Instant) -> bool {
        let readable = revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
        let mut eof = false;
        if readable || matches!(self.state, State::Draining(_)) {
            let cap = ctx.limits.max_header_bytes + ctx.limits.max_body_bytes + READ_CHUNK;
            loop {
                match self.stream.read(&mut ctx.scratch) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.last_active = now;
                        if matches!(self.state, State::Open) {
                            self.inbuf.extend_from_slice(&ctx.scratch[..n]);
                            if self.inbuf.len() >= cap {
                                break;
                            }
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
            if matches!(self.state, State::Open) {
                self.process(ctx, now);
            }
        }
        if self.flush().is_err() {
            return false;
        }
        if self.out_pos < self.out.len() {
            // Still sending; a client that closed its read side will error the next write.
            return true;
        }
        match self.state {
            State::Open => !eof,
            State::Closing => {
                let _ = self.stream.shutdown(Shutdown::Write);
                if self.inbuf.is_empty() || eof {
                    false
                } else {
                    self.inbuf = Vec::new();
                    self.state = State::Draining(now + LINGER);
                    true
                }
            }
            State::Draining(until) => !eof && now < until,
        }
    }

    /// Answers every complete request in the receive buffer (pipelining included).
    fn process(&mut self, ctx: &Ctx<'_>, now: Instant) {
        let mut consumed = 0;
        while consumed < self.inbuf.len() {
            if let Some(total) = self.need_total
                && self.inbuf.len() - consumed < total
            {
                break;
            }
            match parse(&self.inbuf[consumed..], ctx.limits) {
                Parsed::Complete(req, used) => {
                    let keep_alive = req.keep_alive && !ctx.seed;
                    respond(&req, &mut self.out, keep_alive, ctx.seed);
                    consumed += used;
                    self.need_total = None;
                    self.head_done = false;
                    self.continue_sent = false;
                    self.head_started = None;
                    if !keep_alive {
                        self.state = State::Closing;
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
                        self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.continue_sent = true;
                    }
                    break;
                }
                Parsed::Rejected(r) => {
                    write_response(
                        &mut self.out,
                        r.status,
                        &[r.reason.as_bytes()],
                        false,
                        ctx.seed,
                    );
                    self.state = State::Closing;
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
