//! External CLI runtimes: detection, version parsing, the missing-binary path, and every
//! `wasmtime` CLI mode serving the real workload over real HTTP.
//!
//! The `wasmtime` these tests run is this crate's own `wasmtime` binary (the wasmtime CLI's
//! commands from the pinned `wasmtime-cli` crate), built with the tests; with the crate's
//! `wasmtime-cli` feature off they look on PATH, and skip with a printed reason when it is not
//! there, except in CI (`CI=true`), where a missing `wasmtime` is a failure.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

use common::{Client, body, expected_echo, post};
use wasmbench_runtime::build::build_echo_http;
use wasmbench_runtime::external::{
    Locator, WasmEdgeCli, WasmerCli, WasmtimeCli, parse_wasmtime_version,
};
use wasmbench_runtime::inspect::component_imports;
use wasmbench_runtime::{
    Artifact, BuildOptions, ExecMode, LaunchSpec, RunningServer, Runtime, Target,
};

/// The `wasmtime` program under test: this crate's binary when built, else PATH's.
fn wasmtime_locator() -> Locator {
    Locator {
        program: option_env!("CARGO_BIN_EXE_wasmtime").map(Into::into),
        search_path: None,
    }
}

/// `wasmtime run` in `mode`, with the program under test.
fn wasmtime_run(mode: ExecMode) -> WasmtimeCli {
    WasmtimeCli::run(mode).with_locator(wasmtime_locator())
}

/// `wasmtime serve` in `mode`, with the program under test.
fn wasmtime_serve(mode: ExecMode) -> WasmtimeCli {
    WasmtimeCli::serve(mode).with_locator(wasmtime_locator())
}

/// `Some(version)` when the `wasmtime` under test runs; `None` (after saying why) when it does
/// not and this is not CI.
fn wasmtime_or_skip(test: &str) -> Option<String> {
    match wasmtime_run(ExecMode::CraneliftJit).detect() {
        Ok(d) => Some(d.version),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{test}: {e}; build it with the tests (the crate's default `wasmtime-cli` feature) or install it (cargo install --locked wasmtime-cli@48.0.8)"
                );
            }
            eprintln!("SKIPPED {test}: {e}");
            None
        }
    }
}

fn http_component() -> Artifact {
    static A: OnceLock<Artifact> = OnceLock::new();
    A.get_or_init(|| build_echo_http(&BuildOptions::default()).unwrap_or_else(|e| panic!("{e}")))
        .clone()
}

fn empty_path_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// An executable shell script `name` in `dir` running `body`.
fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, "#!/bin/sh\n{body}").unwrap();
    drop(f);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn locator_in(dir: &Path) -> Locator {
    Locator {
        program: None,
        search_path: Some(dir.as_os_str().to_owned()),
    }
}

#[test]
fn missing_binaries_make_variants_unavailable_with_a_reason() {
    let dir = empty_path_dir();
    let l = locator_in(dir.path());
    let e = WasmtimeCli::run(ExecMode::Winch)
        .with_locator(l.clone())
        .available()
        .unwrap_err();
    assert!(
        e.starts_with("wasmtime not found on PATH") && e.contains("cargo install"),
        "{e}"
    );
    let e = WasmEdgeCli::new(ExecMode::Interpreter)
        .with_locator(l.clone())
        .available()
        .unwrap_err();
    assert_eq!(
        e,
        "wasmedge not found on PATH: install WasmEdge 0.14+ to run this variant"
    );
    let e = WasmerCli::default()
        .with_locator(l.clone())
        .available()
        .unwrap_err();
    assert!(e.starts_with("wasmer not found on PATH"), "{e}");
    // One line each, and `launch` refuses with the same reason instead of trying.
    assert!(!e.contains('\n'));
    let spec = LaunchSpec::new(common::artifact(Target::Wasip2));
    let err = WasmtimeCli::run(ExecMode::CraneliftJit)
        .with_locator(l)
        .launch(&spec)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found on PATH"), "{err}");
    // `info` still works and says what is missing.
    let info = WasmEdgeCli::new(ExecMode::Aot)
        .with_locator(locator_in(dir.path()))
        .info();
    assert_eq!(
        (info.version.as_str(), info.mode),
        ("not found", ExecMode::Aot)
    );
}

