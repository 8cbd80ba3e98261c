//! `wasmbench compare` and `wasmbench runtimes`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;
use wasmbench_compare::config::LoadSettings;
use wasmbench_compare::{CompareConfig, Event, Options, Pinning, Profile};
use wasmbench_report::Format;

use crate::exit::{Exit, fail};
use crate::load_flags::LoadFlags;
use crate::sandbox_flags::SandboxFlags;

/// Arguments of `wasmbench compare`. Flags override `--config`, which overrides the defaults
/// (the demo's plan: 100 VUs, 30 s, checks `status == 200` and `duration < 200`).
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A few seconds per variant instead of the full default run.
    #[arg(long)]
    pub quick: bool,
    /// Variants to compare, comma-separated (first = baseline), or `all` for every variant
    /// that can run here. See `wasmbench runtimes`.
    #[arg(long, value_delimiter = ',', alias = "runtimes")]
    pub variants: Vec<String>,
    /// `seed` reproduces the demo: one connection at a time, HTTP/1.0 reply, close.
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Configuration file (see docs/configuration in README).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// The load: executor, VUs, duration, connection mode, request, checks, thresholds.
    #[command(flatten)]
    pub load: LoadFlags,
    /// Measured repeats per variant: runs of the whole duration in the restart design, that
    /// much load in blocks in the others (with --precision: the fewest; 1 by default in the
    /// duet and interleaved designs, 5 in the restart design).
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Keep adding repeats (rounds of blocks) until the 95% interval of every headline ratio (throughput, p95
    /// time to first byte, CPU per request) is within this share of the ratio, e.g. `5%`.
    #[arg(long, value_parser = crate::capacity_flags::parse_share)]
    pub precision: Option<f64>,
    /// With --precision: the time the measured repeats may take, e.g. `3m` (default 10m).
    #[arg(long, value_parser = wasmbench_vocab::duration::parse, requires = "precision")]
    pub max_time: Option<Duration>,
    /// Load before each measured run, discarded, e.g. `5s` (`0s` to skip).
    #[arg(long, value_parser = wasmbench_vocab::duration::parse)]
    pub warmup: Option<Duration>,
    /// Cold starts measured per repeat.
    #[arg(long)]
    pub cold_starts: Option<u32>,
    /// How the measured load is scheduled: `duet` (default: servers started once, every
    /// variant loaded at the same time in short blocks, so a round's blocks share the machine's
    /// drift and the servers share the server CPUs; ratios paired by round), `interleaved`
    /// (the same blocks, one variant at a time in a shuffled order) or `restart` (every repeat
    /// restarts every server and measures one run of the whole duration).
    #[arg(long, value_enum)]
    pub design: Option<wasmbench_vocab::Design>,
    /// Limit every variant's server to this many CPUs' worth of time, e.g. `0.5`: a cgroup CFS
    /// quota, as a Kubernetes pod's CPU limit (needs root), for a server faster than the load
    /// generator can drive from its cores. Recorded in the report.
    #[arg(long, value_name = "CPUS")]
    pub server_cpu_limit: Option<f64>,
    /// With the duet and interleaved designs: the length of one block, e.g. `2s` (default).
    #[arg(long, value_parser = wasmbench_vocab::duration::parse)]
    pub block: Option<Duration>,
    /// Do not pin the server and the load generator to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Also count the server's syscalls by kind during the measured runs (needs root and
    /// tracefs; the counters lower a busy server's throughput, and the report says so).
    #[arg(long)]
    pub count_syscalls: bool,
    /// Count each variant's instructions per request under valgrind's callgrind, in a pass of
    /// its own after the measured runs (deterministic, so a CI gate on it does not flake), for
    /// every variant, the user's own too. Without it the pass runs when valgrind is installed
    /// and every variant is one of the project's builds. With --out, the profiles are written
    /// to runs/<variant>.callgrind.out.
    #[arg(long, conflicts_with = "no_callgrind")]
    pub callgrind: bool,
    /// Skip the callgrind pass.
    #[arg(long)]
    pub no_callgrind: bool,
    /// CPUs for the server, e.g. `1` or `2,3` (with `--load-cpus`).
    #[arg(long, value_delimiter = ',', requires = "load_cpus")]
    pub server_cpus: Vec<usize>,
    /// CPUs for the load generator.
    #[arg(long, value_delimiter = ',', requires = "server_cpus")]
    pub load_cpus: Vec<usize>,
    /// Output format on stdout.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: Format,
    /// Write every format plus the raw per-run JSON to this directory.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Bring your own service: native command line; `{port}` is replaced by the port (also in
    /// the `PORT` environment variable).
    #[arg(long)]
    pub native_cmd: Option<String>,
    /// Bring your own service: its WebAssembly build (a wasip2 command, a wasip1 module, or a
    /// `wasi:http/proxy` component).
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// Runtimes for `--wasm`, comma-separated variant names, each run as a variant of its own
    /// (`all`: every installed runtime that runs this kind of `.wasm`; default: the embedded
    /// Wasmtime host for it). `--variants` with `--wasm` means the same.
    #[arg(long, value_delimiter = ',')]
    pub wasm_runtime: Vec<String>,
    /// The service's environment and readiness, as `k8s run` takes them.
    #[command(flatten)]
    pub service: crate::service_flags::ServiceFlags,
    /// Host directory a Wasm guest may open, `HOST[::GUEST]` as in `wasmtime run` (repeatable);
    /// guests see no files otherwise.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,
    /// Workload of our service: `echo` (default), `hash`, `json`, `alloc`, `sleep`, or `mix`
    /// (every endpoint in one run, reported per request).
    #[arg(long)]
    pub workload: Option<String>,
    /// Where the workload sources are (default: this checkout).
    #[arg(long, hide = true)]
    pub workspace: Option<PathBuf>,
    /// Compare every figure with a saved run (the `--out` directory of an earlier compare with
    /// the same variants and plan) and report each change with its 95% interval.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit 16 when a figure got worse by more than this share with its whole
    /// 95% interval beyond it, e.g. `5%` (also the noise threshold of the verdicts; default 5%).
    #[arg(long, value_name = "SHARE", value_parser = crate::capacity_flags::parse_share, requires = "baseline")]
    pub fail_on_regression: Option<f64>,
    /// What guests of the embedded wasi:http host may reach (the other variants ignore it).
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    /// After each measured run, a capacity search on the same server (`--capacity`).
    #[command(flatten)]
    pub capacity: crate::capacity_flags::CapacityFlags,
}

