//! `connect-probe`: a guest that tries to leave its sandbox.
//!
//! It opens the listener it is allowed (`PORT` on `HOST`/`ECHO_HOST`, or the descriptor the
//! host preopens on wasip1) and prints `listening on <addr>`, then tries a TCP connect to
//! `CONNECT_TO` and a UDP bind + send to `UDP_TO`, printing one `probe ...` line per attempt.
//! It then serves those lines on `GET /` (and `200 ok` on `/healthz`) so a host that keeps the
//! guest's stdout can still be asked what happened.
//!
//! The same source runs natively, where every attempt is expected to succeed; that proves the
//! probe itself works when a sandbox denies it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// How long one client may take to send its request head.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Pause between polls of the non-blocking sockets.
const TICK: Duration = Duration::from_millis(5);

fn main() {
    let listener = match listen() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("connect-probe: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let mut report = String::new();
    report.push_str(&probe("tcp-connect", "CONNECT_TO", tcp_connect));
    report.push_str(&probe("udp-send", "UDP_TO", udp_send));
    print!("{report}");
    let _ = std::io::stdout().flush();
    serve(&listener, &report);
}

fn listen() -> std::io::Result<TcpListener> {
    let listener = preopened().map_or_else(
        || {
            let host = std::env::var("HOST")
                .or_else(|_| std::env::var("ECHO_HOST"))
                .unwrap_or_else(|_| "127.0.0.1".into());
            let port: u16 = std::env::var("PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            TcpListener::bind((host.as_str(), port))
        },
        Ok,
    )?;
    // Non-blocking, so the guest keeps running Wasm code (and sees the host's stop requests)
    // instead of parking inside a host call.
    listener.set_nonblocking(true)?;
    match listener.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(_) => println!("listening on fd 3"),
    }
    let _ = std::io::stdout().flush();
    Ok(listener)
}

/// wasip1 has no `bind`: the host hands the listener in at descriptor 3.
#[cfg(all(target_os = "wasi", target_env = "p1"))]
fn preopened() -> Option<TcpListener> {
    use std::os::fd::FromRawFd;
    // SAFETY: the embedded host preopens its listener at descriptor 3; nothing else owns it.
    Some(unsafe { TcpListener::from_raw_fd(3) })
}

#[cfg(not(all(target_os = "wasi", target_env = "p1")))]
fn preopened() -> Option<TcpListener> {
    None
}

/// Runs one attempt against the address in `var` and formats its line:
/// `probe <name> <addr> ok` or `probe <name> <addr> error <ErrorKind>: <message>`.
fn probe(name: &str, var: &str, attempt: fn(SocketAddr) -> std::io::Result<()>) -> String {
    let Some(raw) = std::env::var(var).ok().filter(|v| !v.is_empty()) else {
        return format!("probe {name} skipped ({var} unset)\n");
    };
    let addr: SocketAddr = match raw.parse() {
        Ok(a) => a,
        Err(e) => return format!("probe {name} {raw} error InvalidInput: {e}\n"),
    };
    match attempt(addr) {
        Ok(()) => format!("probe {name} {addr} ok\n"),
        Err(e) => format!("probe {name} {addr} error {:?}: {e}\n", e.kind()),
    }
}

fn tcp_connect(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"connect-probe was here\n")
}

fn udp_send(addr: SocketAddr) -> std::io::Result<()> {
    let local: SocketAddr = if addr.is_ipv4() {
        "127.0.0.1:0".parse().expect("literal address")
    } else {
        "[::1]:0".parse().expect("literal address")
    };
    let s = UdpSocket::bind(local)?;
    s.send_to(b"connect-probe was here\n", addr).map(|_| ())
}

fn serve(listener: &TcpListener, report: &str) -> ! {
    loop {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, report),
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("connect-probe: accept: {e}");
                std::thread::sleep(TICK);
            }
        }
    }
}

/// Reads one request head (bounded in size and time) and answers it; errors end the
/// connection only.
fn answer(mut s: TcpStream, report: &str) {
    if s.set_nonblocking(true).is_err() {
        return;
    }
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 << 10 || Instant::now() >= deadline {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/" => ("200 OK", report),
        "/healthz" => ("200 OK", "ok\n"),
        _ => ("404 Not Found", "not found\n"),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = reply.as_bytes();
    while !out.is_empty() && Instant::now() < deadline {
        match s.write(out) {
            Ok(0) => return,
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let _ = s.flush();
}
