//! The comparison loop against in-process servers ([`FakeLauncher`]): real load, real HTTP on
//! 127.0.0.1, short runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmbench_report::{Comparison, VariantResult, VariantStatus};

use super::{Event, Options, run_with};
use crate::config::{CompareConfig, Design, Pinning, VariantSpec};
use crate::launcher::fake::FakeLauncher;

/// The smallest WASI command module: one empty function exported as `_start`.
const WASM_MODULE: &[u8] = b"\0asm\x01\0\0\0\
    \x01\x04\x01\x60\0\0\
    \x03\x02\x01\0\
    \x07\x0a\x01\x06_start\0\0\
    \x0a\x04\x01\x02\0\x0b";

/// A comparison of `variants` (native, each with an artifact file of its own), 2 VUs, `load`
/// per measured run, no warm-up, no cold starts, no pinning, each repeat restarting the
/// servers.
fn config(
    dir: &tempfile::TempDir,
    variants: &[&str],
    repeats: u32,
    load: Duration,
) -> CompareConfig {
    let mut cfg = CompareConfig {
        repeats,
        design: Design::Restart,
        warmup: Duration::ZERO,
        cold_starts: 0,
        pinning: Pinning::Off,
        variants: variants
            .iter()
            .map(|n| spec(dir, n, "native", b"#!/bin/sh\n"))
            .collect(),
        ..CompareConfig::default()
    };
    cfg.load.vus = 2;
    cfg.load.duration = load;
    cfg.load.timeout = Duration::from_secs(5);
    cfg
}

fn spec(dir: &tempfile::TempDir, name: &str, runtime: &str, content: &[u8]) -> VariantSpec {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    VariantSpec {
        name: name.into(),
        runtime: runtime.into(),
        target: String::new(),
        env: Vec::new(),
        artifact: Some(path),
        command: None,
    }
}

/// Options whose events are collected, and whose events also go to `also`.
fn options(
    cancel: CancellationToken,
    also: impl Fn(&Event) + Send + Sync + 'static,
) -> (Options, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let opts = Options {
        cancel,
        host_exe: "wasmbench".into(),
        build: Default::default(),
        command_line: vec!["wasmbench".into(), "compare".into()],
        on_event: Arc::new(move |e: Event| {
            also(&e);
            sink.lock().unwrap().push(e);
        }),
        raw_dir: None,
        allow_outbound: Vec::new(),
        count_syscalls: false,
        callgrind: crate::CallgrindPass::Off,
        capacity: None,
    };
    (opts, events)
}

fn variant<'a>(c: &'a Comparison, name: &str) -> &'a VariantResult {
    c.variants
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no variant {name} in {:?}", c.variants))
}

fn repeats_of(v: &VariantResult) -> Vec<u32> {
    v.runs.iter().map(|r| r.repeat).collect()
}

/// Every run answered requests, and none failed.
fn assert_measured(v: &VariantResult, repeats: u32) {
    assert_eq!(v.status, VariantStatus::Ok, "{}: {:?}", v.name, v.reason);
    assert_eq!(
        repeats_of(v),
        (0..repeats).collect::<Vec<_>>(),
        "{}",
        v.name
    );
    for r in &v.runs {
        assert!(
            r.http_reqs > 0,
            "{} repeat {}: no requests",
            v.name,
            r.repeat
        );
        assert_eq!(
            r.http_req_failed_rate, 0.0,
            "{} repeat {}",
            v.name, r.repeat
        );
    }
}

