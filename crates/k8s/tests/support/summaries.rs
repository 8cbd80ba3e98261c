//! Load summaries with known latencies, printed the way `wasmbench load --json /dev/stdout`
//! prints them, for the load pods of the fake cluster. They are inputs, not measurements: what
//! the tests check is how the driver reads, merges and reports them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use hdrhistogram::Histogram;
use wasmbench_load::{
    Check, CheckResult, CounterSummary, Executor, GaugeSummary, Plan, Summary, TREND_METRICS, Trend,
};

/// Share of a request's duration each phase gets, so every phase has values.
fn share(metric: &str) -> f64 {
    match metric {
        "http_req_blocked" | "http_req_connecting" => 0.01,
        "http_req_tls_handshaking" => 0.0,
        "http_req_sending" => 0.05,
        "http_req_waiting" => 0.8,
        "http_req_receiving" => 0.1,
        "iteration_duration" => 1.05,
        _ => 1.0,
    }
}

/// One load pod's summary: one request per latency (µs), `vus` VUs, running from `start_s`
/// seconds after a fixed instant for `secs` seconds.
pub fn summary(latencies_us: &[u64], vus: u64, start_s: i64, secs: i64) -> Summary {
    let n = latencies_us.len() as u64;
    let mut plan = Plan::default();
    plan.request.url = "http://echo.wasmbench-t1.svc:8080/".into();
    plan.executor = Executor::ConstantVus {
        vus,
        duration: Duration::from_secs(secs as u64),
    };
    plan.checks = vec![Check::parse("status == 200").unwrap()];
    let trends = TREND_METRICS
        .iter()
        .map(|m| {
            let mut h = Histogram::<u64>::new(3).unwrap();
            h.auto(true);
            for us in latencies_us {
                let ns = (*us as f64 * 1000.0 * share(m)) as u64;
                if ns > 0 {
                    h.record(ns).unwrap();
                }
            }
            (m.to_string(), Trend(h))
        })
        .collect();
    let started = Utc.timestamp_opt(1_767_225_600 + start_s, 0).unwrap();
    let gauge = GaugeSummary {
        value: vus,
        min: vus,
        max: vus,
    };
    Summary {
        schema_version: wasmbench_load::summary::SUMMARY_SCHEMA_VERSION,
        wasmbench_version: env!("CARGO_PKG_VERSION").into(),
        plan,
        target: "10.96.0.10:8080".into(),
        started,
        ended: started + chrono::Duration::seconds(secs),
        duration_s: secs as f64,
        partial: false,
        aborted_by_threshold: false,
        sources: 1,
        workers: 1,
        counters: CounterSummary {
            http_reqs: n,
            http_req_failed: 0,
            iterations: n,
            interrupted_iterations: 0,
            dropped_iterations: 0,
            late_iterations: 0,
            data_sent_bytes: 100 * n,
            data_received_bytes: 120 * n,
            connections_opened: vus,
            connections_failed: 0,
            vus_not_started: 0,
            errors: BTreeMap::new(),
        },
        vus: gauge,
        vus_max: gauge,
        statuses: BTreeMap::from([(200, n)]),
        checks: vec![CheckResult {
            name: "status == 200".into(),
            passes: n,
            fails: 0,
        }],
        thresholds: Vec::new(),
        trends,
        by_name: BTreeMap::new(),
        start_lag: None,
        engine: None,
        tail: None,
    }
}

/// A pod log as the load image writes it: progress lines, the k6-like text, then the JSON.
pub fn log(s: &Summary) -> String {
    format!(
        "wasmbench load starting on {{pod}}\nprogress 50%\n  http_reqs....: {}\n{}\n",
        s.counters.http_reqs,
        serde_json::to_string_pretty(s).unwrap()
    )
}

/// `n` latencies from `base_us` upwards in steps of `step_us`.
pub fn latencies(n: u64, base_us: u64, step_us: u64) -> Vec<u64> {
    (0..n).map(|i| base_us + i * step_us).collect()
}
