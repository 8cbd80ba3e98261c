//! `wasmbench load`: run a load plan against one URL with k6's metric names and semantics.
//!
//! Exit codes follow k6 where k6 has one: 0 ok, 99 a threshold failed, 104 invalid
//! configuration, 105 interrupted by SIGINT or SIGTERM (partial results were written); plus 12
//! when every request was refused (nothing listening), 17 when not one request succeeded and 13
//! when an output file cannot be written.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capacity_flags::CapacityFlags;
use crate::exit::Exit;
use crate::load_flags::LoadFlags;
use anyhow::Context as _;
use clap::Args;
use wasmbench_load::{
    Check, Executor, NdjsonWriter, Plan, Progress, RunOptions, Stage, Summary, Threshold,
    k6_summary_export, render_text,
};
use wasmbench_vocab::result_file::ResultFile;
use wasmbench_vocab::{ExecutorKind, demo};

/// Arguments of `wasmbench load`.
#[derive(Debug, Clone, Args)]
#[command(about = "Generate HTTP load and report k6-compatible metrics")]
pub struct LoadArgs {
    /// Target URL (http:// or https://); overrides the plan file's URL.
    pub url: Option<String>,
    /// Plan file (TOML); flags given on the command line override its values.
    #[arg(long, value_name = "plan.toml")]
    pub config: Option<PathBuf>,
    /// Executor, VUs, duration, connection mode, request, checks, thresholds. Without
    /// --executor: constant-vus, or constant-arrival-rate with --rate, or ramping-vus with
    /// --stage.
    #[command(flatten)]
    pub load: LoadFlags,
    /// The capacity search (`--capacity`) and its SLO.
    #[command(flatten)]
    pub capacity: CapacityFlags,
    /// Read the request body from a file.
    #[arg(long, conflicts_with = "body")]
    pub body_file: Option<PathBuf>,
    /// Unit of --rate, --start-rate and arrival-rate stage targets.
    #[arg(long, default_value = "1s")]
    pub time_unit: String,
    /// Rate at the start of ramping-arrival-rate.
    #[arg(long, default_value_t = 0)]
    pub start_rate: u64,
    /// VUs at the start of ramping-vus.
    #[arg(long, default_value_t = 0)]
    pub start_vus: u64,
    /// A ramping stage DURATION:TARGET, e.g. 10s:50 (repeatable).
    #[arg(long = "stage", value_name = "DURATION:TARGET")]
    pub stages: Vec<String>,
    /// Largest VU count for the arrival-rate executors (default: --vus; 1000 with --capacity).
    #[arg(long)]
    pub max_vus: Option<u64>,
    /// Per-request timeout (default 60s).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Time in-flight iterations get after the duration (default 30s).
    #[arg(long)]
    pub graceful_stop: Option<String>,
    /// Pause after every iteration.
    #[arg(long)]
    pub think_time: Option<String>,
    /// Extra trusted CA certificates (PEM) for https.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Load-generating threads (default: CPU count).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Before the clock starts, wait up to this long (e.g. 30s) for the target to accept a
    /// TCP connection; exit 12 if it does not.
    #[arg(long, value_parser = wasmbench_vocab::duration::parse)]
    pub wait_ready: Option<std::time::Duration>,
    /// Write the full result (histograms included) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write k6's --summary-export JSON shape.
    #[arg(long, value_name = "FILE")]
    pub summary_export: Option<PathBuf>,
    /// Write one JSON line per second of the run.
    #[arg(long, value_name = "FILE")]
    pub ndjson: Option<PathBuf>,
    /// Trend statistics in the summary, e.g. avg,min,med,max,p(90),p(95),p(99).
    #[arg(long, value_delimiter = ',')]
    pub summary_trend_stats: Vec<String>,
    /// No progress bar and no end-of-run summary on stdout.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn dur(s: &str, flag: &str) -> Result<Duration, String> {
    wasmbench_vocab::duration::parse(s).map_err(|e| format!("--{flag}: {e}"))
}

