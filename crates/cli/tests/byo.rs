//! Bringing one's own service to `compare`, through the real `wasmbench` binary: a small
//! multi-threaded hyper server and a `wstd` wasi:http component written for these tests
//! (`tests/guests`), not our echo. The report must state only what the run observed, and wrong
//! choices must fail in a moment with the README's exit code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmbench_report::{Comparison, VariantStatus};
use wasmbench_runtime::{BuildOptions, Target};

/// Exit codes of the README table.
const ARTIFACT: i32 = 10;
const SERVER_START: i32 = 11;

/// What the fail-fast checks promise: an answer well before any readiness timeout (60 s).
const FAST: Duration = Duration::from_secs(5);

/// Longest any run here may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(300);

struct Ran {
    code: Option<i32>,
    stderr: String,
    took: Duration,
}

/// Runs `wasmbench args` with `env`, killing it (and failing) if it has not exited in [`HANG`].
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbench"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmbench");
    let mut err = child.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() >= HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wasmbench {args:?} did not exit within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        code: status.code(),
        stderr: drain.join().unwrap(),
        took: started.elapsed(),
    }
}

fn run(args: &[&str]) -> Ran {
    run_with(args, &[])
}

/// Runs `compare args` with the [`SHORT`] plan, writing to `dir`; asserts success and returns
/// the comparison it wrote.
fn compare_ok(args: &[&str], dir: &Path) -> Comparison {
    let mut all = vec!["compare", "--out", dir.to_str().unwrap()];
    all.extend(args);
    all.extend(SHORT);
    let r = run(&all);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    wasmbench_report::read_dir(dir).unwrap()
}

/// Asserts that `r` failed with `code` within [`FAST`] and that stderr holds every `needle`.
fn assert_failed_fast(what: &str, r: &Ran, code: i32, needles: &[&str]) {
    println!("{what}: exit {:?} after {:?}", r.code, r.took);
    assert_eq!(r.code, Some(code), "{what}: {}", r.stderr);
    assert!(r.took < FAST, "{what}: took {:?}", r.took);
    for n in needles {
        assert!(r.stderr.contains(n), "{what}: no {n:?} in {}", r.stderr);
    }
}

/// Builds a test guest with the artifact profile, once per test binary and target.
fn guest(package: &str, bin: &str, file: &str, target: Target) -> PathBuf {
    wasmbench_runtime::build::build_workload(
        package,
        Some(bin),
        file,
        target,
        &BuildOptions::default(),
    )
    .unwrap_or_else(|e| panic!("building {package}: {e}"))
    .path
}

/// A test guest built once per test binary: (package, bin, output file, target).
fn built(cell: &'static OnceLock<PathBuf>, what: (&str, &str, &str, Target)) -> &'static Path {
    cell.get_or_init(|| guest(what.0, what.1, what.2, what.3))
}

fn hyper_hello() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    built(
        &CELL,
        (
            "wasmbench-test-hyper-hello",
            "hyper-hello",
            "hyper-hello",
            Target::Native,
        ),
    )
}

fn wstd_hello() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    built(
        &CELL,
        (
            "wasmbench-test-wstd-hello",
            "wstd-hello",
            "wstd-hello.wasm",
            Target::Wasip2,
        ),
    )
}

fn native_cmd() -> String {
    format!("{} --port {{port}}", hyper_hello().display())
}

/// A short plan: 4 VUs, 1 s, no warm-up, one repeat, one cold start.
const SHORT: [&str; 10] = [
    "--vus",
    "4",
    "--duration",
    "1s",
    "--warmup",
    "0s",
    "--repeats",
    "1",
    "--cold-starts",
    "1",
];

/// Statements true of our echo workload only; none may appear in a report on another service.
const ECHO_FACTS: [&str; 5] = [
    "crates/echo",
    "poll(2)",
    "1 MiB",
    "16 KiB head limit",
    "/healthz",
];

