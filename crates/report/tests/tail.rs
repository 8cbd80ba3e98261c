//! The latency-tail explanation on real runs: the load engine drives 20 keep-alive VUs for a
//! few seconds against a real HTTP server on 127.0.0.1 whose tail has a known cause, and the
//! explanation names that cause with the run's figures.

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wasmbench_load::{Backend, Check, Executor, Plan, RunOptions, Summary, run};
use wasmbench_report::tail::{STALL_FLOOR_MS, TailKind, classify};
use wasmbench_report::*;

/// The runs share two CPUs with each other's servers: one at a time keeps their timing clean.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Ordinary service time of every test server.
const BASE: Duration = Duration::from_millis(2);

/// How a test server delays a request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Every request takes [`BASE`].
    Steady,
    /// Every connection is held for 300 ms every 2 s, from 1 s after the server's start (so the
    /// run's first second is ordinary): a request arriving then waits until the window ends.
    Stalls,
    /// Every tenth connection (accept order) takes ten times [`BASE`] per request.
    UnfairToOneInTen,
}

const STALL_EVERY: Duration = Duration::from_secs(2);
const STALL_FOR: Duration = Duration::from_millis(300);

/// Serves `GET` requests with keep-alive on a port of 127.0.0.1 from a runtime of its own; the
/// runtime and its listener end with the returned guard.
fn serve(b: Behaviour) -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("address");
    let epoch = Instant::now();
    let accepted = std::sync::Arc::new(AtomicU64::new(0));
    rt.spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let n = accepted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut have = 0;
                loop {
                    // One request head at a time (the engine sends a request after the
                    // previous response).
                    let Ok(k) = s.read(&mut buf[have..]).await else {
                        return;
                    };
                    if k == 0 {
                        return;
                    }
                    have += k;
                    if !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    have = 0;
                    let delay = match b {
                        Behaviour::Steady => BASE,
                        Behaviour::UnfairToOneInTen if n.is_multiple_of(10) => BASE * 10,
                        Behaviour::UnfairToOneInTen => BASE,
                        Behaviour::Stalls => {
                            let since = epoch.elapsed() + STALL_EVERY / 2;
                            let into = since.as_nanos() % STALL_EVERY.as_nanos();
                            let into = Duration::from_nanos(into as u64);
                            if into < STALL_FOR {
                                STALL_FOR - into
                            } else {
                                BASE
                            }
                        }
                    };
                    tokio::time::sleep(delay).await;
                    let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if s.write_all(r).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rt)
}

/// 20 VUs for `secs` against a server behaving as `b`, with the default duration check.
fn load(b: Behaviour, backend: Backend, secs: f64) -> Summary {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (addr, server) = serve(b);
    let mut plan = Plan::default();
    plan.request.url = format!("http://{addr}/");
    plan.executor = Executor::ConstantVus {
        vus: 20,
        duration: Duration::from_secs_f64(secs),
    };
    plan.graceful_stop = Duration::from_secs(2);
    plan.timeout = Duration::from_secs(5);
    plan.backend = backend;
    plan.checks = vec![
        Check::parse("status == 200").unwrap(),
        Check::parse("duration < 200").unwrap(),
    ];
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let s = client
        .block_on(run(&plan, RunOptions::default()))
        .expect("the run");
    server.shutdown_timeout(Duration::from_secs(1));
    assert!(s.counters.http_reqs > 1000, "{:?}", s.counters);
    s
}

/// The two-variant fixture with the wasm variant's runs carrying `s`'s tail (and the
/// baseline's none), explained again.
fn explained(s: &Summary) -> (Comparison, String) {
    let mut c = support::two_variants();
    for v in &mut c.variants {
        let wasm = v.is_wasm();
        for r in &mut v.runs {
            r.tail = if wasm { s.tail.clone() } else { None };
        }
    }
    c.explanation = explain(&c);
    let text = c.explanation.join("\n");
    (c, text)
}

