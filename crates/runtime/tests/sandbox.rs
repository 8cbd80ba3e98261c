//! The embedded hosts' network sandbox, seen from guests that try to get out.
//!
//! `connect-probe` (tests/guests/connect-probe) listens where it is allowed, then tries a TCP
//! connect and a UDP send to sockets this test owns and reports each result on `GET /`. Under
//! the embedded host (wasip1 and wasip2) both attempts must fail and nothing may arrive; the
//! same source run natively must reach both sockets, which shows the probe would notice a
//! sandbox that let it through.
//!
//! `fetch-probe` (tests/guests/fetch-probe) is a `wasi:http/proxy` component that sends one
//! outgoing `GET` to the URL it is given. Under the embedded `wasi:http` host that request must
//! be refused (`HTTP-request-denied`) without reaching the test's listener, unless the
//! listener's address is on the host's allow-list, in which case its answer must come back.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{InProcess, Served, test_cache_dir};
use wasmbench_runtime::host::http::WasiHttpConfig;
use wasmbench_runtime::launch::http_get;
use wasmbench_runtime::{Artifact, BuildOptions, EmbeddedConfig, EmbeddedHost, Target};

const PROBE_PACKAGE: &str = "wasmbench-connect-probe";
const PROBE_BIN: &str = "connect-probe";

const FETCH_PACKAGE: &str = "wasmbench-fetch-probe";
const FETCH_FILE: &str = "wasmbench_fetch_probe.wasm";

/// How long an escaped connection or datagram gets to show up. The guest makes its attempts
/// before it answers `/healthz`, so anything that got through is already queued by then.
const NOTHING_ARRIVES_WITHIN: Duration = Duration::from_secs(2);

/// The probe built for `target` with the artifact profile (once per test binary).
fn probe(target: Target) -> Artifact {
    static CELLS: [OnceLock<Artifact>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Target::ALL.iter().position(|t| *t == target).unwrap();
    CELLS[i]
        .get_or_init(|| {
            let file = if target.is_wasm() {
                format!("{PROBE_BIN}.wasm")
            } else {
                PROBE_BIN.to_string()
            };
            wasmbench_runtime::build::build_workload(
                PROBE_PACKAGE,
                Some(PROBE_BIN),
                &file,
                target,
                &BuildOptions::default(),
            )
            .unwrap_or_else(|e| panic!("building {PROBE_PACKAGE} for {target}: {e}"))
        })
        .clone()
}

/// A TCP listener and a UDP socket on loopback that the guest is told to reach.
struct Targets {
    tcp: TcpListener,
    udp: UdpSocket,
}

/// What reached [`Targets`].
#[derive(Debug, Default, PartialEq, Eq)]
struct Arrived {
    /// Bytes sent on an accepted TCP connection (`Some` once a connection was accepted).
    tcp: Option<Vec<u8>>,
    /// The first datagram received.
    udp: Option<Vec<u8>>,
}

impl Targets {
    fn new() -> Targets {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        Targets { tcp, udp }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "CONNECT_TO".into(),
                self.tcp.local_addr().unwrap().to_string(),
            ),
            ("UDP_TO".into(), self.udp.local_addr().unwrap().to_string()),
        ]
    }

    /// Polls both sockets until both received something or `within` has passed.
    fn arrived(&self, within: Duration) -> Arrived {
        let deadline = Instant::now() + within;
        let mut got = Arrived::default();
        loop {
            if got.tcp.is_none()
                && let Ok((mut s, _)) = self.tcp.accept()
            {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut bytes = Vec::new();
                // The probe writes one line and closes; a timeout keeps what was read.
                let _ = s.read_to_end(&mut bytes);
                got.tcp = Some(bytes);
            }
            if got.udp.is_none() {
                let mut buf = [0u8; 1500];
                if let Ok((n, _)) = self.udp.recv_from(&mut buf) {
                    got.udp = Some(buf[..n].to_vec());
                }
            }
            if (got.tcp.is_some() && got.udp.is_some()) || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The probe's report line for `name` (`probe <name> <addr> ok|error <Kind>: <message>`).
fn line<'a>(report: &'a str, name: &str) -> &'a str {
    let prefix = format!("probe {name} ");
    report
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in the probe's report:\n{report}"))
}

fn assert_denied(target: Target, report: &str, name: &str, kinds: &[&str]) {
    let l = line(report, name);
    assert!(
        kinds.iter().any(|k| l.contains(&format!(" error {k}:"))),
        "{target}: the guest's {name} was not denied as expected ({kinds:?}): {l}"
    );
}