/// `--profile` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfileArg {
    /// Keep-alive, concurrent server.
    Default,
    /// The demo's setup.
    Seed,
}

/// Arguments of `wasmbench runtimes`.
#[derive(Debug, Args)]
pub struct RuntimesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Builds the configuration from defaults, file and flags.
pub fn config_from_args(a: &CompareArgs) -> anyhow::Result<CompareConfig> {
    let mut cfg = match &a.config {
        Some(path) => CompareConfig::from_file(path)?,
        None => CompareConfig::default(),
    };
    if a.quick {
        cfg = cfg.quick();
    }
    if !a.variants.is_empty() && (a.wasm.is_some() || a.native_cmd.is_some()) {
        // With the user's builds, --variants names the runtimes of --wasm.
        if a.wasm.is_none() {
            return Err(fail(
                Exit::InvalidConfig,
                "--variants names wasmbench's own builds; with --native-cmd, give your Wasm build \
                 with --wasm and its runtimes with --wasm-runtime",
            ));
        }
        if !a.wasm_runtime.is_empty() {
            return Err(fail(
                Exit::InvalidConfig,
                "--variants and --wasm-runtime both name the runtimes of --wasm: give one of them",
            ));
        }
    } else if !a.variants.is_empty() {
        let all = a.variants.iter().any(|v| v == "all");
        cfg.skip_unavailable |= all;
        cfg.variants = if all {
            wasmbench_compare::known_variants()
                .into_iter()
                .map(|k| wasmbench_compare::config::variant(k.name))
                .collect()
        } else {
            a.variants
                .iter()
                .map(|v| wasmbench_compare::config::variant(v.trim()))
                .collect()
        };
    }
    apply_load_flags(&a.load, &mut cfg.load);
    if let Some(p) = &a.service.path {
        cfg.load.path = p.clone();
    }
    if let Some(r) = a.repeats {
        cfg.repeats = r;
    }
    if let Some(w) = a.warmup {
        cfg.warmup = w;
    }
    if let Some(d) = a.design {
        cfg.design = d;
    }
    if let Some(b) = a.block {
        cfg.block = b;
    }
    if let Some(c) = a.server_cpu_limit {
        cfg.server_cpu_limit = Some(c);
    }
    if let Some(target) = a.precision {
        let mut goal = wasmbench_compare::PrecisionGoal::new(target);
        if let Some(t) = a.max_time {
            goal.max_time = t;
        }
        if a.repeats.is_none() {
            cfg.repeats = match cfg.design {
                wasmbench_vocab::Design::Restart => cfg
                    .repeats
                    .max(wasmbench_compare::PrecisionGoal::MIN_REPEATS),
                // One duration of blocks per variant, then rounds until the target is met.
                wasmbench_vocab::Design::Interleaved | wasmbench_vocab::Design::Duet => 1,
            };
        }
        goal.max_repeats = goal.max_repeats.max(cfg.repeats);
        cfg.precision = Some(goal);
    }
    if let Some(c) = a.cold_starts {
        cfg.cold_starts = c;
    }

    if let Some(p) = &a.service.ready_path {
        cfg.ready_path = Some(p.clone());
    }
    if a.no_pin {
        cfg.pinning = Pinning::Off;
    } else if !a.server_cpus.is_empty() {
        cfg.pinning = Pinning::Cpus {
            server: a.server_cpus.clone(),
            load: a.load_cpus.clone(),
        };
    }
    if let Some(w) = &a.workload {
        wasmbench_compare::workloads::apply(&mut cfg, w)?;
    }
    let wasm_runtimes = if a.wasm_runtime.is_empty() && a.wasm.is_some() {
        &a.variants
    } else {
        &a.wasm_runtime
    };
    wasmbench_compare::byo::apply(
        &mut cfg,
        a.native_cmd.as_deref(),
        a.wasm.as_deref(),
        wasm_runtimes,
    )?;
    for (k, v) in &a.service.env {
        for variant in &mut cfg.variants {
            variant.env.retain(|(key, _)| key != k);
            variant.env.push((k.clone(), v.clone()));
        }
    }
    for d in &a.dirs {
        cfg.dirs.push(
            wasmbench_runtime::Preopen::parse(d)
                .map_err(|e| fail(Exit::InvalidConfig, e.to_string()))?,
        );
    }
    if let Some(p) = a.profile {
        cfg = cfg.with_profile(match p {
            ProfileArg::Default => Profile::Default,
            ProfileArg::Seed => Profile::Seed,
        });
    }
    cfg.validate()
        .map_err(|e| fail(Exit::InvalidConfig, format!("invalid configuration: {e}")))?;
    Ok(cfg)
}

