//! The result of a run: counters, gauges, checks, thresholds and the trend histograms, built
//! from the workers' merged metrics, and the figures a reader takes from it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use wasmbench_vocab::TrendStats;
use wasmbench_vocab::tail::Tail;

use crate::client::ErrorKind;
use crate::histogram::{percentile_ms, trend_stats};
use crate::metrics::{Counters, Metrics};
use crate::plan::Plan;
use crate::registry::{TREND_METRICS, named_trend_names};
use crate::trend::Trend;

/// Version of the [`Summary`] JSON layout (`schemas/load-summary.schema.json`).
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// Counter totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSummary {
    /// Requests sent (including failed ones).
    pub http_reqs: u64,
    /// Requests with an unexpected status or a transport error.
    pub http_req_failed: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Iterations cut off by the end of graceful stop or by cancellation (not in `iterations`).
    pub interrupted_iterations: u64,
    /// Open-model iterations not started because no VU was free.
    pub dropped_iterations: u64,
    /// Open-model iterations that started more than [`crate::LATE_START`] after their
    /// scheduled time. A record, not a verdict: on a VM a parked thread's wake-up alone is often
    /// that late, at any rate.
    #[serde(default)]
    pub late_iterations: u64,
    /// Bytes written (request heads and bodies; TLS: plaintext bytes).
    pub data_sent_bytes: u64,
    /// Bytes read (response heads and bodies; TLS: plaintext bytes).
    pub data_received_bytes: u64,
    /// TCP connections opened.
    pub connections_opened: u64,
    /// Connections that could not be opened (no socket: `fd_limit`; or the TCP connect
    /// failed). Each is also a failed request with its error kind.
    #[serde(default)]
    pub connections_failed: u64,
    /// Closed-model VUs the executor wanted running that never began an iteration before the
    /// run ended (their load thread did not get to them in time).
    #[serde(default)]
    pub vus_not_started: u64,
    /// Transport errors per kind (`connect_refused`, `reset`, `timeout`, `protocol`, `other`,
    /// `fd_limit`).
    pub errors: BTreeMap<String, u64>,
}

impl CounterSummary {
    pub(crate) fn from_counters(c: &Counters) -> CounterSummary {
        CounterSummary {
            http_reqs: c.http_reqs,
            http_req_failed: c.http_req_failed,
            iterations: c.iterations,
            interrupted_iterations: c.interrupted_iterations,
            dropped_iterations: c.dropped_iterations,
            late_iterations: c.late_iterations,
            data_sent_bytes: c.data_sent,
            data_received_bytes: c.data_received,
            connections_opened: c.connections_opened,
            connections_failed: c.connections_failed,
            vus_not_started: c.vus_not_started,
            errors: ErrorKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), c.errors[k.index()]))
                .collect(),
        }
    }

    /// Total transport errors.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A gauge's last, smallest and largest value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaugeSummary {
    /// Last value.
    pub value: u64,
    /// Smallest value seen.
    pub min: u64,
    /// Largest value seen.
    pub max: u64,
}

impl GaugeSummary {
    pub(crate) fn observe(&mut self, v: u64, first: bool) {
        if first {
            *self = GaugeSummary {
                value: v,
                min: v,
                max: v,
            };
        } else {
            self.value = v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
}

/// Passes and fails of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's expression.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub fails: u64,
}

/// Outcome of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// Metric name.
    pub metric: String,
    /// Expression.
    pub expr: String,
    /// Whether the run stops when it fails.
    pub abort_on_fail: bool,
    /// The value the expression was evaluated on.
    pub observed: f64,
    /// True when the expression holds.
    pub ok: bool,
}