fn check_stalls(s: &Summary) {
    let t = s.tail.as_ref().expect("every run records its tail");
    assert_eq!(t.bucket_ms, 100);
    assert_eq!(t.requests_per_vu.len(), 20);
    let kind = classify(t);
    let TailKind::Stalls {
        stalls,
        limit_ms,
        over_limit,
        ..
    } = &kind
    else {
        panic!("not stalls: {kind:?}\n{t:?}");
    };
    assert_eq!(*limit_ms, STALL_FLOOR_MS);
    // A 4.5 s run meets two of the server's windows (at ~1 s and ~3 s), 2 s apart, ~300 ms
    // each.
    assert!((2..=3).contains(&stalls.len()), "{stalls:?}");
    for w in stalls {
        assert!(
            (250.0..=450.0).contains(&w.longest_ms),
            "each stall lasts about 300 ms: {stalls:?}"
        );
    }
    for p in stalls.windows(2) {
        let gap = p[1].start_s - p[0].start_s;
        assert!((gap - 2.0).abs() <= 0.25, "2 s apart: {stalls:?}");
    }
    // Every request over 200 ms started in a stall.
    let (check, total, inside) = &over_limit[0];
    assert_eq!(check, "duration < 200");
    assert!(*total >= 20, "{over_limit:?}");
    assert!(*inside as f64 >= 0.95 * *total as f64, "{over_limit:?}");

    let (c, e) = explained(s);
    // Every format carries the sentence; the HTML report also charts the series.
    for f in [Format::Text, Format::Markdown, Format::Json, Format::Html] {
        let out = render(&c, f).expect("renders");
        assert!(out.contains("stalls, short windows in which"), "{f:?}");
    }
    let html = render(&c, Format::Html).expect("renders");
    assert!(html.contains("p99 per 100 ms of the run"), "the tail chart");
    assert!(
        html.contains("wasmtime-wasip2 (repeat 1)"),
        "its line's legend"
    );
    let line = e
        .lines()
        .find(|l| l.starts_with("Latency tail of wasmtime-wasip2"))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(line.contains(&format!("{} stalls", stalls.len())), "{line}");
    assert!(line.contains("started in them"), "{line}");
    let first = format!("at {:.1} s for about", stalls[0].start_s);
    assert!(line.contains(&first), "{line}");
    assert!(
        !e.contains("Latency tail of native"),
        "no tail recorded: {e}"
    );
}

#[test]
fn a_server_that_stalls_every_connection_is_explained_as_stalls() {
    check_stalls(&load(Behaviour::Stalls, Backend::Auto, 4.5));
}

#[test]
fn stalls_are_recorded_by_the_tokio_backend_too() {
    check_stalls(&load(Behaviour::Stalls, Backend::Tokio, 4.5));
}

#[test]
fn a_server_slow_to_one_connection_in_ten_is_explained_as_unfair_service() {
    let s = load(Behaviour::UnfairToOneInTen, Backend::Auto, 3.0);
    let t = s.tail.as_ref().expect("tail");
    let kind = classify(t);
    let TailKind::Unfair {
        starved,
        vus,
        starved_mean,
        median,
    } = kind
    else {
        panic!("not unfair: {kind:?}\n{:?}", t.requests_per_vu);
    };
    assert_eq!((starved, vus), (2, 20), "{:?}", t.requests_per_vu);
    let share = starved_mean / median;
    assert!((0.05..=0.3).contains(&share), "about a tenth: {share}");
    let (_, e) = explained(&s);
    assert!(
        e.contains("unfair service, 2 of 20 VUs (10% of the connections"),
        "{e}"
    );
    assert!(!e.contains(" stall"), "{e}");
}

