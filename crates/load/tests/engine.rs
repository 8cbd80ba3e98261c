//! The load engine against real local servers: phase semantics, counts, executors, thresholds,
//! cancellation, errors.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wasmbench_echo::config::Mode;
use wasmbench_load::{
    Check, ConnectionMode, Executor, Plan, RunOptions, Stage, Summary, Threshold, run,
};

fn go(plan: &Plan) -> Summary {
    rt().block_on(run(plan, RunOptions::default()))
        .expect("run")
}

fn post_plan(addr: std::net::SocketAddr, vus: u64, secs: f64) -> Plan {
    let mut p = plan(format!("http://{addr}/x"), vus, secs);
    p.request.method = "POST".into();
    p.request.body = b"hello".to_vec();
    p.checks = vec![
        Check::parse("status == 200").unwrap(),
        Check::parse("body contains echo: hello").unwrap(),
    ];
    p
}

#[test]
fn keep_alive_reuses_connections_and_counts_add_up() {
    let addr = echo(Mode::Concurrent);
    let s = go(&post_plan(addr, 2, 1.0));
    let c = &s.counters;
    assert!(c.http_reqs > 50, "{c:?}");
    assert_eq!(c.http_reqs, c.iterations, "one request per iteration");
    assert_eq!(c.http_req_failed, 0);
    assert_eq!(c.connections_opened, 2, "one connection per VU");
    assert_eq!(s.statuses.get(&200), Some(&c.http_reqs));
    let (passes, fails) = s.checks_total();
    assert_eq!((passes, fails), (2 * c.http_reqs, 0));
    let conn = s.trend("http_req_connecting").unwrap();
    let blocked = s.trend("http_req_blocked").unwrap();
    assert_eq!(conn.count, c.http_reqs);
    assert_eq!(conn.med_ms, 0.0, "reused connections do not connect");
    assert!(conn.max_ms > 0.0, "the first request of each VU connects");
    assert!(blocked.max_ms >= conn.max_ms, "blocked includes connecting");
    assert_eq!(s.trend("http_req_tls_handshaking").unwrap().max_ms, 0.0);
    let d = s.trend("http_req_duration").unwrap();
    let parts: f64 = ["http_req_sending", "http_req_waiting", "http_req_receiving"]
        .iter()
        .map(|m| s.trend(m).unwrap().avg_ms)
        .sum();
    assert!(
        (d.avg_ms - parts).abs() < 0.01 * d.avg_ms + 0.001,
        "{d:?} vs {parts}"
    );
    assert!(s.trend("http_req_waiting").unwrap().min_ms > 0.0);
    assert!(c.data_sent_bytes > 0 && c.data_received_bytes > 0);
    assert_eq!(s.trend("iteration_duration").unwrap().count, c.iterations);
    assert!(!s.partial);
}

#[test]
fn new_connection_per_request_connects_every_time() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 2, 1.0);
    p.connection_mode = ConnectionMode::NewConnectionPerRequest;
    let s = go(&p);
    let c = &s.counters;
    assert!(c.http_reqs > 20, "{c:?}");
    assert_eq!(c.connections_opened, c.http_reqs);
    assert_eq!(c.http_req_failed, 0);
    let conn = s.trend("http_req_connecting").unwrap();
    let blocked = s.trend("http_req_blocked").unwrap();
    assert!(conn.min_ms > 0.0, "{conn:?}");
    assert!(
        blocked.min_ms >= conn.min_ms && blocked.med_ms >= conn.med_ms,
        "{blocked:?} {conn:?}"
    );
}

#[test]
fn server_closing_after_each_response_forces_new_connections() {
    // Seed mode answers HTTP/1.0 style and closes, like the demo's server.
    let addr = echo(Mode::Seed);
    let s = go(&post_plan(addr, 2, 1.0));
    let c = &s.counters;
    assert!(c.http_reqs > 10, "{c:?}");
    assert_eq!(c.http_req_failed, 0, "{c:?}");
    assert_eq!(c.connections_opened, c.http_reqs);
    assert!(s.trend("http_req_connecting").unwrap().min_ms > 0.0);
}

#[test]
fn chunked_bodies_are_read_and_connections_reused() {
    let addr = tcp_server(chunked);
    let mut p = plan(format!("http://{addr}/"), 1, 0.5);
    p.checks = vec![Check::parse("body contains hello world").unwrap()];
    let s = go(&p);
    assert!(s.counters.http_reqs > 5);
    assert_eq!(s.counters.http_req_failed, 0);
    assert_eq!(s.counters.connections_opened, 1);
    assert_eq!(s.checks_total(), (s.counters.http_reqs, 0));
}

#[test]
fn constant_arrival_rate_hits_the_rate() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 1, 1.0);
    p.executor = Executor::ConstantArrivalRate {
        rate: 300,
        time_unit: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        pre_allocated_vus: 20,
        max_vus: 50,
    };
    let s = go(&p);
    let it = s.counters.iterations as f64;
    assert!(
        (it - 900.0).abs() <= 18.0,
        "{it} iterations, wanted 900 ± 2%"
    );
    assert_eq!(s.counters.dropped_iterations, 0);
    assert_eq!(s.counters.http_reqs, s.counters.iterations);
}