fn assert_no_echo_facts(dir: &Path, c: &Comparison) {
    let mut texts: Vec<String> = c.plan.fairness.clone();
    texts.extend(c.explanation.iter().cloned());
    for f in ["report.md", "report.txt", "report.html"] {
        texts.push(std::fs::read_to_string(dir.join(f)).unwrap());
    }
    for t in &texts {
        for fact in ECHO_FACTS {
            assert!(
                !t.contains(fact),
                "a claim about our echo ({fact:?}) in: {t}"
            );
        }
        assert!(
            !t.contains("concurrent mode") && !t.contains("`concurrent`"),
            "a concurrency mode nobody declared in: {t}"
        );
    }
    for v in &c.variants {
        assert_eq!(v.workload_mode, None, "{}: mode not declared", v.name);
    }
}

/// The acceptance run: the hyper service native, the wstd component under three Wasm runtimes
/// in one command, a body check, `--env` and `--dir` for the guests. The component answers 500
/// unless it can read the `--dir` file, and the body check needs the `--env` greeting.
#[test]
fn a_users_services_run_across_three_wasm_runtimes_with_a_body_check() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("name.txt"), "tester\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("byo");
    let native = native_cmd();
    let wasm = wstd_hello().to_str().unwrap().to_string();
    let mapping = format!("{}::/data", data.path().display());
    let args = [
        "--native-cmd",
        &native,
        "--wasm",
        &wasm,
        "--wasm-runtime",
        "wasi-http,wasi-http-winch,wasi-http-pulley",
        "--env",
        "GREETING=howdy",
        "--dir",
        &mapping,
        "--check",
        "status == 200",
        "--check",
        "body contains howdy from",
    ];
    let c = compare_ok(&args, &dir);
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "native-cmd",
            "wasm-wasi-http",
            "wasm-wasi-http-winch",
            "wasm-wasi-http-pulley"
        ]
    );
    for v in &c.variants {
        assert_eq!(v.status, VariantStatus::Ok, "{v:?}");
        let run = &v.runs[0];
        assert!(
            run.checks.passes > 0 && run.checks.fails == 0,
            "{}: every response is 200 with the greeting: {:?}",
            v.name,
            run.checks
        );
        assert_eq!(run.cold_start_ms.len(), 1);
    }
    let modes: Vec<_> = c.variants[1..].iter().map(|v| v.runtime.mode).collect();
    assert_eq!(
        modes,
        [
            wasmbench_vocab::ExecMode::CraneliftJit,
            wasmbench_vocab::ExecMode::Winch,
            wasmbench_vocab::ExecMode::Pulley
        ]
    );
    assert_no_echo_facts(&dir, &c);
    assert_eq!(
        c.plan.readiness.as_deref(),
        Some("first accepted TCP connection on the server's port")
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("Process spawn → first accepted TCP connection"),
        "the cold-start row names the rule used: {md}"
    );
    // hyper on a two-worker tokio runtime: its threads are measured and stated.
    let threads = c.variants[0].runs[0]
        .server_counts
        .as_ref()
        .map(|s| s.threads)
        .unwrap();
    assert!(threads >= 3, "hyper-hello runs main + 2 workers: {threads}");
    let line = c
        .explanation
        .iter()
        .find(|e| e.starts_with("Concurrency model of native-cmd"))
        .unwrap();
    assert!(
        line.contains("not declared") && line.contains(&format!("{threads} threads")),
        "{line}"
    );
    for name in ["native-cmd", "wasm-wasi-http"] {
        assert!(
            c.plan
                .fairness
                .iter()
                .any(|f| f.starts_with(name) && f.contains("the user's")),
            "{name}: {:?}",
            c.plan.fairness
        );
    }
}

/// A service that closes every connection (`Connection: close` on each answer) under a
/// keep-alive load: the report must not call connections reused, and the warning names the
/// count it measured.
#[test]
fn a_service_that_closes_connections_is_reported_as_measured() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("close");
    let native = native_cmd();
    let c = compare_ok(&["--native-cmd", &native, "--env", "CLOSE=1"], &dir);
    let run = &c.variants[0].runs[0];
    let opened = run.connections_opened.unwrap();
    assert!(
        opened * 10 >= run.http_reqs * 9,
        "a connection per request: {opened} for {}",
        run.http_reqs
    );
    let w = c
        .warnings
        .iter()
        .find(|w| w.contains("the server closed connections"))
        .unwrap_or_else(|| panic!("no connection warning: {:?}", c.warnings));
    assert!(
        w.contains(&format!("{opened} TCP connections were opened")),
        "{w}"
    );
    for e in &c.explanation {
        assert!(
            !e.contains("opened once and reused"),
            "a reuse claim the run contradicts: {e}"
        );
    }
    assert_no_echo_facts(&dir, &c);
}

