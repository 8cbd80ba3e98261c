//! Turns what the local loop measured into the inputs of [`crate::assemble`].

use wasmbench_report as r;

use crate::assemble;
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
    let mut fairness: Vec<String> = FAIRNESS.iter().map(|s| s.to_string()).collect();
    if cfg.variants.iter().any(|v| v.artifact.is_some()) {
        fairness.push("user-supplied artifacts: the builds are the user's, not ours".into());
    }
    let how = assemble::PlanContext {
        workload: cfg.workload.clone(),
        load_generators: 1,
        load_engine: wasmbench_vocab::LoadEngine::Wasmbench,
        repeats: cfg.repeats,
        warmup: cfg.warmup,
        cold_start_samples: cfg.cold_starts,
        cpu_pinning: o.pinning.as_ref().map(|(s, l)| r::CpuPinning {
            server_cpus: s.iter().map(|&c| c as u32).collect(),
            load_cpus: l.iter().map(|&c| c as u32).collect(),
        }),
        fairness,
    };
    assemble::comparison(assemble::Measured {
        started_at: o.started_at,
        ended_at: o.ended_at,
        command_line: opts
            .command_line
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        partial: o.partial,
        environment: o.environment,
        plan: assemble::plan(&o.load_plan, &how),
        variants: o.variants.into_iter().map(variant).collect(),
        warnings: o.warnings,
    })
}

fn variant(v: VariantOutcome) -> r::VariantResult {
    let info = v.resolved.runtime.info();
    let mut details = info.details.clone();
    details.extend(v.launch_details.clone());
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
        callgrind: v.callgrind.clone(),
        aggregate: r::Aggregate::default(),
    }
}

fn run(o: &RunOutcome) -> r::RunResult {
    let s = &o.summary;
    assemble::run_result(&assemble::MeasuredRun {
        repeat: o.repeat,
        summary: s,
        cold_start_ms: o.cold_start_ms.clone(),
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
        server_counts: o.server_counts.clone(),
        raw_summary_file: o.raw_file.clone(),
    })
}
