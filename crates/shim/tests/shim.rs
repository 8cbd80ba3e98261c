//! The shim without containerd: its version/info paths, and its sandbox running the real
//! wasip2 echo (built from crates/echo) and the connect probe, answered over real HTTP on
//! 127.0.0.1. In a cluster containerd-shim-wasm puts the same sandbox inside the container;
//! that part needs containerd and is tested with the cluster.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use containerd_shim_wasm::sandbox::context::{Entrypoint, RuntimeContext, Source, WasmLayer};
use containerd_shim_wasm::shim::Compiler;
use wasmbench_runtime::launch::{HOST_REPORT_PREFIX, http_get};
use wasmbench_runtime::{BuildOptions, HostReport, Target};
use wasmbench_shim::guest::Serving;
use wasmbench_shim::{DirectContext, WasmbenchCompiler, WasmbenchSandbox};
use wasmbench_vocab::ExecMode;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmbench-v1");
/// Compiling the echo component with Cranelift plus instantiating it; generous for 2 busy cores.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The wasip2 echo, built once per test binary with the artifact profile (as the image is).
fn echo_wasm() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        wasmbench_runtime::build_echo(Target::Wasip2, &BuildOptions::default())
            .unwrap_or_else(|e| panic!("building the wasip2 echo: {e}"))
            .path
    })
    .clone()
}

/// A loopback port that was free a moment ago (the guest binds it itself, by number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn echo_env(port: u16) -> Vec<String> {
    vec![format!("PORT={port}"), "ECHO_HOST=127.0.0.1".into()]
}