#[test]
fn a_steady_server_gets_neither_sentence() {
    let s = load(Behaviour::Steady, Backend::Tokio, 3.0);
    let t = s.tail.as_ref().expect("tail");
    assert_eq!(classify(t), TailKind::Steady, "{t:?}");
    // ~30 buckets with requests, each median near the 2 ms service time.
    assert!(t.buckets.len() >= 29, "{}", t.buckets.len());
    let (mut c, e) = explained(&s);
    assert!(!e.contains("Latency tail of"), "{e}");

    // In a block design the chart runs every block end to end, both variants on it.
    c.plan.design = Some(wasmbench_report::Design::Duet);
    for v in &mut c.variants {
        for r in &mut v.runs {
            r.tail = s.tail.clone();
            r.duration_s = s.duration_s;
        }
    }
    let blocks = c.variants[0].runs.len();
    assert!(blocks >= 2, "{blocks}");
    let html = render(&c, Format::Html).expect("renders");
    assert!(
        html.contains("every measured block end to end"),
        "the tail chart"
    );
    for v in &c.variants {
        let legend = format!("{} ({blocks} blocks)", v.name);
        assert!(html.contains(&legend), "{legend}");
    }
    // The x axis reaches into the last block, past the others' 3 s each.
    let ticks: Vec<f64> = html
        .split("</text>")
        .filter_map(|before| {
            let text = before.rsplit('>').next()?.trim();
            text.strip_suffix(" s")?.parse().ok()
        })
        .collect();
    let last = ticks.iter().copied().fold(0.0, f64::max);
    assert!(
        last >= 3.0 * (blocks - 1) as f64,
        "the axis ends at {last} s: {ticks:?}"
    );
}

/// A steady run whose requests now and then went over a check's limit gets the steady sentence
/// with its figures; one without any gets none.
#[test]
fn requests_over_a_limit_in_a_steady_run_are_a_spread() {
    let bucket = |max_ms: f64| TailBucket {
        requests: 1000,
        p50_ms: 1.0,
        p99_ms: max_ms,
        max_ms,
    };
    let mut t = Tail {
        bucket_ms: 100,
        buckets: (0..100)
            .map(|i| bucket(if i % 10 == 3 { 420.0 } else { 4.0 }))
            .collect(),
        over_limit: Vec::new(),
        requests_per_vu: vec![5000, 4000, 3500, 5200],
    };
    assert_eq!(classify(&t), TailKind::Steady);
    let mut c = support::two_variants();
    let set = |c: &mut Comparison, t: &Tail| {
        for v in &mut c.variants {
            let wasm = v.is_wasm();
            for r in &mut v.runs {
                r.tail = wasm.then(|| t.clone());
                r.http_reqs = 100_000;
            }
        }
        explain(c).join("\n")
    };
    let e = set(&mut c, &t);
    assert!(!e.contains("Latency tail of"), "nothing over a limit: {e}");
    t.over_limit.push(OverLimit {
        check: "duration < 200".into(),
        limit_ms: 200.0,
        buckets: vec![[3, 2], [13, 3], [23, 1]],
    });
    let e = set(&mut c, &t);
    let runs = c.variants[1].runs.len();
    let expected = format!(
        "Latency tail of wasmtime-wasip2: a steady spread, neither stalls nor unfair service: \
         {} requests ({:.2}%) over `duration < 200` in {runs} of {runs} repeats, the longest 420ms, \
         came a few at a time while the other requests kept being served; every VU \
         (connection) completed at least 78% of its run's median VU's requests.",
        6 * runs,
        100.0 * 6.0 / 100_000.0
    );
    assert!(e.contains(&expected), "{expected}\n{e}");

    // One run of three with a starved connection: mostly a spread, and that run is counted.
    assert_eq!(runs, 3);
    c.variants[1].runs[2].tail.as_mut().unwrap().requests_per_vu = vec![5000, 4000, 4500, 100];
    c.explanation = explain(&c);
    let e = c.explanation.join("\n");
    assert!(
        e.contains(
            "Latency tail of wasmtime-wasip2: mostly a steady spread, neither stalls nor unfair \
             service: 18 requests"
        ) && e.contains(
            "kept being served; 1 of the 3 repeats had a VU (connection) under half the median \
             VU's requests, 0 had stalls."
        ),
        "{e}"
    );
}