/// Turns flags (and the optional plan file) into a validated plan; errors are one line.
pub fn build_plan(a: &LoadArgs) -> Result<Plan, String> {
    let mut p = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read plan file {}: {e}", path.display()))?;
            Plan::from_toml_str(&text).map_err(|e| format!("plan file {}: {e}", path.display()))?
        }
        None => Plan::default(),
    };
    match (&a.url, &a.config) {
        (Some(u), _) => p.request.url = u.clone(),
        (None, None) => {
            return Err(
                "give a URL (wasmbench load http://HOST:PORT/) or --config plan.toml".into(),
            );
        }
        (None, Some(_)) => {}
    }
    let time_unit = dur(&a.time_unit, "time-unit")?;
    let stages = a
        .stages
        .iter()
        .map(|s| {
            let (d, t) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("--stage {s:?}: write DURATION:TARGET, e.g. 10s:50"))?;
            Ok(Stage {
                duration: dur(d, "stage")?,
                target: t
                    .trim()
                    .parse()
                    .map_err(|_| format!("--stage {s:?}: target must be a whole number"))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let f = &a.load;
    let executor_flags = f.executor.is_some()
        || f.vus.is_some()
        || f.duration.is_some()
        || f.rate.is_some()
        || !stages.is_empty();
    if executor_flags || a.config.is_none() {
        let kind = f
            .executor_kind(!stages.is_empty())
            .unwrap_or(ExecutorKind::ConstantVus);
        let duration = f.duration.unwrap_or(demo::DURATION);
        let need_stages = |name: &str| {
            if stages.is_empty() {
                Err(format!("{name} needs at least one --stage DURATION:TARGET"))
            } else {
                Ok(stages.clone())
            }
        };
        let vus = u64::from(f.vus.unwrap_or(demo::VUS));
        let pre = vus;
        let max_vus = a.max_vus.unwrap_or(pre).max(pre);
        p.executor = match kind {
            ExecutorKind::ConstantVus => Executor::ConstantVus { vus, duration },
            ExecutorKind::RampingVus => Executor::RampingVus {
                start_vus: a.start_vus,
                stages: need_stages("ramping-vus")?,
            },
            ExecutorKind::ConstantArrivalRate => Executor::ConstantArrivalRate {
                rate: f
                    .rate
                    .map(u64::from)
                    .ok_or("constant-arrival-rate needs --rate N (iterations per --time-unit)")?,
                time_unit,
                duration,
                pre_allocated_vus: pre,
                max_vus,
            },
            ExecutorKind::RampingArrivalRate => Executor::RampingArrivalRate {
                start_rate: a.start_rate,
                time_unit,
                stages: need_stages("ramping-arrival-rate")?,
                pre_allocated_vus: pre,
                max_vus,
            },
        };
    }
    if let Some(c) = f.connection {
        p.connection_mode = c;
    }
    if let Some(m) = &f.method {
        p.request.method = m.to_ascii_uppercase();
    }
    for h in &f.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: write `Name: value`"))?;
        p.request.headers.insert(k.trim().into(), v.trim().into());
    }
    if let Some(b) = &f.body {
        p.request.body = b.clone().into_bytes();
    }
    if let Some(f) = &a.body_file {
        p.request.body = std::fs::read(f)
            .map_err(|e| format!("--body-file {}: cannot read: {e}", f.display()))?;
    }
    if (f.body.is_some() || a.body_file.is_some()) && f.method.is_none() && a.config.is_none() {
        p.request.method = "POST".into();
    }
    for c in &f.checks {
        p.checks
            .push(Check::parse(c).map_err(|e| format!("--check: {e}"))?);
    }
    for t in &f.thresholds {
        p.thresholds
            .push(Threshold::parse_cli(t).map_err(|e| format!("--threshold: {e}"))?);
    }
    if let Some(t) = &a.timeout {
        p.timeout = dur(t, "timeout")?;
    }
    if let Some(t) = &a.graceful_stop {
        p.graceful_stop = dur(t, "graceful-stop")?;
    }
    if let Some(t) = &a.think_time {
        p.think_time = dur(t, "think-time")?;
    }
    if let Some(f) = &a.ca_file {
        p.tls.ca_file = Some(f.clone());
    }
    if let Some(w) = a.workers {
        p.workers = w;
    }
    if !a.summary_trend_stats.is_empty() {
        p.summary_trend_stats = a.summary_trend_stats.clone();
    }
    p.validate().map_err(|e| e.to_string())?;
    Ok(p)
}

/// A result file that replaces `path` only when the run wrote it completely.
type Output = BufWriter<ResultFile>;

fn create(path: &Path, what: &str) -> Result<Output, String> {
    ResultFile::create(path)
        .map(BufWriter::new)
        .map_err(|e| format!("cannot write {what} file {}: {e}", path.display()))
}

fn commit(w: Output) -> std::io::Result<()> {
    w.into_inner().map_err(|e| e.into_error())?.commit()
}

fn write_json(mut w: Output, v: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut w, v)?;
    w.write_all(b"\n")?;
    commit(w)
}

