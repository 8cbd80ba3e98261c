//! Every workload endpoint (`/hash`, `/json`, `/alloc`, `/sleep`, plus `/` and `/healthz`) on
//! every socket build: native child process, embedded Wasmtime wasip2 and wasip1, and the
//! WasmEdge build under `wasmedge` (interpreter and AOT; a stand-in running the native echo when
//! WasmEdge is not on PATH, said in the output). Each answer is checked against values computed
//! here (SHA-256 chain, sorted JSON, the alloc checksum's closed form, the sleep's delay, the
//! `400` reason), and the Wasm hosts' raw responses must equal native's byte for byte. Under
//! each of them, a `GET /sleep` on one connection must not delay another connection.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    Client, EndpointCase, InProcess, Response, check_answer, embedded, endpoint_cases, run_cases,
    start_native, wasmedge,
};
use wasmbench_runtime::{ExecMode, Target};

/// The cases (built once: some bodies are large).
fn cases() -> &'static [EndpointCase] {
    static CASES: OnceLock<Vec<EndpointCase>> = OnceLock::new();
    CASES.get_or_init(endpoint_cases)
}

/// Sends every case to `addr`, checks every answer on its own and returns the raw responses.
fn answers(addr: SocketAddr) -> Vec<Vec<u8>> {
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

/// Asserts the answers of the server at `addr` (named `what`) equal native's byte for byte.
fn same_as_native_at(what: &str, addr: SocketAddr) {
    let got = answers(addr);
    let native = native_answers();
    let mut differ = Vec::new();
    for ((case, g), n) in cases().iter().zip(&got).zip(native) {
        if g != n {
            differ.push(format!(
                "{}:\n  {what}: {:?}\n  native: {:?}",
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
    println!("{what}: {} answers equal native's byte for byte", got.len());
}

fn same_as_native(target: Target) {
    let host = InProcess::start(embedded(target));
    same_as_native_at(&target.to_string(), host.addr);
    host.finish().unwrap();
}

fn wasmedge_same_as_native(mode: ExecMode) {
    let server = wasmedge::launch(mode);
    same_as_native_at(&format!("wasmedge-{mode}"), server.addr);
    server.stop().unwrap();
}

/// How long the held request sleeps.
const SLEEP: Duration = Duration::from_millis(300);

/// One connection asks for `GET /sleep?ms=300`; meanwhile another connection's `GET /` must be
/// answered without waiting for it. The sleeping connection pipelines a `GET /healthz` before
/// the sleep in the same write: its answer shows the server has read (and parsed) the sleep
/// request before the other connection asks, and a server that blocks on the sleep before
/// sending what it already answered is caught by it too.
fn sleep_does_not_delay_another_connection(what: &str, addr: SocketAddr) {
    let mut sleeper = Client::connect(addr);
    let mut other = Client::connect(addr);
    let start = Instant::now();
    sleeper.send(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /sleep?ms={} HTTP/1.1\r\nHost: t\r\n\r\n",
            SLEEP.as_millis()
        )
        .as_bytes(),
    );
    let first = Response::parse(&sleeper.read_response());
    let first_at = start.elapsed();
    assert_eq!((first.status, &first.body[..]), (200, &b"ok"[..]), "{what}");
    other.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let plain = Response::parse(&other.read_response());
    let plain_at = start.elapsed();
    assert_eq!(
        (plain.status, &plain.body[..]),
        (200, &b"echo: "[..]),
        "{what}"
    );
    let slept = Response::parse(&sleeper.read_response());
    let slept_at = start.elapsed();
    assert_eq!(
        (slept.status, String::from_utf8_lossy(&slept.body).as_ref()),
        (200, format!("slept {} ms", SLEEP.as_millis()).as_str()),
        "{what}"
    );
    println!(
        "{what}: /healthz before the sleep after {first_at:?}, the other connection's GET / \
         after {plain_at:?}, the {SLEEP:?} sleep after {slept_at:?}"
    );
    assert!(
        slept_at >= SLEEP,
        "{what}: the sleep answered after {slept_at:?}"
    );
    assert!(
        first_at < SLEEP && plain_at < SLEEP,
        "{what}: a sleeping connection delayed others: its own earlier answer after \
         {first_at:?}, another connection's GET / after {plain_at:?} (the sleep is {SLEEP:?})"
    );
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

#[test]
fn wasmedge_interpreter_answers_like_native_byte_for_byte() {
    wasmedge_same_as_native(ExecMode::Interpreter);
}

#[test]
fn wasmedge_aot_answers_like_native_byte_for_byte() {
    wasmedge_same_as_native(ExecMode::Aot);
}

#[test]
fn native_sleep_does_not_delay_another_connection() {
    let server = start_native();
    sleep_does_not_delay_another_connection("native", server.addr);
    server.stop().unwrap();
}

#[test]
fn wasmtime_wasip2_sleep_does_not_delay_another_connection() {
    let host = InProcess::start(embedded(Target::Wasip2));
    sleep_does_not_delay_another_connection("wasip2", host.addr);
    host.finish().unwrap();
}

#[test]
fn wasmtime_wasip1_sleep_does_not_delay_another_connection() {
    let host = InProcess::start(embedded(Target::Wasip1));
    sleep_does_not_delay_another_connection("wasip1", host.addr);
    host.finish().unwrap();
}

#[test]
fn wasmedge_sleep_does_not_delay_another_connection() {
    for mode in [ExecMode::Interpreter, ExecMode::Aot] {
        let server = wasmedge::launch(mode);
        sleep_does_not_delay_another_connection(&format!("wasmedge-{mode}"), server.addr);
        server.stop().unwrap();
    }
}
