//! The comparison loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmbench_load::{Executor, Plan, RunOptions, Summary};
use wasmbench_runtime::{
    Artifact, BuildOptions, LaunchSpec, ResourceSampler, ResourceUsage, RuntimeError, quote_tail,
};

use crate::config::{CompareConfig, PrecisionGoal};
use crate::error::CompareError;
use crate::launcher::{Launcher, RuntimeLauncher, ServerHandle};
use crate::variants::{Build, Resolved, resolve};
use wasmbench_report::{PrecisionRecord, PrecisionStop};

/// Progress of a comparison, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum Event {
    /// Building or locating a variant's artifact.
    Building {
        /// Variant name.
        variant: String,
    },
    /// A variant will not run here.
    Skipped {
        /// Variant name.
        variant: String,
        /// Why.
        reason: String,
    },
    /// A variant failed; the comparison goes on with the others.
    Failed {
        /// Variant name.
        variant: String,
        /// Why.
        reason: String,
    },
    /// A phase of one run started.
    Phase {
        /// Variant name.
        variant: String,
        /// Repeat index (0-based).
        repeat: u32,
        /// `cold-start`, `warm-up` or `load`.
        phase: &'static str,
        /// Expected length of the phase, when known.
        duration: Option<Duration>,
    },
    /// Live figures during the measured load.
    Progress {
        /// Seconds into the phase.
        elapsed: Duration,
        /// Requests completed so far.
        requests: u64,
    },
    /// One measured run finished.
    RunDone {
        /// Variant name.
        variant: String,
        /// Repeat index.
        repeat: u32,
        /// Requests per second of the run.
        rps: f64,
    },
}

/// Everything a comparison needs besides its configuration.
#[derive(Clone)]
pub struct Options {
    /// Cancels the comparison (Ctrl-C); results so far are returned, marked partial.
    pub cancel: CancellationToken,
    /// The `wasmbench` executable, which hosts the embedded runtimes in their own process.
    pub host_exe: PathBuf,
    /// How workload artifacts are built.
    pub build: BuildOptions,
    /// The command line that started the comparison, one argument per element, recorded in
    /// the result.
    pub command_line: Vec<String>,
    /// Receives progress events.
    pub on_event: Arc<dyn Fn(Event) + Send + Sync>,
    /// When set, each run's full load summary is written there as JSON.
    pub raw_dir: Option<PathBuf>,
    /// Authorities the embedded `wasi:http` host lets guests send requests to
    /// (`--allow-outbound`); empty, the default, refuses every outgoing request.
    pub allow_outbound: Vec<SocketAddr>,
    /// Also count the server's syscalls by kind over each load run (`wasmbench_counters`);
    /// context switches and page faults are always counted. Off by default: the tracepoint
    /// counters lower a busy server's throughput (docs/metrics.md).
    pub count_syscalls: bool,
    /// After each variant's measured runs, count its instructions per request under valgrind's
    /// callgrind in a pass of its own ([`crate::callgrind`]).
    pub callgrind: bool,
    /// After each measured run, search the highest rate its server sustains within the SLO
    /// (`--capacity`), on the same server, outside the measured window.
    pub capacity: Option<wasmbench_load::capacity::CapacityOptions>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("host_exe", &self.host_exe)
            .field("build", &self.build)
            .field("raw_dir", &self.raw_dir)
            .field("allow_outbound", &self.allow_outbound)
            .finish_non_exhaustive()
    }
}

/// The outcome of one variant, before it becomes part of the report.
#[derive(Debug)]
pub(crate) struct VariantOutcome {
    pub resolved: Resolved,
    pub artifact: Option<Artifact>,
    pub compile_ms: Option<f64>,
    pub host_report: Option<serde_json::Value>,
    /// What the runtime recorded about the variant's first launch.
    pub launch_details: std::collections::BTreeMap<String, String>,
    pub primed: bool,
    /// Whether a server of this variant ever became ready.
    pub started: bool,
    pub status: Status,
    pub runs: Vec<RunOutcome>,
    /// The callgrind pass's count, when `Options::callgrind` asked for one and it worked.
    pub callgrind: Option<wasmbench_report::CallgrindCount>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    Ok,
    Skipped(String),
    Failed(String),
}

