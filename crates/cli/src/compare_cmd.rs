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
    /// Measured runs per variant.
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Load before each measured run, discarded, e.g. `5s` (`0s` to skip).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Cold starts measured per repeat.
    #[arg(long)]
    pub cold_starts: Option<u32>,
    /// Path (and query) of the load request.
    #[arg(long)]
    pub path: Option<String>,
    /// Do not pin the server and the load generator to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Also count the server's syscalls by kind during the measured runs (needs root and
    /// tracefs; the counters lower a busy server's throughput, and the report says so).
    #[arg(long)]
    pub count_syscalls: bool,
    /// Also count each variant's instructions per request under valgrind's callgrind, in a pass
    /// of its own after its measured runs (deterministic; for machines without hardware
    /// counters). With --out, the profiles are written to runs/<variant>.callgrind.out.
    #[arg(long)]
    pub callgrind: bool,
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
    /// Runtime for `--wasm` (default: the embedded Wasmtime host).
    #[arg(long)]
    pub wasm_runtime: Option<String>,
    /// Path answering `200` when the service is ready (default `/healthz` for our workload; for
    /// your own builds, without it, ready means the port accepts a TCP connection).
    #[arg(long)]
    pub ready_path: Option<String>,
    /// Workload of our service: `echo` (default), `hash`, `json`, `alloc`, `sleep`, or `mix`
    /// (every endpoint in one run, reported per request).
    #[arg(long)]
    pub workload: Option<String>,
    /// Where the workload sources are (default: this checkout).
    #[arg(long, hide = true)]
    pub workspace: Option<PathBuf>,
    /// What guests of the embedded wasi:http host may reach (the other variants ignore it).
    #[command(flatten)]
    pub sandbox: SandboxFlags,
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
    if !a.variants.is_empty() {
        cfg.variants = if a.variants.iter().any(|v| v == "all") {
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
    if let Some(p) = &a.path {
        cfg.load.path = p.clone();
    }
    if let Some(r) = a.repeats {
        cfg.repeats = r;
    }
    if let Some(w) = a.warmup {
        cfg.warmup = w;
    }
    if let Some(c) = a.cold_starts {
        cfg.cold_starts = c;
    }
    if let Some(p) = &a.ready_path {
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
    wasmbench_compare::byo::apply(
        &mut cfg,
        a.native_cmd.as_deref(),
        a.wasm.as_deref(),
        a.wasm_runtime.as_deref(),
    )?;
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
    if let Some(e) = f.executor {
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

/// `wasmbench compare`.
pub fn run(a: CompareArgs) -> anyhow::Result<i32> {
    let cfg = config_from_args(&a)?;
    let allow_outbound = a.sandbox.allow_list()?;
    // A `.wasm` no host can run (no `_start`/`wasi:cli/run`/incoming handler, truncated) is
    // reported before anything is measured, not as a failed variant after the native runs.
    if let Some(wasm) = &a.wasm {
        wasmbench_runtime::inspect::check_wasi_service(wasm)?;
    }
    if let Some(dir) = &a.out {
        crate::report_cmd::ensure_writable(dir)?;
    }
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
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        on_event,
        raw_dir: a.out.as_ref().map(|d| d.join("runs")),
        allow_outbound,
        count_syscalls: a.count_syscalls,
        callgrind: a.callgrind,
    };
    let comparison = rt.block_on(async {
        crate::signals::install(cancel.clone());
        wasmbench_compare::run(&cfg, &opts).await
    })?;
    progress.finish();

    crate::report_cmd::emit(&comparison, a.format, a.out.as_deref())?;
    Ok(i32::from(crate::report_cmd::exit_of(&comparison)?.code()))
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
                    Event::Progress { .. } => String::new(),
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