/// The result of a load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Layout version, [`SUMMARY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the engine that produced it.
    pub wasmbench_version: String,
    /// The plan that was run.
    pub plan: Plan,
    /// Resolved target address.
    pub target: String,
    /// Wall-clock start.
    pub started: DateTime<Utc>,
    /// Wall-clock end.
    pub ended: DateTime<Utc>,
    /// Seconds of load, the denominator of every rate.
    pub duration_s: f64,
    /// True when the run was cancelled or aborted before its planned end.
    pub partial: bool,
    /// True when an `abortOnFail` threshold stopped the run.
    pub aborted_by_threshold: bool,
    /// Number of summaries merged into this one (1 for a single run).
    pub sources: u32,
    /// Worker threads that generated load (summed over merged summaries).
    pub workers: u64,
    /// Counter totals.
    pub counters: CounterSummary,
    /// Active VUs.
    pub vus: GaugeSummary,
    /// Allocated VUs.
    pub vus_max: GaugeSummary,
    /// Response status counts (transport errors are not included).
    pub statuses: BTreeMap<u16, u64>,
    /// One entry per check of the plan.
    pub checks: Vec<CheckResult>,
    /// One entry per threshold of the plan.
    pub thresholds: Vec<ThresholdResult>,
    /// Trend metrics by name; a mix adds `http_req_duration{name:<n>}` and
    /// `http_req_waiting{name:<n>}` per request.
    pub trends: BTreeMap<String, Trend>,
    /// Request and failure counts per request of the plan's mix (empty without a mix).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_name: BTreeMap<String, NamedCounts>,
    /// Open-model executors: how long after its scheduled time each iteration started (the
    /// load generator's own delay, not part of any request's time); absent in the closed model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lag: Option<Trend>,
    /// Which I/O backend generated the load, and why not io_uring when it did not; absent in
    /// summaries not produced by a run (k6 imports, merges of runs on different backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineInfo>,
    /// The latency tail over time (`http_req_duration` per 100 ms of the run by start time),
    /// requests over each duration check's limit per bucket, and iterations per VU; absent in
    /// summaries of older versions and of k6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
}

/// The load engine's I/O backend of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// `io_uring` (Linux, plain HTTP) or `tokio` (epoll through tokio).
    pub backend: String,
    /// Why the run did not use io_uring (`None` when it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// True when each load thread was pinned to a CPU of its own, so the open model spun the
    /// last stretch before each start instead of sleeping.
    pub pinned: bool,
    /// CPU time the load threads used over the run (user + system, microseconds): the load
    /// generator's own cost, apart from anything else the process runs at the same time.
    /// `None` when a thread could not be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_cpu_us: Option<u64>,
}

/// Counts of one request of a mix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCounts {
    /// Requests sent.
    pub http_reqs: u64,
    /// Requests whose status was not expected (or that failed).
    pub http_req_failed: u64,
}

