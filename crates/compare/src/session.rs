//! One server's session in a comparison: the plan its load follows, how it is launched,
//! warmed up, measured over a window (load, the server's CPU and memory, its kernel counters and
//! the load generator's own CPU) and stopped. Both designs of the loop ([`crate::restart`],
//! [`crate::interleaved`]) and the callgrind pass are built from these steps.

use std::time::Duration;

use wasmbench_load::{Executor, Plan, RunOptions, Summary};
use wasmbench_runtime::{LaunchSpec, ResourceSampler, ResourceUsage, quote_tail};

use crate::config::CompareConfig;
use crate::error::CompareError;
use crate::launcher::{Launcher, ServerHandle};
use crate::outcome::{Event, Options, VariantOutcome};

/// The load plan for one run against `url`.
pub(crate) fn plan_for(
    cfg: &CompareConfig,
    url: String,
    duration: Duration,
) -> Result<Plan, CompareError> {
    let l = &cfg.load;
    let executor = match l.executor.as_str() {
        "constant-arrival-rate" => Executor::ConstantArrivalRate {
            rate: u64::from(l.rate.unwrap_or(1)),
            time_unit: Duration::from_secs(1),
            duration,
            pre_allocated_vus: u64::from(l.vus),
            max_vus: u64::from(l.vus),
        },
        _ => Executor::ConstantVus {
            vus: u64::from(l.vus),
            duration,
        },
    };
    let mut plan = Plan {
        connection_mode: l.connection,
        executor,
        timeout: l.timeout,
        // In-flight requests finish quickly against a healthy server; a stuck one hits the
        // request timeout, so a long graceful stop would only delay the report.
        graceful_stop: Duration::from_secs(5),
        ..Plan::default()
    };
    plan.request.method = l.method.clone();
    plan.request.url = url;
    plan.request.body = l.body.clone().into_bytes();
    plan.mix = l.mix.clone();
    for h in &l.headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(CompareError::Invalid(format!(
                "header {h:?} is not `Name: value`"
            )));
        };
        plan.request
            .headers
            .insert(k.trim().to_string(), v.trim().to_string());
    }
    for c in &l.checks {
        plan.checks.push(wasmbench_load::Check::parse(c)?);
    }
    for t in &l.thresholds {
        plan.thresholds
            .push(wasmbench_load::Threshold::parse_cli(t)?);
    }
    Ok(plan)
}

pub(crate) fn launch_spec(
    cfg: &CompareConfig,
    opts: &Options,
    v: &VariantOutcome,
    server_cpus: Option<&Vec<usize>>,
) -> LaunchSpec {
    let artifact = v
        .artifact
        .clone()
        .expect("variants without an artifact are never launched");
    let mut spec = LaunchSpec::new(artifact);
    spec.env = v.resolved.env.clone();
    spec.cpu_set = server_cpus.cloned();
    spec.cpu_limit = cfg.server_cpu_limit;
    spec.ready_path = cfg.effective_ready_path();
    spec.startup_timeout = cfg.startup_timeout;
    spec.host_exe = Some(opts.host_exe.clone());
    spec.allow_outbound = opts.allow_outbound.clone();
    spec.dirs = cfg.dirs.clone();
    spec.cancel = Some(opts.cancel.clone());
    if v.resolved.is_users() && v.resolved.target.is_wasm() {
        // A guest need not announce its address: with a port of its own, it is ready once
        // that port accepts a connection.
        if let Some(port) = std::net::TcpListener::bind((spec.host, 0))
            .and_then(|l| l.local_addr())
            .ok()
            .map(|a| a.port())
        {
            spec.port = port;
        }
    }
    spec
}

