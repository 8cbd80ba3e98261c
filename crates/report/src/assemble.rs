//! The one way measured runs become a [`Comparison`], whatever started and loaded the variants:
//! the local loop (`wasmbench-compare`) and the Kubernetes driver (`wasmbench-k8s`) both hand their
//! load summaries and facts to these functions, so a figure, a statistic, an explanation or a
//! warning added here shows up in both.

use std::collections::BTreeMap;
use std::time::Duration;

use crate as r;
use chrono::{DateTime, Utc};
use wasmbench_load::{Executor, LoadFigures};

/// One measured load run of one variant, as a run loop observed it.
#[derive(Debug, Clone)]
pub struct MeasuredRun<'a> {
    /// Repeat index, from 0.
    pub repeat: u32,
    /// The load figures: this engine's summary (on Kubernetes: every load pod's, merged) or
    /// k6's export.
    pub summary: &'a dyn LoadFigures,
    /// Cold-start samples of this repeat (none when not measured).
    pub cold_start_ms: Vec<f64>,
    /// CPU and memory of the server process, when sampled.
    pub server: Option<r::ServerUsage>,
    /// CPU and memory of the load generator, when sampled.
    pub loadgen: Option<r::LoadgenUsage>,
    /// What the kernel counted for the server over the run, when counted.
    pub server_counts: Option<wasmbench_vocab::ServerCounts>,
    /// File under the output directory's `runs/` holding the raw summary, when written.
    pub raw_summary_file: Option<String>,
    /// The capacity search on this repeat's server, when one ran.
    pub capacity: Option<r::CapacitySearch>,
    /// Cache-line round trip between the server's and the load generator's CPUs before the
    /// run, when both were pinned.
    pub cpu_round_trip_ns: Option<f64>,
}

/// How the run loop drove the load plan, for [`plan`].
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// Workload name (`echo`, `mix`, ...).
    pub workload: String,
    /// Processes that each ran the load plan at the same time (Kubernetes load pods); 1 locally.
    pub load_generators: u32,
    /// The program those processes ran.
    pub load_engine: wasmbench_vocab::LoadEngine,
    /// Measured repeats per variant.
    pub repeats: u32,
    /// How the measured load was scheduled; `None` where the loop has no choice.
    pub design: Option<wasmbench_vocab::Design>,
    /// The CPU limit every variant's server had (`--server-cpu-limit`).
    pub server_cpu_limit: Option<f64>,
    /// Warm-up before each measured run.
    pub warmup: Duration,
    /// Cold starts measured per repeat.
    pub cold_start_samples: u32,
    /// CPU affinity of server and load generator, when pinned.
    pub cpu_pinning: Option<r::CpuPinning>,
    /// Conditions kept equal across variants, in words.
    pub fairness: Vec<String>,
    /// When a started server counted as ready (cold starts end there); `None` when no start
    /// was timed.
    pub readiness: Option<String>,
}

/// Everything a run loop hands over once its variants are done.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Start of the comparison.
    pub started_at: DateTime<Utc>,
    /// End of the comparison.
    pub ended_at: DateTime<Utc>,
    /// The command line, one argument per element.
    pub command_line: Vec<String>,
    /// True when the run was interrupted.
    pub partial: bool,
    /// Where the variants ran.
    pub environment: r::Environment,
    /// The plan, from [`plan`].
    pub plan: r::PlanRecord,
    /// Every variant, baseline first, with its runs from [`run_result`].
    pub variants: Vec<r::VariantResult>,
    /// Warnings only the run loop knows about.
    pub warnings: Vec<String>,
    /// What a precision target reached, when the run had one.
    pub precision: Option<r::PrecisionRecord>,
}

/// The comparison: the first variant is the baseline; aggregates, ratios, the explanation and
/// the derived warnings are computed by [`r::Comparison::finalize`].
pub fn comparison(m: Measured) -> r::Comparison {
    let meta = r::Meta {
        wasmbench_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: m.started_at.to_rfc3339(),
        ended_at: m.ended_at.to_rfc3339(),
        command_line: m.command_line,
        partial: m.partial,
        environment: m.environment,
    };
    let baseline = m
        .variants
        .first()
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let mut c = r::Comparison::new(meta, m.plan, baseline);
    c.variants = m.variants;
    c.warnings = m.warnings;
    c.precision = m.precision;
    c.finalize();
    c
}