/// One measured run.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    pub repeat: u32,
    pub cold_start_ms: Vec<f64>,
    pub summary: Summary,
    pub usage: ResourceUsage,
    /// CPU (ms) and peak RSS of this process, which generates the load, over the run.
    pub loadgen: Option<(f64, u64)>,
    /// What the kernel counted for the server over the run (`None` when counting was off).
    pub server_counts: Option<wasmbench_vocab::ServerCounts>,
    pub raw_file: Option<String>,
    /// The capacity search after the measured run, when asked for.
    pub capacity: Option<wasmbench_load::capacity::Capacity>,
    /// Cache-line round trip between the server's and the load generator's first CPUs, just
    /// before the measured run.
    pub cpu_round_trip_ns: Option<f64>,
}

/// What the loop produced; turned into a report by `crate::report`.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub variants: Vec<VariantOutcome>,
    pub load_plan: Plan,
    pub environment: wasmbench_report::Environment,
    pub pinning: Option<(Vec<usize>, Vec<usize>)>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub partial: bool,
    /// What a pass after the measured runs could not do (the callgrind count).
    pub warnings: Vec<String>,
    /// Repeats started per variant.
    pub repeats: u32,
    /// What a precision target reached, when there was one.
    pub precision: Option<PrecisionRecord>,
}

/// Whether repeating stops after `done` repeats that took `spent`, and the precision reached:
/// the widest relative half-width of a headline ratio's interval and the ratio that has it.
fn precision_check(
    goal: &PrecisionGoal,
    variants: &[VariantOutcome],
    done: u32,
    spent: Duration,
) -> (Option<PrecisionStop>, Option<(f64, String)>) {
    let runs = |v: &VariantOutcome| -> Vec<wasmbench_report::RunResult> {
        v.runs.iter().map(crate::report::run).collect()
    };
    let reached = variants
        .first()
        .filter(|b| b.status == Status::Ok)
        .and_then(|base| {
            let base_runs = runs(base);
            let others: Vec<(String, Vec<wasmbench_report::RunResult>)> = variants[1..]
                .iter()
                .filter(|v| v.status == Status::Ok)
                .map(|v| (v.resolved.name.clone(), runs(v)))
                .collect();
            wasmbench_report::headline_precision(
                &base_runs,
                others.iter().map(|(n, r)| (n.as_str(), r.as_slice())),
            )
        });
    let stop = if done >= PrecisionGoal::MIN_REPEATS
        && reached.as_ref().is_some_and(|(w, _)| *w <= goal.target)
    {
        Some(PrecisionStop::TargetMet)
    } else if variants.first().is_none_or(|b| b.status != Status::Ok)
        || variants.iter().filter(|v| v.status == Status::Ok).count() < 2
    {
        Some(PrecisionStop::NothingToCompare)
    } else if done >= goal.max_repeats {
        Some(PrecisionStop::RepeatCap)
    } else if done > 0 && spent + spent / done > goal.max_time {
        // The next repeat is expected to take as long as the mean one so far.
        Some(PrecisionStop::TimeBudget)
    } else {
        None
    };
    (stop, reached)
}

fn record(
    goal: &PrecisionGoal,
    stopped: PrecisionStop,
    reached: Option<(f64, String)>,
    repeats: u32,
) -> PrecisionRecord {
    let (reached, limited_by) = reached.map_or((None, None), |(w, by)| (Some(w), Some(by)));
    PrecisionRecord {
        target: goal.target,
        reached,
        limited_by,
        repeats,
        stopped,
        max_time_s: goal.max_time.as_secs_f64(),
    }
}

/// Runs the comparison and returns the result every report renders.
pub async fn run(
    cfg: &CompareConfig,
    opts: &Options,
) -> Result<wasmbench_report::Comparison, CompareError> {
    run_with(cfg, opts, &RuntimeLauncher).await
}