#[test]
fn ramping_arrival_rate_integrates_the_stages() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 1, 1.0);
    // 0 -> 400/s over 2 s (400 iterations), then 400/s for 1 s (400).
    p.executor = Executor::RampingArrivalRate {
        start_rate: 0,
        time_unit: Duration::from_secs(1),
        stages: vec![
            Stage {
                duration: Duration::from_secs(2),
                target: 400,
            },
            Stage {
                duration: Duration::from_secs(1),
                target: 400,
            },
        ],
        pre_allocated_vus: 20,
        max_vus: 50,
    };
    let s = go(&p);
    let it = s.counters.iterations as f64;
    assert!(
        (it - 800.0).abs() <= 16.0,
        "{it} iterations, wanted 800 ± 2%"
    );
    assert_eq!(s.counters.dropped_iterations, 0);
}

#[test]
fn stalled_server_drops_iterations_and_stops_in_time() {
    let addr = tcp_server(stall);
    let mut p = plan(format!("http://{addr}/"), 1, 1.0);
    p.executor = Executor::ConstantArrivalRate {
        rate: 100,
        time_unit: Duration::from_secs(1),
        duration: Duration::from_secs(2),
        pre_allocated_vus: 3,
        max_vus: 5,
    };
    p.graceful_stop = Duration::from_millis(300);
    let t = Instant::now();
    let s = go(&p);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let c = &s.counters;
    assert_eq!(c.iterations, 0);
    assert_eq!(c.interrupted_iterations, 5, "{c:?}");
    // 200 scheduled, 5 started on the 5 VUs, the rest dropped.
    assert!((194..=196).contains(&c.dropped_iterations), "{c:?}");
    assert_eq!(s.vus_max.max, 5);
}

#[test]
fn ramping_vus_follows_stages() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 1, 1.0);
    p.executor = Executor::RampingVus {
        start_vus: 1,
        stages: vec![
            Stage {
                duration: Duration::from_millis(800),
                target: 4,
            },
            Stage {
                duration: Duration::from_millis(1200),
                target: 4,
            },
        ],
    };
    let s = go(&p);
    assert_eq!(s.vus_max.max, 4);
    assert_eq!(s.vus.max, 4);
    assert_eq!(s.counters.connections_opened, 4, "{:?}", s.counters);
    assert_eq!(s.counters.http_req_failed, 0);
}

#[test]
fn thresholds_pass_and_fail() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 1, 0.5);
    p.thresholds = vec![
        Threshold::parse_cli("http_req_duration=p(95)<10000").unwrap(),
        Threshold::parse_cli("http_req_failed=rate<0.01").unwrap(),
        Threshold::parse_cli("checks=rate>0.99").unwrap(),
        Threshold::parse_cli("http_reqs=count>5").unwrap(),
    ];
    let s = go(&p);
    assert!(!s.threshold_failed(), "{:?}", s.thresholds);
    assert_eq!(s.thresholds.len(), 4);

    p.thresholds
        .push(Threshold::parse_cli("http_req_waiting=avg<0.000001").unwrap());
    let s = go(&p);
    assert!(s.threshold_failed());
    let failed: Vec<_> = s.thresholds.iter().filter(|t| !t.ok).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].metric, "http_req_waiting");
    assert!(failed[0].observed > 0.0);
}

#[test]
fn threshold_parse_errors_name_the_expression() {
    let mut p = plan("http://127.0.0.1:9/".into(), 1, 1.0);
    p.thresholds = vec![Threshold {
        metric: "http_req_duration".into(),
        expr: "p95 < 200".into(),
        abort_on_fail: false,
    }];
    let e = p.validate().unwrap_err().to_string();
    assert!(
        e.contains("p95 < 200") && e.contains("http_req_duration"),
        "{e}"
    );
    let e = rt()
        .block_on(run(&p, RunOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("p95 < 200"), "{e}");
    let toml = "[[thresholds]]\nmetric = \"http_req_failed\"\nexpr = \"rate <\"\n";
    let e = Plan::from_toml_str(toml).unwrap_err().to_string();
    assert!(e.contains("rate <"), "{e}");
}

#[test]
fn abort_on_fail_stops_the_run_early() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 2, 20.0);
    p.thresholds =
        vec![Threshold::parse_cli("http_req_duration=max<0.000001:abortOnFail").unwrap()];
    let t = Instant::now();
    let s = go(&p);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(s.aborted_by_threshold && s.partial && s.threshold_failed());
}

#[test]
fn cancellation_returns_partial_results_promptly() {
    let addr = echo(Mode::Concurrent);
    let p = post_plan(addr, 2, 30.0);
    let rt = rt();
    let s = rt.block_on(async {
        let cancel = wasmbench_load::CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = RunOptions {
            cancel: cancel.clone(),
            progress: Some(tx),
            ..RunOptions::default()
        };
        let h = tokio::spawn({
            let p = p.clone();
            async move { run(&p, opts).await }
        });
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("progress within 5 s")
            .expect("a progress snapshot");
        assert!(first.requests > 0 && first.point.t_s == 1, "{first:?}");
        let t = Instant::now();
        cancel.cancel();
        let s = h.await.unwrap().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        s
    });
    assert!(s.partial);
    assert!(s.counters.http_reqs > 0);
    assert!(s.duration_s < 5.0);
}