/// `constant-vus 100 VUs for 30s`, `constant-arrival-rate 500 iterations/1s for 30s, up to 100
/// VUs`: what one load generator ran.
fn executor_line(e: &Executor) -> String {
    let d = wasmbench_vocab::duration::format(e.duration());
    match e {
        Executor::ConstantVus { vus, .. } => format!("constant-vus {vus} VUs for {d}"),
        Executor::RampingVus { .. } => format!("ramping-vus up to {} VUs over {d}", e.max_vus()),
        Executor::ConstantArrivalRate {
            rate, time_unit, ..
        } => format!(
            "constant-arrival-rate {rate} iterations/{} for {d}, up to {} VUs",
            wasmbench_vocab::duration::format(*time_unit),
            e.max_vus()
        ),
        Executor::RampingArrivalRate { .. } => {
            format!("ramping-arrival-rate over {d}, up to {} VUs", e.max_vus())
        }
    }
}

/// Path and query of a URL (`/` when it has none).
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or_else(|| "/".to_string(), |i| rest[i..].to_string())
}

/// The report's plan from the load plan every load generator ran.
pub fn plan(load: &wasmbench_load::Plan, how: &PlanContext) -> r::PlanRecord {
    let n = how.load_generators.max(1);
    let executor = match n {
        1 => executor_line(&load.executor),
        n => format!("{n} load pods × {}", executor_line(&load.executor)),
    };
    r::PlanRecord {
        workload: how.workload.clone(),
        request: r::RequestRecord {
            method: load.request.method.clone(),
            path: url_path(&load.request.url),
            body_bytes: load.request.body.len() as u64,
        },
        executor,
        load_engine: how.load_engine,
        vus: u32::try_from(load.executor.max_vus() * u64::from(n)).unwrap_or(u32::MAX),
        duration_s: load.executor.duration().as_secs_f64(),
        connection_mode: load.connection_mode,
        checks: load.checks.iter().map(|c| c.name.clone()).collect(),
        thresholds: load.thresholds.iter().map(threshold_text).collect(),
        repeats: how.repeats,
        design: how.design,
        server_cpu_limit: how.server_cpu_limit,
        warmup_s: how.warmup.as_secs_f64(),
        cold_start_samples: how.cold_start_samples,
        cpu_pinning: how.cpu_pinning.clone(),
        fairness: how.fairness.clone(),
        readiness: how.readiness.clone(),
        mix: load
            .mix
            .iter()
            .map(|m| r::MixEntry {
                name: m.name.clone(),
                weight: m.weight,
                method: m.method.clone(),
                path: m.path.clone(),
                body_bytes: m.body.len() as u64,
            })
            .collect(),
    }
}

fn threshold_text(t: &wasmbench_load::Threshold) -> String {
    format!("{}: {}", t.metric, t.expr)
}

/// Requests per second over the measured window: over the whole run, unless it lasted well
/// past its plan (VUs stuck until the graceful stop), where the requests that started in the
/// planned window count, per second of it; a rate over the overrun would divide a few seconds'
/// requests by the stuck VUs' wait.
fn throughput(
    per_run_s: f64,
    duration_s: f64,
    planned: Option<r::PlannedRun>,
    tail: Option<&wasmbench_vocab::tail::Tail>,
) -> f64 {
    match (planned, tail) {
        (Some(p), Some(t)) if p.overran(duration_s) && p.duration_s > 0.0 => {
            let started: u64 = t
                .buckets
                .iter()
                .enumerate()
                .filter(|(i, _)| t.start_s(*i) < p.duration_s)
                .map(|(_, b)| b.requests)
                .sum();
            started as f64 / p.duration_s
        }
        _ => per_run_s,
    }
}

