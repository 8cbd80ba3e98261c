//! Turns what the local loop measured into the inputs of [`crate::assemble`].

use wasmbench_report as r;

use crate::config::CompareConfig;
use crate::error::CompareError;
use crate::outcome::{Options, Outcome, RunOutcome, Status, VariantOutcome};
use crate::variants::Build;
use wasmbench_report::WASI_HTTP_MODE;
use wasmbench_report::assemble;

/// How our workload is built, when every variant runs one of our builds.
const OUR_BUILD: &str = "built with the `artifact` profile (opt-level 3, LTO, 1 codegen unit)";
/// The concurrency model of `crates/echo` in its default mode.
const ECHO_CONCURRENT: &str =
    "one thread, non-blocking sockets, one poll(2) event loop (wasi-libc maps poll to WASI)";
/// The listener settings of `crates/echo`.
const ECHO_LISTENER: &str =
    "keep-alive on, TCP_NODELAY requested, 1 MiB body limit, 16 KiB head limit";

/// The concurrency mode of a variant, when the run knows it: our builds' `ECHO_MODE` (or the
/// wasi:http host's model); `None` for a service the user brought.
fn workload_mode(v: &VariantOutcome) -> Option<String> {
    if v.resolved.is_users() {
        return None;
    }
    if matches!(v.resolved.build, Build::EchoHttp | Build::EchoHttpP3) {
        return Some(WASI_HTTP_MODE.into());
    }
    Some(
        v.resolved
            .env
            .iter()
            .find(|(k, _)| k == "ECHO_MODE")
            .map_or("concurrent".to_string(), |(_, m)| m.clone()),
    )
}