/// `POST /` with `body` on a fresh connection; the status and body of the answer.
fn post(addr: SocketAddr, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// Polls `GET /healthz` until it answers 200.
fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        match http_get(addr, "/healthz", Duration::from_secs(2)) {
            Ok((200, body)) => {
                // The echo answers `ok`, the connect probe `ok\n`.
                assert_eq!(body.trim_ascii(), b"ok");
                return;
            }
            r if Instant::now() >= deadline => {
                panic!("{addr} not healthy within {READY_WITHIN:?}: {r:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs `ctx` under the sandbox on a runtime of its own (as containerd-shim-wasm's ambient
/// one); sending on the returned channel stops it with that status.
fn run_in_sandbox<C: RuntimeContext + 'static>(
    ctx: C,
) -> (
    tokio::sync::oneshot::Sender<i32>,
    std::thread::JoinHandle<Result<i32, String>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<i32>();
    let t = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(WasmbenchSandbox.run_until(&ctx, async move { stop_rx.await.unwrap_or(-1) }))
            .map_err(|e| e.to_string())
    });
    (stop_tx, t)
}

#[test]
fn version_flag_prints_one_parsable_line() {
    let out = Command::new(SHIM).arg("--version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let info = wasmbench_shim::parse_version_line(&stdout).unwrap();
    assert_eq!(info.name, "wasmbench-shim");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.mode, ExecMode::CraneliftJit);
    assert_eq!(info.target, Target::Wasip2);
    assert_eq!(
        info.details["wasmtime_version"],
        wasmbench_runtime::host::WASMTIME_VERSION
    );
    assert_eq!(info.details["runtime_type"], "io.containerd.wasmbench.v1");
}

#[test]
fn containerds_version_and_info_flags_name_the_runtime() {
    // `-v` is containerd's shim flag (containerd-shimkit prints it).
    let out = Command::new(SHIM).arg("-v").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Runtime: wasmbench"), "{text}");
    assert!(
        text.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // `-info` (containerd 2's runtime introspection) writes a protobuf RuntimeInfo.
    let out = Command::new(SHIM).arg("-info").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.windows(9).any(|w| w == b"wasmbench"),
        "{:?}",
        out.stdout
    );
}

#[test]
fn sandbox_serves_the_echo_and_stops_with_the_stop_status() {
    let port = free_port();
    let wasm = echo_wasm();
    let ctx = DirectContext::new(vec![wasm.display().to_string()], echo_env(port));
    let (stop, guest) = run_in_sandbox(ctx);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_healthy(addr);
    assert_eq!(post(addr, "hello shim"), (200, "echo: hello shim".into()));
    stop.send(143).unwrap();
    assert_eq!(guest.join().unwrap(), Ok(143));
    // The guest's listener is closed once the sandbox returns.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

/// The context containerd-shim-wasm builds for an image with Wasm layers.
struct LayerContext {
    args: Vec<String>,
    envs: Vec<String>,
    layers: Vec<WasmLayer>,
}

impl RuntimeContext for LayerContext {
    fn args(&self) -> &[String] {
        &self.args
    }
    fn envs(&self) -> &[String] {
        &self.envs
    }
    fn entrypoint(&self) -> Entrypoint<'_> {
        Entrypoint {
            func: "_start".into(),
            name: None,
            arg0: self.args.first().map(Path::new),
            source: Source::Oci(&self.layers),
        }
    }
}

fn layer(bytes: Vec<u8>, precompiled: bool) -> WasmLayer {
    let descriptor = serde_json::json!({
        "mediaType": "application/wasm",
        "size": bytes.len(),
        "digest": format!("sha256:{}", "0".repeat(64)),
    });
    WasmLayer {
        config: serde_json::from_value(descriptor).unwrap(),
        precompiled,
        layer: bytes,
    }
}

#[test]
fn precompiled_layers_are_compiled_once_and_served() {
    let wasm = std::fs::read(echo_wasm()).unwrap();
    let compiler = WasmbenchCompiler::new();
    // What containerd-shim-wasm asks for an image's layers: one answer per layer; nothing for
    // a core module or code that is compiled already.
    let module = b"\0asm\x01\0\0\0".to_vec();
    let out = futures_lite_block_on(compiler.compile(&[
        layer(wasm.clone(), false),
        layer(module, false),
        layer(wasm.clone(), true),
    ]))
    .unwrap();
    assert_eq!(out.len(), 3);
    assert!(out[1].is_none() && out[2].is_none());
    let cwasm = out[0].clone().expect("the component is compiled");
    assert!(wasmtime::Engine::detect_precompiled(&cwasm).is_some());
    assert_eq!(compiler.compile_layer(&cwasm).unwrap(), None);

    let port = free_port();
    let ctx = LayerContext {
        args: vec!["/echo.wasm".into()],
        envs: echo_env(port),
        layers: vec![layer(cwasm, true)],
    };
    let (stop, guest) = run_in_sandbox(ctx);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_healthy(addr);
    assert_eq!(post(addr, "cached"), (200, "echo: cached".into()));
    stop.send(0).unwrap();
    assert_eq!(guest.join().unwrap(), Ok(0));
}

/// `Compiler::compile` is async; it does not await anything, so a current-thread runtime runs it.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// The binary's `--run`, killed on drop.
struct Shim {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Shim {
    fn run(wasm: &Path, env: &[(&str, String)]) -> Shim {
        let mut child = Command::new(SHIM)
            .arg("--run")
            .arg(wasm)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |r: Box<dyn Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Shim {
            child,
            stdout,
            stderr,
        }
    }

    fn line(rx: &mpsc::Receiver<String>, prefix: &str, what: &str) -> String {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(e) => panic!("no {what} line ({e})"),
            }
        }
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "the shim did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn run_flag_serves_reports_and_exits_143_on_sigterm() {
    let shim = Shim::run(
        &echo_wasm(),
        &[("PORT", "0".into()), ("ECHO_HOST", "127.0.0.1".into())],
    );
    // The guest picks the port (PORT=0) and says which on stdout, as in a pod's log.
    let addr: SocketAddr = Shim::line(&shim.stdout, "listening on ", "listening")
        .parse()
        .unwrap();
    let report: HostReport =
        serde_json::from_str(&Shim::line(&shim.stderr, HOST_REPORT_PREFIX, "host report")).unwrap();
    assert_eq!(report.mode, ExecMode::CraneliftJit);
    assert_eq!(report.target, Target::Wasip2);
    assert!(report.pooling && report.compile_ms.is_some() && report.instantiate_ms.is_some());
    wait_healthy(addr);
    assert_eq!(post(addr, "over --run"), (200, "echo: over --run".into()));

    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(
        unsafe { libc::kill(shim.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = shim.wait();
    assert_eq!(status.code(), Some(143), "{status:?}");
}

#[test]
fn run_flag_explains_what_it_cannot_run() {
    let dir = std::env::temp_dir().join(format!("wasmbench-shim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join("p1.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let out = Command::new(SHIM)
        .arg("--run")
        .arg(&module)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("core Wasm module") && stderr.contains("wasm32-wasip2"),
        "{stderr}"
    );
}

/// The probe's line for `name` (`probe <name> <addr> ok|error <Kind>: <message>`).
fn probe_line<'a>(report: &'a str, name: &str) -> &'a str {
    let prefix = format!("probe {name} ");
    report
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in the probe's report:\n{report}"))
}

#[test]
fn guests_have_the_network_tcp_but_not_udp() {
    let probe = wasmbench_runtime::build::build_workload(
        "wasmbench-connect-probe",
        Some("connect-probe"),
        "connect-probe.wasm",
        Target::Wasip2,
        &BuildOptions::default(),
    )
    .unwrap_or_else(|e| panic!("building the connect probe: {e}"));
    // Both targets are this test's own loopback sockets.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let port = free_port();
    let mut env = echo_env(port);
    env.push(format!("CONNECT_TO={}", tcp.local_addr().unwrap()));
    env.push(format!("UDP_TO={}", udp.local_addr().unwrap()));
    let (stop, guest) = run_in_sandbox(DirectContext::new(
        vec![probe.path.display().to_string()],
        env,
    ));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_healthy(addr);
    let (status, body) = http_get(addr, "/", Duration::from_secs(10)).unwrap();
    let report = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{report}");
    // Unlike the local host (listen address only), a pod's guest uses the pod's network: its
    // TCP connect reaches the listener; UDP stays off.
    assert!(
        probe_line(&report, "tcp-connect").ends_with(" ok"),
        "{report}"
    );
    let (mut conn, _) = tcp.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "connect-probe was here\n");
    assert!(
        probe_line(&report, "udp-send").contains(" error PermissionDenied:"),
        "{report}"
    );
    let mut buf = [0u8; 64];
    assert!(udp.recv_from(&mut buf).is_err(), "a datagram got through");
    stop.send(0).unwrap();
    assert_eq!(guest.join().unwrap(), Ok(0));
}

/// The echo as a `wasi:http` component: WASI 0.2 (crates/echo-http) or 0.3
/// (crates/echo-http-p3), built once per test binary.
fn echo_http_wasm(p3: bool) -> PathBuf {
    static P2: OnceLock<PathBuf> = OnceLock::new();
    static P3: OnceLock<PathBuf> = OnceLock::new();
    let (cell, build): (_, fn(&BuildOptions) -> _) = if p3 {
        (&P3, wasmbench_runtime::build::build_echo_http_p3)
    } else {
        (&P2, wasmbench_runtime::build::build_echo_http)
    };
    cell.get_or_init(|| {
        build(&BuildOptions::default())
            .unwrap_or_else(|e| panic!("building the wasi:http echo: {e}"))
            .path
    })
    .clone()
}

#[test]
fn run_flag_serves_wasi_http_components_of_both_versions() {
    for (p3, version) in [(false, "0.2"), (true, "0.3")] {
        let shim = Shim::run(
            &echo_http_wasm(p3),
            &[("WASMTIME_HTTP_PROXY_SOCKET_ADDR", "127.0.0.1:0".into())],
        );
        let report: serde_json::Value =
            serde_json::from_str(&Shim::line(&shim.stderr, HOST_REPORT_PREFIX, "host report"))
                .unwrap();
        assert_eq!(report["wasi_http"], version, "{report}");
        assert_eq!(report["mode"], "cranelift-jit", "{report}");
        assert_eq!(report["instance_reuse"], 1, "{report}");
        assert!(report["compile_ms"].as_f64().is_some(), "{report}");
        let addr: SocketAddr = Shim::line(&shim.stdout, "listening on ", "listening")
            .parse()
            .unwrap();
        wait_healthy(addr);
        assert_eq!(
            post(addr, "over wasi:http"),
            (200, "echo: over wasi:http".into()),
            "wasi:http {version}"
        );
        // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
        assert_eq!(
            unsafe { libc::kill(shim.child.id() as i32, libc::SIGTERM) },
            0
        );
        let status = shim.wait();
        assert_eq!(status.code(), Some(143), "wasi:http {version}: {status:?}");
    }
}

#[test]
fn a_wasi_http_address_that_is_not_ip_port_is_refused_in_one_line() {
    let out = Command::new(SHIM)
        .arg("--run")
        .arg(echo_http_wasm(true))
        .env("WASMTIME_HTTP_PROXY_SOCKET_ADDR", "localhost:8080")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("WASMTIME_HTTP_PROXY_SOCKET_ADDR"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("\"localhost:8080\"") && line.contains("0.0.0.0:8080"),
        "{line}"
    );
}

#[test]
fn precompiled_wasi_http_layers_load_into_the_wasi_http_engine() {
    let compiler = WasmbenchCompiler::new();
    for (p3, command) in [(false, false), (true, false), (false, true)] {
        let wasm = std::fs::read(if command {
            echo_wasm()
        } else {
            echo_http_wasm(p3)
        })
        .unwrap();
        let code = compiler.compile_layer(&wasm).unwrap().expect("compiled");
        let guest = wasmbench_shim::guest::Guest::load(&code, true).unwrap();
        let want = if command {
            Serving::Command
        } else {
            Serving::WasiHttp
        };
        assert_eq!(guest.serving(), want, "p3 {p3}, command {command}");
        assert_eq!(guest.report().mode, ExecMode::Precompiled);
    }
}