impl Summary {
    pub(crate) fn from_metrics(
        plan: &Plan,
        m: &Metrics,
        started: DateTime<Utc>,
        ended: DateTime<Utc>,
        duration_s: f64,
    ) -> Summary {
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            wasmbench_version: env!("CARGO_PKG_VERSION").to_string(),
            plan: plan.clone(),
            target: String::new(),
            started,
            ended,
            duration_s,
            partial: false,
            aborted_by_threshold: false,
            sources: 1,
            workers: 0,
            counters: CounterSummary::from_counters(&m.counters),
            vus: GaugeSummary::default(),
            vus_max: GaugeSummary::default(),
            statuses: m.statuses.iter().copied().collect(),
            checks: plan
                .checks
                .iter()
                .zip(&m.checks)
                .map(|(c, &(passes, fails))| CheckResult {
                    name: c.name.clone(),
                    passes,
                    fails,
                })
                .collect(),
            thresholds: Vec::new(),
            trends: TREND_METRICS
                .iter()
                .zip(&m.trends)
                .map(|(n, h)| (n.to_string(), Trend(h.clone())))
                .chain(plan.mix.iter().zip(&m.named).flat_map(|(r, n)| {
                    let (d, w) = named_trend_names(&r.name);
                    [
                        (d, Trend(n.duration.clone())),
                        (w, Trend(n.waiting.clone())),
                    ]
                }))
                .collect(),
            by_name: plan
                .mix
                .iter()
                .zip(&m.named)
                .map(|(r, n)| {
                    (
                        r.name.clone(),
                        NamedCounts {
                            http_reqs: n.http_reqs,
                            http_req_failed: n.http_req_failed,
                        },
                    )
                })
                .collect(),
            start_lag: (!m.start_lag.is_empty()).then(|| Trend(m.start_lag.clone())),
            engine: None,
            tail: m.timeline.to_tail(plan),
        }
    }

    /// Percentile `q` (0–100) of the open model's start lag in ms; `None` in the closed model.
    pub fn start_lag_ms(&self, q: f64) -> Option<f64> {
        self.start_lag.as_ref().map(|t| percentile_ms(&t.0, q))
    }

    /// Statistics of a trend metric in ms; `None` for unknown names.
    pub fn trend(&self, metric: &str) -> Option<TrendStats> {
        self.trends.get(metric).map(|t| trend_stats(&t.0))
    }

    /// Percentile `q` (0–100) of a trend metric in ms (k6 interpolation).
    pub fn percentile_ms(&self, metric: &str, q: f64) -> Option<f64> {
        self.trends.get(metric).map(|t| percentile_ms(&t.0, q))
    }

    /// (percentile, ms) points for latency charts, dense in the tail.
    pub fn percentile_curve(&self, metric: &str) -> Vec<(f64, f64)> {
        const QS: [f64; 19] = [
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 90.0, 95.0, 97.5, 99.0,
            99.5, 99.9, 99.95, 99.99, 100.0,
        ];
        match self.trends.get(metric) {
            Some(t) if !t.0.is_empty() => QS.iter().map(|&q| (q, percentile_ms(&t.0, q))).collect(),
            _ => Vec::new(),
        }
    }

    /// Requests per second.
    pub fn http_reqs_per_s(&self) -> f64 {
        rate(self.counters.http_reqs, self.duration_s)
    }

    /// Share of failed requests (0–1).
    pub fn http_req_failed_rate(&self) -> f64 {
        ratio(self.counters.http_req_failed, self.counters.http_reqs)
    }

    /// Checks passed and failed, summed over all checks.
    pub fn checks_total(&self) -> (u64, u64) {
        self.checks
            .iter()
            .fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails))
    }

    /// True when any threshold failed.
    pub fn threshold_failed(&self) -> bool {
        self.thresholds.iter().any(|t| !t.ok)
    }
}

/// `n` per second over `secs` (0 for an empty window).
pub(crate) fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// `a / b` (0 when `b` is 0).
pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MixRequest;

    #[test]
    fn a_mix_gets_sub_metrics_and_counts_per_request() {
        let plan = Plan {
            mix: ["a", "b"]
                .map(|name| MixRequest {
                    name: name.into(),
                    weight: 1,
                    method: "GET".into(),
                    path: "/".into(),
                    headers: BTreeMap::new(),
                    body: Vec::new(),
                })
                .into(),
            ..Plan::default()
        };
        let mut m = Metrics::new(0, 2);
        m.named[1].http_reqs = 3;
        m.named[1].http_req_failed = 1;
        m.named[1].duration.record(4_000_000).unwrap();
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let s = Summary::from_metrics(&plan, &m, t, t, 1.0);
        assert_eq!(s.trends.len(), TREND_METRICS.len() + 4);
        assert_eq!(s.trend("http_req_duration{name:b}").unwrap().count, 1);
        assert_eq!(s.trend("http_req_waiting{name:b}").unwrap().count, 0);
        assert_eq!(
            s.by_name["b"],
            NamedCounts {
                http_reqs: 3,
                http_req_failed: 1
            }
        );
        assert_eq!(s.by_name["a"], NamedCounts::default());
        let curve = s.percentile_curve("http_req_duration{name:b}");
        assert_eq!(curve.len(), 19);
        assert!(
            curve.iter().all(|&(_, ms)| (ms - 4.0).abs() < 0.01),
            "{curve:?}"
        );
        assert!(
            s.percentile_curve("http_req_duration").is_empty(),
            "no samples, no curve"
        );
    }
}