#[tokio::test]
async fn each_repeat_starts_one_variant_later_in_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &["a", "b", "c"], 3, Duration::from_millis(200));
    cfg.cold_starts = 1;
    let (opts, events) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default();

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    // One cold start, then the measured server, per variant and repeat.
    let order = ["a", "a", "b", "b", "c", "c"]
        .into_iter()
        .chain(["b", "b", "c", "c", "a", "a"])
        .chain(["c", "c", "a", "a", "b", "b"])
        .collect::<Vec<_>>();
    assert_eq!(launcher.order(), order);
    let done: Vec<(String, u32)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::RunDone {
                variant, repeat, ..
            } => Some((variant.clone(), *repeat)),
            _ => None,
        })
        .collect();
    let expected: Vec<(String, u32)> = [
        ("a", 0),
        ("b", 0),
        ("c", 0),
        ("b", 1),
        ("c", 1),
        ("a", 1),
        ("c", 2),
        ("a", 2),
        ("b", 2),
    ]
    .into_iter()
    .map(|(v, r)| (v.to_string(), r))
    .collect();
    assert_eq!(done, expected);
    // The report keeps the declared order, each variant's runs by repeat.
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for v in &c.variants {
        assert_measured(v, 3);
        for r in &v.runs {
            assert_eq!(r.cold_start_ms.len(), 1, "{} repeat {}", v.name, r.repeat);
        }
    }
    assert!(!c.meta.partial);
}

#[tokio::test]
async fn a_variant_that_cannot_launch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &["a", "b", "c"], 2, Duration::from_millis(200));
    let (opts, events) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default().refuse("b", "b's runtime crashed at start");

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    let b = variant(&c, "b");
    assert_eq!(b.status, VariantStatus::Failed);
    assert_eq!(b.reason.as_deref(), Some("b's runtime crashed at start"));
    assert!(b.runs.is_empty());
    assert_measured(variant(&c, "a"), 2);
    assert_measured(variant(&c, "c"), 2);
    // A failed variant is not tried again in later repeats.
    assert_eq!(launcher.order(), ["a", "b", "c", "c", "a"]);
    let failed: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Failed { variant, reason } => Some((variant.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [("b".to_string(), "b's runtime crashed at start".to_string())]
    );
    assert!(!c.meta.partial);
}

#[tokio::test]
async fn a_server_that_dies_during_the_load_fails_its_variant_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(300));
    let (opts, _) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default().die_after("b", 20);

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    let b = variant(&c, "b");
    assert_eq!(b.status, VariantStatus::Failed);
    let reason = b.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("server exited during the load (exit status: 101)"),
        "{reason}"
    );
    assert!(
        reason.contains("fake server died after 20 requests"),
        "the reason carries the server's stderr: {reason}"
    );
    assert!(b.runs.is_empty(), "a run whose server died is not measured");
    assert_measured(variant(&c, "a"), 2);
    assert_eq!(launcher.order(), ["a", "b", "a"]);
}

#[tokio::test]
async fn an_unavailable_runtime_named_explicitly_stops_the_run_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(200));
    let (opts, _) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default().unavailable("b", "wasmedge is not on PATH");

    let e = run_with(&cfg, &opts, &launcher)
        .await
        .unwrap_err()
        .to_string();

    assert!(
        e.contains("b") && e.contains("wasmedge is not on PATH") && e.contains("--variants all"),
        "{e}"
    );
    assert!(launcher.order().is_empty(), "nothing was started");
}

#[tokio::test]
async fn an_unavailable_runtime_is_skipped_with_its_reason_when_asked_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(200));
    cfg.skip_unavailable = true;
    let (opts, events) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default().unavailable("b", "wasmedge is not on PATH");

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    let b = variant(&c, "b");
    assert_eq!(b.status, VariantStatus::Skipped);
    assert_eq!(b.reason.as_deref(), Some("wasmedge is not on PATH"));
    assert!(b.runs.is_empty());
    assert!(b.artifact.is_none(), "a skipped variant is not built");
    assert_measured(variant(&c, "a"), 2);
    assert_eq!(launcher.order(), ["a", "a"]);
    let skipped = events.lock().unwrap().iter().any(|e| {
        matches!(e, Event::Skipped { variant, reason }
            if variant == "b" && reason == "wasmedge is not on PATH")
    });
    assert!(skipped, "a Skipped event names b and why");
    assert!(!c.meta.partial);
}

