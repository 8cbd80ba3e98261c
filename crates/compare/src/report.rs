//! Turns what the loop measured into the report model.

use std::collections::BTreeMap;

use wasmbench_report as r;

use crate::config::CompareConfig;
use crate::run::{Options, Outcome, RunOutcome, Status, VariantOutcome};

/// Listener and limit settings every variant shares; printed so fairness is explicit.
const FAIRNESS: [&str; 4] = [
    "same workload source (crates/echo) for every target, built with the `artifact` profile (opt-level 3, LTO, 1 codegen unit)",
    "same concurrency model: one thread, non-blocking sockets, one poll(2) event loop (wasi-libc maps poll to WASI)",
    "same listener options: keep-alive on, TCP_NODELAY requested, 1 MiB body limit, 16 KiB head limit",
    "one server process per variant, started fresh for every repeat, measured after warm-up",
];

pub(crate) fn build(cfg: &CompareConfig, opts: &Options, o: Outcome) -> r::Comparison {
    let meta = r::Meta {
        wasmbench_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: o.started_at.to_rfc3339(),
        ended_at: o.ended_at.to_rfc3339(),
        command_line: opts
            .command_line
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        partial: o.partial,
        environment: o.environment,
    };
    let l = &cfg.load;
    let executor = match l.executor.as_str() {
        "constant-arrival-rate" => format!(
            "constant-arrival-rate {} iterations/s for {}, up to {} VUs",
            l.rate.unwrap_or(0),
            humantime::format_duration(l.duration),
            l.vus
        ),
        other => format!(
            "{other} {} VUs for {}",
            l.vus,
            humantime::format_duration(l.duration)
        ),
    };
    let mut fairness: Vec<String> = FAIRNESS.iter().map(|s| s.to_string()).collect();
    if cfg.variants.iter().any(|v| v.artifact.is_some()) {
        fairness.push("user-supplied artifacts: the builds are the user's, not ours".into());
    }
    let plan = r::Plan {
        workload: cfg.workload.clone(),
        request: r::RequestSpec {
            method: l.method.clone(),
            path: l.path.clone(),
            body_bytes: l.body.len() as u64,
        },
        executor,
        vus: l.vus,
        duration_s: l.duration.as_secs_f64(),
        connection_mode: l.connection,
        checks: l.checks.clone(),
        thresholds: l.thresholds.clone(),
        repeats: cfg.repeats,
        warmup_s: cfg.warmup.as_secs_f64(),
        cold_start_samples: cfg.cold_starts,
        cpu_pinning: o.pinning.as_ref().map(|(s, l)| r::CpuPinning {
            server_cpus: s.iter().map(|&c| c as u32).collect(),
            load_cpus: l.iter().map(|&c| c as u32).collect(),
        }),
        fairness,
        mix: l
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
    };
    let baseline = cfg
        .variants
        .first()
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let mut c = r::Comparison::new(meta, plan, baseline);
    for v in o.variants {
        c.variants.push(variant(v));
    }
    if o.partial {
        c.warnings
            .push("interrupted: some repeats or variants are missing".into());
    }
    c.finalize();
    c
}