/// The flags a capacity search decides itself or cannot write, with what to use instead.
fn capacity_conflicts(a: &LoadArgs) -> Result<(), String> {
    let f = &a.load;
    let given = [
        (
            f.executor.is_some(),
            "--executor",
            "it runs constant-arrival-rate steps",
        ),
        (
            f.rate.is_some(),
            "--rate",
            "it chooses the rates (--capacity-start, --capacity-max)",
        ),
        (
            f.vus.is_some(),
            "--vus",
            "each step allocates VUs as needed (bound them with --max-vus)",
        ),
        (
            f.duration.is_some(),
            "--duration",
            "each step lasts --step-duration",
        ),
        (!a.stages.is_empty(), "--stage", "it chooses the rates"),
        (
            !f.thresholds.is_empty(),
            "--threshold",
            "give the objective with --slo",
        ),
        (
            a.summary_export.is_some(),
            "--summary-export",
            "its result is written by --json",
        ),
        (
            a.ndjson.is_some(),
            "--ndjson",
            "its steps are written by --json",
        ),
    ];
    match given.iter().find(|g| g.0) {
        Some((_, flag, why)) => Err(format!("{flag} does not apply with --capacity: {why}")),
        None => Ok(()),
    }
}

/// Runs `wasmbench load` and returns the process exit code.
pub fn run(args: LoadArgs) -> anyhow::Result<i32> {
    let capacity = if args.capacity.capacity {
        capacity_conflicts(&args).and_then(|()| args.capacity.to_options(args.max_vus))
    } else {
        Ok(None)
    };
    let plan = match capacity.and_then(|c| build_plan(&args).map(|p| (p, c))) {
        Ok((p, Some(c))) => return run_capacity(&args, &p, &c),
        Ok((p, None)) => p,
        Err(e) => {
            eprintln!("wasmbench load: {e}");
            return Ok(i32::from(Exit::InvalidConfig.code()));
        }
    };
    // Open every output first: a typo in a path should not cost a whole run.
    let open = || -> Result<_, String> {
        Ok((
            args.json
                .as_deref()
                .map(|p| create(p, "--json"))
                .transpose()?,
            args.summary_export
                .as_deref()
                .map(|p| create(p, "--summary-export"))
                .transpose()?,
            args.ndjson
                .as_deref()
                .map(|p| create(p, "--ndjson"))
                .transpose()?,
        ))
    };
    let (json_out, export_out, ndjson_out) = match open() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wasmbench load: {e}");
            return Ok(i32::from(Exit::Output.code()));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let show_bar = !args.quiet && std::io::stderr().is_terminal();
    let (summary, interrupted, ndjson_result) = rt.block_on(async {
        let cancel = wasmbench_load::CancellationToken::new();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
        let consumer = tokio::spawn(consume_progress(rx, ndjson_out, show_bar));
        let signal = crate::signals::install(cancel.clone());
        let opts = RunOptions {
            cancel: cancel.clone(),
            progress: Some(tx),
            wait_ready: args.wait_ready,
        };
        let summary = wasmbench_load::run(&plan, opts).await;
        signal.abort();
        let ndjson_result = consumer
            .await
            .unwrap_or_else(|e| Err(format!("progress writer stopped: {e}")));
        // Only SIGINT or SIGTERM cancels the token.
        (summary, cancel.is_cancelled(), ndjson_result)
    });
    // The series is kept only with the summary it belongs to: a run that could not start
    // leaves an earlier file at that path as it was.
    let (ndjson_out, ndjson_result) = match ndjson_result {
        Ok(w) => (w, Ok(())),
        Err(e) => (None, Err(e)),
    };
    let summary: Summary = match summary {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wasmbench load: {e}");
            let exit = match e {
                wasmbench_load::LoadError::Unreachable { .. } => Exit::Unreachable,
                _ => Exit::InvalidConfig,
            };
            return Ok(i32::from(exit.code()));
        }
    };
    let mut write_failed = false;
    if let Err(e) = ndjson_result.and_then(|()| {
        ndjson_out
            .map_or(Ok(()), |w| w.finish().and_then(commit))
            .map_err(|e| e.to_string())
    }) {
        eprintln!("wasmbench load: --ndjson: {e}");
        write_failed = true;
    }
    if let Some(w) = json_out {
        let v = serde_json::to_value(&summary).map_err(std::io::Error::from);
        if let Err(e) = v.and_then(|v| write_json(w, &v)) {
            eprintln!("wasmbench load: --json: {e}");
            write_failed = true;
        }
    }
    if let Some(w) = export_out
        && let Err(e) = write_json(w, &k6_summary_export(&summary))
    {
        eprintln!("wasmbench load: --summary-export: {e}");
        write_failed = true;
    }
    if !args.quiet {
        let stats = if args.summary_trend_stats.is_empty() {
            Vec::new()
        } else {
            args.summary_trend_stats.clone()
        };
        println!("{}", render_text(&summary, &stats));
    }
    let c = &summary.counters;
    if let Some(w) = load_not_made(&summary) {
        eprintln!("wasmbench load: {w}");
    }
    let refused = c.errors.get("connect_refused").copied().unwrap_or(0);
    let code = if interrupted {
        eprintln!("wasmbench load: interrupted; partial results written");
        Exit::Interrupted
    } else if write_failed {
        Exit::Output
    } else if c.http_reqs > 0 && refused == c.http_reqs {
        eprintln!(
            "wasmbench load: every request to {} was refused: is the server running?",
            summary.plan.request.url
        );
        Exit::Unreachable
    } else if let Some(why) = nothing_succeeded(&summary) {
        eprintln!("wasmbench load: {why}");
        Exit::NothingSucceeded
    } else if summary.threshold_failed() {
        eprintln!("wasmbench load: some thresholds have failed");
        Exit::ThresholdsFailed
    } else {
        Exit::Ok
    };
    Ok(i32::from(code.code()))
}