/// [`run`], with the variants' servers started by `launcher`.
pub(crate) async fn run_with(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
) -> Result<wasmbench_report::Comparison, CompareError> {
    cfg.validate().map_err(CompareError::Invalid)?;
    let started_at = chrono::Utc::now();
    let environment = crate::environment::detect();
    let pinning = cfg.pinning.resolve(environment.cpu_count as usize);
    // Reject a bad plan before building anything; the report states this plan (only the
    // server's address differs between runs).
    let load_plan = plan_for(
        cfg,
        format!("http://127.0.0.1:1{}", cfg.load.path),
        cfg.load.duration,
    )?;
    load_plan.validate()?;

    let mut variants = Vec::new();
    for spec in &cfg.variants {
        variants.push(VariantOutcome {
            resolved: resolve(spec)?,
            artifact: None,
            compile_ms: None,
            host_report: None,
            launch_details: Default::default(),
            primed: false,
            started: false,
            status: Status::Ok,
            runs: Vec::new(),
            callgrind: None,
        });
    }

    // Everything that can be known before a server starts is checked for every variant
    // first, so a wrong runtime or module fails in a moment, not after the others ran.
    for v in &mut variants {
        if let Err(reason) = launcher.available(&v.resolved) {
            if !cfg.skip_unavailable {
                return Err(CompareError::Runtime(RuntimeError::Unavailable {
                    runtime: v.resolved.name.clone(),
                    reason: format!(
                        "{reason}; leave it out of --variants, or pass `--variants all` to run \
                         whatever can run here"
                    ),
                }));
            }
            (opts.on_event)(Event::Skipped {
                variant: v.resolved.name.clone(),
                reason: reason.clone(),
            });
            v.status = Status::Skipped(reason);
            continue;
        }
        crate::preflight::check_loadable(&v.resolved)?;
    }

    let mut built: BTreeMap<Build, Artifact> = BTreeMap::new();
    for v in &mut variants {
        let name = v.resolved.name.clone();
        if v.status != Status::Ok {
            continue;
        }
        (opts.on_event)(Event::Building {
            variant: name.clone(),
        });
        let build = v.resolved.build;
        let artifact = match (&v.resolved.artifact, build) {
            (Some(path), _) => Artifact::from_path(v.resolved.target, path),
            (None, Build::Command) => match &v.resolved.command {
                Some(c) => c.artifact(),
                None => Err(wasmbench_runtime::RuntimeError::Config(
                    "command variant without a command".into(),
                )),
            },
            (None, _) => match built.get(&build) {
                Some(a) => Ok(a.clone()),
                None => {
                    let opts_build = opts.build.clone();
                    let a = tokio::task::spawn_blocking(move || build.build(&opts_build))
                        .await
                        .map_err(|e| CompareError::Invalid(format!("build task failed: {e}")))?;
                    if let Ok(a) = &a {
                        built.insert(build, a.clone());
                    }
                    a
                }
            },
        };
        match artifact {
            Ok(a) => v.artifact = Some(a),
            Err(e) => {
                // A user-supplied file that is unusable is a usage error, not a variant failure.
                if v.resolved.artifact.is_some() {
                    return Err(e.into());
                }
                let reason = e.to_string();
                (opts.on_event)(Event::Failed {
                    variant: name,
                    reason: reason.clone(),
                });
                v.status = Status::Failed(reason);
            }
        }
    }

    if let Some(dir) = &opts.raw_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| CompareError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    }

    let mut partial = false;
    let repeats_started = std::time::Instant::now();
    let mut repeat = 0u32;
    let mut precision = None;
    'repeats: loop {
        if repeat >= cfg.repeats {
            let Some(goal) = &cfg.precision else { break };
            let (stop, reached) =
                precision_check(goal, &variants, repeat, repeats_started.elapsed());
            if let Some(stop) = stop {
                precision = Some(record(goal, stop, reached, repeat));
                break;
            }
        }
        if !variants.iter().any(|v| v.status == Status::Ok) {
            break;
        }
        let n = variants.len();
        // Rotate the order each repeat so no variant always runs first (cold caches) or last.
        for k in 0..n {
            let i = (k + repeat as usize) % n;
            if opts.cancel.is_cancelled() {
                partial = true;
                break 'repeats;
            }
            let v = &mut variants[i];
            if v.status != Status::Ok {
                continue;
            }
            match run_once(cfg, opts, launcher, v, repeat, pinning.as_ref()).await {
                Ok(run) => {
                    partial |= run.summary.partial;
                    (opts.on_event)(Event::RunDone {
                        variant: v.resolved.name.clone(),
                        repeat,
                        rps: run.summary.http_reqs_per_s(),
                    });
                    v.runs.push(run);
                }
                Err(reason) if opts.cancel.is_cancelled() => {
                    let _ = reason;
                    partial = true;
                    break 'repeats;
                }
                Err(reason) => {
                    (opts.on_event)(Event::Failed {
                        variant: v.resolved.name.clone(),
                        reason: reason.clone(),
                    });
                    v.status = Status::Failed(reason);
                }
            }
        }
        repeat += 1;
    }
    if let (Some(goal), None) = (&cfg.precision, &precision) {
        // Interrupted, or no variant left to run: say how far it got.
        let (_, reached) = precision_check(goal, &variants, repeat, repeats_started.elapsed());
        let stop = if opts.cancel.is_cancelled() {
            PrecisionStop::Interrupted
        } else {
            PrecisionStop::NothingToCompare
        };
        precision = Some(record(goal, stop, reached, repeat));
    }
    if opts.cancel.is_cancelled() {
        partial = true;
    }
    let mut warnings = Vec::new();
    if opts.callgrind && !partial {
        let server_cpus = pinning.as_ref().map(|(s, _)| s);
        for v in variants
            .iter_mut()
            .filter(|v| v.status == Status::Ok && !v.runs.is_empty())
        {
            (opts.on_event)(Event::Phase {
                variant: v.resolved.name.clone(),
                repeat: cfg.repeats,
                phase: "callgrind",
                duration: None,
            });
            match crate::callgrind::count(cfg, opts, launcher, v, server_cpus).await {
                Ok(c) => v.callgrind = Some(c),
                Err(e) => warnings.push(format!(
                    "{}: instructions per request not counted under callgrind: {e}",
                    v.resolved.name
                )),
            }
        }
    }

    let outcome = Outcome {
        variants,
        load_plan,
        environment,
        pinning,
        started_at,
        ended_at: chrono::Utc::now(),
        partial,
        warnings,
        repeats: repeat,
        precision,
    };
    Ok(crate::report::build(cfg, opts, outcome))
}

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