/// The conditions every variant shares, and what differs, stated from what the run knows:
/// how our builds are made, and for the user's services only what the user gave.
fn fairness(cfg: &CompareConfig, variants: &[VariantOutcome]) -> Vec<String> {
    let mut out = Vec::new();
    let ours: Vec<&VariantOutcome> = variants.iter().filter(|v| !v.resolved.is_users()).collect();
    let mut sources: Vec<(&str, Vec<&str>)> = Vec::new();
    for v in &ours {
        let src = v.resolved.build.source();
        match sources.iter_mut().find(|(s, _)| *s == src) {
            Some((_, names)) => names.push(&v.resolved.name),
            None => sources.push((src, vec![&v.resolved.name])),
        }
    }
    match sources.as_slice() {
        [] => {}
        [(src, _)] if ours.len() == variants.len() => {
            out.push(format!(
                "same workload source ({src}) for every variant, {OUR_BUILD}"
            ));
        }
        _ => out.push(format!(
            "workload sources: {}; {OUR_BUILD}",
            sources
                .iter()
                .map(|(s, names)| format!("{s} for {}", names.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
    let echo: Vec<&VariantOutcome> = ours
        .iter()
        .copied()
        .filter(|v| matches!(v.resolved.build, Build::Echo(_) | Build::EchoWasmedge))
        .collect();
    if !echo.is_empty() {
        let who = if echo.len() == variants.len() {
            "same".to_string()
        } else {
            format!(
                "{}:",
                echo.iter()
                    .map(|v| v.resolved.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let modes: Vec<Option<String>> = echo.iter().map(|v| workload_mode(v)).collect();
        if modes.iter().all(|m| m.as_deref() == Some("concurrent")) {
            out.push(format!("{who} concurrency model: {ECHO_CONCURRENT}"));
        }
        out.push(format!("{who} listener options: {ECHO_LISTENER}"));
    }
    for v in variants.iter().filter(|v| v.resolved.is_users()) {
        let what = match (&v.resolved.command, &v.artifact) {
            (Some(c), _) => format!("the user's command `{}`", c.command()),
            (None, Some(a)) => format!(
                "the user's build {} (sha256 {})",
                a.path.display(),
                a.sha256.get(..12).unwrap_or(&a.sha256)
            ),
            (None, None) => "the user's build".to_string(),
        };
        out.push(format!(
            "{} runs {what}: its source, concurrency model and limits are the user's, and this \
             report states only what it measured of it",
            v.resolved.name
        ));
    }
    let mut harness = match cfg.design {
        wasmbench_vocab::Design::Restart => {
            "one server process per variant, started fresh for every repeat".to_string()
        }
        wasmbench_vocab::Design::Interleaved => format!(
            "one server process per variant, started once; the load measured in blocks of {} \
             alternating between the variants in a shuffled order each round, each ratio paired \
             by round",
            wasmbench_vocab::duration::format(cfg.measured_run())
        ),
        wasmbench_vocab::Design::Duet => format!(
            "one server process per variant, started once; the load measured in rounds of {} \
             blocks run at the same time, every server loaded at once on the same CPUs, so each \
             server's figures are those of servers sharing those CPUs; each ratio paired by round",
            wasmbench_vocab::duration::format(cfg.measured_run())
        ),
    };
    if !cfg.warmup.is_zero() {
        harness.push_str(&format!(
            ", measured after {} of warm-up",
            wasmbench_vocab::duration::format(cfg.warmup)
        ));
    }
    out.push(harness);
    if let Some(cpus) = cfg.server_cpu_limit {
        out.push(format!(
            "every server limited to {cpus} CPU by a cgroup CFS quota ({:.1} ms per {:.0} ms \
             period; Kubernetes' default period is 100 ms), as a pod's CPU limit",
            cpus * wasmbench_runtime::launch::CPU_LIMIT_PERIOD.as_secs_f64() * 1e3,
            wasmbench_runtime::launch::CPU_LIMIT_PERIOD.as_secs_f64() * 1e3
        ));
    }
    out
}

/// Cold starts per repeat: the interleaved design takes them all before its rounds, with its
/// first round.
fn cold_start_samples(cfg: &CompareConfig) -> u32 {
    match cfg.design {
        wasmbench_vocab::Design::Restart => cfg.cold_starts,
        wasmbench_vocab::Design::Interleaved | wasmbench_vocab::Design::Duet => {
            cfg.cold_starts.saturating_mul(cfg.repeats)
        }
    }
}

/// The readiness rule in words: cold starts end when it holds.
fn readiness(ready_path: &str) -> String {
    if ready_path.is_empty() {
        "first accepted TCP connection on the server's port".into()
    } else {
        format!("first 200 on GET {ready_path}")
    }
}

/// The plan record a run of `cfg` will report, known before it runs (without the fairness
/// lines, which depend on the variants' builds): what `--baseline` checks against a saved run.
pub fn planned(cfg: &CompareConfig) -> Result<r::PlanRecord, CompareError> {
    let load_plan = crate::session::plan_for(
        cfg,
        format!("http://127.0.0.1:1{}", cfg.load.path),
        cfg.measured_run(),
    )?;
    let how = assemble::PlanContext {
        workload: cfg.workload.clone(),
        load_generators: 1,
        load_engine: wasmbench_vocab::LoadEngine::Wasmbench,
        repeats: cfg.repeats * cfg.rounds_per_repeat(),
        design: Some(cfg.design),
        server_cpu_limit: cfg.server_cpu_limit,
        warmup: cfg.warmup,
        cold_start_samples: cold_start_samples(cfg),
        cpu_pinning: None,
        fairness: Vec::new(),
        readiness: Some(readiness(&cfg.effective_ready_path())),
    };
    Ok(assemble::plan(&load_plan, &how))
}

pub(crate) fn build(cfg: &CompareConfig, opts: &Options, o: Outcome) -> r::Comparison {
    let fairness = fairness(cfg, &o.variants);
    let how = assemble::PlanContext {
        workload: cfg.workload.clone(),
        load_generators: 1,
        load_engine: wasmbench_vocab::LoadEngine::Wasmbench,
        repeats: o.repeats,
        design: Some(cfg.design),
        server_cpu_limit: cfg.server_cpu_limit,
        warmup: cfg.warmup,
        cold_start_samples: cold_start_samples(cfg),
        cpu_pinning: o.pinning.as_ref().map(|(s, l)| r::CpuPinning {
            server_cpus: s.iter().map(|&c| c as u32).collect(),
            load_cpus: l.iter().map(|&c| c as u32).collect(),
        }),
        fairness,
        readiness: Some(readiness(&cfg.effective_ready_path())),
    };
    assemble::comparison(assemble::Measured {
        started_at: o.started_at,
        ended_at: o.ended_at,
        command_line: opts.command_line.clone(),
        partial: o.partial,
        environment: o.environment,
        plan: assemble::plan(&o.load_plan, &how),
        variants: o.variants.into_iter().map(variant).collect(),
        warnings: o.warnings,
        precision: o.precision,
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
    let workload_mode = workload_mode(&v);
    let not_started = matches!(v.status, Status::Failed(_)) && !v.started;
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
        artifact: v
            .artifact
            .as_ref()
            .filter(|_| {
                v.resolved
                    .command
                    .as_ref()
                    .is_none_or(|c| c.states_artifact())
            })
            .map(|a| r::ArtifactInfo {
                path: a.path.display().to_string(),
                size_bytes: a.size_bytes,
                build_ms: a.build_time.as_secs_f64() * 1e3,
                sha256: a.sha256.clone(),
                compile_ms: v.compile_ms,
                cwasm_size_bytes,
            }),
        status,
        reason,
        not_started,
        runs: v.runs.iter().map(run).collect(),
        callgrind: v.callgrind.clone(),
        aggregate: r::Aggregate::default(),
    }
}

pub(crate) fn run(o: &RunOutcome) -> r::RunResult {
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
        capacity: o.capacity.as_ref().map(assemble::capacity_search),
        cpu_round_trip_ns: o.cpu_round_trip_ns,
    })
}
