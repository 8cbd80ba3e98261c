//! Shared test helpers: built artifacts (once per test binary), an in-process embedded host
//! that stops in `Drop`, and a tiny HTTP/1.1 client that keeps raw response bytes.
#![allow(dead_code)]

pub mod wasmedge;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmbench_runtime::host::http::{WasiHttpConfig, WasiHttpHost};
use wasmbench_runtime::launch::wait_ready;
use wasmbench_runtime::{
    Artifact, BuildOptions, EmbeddedConfig, EmbeddedHost, RuntimeError, Target, build_echo,
};

/// Generous per-operation timeout: the machine is shared and may be busy.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The workload built for `target` (built once per test binary).
pub fn artifact(target: Target) -> Artifact {
    static CELLS: [OnceLock<Artifact>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Target::ALL.iter().position(|t| *t == target).unwrap();
    CELLS[i]
        .get_or_init(|| {
            build_echo(target, &BuildOptions::default())
                .unwrap_or_else(|e| panic!("building echo for {target}: {e}"))
        })
        .clone()
}

/// `.cwasm` cache shared by the tests (inside the artifacts target directory).
pub fn test_cache_dir() -> PathBuf {
    BuildOptions::default().target_dir().join("cwasm-test")
}

/// An embedded host serving on a background thread of this process; stopped in `Drop`.
pub struct InProcess {
    pub host: Arc<EmbeddedHost>,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), RuntimeError>>>,
}

impl InProcess {
    /// Starts `cfg` and waits until `/healthz` answers.
    pub fn start(cfg: EmbeddedConfig) -> InProcess {
        Self::try_start(cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `cfg`; `Err` carries the host's error when it stops before listening.
    pub fn try_start(cfg: EmbeddedConfig) -> Result<InProcess, String> {
        let host = Arc::new(EmbeddedHost::new(cfg).map_err(|e| e.to_string())?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let host = Arc::clone(&host);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || host.serve(&stop))
        };
        let mut this = InProcess {
            addr: "127.0.0.1:0".parse().unwrap(),
            host,
            stop,
            thread: Some(thread),
        };
        // Bounded: wait for the address, but give up early when the host thread ended.
        for _ in 0..600 {
            if let Some(a) = this.host.wait_listening(Duration::from_millis(50)) {
                this.addr = wasmbench_runtime::launch::connectable(a);
                wait_ready(this.addr, "/healthz", Duration::from_secs(30))?;
                return Ok(this);
            }
            if this.thread.as_ref().is_some_and(|t| t.is_finished()) {
                let r = this.thread.take().unwrap().join().unwrap();
                return Err(match r {
                    Ok(()) => "the guest exited before listening".into(),
                    Err(e) => e.to_string(),
                });
            }
        }
        Err("the guest did not listen within 30 s".into())
    }

    /// Stops the host and returns what `serve` returned.
    pub fn finish(mut self) -> Result<(), RuntimeError> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }

    /// Waits (bounded) until `serve` returns by itself and gives its result.
    pub fn wait_exit(mut self, timeout: Duration) -> Option<Result<(), RuntimeError>> {
        let t = self.thread.as_ref()?;
        let deadline = std::time::Instant::now() + timeout;
        while !t.is_finished() {
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.thread.take().map(|t| t.join().unwrap())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An embedded `wasi:http` host serving on a background thread; stopped in `Drop`.
pub struct Served {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), RuntimeError>>>,
}

impl Served {
    /// Starts `cfg` and waits until `/healthz` answers.
    pub fn start(cfg: WasiHttpConfig) -> Served {
        let host = WasiHttpHost::new(cfg).unwrap_or_else(|e| panic!("{e}"));
        let addr = host.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || host.serve(&stop))
        };
        // The listener is bound before `serve`, so connections queue until it runs.
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

/// Embedded config for a built artifact with the shared test cache.
pub fn embedded(target: Target) -> EmbeddedConfig {
    let mut cfg = EmbeddedConfig::new(target, artifact(target).path);
    cfg.cache_dir = Some(test_cache_dir());
    cfg
}

/// One client connection that reads whole responses and keeps any bytes beyond them.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one response (head + `content-length` body) and returns its raw bytes.
    pub fn read_response(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 64 << 10];
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self.stream.read(&mut chunk).expect("read head");
            assert!(
                n > 0,
                "connection closed mid-head after {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("content-length"))
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            let n = self.stream.read(&mut chunk).expect("read body");
            assert!(n > 0, "connection closed mid-body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.buf.drain(..head_end + len).collect()
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub fn expect_eof(&mut self) {
        assert!(self.buf.is_empty(), "unexpected bytes {:?}", self.buf);
        let mut b = [0u8; 1024];
        match self.stream.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&b[..n])),
            // A reset after the full response also means the server closed it.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }
}

/// A POST request with `body`.
pub fn post(path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The exact bytes the workload answers for an echo of `body` (the workload's own writer is
/// the reference).
pub fn expected_echo(body: &[u8], keep_alive: bool, seed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    wasmbench_echo::http::write_response(&mut out, 200, &[b"echo: ", body], keep_alive, seed);
    out
}

/// Deterministic, non-repeating-looking body bytes.
pub fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i * 7 + i / 251) % 26) as u8)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Workload endpoints: one list of requests with independently computed answers, used by
// `tests/endpoints.rs` (socket builds) and `tests/wasi_http.rs` (wasi:http component).

/// The 4 KiB JSON document shipped with the workload.
pub const DOC_4K: &[u8] = include_bytes!("../../../echo/data/doc-4k.json");

/// What a correct answer is, known without running the workload's code.
#[derive(Debug, Clone)]
pub enum Want {
    /// `200 text/plain` with exactly this body.
    Text(Vec<u8>),
    /// `200 application/json`: this input, compact, every object's keys sorted.
    Json(Vec<u8>),
    /// `200 slept N ms`, not answered before `N` ms.
    Sleep(u64),
    /// `400 text/plain` with a one-line reason that contains this text (the parameter's name).
    Bad(String),
    /// `405` with `allow: <methods>`.
    WrongMethod(&'static str),
}

/// One request and its expected answer.
#[derive(Debug, Clone)]
pub struct EndpointCase {
    /// Method and target, for messages.
    pub name: String,
    /// The raw request.
    pub request: Vec<u8>,
    /// Whether the request asks for `Connection: close`.
    pub close: bool,
    /// The expected answer.
    pub want: Want,
}

/// SHA-256 chained `rounds` times as `docs/workloads.md` defines it:
/// `d1 = H(body)`, `dk = H(d(k-1) ‖ body)`.
pub fn hash_chain_hex(body: &[u8], rounds: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut d = Sha256::digest(body);
    for _ in 1..rounds {
        let mut h = Sha256::new();
        h.update(d);
        h.update(body);
        d = h.finalize();
    }
    hex::encode(d)
}

/// The `/alloc` answer from the documented closed form: `kb × 16` objects, checksum
/// `W·(W−1)/2` with `W = kb × 128`.
pub fn alloc_line(kb: u64) -> String {
    let w = kb * 128;
    format!(
        "alloc kb={kb} objects={} checksum={}",
        kb * 16,
        w * w.saturating_sub(1) / 2
    )
}

/// `v` serialised compactly with every object's keys sorted by byte order, without relying on
/// the map order of `serde_json::Value`.
pub fn sorted_json(v: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    walk(&m[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    walk(x, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&serde_json::to_string(scalar).unwrap()),
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

fn request_bytes(method: &str, target: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n").into_bytes();
    if method == "POST" || !body.is_empty() {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    if close {
        r.extend_from_slice(b"Connection: close\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// Every endpoint with several parameter values, every bad parameter form and every wrong
/// method. Cases with `close` end their connection; the next case opens a new one.
pub fn endpoint_cases() -> Vec<EndpointCase> {
    let mut cases = Vec::new();
    let mut add = |method: &str, target: &str, body: &[u8], close: bool, want: Want| {
        cases.push(EndpointCase {
            name: format!("{method} {target} ({} B body)", body.len()),
            request: request_bytes(method, target, body, close),
            close,
            want,
        });
    };
    let text = |s: &str| Want::Text(s.as_bytes().to_vec());
    let bad = |s: &str| Want::Bad(s.to_string());

    add("GET", "/healthz", b"", false, text("ok"));
    add("GET", "/", b"", false, text("echo: "));
    add(
        "POST",
        "/any/path?x=1",
        b"hello",
        false,
        text("echo: hello"),
    );

    // POST /hash: rounds 1, 100 and the default, over 0 B, 1 KiB and 64 KiB.
    for len in [0usize, 1 << 10, 64 << 10] {
        let b = body(len);
        for rounds in [Some(1u64), Some(100), None] {
            let target = match rounds {
                Some(r) => format!("/hash?rounds={r}"),
                None => "/hash".to_string(),
            };
            let want = hash_chain_hex(&b, rounds.unwrap_or(1));
            add("POST", &target, &b, false, text(&want));
        }
    }
    // FIPS 180-2 test vector.
    add(
        "POST",
        "/hash",
        b"abc",
        false,
        text("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    );
    add(
        "POST",
        "/hash?rounds=100000",
        b"",
        false,
        text(&hash_chain_hex(b"", 100_000)),
    );
    add(
        "POST",
        "/hash?&rounds=2&",
        b"xy",
        false,
        text(&hash_chain_hex(b"xy", 2)),
    );
    add(
        "POST",
        "/hash?",
        b"z",
        false,
        text(&hash_chain_hex(b"z", 1)),
    );
    add(
        "POST",
        "/hash?rounds=7",
        b"closing",
        true,
        text(&hash_chain_hex(b"closing", 7)),
    );
    for (target, names) in [
        ("/hash?rounds=", "rounds=\"\""),
        ("/hash?rounds", "rounds=\"\""),
        ("/hash?rounds=abc", "rounds=\"abc\""),
        ("/hash?rounds=-1", "rounds=\"-1\""),
        ("/hash?rounds=1.5", "rounds=\"1.5\""),
        (
            "/hash?rounds=18446744073709551616",
            "rounds=\"18446744073709551616\"",
        ),
        ("/hash?rounds=0", "rounds=\"0\""),
        ("/hash?rounds=100001", "rounds=\"100001\""),
        ("/hash?round=5", "\"round\""),
        ("/hash?rounds=1&x=2", "\"x\""),
        ("/hash?rounds=1&rounds=2", "`rounds` is given twice"),
    ] {
        add("POST", target, b"x", false, bad(names));
    }
    // rounds × (body + 32) over the 256 MiB work limit.
    add(
        "POST",
        "/hash?rounds=1000",
        &body(1 << 20),
        false,
        bad("rounds=1000"),
    );
    add("GET", "/hash", b"", false, Want::WrongMethod("POST"));
    add(
        "GET",
        "/hash?rounds=abc",
        b"",
        false,
        Want::WrongMethod("POST"),
    );

    // POST /json.
    add("POST", "/json", DOC_4K, false, Want::Json(DOC_4K.to_vec()));
    let json_ok: [&[u8]; 10] = [
        br#"{"b":1,"a":{"d":[3,{"z":null,"y":true}],"c":"x"},"aa":[],"A":{}}"#,
        "{\"é\":\"\\u00e9\",\"a\":\"😀 \\ud83d\\ude00\",\"\\u0000\":\"nul\",\"A\":\"\\\"q\\\"\\n\\t\\\\\",\"日本\":\"語\"}"
            .as_bytes(),
        br#"[1.50,1e3,-0,0.1,-9223372036854775808,18446744073709551615,1.7976931348623157e308,5e-324,123456789012345678901234567890,-1.5E-7]"#,
        br#""just a string""#,
        b"42",
        b"null",
        b"[]",
        b"{}",
        b" \t{ \"k\" :\r\n [ 1 , 2 ] , \"j\" : false }\n ",
        br#"{"dup":1,"dup":2}"#,
    ];
    for doc in json_ok {
        add("POST", "/json", doc, false, Want::Json(doc.to_vec()));
    }
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    add("POST", "/json", &deep(100), false, Want::Json(deep(100)));
    for (doc, reason) in [
        (b"".to_vec(), "invalid JSON: EOF while parsing"),
        (b"{\"a\":".to_vec(), "invalid JSON: EOF while parsing"),
        (b"[1,2]x".to_vec(), "invalid JSON: trailing characters"),
        (b"{'a':1}".to_vec(), "invalid JSON: key must be a string"),
        (b"[1e400]".to_vec(), "invalid JSON: number out of range"),
        (deep(200), "invalid JSON: recursion limit exceeded"),
        (
            b"[\"\xff\"]".to_vec(),
            "invalid JSON: invalid unicode code point",
        ),
        (b"[tru]".to_vec(), "invalid JSON: expected ident"),
    ] {
        add("POST", "/json", &doc, false, bad(reason));
    }
    add("POST", "/json?pretty=1", b"{}", false, bad("\"pretty=1\""));
    add("GET", "/json", b"", false, Want::WrongMethod("POST"));

    // GET /alloc.
    for kb in [0u64, 1, 256, 65536] {
        add(
            "GET",
            &format!("/alloc?kb={kb}"),
            b"",
            false,
            text(&alloc_line(kb)),
        );
    }
    add("GET", "/alloc", b"", false, text(&alloc_line(1024)));
    for (target, names) in [
        ("/alloc?kb=", "kb=\"\""),
        ("/alloc?kb=abc", "kb=\"abc\""),
        ("/alloc?kb=-1", "kb=\"-1\""),
        ("/alloc?kb=65537", "kb=\"65537\""),
        (
            "/alloc?kb=99999999999999999999",
            "kb=\"99999999999999999999\"",
        ),
        ("/alloc?size=1", "\"size\""),
        ("/alloc?kb=1&kb=1", "`kb` is given twice"),
    ] {
        add("GET", target, b"", false, bad(names));
    }
    add("POST", "/alloc?kb=1", b"", false, Want::WrongMethod("GET"));
    add("GET", "/alloc?kb=1", b"", true, text(&alloc_line(1)));

    // GET /sleep.
    add("GET", "/sleep?ms=0", b"", false, Want::Sleep(0));
    add("GET", "/sleep?ms=5", b"", false, Want::Sleep(5));
    add("GET", "/sleep", b"", false, Want::Sleep(100));
    for (target, names) in [
        ("/sleep?ms=", "ms=\"\""),
        ("/sleep?ms=-5", "ms=\"-5\""),
        ("/sleep?ms=1.5", "ms=\"1.5\""),
        ("/sleep?ms=60001", "ms=\"60001\""),
        (
            "/sleep?ms=18446744073709551616",
            "ms=\"18446744073709551616\"",
        ),
        ("/sleep?seconds=1", "\"seconds\""),
    ] {
        add("GET", target, b"", false, bad(names));
    }
    add("POST", "/sleep", b"x", false, Want::WrongMethod("GET"));
    add("GET", "/sleep?ms=5", b"", true, Want::Sleep(5));

    // Chunked request body: the same digest as with Content-Length.
    let b = body(1 << 10);
    let mut chunked =
        b"POST /hash?rounds=3 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for part in b.chunks(300) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    cases.push(EndpointCase {
        name: "POST /hash?rounds=3 (chunked 1 KiB body)".into(),
        request: chunked,
        close: false,
        want: Want::Text(hash_chain_hex(&b, 3).into_bytes()),
    });
    cases
}

/// A response split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines as `(lower-case name, value)`, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Splits a raw HTTP/1.1 response as read by [`Client::read_response`].
    pub fn parse(raw: &[u8]) -> Response {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head")
            + 4;
        let head = std::str::from_utf8(&raw[..end - 4]).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header {l:?}"));
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Response {
            status,
            headers,
            body: raw[end..].to_vec(),
        }
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One answered case: the raw response and the time from sending the request to reading the
/// whole answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Raw response bytes.
    pub raw: Vec<u8>,
    /// Request sent → response read.
    pub elapsed: Duration,
}

/// Sends `cases` in order over keep-alive connections to `addr` (a new connection after each
/// `close` case, which must end with the server closing) and returns the exchanges.
pub fn run_cases(addr: SocketAddr, cases: &[EndpointCase]) -> Vec<Exchange> {
    let mut out = Vec::with_capacity(cases.len());
    let mut client: Option<Client> = None;
    for case in cases {
        let c = client.get_or_insert_with(|| Client::connect(addr));
        let start = std::time::Instant::now();
        c.send(&case.request);
        let raw = c.read_response();
        out.push(Exchange {
            raw,
            elapsed: start.elapsed(),
        });
        if case.close {
            c.expect_eof();
            client = None;
        }
    }
    out
}

/// Asserts `resp` is the right answer to `case`, from values computed in the test (never from
/// another server's answer).
pub fn check_answer(case: &EndpointCase, resp: &Response, elapsed: Duration) {
    let name = &case.name;
    let body_text = String::from_utf8_lossy(&resp.body);
    let shown: String = body_text.chars().take(300).collect();
    let content_type = resp.header("content-type");
    match &case.want {
        Want::Text(want) => {
            assert_eq!(resp.status, 200, "{name}: {shown}");
            assert_eq!(content_type, Some("text/plain; charset=utf-8"), "{name}");
            assert!(
                resp.body == *want,
                "{name}: got {shown:?}, want {:?}",
                String::from_utf8_lossy(want)
            );
        }
        Want::Json(input) => {
            assert_eq!(resp.status, 200, "{name}: {shown}");
            assert_eq!(content_type, Some("application/json"), "{name}");
            let sent: serde_json::Value = serde_json::from_slice(input).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&resp.body)
                .unwrap_or_else(|e| panic!("{name}: answer is not JSON ({e}): {shown}"));
            assert_eq!(got, sent, "{name}: parses to a different value");
            assert_eq!(
                body_text,
                sorted_json(&sent),
                "{name}: not compact and sorted"
            );
        }
        Want::Sleep(ms) => {
            assert_eq!(resp.status, 200, "{name}: {shown}");
            assert_eq!(content_type, Some("text/plain; charset=utf-8"), "{name}");
            assert_eq!(body_text, format!("slept {ms} ms"), "{name}");
            assert!(
                elapsed >= Duration::from_millis(*ms),
                "{name}: answered after {elapsed:?}"
            );
        }
        Want::Bad(needle) => {
            assert_eq!(resp.status, 400, "{name}: {shown}");
            assert_eq!(content_type, Some("text/plain; charset=utf-8"), "{name}");
            let reason = std::str::from_utf8(&resp.body)
                .unwrap_or_else(|_| panic!("{name}: reason is not UTF-8: {shown}"));
            assert!(
                reason.contains(needle.as_str()),
                "{name}: {reason:?} lacks {needle:?}"
            );
            assert!(
                !reason.is_empty() && !reason.contains(['\n', '\r']),
                "{name}: not one line: {reason:?}"
            );
        }
        Want::WrongMethod(allow) => {
            assert_eq!(resp.status, 405, "{name}: {shown}");
            assert_eq!(resp.header("allow"), Some(*allow), "{name}");
            let path = name.split(' ').nth(1).unwrap().split('?').next().unwrap();
            assert_eq!(body_text, format!("{path} takes {allow}"), "{name}");
        }
    }
}

/// Starts the native build as a child process (killed on drop).
pub fn start_native() -> wasmbench_runtime::RunningServer {
    use wasmbench_runtime::Runtime;
    let spec = wasmbench_runtime::LaunchSpec::new(artifact(wasmbench_runtime::Target::Native));
    wasmbench_runtime::Native
        .launch(&spec)
        .unwrap_or_else(|e| panic!("{e}"))
}