async fn run_once(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &mut VariantOutcome,
    repeat: u32,
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> Result<RunOutcome, String> {
    let name = v.resolved.name.clone();
    let server_cpus = pinning.map(|(s, _)| s);
    let event = |phase: &'static str, duration: Option<Duration>| {
        (opts.on_event)(Event::Phase {
            variant: name.clone(),
            repeat,
            phase,
            duration,
        })
    };

    if !v.primed && v.resolved.target.is_wasm() {
        v.primed = true;
        // The first start of a Wasm variant compiles and caches its code; that is reported as
        // compile time, not as a cold start.
        event("compile", None);
        let server = launcher
            .launch(&v.resolved, launch_spec(cfg, opts, v, server_cpus))
            .await?;
        v.started = true;
        record_host_report(v, server.as_ref());
        stop(server).await?;
    }
    event("cold-start", None);
    let mut cold_start_ms = Vec::new();
    for _ in 0..cfg.cold_starts {
        if opts.cancel.is_cancelled() {
            return Err("interrupted".into());
        }
        let server = launcher
            .launch(&v.resolved, launch_spec(cfg, opts, v, server_cpus))
            .await?;
        v.started = true;
        cold_start_ms.push(server.spawn_to_ready().as_secs_f64() * 1e3);
        record_host_report(v, server.as_ref());
        stop(server).await?;
    }

    let server = launcher
        .launch(&v.resolved, launch_spec(cfg, opts, v, server_cpus))
        .await?;
    v.started = true;
    record_host_report(v, server.as_ref());
    let url = format!("{}{}", server.url(), cfg.load.path);

    if !cfg.warmup.is_zero() {
        event("warm-up", Some(cfg.warmup));
        let plan = plan_for(cfg, url.clone(), cfg.warmup).map_err(|e| e.to_string())?;
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
            return Err(format!(
                "warm-up sent no successful request to {url}; the server's stderr ended: {}",
                quote_tail(&server.stderr_tail())
            ));
        }
    }

    // Where the host has placed the two CPUs right now; a VM's may move between runs.
    let cpu_round_trip_ns = match pinning {
        Some((server, load)) if !server.is_empty() && !load.is_empty() => {
            let (s, l) = (server[0], load[0]);
            tokio::task::spawn_blocking(move || wasmbench_counters::handoff::round_trip_ns(l, s))
                .await
                .ok()
                .and_then(Result::ok)
        }
        _ => None,
    };
    event("load", Some(cfg.load.duration));
    let plan = plan_for(cfg, url.clone(), cfg.load.duration).map_err(|e| e.to_string())?;
    let sampler = ResourceSampler::start(server.pid(), Duration::from_millis(100));
    // Kernel counters, no sampling: switches and faults, and each syscall kind when asked.
    let counting = wasmbench_counters::attach(server.pid(), opts.count_syscalls);
    // The load engine runs in this process; its CPU over the run tells whether the client, not
    // the server, was the bottleneck.
    let me = std::process::id();
    let cpu_before = wasmbench_runtime::resources::cpu_times(me).ok();
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
    let summary = wasmbench_load::run(
        &plan,
        RunOptions {
            cancel: opts.cancel.child_token(),
            progress: Some(tx),
            ..RunOptions::default()
        },
    )
    .await
    .map_err(|e| format!("load run failed: {e}"));
    let _ = forward.await;
    let summary = summary?;
    let loadgen = cpu_before
        .zip(wasmbench_runtime::resources::cpu_times(me).ok())
        .map(|(a, b)| {
            let cpu_ms = (b.user_ms + b.sys_ms).saturating_sub(a.user_ms + a.sys_ms);
            let rss_peak = wasmbench_runtime::resources::memory_bytes(me).map_or(0, |m| m.1);
            (cpu_ms as f64, rss_peak)
        });
    let usage = sampler.stop();
    let server_counts = Some(counting.finish());
    let mut server = server;
    if let Some(status) = server.exited() {
        return Err(format!(
            "server exited during the load ({status}); its stderr ended: {}",
            quote_tail(&server.stderr_tail())
        ));
    }
    let capacity = match &opts.capacity {
        Some(options) if !opts.cancel.is_cancelled() => {
            event("capacity", None);
            Some(capacity_search(opts, options, &plan, server.pid(), pinning).await?)
        }
        _ => None,
    };
    if let Some(status) = server.exited() {
        return Err(format!(
            "server exited during the capacity search ({status}); its stderr ended: {}",
            quote_tail(&server.stderr_tail())
        ));
    }
    stop(server).await?;

    let raw_file = match &opts.raw_dir {
        Some(dir) => {
            let file = format!("{}-r{}.json", v.resolved.name, repeat + 1);
            let json = serde_json::to_vec_pretty(&summary).map_err(|e| e.to_string())?;
            wasmbench_vocab::result_file::write(&dir.join(&file), &json)
                .map_err(|e| format!("cannot write {}: {e}", dir.join(&file).display()))?;
            Some(file)
        }
        None => None,
    };
    Ok(RunOutcome {
        repeat,
        cold_start_ms,
        summary,
        usage,
        loadgen,
        server_counts,
        raw_file,
        capacity,
        cpu_round_trip_ns,
    })
}

#[cfg(test)]
mod loop_tests;

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