#[tokio::test]
async fn an_interruption_during_a_load_keeps_the_finished_runs_and_marks_partial() {
    let dir = tempfile::tempdir().unwrap();
    let load = Duration::from_millis(400);
    let cfg = config(&dir, &["a", "b"], 3, load);
    let cancel = CancellationToken::new();
    let (opts, _) = options(cancel.clone(), |_| {});
    // Ctrl-C while b's first measured run is under way.
    let launcher = FakeLauncher::default().cancel_after("b", 10, cancel);

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    assert!(c.meta.partial);
    assert_eq!(
        launcher.order(),
        ["a", "b"],
        "nothing starts after the interruption"
    );
    let a = variant(&c, "a");
    assert_measured(a, 1);
    assert!(
        a.runs[0].duration_s >= load.as_secs_f64() * 0.9,
        "a's run finished before the interruption: {} s",
        a.runs[0].duration_s
    );
    let b = variant(&c, "b");
    assert_measured(b, 1);
    assert!(
        b.runs[0].duration_s < load.as_secs_f64() * 0.9,
        "b's run was cut short: {} s",
        b.runs[0].duration_s
    );
}

#[tokio::test]
async fn an_interruption_between_runs_starts_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(200));
    let cancel = CancellationToken::new();
    let on_done = cancel.clone();
    // Ctrl-C as the first measured run ends.
    let (opts, _) = options(cancel, move |e| {
        if matches!(e, Event::RunDone { .. }) {
            on_done.cancel();
        }
    });
    let launcher = FakeLauncher::default();

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    assert!(c.meta.partial);
    assert_eq!(launcher.order(), ["a"]);
    assert_measured(variant(&c, "a"), 1);
    let b = variant(&c, "b");
    assert_eq!(b.status, VariantStatus::Ok, "b was not run, not failed");
    assert!(b.runs.is_empty());
}

#[tokio::test]
async fn warm_up_requests_are_not_counted_in_the_measured_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &["a"], 1, Duration::from_millis(300));
    cfg.warmup = Duration::from_millis(300);
    let launcher = FakeLauncher::default();
    let launches = launcher.launches();
    let at_load_start = Arc::new(Mutex::new(None));
    let snapshot = Arc::clone(&at_load_start);
    // The server's count when the measured load begins: every warm-up request, nothing else.
    let (opts, _) = options(CancellationToken::new(), move |e| {
        if let Event::Phase { phase: "load", .. } = e {
            let served = launches.lock().unwrap()[0].served.clone().unwrap();
            *snapshot.lock().unwrap() = Some(served.requests());
        }
    });

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    let warm_up = at_load_start.lock().unwrap().expect("a load phase started");
    let served = launcher.launches().lock().unwrap()[0]
        .served
        .clone()
        .unwrap();
    let total = served.requests();
    let a = variant(&c, "a");
    assert_measured(a, 1);
    assert!(warm_up > 0, "the warm-up sent requests");
    assert_eq!(
        a.runs[0].http_reqs,
        total - warm_up,
        "measured requests are the server's count after the warm-up ({warm_up} of {total})"
    );
}

#[tokio::test]
async fn a_wasm_variant_compiles_once_and_its_first_start_is_no_cold_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &[], 2, Duration::from_millis(200));
    cfg.variants = vec![spec(&dir, "w", "wasmtime-wasip1", WASM_MODULE)];
    cfg.cold_starts = 1;
    let (opts, events) = options(CancellationToken::new(), |_| {});
    let launcher =
        FakeLauncher::default().host_report("w", r#"{"compile_ms": 12.5, "pooling": true}"#);

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    // Compile once, then a cold start and the measured server per repeat.
    assert_eq!(launcher.order(), ["w"; 5]);
    let compiles = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Phase { phase, .. } if *phase == crate::session::FIRST_START
            )
        })
        .count();
    assert_eq!(compiles, 1);
    let w = variant(&c, "w");
    assert_measured(w, 2);
    for r in &w.runs {
        assert_eq!(r.cold_start_ms.len(), 1, "repeat {}", r.repeat);
    }
    let artifact = w.artifact.as_ref().expect("the artifact is recorded");
    assert_eq!(artifact.compile_ms, Some(12.5));
    assert_eq!(
        w.runtime.details.get("host.pooling").map(String::as_str),
        Some("true")
    );
    // What the launch recorded (a command line, an AOT file) reaches the report.
    let command = w
        .runtime
        .details
        .get("command")
        .expect("the launch's details");
    assert!(command.starts_with("fake http://127.0.0.1:"), "{command}");
}