/// One run of the report from its load figures (this engine's summary or k6's export).
pub fn run_result(m: &MeasuredRun<'_>) -> r::RunResult {
    let s = m.summary;
    let mut phases = BTreeMap::new();
    // Every trend of the load engine except tagged sub-metrics (`…{expected_response:true}`).
    for name in wasmbench_load::TREND_METRICS
        .into_iter()
        .filter(|n| !n.contains('{'))
    {
        if let Some(t) = s.trend(name) {
            phases.insert(name.to_string(), t);
        }
    }
    let (passes, fails) = s.checks_total();
    let (data_sent_bytes, data_received_bytes) = s.data_bytes();
    let duration_s = s.duration_s();
    let planned = s.planned();
    let tail = s.tail();
    r::RunResult {
        repeat: m.repeat,
        duration_s,
        cold_start_ms: m.cold_start_ms.clone(),
        throughput_rps: throughput(s.http_reqs_per_s(), duration_s, planned, tail.as_ref()),
        http_reqs: s.http_reqs(),
        connections_opened: s.connections_opened(),
        planned,
        http_req_failed_rate: s.http_req_failed_rate(),
        errors: s.errors(),
        checks: r::Checks {
            passes,
            fails,
            by_check: s
                .checks()
                .into_iter()
                .map(|(name, passes, fails)| (name, r::CheckCounts { passes, fails }))
                .collect(),
        },
        thresholds: s
            .thresholds()
            .into_iter()
            .map(|(expression, passed)| r::ThresholdOutcome { expression, passed })
            .collect(),
        data_sent_bytes,
        data_received_bytes,
        phases,
        latency_curve: s
            .percentile_curve("http_req_duration")
            .into_iter()
            .map(|(percentile, value_ms)| r::CurvePoint {
                percentile,
                value_ms,
            })
            .collect(),
        server: m.server,
        loadgen: m.loadgen,
        server_counts: m.server_counts.clone(),
        raw_summary_file: m.raw_summary_file.clone(),
        capacity: m.capacity.clone(),
        cpu_round_trip_ns: m.cpu_round_trip_ns,
        tail,
        by_request: s
            .by_request()
            .into_iter()
            .map(|(name, n)| {
                let share = |count: u64, of: u64| {
                    if of > 0 {
                        count as f64 / of as f64
                    } else {
                        0.0
                    }
                };
                (
                    name,
                    r::RequestBreakdown {
                        http_reqs: n.counts.http_reqs,
                        throughput_rps: if duration_s > 0.0 {
                            n.counts.http_reqs as f64 / duration_s
                        } else {
                            0.0
                        },
                        http_req_failed_rate: share(n.counts.http_req_failed, n.counts.http_reqs),
                        waiting: n.waiting,
                        duration: n.duration,
                    },
                )
            })
            .collect(),
    }
}

/// The report's record of a capacity search.
pub fn capacity_search(c: &wasmbench_load::capacity::Capacity) -> r::CapacitySearch {
    use wasmbench_load::capacity::Verdict;
    r::CapacitySearch {
        capacity_rps: c.value().map(|v| v as f64),
        passed_rps: c.passed.map(|v| v as f64),
        failed_rps: c.failed.map(|v| v as f64),
        limit: c.limit.name().to_string(),
        headline: c.headline(),
        slo: c.slo.clone(),
        steps: c
            .steps
            .iter()
            .map(|s| {
                let (verdict, reasons) = match &s.verdict {
                    Verdict::Pass => ("pass", Vec::new()),
                    Verdict::Fail { reasons } => ("fail", reasons.clone()),
                    Verdict::ClientBound { reason } => ("client-bound", vec![reason.clone()]),
                };
                r::CapacityStep {
                    offered_rps: s.offered as f64,
                    achieved_rps: s.achieved,
                    waiting_p50_ms: s.waiting_ms.p50,
                    waiting_p95_ms: s.waiting_ms.p95,
                    waiting_p99_ms: s.waiting_ms.p99,
                    server_cpu_us_per_req: s.server_cpu_us_per_req,
                    loadgen_cpu_share: s.usage.loadgen_cpu,
                    start_lag_p50_ms: s.start_lag_ms.map(|l| l.p50),
                    start_lag_p99_ms: s.start_lag_ms.map(|l| l.p99),
                    drain_s: s.drain.map(|d| d.seconds),
                    verdict: verdict.to_string(),
                    reasons,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_states_what_every_load_generator_ran() {
        let mut load = wasmbench_load::Plan::default();
        load.request.url = "http://echo-native.ns.svc:8080/api?x=1".into();
        load.executor = Executor::ConstantVus {
            vus: 2,
            duration: Duration::from_secs(30),
        };
        let how = PlanContext {
            workload: "echo".into(),
            load_generators: 3,
            load_engine: wasmbench_vocab::LoadEngine::Wasmbench,
            repeats: 1,
            design: None,
            server_cpu_limit: None,
            warmup: Duration::ZERO,
            cold_start_samples: 0,
            cpu_pinning: None,
            fairness: Vec::new(),
            readiness: None,
        };
        let p = plan(&load, &how);
        assert_eq!(p.vus, 6);
        assert_eq!(p.executor, "3 load pods × constant-vus 2 VUs for 30s");
        assert_eq!(p.request.path, "/api?x=1");
        assert_eq!(url_path("http://127.0.0.1:9"), "/");
    }
}
