//! The bring-your-own examples in other languages (examples/python, examples/js), built from
//! their pinned toolchains and compared through the real `wasmbench` binary: each service's
//! native twin against its wasi:http component. A toolchain that is missing skips the test,
//! except with `CI=true`, where it fails (`scripts/setup.sh --test` installs them).
//!
//! Components are cached by content under the target directory
//! (`target/examples/<name>-<hash>/app.wasm`, the hash over the example's build inputs and the
//! toolchain's version), so a second run of this test builds nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use wasmbench_report::{Comparison, VariantStatus};

/// One build or comparison at a time: a build beside a comparison, or two comparisons, would
/// share the machine's 2 CPUs and be measured with it.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `Some(stdout)` of a command that ran and succeeded.
fn output_of(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// True when the toolchain is there; otherwise skips, or fails in CI.
fn toolchain_present(what: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    assert!(
        !in_ci(),
        "CI=true but the {what} toolchain is missing: {why}; run scripts/setup.sh --test"
    );
    eprintln!("SKIP: {what}: {why} (scripts/setup.sh --test installs it)");
    false
}

/// FNV-1a, 64 bits: a cache key that stays the same across Rust releases, unlike std's
/// hasher.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The hash of the named files (paths and contents) and of the toolchain's description.
fn content_hash(dir: &Path, files: &[PathBuf], toolchain: &str) -> String {
    let mut h = fnv1a(toolchain.as_bytes(), 0xcbf2_9ce4_8422_2325);
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        h = fnv1a(rel.to_string_lossy().as_bytes(), h);
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        h = fnv1a(&(data.len() as u64).to_le_bytes(), h);
        h = fnv1a(&data, h);
    }
    format!("{h:016x}")
}