/// Applies the given load flags to a comparison's load settings.
fn apply_load_flags(f: &LoadFlags, l: &mut LoadSettings) {
    if let Some(e) = f.executor_kind(false) {
        l.executor = e.as_str().to_owned();
    }
    if let Some(v) = f.vus {
        l.vus = v;
    }
    if let Some(d) = f.duration {
        l.duration = d;
    }
    if f.rate.is_some() {
        l.rate = f.rate;
    }
    if let Some(c) = f.connection {
        l.connection = c;
    }
    if let Some(m) = &f.method {
        l.method = m.to_ascii_uppercase();
    }
    if let Some(b) = &f.body {
        l.body = b.clone();
        if f.method.is_none() {
            l.method = "POST".into();
        }
    }
    l.headers.extend(f.headers.iter().cloned());
    if !f.checks.is_empty() {
        l.checks = f.checks.clone();
    }
    l.thresholds.extend(f.thresholds.iter().cloned());
}

/// Restricts this process (and so the load generator's threads) to `cpus`.
fn pin_self(cpus: &[usize]) -> anyhow::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it; sched_setaffinity
    // reads it for the calling thread, before any other thread exists.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(fail(
                Exit::InvalidConfig,
                format!(
                    "cannot pin the load generator to CPUs {cpus:?}: {}; pick CPUs that exist or use --no-pin",
                    std::io::Error::last_os_error()
                ),
            ));
        }
    }
    Ok(())
}

/// The noise threshold of the verdicts against a saved run without `--fail-on-regression`.
const DEFAULT_NOISE_THRESHOLD: f64 = 0.05;

