//! The embedded host's network sandbox, seen from a guest that tries to get out.
//!
//! `connect-probe` (tests/guests/connect-probe) listens where it is allowed, then tries a TCP
//! connect and a UDP send to sockets this test owns and reports each result on `GET /`. Under
//! the embedded host (wasip1 and wasip2) both attempts must fail and nothing may arrive; the
//! same source run natively must reach both sockets, which shows the probe would notice a
//! sandbox that let it through.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{InProcess, test_cache_dir};
use wasmbench_runtime::process::http_get;
use wasmbench_runtime::{Artifact, BuildOptions, EmbeddedConfig, EmbeddedHost, Target};

const PROBE_PACKAGE: &str = "wasmbench-connect-probe";
const PROBE_BIN: &str = "connect-probe";

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
            wasmbench_runtime::cli::build_workload(
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
