//! One connection's HTTP/1.1 state machine, without its socket: request bytes go in, response
//! bytes come out, and the session says what the event loop must wait for and until when.
//!
//! Every socket build drives the same [`Session`]: the `poll(2)` loop of [`crate::server`]
//! (native, wasip1, wasip2) and the `poll_oneoff` loop of the WasmEdge build. So all of them
//! answer pipelined requests in order, send `100 Continue` when a client asks for it, answer a
//! refused request and close lingering, close after every response under `ECHO_MODE=seed`,
//! time out idle connections and trickled heads (`408`), and hold a `GET /sleep` response
//! until its deadline without blocking the loop: [`Session::deadline`] (which includes
//! [`Session::wake_at`]) is what the loop's poll timeout must honour.
//!
//! A loop owns the socket and calls, per connection:
//! 1. [`Session::interest`] and [`Session::deadline`] to build its poll set and timeout;
//! 2. after an event or when the deadline is due, [`Session::exchange`] with the socket (or, for
//!    a transport that is not `Read + Write`, the steps it is made of: [`Session::receive`],
//!    [`Session::advance`], [`Session::pending`]/[`Session::sent`], [`Session::settle`]);
//! 3. what the returned [`Next`] says with the socket.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use crate::app::{Reply, answer};
use crate::config::{Config, Mode};
use crate::http::{Limits, Parsed, chunked_framing_limit, parse, write_response};

/// Bytes worth reading from a socket in one call; the scratch buffer handed to
/// [`Session::exchange`] is usually this large.
pub const READ_CHUNK: usize = 64 << 10;

/// The first read of a turn asks for this much (a request head fits), doubling up to the
/// scratch buffer's size while reads fill what they asked for.
const FIRST_READ: usize = 8 << 10;

/// How long a closing connection may keep sending before it is dropped (lingering close: the
/// unread bytes would otherwise make the kernel reset the connection and lose the response).
pub const LINGER: Duration = Duration::from_secs(2);

/// Buffers larger than this are released after use, so idle connections stay small.
const KEEP_CAPACITY: usize = 256 << 10;

/// The interim response to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the event loop should wait for on the connection's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Wait until the socket is readable.
    pub read: bool,
    /// Wait until the socket is writable (output is queued).
    pub write: bool,
}

/// What the event loop does with the socket after [`Session::exchange`] or [`Session::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Next {
    /// Keep polling it.
    Keep,
    /// Shut down its write side and keep polling it: the response is complete, and input is
    /// read and discarded until EOF or [`LINGER`] has passed.
    Linger,
    /// Shut down its write side and drop it.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Send what is queued, then close.
    Closing,
    /// Output sent and write side shut; discard input until EOF or the instant.
    Draining(Instant),
}

/// The protocol state of one connection.
#[derive(Debug)]
pub struct Session {
    limits: Limits,
    seed: bool,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Received bytes not yet answered.
    inbuf: Vec<u8>,
    /// Responses not yet sent, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Input arrived since the last [`Session::advance`].
    fresh: bool,
    need_total: Option<usize>,
    head_done: bool,
    continue_sent: bool,
    /// When the first bytes of the current request's head arrived.
    head_started: Option<Instant>,
    /// A response that ends the connection has been produced.
    closing: bool,
    /// A response that may not be sent before the instant (`GET /sleep`); requests after it
    /// wait behind it so pipelined answers keep their order.
    held: Option<(Instant, Vec<u8>)>,
    phase: Phase,
    last_active: Instant,
}

impl Session {
    /// A connection accepted at `now`, under `cfg`'s limits, timeouts and mode.
    pub fn new(cfg: &Config, now: Instant) -> Session {
        Session {
            limits: Limits {
                max_body_bytes: cfg.max_body_bytes,
                max_header_bytes: cfg.max_header_bytes,
            },
            seed: cfg.mode == Mode::Seed,
            header_timeout: cfg.header_timeout,
            idle_timeout: cfg.idle_timeout,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            fresh: false,
            need_total: None,
            head_done: false,
            continue_sent: false,
            head_started: None,
            closing: false,
            held: None,
            phase: Phase::Open,
            last_active: now,
        }
    }