#[test]
fn wasm_guests_cannot_connect_or_send_beyond_their_listener() {
    for target in [Target::Wasip2, Target::Wasip1] {
        let targets = Targets::new();
        let mut cfg = EmbeddedConfig::new(target, probe(target).path);
        cfg.cache_dir = Some(test_cache_dir());
        cfg.env = targets.env();
        // Readiness through the listener proves the allowed part of the policy still works.
        let host = InProcess::start(cfg);
        let (status, body) = http_get(host.addr, "/", Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{target}: asking the probe for its report: {e}"));
        let report = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "{target}: {report}");

        // wasip2: the host's socket policy answers `access-denied` (PermissionDenied in the
        // guest). wasip1: the host offers no connect or UDP call at all, so the guest's std
        // reports them unsupported.
        let kinds: &[&str] = match target {
            Target::Wasip2 => &["PermissionDenied"],
            _ => &["Unsupported"],
        };
        assert_denied(target, &report, "tcp-connect", kinds);
        assert_denied(target, &report, "udp-send", kinds);

        let arrived = targets.arrived(NOTHING_ARRIVES_WITHIN);
        assert_eq!(
            arrived,
            Arrived::default(),
            "{target}: the guest reached the test's sockets"
        );
        host.finish()
            .unwrap_or_else(|e| panic!("{target}: stopping the host: {e}"));
    }
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_same_probe_natively_reaches_both_sockets() {
    let targets = Targets::new();
    let mut child = Guard(
        Command::new(probe(Target::Native).path)
            .envs(targets.env())
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read stdout on a thread so a silent child cannot hang the test.
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut report = String::new();
    while report.lines().filter(|l| l.starts_with("probe ")).count() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("the probe stopped reporting ({e}); so far:\n{report}"));
        report.push_str(&l);
        report.push('\n');
    }
    let listening = report
        .lines()
        .find_map(|l| l.strip_prefix("listening on "))
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no listening address:\n{report}"));
    assert!(line(&report, "tcp-connect").ends_with(" ok"), "{report}");
    assert!(line(&report, "udp-send").ends_with(" ok"), "{report}");

    let arrived = targets.arrived(Duration::from_secs(30));
    assert_eq!(
        arrived.tcp.as_deref(),
        Some(&b"connect-probe was here\n"[..]),
        "{report}"
    );
    assert_eq!(
        arrived.udp.as_deref(),
        Some(&b"connect-probe was here\n"[..]),
        "{report}"
    );

    // The report is also served, as the Wasm test reads it.
    let (status, body) = http_get(listening, "/", Duration::from_secs(30)).unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        report.replace(&format!("listening on {listening}\n"), "")
    );
}

/// A core module importing `wasi_snapshot_preview1::<import>` (a `(i32 i32 i32) -> i32`
/// function) and exporting `_start` and `memory`.
fn module_importing(import: &str) -> Vec<u8> {
    fn section(id: u8, content: &[u8]) -> Vec<u8> {
        let mut s = vec![id, u8::try_from(content.len()).unwrap()];
        s.extend_from_slice(content);
        s
    }
    fn name(s: &str) -> Vec<u8> {
        let mut v = vec![u8::try_from(s.len()).unwrap()];
        v.extend_from_slice(s.as_bytes());
        v
    }
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // Types: 0 = () -> (), 1 = (i32 i32 i32) -> i32.
    m.extend(section(
        1,
        &[2, 0x60, 0, 0, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f],
    ));
    let mut imports = vec![1];
    imports.extend(name("wasi_snapshot_preview1"));
    imports.extend(name(import));
    imports.extend([0x00, 1]);
    m.extend(section(2, &imports));
    m.extend(section(3, &[1, 0]));
    m.extend(section(5, &[1, 0, 1]));
    let mut exports = vec![2];
    exports.extend(name("_start"));
    exports.extend([0x00, 1]);
    exports.extend(name("memory"));
    exports.extend([0x02, 0]);
    m.extend(section(7, &exports));
    m.extend(section(10, &[1, 2, 0, 0x0b]));
    m
}

#[test]
fn wasip1_host_refuses_modules_that_import_a_connect_call() {
    // WasmEdge's preview 1 socket extension has `sock_open`/`sock_connect`; the embedded
    // host links neither, so such a module never starts. Each module's `_start` returns at
    // once, so `serve` returns by itself.
    let dir = tempfile::tempdir().unwrap();
    let serve = |import: &str| {
        let path = dir.path().join(format!("{import}.wasm"));
        std::fs::write(&path, module_importing(import)).unwrap();
        let mut cfg = EmbeddedConfig::new(Target::Wasip1, &path);
        cfg.cache_dir = Some(test_cache_dir());
        EmbeddedHost::new(cfg)
            .unwrap()
            .serve(&Arc::new(AtomicBool::new(false)))
    };
    for import in ["sock_connect", "sock_open"] {
        let err = serve(import)
            .err()
            .unwrap_or_else(|| panic!("a module importing {import} was run"))
            .to_string();
        assert!(
            err.contains("does not provide") && err.contains(import),
            "{import}: {err}"
        );
    }
    // The same module importing the socket call the host does provide (`sock_accept`, same
    // signature) runs: the refusal above is about the import, not the module's shape.
    serve("sock_accept").unwrap();
}

