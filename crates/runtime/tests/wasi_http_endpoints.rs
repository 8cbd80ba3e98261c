//! Every workload endpoint of the `wasi:http/proxy` component (`wasmbench-echo-http`) under the
//! embedded wasi:http host: each answer is checked against values computed here, and status,
//! content type, `allow` and body must equal the native socket build's (the other headers are
//! written by the host's HTTP library, not by the workload).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{EndpointCase, Response, check_answer, endpoint_cases, run_cases, start_native};
use wasmbench_runtime::process::wait_ready;
use wasmbench_runtime::wasi_http::{WasiHttpConfig, WasiHttpHost, build_echo_http};
use wasmbench_runtime::{Artifact, BuildOptions, RuntimeError};

fn cases() -> &'static [EndpointCase] {
    static CASES: OnceLock<Vec<EndpointCase>> = OnceLock::new();
    CASES.get_or_init(endpoint_cases)
}

/// The component, built once per test binary.
fn component() -> Artifact {
    static A: OnceLock<Artifact> = OnceLock::new();
    A.get_or_init(|| {
        build_echo_http(&BuildOptions::default()).unwrap_or_else(|e| panic!("building: {e}"))
    })
    .clone()
}

/// A host serving on a background thread; stopped in `Drop`.
struct Served {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), RuntimeError>>>,
}

impl Served {
    fn start(cfg: WasiHttpConfig) -> Served {
        let host = WasiHttpHost::new(cfg).unwrap_or_else(|e| panic!("{e}"));
        let addr = host.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || host.serve(&stop))
        };
        wait_ready(addr, "/healthz", Duration::from_secs(60)).unwrap();
        Served {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let r = t.join().expect("host thread panicked");
            if !std::thread::panicking() {
                r.expect("serve returned an error");
            }
        }
    }
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

fn cfg() -> WasiHttpConfig {
    let mut c = WasiHttpConfig::new(component().path);
    c.worker_threads = 2;
    // `GET /alloc?kb=65536` (the largest allowed) needs more than the wasi:http host's default
    // 64 MiB per instance (dlmalloc adds a header to each 64-byte object); give the component
    // what the socket builds get, with a small pool so the reservation stays small.
    c.max_memory_bytes = wasmbench_runtime::wasmtime::DEFAULT_MAX_MEMORY_BYTES;
    c.max_concurrent_requests = 16;
    c
}

#[test]
fn instance_per_request_answers_like_native() {
    same_as_native(cfg());
}

#[test]
fn reused_instances_answer_like_native() {
    let mut c = cfg();
    c.instance_reuse = 100;
    same_as_native(c);
}