#[test]
fn progress_points_add_up_to_the_totals() {
    let addr = echo(Mode::Concurrent);
    let p = post_plan(addr, 2, 2.5);
    let rt = rt();
    let (s, points) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = RunOptions {
            progress: Some(tx),
            ..RunOptions::default()
        };
        let s = run(&p, opts).await.unwrap();
        let mut points = Vec::new();
        while let Ok(pr) = rx.try_recv() {
            points.push(pr.point);
        }
        (s, points)
    });
    assert!(points.len() >= 3, "{}", points.len());
    let sum: u64 = points.iter().map(|p| p.http_reqs).sum();
    assert_eq!(sum, s.counters.http_reqs);
    assert!(points[0].http_req_duration.p95_ms > 0.0);
    let mut buf = Vec::new();
    let mut w = wasmbench_load::NdjsonWriter::new(&mut buf);
    for pt in &points {
        w.write_point(pt).unwrap();
    }
    w.finish().unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(text.lines().count(), points.len());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["http_req_duration"]["p95"].is_number());
}

#[test]
fn error_kinds_are_counted() {
    let mut p = plan(format!("http://127.0.0.1:{}/", closed_port()), 1, 0.3);
    p.timeout = Duration::from_millis(200);
    let s = go(&p);
    let e = &s.counters.errors;
    assert!(s.counters.http_reqs > 0);
    assert_eq!(e["connect_refused"], s.counters.http_reqs, "{e:?}");
    assert_eq!(s.counters.http_req_failed, s.counters.http_reqs);

    let s = go(&plan(format!("http://{}/", tcp_server(reset)), 1, 0.3));
    assert!(s.counters.errors["reset"] > 0, "{:?}", s.counters);
    assert_eq!(s.counters.http_req_failed, s.counters.http_reqs);

    let s = go(&plan(format!("http://{}/", tcp_server(garbage)), 1, 0.3));
    assert!(s.counters.errors["protocol"] > 0, "{:?}", s.counters);
    assert_eq!(s.counters.http_req_failed, s.counters.http_reqs);

    let mut p = plan(format!("http://{}/", tcp_server(stall)), 1, 0.5);
    p.timeout = Duration::from_millis(150);
    let s = go(&p);
    assert!(s.counters.errors["timeout"] >= 2, "{:?}", s.counters);
    // Like k6, a timed-out request is measured: it waited for the whole timeout.
    assert!(s.trend("http_req_duration").unwrap().max_ms >= 140.0);
}

#[test]
fn summaries_serialize_and_merge() {
    let addr = echo(Mode::Concurrent);
    let mut p = post_plan(addr, 1, 1.0);
    p.thresholds = vec![Threshold::parse_cli("http_reqs=count>0").unwrap()];
    let s = go(&p);
    let json = serde_json::to_string(&s).unwrap();
    let back: Summary = serde_json::from_str(&json).unwrap();
    assert_eq!(back.counters, s.counters);
    let p95 = s.percentile_ms("http_req_duration", 95.0).unwrap();
    assert!((back.percentile_ms("http_req_duration", 95.0).unwrap() - p95).abs() < 1e-9);
    let mut merged = back.clone();
    merged.merge(&s).unwrap();
    assert_eq!(merged.counters.http_reqs, 2 * s.counters.http_reqs);
    assert_eq!(merged.sources, 2);
    assert_eq!(
        merged.trend("http_req_duration").unwrap().count,
        2 * s.counters.http_reqs
    );
    // Same distribution twice: p95 moves by less than one rank of the original samples.
    let m95 = merged.percentile_ms("http_req_duration", 95.0).unwrap();
    let lo = s.percentile_ms("http_req_duration", 94.0).unwrap();
    let hi = s.percentile_ms("http_req_duration", 96.0).unwrap();
    assert!(lo <= m95 && m95 <= hi, "{lo} <= {m95} <= {hi}");
    let curve = merged.percentile_curve("http_req_duration");
    assert!(
        curve
            .windows(2)
            .all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0)
    );

    let k6 = wasmbench_load::k6_summary_export(&s);
    assert!(k6["metrics"]["http_req_duration"]["p(95)"].is_number());
    assert_eq!(k6["metrics"]["http_reqs"]["count"], s.counters.http_reqs);
    assert_eq!(k6["metrics"]["http_reqs"]["thresholds"]["count>0"], false);
    assert!(k6["root_group"]["checks"]["status == 200"]["passes"].is_number());
    let text = wasmbench_load::render_text(&s, &["avg".into(), "p(99)".into()]);
    assert!(
        text.contains("http_req_waiting") && text.contains("p(99)="),
        "{text}"
    );
}