/// With a precision target two identical servers' ratios reach, repeating stops once it is
/// met (never before the fewest repeats a ratio interval is trusted from), and the record
/// says so.
#[tokio::test]
async fn precision_mode_stops_when_the_target_is_met() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(250));
    let mut goal = crate::PrecisionGoal::new(0.9);
    goal.max_time = Duration::from_secs(30);
    cfg.precision = Some(goal);
    let (opts, _) = options(CancellationToken::new(), |_| {});

    let c = run_with(&cfg, &opts, &FakeLauncher::default())
        .await
        .unwrap();

    // The in-process servers share this test process's CPU with the other tests, so their CPU
    // ratio may need a few more repeats than the fewest.
    let p = c.precision.clone().expect("a precision record");
    assert_eq!(
        p.stopped,
        wasmbench_report::PrecisionStop::TargetMet,
        "{p:?}"
    );
    assert!(p.repeats >= crate::PrecisionGoal::MIN_REPEATS, "{p:?}");
    let reached = p.reached.unwrap();
    assert!(reached <= 0.9, "{p:?}");
    assert!(p.limited_by.as_deref().unwrap().starts_with("b "), "{p:?}");
    assert_measured(variant(&c, "a"), p.repeats);
    assert_measured(variant(&c, "b"), p.repeats);
    assert_eq!(c.plan.repeats, p.repeats);
    // The reported figure is the one the intervals in the report give.
    let i = c
        .ratio_interval("b", wasmbench_report::Figure::ThroughputRps)
        .unwrap();
    let r = c
        .ratio("b", wasmbench_report::Figure::ThroughputRps)
        .unwrap();
    assert!(i.relative_half_width(r) <= reached + 1e-12);
}

/// A target no run reaches ends on the time budget: no repeat starts that would not end in
/// it, and the record names the ratio that limited the precision.
#[tokio::test]
async fn precision_mode_stops_at_the_time_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(200));
    let mut goal = crate::PrecisionGoal::new(1e-6);
    goal.max_time = Duration::from_millis(1500);
    cfg.precision = Some(goal);
    let (opts, _) = options(CancellationToken::new(), |_| {});

    let started = std::time::Instant::now();
    let c = run_with(&cfg, &opts, &FakeLauncher::default())
        .await
        .unwrap();
    let spent = started.elapsed();

    let p = c.precision.clone().unwrap();
    assert_eq!(
        p.stopped,
        wasmbench_report::PrecisionStop::TimeBudget,
        "{p:?}"
    );
    assert!(p.repeats >= 2 && p.repeats < goal.max_repeats, "{p:?}");
    assert!(p.reached.unwrap() > 1e-6 && p.limited_by.is_some(), "{p:?}");
    // The budget bounds the repeats (plus one repeat's worth of slack for the estimate).
    assert!(spent < Duration::from_secs(4), "{spent:?}");
    let text = wasmbench_report::render(&c, wasmbench_report::Format::Text).unwrap();
    assert!(
        text.contains("time budget spent before the target was met"),
        "{text}"
    );
}

/// The repeat cap ends a run whose target is out of reach inside a generous budget.
#[tokio::test]
async fn precision_mode_stops_at_the_repeat_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, &["a", "b"], 2, Duration::from_millis(150));
    let mut goal = crate::PrecisionGoal::new(1e-6);
    goal.max_repeats = 3;
    cfg.precision = Some(goal);
    let (opts, _) = options(CancellationToken::new(), |_| {});

    let c = run_with(&cfg, &opts, &FakeLauncher::default())
        .await
        .unwrap();

    let p = c.precision.clone().unwrap();
    assert_eq!(p.stopped, wasmbench_report::PrecisionStop::RepeatCap);
    assert_eq!(p.repeats, 3);
    assert_measured(variant(&c, "b"), 3);
}

