//! The event loop over WasmEdge's `poll_oneoff`: non-blocking sockets, one thread, many
//! connections, like the socket build's `poll(2)` loop.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use wasmbench_echo::config::Config;
use wasmbench_echo_wasmedge::session::{Next, Session};
use wasmedge_wasi_socket::poll::{EventType, Subscription, poll};
use wasmedge_wasi_socket::{Shutdown, TcpListener, TcpStream};

const LISTENER: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;
const READ_CHUNK: usize = 64 << 10;

struct Conn {
    stream: TcpStream,
    session: Session,
    last_active: Instant,
    head_started: Option<Instant>,
}

impl Conn {
    fn deadline(&self, cfg: &Config) -> Instant {
        let idle = self.last_active + cfg.idle_timeout;
        match self.head_started {
            Some(t) => idle.min(t + cfg.header_timeout),
            None => idle,
        }
    }

    /// Sends what is queued; `false` when the connection failed.
    fn flush(&mut self) -> bool {
        while !self.session.pending().is_empty() {
            match self.stream.write(self.session.pending()) {
                Ok(0) => return false,
                Ok(n) => self.session.sent(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what arrived and answers it; `false` when the connection is finished.
    fn on_readable(&mut self, scratch: &mut [u8], now: Instant) -> bool {
        let cap = self.session.read_cap();
        let mut received = 0usize;
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return false,
                Ok(n) => {
                    self.last_active = now;
                    received += n;
                    if self.session.receive(&scratch[..n]) == Next::Close || received >= cap {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        self.head_started = if self.session.mid_request() {
            Some(self.head_started.unwrap_or(now))
        } else {
            None
        };
        self.after_io()
    }

    fn after_io(&mut self) -> bool {
        if !self.flush() {
            return false;
        }
        if self.session.closing() && self.session.pending().is_empty() {
            let _ = self.stream.shutdown(Shutdown::Both);
            return false;
        }
        true
    }
}

pub fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo-wasmedge: {e}");
            return ExitCode::from(2);
        }
    };
    let ip: IpAddr = match cfg.host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            eprintln!(
                "echo-wasmedge: ECHO_HOST={:?} is not an IP address: use e.g. 0.0.0.0 or 127.0.0.1",
                cfg.host
            );
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(SocketAddr::new(ip, cfg.port), true) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "echo-wasmedge: cannot listen on {}:{}: {e}",
                cfg.host, cfg.port
            );
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(_) => println!("listening on {}:{}", cfg.host, cfg.port),
    }
    match serve(&cfg, &listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-wasmedge: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(cfg: &Config, listener: &TcpListener) -> std::io::Result<()> {
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut subs: Vec<Subscription> = Vec::new();
    let seed = cfg.mode == wasmbench_echo::config::Mode::Seed;
    loop {
        subs.clear();
        let active = conns.len() - free.len();
        // Seed mode reproduces the demo: one connection at a time.
        if !seed || active == 0 {
            subs.push(Subscription::io(LISTENER, listener, true, false, None));
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for (i, c) in conns.iter().enumerate() {
            let Some(c) = c else { continue };
            let writing = !c.session.pending().is_empty();
            subs.push(Subscription::io(
                i as u64, &c.stream, !writing, writing, None,
            ));
            let d = c.deadline(cfg);
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        if let Some(d) = next {
            let wait = d.saturating_duration_since(now) + Duration::from_millis(1);
            subs.push(Subscription::timeout(TIMER, SystemTime::now() + wait));
        }
        let events = poll(&subs)?;
        let now = Instant::now();
        for ev in events {
            match ev.userdata {
                TIMER => {}
                LISTENER => loop {
                    match listener.accept(true) {
                        Ok((stream, _)) => {
                            let conn = Conn {
                                stream,
                                session: Session::new(cfg),
                                last_active: now,
                                head_started: None,
                            };
                            match free.pop() {
                                Some(i) => conns[i] = Some(conn),
                                None => conns.push(Some(conn)),
                            }
                            if seed {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        // WouldBlock ends the batch; other accept errors (aborted handshakes,
                        // descriptor exhaustion) must not stop the server.
                        Err(_) => break,
                    }
                },
                slot => {
                    let slot = slot as usize;
                    let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) else {
                        continue;
                    };
                    let keep = match ev.event_type {
                        EventType::Read => c.on_readable(&mut scratch, now),
                        EventType::Write => c.after_io(),
                        EventType::Error(_) => false,
                        EventType::Timeout => true,
                    };
                    if !keep {
                        conns[slot] = None;
                        free.push(slot);
                    }
                }
            }
        }
        for (slot, entry) in conns.iter_mut().enumerate() {
            let Some(c) = entry else { continue };
            if now >= c.deadline(cfg) {
                if c.session.timed_out() {
                    let _ = c.flush();
                }
                *entry = None;
                free.push(slot);
            }
        }
    }
}
