//! Every variant (native child process, embedded Wasmtime wasip2 and wasip1) serves the same
//! HTTP, byte for byte, over real TCP on 127.0.0.1.

mod common;

use std::net::SocketAddr;

use common::{Client, InProcess, artifact, body, embedded, expected_echo, post};
use wasmbench_runtime::{LaunchSpec, Native, Runtime, Target};

fn expected(status: u16, parts: &[&[u8]], keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::new();
    wasmbench_echo::http::write_response(&mut out, status, parts, keep_alive, false);
    out
}

fn check_health(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r, expected(200, &[b"ok"], true));
    assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n") && r.ends_with(b"\r\n\r\nok"));
}

fn check_keep_alive_and_close(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    for i in 0..5 {
        let b = body(i * 13 + 1);
        c.send(&post("/", &b, false));
        assert_eq!(
            c.read_response(),
            expected_echo(&b, true, false),
            "request {i}"
        );
    }
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(), expected(200, &[b"echo: "], true));
    // Pipelined: three requests in one write, answered in order.
    let bodies = [body(3), body(300), body(3000)];
    let mut batch = Vec::new();
    for b in &bodies {
        batch.extend_from_slice(&post("/p", b, false));
    }
    c.send(&batch);
    for b in &bodies {
        assert_eq!(c.read_response(), expected_echo(b, true, false));
    }
    let b = body(10);
    c.send(&post("/", &b, true));
    let r = c.read_response();
    assert_eq!(r, expected_echo(&b, false, false));
    assert!(String::from_utf8_lossy(&r).contains("connection: close\r\n"));
    c.expect_eof();
}

fn check_bodies(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    for len in [1usize, 1 << 10, 64 << 10, 1 << 20] {
        let b = body(len);
        c.send(&post("/", &b, false));
        let r = c.read_response();
        assert!(
            r == expected_echo(&b, true, false),
            "body of {len} bytes differs"
        );
    }
}

fn check_concurrent(addr: SocketAddr) {
    const CONNS: usize = 200;
    const ROUNDS: usize = 3;
    let mut clients: Vec<Client> = (0..CONNS).map(|_| Client::connect(addr)).collect();
    for round in 0..ROUNDS {
        // All 200 requests are in flight before any answer is read.
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(&post(
                "/",
                format!("conn {i} round {round}").as_bytes(),
                false,
            ));
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let b = format!("conn {i} round {round}");
            assert_eq!(c.read_response(), expected_echo(b.as_bytes(), true, false));
        }
    }
}

fn check_errors(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    c.send(b"GARBAGE\x01\x02 nonsense\r\n\r\n");
    let r = c.read_response();
    assert!(
        r.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
        "{:?}",
        String::from_utf8_lossy(&r)
    );
    assert!(String::from_utf8_lossy(&r).contains("connection: close\r\n"));
    c.expect_eof();

    let mut c = Client::connect(addr);
    c.send(
        format!(
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            (1 << 20) + 1
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert!(
        r.starts_with(b"HTTP/1.1 413 Payload Too Large\r\n")
            || r.starts_with(b"HTTP/1.1 413 Content Too Large\r\n"),
        "{:?}",
        String::from_utf8_lossy(&r)
    );
    c.expect_eof();
}

fn check_all(addr: SocketAddr) {
    check_health(addr);
    check_keep_alive_and_close(addr);
    check_bodies(addr);
    check_concurrent(addr);
    check_errors(addr);
    // Still serving after all of the above.
    check_health(addr);
}

fn check_seed(addr: SocketAddr) {
    for i in 0..3 {
        let mut c = Client::connect(addr);
        let b = body(i * 100 + 5);
        // No `Connection: close`: seed mode closes anyway, like the demo's server.
        c.send(&post("/", &b, false));
        let r = c.read_response();
        assert!(
            r.starts_with(b"HTTP/1.0 200 \r\n"),
            "{:?}",
            String::from_utf8_lossy(&r)
        );
        assert_eq!(r, expected_echo(&b, false, true));
        c.expect_eof();
    }
}

fn native(env: &[(&str, &str)]) -> wasmbench_runtime::RunningServer {
    let mut spec = LaunchSpec::new(artifact(Target::Native));
    spec.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Native.launch(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn embedded_with(target: Target, env: &[(&str, &str)]) -> InProcess {
    let mut cfg = embedded(target);
    cfg.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    InProcess::start(cfg)
}

#[test]
fn native_serves_http() {
    let s = native(&[]);
    assert!(s.spawn_to_ready > std::time::Duration::ZERO);
    assert_eq!(s.info.name, "native");
    check_all(s.addr);
}

#[test]
fn native_seed_mode() {
    check_seed(native(&[("ECHO_MODE", "seed")]).addr);
}

#[test]
fn wasmtime_wasip2_serves_http() {
    let h = embedded_with(Target::Wasip2, &[]);
    check_all(h.addr);
    h.finish().unwrap();
}

#[test]
fn wasmtime_wasip2_seed_mode() {
    let h = embedded_with(Target::Wasip2, &[("ECHO_MODE", "seed")]);
    check_seed(h.addr);
    h.finish().unwrap();
}

#[test]
fn wasmtime_wasip1_serves_http() {
    let h = embedded_with(Target::Wasip1, &[]);
    check_all(h.addr);
    h.finish().unwrap();
}

#[test]
fn wasmtime_wasip1_seed_mode() {
    let h = embedded_with(Target::Wasip1, &[("ECHO_MODE", "seed")]);
    check_seed(h.addr);
    h.finish().unwrap();
}
