//! The `wasi:http/proxy` build of the workload served by the embedded host: real component,
//! real sockets, real HTTP. Every workload endpoint is checked against values computed here,
//! and status, content type, `allow` and body must equal the native socket build's (the other
//! headers are written by the host's HTTP library, not by the workload).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{
    Client, EndpointCase, Response, Served, body, check_answer, endpoint_cases, post, run_cases,
    start_native,
};
use wasmbench_runtime::build::{build_echo_http, build_echo_http_p3};
use wasmbench_runtime::host::http::{WasiHttpConfig, WasiHttpHost, WasiHttpVersion};
use wasmbench_runtime::inspect::{INCOMING_HANDLER, component_exports, component_imports};
use wasmbench_runtime::{Artifact, BuildOptions, ExecMode};

/// The component, built once per test binary.
fn component() -> Artifact {
    static A: OnceLock<Artifact> = OnceLock::new();
    A.get_or_init(|| {
        build_echo_http(&BuildOptions::default()).unwrap_or_else(|e| panic!("building: {e}"))
    })
    .clone()
}

/// The WASI 0.3 build (`crates/echo-http-p3`), built once per test binary.
fn component_p3() -> Artifact {
    static A: OnceLock<Artifact> = OnceLock::new();
    A.get_or_init(|| {
        build_echo_http_p3(&BuildOptions::default()).unwrap_or_else(|e| panic!("building: {e}"))
    })
    .clone()
}

/// Status code and body of a raw response; checks the framing headers on the way.
fn split(resp: &[u8]) -> (u16, Vec<u8>) {
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
    let status = head
        .strip_prefix("http/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, resp[end..].to_vec())
}

fn request(addr: SocketAddr, raw: &[u8]) -> (u16, Vec<u8>) {
    let mut c = Client::connect(addr);
    c.send(raw);
    split(&c.read_response())
}

fn cfg(mode: ExecMode) -> WasiHttpConfig {
    let mut c = WasiHttpConfig::new(component().path);
    c.mode = mode;
    c.worker_threads = 2;
    c
}

#[test]
fn component_exports_the_proxy_handler_and_imports_only_wasi() {
    let a = component();
    let exports = component_exports(&a.path).unwrap();
    assert!(
        exports.iter().any(|e| e.starts_with(INCOMING_HANDLER)),
        "{exports:?}"
    );
    let imports = component_imports(&a.path).unwrap();
    println!("echo-http imports: {imports:?}");
    assert!(imports.iter().any(|i| i.starts_with("wasi:http/types")));
    for i in &imports {
        assert!(i.starts_with("wasi:"), "unexpected import {i}");
    }
    // The socket build is refused with a reason that names the right file.
    let socket_build = common::artifact(wasmbench_runtime::Target::Wasip2);
    let e = WasiHttpHost::new(WasiHttpConfig::new(socket_build.path))
        .unwrap_err()
        .to_string();
    assert!(e.contains(INCOMING_HANDLER), "{e}");
}

#[test]
fn routes_match_the_socket_build() {
    let s = Served::start(cfg(ExecMode::CraneliftJit));
    assert_eq!(
        request(s.addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"),
        (200, b"ok".to_vec())
    );
    assert_eq!(
        request(s.addr, b"GET /x?y=1 HTTP/1.1\r\nHost: t\r\n\r\n"),
        (200, b"echo: ".to_vec())
    );
    assert_eq!(
        request(s.addr, &post("/any/path", b"hello", false)),
        (200, b"echo: hello".to_vec())
    );
    let (st, b) = request(
        s.addr,
        b"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        (st, b.as_slice()),
        (400, wasmbench_echo_http::BAD_METHOD.as_bytes())
    );
    // Over the limit by one byte, declared up front: refused before the body is sent.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        wasmbench_echo_http::MAX_BODY_BYTES + 1
    );
    let (st, b) = request(s.addr, head.as_bytes());
    assert_eq!(
        (st, b.as_slice()),
        (413, wasmbench_echo_http::TOO_LARGE.as_bytes())
    );
    // Exactly at the limit, sent chunked (no declared length): read, counted, echoed.
    let max = body(wasmbench_echo_http::MAX_BODY_BYTES);
    let mut chunked = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in max.chunks(100_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (st, b) = request(s.addr, &chunked);
    assert_eq!(st, 200);
    assert_eq!(&b[..6], b"echo: ");
    assert!(b[6..] == max[..], "large body not echoed byte for byte");
}

/// 200 connections at once, each sending several keep-alive requests with its own body;
/// every answer must be the exact echo of that connection's request.
fn concurrent_round_trip(cfg: WasiHttpConfig) {
    const CONNECTIONS: usize = 200;
    const REQUESTS: usize = 3;
    let s = Served::start(cfg);
    let addr = s.addr;
    let start = Arc::new(std::sync::Barrier::new(CONNECTIONS));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                start.wait();
                for r in 0..REQUESTS {
                    let payload = format!("conn {i} req {r} {}", "x".repeat(i % 97));
                    c.send(&post(&format!("/c{i}"), payload.as_bytes(), false));
                    let (st, b) = split(&c.read_response());
                    assert_eq!(st, 200, "connection {i} request {r}");
                    assert_eq!(
                        String::from_utf8_lossy(&b),
                        format!("echo: {payload}"),
                        "connection {i} request {r}"
                    );
                }
            })
        })
        .collect();
    let mut failures = 0;
    for c in clients {
        if c.join().is_err() {
            failures += 1;
        }
    }
    assert_eq!(
        failures, 0,
        "{failures} of {CONNECTIONS} connections failed"
    );
}

