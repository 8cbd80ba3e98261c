//! One connection's protocol state: bytes in, responses out, and whether to keep the connection.
//!
//! Same rules as the socket build's event loop: pipelined requests are answered in order,
//! `Expect: 100-continue` gets an interim response, a rejected request is answered and the
//! connection closed, `ECHO_MODE=seed` closes after every response.

use wasmbench_echo::app::respond;
use wasmbench_echo::config::{Config, Mode};
use wasmbench_echo::http::{Limits, Parsed, parse, write_response};

/// What the connection should do after [`Session::receive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep reading (after sending what is queued).
    KeepOpen,
    /// Send what is queued, then close.
    Close,
}

/// Per-connection protocol state.
#[derive(Debug)]
pub struct Session {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    need_total: Option<usize>,
    continue_sent: bool,
    closing: bool,
    limits: Limits,
    seed: bool,
}

impl Session {
    /// A fresh connection under `cfg`'s limits and mode.
    pub fn new(cfg: &Config) -> Session {
        Session {
            inbuf: Vec::new(),
            out: Vec::new(),
            need_total: None,
            continue_sent: false,
            closing: false,
            limits: Limits {
                max_body_bytes: cfg.max_body_bytes,
                max_header_bytes: cfg.max_header_bytes,
            },
            seed: cfg.mode == Mode::Seed,
        }
    }

    /// Largest receive buffer worth keeping: a request at both limits plus slack.
    pub fn read_cap(&self) -> usize {
        self.limits.max_header_bytes + self.limits.max_body_bytes + (64 << 10)
    }

    /// Whether a request head has started arriving without being answered yet.
    pub fn mid_request(&self) -> bool {
        !self.inbuf.is_empty()
    }

    /// Adds received bytes and answers every complete request in them.
    pub fn receive(&mut self, bytes: &[u8]) -> Next {
        if self.closing {
            // Input after the final response is discarded.
            return Next::Close;
        }
        self.inbuf.extend_from_slice(bytes);
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
                    respond(&req, &mut self.out, keep_alive, self.seed);
                    consumed += used;
                    self.need_total = None;
                    self.continue_sent = false;
                    if !keep_alive {
                        self.closing = true;
                        break;
                    }
                }
                Parsed::Incomplete {
                    head_done,
                    expect_continue,
                    need_total,
                } => {
                    self.need_total = need_total;
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
                        self.seed,
                    );
                    self.closing = true;
                    break;
                }
            }
        }
        self.inbuf.drain(..consumed);
        if self.closing {
            self.inbuf = Vec::new();
            Next::Close
        } else {
            Next::KeepOpen
        }
    }

    /// A client that sent part of a head and then stalled gets `408`; returns whether anything
    /// was queued (the connection is closed either way).
    pub fn timed_out(&mut self) -> bool {
        self.closing = true;
        if self.inbuf.is_empty() {
            return false;
        }
        write_response(
            &mut self.out,
            408,
            &[b"request head not received in time"],
            false,
            self.seed,
        );
        true
    }

    /// Bytes queued for sending.
    pub fn pending(&self) -> &[u8] {
        &self.out
    }

    /// Marks `n` queued bytes as sent.
    pub fn sent(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// Whether the connection is finished once [`Session::pending`] is empty.
    pub fn closing(&self) -> bool {
        self.closing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: Mode) -> Config {
        Config {
            mode,
            max_body_bytes: 16,
            ..Config::default()
        }
    }

    #[test]
    fn answers_pipelined_requests_in_order() {
        let mut s = Session::new(&cfg(Mode::Concurrent));
        let req = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /healthz HTTP/1.1\r\n\r\n";
        assert_eq!(s.receive(&req[..20]), Next::KeepOpen);
        assert!(s.pending().is_empty());
        assert_eq!(s.receive(&req[20..]), Next::KeepOpen);
        let out = String::from_utf8(s.pending().to_vec()).unwrap();
        let first = out.find("echo: hi").expect("echo answer");
        let second = out.find("\r\n\r\nok").expect("healthz answer");
        assert!(first < second, "{out}");
        let n = s.pending().len();
        s.sent(n);
        assert!(s.pending().is_empty());
        assert!(!s.closing());
    }

    #[test]
    fn rejects_and_closes() {
        let mut s = Session::new(&cfg(Mode::Concurrent));
        assert_eq!(
            s.receive(b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n"),
            Next::Close
        );
        assert!(s.pending().starts_with(b"HTTP/1.1 413 "));
        let mut s = Session::new(&cfg(Mode::Concurrent));
        assert_eq!(s.receive(b"PUT / HTTP/1.1\r\n\r\n"), Next::Close);
        assert!(s.pending().starts_with(b"HTTP/1.1 400 "));
        assert_eq!(s.receive(b"GET / HTTP/1.1\r\n\r\n"), Next::Close);
    }

    #[test]
    fn continue_seed_and_timeout() {
        let mut s = Session::new(&cfg(Mode::Concurrent));
        s.receive(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(s.pending(), b"HTTP/1.1 100 Continue\r\n\r\n");
        let mut s = Session::new(&cfg(Mode::Seed));
        assert_eq!(s.receive(b"GET / HTTP/1.1\r\n\r\n"), Next::Close);
        assert!(s.pending().starts_with(b"HTTP/1.0 200 "));
        let mut s = Session::new(&cfg(Mode::Concurrent));
        s.receive(b"GET / HT");
        assert!(s.mid_request());
        assert!(s.timed_out());
        assert!(s.pending().starts_with(b"HTTP/1.1 408 "));
    }
}