/// Files under `dir` (recursively) whose names end with one of `exts`, sorted.
fn files_with(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_with(&path, exts));
        } else if exts
            .iter()
            .any(|e| path.to_string_lossy().ends_with(&format!(".{e}")))
        {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `target/examples/<name>-<hash>/app.wasm`, built by `build(out)` unless it is there already.
fn cached_component(name: &str, hash: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_wasmbench"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let dir = target.join("examples").join(format!("{name}-{hash}"));
    let wasm = dir.join("app.wasm");
    if wasm.is_file() {
        println!("{name}: cached {}", wasm.display());
        return wasm;
    }
    std::fs::create_dir_all(&dir).unwrap();
    // Built beside and renamed, so a build cut short is never taken for a cached one.
    let partial = dir.join("app.wasm.partial");
    let started = Instant::now();
    build(&partial);
    assert!(partial.is_file(), "{name}: the build wrote no component");
    std::fs::rename(&partial, &wasm).unwrap();
    println!(
        "{name}: built {} in {:?}",
        wasm.display(),
        started.elapsed()
    );
    wasm
}

/// Runs a build step in `dir`, failing with its output when it fails.
fn build_step(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `compare --quick` of a native command against a component, with checks the example's
/// `GET /` must pass; returns the comparison and the Markdown report. The caller holds
/// [`heavy`].
fn compare(native_cmd: &str, wasm: &Path, greeting: &str, out: &Path) -> (Comparison, String) {
    let body_check = format!("body contains {greeting}");
    let started = Instant::now();
    let o = support::run(&[
        "compare",
        "--quick",
        "--native-cmd",
        native_cmd,
        "--wasm",
        wasm.to_str().unwrap(),
        "--check",
        "status == 200",
        "--check",
        &body_check,
        "--out",
        out.to_str().unwrap(),
    ]);
    println!("compare --quick took {:?}", started.elapsed());
    assert_eq!(support::code(&o), 0, "{}", support::stderr(&o));
    let c = wasmbench_report::read_dir(out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    (c, md)
}

/// What every language's run must show: both variants measured, every response `200` with
/// the greeting, no failed check named in the report, and the cached code loaded fast.
fn assert_ran(c: &Comparison, md: &str) {
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    // By default a wasi:http component runs on the cached-code host.
    assert_eq!(names, ["native-cmd", "wasm-wasi-http-precompiled"]);
    for v in &c.variants {
        assert_eq!(v.status, VariantStatus::Ok, "{v:?}");
        assert!(!v.runs.is_empty(), "{}: no runs", v.name);
        for r in &v.runs {
            assert!(r.http_reqs > 0, "{}: no requests", v.name);
            assert!(
                r.checks.passes > 0 && r.checks.fails == 0,
                "{}: {:?}",
                v.name,
                r.checks
            );
        }
        assert!(md.contains(&v.name), "{} not in report.md", v.name);
    }
    for w in &c.warnings {
        assert!(!w.contains("checks failed"), "a failed check: {w}");
    }
    // The first start compiles into the cache (unless an earlier run did); every later one
    // loads the cached code. Their median, not each: on a busy machine one start in two has
    // been seen to take 1 s more than the others (1.19 s against 0.2 s).
    let starts: Vec<f64> = c.variants[1]
        .runs
        .iter()
        .flat_map(|r| r.cold_start_ms.iter().copied())
        .collect();
    assert!(starts.len() >= 2, "cold starts: {starts:?}");
    let mut later = starts[1..].to_vec();
    later.sort_by(f64::total_cmp);
    assert!(
        later[later.len() / 2] < 1000.0,
        "cold starts from cached code: {starts:?} ms"
    );
}

/// The report states only what it observed of the user's programs: what the native program
/// is and the version its interpreter prints, no build environment, no size of an interpreter,
/// no claim of our own echo's.
fn assert_observed(c: &Comparison, md: &str, interpreter: &str) {
    let version = output_of(interpreter, &["--version"], Path::new("."))
        .and_then(|v| v.lines().next().map(str::to_string))
        .expect("the interpreter prints its version");
    let line = c
        .explanation
        .iter()
        .find(|l| l.starts_with("native-cmd runs the user's command"))
        .unwrap_or_else(|| panic!("{:#?}", c.explanation));
    assert!(
        line.contains(&format!("whose `--version` prints \"{version}\"")),
        "{line}"
    );
    assert!(line.contains(" is a"), "the program's kind: {line}");
    for claim in [
        "no runtime, no sandbox boundary",
        "artifacts built with",
        "rustc",
    ] {
        assert!(!md.contains(claim), "{claim:?} in report.md:\n{md}");
    }
    assert!(
        c.variants[0].artifact.is_none(),
        "an interpreter from PATH is no artifact of the user's: {:?}",
        c.variants[0].artifact
    );
}

#[test]
fn the_python_example_runs_natively_and_as_a_component() {
    const COMPONENTIZE_PY: &str = "componentize-py 0.25.1";
    let dir = repo_root().join("examples/python");
    let version = output_of("componentize-py", &["--version"], &dir);
    let missing = match version.as_deref() {
        Some(COMPONENTIZE_PY) => None,
        Some(other) => Some(format!("{other} found, {COMPONENTIZE_PY} needed")),
        None => Some(format!("{COMPONENTIZE_PY} not found")),
    };
    if !toolchain_present("Python", missing) {
        return;
    }
    let _heavy = heavy();
    let mut inputs = files_with(&dir, &["wit"]);
    inputs.extend(["app.py", "kv.py"].map(|f| dir.join(f)));
    let hash = content_hash(&dir, &inputs, COMPONENTIZE_PY);
    let wasm = cached_component("python", &hash, |out| {
        let out = out.to_str().unwrap();
        let args = [
            "-d",
            "wit",
            "-w",
            "wasi:http/proxy@0.2.12",
            "componentize",
            "-p",
            ".",
            "app",
            "-o",
            out,
        ];
        build_step(&dir, "componentize-py", &args);
    });
    let native = format!(
        "python3 {} --port {{port}}",
        dir.join("server.py").display()
    );
    let out = tempfile::tempdir().unwrap();
    let (c, md) = compare(&native, &wasm, "hello from python", &out.path().join("py"));
    assert_ran(&c, &md);
    assert_observed(&c, &md, "python3");
    // ThreadingHTTPServer holds a thread per connection: the peak over a run, not the count
    // after it, is what the report states.
    let peak = c.variants[0]
        .runs
        .iter()
        .filter_map(|r| r.server_counts.as_ref().map(|s| s.threads))
        .max()
        .unwrap_or(0);
    assert!(peak >= 50, "a thread per VU's connection: {peak}");
}

#[test]
fn the_javascript_example_runs_natively_and_as_a_component() {
    const JCO: &str = "1.35.0";
    let dir = repo_root().join("examples/js");
    let node_and_npm =
        output_of("node", &["--version"], &dir).and(output_of("npm", &["--version"], &dir));
    let jco = output_of(
        "node",
        &[
            "-p",
            "require('./node_modules/@bytecodealliance/jco/package.json').version",
        ],
        &dir,
    );
    let missing = match (&node_and_npm, jco.as_deref()) {
        (None, _) => Some("node or npm not found".to_string()),
        (_, Some(JCO)) => None,
        (_, Some(other)) => Some(format!("jco {other} in examples/js, {JCO} needed")),
        (_, None) => Some("no jco in examples/js/node_modules (npm ci there)".to_string()),
    };
    if !toolchain_present("JavaScript", missing) {
        return;
    }
    let _heavy = heavy();
    let mut inputs = vec![dir.join("wit/world.wit")];
    inputs.extend(
        [
            "app.js",
            "kv.js",
            "wit.mjs",
            "preopen.mjs",
            "package.json",
            "package-lock.json",
        ]
        .map(|f| dir.join(f)),
    );
    let hash = content_hash(&dir, &inputs, &format!("jco {JCO}"));
    let wasm = cached_component("js", &hash, |out| {
        build_step(
            &dir,
            "npm",
            &["run", "--silent", "build", "--", out.to_str().unwrap()],
        );
    });
    let native = format!("node {} --port {{port}}", dir.join("server.js").display());
    let out = tempfile::tempdir().unwrap();
    let (c, md) = compare(
        &native,
        &wasm,
        "hello from javascript",
        &out.path().join("js"),
    );
    assert_ran(&c, &md);
    assert_observed(&c, &md, "node");
}