/// The part of the planned load that did not happen (VUs that never started, connections
/// that could not be opened), so a run that fell short is not read as the server's answer.
fn load_not_made(s: &Summary) -> Option<String> {
    let c = &s.counters;
    let fd_limit = c.errors.get("fd_limit").copied().unwrap_or(0);
    // Refused connections are the server's answer, reported by their own error and exit code.
    let refused = c.errors.get("connect_refused").copied().unwrap_or(0);
    let unopened = c.connections_failed.saturating_sub(refused);
    let mut parts = Vec::new();
    if c.vus_not_started > 0 {
        parts.push(format!(
            "{} of {} VUs never started an iteration",
            c.vus_not_started, s.vus_max.max
        ));
    }
    if unopened > 0 {
        parts.push(format!(
            "{unopened} connections could not be opened{}",
            if fd_limit > 0 {
                format!(" ({fd_limit} for lack of file descriptors: raise `ulimit -n`)")
            } else {
                String::new()
            }
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "the planned load was not generated: {}; the figures describe a smaller load",
            parts.join(", ")
        )
    })
}

/// What went wrong when not one request of a finished run succeeded.
fn nothing_succeeded(s: &Summary) -> Option<String> {
    let c = &s.counters;
    let url = &s.plan.request.url;
    if c.http_reqs == 0 {
        let cut = c.interrupted_iterations;
        return Some(if cut > 0 {
            format!(
                "no response from {url} during the run: {cut} requests were still waiting when it ended; is the server answering?"
            )
        } else {
            format!("no request to {url} was made during the run; lengthen --duration")
        });
    }
    (c.http_req_failed == c.http_reqs).then(|| {
        let kinds: Vec<String> = c
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let kinds = if kinds.is_empty() {
            "every response had an unexpected status".to_string()
        } else {
            kinds.join(", ")
        };
        format!(
            "not one of {} requests to {url} succeeded ({kinds}); check that the server answers it",
            c.http_reqs
        )
    })
}