/// `wasmbench compare`.
pub fn run(a: CompareArgs) -> anyhow::Result<i32> {
    let cfg = config_from_args(&a)?;
    let allow_outbound = a.sandbox.allow_list()?;
    let capacity = a
        .capacity
        .to_options(None)
        .map_err(|e| fail(Exit::InvalidConfig, e))?;
    // A `.wasm` no host can run (no `_start`/`wasi:cli/run`/incoming handler, truncated) is
    // reported before anything is measured, not as a failed variant after the native runs.
    if let Some(wasm) = &a.wasm {
        wasmbench_runtime::inspect::check_wasi_service(wasm)?;
    }
    if let Some(dir) = &a.out {
        crate::report_cmd::ensure_writable(dir)?;
    }
    // A saved run this one cannot be compared with is refused before anything runs.
    let saved = match &a.baseline {
        Some(dir) => {
            let saved = wasmbench_report::read_dir(dir).map_err(|e| {
                fail(
                    crate::report_exit(&e),
                    format!("--baseline {}: {e}", dir.display()),
                )
            })?;
            let names: Vec<String> = cfg.variants.iter().map(|v| v.name.clone()).collect();
            wasmbench_report::check_comparable(
                &saved,
                &wasmbench_compare::planned(&cfg)?,
                &names,
                &dir.display().to_string(),
            )
            .map_err(|e| fail(Exit::InvalidConfig, e.to_string()))?;
            Some((dir.display().to_string(), saved))
        }
        None => None,
    };
    let cpus = wasmbench_compare::environment::machine_cpus();
    let pinning = cfg.pinning.resolve(cpus);
    let mut workers = cpus;
    // Resolve once, before this process is pinned: afterwards it sees only its own CPUs.
    let mut cfg = cfg;
    cfg.pinning = match &pinning {
        Some((server, load)) => Pinning::Cpus {
            server: server.clone(),
            load: load.clone(),
        },
        None => Pinning::Off,
    };
    if let Some((_, load)) = &pinning {
        pin_self(load)?;
        workers = load.len().max(1);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let cancel = CancellationToken::new();
    let host_exe = std::env::current_exe().context("cannot find the wasmbench executable")?;
    let mut build = wasmbench_runtime::BuildOptions::default();
    if let Some(ws) = &a.workspace {
        build.workspace = ws.clone();
    }
    let progress = ProgressDisplay::new();
    let on_event = {
        let p = progress.clone();
        Arc::new(move |e: Event| p.event(e))
    };
    let opts = Options {
        cancel: cancel.clone(),
        host_exe,
        build,
        command_line: std::env::args().collect(),
        on_event,
        raw_dir: a.out.as_ref().map(|d| d.join("runs")),
        allow_outbound,
        count_syscalls: a.count_syscalls,
        callgrind: match (a.callgrind, a.no_callgrind) {
            (true, _) => wasmbench_compare::CallgrindPass::Always,
            (false, true) => wasmbench_compare::CallgrindPass::Off,
            (false, false) => wasmbench_compare::CallgrindPass::WhenCheap,
        },
        capacity,
    };
    let mut comparison = rt.block_on(async {
        crate::signals::install(cancel.clone());
        wasmbench_compare::run(&cfg, &opts).await
    })?;
    progress.finish();

    let threshold = a.fail_on_regression.unwrap_or(DEFAULT_NOISE_THRESHOLD);
    let mismatch = match &saved {
        Some((dir, saved)) => {
            match wasmbench_report::against_saved(&comparison, saved, dir, threshold) {
                Ok(s) => {
                    comparison.saved = Some(s);
                    None
                }
                Err(e) => Some(e),
            }
        }
        None => None,
    };
    // The report is written whatever the saved run says: nothing measured is lost.
    crate::report_cmd::emit(&comparison, a.format, a.out.as_deref())?;
    if let Some(e) = mismatch {
        return Err(fail(Exit::InvalidConfig, e.to_string()));
    }
    let exit = crate::report_cmd::exit_of(&comparison)?;
    if exit == Exit::Ok && a.fail_on_regression.is_some() {
        let worse: Vec<String> = comparison
            .saved
            .iter()
            .flat_map(|s| s.regressions())
            .map(|c| {
                format!(
                    "{} {} {:+.1}%",
                    c.variant,
                    c.figure.label(),
                    (c.ratio - 1.0) * 100.0
                )
            })
            .collect();
        if !worse.is_empty() {
            return Err(fail(
                Exit::Regressed,
                format!(
                    "worse than the saved run beyond {:.1}%: {}",
                    threshold * 100.0,
                    worse.join(", ")
                ),
            ));
        }
    }
    Ok(i32::from(exit.code()))
}

/// `wasmbench runtimes`.
pub fn runtimes(a: RuntimesArgs) -> anyhow::Result<i32> {
    let rows: Vec<_> = wasmbench_compare::known_variants()
        .into_iter()
        .map(|k| {
            let spec = wasmbench_compare::config::variant(k.name);
            let (info, accepts, available) = match wasmbench_compare::resolve(&spec) {
                Ok(r) => (
                    Some(r.runtime.info()),
                    r.build.accepts(),
                    r.runtime.available(),
                ),
                Err(e) => (None, "?", Err(e.to_string())),
            };
            (k, info, accepts, available)
        })
        .collect();
    if a.json {
        let json: Vec<_> = rows
            .iter()
            .map(|(k, info, accepts, avail)| {
                serde_json::json!({
                    "variant": k.name,
                    "description": k.description,
                    "runtime": info,
                    "accepts": accepts,
                    "available": avail.is_ok(),
                    "reason": avail.as_ref().err(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(0);
    }
    let mut table = vec![[
        "variant".to_owned(),
        "runtime".to_owned(),
        "mode".to_owned(),
        "target".to_owned(),
        "accepts".to_owned(),
        "available".to_owned(),
    ]];
    for (k, info, accepts, avail) in rows {
        let (rt, mode, target) = info.map_or(("?".into(), "?".into(), "?".into()), |i| {
            (
                format!("{} {}", i.name, i.version),
                i.mode.to_string(),
                i.target.to_string(),
            )
        });
        let status = match avail {
            Ok(()) => "yes".to_string(),
            Err(reason) => format!("no: {reason}"),
        };
        table.push([
            k.name.to_owned(),
            rt,
            mode,
            target,
            accepts.to_owned(),
            status,
        ]);
    }
    // Columns as wide as their widest cell; the last one (the reason) runs on.
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[5]);
        println!("{line}");
    }
    Ok(0)
}

/// Progress display: a bar per phase on a terminal, one line per event otherwise.
#[derive(Clone)]
struct ProgressDisplay {
    bar: Arc<Mutex<Option<ProgressBar>>>,
    tty: bool,
}

impl ProgressDisplay {
    fn new() -> ProgressDisplay {
        ProgressDisplay {
            bar: Arc::new(Mutex::new(None)),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn event(&self, e: Event) {
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Progress { elapsed, requests } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(elapsed.as_millis() as u64);
                    b.set_message(format!("{requests} requests"));
                }
            }
            Event::Measuring { rounds, block } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let line = format!(
                    "measuring {rounds} round{} of one {} block per variant",
                    if rounds == 1 { "" } else { "s" },
                    wasmbench_vocab::duration::format(block)
                );
                if self.tty {
                    let b = ProgressBar::new(u64::from(rounds));
                    b.set_style(
                        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    b.set_prefix("wasmbench: rounds");
                    *bar = Some(b);
                }
                eprintln!("wasmbench: {line}");
            }
            Event::RoundDone { round, rounds, rps } => {
                let figures = rps
                    .iter()
                    .map(|(v, r)| format!("{v} {r:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                match bar.as_ref() {
                    Some(b) => {
                        b.set_length(u64::from(rounds.max(round + 1)));
                        b.set_position(u64::from(round + 1));
                        b.set_message(format!("requests/s: {figures}"));
                    }
                    // Without a terminal, one line every few rounds keeps a log readable.
                    None if (round + 1) % 5 == 0 || round + 1 == rounds => {
                        eprintln!(
                            "wasmbench: round {}/{rounds}: requests/s {figures}",
                            round + 1
                        );
                    }
                    None => {}
                }
            }
            other => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let line = match &other {
                    Event::Building { variant } => format!("{variant}: preparing the artifact"),
                    Event::Skipped { variant, reason } => format!("{variant}: skipped: {reason}"),
                    Event::Failed { variant, reason } => format!("{variant}: FAILED: {reason}"),
                    Event::Phase {
                        variant,
                        repeat,
                        phase,
                        ..
                    } => format!("{variant} run {}: {phase}", repeat + 1),
                    Event::RunDone {
                        variant,
                        repeat,
                        rps,
                    } => format!("{variant} run {}: {rps:.0} requests/s", repeat + 1),
                    Event::Progress { .. } | Event::Measuring { .. } | Event::RoundDone { .. } => {
                        String::new()
                    }
                };
                if let Event::Phase {
                    duration: Some(d), ..
                } = &other
                    && self.tty
                {
                    let b = ProgressBar::new(d.as_millis() as u64);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {elapsed:>4}/{duration:4} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b.set_prefix(line);
                    *bar = Some(b);
                } else {
                    eprintln!("wasmbench: {line}");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}