/// Detection runs the found program's `--version` and parses what it prints. WasmEdge and
/// Wasmer cannot be installed here, so small scripts print what the real programs print:
/// WasmEdge 0.14.1 starts with the path it was invoked by (`$0`) and adds a line per plugin.
#[test]
fn detection_runs_the_program_and_parses_its_version() {
    let dir = empty_path_dir();
    script(
        dir.path(),
        "wasmedge",
        r#"printf '%s version 0.14.1\n (plugin "wasi_logging") version 0.1.0.0\n' "$0""#,
    );
    script(
        dir.path(),
        "wasmer",
        "echo 'wasmer 6.0.1 (a5d4e9a 2025-05-30)'",
    );
    let l = locator_in(dir.path());
    let we = WasmEdgeCli::new(ExecMode::Aot).with_locator(l.clone());
    assert_eq!(we.detect().unwrap().version, "0.14.1");
    assert!(we.available().is_ok());
    assert_eq!(we.info().version, "0.14.1");
    let wr = WasmerCli::default().with_locator(l);
    let e = wr.available().unwrap_err();
    assert!(
        e.starts_with("wasmer 6.0.1 found") && e.contains("WASIX"),
        "{e}"
    );

    // Found, but its version line is not one we know: said as such, with what it printed.
    let odd = empty_path_dir();
    script(
        odd.path(),
        "wasmedge",
        "echo 'WasmEdge runtime (custom build)'",
    );
    let we = WasmEdgeCli::new(ExecMode::Interpreter).with_locator(locator_in(odd.path()));
    let e = we.available().unwrap_err();
    assert!(
        e.contains("found wasmedge at")
            && e.contains("cannot read its version")
            && e.contains("WasmEdge runtime (custom build)")
            && !e.contains("not found"),
        "{e}"
    );
    assert_eq!(we.info().version, "unreadable");

    if let Some(v) = wasmtime_or_skip("detection_runs_the_program_and_parses_its_version") {
        assert!(parse_wasmtime_version(&format!("wasmtime {v}")).is_some());
        let info = wasmtime_run(ExecMode::Pulley).info();
        assert_eq!(info.version, v);
        assert_eq!(info.mode, ExecMode::Pulley);
        assert_eq!(info.details["variant"], "wasmtime-run-pulley");
    }
}

fn check_echo(server: &RunningServer, socket_build: bool) {
    let mut c = Client::connect(server.addr);
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    assert!(
        r.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert!(
        r.ends_with(b"\r\n\r\nok"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    for len in [0usize, 5, 70_000] {
        let b = body(len);
        c.send(&post("/echo", &b, false));
        let r = c.read_response();
        if socket_build {
            // Same program as native: the answer is byte-for-byte the reference writer's.
            assert!(r == expected_echo(&b, true, false), "body of {len} bytes");
        } else {
            let end = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(r.starts_with(b"HTTP/1.1 200 "));
            assert!(
                r[end..].starts_with(b"echo: ") && r[end + 6..] == b[..],
                "{len} bytes"
            );
        }
    }
}

#[test]
fn wasmtime_run_serves_echo_in_every_mode() {
    if wasmtime_or_skip("wasmtime_run_serves_echo_in_every_mode").is_none() {
        return;
    }
    let art = common::artifact(Target::Wasip2);
    let cache = tempfile::tempdir().unwrap();
    for mode in [
        ExecMode::CraneliftJit,
        ExecMode::Winch,
        ExecMode::Pulley,
        ExecMode::Precompiled,
    ] {
        let mut rt = wasmtime_run(mode);
        rt.cache_dir = Some(cache.path().to_path_buf());
        rt.available().unwrap();
        let server = rt
            .launch(&LaunchSpec::new(art.clone()))
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(server.info.mode, mode);
        check_echo(&server, true);
        eprintln!(
            "{}: ready in {:?} ({})",
            rt.variant(),
            server.spawn_to_ready,
            server.info.details["command"]
        );
        server.stop().unwrap();
    }
    // The precompiled variant left its `.cwasm` in the cache.
    let cwasm = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(cwasm, 1);
}

#[test]
fn wasmtime_serve_serves_the_wasi_http_component() {
    if wasmtime_or_skip("wasmtime_serve_serves_the_wasi_http_component").is_none() {
        return;
    }
    for (mode, reuse) in [(ExecMode::CraneliftJit, 1), (ExecMode::CraneliftJit, 100)] {
        let mut rt = wasmtime_serve(mode);
        rt.instance_reuse = reuse;
        let server = rt
            .launch(&LaunchSpec::new(http_component()))
            .unwrap_or_else(|e| panic!("{e}"));
        // Rust's std makes the component import wasi:cli/environment, outside the proxy
        // world: the variant must ask for it.
        let cmd = &server.info.details["command"];
        let needs_cli = component_imports(&http_component().path)
            .unwrap()
            .iter()
            .any(|i| i.starts_with("wasi:cli/environment"));
        assert_eq!(cmd.contains("-S cli=y"), needs_cli, "{cmd}");
        check_echo(&server, false);
        server.stop().unwrap();
    }
    // The socket build is not a wasi:http component: refused before anything starts.
    let e = wasmtime_serve(ExecMode::CraneliftJit)
        .launch(&LaunchSpec::new(common::artifact(Target::Wasip2)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("wasi:http/incoming-handler"), "{e}");
}
