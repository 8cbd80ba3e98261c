//! Every workload endpoint (`/hash`, `/json`, `/alloc`, `/sleep`, plus `/` and `/healthz`) on
//! every socket build: native child process, embedded Wasmtime wasip2 and wasip1. Each answer is
//! checked against values computed here (SHA-256 chain, sorted JSON, the alloc checksum's closed
//! form, the sleep's delay, the `400` reason), and the Wasm hosts' raw responses must equal
//! native's byte for byte.

mod common;

use std::sync::OnceLock;

use common::{
    EndpointCase, InProcess, Response, check_answer, embedded, endpoint_cases, run_cases,
    start_native,
};
use wasmbench_runtime::Target;

/// The cases (built once: some bodies are large).
fn cases() -> &'static [EndpointCase] {
    static CASES: OnceLock<Vec<EndpointCase>> = OnceLock::new();
    CASES.get_or_init(endpoint_cases)
}

/// Sends every case to `addr`, checks every answer on its own and returns the raw responses.
fn answers(addr: std::net::SocketAddr) -> Vec<Vec<u8>> {
    let cases = cases();
    let exchanges = run_cases(addr, cases);
    assert_eq!(exchanges.len(), cases.len());
    for (case, ex) in cases.iter().zip(&exchanges) {
        let resp = Response::parse(&ex.raw);
        check_answer(case, &resp, ex.elapsed);
        // The framing is the workload's writer's, byte for byte: status line, content type,
        // `allow` on 405, length, `connection: close` when asked to close.
        let allow = resp.header("allow").map(|a| [("allow", a)]);
        let mut want = Vec::new();
        wasmbench_echo::http::write_response_as(
            &mut want,
            resp.status,
            resp.header("content-type").unwrap(),
            allow.as_ref().map_or(&[][..], |h| &h[..]),
            &[&resp.body],
            !case.close,
            false,
        );
        assert!(
            ex.raw == want,
            "{}: framing differs:\n{:?}\nwant\n{:?}",
            case.name,
            String::from_utf8_lossy(&ex.raw[..ex.raw.len().min(400)]),
            String::from_utf8_lossy(&want[..want.len().min(400)])
        );
    }
    exchanges.into_iter().map(|e| e.raw).collect()
}

/// Native's raw answers, from one server run shared by the tests of this binary.
fn native_answers() -> &'static [Vec<u8>] {
    static NATIVE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    NATIVE.get_or_init(|| {
        let server = start_native();
        answers(server.addr)
    })
}

fn same_as_native(target: Target) {
    let host = InProcess::start(embedded(target));
    let got = answers(host.addr);
    let native = native_answers();
    let mut differ = Vec::new();
    for ((case, g), n) in cases().iter().zip(&got).zip(native) {
        if g != n {
            differ.push(format!(
                "{}:\n  {target}: {:?}\n  native: {:?}",
                case.name,
                String::from_utf8_lossy(&g[..g.len().min(300)]),
                String::from_utf8_lossy(&n[..n.len().min(300)])
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
    host.finish().unwrap();
}

#[test]
fn native_answers_every_endpoint() {
    assert_eq!(native_answers().len(), cases().len());
}

#[test]
fn wasmtime_wasip2_answers_like_native_byte_for_byte() {
    same_as_native(Target::Wasip2);
}

#[test]
fn wasmtime_wasip1_answers_like_native_byte_for_byte() {
    same_as_native(Target::Wasip1);
}
