//! Builds the WasmEdge variant for `wasm32-wasip1` and checks, with `wasmparser`, that it is a
//! core module importing WasmEdge's socket functions. WasmEdge itself is not needed: the import
//! list is what decides whether WasmEdge (or crun+WasmEdge) can link and run it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasmbench_echo_wasmedge::REQUIRED_SOCKET_IMPORTS;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives in <workspace>/crates/echo-wasmedge")
        .to_path_buf()
}

/// Builds the module into a target directory of its own, so this never waits for the lock of
/// the `cargo test` that runs it.
fn build() -> PathBuf {
    let ws = workspace();
    let target_dir = ws.join("target").join("artifacts");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&ws)
        .args([
            "build",
            "-p",
            "wasmbench-echo-wasmedge",
            "--profile",
            "artifact",
            "--target",
            "wasm32-wasip1",
            "--target-dir",
        ])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building echo-wasmedge for wasm32-wasip1 failed (is the target installed? \
         `rustup target add wasm32-wasip1`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("wasm32-wasip1/artifact/echo-wasmedge.wasm")
}

#[test]
fn wasmedge_build_imports_the_socket_abi() {
    let path = build();
    let bytes = std::fs::read(&path).expect("built module is readable");
    let mut imports: BTreeSet<(String, String)> = BTreeSet::new();
    let mut exports = BTreeSet::new();
    let mut saw_component = false;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.expect("valid wasm") {
            wasmparser::Payload::Version { encoding, .. } => {
                saw_component |= encoding == wasmparser::Encoding::Component;
            }
            wasmparser::Payload::ImportSection(reader) => {
                for imp in reader.into_imports() {
                    let imp = imp.expect("valid import");
                    imports.insert((imp.module.to_string(), imp.name.to_string()));
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for exp in reader {
                    exports.insert(exp.expect("valid export").name.to_string());
                }
            }
            _ => {}
        }
    }
    assert!(!saw_component, "a wasip1 build must be a core module");
    let listed: Vec<String> = imports.iter().map(|(m, n)| format!("{m}::{n}")).collect();
    println!("echo-wasmedge imports:\n  {}", listed.join("\n  "));
    for name in REQUIRED_SOCKET_IMPORTS {
        assert!(
            imports.contains(&("wasi_snapshot_preview1".to_string(), name.to_string())),
            "missing import wasi_snapshot_preview1::{name}; imports are: {listed:?}"
        );
    }
    // The event loop waits on sockets with poll_oneoff; WasmEdge implements it for sockets.
    assert!(imports.contains(&("wasi_snapshot_preview1".into(), "poll_oneoff".into())));
    // Nothing but WASI preview 1: a module importing anything else cannot run under WasmEdge.
    assert!(
        imports.iter().all(|(m, _)| m == "wasi_snapshot_preview1"),
        "unexpected import module: {listed:?}"
    );
    assert!(exports.contains("_start"), "exports: {exports:?}");
}