pub(crate) async fn stop(server: Box<dyn ServerHandle>) -> Result<(), String> {
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .map_err(|e| format!("stop task failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// The phase before a Wasm variant's cold starts. Its progress line cannot say "compile": the
/// host finds out only when it starts whether an earlier run cached the compiled code.
pub(crate) const FIRST_START: &str = "first start (compiles the code, or loads it from the cache)";

/// Keeps the first host report of a variant (compile time, cache, pooling); later starts load
/// the cached code, so the first report is the one that says what compiling cost.
fn record_host_report(v: &mut VariantOutcome, server: &dyn ServerHandle) {
    // The first launch's: later ones reuse what it made (an AOT file, a compiled module).
    if v.launch_details.is_empty() {
        v.launch_details = server.launch_details();
    }
    if v.host_report.is_none()
        && let Some(json) = server.host_report_json(Duration::from_millis(200))
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&json)
    {
        v.compile_ms = value.get("compile_ms").and_then(|x| x.as_f64());
        v.host_report = Some(value);
    }
}

/// Launches `v`'s server, ready, and keeps what its host reported.
pub(crate) async fn start(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &mut VariantOutcome,
    server_cpus: Option<&Vec<usize>>,
) -> Result<Box<dyn ServerHandle>, String> {
    let server = launcher
        .launch(&v.resolved, launch_spec(cfg, opts, v, server_cpus))
        .await?;
    v.started = true;
    record_host_report(v, server.as_ref());
    Ok(server)
}

/// The first start of a Wasm variant compiles and caches its code (or loads what an earlier
/// run cached); that is reported as compile time, not as a cold start. Nothing for native
/// variants or after the first call.
pub(crate) async fn prime(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &mut VariantOutcome,
    server_cpus: Option<&Vec<usize>>,
    repeat: u32,
) -> Result<(), String> {
    if v.primed || !v.resolved.target.is_wasm() {
        return Ok(());
    }
    v.primed = true;
    phase(opts, v, repeat, FIRST_START, None);
    let server = start(cfg, opts, launcher, v, server_cpus).await?;
    stop(server).await
}

/// `count` cold starts of `v` (spawn → ready), each on a process of its own.
pub(crate) async fn cold_starts(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &mut VariantOutcome,
    server_cpus: Option<&Vec<usize>>,
    count: u32,
) -> Result<Vec<f64>, String> {
    let mut ms = Vec::new();
    for _ in 0..count {
        if opts.cancel.is_cancelled() {
            return Err("interrupted".into());
        }
        let server = start(cfg, opts, launcher, v, server_cpus).await?;
        ms.push(server.spawn_to_ready().as_secs_f64() * 1e3);
        stop(server).await?;
    }
    Ok(ms)
}

/// Sends `cfg.warmup` of the plan's load to `url` and discards it; `Err` when not one request
/// succeeded (the server is not serving the plan's request).
pub(crate) async fn warm_up(
    cfg: &CompareConfig,
    opts: &Options,
    server: &dyn ServerHandle,
    url: &str,
) -> Result<(), String> {
    if cfg.warmup.is_zero() {
        return Ok(());
    }
    let plan = plan_for(cfg, url.to_string(), cfg.warmup).map_err(|e| e.to_string())?;
    let warm = wasmbench_load::run(
        &plan,
        RunOptions {
            cancel: opts.cancel.child_token(),
            ..RunOptions::default()
        },
    )
    .await
    .map_err(|e| format!("warm-up failed: {e}"))?;
    if warm.counters.http_reqs == warm.counters.http_req_failed {
        // What came back says whether the request or the service is wrong.
        let answered: Vec<String> = warm
            .statuses
            .iter()
            .map(|(status, n)| format!("{status} ×{n}"))
            .collect();
        let got = if answered.is_empty() {
            "no HTTP response at all".to_string()
        } else {
            // One answer's body line often says what the service wanted instead.
            let said = match wasmbench_load::probe(&plan).await {
                Ok(a) if !a.first_line.is_empty() => {
                    format!(", a {} said \"{}\"", a.status, a.first_line)
                }
                _ => String::new(),
            };
            format!(
                "only {}{said}; the plan's {} {} must be answered with a 2xx or 3xx (--path, \
                 --method)",
                answered.join(", "),
                plan.request.method,
                cfg.load.path
            )
        };
        return Err(format!(
            "warm-up sent no successful request to {url} ({got}); the server's stderr ended: {}",
            quote_tail(&server.stderr_tail())
        ));
    }
    Ok(())
}

/// Announces a phase of `v`'s `repeat`.
pub(crate) fn phase(
    opts: &Options,
    v: &VariantOutcome,
    repeat: u32,
    phase: &'static str,
    duration: Option<Duration>,
) {
    (opts.on_event)(Event::Phase {
        variant: v.resolved.name.clone(),
        repeat,
        phase,
        duration,
    });
}

/// The cache-line round trip between the server's and the load generator's first CPUs now;
/// a VM's host may move them between runs.
pub(crate) async fn cpu_round_trip(pinning: Option<&(Vec<usize>, Vec<usize>)>) -> Option<f64> {
    match pinning {
        Some((server, load)) if !server.is_empty() && !load.is_empty() => {
            let (s, l) = (server[0], load[0]);
            tokio::task::spawn_blocking(move || wasmbench_counters::handoff::round_trip_ns(l, s))
                .await
                .ok()
                .and_then(Result::ok)
        }
        _ => None,
    }
}

/// What one measured window observed.
pub(crate) struct Window {
    pub summary: Summary,
    pub usage: ResourceUsage,
    /// CPU (ms) of the load engine's threads over the run, and this process's peak RSS.
    pub loadgen: Option<(f64, u64)>,
    pub server_counts: Option<wasmbench_vocab::ServerCounts>,
}

/// One measured window of `duration` against `server` at `url`: the load, the server's CPU
/// and memory (sampled), its kernel counters and this process's CPU around it. With
/// `progress`, live figures go to the options' events. `Err` when the load failed or the
/// server exited during it.
pub(crate) async fn measure(
    cfg: &CompareConfig,
    opts: &Options,
    server: &mut dyn ServerHandle,
    url: &str,
    duration: Duration,
    progress: bool,
) -> Result<Window, String> {
    let plan = plan_for(cfg, url.to_string(), duration).map_err(|e| e.to_string())?;
    let sampler = ResourceSampler::start(server.pid(), Duration::from_millis(100));
    // Kernel counters, no sampling: switches and faults, and each syscall kind when asked.
    let counting = wasmbench_counters::attach(server.pid(), opts.count_syscalls);
    let (tx, forward) = if progress {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<wasmbench_load::Progress>();
        let on_event = opts.on_event.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                on_event(Event::Progress {
                    elapsed: p.elapsed,
                    requests: p.requests,
                });
            }
        });
        (Some(tx), Some(forward))
    } else {
        (None, None)
    };
    let summary = wasmbench_load::run(
        &plan,
        RunOptions {
            cancel: opts.cancel.child_token(),
            progress: tx,
            ..RunOptions::default()
        },
    )
    .await
    .map_err(|e| format!("load run failed: {e}"));
    if let Some(f) = forward {
        let _ = f.await;
    }
    let summary = summary?;
    // The load engine's own threads: their CPU tells whether the client, not the server, was
    // the bottleneck, and stays this run's alone when other runs share the process (duet).
    let loadgen = summary
        .engine
        .as_ref()
        .and_then(|e| e.worker_cpu_us)
        .map(|us| {
            let rss_peak =
                wasmbench_runtime::resources::memory_bytes(std::process::id()).map_or(0, |m| m.1);
            (us as f64 / 1000.0, rss_peak)
        });
    let usage = sampler.stop();
    let mut counts = counting.finish();
    counts.threads = counts.threads.max(usage.threads_peak);
    let server_counts = Some(counts);
    if let Some(status) = server.exited() {
        return Err(format!(
            "server exited during the load ({status}); its stderr ended: {}",
            quote_tail(&server.stderr_tail())
        ));
    }
    Ok(Window {
        summary,
        usage,
        loadgen,
        server_counts,
    })
}