/// `wasmbench load --capacity`: the search, its table on stdout and its JSON with `--json`.
fn run_capacity(
    args: &LoadArgs,
    plan: &Plan,
    opts: &wasmbench_load::capacity::CapacityOptions,
) -> anyhow::Result<i32> {
    use wasmbench_load::capacity::{EngineRunner, render_text, search};
    let json_out = match args
        .json
        .as_deref()
        .map(|p| create(p, "--json"))
        .transpose()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wasmbench load: {e}");
            return Ok(i32::from(Exit::Output.code()));
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let cancel = wasmbench_load::CancellationToken::new();
    let result = rt.block_on(async {
        let signal = crate::signals::install(cancel.clone());
        let mut runner = EngineRunner::new(RunOptions {
            cancel: cancel.clone(),
            progress: None,
            wait_ready: args.wait_ready,
        });
        let r = search(plan, opts, &mut runner, || cancel.is_cancelled()).await;
        signal.abort();
        r
    });
    let c = match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wasmbench load: {e}");
            let exit = match e {
                wasmbench_load::LoadError::Unreachable { .. }
                | wasmbench_load::LoadError::NoResponse { .. } => Exit::Unreachable,
                _ => Exit::InvalidConfig,
            };
            return Ok(i32::from(exit.code()));
        }
    };
    let mut write_failed = false;
    if let Some(w) = json_out {
        let v = serde_json::to_value(&c).map_err(std::io::Error::from);
        if let Err(e) = v.and_then(|v| write_json(w, &v)) {
            eprintln!("wasmbench load: --json: {e}");
            write_failed = true;
        }
    }
    if !args.quiet {
        print!("{}", render_text(&c));
    }
    let code = if c.partial {
        eprintln!("wasmbench load: interrupted; the steps measured so far were written");
        Exit::Interrupted
    } else if write_failed {
        Exit::Output
    } else {
        Exit::Ok
    };
    Ok(i32::from(code.code()))
}

/// Shows the progress bar and writes the NDJSON series; returns the series' writer, not yet
/// committed.
async fn consume_progress(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Progress>,
    ndjson: Option<Output>,
    show_bar: bool,
) -> Result<Option<NdjsonWriter<Output>>, String> {
    let mut writer = ndjson.map(NdjsonWriter::new);
    let mut error = None;
    let bar = show_bar.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len}s  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    });
    while let Some(p) = rx.recv().await {
        if let (Some(w), None) = (writer.as_mut(), &error)
            && let Err(e) = w.write_point(&p.point)
        {
            error = Some(e.to_string());
        }
        if let Some(b) = &bar {
            b.set_length(p.planned.as_secs());
            b.set_position(p.elapsed.as_secs().min(p.planned.as_secs()));
            b.set_message(format!(
                "{} reqs  {} req/s  {} failed  {} VUs",
                p.requests, p.point.http_reqs, p.failed, p.vus
            ));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    error.map_or(Ok(writer), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let cli = Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        build_plan(&cli.load)
    }

    #[test]
    fn flags_build_plans() {
        let p = plan(&["http://127.0.0.1:1/", "--vus", "100", "--duration", "30s"]).unwrap();
        assert_eq!(
            p.executor,
            Executor::ConstantVus {
                vus: 100,
                duration: Duration::from_secs(30)
            }
        );
        let p = plan(&[
            "http://127.0.0.1:1/",
            "--rate",
            "200",
            "--vus",
            "20",
            "-d",
            "5s",
        ])
        .unwrap();
        assert_eq!(p.executor.name(), "constant-arrival-rate");
        let p = plan(&[
            "http://127.0.0.1:1/",
            "--stage",
            "10s:50",
            "--stage",
            "5s:0",
            "--connection",
            "close",
            "--body",
            "hi",
            "-H",
            "X-A: b",
            "--check",
            "status == 200",
            "--threshold",
            "http_req_duration=p(95)<200",
        ])
        .unwrap();
        assert_eq!(p.executor.name(), "ramping-vus");
        assert_eq!(
            p.connection_mode,
            wasmbench_vocab::ConnectionMode::NewConnectionPerRequest
        );
        assert_eq!(p.request.method, "POST");
        assert_eq!(p.request.headers["X-A"], "b");
        let e = plan(&[
            "http://127.0.0.1:1/",
            "--threshold",
            "http_req_duration=p95<1",
        ])
        .unwrap_err();
        assert!(e.contains("p95<1"), "{e}");
        let e = plan(&["http://127.0.0.1:1/", "--stage", "10s"]).unwrap_err();
        assert!(e.contains("DURATION:TARGET"), "{e}");
        assert!(plan(&[]).unwrap_err().contains("give a URL"));
    }

    fn exit(args: &[&str]) -> i32 {
        let cli = Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .expect("flags parse");
        run(cli.load).expect("run")
    }

    #[test]
    fn exit_codes() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(
            exit(&[&url, "--threshold", "http_req_duration=p95<1", "-q"]),
            104
        );
        assert_eq!(
            exit(&[&url, "--json", "/nonexistent-dir/x.json", "-q"]),
            i32::from(Exit::Output.code())
        );
        assert_eq!(
            exit(&[&url, "-d", "300ms", "--timeout", "200ms", "-q"]),
            i32::from(Exit::Unreachable.code())
        );
    }
}