/// The `wasi:http` probe, built for wasm32-wasip2 with the artifact profile (once per test
/// binary).
fn fetch_probe() -> Artifact {
    static CELL: OnceLock<Artifact> = OnceLock::new();
    CELL.get_or_init(|| {
        wasmbench_runtime::build::build_workload(
            FETCH_PACKAGE,
            None,
            FETCH_FILE,
            Target::Wasip2,
            &BuildOptions::default(),
        )
        .unwrap_or_else(|e| panic!("building {FETCH_PACKAGE}: {e}"))
    })
    .clone()
}

/// The embedded `wasi:http` host serving the probe, with `allow` as its outbound allow-list.
fn serve_fetch_probe(allow: Vec<SocketAddr>) -> Served {
    let mut cfg = WasiHttpConfig::new(fetch_probe().path);
    cfg.worker_threads = 2;
    cfg.allow_outbound = allow;
    Served::start(cfg)
}

/// What the body of a loopback upstream's answer is.
const UPSTREAM_BODY: &[u8] = b"hello from the upstream\n";

/// A loopback listener owned by the test, non-blocking so waiting on it is bounded.
fn upstream() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// Waits up to `within` for one connection on `listener`; answers it `200` with
/// [`UPSTREAM_BODY`] and returns the request head it read. `None`: nobody connected.
fn answer_one(listener: &TcpListener, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut s = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        UPSTREAM_BODY.len()
    );
    let _ = s.write_all(reply.as_bytes());
    let _ = s.write_all(UPSTREAM_BODY);
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Asks the probe served at `host` to fetch `url`; its status and body as text.
fn fetch(host: SocketAddr, url: &str) -> (u16, String) {
    let (status, body) = http_get(host, &format!("/fetch?url={url}"), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("asking the probe to fetch {url}: {e}"));
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn assert_fetch_denied(host: SocketAddr, url: &str) {
    let (status, body) = fetch(host, url);
    assert_eq!(
        status, 502,
        "the guest's request to {url} was not refused: {body}"
    );
    assert!(
        body.contains("HttpRequestDenied"),
        "the guest's request to {url} failed, but not by the host's policy: {body}"
    );
}

#[test]
fn wasi_http_guests_cannot_send_requests_by_default() {
    let target = upstream();
    let addr = target.local_addr().unwrap();
    let host = serve_fetch_probe(Vec::new());
    assert_fetch_denied(host.addr, &format!("http://{addr}/"));
    assert!(
        answer_one(&target, NOTHING_ARRIVES_WITHIN).is_none(),
        "the guest's refused request still reached the test's listener"
    );
}

#[test]
fn wasi_http_guests_reach_exactly_the_allowed_authority() {
    let target = upstream();
    let addr = target.local_addr().unwrap();
    let host = serve_fetch_probe(vec![addr]);
    let url = format!("http://{addr}/hello?from=guest");
    let (head, (status, body)) = std::thread::scope(|scope| {
        let upstream = scope.spawn(|| answer_one(&target, Duration::from_secs(60)));
        let answer = fetch(host.addr, &url);
        (upstream.join().unwrap(), answer)
    });
    assert_eq!(status, 200, "fetching {url}: {body}");
    assert_eq!(body.as_bytes(), UPSTREAM_BODY);
    let head = head.expect("the allowed request did not reach the test's listener");
    assert!(
        head.starts_with("GET /hello?from=guest HTTP/1.1\r\n"),
        "the upstream saw: {head}"
    );

    // The same port under a host name is not on the list, and is refused before any lookup.
    assert_fetch_denied(host.addr, &format!("http://localhost:{}/", addr.port()));
    assert!(
        answer_one(&target, NOTHING_ARRIVES_WITHIN).is_none(),
        "a request by host name reached the test's listener"
    );
}

#[test]
fn an_allow_list_naming_another_port_still_denies() {
    let target = upstream();
    let addr = target.local_addr().unwrap();
    // A port this test holds, so the list names a real, different listener.
    let other = upstream();
    let host = serve_fetch_probe(vec![other.local_addr().unwrap()]);
    assert_fetch_denied(host.addr, &format!("http://{addr}/"));
    assert!(
        answer_one(&target, NOTHING_ARRIVES_WITHIN).is_none(),
        "a request to an address off the list reached the test's listener"
    );
    assert!(
        answer_one(&other, Duration::ZERO).is_none(),
        "the allowed listener got a connection nobody asked for"
    );
}