/// A ready path the service answers with 404 fails at once (exit 11), not after the 60 s
/// readiness timeout.
#[test]
fn a_ready_path_answering_404_fails_at_once() {
    let native = native_cmd();
    let mut args = vec!["compare", "--native-cmd", &native, "--ready-path", "/nope"];
    args.extend(SHORT);
    assert_failed_fast(
        "404 ready path",
        &run(&args),
        SERVER_START,
        &["GET /nope answered 404", "--ready-path"],
    );
}

/// A component given to a runtime for core modules is refused before anything runs (exit
/// 10), naming the runtimes that can run it.
#[test]
fn a_runtime_that_cannot_load_the_wasm_is_refused_before_anything_runs() {
    let native = native_cmd();
    let wasm = wstd_hello().to_str().unwrap().to_string();
    let mut args = vec![
        "compare",
        "--native-cmd",
        &native,
        "--wasm",
        &wasm,
        "--wasm-runtime",
        "wasi-http,wasmtime-wasip1",
    ];
    args.extend(SHORT);
    let r = run(&args);
    assert_failed_fast(
        "wrong runtime",
        &r,
        ARTIFACT,
        &["is a wasi:http/proxy component", "--wasm-runtime"],
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
    assert!(
        lines[0].contains("is a wasi:http/proxy component")
            && lines[0].contains("wasm-wasmtime-wasip1")
            && lines[0].contains("wasi-http-winch")
            && lines[0].contains("--wasm-runtime")
            && !lines[0].contains("--target"),
        "{}",
        lines[0]
    );
    assert!(
        !r.stderr.contains("native-cmd run"),
        "nothing ran before the refusal: {}",
        r.stderr
    );
}

/// A variant named explicitly whose runtime is not installed stops the run before anything
/// starts (exit 11); `--variants all` skips it instead.
#[test]
fn an_uninstalled_runtime_named_explicitly_fails_at_once() {
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap();
    let r = run_with(
        &["compare", "--variants", "native,wasmer", "--quick"],
        &[("PATH", path)],
    );
    assert_failed_fast(
        "uninstalled runtime",
        &r,
        SERVER_START,
        &["wasmer", "--variants all"],
    );
}

/// The same refusal for a runtime named for the user's `.wasm` names the flag they used.
#[test]
fn an_uninstalled_runtime_for_a_users_wasm_names_wasm_runtime() {
    let empty = tempfile::tempdir().unwrap();
    let wasm = wstd_hello().to_str().unwrap().to_string();
    let r = run_with(
        &[
            "compare",
            "--wasm",
            &wasm,
            "--wasm-runtime",
            "wasmtime-cli-serve",
            "--quick",
        ],
        &[("PATH", empty.path().to_str().unwrap())],
    );
    assert_failed_fast(
        "uninstalled runtime for --wasm",
        &r,
        SERVER_START,
        &[
            "wasmtime-cli-serve",
            "leave it out of --wasm-runtime",
            "--wasm-runtime all",
        ],
    );
    assert!(!r.stderr.contains("--variants"), "{}", r.stderr);
}

/// A WASI 0.3 component under a 0.2-only wasi:http variant, and a 0.2 one under a 0.3
/// variant, are each refused in one line naming the variants that take it.
#[test]
fn wasi_http_0_2_and_0_3_components_go_to_the_variants_that_take_them() {
    let native = native_cmd();
    let p3 = wasmbench_runtime::build::build_echo_http_p3(&BuildOptions::default())
        .expect("building the WASI 0.3 echo")
        .path;
    let p2 = wasmbench_runtime::build::build_echo_http(&BuildOptions::default())
        .expect("building the WASI 0.2 echo")
        .path;
    for (wasm, runtime, is, takers) in [
        (
            &p3,
            "wasi-http",
            "is a wasi:http/service component (WASI 0.3)",
            "wasi-http-p3, wasi-http-p3-reuse",
        ),
        (
            &p2,
            "wasi-http-p3",
            "is a wasi:http/proxy component (WASI 0.2)",
            "wasi-http-winch",
        ),
    ] {
        let wasm = wasm.to_str().unwrap();
        let mut args = vec![
            "compare",
            "--native-cmd",
            &native,
            "--wasm",
            wasm,
            "--wasm-runtime",
            runtime,
        ];
        args.extend(SHORT);
        let r = run(&args);
        assert_failed_fast("wrong WASI version", &r, ARTIFACT, &[is, takers]);
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    }
}

/// `--variants` with `--wasm` names the Wasm runtimes; a native variant there is refused with
/// the flag to use instead.
#[test]
fn variants_with_wasm_name_its_runtimes() {
    let wasm = wstd_hello().to_str().unwrap().to_string();
    let r = run(&["compare", "--wasm", &wasm, "--variants", "native,wasi-http"]);
    assert_eq!(r.code, Some(104), "{}", r.stderr);
    assert!(r.stderr.contains("--native-cmd"), "{}", r.stderr);
    let r = run(&[
        "compare",
        "--wasm",
        &wasm,
        "--variants",
        "wasi-http",
        "--wasm-runtime",
        "wasi-http-winch",
    ]);
    assert_eq!(r.code, Some(104), "{}", r.stderr);
    assert!(r.stderr.contains("give one of them"), "{}", r.stderr);
}

/// `--baseline` for a CI pipeline: a saved run is compared figure by figure; a run under
/// another plan is refused before anything runs; a figure worse beyond `--fail-on-regression`
/// gives exit 16 and names itself, with the report still written.
#[test]
fn a_saved_run_is_a_baseline_and_a_regression_beyond_the_threshold_exits_16() {
    const REGRESSED: i32 = 16;
    /// `Exit::Input` in the README table: a saved comparison that cannot be used.
    const BAD_INPUT: i32 = 18;
    const INVALID_CONFIG: i32 = 104;
    let out = tempfile::tempdir().unwrap();
    let saved_dir = out.path().join("saved");
    let native = native_cmd();
    let saved = compare_ok(&["--native-cmd", &native], &saved_dir);
    let saved_arg = saved_dir.to_str().unwrap();

    // Same plan, unchanged service: every compared figure is there, against the saved medians.
    let again_dir = out.path().join("again");
    let again = compare_ok(
        &["--native-cmd", &native, "--baseline", saved_arg],
        &again_dir,
    );
    let s = again
        .saved
        .as_ref()
        .expect("a comparison with the saved run");
    let base = &saved.variants[0];
    for f in [
        wasmbench_report::Figure::ThroughputRps,
        wasmbench_report::Figure::HttpReqWaitingP95Ms,
        wasmbench_report::Figure::ColdStartMs,
    ] {
        let ch = s
            .changes
            .iter()
            .find(|c| c.figure == f)
            .unwrap_or_else(|| panic!("no {f:?} in {:?}", s.changes));
        assert_eq!(Some(ch.saved), base.figure_value(f), "{f:?}");
        assert_eq!(Some(ch.now), again.variants[0].figure_value(f), "{f:?}");
    }
    let md = std::fs::read_to_string(again_dir.join("report.md")).unwrap();
    assert!(md.contains("## Against the saved run"), "{md}");

    // Another plan: refused at once, naming the difference.
    let mut other = vec!["compare", "--native-cmd", &native, "--baseline", saved_arg];
    other.extend(SHORT);
    let vus = other.len() - SHORT.len() + 1;
    other[vus] = "8"; // --vus 8 instead of 4
    let r = run(&other);
    assert_failed_fast("another plan", &r, INVALID_CONFIG, &["--vus 4 then, 8 now"]);
    let r = run(&[
        "compare",
        "--native-cmd",
        &native,
        "--baseline",
        "/nonexistent/run",
    ]);
    assert_failed_fast(
        "no saved run",
        &r,
        BAD_INPUT,
        &["--baseline /nonexistent/run"],
    );

    // A saved run a hundred times faster: this one regressed beyond 5%, however much faster
    // the machine is now than when the saved run was made.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved_dir.join("comparison.json")).unwrap())
            .unwrap();
    for run in json["variants"][0]["runs"].as_array_mut().unwrap() {
        let t = run["throughput_rps"].as_f64().unwrap();
        run["throughput_rps"] = serde_json::json!(t * 100.0);
    }
    std::fs::write(saved_dir.join("comparison.json"), json.to_string()).unwrap();
    let worse_dir = out.path().join("worse");
    let mut args = vec![
        "compare",
        "--out",
        worse_dir.to_str().unwrap(),
        "--native-cmd",
        &native,
        "--baseline",
        saved_arg,
        "--fail-on-regression",
        "5%",
    ];
    args.extend(SHORT);
    let r = run(&args);
    assert_eq!(r.code, Some(REGRESSED), "{}", r.stderr);
    assert!(
        r.stderr.contains("native-cmd throughput -"),
        "names the figure: {}",
        r.stderr
    );
    let written = wasmbench_report::read_dir(&worse_dir).unwrap();
    let regressed: Vec<_> = written.saved.unwrap().regressions().cloned().collect();
    // One repeat a side has no interval: the ratio alone is judged, so other figures may
    // count too on a noisy machine; the hundredfold one must.
    assert!(
        regressed
            .iter()
            .any(|c| c.figure == wasmbench_report::Figure::ThroughputRps && c.ratio < 0.1),
        "{regressed:?}"
    );
}

/// A service that answers the plan's request with 400: the warm-up says what came back (the
/// status and the body's first line) and what the request must get, instead of only that
/// nothing succeeded.
#[test]
fn a_service_that_refuses_the_plans_request_is_told_what_it_answered() {
    let service = concat!(
        "python3 -c \"import http.server as h\n",
        "class H(h.BaseHTTPRequestHandler):\n",
        "    def do_GET(s):\n",
        "        b = bytes('\\n  missing header X-Tenant\\nsee /docs\\n', 'ascii')\n",
        "        s.send_response(400); s.send_header('Content-Length', str(len(b))); s.end_headers()\n",
        "        s.wfile.write(b)\n",
        "    def log_message(s, *a):\n",
        "        pass\n",
        "h.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\"",
    );
    let r = run(&[
        "compare",
        "--native-cmd",
        service,
        "--vus",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "1s",
        "--repeats",
        "1",
        "--cold-starts",
        "1",
        "--no-callgrind",
    ]);
    assert_ne!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("400 ×"), "names the status: {}", r.stderr);
    assert!(
        r.stderr.contains("a 400 said \"missing header X-Tenant\""),
        "quotes the body's first line: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("GET / must be answered with a 2xx or 3xx"),
        "says what the request must get: {}",
        r.stderr
    );
}