fn variant(v: VariantOutcome) -> r::VariantResult {
    let info = v.resolved.runtime.info();
    let mut details = info.details.clone();
    if let Some(report) = &v.host_report
        && let Some(obj) = report.as_object()
    {
        for (k, val) in obj {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            details.insert(format!("host.{k}"), text);
        }
    }
    let workload_mode = v
        .resolved
        .env
        .iter()
        .find(|(k, _)| k == "ECHO_MODE")
        .map_or("concurrent".to_string(), |(_, m)| m.clone());
    let cwasm_size_bytes = v
        .host_report
        .as_ref()
        .and_then(|h| h.get("cwasm_size_bytes"))
        .and_then(|x| x.as_u64());
    let (status, reason) = match &v.status {
        Status::Ok => (r::VariantStatus::Ok, None),
        Status::Skipped(why) => (r::VariantStatus::Skipped, Some(why.clone())),
        Status::Failed(why) => (r::VariantStatus::Failed, Some(why.clone())),
    };
    r::VariantResult {
        name: v.resolved.name.clone(),
        runtime: r::RuntimeInfo { details, ..info },
        workload_mode,
        artifact: v.artifact.as_ref().map(|a| r::ArtifactInfo {
            path: a.path.display().to_string(),
            size_bytes: a.size_bytes,
            build_ms: a.build_time.as_secs_f64() * 1e3,
            sha256: a.sha256.clone(),
            compile_ms: v.compile_ms,
            cwasm_size_bytes,
        }),
        status,
        reason,
        runs: v.runs.iter().map(run).collect(),
        aggregate: r::Aggregate::default(),
    }
}

fn run(o: &RunOutcome) -> r::RunResult {
    let s = &o.summary;
    let mut phases = BTreeMap::new();
    // Every trend of the load engine except tagged sub-metrics (`…{expected_response:true}`).
    for m in wasmbench_load::TREND_METRICS
        .into_iter()
        .filter(|m| !m.contains('{'))
    {
        if let Some(t) = s.trend(m) {
            phases.insert(m.to_string(), trend_stats(t));
        }
    }
    let (passes, fails) = s.checks_total();
    r::RunResult {
        repeat: o.repeat,
        duration_s: s.duration_s,
        cold_start_ms: o.cold_start_ms.clone(),
        throughput_rps: s.http_reqs_per_s(),
        http_reqs: s.counters.http_reqs,
        http_req_failed_rate: s.http_req_failed_rate(),
        errors: s.counters.errors.clone(),
        checks: r::Checks { passes, fails },
        thresholds: s
            .thresholds
            .iter()
            .map(|t| r::ThresholdOutcome {
                expression: format!("{}: {}", t.metric, t.expr),
                passed: t.ok,
            })
            .collect(),
        data_sent_bytes: s.counters.data_sent_bytes,
        data_received_bytes: s.counters.data_received_bytes,
        phases,
        latency_curve: s
            .percentile_curve("http_req_duration")
            .into_iter()
            .map(|(percentile, value_ms)| r::CurvePoint {
                percentile,
                value_ms,
            })
            .collect(),
        server: Some(r::ServerUsage::new(
            o.usage.cpu_user_ms as f64,
            o.usage.cpu_sys_ms as f64,
            s.counters.http_reqs,
            o.usage.rss_peak_bytes,
            o.usage.rss_avg_bytes,
        )),
        loadgen: o.loadgen.map(|(cpu_ms, rss_peak_bytes)| r::LoadgenUsage {
            cpu_ms,
            rss_peak_bytes,
        }),
        raw_summary_file: o.raw_file.clone(),
        by_request: s
            .by_name
            .iter()
            .filter_map(|(name, n)| {
                let (dur, wait) = wasmbench_load::named_trend_names(name);
                Some((
                    name.clone(),
                    r::RequestBreakdown {
                        http_reqs: n.http_reqs,
                        throughput_rps: if s.duration_s > 0.0 {
                            n.http_reqs as f64 / s.duration_s
                        } else {
                            0.0
                        },
                        http_req_failed_rate: if n.http_reqs > 0 {
                            n.http_req_failed as f64 / n.http_reqs as f64
                        } else {
                            0.0
                        },
                        waiting: trend_stats(s.trend(&wait)?),
                        duration: trend_stats(s.trend(&dur)?),
                    },
                ))
            })
            .collect(),
    }
}

fn trend_stats(t: wasmbench_load::TrendStats) -> r::TrendStats {
    r::TrendStats {
        avg_ms: t.avg,
        min_ms: t.min,
        med_ms: t.med,
        max_ms: t.max,
        p90_ms: t.p90,
        p95_ms: t.p95,
        p99_ms: t.p99,
        count: t.count,
    }
}