    /// What to poll the socket for: writable while output is queued; otherwise readable,
    /// except while a response is held — pipelined requests then wait in the kernel's buffer,
    /// which also pushes back on the client.
    pub fn interest(&self) -> Interest {
        let write = !self.pending().is_empty();
        Interest {
            write,
            read: !write && self.held.is_none(),
        }
    }

    /// The next instant something must happen without a socket event: a held response is due
    /// ([`Session::wake_at`]), the head or idle timeout expires, or the lingering close ends.
    /// The loop calls [`Session::exchange`] at that instant even if the socket stayed quiet.
    pub fn deadline(&self) -> Instant {
        if let Phase::Draining(until) = self.phase {
            return until;
        }
        if let Some(at) = self.wake_at() {
            return at;
        }
        let idle = self.last_active + self.idle_timeout;
        match self.head_started {
            Some(t) if !self.head_done => idle.min(t + self.header_timeout),
            _ => idle,
        }
    }

    /// The instant the held `GET /sleep` response is due, if one is held.
    pub fn wake_at(&self) -> Option<Instant> {
        self.held.as_ref().map(|(t, _)| *t)
    }

    /// Whether more input may be read now. `false` once a whole head, a whole chunked body with
    /// its framing and one read are buffered unanswered: the rest waits in the kernel until
    /// this is parsed.
    pub fn wants_input(&self) -> bool {
        self.phase != Phase::Open || self.inbuf.len() < inbuf_cap(self.limits)
    }

    /// Bytes received and not yet answered.
    pub fn buffered(&self) -> usize {
        self.inbuf.len()
    }