/// Writes a run's full summary as `<variant>-r<n>.json` under `--raw-dir`, when one was given.
pub(crate) fn write_raw(
    opts: &Options,
    variant: &str,
    repeat: u32,
    summary: &Summary,
) -> Result<Option<String>, String> {
    let Some(dir) = &opts.raw_dir else {
        return Ok(None);
    };
    let file = format!("{variant}-r{}.json", repeat + 1);
    let json = serde_json::to_vec_pretty(summary).map_err(|e| e.to_string())?;
    wasmbench_vocab::result_file::write(&dir.join(&file), &json)
        .map_err(|e| format!("cannot write {}: {e}", dir.join(&file).display()))?;
    Ok(Some(file))
}

/// The capacity search after the measured load, on the same server; `Err` also when the
/// server exited during it.
pub(crate) async fn capacity(
    opts: &Options,
    options: &wasmbench_load::capacity::CapacityOptions,
    plan: &Plan,
    server: &mut dyn ServerHandle,
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> Result<wasmbench_load::capacity::Capacity, String> {
    let found = capacity_search(opts, options, plan, server.pid(), pinning).await?;
    if let Some(status) = server.exited() {
        return Err(format!(
            "server exited during the capacity search ({status}); its stderr ended: {}",
            quote_tail(&server.stderr_tail())
        ));
    }
    Ok(found)
}

/// The capacity search against the server `pid` serves `plan`'s request on, with both CPU
/// clocks read around each step.
async fn capacity_search(
    opts: &Options,
    options: &wasmbench_load::capacity::CapacityOptions,
    plan: &Plan,
    pid: u32,
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> Result<wasmbench_load::capacity::Capacity, String> {
    use wasmbench_load::capacity::{EngineRunner, process_cpu_clock, search};
    let mut runner = EngineRunner::new(RunOptions {
        cancel: opts.cancel.child_token(),
        ..RunOptions::default()
    });
    runner.server_cpu = Some(process_cpu_clock(pid));
    if pid == std::process::id() {
        // A server inside this process: its CPU and the load generator's are one clock, which
        // says nothing about whether the client was the limit.
        runner.loadgen_cpu = None;
    }
    if let Some((_, load)) = pinning {
        runner.loadgen_cpus = load.len().max(1);
    }
    let cancel = opts.cancel.clone();
    search(plan, options, &mut runner, || cancel.is_cancelled())
        .await
        .map_err(|e| format!("capacity search failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_in_k6_object_notation_keep_sub_metric_tags() {
        let mut cfg = CompareConfig::default();
        crate::workloads::apply(&mut cfg, "mix").unwrap();
        cfg.load.thresholds = vec![
            "http_req_duration: p(95)<200".into(),
            "http_req_duration{name:hash}: p(95)<50".into(),
            "http_req_failed{name:json}=rate<0.01".into(),
        ];
        let plan = plan_for(&cfg, "http://127.0.0.1:9/".into(), Duration::from_secs(1)).unwrap();
        let got: Vec<(&str, &str)> = plan
            .thresholds
            .iter()
            .map(|t| (t.metric.as_str(), t.expr.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("http_req_duration", "p(95)<200"),
                ("http_req_duration{name:hash}", "p(95)<50"),
                ("http_req_failed{name:json}", "rate<0.01"),
            ]
        );
        assert_eq!(plan.mix.len(), 5);
        plan.validate().unwrap();
    }
}