/// `--capacity`: after each measured run, a search on the same server finds each variant's
/// capacity, built here as one request per slot (2 ms: 500 req/s; 4 ms: 250 req/s); the report
/// has the capacity row, its ratio and the search's steps.
#[tokio::test]
async fn capacity_searches_find_each_servers_built_in_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &["a", "b"], 1, Duration::from_millis(300));
    let (mut opts, _) = options(CancellationToken::new(), |_| {});
    // Overload by a share e over a step of T seconds queues e·T seconds of work: 1 s steps
    // and a 100 ms objective catch 10% over capacity.
    opts.capacity = Some(wasmbench_load::capacity::CapacityOptions {
        step_duration: Duration::from_secs(1),
        calibration: Duration::from_millis(300),
        resolution: 0.1,
        slo: vec![wasmbench_load::Threshold::parse_cli("http_req_waiting=p(99)<100").unwrap()],
        ..Default::default()
    });
    let launcher = FakeLauncher::default()
        .throttle("a", Duration::from_millis(2))
        .throttle("b", Duration::from_millis(4));

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    for (name, built) in [("a", 500.0), ("b", 250.0)] {
        let v = variant(&c, name);
        let search = v.runs[0].capacity.as_ref().expect("a capacity search");
        assert_eq!(search.limit, "server", "{name}: {search:#?}");
        let found = search.capacity_rps.unwrap();
        assert!(
            (found - built).abs() <= 0.15 * built,
            "{name}: found {found} req/s, built for {built}"
        );
        assert!(
            search.steps.iter().any(|s| s.verdict == "fail"),
            "{search:#?}"
        );
        // In-process servers share this process's CPU clock with the load generator (and with
        // the other tests): no load-generator share is claimed from it.
        assert!(search.steps.iter().all(|s| s.loadgen_cpu_share.is_none()));
    }
    let r = c.ratio("b", wasmbench_report::Figure::CapacityRps).unwrap();
    assert!((0.35..=0.7).contains(&r), "b/a capacity ratio {r}");
    let text = wasmbench_report::render(&c, wasmbench_report::Format::Text).unwrap();
    assert!(text.contains("capacity at the SLO"), "{text}");
    let html = wasmbench_report::render(&c, wasmbench_report::Format::Html).unwrap();
    assert!(html.contains("by offered rate (capacity search)"));
}

/// [`config`] in the interleaved design, `block` long blocks.
fn interleaved(
    dir: &tempfile::TempDir,
    variants: &[&str],
    repeats: u32,
    load: Duration,
    block: Duration,
) -> CompareConfig {
    CompareConfig {
        design: Design::Interleaved,
        block,
        ..config(dir, variants, repeats, load)
    }
}

/// The variant names of each round, in the order their blocks ran.
fn rounds(events: &Mutex<Vec<Event>>) -> Vec<Vec<String>> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::RoundDone { rps, .. } => Some(rps.iter().map(|(v, _)| v.clone()).collect()),
            _ => None,
        })
        .collect()
}

/// The interleaved design starts each server once (after its cold starts), measures one block
/// per variant per round, and reports each block as a run of its round, so ratios pair by
/// round.
#[tokio::test]
async fn interleaved_rounds_measure_every_variant_on_one_server_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = interleaved(
        &dir,
        &["a", "b"],
        2,
        Duration::from_millis(400),
        Duration::from_millis(200),
    );
    cfg.cold_starts = 1;
    let (opts, events) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default();

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    // Two repeats of 400 ms in 200 ms blocks: four rounds; a cold start per repeat, then the
    // one server that serves every block.
    assert_eq!(launcher.order(), ["a", "a", "a", "b", "b", "b"]);
    let rounds = rounds(&events);
    assert_eq!(rounds.len(), 4, "{rounds:?}");
    for r in &rounds {
        let mut names = r.clone();
        names.sort();
        assert_eq!(names, ["a", "b"], "every round measures every variant once");
    }
    for v in &c.variants {
        assert_measured(v, 4);
        assert_eq!(v.runs[0].cold_start_ms.len(), 2, "{}", v.name);
        assert!(v.runs[1..].iter().all(|r| r.cold_start_ms.is_empty()));
        for r in &v.runs {
            assert!(
                (0.15..0.4).contains(&r.duration_s),
                "{} round {}: a block of {} s",
                v.name,
                r.repeat,
                r.duration_s
            );
        }
    }
    assert_eq!(c.plan.design, Some(Design::Interleaved));
    assert_eq!(c.plan.repeats, 4);
    assert_eq!(c.plan.cold_start_samples, 2);
    assert!(
        c.plan.fairness.iter().any(|f| f.contains("started once")),
        "{:?}",
        c.plan.fairness
    );
    // Paired by round: an interval from four pairs.
    assert!(
        c.ratio_interval("b", wasmbench_report::Figure::ThroughputRps)
            .is_some()
    );
    assert!(!c.meta.partial);
}

