//! The embedded Wasmtime host: code cache, network policy, memory limit, bad input, and the
//! `Runtime` launcher that runs it as a child process.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use common::{Client, InProcess, artifact, embedded};
use wasmbench_runtime::launch::http_get;
use wasmbench_runtime::{
    EmbeddedConfig, EmbeddedHost, EmbeddedWasmtime, ExecMode, HostReport, LaunchSpec, Runtime,
    RuntimeError, Target,
};

#[test]
fn cwasm_cache_is_created_then_reused() {
    for target in [Target::Wasip1, Target::Wasip2] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EmbeddedConfig::new(target, artifact(target).path);
        cfg.cache_dir = Some(dir.path().to_path_buf());

        let first = EmbeddedHost::new(cfg.clone()).unwrap().report();
        assert!(!first.cache_hit, "{target}: {first:?}");
        assert_eq!(first.mode, ExecMode::CraneliftJit);
        assert!(first.compile_ms.is_some_and(|ms| ms > 0.0));
        let path = first.cwasm_path.clone().unwrap();
        assert!(path.starts_with(dir.path()) && path.extension().unwrap() == "cwasm");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            first.cwasm_size_bytes.unwrap()
        );

        let second = EmbeddedHost::new(cfg.clone()).unwrap().report();
        assert!(second.cache_hit, "{target}: {second:?}");
        assert_eq!(second.mode, ExecMode::Precompiled);
        assert_eq!(second.compile_ms, None);
        assert_eq!(second.cwasm_path.as_ref(), Some(&path));

        // A damaged cache entry is replaced, not trusted.
        std::fs::write(&path, b"not a cwasm").unwrap();
        let third = EmbeddedHost::new(cfg.clone()).unwrap().report();
        assert!(!third.cache_hit && third.compile_ms.is_some());

        // Without the cache nothing is written and the code is compiled in memory.
        let mut nocache = cfg;
        nocache.precompiled = false;
        nocache.cache_dir = Some(dir.path().join("unused"));
        let r = EmbeddedHost::new(nocache).unwrap().report();
        assert_eq!(r.mode, ExecMode::CraneliftJit);
        assert!(r.cwasm_path.is_none() && !dir.path().join("unused").exists());
    }
}

#[test]
fn wasip2_guest_may_bind_only_the_configured_address() {
    // Port X is configured, the guest is told to bind port 0 (any): denied.
    let x = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = embedded(Target::Wasip2);
    cfg.port = x;
    cfg.env = vec![("PORT".into(), "0".into())];
    let err = InProcess::try_start(cfg)
        .err()
        .expect("bind to another port must fail");
    assert!(
        err.contains("the guest exited with an error status"),
        "{err}"
    );

    // Another interface than the configured one: denied.
    let mut cfg = embedded(Target::Wasip2);
    cfg.env = vec![("ECHO_HOST".into(), "0.0.0.0".into())];
    let err = InProcess::try_start(cfg)
        .err()
        .expect("bind to 0.0.0.0 must fail");
    assert!(
        err.contains("the guest exited with an error status"),
        "{err}"
    );

    // The configured address itself works.
    let h = InProcess::start(embedded(Target::Wasip2));
    assert_eq!(h.addr.ip().to_string(), "127.0.0.1");
    h.finish().unwrap();
}

#[test]
fn memory_limit_is_enforced() {
    for target in [Target::Wasip1, Target::Wasip2] {
        // Below the module's initial memory: refused at instantiation.
        let mut cfg = embedded(target);
        cfg.max_memory_bytes = 64 << 10;
        let err = InProcess::try_start(cfg)
            .err()
            .expect("64 KiB cannot hold the guest");
        assert!(err.contains("memory"), "{target}: {err}");

        // Growing past the limit at run time traps the guest; below it, it works.
        let mut cfg = embedded(target);
        cfg.max_memory_bytes = 32 << 20;
        let h = InProcess::start(cfg);
        let (status, body) = http_get(h.addr, "/alloc?kb=1024", Duration::from_secs(30)).unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(http_get(h.addr, "/alloc?kb=65536", Duration::from_secs(30)).is_err());
        let r = h
            .wait_exit(Duration::from_secs(30))
            .expect("the guest must stop after exceeding its memory");
        let e = r.expect_err("exceeding memory is an error").to_string();
        assert!(e.contains("growing memory"), "{target}: {e}");
    }
}

#[test]
fn bad_wasm_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x01\0\0\0\x01\xff\xff\xff\xffgarbage").unwrap();
    let e = EmbeddedHost::new(EmbeddedConfig::new(Target::Wasip1, &corrupt)).unwrap_err();
    assert!(matches!(e, RuntimeError::InvalidArtifact { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("cannot compile") && e.contains("cargo build"),
        "{e}"
    );

    let text = dir.path().join("echo.wat");
    std::fs::write(&text, "(module)").unwrap();
    let e = EmbeddedHost::new(EmbeddedConfig::new(Target::Wasip2, &text))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a WebAssembly binary"), "{e}");

    // A wasip2 component handed in as wasip1.
    let e = EmbeddedHost::new(EmbeddedConfig::new(
        Target::Wasip1,
        artifact(Target::Wasip2).path,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("component") && e.contains("--target wasip2"),
        "{e}"
    );

    let e = EmbeddedHost::new(EmbeddedConfig::new(
        Target::Wasip1,
        dir.path().join("missing.wasm"),
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot read it"), "{e}");
}

/// The `serve` example: a stand-in for `wasmbench serve` that takes the same arguments.
fn serve_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples").join("serve");
    assert!(
        p.is_file(),
        "{} missing: run through `cargo test`",
        p.display()
    );
    p
}

#[test]
fn embedded_runtime_launches_a_separate_process() {
    for target in [Target::Wasip1, Target::Wasip2] {
        let rt = EmbeddedWasmtime {
            cache_dir: Some(common::test_cache_dir()),
            ..EmbeddedWasmtime::new(target)
        };
        rt.available().unwrap();
        let mut spec = LaunchSpec::new(artifact(target));
        spec.host_exe = Some(serve_example());
        spec.env = vec![("ECHO_MODE".into(), "seed".into())];
        let server = rt.launch(&spec).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_ne!(server.pid, std::process::id());
        assert_eq!(server.info.name, "wasmtime");
        assert_eq!(server.info.target, target);
        assert!(
            server.info.details.contains_key("instantiate_ms"),
            "{:?}",
            server.info
        );
        let report: HostReport =
            serde_json::from_str(&server.host_report_json(Duration::from_secs(5)).unwrap())
                .unwrap();
        assert_eq!(report.target, target);
        assert!(report.pooling);
        // The environment reached the guest: seed mode answers HTTP/1.0 and closes.
        let mut c = Client::connect(server.addr);
        c.send(&common::post("/", b"hi", false));
        assert_eq!(c.read_response(), common::expected_echo(b"hi", false, true));
        c.expect_eof();
        let pid = server.pid;
        server.stop().unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
fn embedded_runtime_without_host_exe_says_what_to_do() {
    let rt = EmbeddedWasmtime::new(Target::Wasip2);
    let spec = LaunchSpec::new(artifact(Target::Wasip2));
    let e = rt.launch(&spec).unwrap_err().to_string();
    assert!(e.contains("host_exe"), "{e}");
    let mut spec = LaunchSpec::new(artifact(Target::Native));
    spec.host_exe = Some(serve_example());
    let e = rt.launch(&spec).unwrap_err().to_string();
    assert!(e.contains("give it a wasip2 build"), "{e}");
}
