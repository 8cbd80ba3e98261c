//! Real local servers for the load engine's tests: the wasmbench echo service, and tiny
//! misbehaving TCP servers (stalling, resetting, garbage, chunked).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use wasmbench_echo::config::{Config, Mode};
use wasmbench_load::{Executor, Plan};

/// Starts the echo service on 127.0.0.1, port 0, in a background thread.
pub fn echo(mode: Mode) -> SocketAddr {
    let cfg = Config {
        host: "127.0.0.1".into(),
        port: 0,
        mode,
        ..Config::default()
    };
    let listener = wasmbench_echo::server::listen(&cfg).expect("echo listens");
    let addr = listener.local_addr().expect("echo address");
    std::thread::spawn(move || {
        let _ = wasmbench_echo::server::serve(&cfg, listener);
    });
    addr
}

/// Accepts connections in a background thread and hands each to `handle` on its own thread.
/// Bounded: stops after 10 000 connections (far more than any test makes).
pub fn tcp_server(handle: fn(TcpStream)) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("address");
    std::thread::spawn(move || {
        for s in l.incoming().take(10_000).flatten() {
            std::thread::spawn(move || handle(s));
        }
    });
    addr
}

/// Reads one request head (and a Content-Length body) from `s`; false on EOF or error.
pub fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Bounded by the 1 MiB cap and by the peer closing.
    while buf.len() < (1 << 20) {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= pos + 4 + len {
                return true;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    false
}

/// Never answers; holds the connection until the client goes away.
pub fn stall(mut s: TcpStream) {
    let mut b = [0u8; 1024];
    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
}

/// Closes with the request unread, which makes the kernel send a reset.
pub fn reset(s: TcpStream) {
    let mut b = [0u8; 1];
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.peek(&mut b);
    drop(s);
}

/// Answers every request with bytes that are not HTTP.
pub fn garbage(mut s: TcpStream) {
    if read_request(&mut s) {
        let _ = s.write_all(b"this is not http\r\n\r\n");
    }
}

/// Keep-alive server answering with a chunked body `hello world` in three chunks.
pub fn chunked(mut s: TcpStream) {
    while read_request(&mut s) {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n";
        if s.write_all(r).is_err() {
            return;
        }
    }
}

/// A port with nothing listening on 127.0.0.1.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// A constant-vus plan against `url`.
pub fn plan(url: String, vus: u64, secs: f64) -> Plan {
    let mut p = Plan::default();
    p.request.url = url;
    p.executor = Executor::ConstantVus {
        vus,
        duration: Duration::from_secs_f64(secs),
    };
    p.graceful_stop = Duration::from_secs(2);
    p
}

/// A multi-threaded runtime for driving `run` from a test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}