/// A native server whose listen backlog (5, Python's stdlib default) is far below the VUs:
/// most VUs wait in connect and the run overruns its plan. The report says so with the
/// figures, marks the variant's figures, and its throughput is over the planned window.
#[test]
fn a_server_with_a_small_listen_backlog_is_reported_as_not_as_planned() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("backlog");
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python/server.py");
    let native = format!("python3 {} --port {{port}} --backlog 5", server.display());
    // SHORT's plan, with 100 VUs for 2 s.
    let mut args = vec![
        "compare",
        "--out",
        dir.to_str().unwrap(),
        "--native-cmd",
        &native,
        "--no-callgrind",
        "--vus",
        "100",
        "--duration",
        "2s",
    ];
    args.extend(&SHORT[4..]);
    let r = run(&args);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let c = wasmbench_report::read_dir(&dir).unwrap();
    let w = c
        .warnings
        .iter()
        .find(|w| w.starts_with("Runs that did not go as planned"))
        .unwrap_or_else(|| panic!("{:#?}", c.warnings));
    assert!(w.contains("native-cmd: "), "{w}");
    let v = &c.variants[0];
    for run in &v.runs {
        let planned = run.planned.expect("the engine says what was planned");
        assert_eq!(planned.vus, Some(100));
        let tail = run.tail.as_ref().unwrap();
        let started: u64 = tail
            .buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| tail.start_s(*i) < planned.duration_s)
            .map(|(_, b)| b.requests)
            .sum();
        if planned.overran(run.duration_s) {
            assert!(w.contains("runs lasted up to"), "{w}");
            let window = started as f64 / planned.duration_s;
            assert!(
                (run.throughput_rps - window).abs() < 1e-6,
                "over the planned window: {} vs {window}",
                run.throughput_rps
            );
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| throughput |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains('⚠'), "the figures are marked: {row}");
}