/// A server that dies during a block fails its variant alone; the others finish every round.
#[tokio::test]
async fn interleaved_a_server_that_dies_fails_its_variant_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = interleaved(
        &dir,
        &["a", "b"],
        1,
        Duration::from_millis(600),
        Duration::from_millis(200),
    );
    let (opts, _) = options(CancellationToken::new(), |_| {});
    let launcher = FakeLauncher::default().die_after("b", 5);

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    let b = variant(&c, "b");
    assert_eq!(b.status, VariantStatus::Failed);
    assert!(
        b.reason.as_deref().unwrap_or("").contains("exited"),
        "{:?}",
        b.reason
    );
    assert_measured(variant(&c, "a"), 3);
    assert_eq!(launcher.order(), ["a", "b"], "no server is started again");
}

/// Ctrl-C between rounds keeps every finished block, marks the result partial and stops
/// every server.
#[tokio::test]
async fn interleaved_an_interruption_keeps_the_finished_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = interleaved(
        &dir,
        &["a", "b"],
        1,
        Duration::from_millis(1000),
        Duration::from_millis(200),
    );
    let cancel = CancellationToken::new();
    let on_done = cancel.clone();
    let (opts, _) = options(cancel, move |e| {
        if let Event::RoundDone { round: 1, .. } = e {
            on_done.cancel();
        }
    });
    let launcher = FakeLauncher::default();

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    assert!(c.meta.partial);
    assert_measured(variant(&c, "a"), 2);
    assert_measured(variant(&c, "b"), 2);
    for l in launcher.launches().lock().unwrap().iter() {
        let served = l.served.clone().unwrap();
        assert!(served.stopped(), "{}'s server was stopped", l.variant);
    }
}

/// The duet design runs each round's blocks at the same time: every block of a round starts
/// before any of them ends, on servers started once.
#[tokio::test]
async fn duet_rounds_load_every_server_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = interleaved(
        &dir,
        &["a", "b"],
        1,
        Duration::from_millis(600),
        Duration::from_millis(300),
    );
    cfg.design = Design::Duet;
    let (mut opts, _) = options(CancellationToken::new(), |_| {});
    let raw = dir.path().join("runs");
    std::fs::create_dir_all(&raw).unwrap();
    opts.raw_dir = Some(raw.clone());
    let launcher = FakeLauncher::default();

    let c = run_with(&cfg, &opts, &launcher).await.unwrap();

    assert_eq!(launcher.order(), ["a", "b"]);
    let (a, b) = (variant(&c, "a"), variant(&c, "b"));
    // 600 ms of load in 300 ms blocks, times two variants: a duet measures as long as an
    // interleaved run.
    assert_measured(a, 4);
    assert_measured(b, 4);
    // Each block's own summary says when it ran: a round's blocks overlap.
    let span = |name: &str, round: u32| {
        let text = std::fs::read_to_string(raw.join(format!("{name}-r{round}.json"))).unwrap();
        let s: wasmbench_load::Summary = serde_json::from_str(&text).unwrap();
        (s.started, s.ended)
    };
    for round in 1..=4 {
        let ((a0, a1), (b0, b1)) = (span("a", round), span("b", round));
        assert!(
            a0 < b1 && b0 < a1,
            "round {round}: a ran {a0}–{a1}, b ran {b0}–{b1}"
        );
    }
    assert_eq!(c.plan.design, Some(Design::Duet));
    // Each block's load generator CPU is its own engine's threads', though blocks run at once.
    assert!(
        a.runs
            .iter()
            .chain(&b.runs)
            .all(|r| r.loadgen.as_ref().is_some_and(|l| l.cpu_ms > 0.0)),
        "{:?}",
        a.runs.iter().map(|r| &r.loadgen).collect::<Vec<_>>()
    );
}
