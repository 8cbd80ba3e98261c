//! `.wasm` files that are valid WebAssembly but not runnable services, and truncated ones,
//! given to the real `wasmbench` binary: one line saying what is wrong and how to fix it,
//! exit code 10 (README exit-code table), and nothing measured.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmbench_runtime::{BuildOptions, Target};

/// `Exit::Artifact` in the README table.
const BAD_WASM: i32 = 10;

/// Longest a rejected run may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(120);

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `wasmbench args`, killing it (and failing) if it has not exited within [`HANG`].
fn run(args: &[&str]) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmbench");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wasmbench {args:?} did not exit within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Asserts exit code 10 and exactly one `wasmbench: …` line on stderr containing every
/// `needle`; returns the line.
fn assert_one_line(what: &str, r: &Ran, needles: &[&str]) -> String {
    assert_eq!(r.code, Some(BAD_WASM), "{what}: stderr:\n{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line, got:\n{}",
        r.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("wasmbench: "), "{what}: {line}");
    for n in needles {
        assert!(line.contains(n), "{what}: {n:?} missing from: {line}");
    }
    line.to_string()
}

/// The smallest valid core module: header only, no exports.
const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";
/// The smallest valid component: header only (version 0x0d, layer 1), no exports.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// The bad files, written into `dir`.
struct Files {
    empty_module: PathBuf,
    empty_component: PathBuf,
    truncated_p1: PathBuf,
    truncated_p2: PathBuf,
}

fn files(dir: &Path) -> Files {
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // The first half of the real workload: the header is fine, the sections run off the end.
    let half = |target: Target, name: &str| {
        let echo = wasmbench_runtime::build_echo(target, &BuildOptions::default())
            .unwrap_or_else(|e| panic!("building echo for {target}: {e}"));
        let bytes = std::fs::read(&echo.path).unwrap();
        write(name, &bytes[..bytes.len() / 2])
    };
    Files {
        empty_module: write("empty-module.wasm", EMPTY_MODULE),
        empty_component: write("empty-component.wasm", EMPTY_COMPONENT),
        truncated_p1: half(Target::Wasip1, "truncated-p1.wasm"),
        truncated_p2: half(Target::Wasip2, "truncated-p2.wasm"),
    }
}

#[test]
fn serve_rejects_wasm_that_is_not_a_runnable_service() {
    let tmp = tempfile::tempdir().unwrap();
    let f = files(tmp.path());
    let cache = tmp.path().join("cwasm");
    let http = wasmbench_runtime::build::build_echo_http(&BuildOptions::default())
        .expect("building the wasi:http echo")
        .path;
    let cases: [(&str, &str, &Path, &[&str]); 5] = [
        (
            "empty module",
            "wasip1",
            &f.empty_module,
            &[
                "empty-module.wasm",
                "`_start`",
                "not a WASI command",
                "wasm32-wasip1",
            ],
        ),
        (
            "empty component",
            "wasip2",
            &f.empty_component,
            &[
                "empty-component.wasm",
                "wasi:cli/run",
                "wasi:http/incoming-handler",
                "exports: none",
                "wasm32-wasip2",
            ],
        ),
        (
            "truncated module",
            "wasip1",
            &f.truncated_p1,
            &["truncated-p1.wasm", "truncated or corrupt", "rebuild"],
        ),
        (
            "truncated component",
            "wasip2",
            &f.truncated_p2,
            &["truncated-p2.wasm", "truncated or corrupt", "rebuild"],
        ),
        (
            "wasi:http component as a command",
            "wasip2",
            &http,
            &["wasi:http component", "--target wasi-http"],
        ),
    ];
    for (what, target, wasm, needles) in cases {
        let r = run(&[
            "serve",
            "--runtime",
            "wasmtime",
            "--target",
            target,
            "--wasm",
            wasm.to_str().unwrap(),
            "--port",
            "0",
            "--cache-dir",
            cache.to_str().unwrap(),
        ]);
        assert_one_line(what, &r, needles);
        assert!(
            !r.stdout.contains("listening on"),
            "{what}: a rejected module must not listen: {}",
            r.stdout
        );
    }
}

#[test]
fn compare_rejects_wasm_that_is_not_a_runnable_service_before_measuring() {
    let tmp = tempfile::tempdir().unwrap();
    let f = files(tmp.path());
    let native = wasmbench_runtime::build_echo(Target::Native, &BuildOptions::default())
        .expect("building the native echo")
        .path;
    let cases: [(&str, &Path, &[&str]); 4] = [
        (
            "empty module",
            &f.empty_module,
            &["`_start`", "not a WASI command"],
        ),
        (
            "empty component",
            &f.empty_component,
            &["wasi:cli/run", "exports: none"],
        ),
        (
            "truncated module",
            &f.truncated_p1,
            &["truncated or corrupt"],
        ),
        (
            "truncated component",
            &f.truncated_p2,
            &["truncated or corrupt"],
        ),
    ];
    for (what, wasm, needles) in cases {
        let out = tmp.path().join(format!("out-{}", what.replace(' ', "-")));
        let r = run(&[
            "compare",
            "--quick",
            "--native-cmd",
            native.to_str().unwrap(),
            "--wasm",
            wasm.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_one_line(what, &r, needles);
        // Refused up front: the native service was never measured and no report exists.
        assert!(r.stdout.trim().is_empty(), "{what}: stdout: {}", r.stdout);
        assert!(
            !out.exists(),
            "{what}: a report was written to {}",
            out.display()
        );
    }
}