    /// Whether a response that ends the connection has been produced (a `Connection: close`
    /// request, a refusal, a `408`, or any response under `ECHO_MODE=seed`).
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Takes bytes read from the socket at `now`. Nothing is answered until
    /// [`Session::advance`], so everything one readiness event delivers is parsed at once.
    /// Input after the connection started closing is discarded.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        self.last_active = now;
        if self.phase == Phase::Open {
            self.inbuf.extend_from_slice(bytes);
            self.fresh = true;
        }
    }

    /// Answers what can be answered at `now`: releases a held response that is due, answers
    /// every complete request received (pipelining included), and applies the head and idle
    /// timeouts. `eof` says the peer has shut down its side. Returns `false` when the
    /// connection is to be dropped at once (idle past the timeout, a closing client that does
    /// not read its response, the lingering close is over).
    pub fn advance(&mut self, now: Instant, eof: bool) -> bool {
        match self.phase {
            Phase::Draining(until) => return !eof && now < until,
            Phase::Closing => return now < self.deadline(),
            Phase::Open => {}
        }
        let mut fresh = std::mem::take(&mut self.fresh);
        if self.release(now) {
            self.last_active = now;
            fresh = true;
        }
        if fresh {
            self.process(now);
        }
        if self.closing && self.held.is_none() {
            self.phase = Phase::Closing;
        } else if now >= self.deadline() {
            if !self.head_pending() {
                // Idle past the timeout: close without a word.
                return false;
            }
            // A client that trickles its head (slowloris) gets a 408; the close lingers like
            // any refusal so the answer is not lost to a reset.
            write_response(
                &mut self.out,
                408,
                &[b"request head not received in time"],
                false,
                self.seed,
            );
            self.closing = true;
            self.phase = Phase::Closing;
        }
        true
    }

    /// Bytes to send next.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks the first `n` bytes of [`Session::pending`] as sent.
    pub fn sent(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out_pos = 0;
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
        }
    }

    /// After sending what the socket took: whether to keep the connection, linger or close.
    /// `eof` as for [`Session::advance`].
    pub fn settle(&mut self, now: Instant, eof: bool) -> Next {
        if !self.pending().is_empty() {
            // Still sending; a client that closed its read side will error the next write.
            return Next::Keep;
        }
        match self.phase {
            // A client that half-closed still gets the response it is waiting for.
            Phase::Open if !eof || self.held.is_some() => Next::Keep,
            Phase::Open => Next::Close,
            Phase::Closing if self.inbuf.is_empty() || eof => Next::Close,
            Phase::Closing => {
                self.inbuf = Vec::new();
                self.phase = Phase::Draining(now + LINGER);
                Next::Linger
            }
            Phase::Draining(until) if !eof && now < until => Next::Keep,
            Phase::Draining(_) => Next::Close,
        }
    }

    /// One turn of the connection on `stream`, a non-blocking socket: reads what is there when
    /// `readable` (or while lingering), answers it, sends what the socket takes, and says what
    /// to do next. Call it when the socket had an event or [`Session::deadline`] is due;
    /// `scratch` is the read buffer (any size, typically [`READ_CHUNK`]).
    pub fn exchange<S: Read + Write>(
        &mut self,
        stream: &mut S,
        readable: bool,
        scratch: &mut [u8],
        now: Instant,
    ) -> Next {
        let mut eof = false;
        if readable || matches!(self.phase, Phase::Draining(_)) {
            // Under WASI 0.2 a read costs the host a zeroed buffer of the size asked for, not
            // of the bytes that came, so a turn starts small and asks for more only while the
            // reads come back full (a large body).
            let mut want = FIRST_READ.min(scratch.len()).max(1);
            while self.wants_input() {
                match stream.read(&mut scratch[..want]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.receive(&scratch[..n], now);
                        // A short read drained the socket: the loop's poll is level-triggered
                        // and reports the rest, so another read would only learn "would block".
                        if n < want {
                            break;
                        }
                        want = want.saturating_mul(2).min(scratch.len());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return Next::Close,
                }
            }
        }
        if !self.advance(now, eof) {
            return Next::Close;
        }
        while !self.pending().is_empty() {
            match stream.write(self.pending()) {
                Ok(0) => return Next::Close,
                Ok(n) => self.sent(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            }
        }
        self.settle(now, eof)
    }

    /// Whether a request head is partly received (the header timeout runs).
    fn head_pending(&self) -> bool {
        self.head_started.is_some() && !self.head_done
    }

    /// Queues a held response that is due; returns whether it did.
    fn release(&mut self, now: Instant) -> bool {
        match self.held.take() {
            Some((at, bytes)) if now >= at => {
                self.out.extend_from_slice(&bytes);
                true
            }
            other => {
                self.held = other;
                false
            }
        }
    }

    /// Answers every complete request in `inbuf`, until a held or closing response or an
    /// incomplete request.
    fn process(&mut self, now: Instant) {
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
            match parse(&self.inbuf[consumed..], self.limits) {
                Parsed::Complete(req, used) => {
                    let keep_alive = req.keep_alive && !self.seed;
                    let start = self.out.len();
                    let reply = answer(&req, &mut self.out, keep_alive, self.seed);
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
                        self.held = Some((now.max(Instant::now()) + d, self.out.split_off(start)));
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
                        self.out.extend_from_slice(CONTINUE);
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
                        self.seed,
                    );
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

/// How long a poll may sleep from `now` so it wakes at `deadline`, rounded up to whole
/// milliseconds (the unit of poll timeouts): waking early would only spin until the deadline.
pub fn wait_until(now: Instant, deadline: Instant) -> Duration {
    let ms = deadline
        .saturating_duration_since(now)
        .as_nanos()
        .div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Most bytes a connection buffers before the parser must have decided: a whole head, a
/// whole chunked body with its framing, and one read.
fn inbuf_cap(limits: Limits) -> usize {
    limits
        .max_header_bytes
        .saturating_add(chunked_framing_limit(limits))
        .saturating_add(READ_CHUNK)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io;

    use super::*;
    use crate::http::write_response_as;

    fn cfg(mode: Mode) -> Config {
        Config {
            mode,
            max_body_bytes: 64,
            header_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(5),
            ..Config::default()
        }
    }

    /// Everything queued, marked as sent.
    fn drain(s: &mut Session) -> Vec<u8> {
        let out = s.pending().to_vec();
        s.sent(out.len());
        out
    }

    fn text(status: u16, body: &str, keep_alive: bool, seed: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_response_as(
            &mut out,
            status,
            crate::http::TEXT_PLAIN,
            &[],
            &[body.as_bytes()],
            keep_alive,
            seed,
        );
        out
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_however_they_arrive() {
        let reqs: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\
            GET /healthz HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
        let mut want = text(200, "echo: hi", true, false);
        want.extend(text(200, "ok", true, false));
        want.extend(text(200, "echo: ", true, false));
        for cut in [0, 1, 20, 41, 50, reqs.len() - 1] {
            let now = Instant::now();
            let mut s = Session::new(&cfg(Mode::Concurrent), now);
            let mut got = Vec::new();
            for piece in [&reqs[..cut], &reqs[cut..]] {
                s.receive(piece, now);
                assert!(s.advance(now, false));
                got.extend(drain(&mut s));
            }
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "cut at {cut}"
            );
            assert_eq!(s.buffered(), 0);
            assert!(!s.closing());
            assert_eq!(s.settle(now, false), Next::Keep);
            assert_eq!(
                s.interest(),
                Interest {
                    read: true,
                    write: false
                }
            );
        }
    }

    #[test]
    fn expect_continue_gets_one_interim_response_before_the_answer() {
        let now = Instant::now();
        let mut s = Session::new(&cfg(Mode::Concurrent), now);
        s.receive(
            b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
            now,
        );
        assert!(s.advance(now, false));
        assert_eq!(
            s.interest(),
            Interest {
                read: false,
                write: true
            }
        );
        assert_eq!(drain(&mut s), CONTINUE);
        s.receive(b"ab", now);
        assert!(s.advance(now, false));
        assert!(
            s.pending().is_empty(),
            "no second 100 Continue, no early answer"
        );
        s.receive(b"cd", now);
        assert!(s.advance(now, false));
        assert_eq!(drain(&mut s), text(200, "echo: abcd", true, false));
        // A body sent along with the head needs no interim response.
        let mut s = Session::new(&cfg(Mode::Concurrent), now);
        s.receive(
            b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
            now,
        );
        assert!(s.advance(now, false));
        assert_eq!(drain(&mut s), text(200, "echo: z", true, false));
    }

    #[test]
    fn seed_mode_closes_after_every_response() {
        let now = Instant::now();
        let mut s = Session::new(&cfg(Mode::Seed), now);
        s.receive(b"GET / HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", now);
        assert!(s.advance(now, false));
        assert!(s.closing());
        // One answer in the demo's HTTP/1.0 format; the pipelined request is never answered.
        let out = drain(&mut s);
        assert_eq!(out, text(200, "echo: ", false, true));
        assert!(out.starts_with(b"HTTP/1.0 200 "));
        // Unanswered input is left: the close lingers so the response is not lost to a reset.
        assert_eq!(s.settle(now, false), Next::Linger);
        s.receive(b"more", now);
        assert_eq!(s.buffered(), 0, "input after the close is discarded");
        assert!(s.advance(now + LINGER / 2, false));
        assert_eq!(s.settle(now + LINGER / 2, false), Next::Keep);
        assert!(
            !s.advance(now + LINGER, false),
            "the linger ends at its deadline"
        );
        // Nothing left unread: closed at once.
        let mut s = Session::new(&cfg(Mode::Seed), now);
        s.receive(b"GET /healthz HTTP/1.1\r\n\r\n", now);
        assert!(s.advance(now, false));
        assert_eq!(drain(&mut s), text(200, "ok", false, true));
        assert_eq!(s.settle(now, false), Next::Close);
    }

    #[test]
    fn refusals_are_answered_then_the_connection_closes() {
        let now = Instant::now();
        let mut s = Session::new(&cfg(Mode::Concurrent), now);
        s.receive(b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", now);
        assert!(s.advance(now, false));
        assert!(s.closing());
        assert!(
            s.pending().starts_with(b"HTTP/1.1 413 "),
            "{:?}",
            String::from_utf8_lossy(s.pending())
        );
        // Nothing is answered after a refusal.
        s.receive(b"GET / HTTP/1.1\r\n\r\n", now);
        assert!(s.advance(now, false));
        let out = drain(&mut s);
        assert_eq!(out.windows(9).filter(|w| w == b"HTTP/1.1 ").count(), 1);
        assert_eq!(s.settle(now, false), Next::Linger);
        // `Connection: close` is honoured the same way, with the EOF seen: closed at once.
        let mut s = Session::new(&cfg(Mode::Concurrent), now);
        s.receive(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", now);
        assert!(s.advance(now, true));
        assert_eq!(drain(&mut s), text(200, "echo: ", false, false));
        assert_eq!(s.settle(now, true), Next::Close);
    }

    #[test]
    fn sleep_is_held_until_its_deadline_without_blocking_another_session() {
        let c = cfg(Mode::Concurrent);
        let t0 = Instant::now();
        let mut sleeper = Session::new(&c, t0);
        let mut other = Session::new(&c, t0);
        // A pipelined request behind the sleep must wait for it, in order.
        sleeper.receive(
            b"GET /sleep?ms=300 HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
            t0,
        );
        let started = Instant::now();
        assert!(sleeper.advance(t0, false));
        // Holding is bookkeeping, not a wait: a blocking sleep would take the full 300 ms.
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        let due = sleeper.wake_at().expect("a held response");
        assert!(due >= t0 + Duration::from_millis(300));
        assert!(due <= Instant::now() + Duration::from_millis(300));
        assert_eq!(
            sleeper.deadline(),
            due,
            "the poll timeout must wake the loop for it"
        );
        assert!(sleeper.pending().is_empty());
        // Neither readable nor writable: only the deadline wakes it.
        assert_eq!(
            sleeper.interest(),
            Interest {
                read: false,
                write: false
            }
        );
        assert_eq!(sleeper.settle(t0, false), Next::Keep);

        // Meanwhile another connection is answered at once.
        other.receive(b"GET / HTTP/1.1\r\n\r\n", t0);
        assert!(other.advance(t0, false));
        assert_eq!(drain(&mut other), text(200, "echo: ", true, false));

        // Just before the deadline: still held.
        let early = due - Duration::from_millis(1);
        assert!(sleeper.advance(early, false));
        assert!(sleeper.pending().is_empty());
        assert_eq!(sleeper.wake_at(), Some(due));
        // At the deadline: the sleep's answer, then the request that waited behind it.
        assert!(sleeper.advance(due, false));
        let mut want = text(200, "slept 300 ms", true, false);
        want.extend(text(200, "ok", true, false));
        assert_eq!(drain(&mut sleeper), want);
        assert_eq!(sleeper.wake_at(), None);
        assert_eq!(sleeper.deadline(), due + c.idle_timeout);
    }

    #[test]
    fn a_held_response_still_reaches_a_client_that_half_closed() {
        let t0 = Instant::now();
        let mut s = Session::new(&cfg(Mode::Concurrent), t0);
        s.receive(b"GET /sleep?ms=5 HTTP/1.1\r\n\r\n", t0);
        assert!(s.advance(t0, true));
        assert_eq!(s.settle(t0, true), Next::Keep);
        let due = s.wake_at().unwrap();
        assert!(s.advance(due, true));
        assert_eq!(drain(&mut s), text(200, "slept 5 ms", true, false));
        assert_eq!(s.settle(due, true), Next::Close);
    }

    #[test]
    fn trickled_heads_get_408_and_idle_connections_close_silently() {
        let c = cfg(Mode::Concurrent);
        let t0 = Instant::now();
        let mut s = Session::new(&c, t0);
        assert_eq!(s.deadline(), t0 + c.idle_timeout);
        s.receive(b"GET / HTTP/1.1\r\nX-Slow: ", t0);
        assert!(s.advance(t0, false));
        assert_eq!(s.deadline(), t0 + c.header_timeout);
        // Still trickling: activity does not extend the head's deadline.
        let later = t0 + c.header_timeout / 2;
        s.receive(b"x", later);
        assert!(s.advance(later, false));
        assert_eq!(s.deadline(), t0 + c.header_timeout);
        let due = t0 + c.header_timeout;
        assert!(s.advance(due, false));
        assert_eq!(
            drain(&mut s),
            text(408, "request head not received in time", false, false)
        );
        assert!(s.closing());
        assert_eq!(s.settle(due, false), Next::Linger);

        let mut idle = Session::new(&c, t0);
        assert!(idle.advance(t0 + c.idle_timeout - Duration::from_millis(1), false));
        assert!(!idle.advance(t0 + c.idle_timeout, false));
        assert!(idle.pending().is_empty());
    }

    #[test]
    fn input_beyond_the_buffer_cap_waits_in_the_kernel() {
        let c = cfg(Mode::Concurrent);
        let now = Instant::now();
        let mut s = Session::new(&c, now);
        let cap = inbuf_cap(s.limits);
        s.receive(&vec![b'a'; cap - 1], now);
        assert!(s.wants_input());
        s.receive(b"a", now);
        assert!(!s.wants_input());
    }

    /// An in-memory non-blocking socket: like a kernel's receive buffer, a read takes as much
    /// of `input` as fits (then `WouldBlock`, or EOF once `eof` is set), writes take at most
    /// `write_room` bytes a call.
    struct FakeStream {
        input: VecDeque<Vec<u8>>,
        eof: bool,
        written: Vec<u8>,
        write_room: usize,
    }

    impl Read for FakeStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut n = 0;
            while n < buf.len() {
                let Some(mut chunk) = self.input.pop_front() else {
                    break;
                };
                let k = chunk.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&chunk[..k]);
                if k < chunk.len() {
                    self.input.push_front(chunk.split_off(k));
                }
                n += k;
            }
            match n {
                0 if self.eof => Ok(0),
                0 => Err(ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }

    impl Write for FakeStream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.write_room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.write_room);
            self.written.extend_from_slice(&buf[..n]);
            self.write_room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn exchange_reads_answers_and_writes_as_far_as_the_socket_allows() {
        let now = Instant::now();
        let mut s = Session::new(&cfg(Mode::Concurrent), now);
        let mut io = FakeStream {
            input: VecDeque::from([
                b"GET /healthz HTTP/1.1\r\n".to_vec(),
                b"\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\nleftover".to_vec(),
            ]),
            eof: false,
            written: Vec::new(),
            write_room: 10,
        };
        let mut scratch = [0u8; 16];
        assert_eq!(s.exchange(&mut io, true, &mut scratch, now), Next::Keep);
        assert_eq!(io.written.len(), 10);
        assert_eq!(
            s.interest(),
            Interest {
                read: false,
                write: true
            }
        );
        io.write_room = usize::MAX;
        // Writable, not readable: the rest goes out, and the unread tail makes the close linger.
        assert_eq!(s.exchange(&mut io, false, &mut scratch, now), Next::Linger);
        let mut want = text(200, "ok", true, false);
        want.extend(text(200, "echo: ", false, false));
        assert_eq!(io.written, want);
        // Lingering reads and discards until EOF; a short read ends a turn, and the poll that
        // reports the end of the stream brings the next.
        io.input.push_back(b"ignored".to_vec());
        io.eof = true;
        assert_eq!(s.exchange(&mut io, true, &mut scratch, now), Next::Keep);
        assert!(io.input.is_empty());
        assert_eq!(s.exchange(&mut io, true, &mut scratch, now), Next::Close);
        assert_eq!(io.written, want);
    }

    #[test]
    fn poll_waits_are_rounded_up_to_whole_milliseconds() {
        let t = Instant::now();
        assert_eq!(wait_until(t, t), Duration::ZERO);
        assert_eq!(
            wait_until(t, t + Duration::from_micros(1)),
            Duration::from_millis(1)
        );
        assert_eq!(
            wait_until(t, t + Duration::from_micros(2500)),
            Duration::from_millis(3)
        );
        assert_eq!(wait_until(t + Duration::from_secs(1), t), Duration::ZERO);
    }
}