#[test]
fn two_hundred_concurrent_connections_instance_per_request() {
    concurrent_round_trip(cfg(ExecMode::CraneliftJit));
}

#[test]
fn two_hundred_concurrent_connections_with_instance_reuse() {
    let mut c = cfg(ExecMode::CraneliftJit);
    c.instance_reuse = 100;
    concurrent_round_trip(c);
}

#[test]
fn winch_and_pulley_serve_the_component() {
    for mode in [ExecMode::Winch, ExecMode::Pulley] {
        let mut c = cfg(mode);
        c.pooling = false;
        let s = Served::start(c);
        assert_eq!(
            request(s.addr, &post("/", b"mode check", true)),
            (200, b"echo: mode check".to_vec()),
            "{mode}"
        );
    }
}

/// `precompiled`: the first host compiles into the cache, the next one loads it and compiles
/// nothing, and both serve the component.
#[test]
fn precompiled_code_is_compiled_once_then_loaded_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for _ in 0..2 {
        let mut c = cfg(ExecMode::CraneliftJit);
        c.precompiled = true;
        c.cache_dir = Some(cache.path().to_path_buf());
        let host = WasiHttpHost::new(c.clone()).unwrap();
        reports.push(host.report().clone());
        drop(host);
        let s = Served::start(c);
        assert_eq!(
            request(s.addr, &post("/", b"cached", true)),
            (200, b"echo: cached".to_vec())
        );
    }
    let (first, second) = (&reports[0], &reports[1]);
    assert!(!first.cache_hit && first.compile_ms.is_some(), "{first:?}");
    assert_eq!(first.mode, ExecMode::CraneliftJit);
    assert!(
        second.cache_hit && second.compile_ms.is_none(),
        "{second:?}"
    );
    assert_eq!(second.mode, ExecMode::Precompiled);
    assert!(second.cwasm_size_bytes.is_some_and(|n| n > 0));
    let mut winch = cfg(ExecMode::Winch);
    winch.precompiled = true;
    let e = WasiHttpHost::new(winch).err().unwrap().to_string();
    assert!(e.contains("Cranelift only"), "{e}");
}

