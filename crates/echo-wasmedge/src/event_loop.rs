//! The event loop over WasmEdge's `poll_oneoff`: non-blocking sockets, one thread, many
//! connections. Each connection is a [`Session`], the same state machine the socket build's
//! `poll(2)` loop drives; this loop only moves bytes and sleeps until the next socket event or
//! the earliest [`Session::deadline`] — a held `GET /sleep` response included, so one sleeping
//! request never delays another connection.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use wasmbench_echo::config::{Config, Mode};
use wasmbench_echo::session::{Next, READ_CHUNK, Session, wait_until};
use wasmedge_wasi_socket::poll::{EventType, Subscription, poll};
use wasmedge_wasi_socket::{Shutdown, TcpListener, TcpStream};

/// Subscription tags of the listener and of the timer; connections are tagged by their slot.
const LISTENER: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;

struct Conn {
    stream: TcpStream,
    session: Session,
    /// This pass: the socket had an event, and whether reading may make progress.
    woken: bool,
    readable: bool,
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
        // Only the port is taken from the socket: WasmEdge 0.14.1 reports 0.0.0.0 for a
        // listener bound to 127.0.0.1, and the address bound is the one asked for.
        Ok(addr) => println!("listening on {}", SocketAddr::new(ip, addr.port())),
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
    let seed = cfg.mode == Mode::Seed;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut subs: Vec<Subscription> = Vec::new();
    loop {
        subs.clear();
        let active = conns.len() - free.len();
        // Seed mode reproduces the demo: the next connection is accepted only when the
        // current one is finished.
        let accepting = !seed || active == 0;
        if accepting {
            subs.push(Subscription::io(LISTENER, listener, true, false, None));
        }
        let mut next: Option<Instant> = None;
        for (i, c) in conns.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            c.woken = false;
            c.readable = false;
            let want = c.session.interest();
            if want.read || want.write {
                subs.push(Subscription::io(
                    i as u64, &c.stream, want.read, want.write, None,
                ));
            }
            let d = c.session.deadline();
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        if let Some(d) = next {
            // poll_oneoff's clock is absolute wall time; the sessions' deadlines are monotonic.
            let wait = wait_until(Instant::now(), d);
            subs.push(Subscription::timeout(TIMER, SystemTime::now() + wait));
        }
        let events = match poll(&subs) {
            Ok(events) => events,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        let mut accept = false;
        for ev in events {
            match ev.userdata {
                TIMER => {}
                LISTENER => accept = true,
                slot => {
                    if let Some(c) = conns.get_mut(slot as usize).and_then(Option::as_mut) {
                        c.woken = true;
                        // An error or hang-up shows when reading, as POLLERR/POLLHUP do in
                        // the socket build's loop.
                        c.readable |= !matches!(ev.event_type, EventType::Write);
                    }
                }
            }
        }
        for (slot, entry) in conns.iter_mut().enumerate() {
            let Some(c) = entry else { continue };
            // Connections without events are only visited when one of their deadlines is due.
            if !c.woken && now < c.session.deadline() {
                continue;
            }
            match c
                .session
                .exchange(&mut c.stream, c.readable, &mut scratch, now)
            {
                Next::Keep => {}
                Next::Linger => {
                    let _ = c.stream.shutdown(Shutdown::Write);
                }
                Next::Close => {
                    let _ = c.stream.shutdown(Shutdown::Write);
                    *entry = None;
                    free.push(slot);
                }
            }
        }
        if accept {
            loop {
                match listener.accept(true) {
                    Ok((stream, _)) => {
                        let conn = Some(Conn {
                            stream,
                            session: Session::new(cfg, now),
                            woken: false,
                            readable: false,
                        });
                        match free.pop() {
                            Some(i) => conns[i] = conn,
                            None => conns.push(conn),
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
            }
        }
    }
}