/// Not a check: serves the component for a benchmark until a deadline, e.g.
/// `WASMBENCH_BENCH_ADDR=127.0.0.1:18200 WASMBENCH_BENCH_SECONDS=60 WASMBENCH_BENCH_REUSE=1
/// cargo test -p wasmbench-runtime --test wasi_http -- --ignored bench_serve`, until the
/// `wasmbench serve --target wasi-http` subcommand does the same.
#[test]
#[ignore = "benchmark helper, run by hand"]
fn bench_serve() {
    let Ok(addr) = std::env::var("WASMBENCH_BENCH_ADDR") else {
        panic!("set WASMBENCH_BENCH_ADDR=<ip:port>");
    };
    let addr: SocketAddr = addr.parse().expect("WASMBENCH_BENCH_ADDR is ip:port");
    let env_num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seconds = env_num("WASMBENCH_BENCH_SECONDS", 60).min(600);
    let mut c = cfg(ExecMode::CraneliftJit);
    c.host = addr.ip();
    c.port = addr.port();
    c.instance_reuse = env_num("WASMBENCH_BENCH_REUSE", 1) as usize;
    let host = WasiHttpHost::new(c).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || host.serve(&stop))
    };
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap().unwrap();
}

fn cases() -> &'static [EndpointCase] {
    static CASES: OnceLock<Vec<EndpointCase>> = OnceLock::new();
    CASES.get_or_init(endpoint_cases)
}

/// What the workload decides in a response: status, content type, `allow` and body.
type Decided = (u16, Option<String>, Option<String>, Vec<u8>);

fn decided(r: &Response) -> Decided {
    (
        r.status,
        r.header("content-type").map(str::to_string),
        r.header("allow").map(str::to_string),
        r.body.clone(),
    )
}

/// Sends every case, checks every answer on its own and returns what the workload decided.
fn answers(addr: SocketAddr) -> Vec<Decided> {
    let exchanges = run_cases(addr, cases());
    cases()
        .iter()
        .zip(&exchanges)
        .map(|(case, ex)| {
            let r = Response::parse(&ex.raw);
            check_answer(case, &r, ex.elapsed);
            decided(&r)
        })
        .collect()
}

fn native_answers() -> &'static [Decided] {
    static NATIVE: OnceLock<Vec<Decided>> = OnceLock::new();
    NATIVE.get_or_init(|| answers(start_native().addr))
}

fn same_as_native(cfg: WasiHttpConfig) {
    let served = Served::start(cfg);
    let got = answers(served.addr);
    let mut differ = Vec::new();
    for ((case, g), n) in cases().iter().zip(&got).zip(native_answers()) {
        if g != n {
            differ.push(format!(
                "{}:\n  wasi:http: {} {:?} {:?} {:?}\n  native:    {} {:?} {:?} {:?}",
                case.name,
                g.0,
                g.1,
                g.2,
                String::from_utf8_lossy(&g.3[..g.3.len().min(200)]),
                n.0,
                n.1,
                n.2,
                String::from_utf8_lossy(&n.3[..n.3.len().min(200)]),
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} answers differ from native:\n{}",
        differ.len(),
        got.len(),
        differ.join("\n")
    );
}

fn endpoints_cfg() -> WasiHttpConfig {
    let mut c = WasiHttpConfig::new(component().path);
    c.worker_threads = 2;
    // A small pool: the cases run one at a time.
    c.max_concurrent_requests = 16;
    c
}

#[test]
fn instance_per_request_answers_like_native() {
    same_as_native(endpoints_cfg());
}

#[test]
fn reused_instances_answer_like_native() {
    let mut c = endpoints_cfg();
    c.instance_reuse = 100;
    same_as_native(c);
}

/// The WASI 0.3 component answers every endpoint as native does, an instance per request and
/// with instances reused, and the host says it serves it as 0.3.
#[test]
fn the_wasi_0_3_component_answers_like_native() {
    let mut c = endpoints_cfg();
    c.wasm = component_p3().path;
    let host = WasiHttpHost::new(c.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host.report().wasi_http, WasiHttpVersion::P3);
    drop(host);
    same_as_native(c.clone());
    c.instance_reuse = 100;
    same_as_native(c);
}
