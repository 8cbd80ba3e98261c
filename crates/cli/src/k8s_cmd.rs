//! `wasmbench k8s run` and `wasmbench k8s manifests`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;
use wasmbench_k8s::driver::{
    self, ClusterOptions, Driver, DriverOptions, Progress, VariantOutcome,
};
use wasmbench_k8s::manifests::{self, RunSpec};
use wasmbench_k8s::{Error, Variant};
use wasmbench_load::Summary;

use crate::exit::{Exit, fail};
use crate::load_flags::LoadFlags;

/// Maps a k8s error to the CLI's exit table (14 = cluster unreachable / kubeconfig missing).
pub(crate) fn failure(e: Error) -> anyhow::Error {
    let exit = match &e {
        e if e.is_cluster_unreachable() => Exit::Cluster,
        Error::InvalidPlan(_) | Error::UnknownVariant(_) => Exit::InvalidConfig,
        Error::NotReady { .. } => Exit::ServerStart,
        Error::JobFailed { .. } | Error::NoSummary { .. } => Exit::VariantFailed,
        Error::Cancelled(_) => Exit::Interrupted,
        Error::Io { .. } => Exit::Output,
        Error::Build { .. } => Exit::Artifact,
        _ => Exit::Internal,
    };
    fail(exit, e.to_string())
}

/// `wasmbench k8s …`
#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    command: K8sCommand,
}

#[derive(Debug, Subcommand)]
enum K8sCommand {
    /// Deploy each variant, load it from in-cluster Jobs, collect the results, clean up.
    Run(RunArgs),
    /// Write the objects `k8s run` would create as YAML, for kubectl users.
    Manifests(ManifestsArgs),
}

/// What decides the objects (shared by `run` and `manifests`).
#[derive(Debug, Args)]
struct PlanArgs {
    /// Variants: native, crun-wasmedge, wasmtime, wasmedge, wasmer, spin, or `all`.
    #[arg(long, default_value = "native,crun-wasmedge,wasmtime")]
    variants: String,
    /// The load of each variant; --vus is the total, split evenly over --parallelism load pods.
    #[command(flatten)]
    load: LoadFlags,
    /// Number of load pods per variant (distributed load; their summaries are merged).
    #[arg(long, default_value_t = 1)]
    parallelism: u32,
    /// Image tag of the wasmbench images (a version; see `wasmbench image build`).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    image_tag: String,
    /// Image name prefix.
    #[arg(long, default_value = "localhost/wasmbench")]
    image_prefix: String,
    /// Spin application image for the `spin` variant (wasmbench does not build one).
    #[arg(long)]
    spin_image: Option<String>,
    /// CPU limit of each echo pod (request is half of the default limit unless set).
    #[arg(long, default_value = "1")]
    server_cpu: String,
    /// Memory limit of each echo pod.
    #[arg(long, default_value = "256Mi")]
    server_memory: String,
    /// CPU limit of each load pod.
    #[arg(long, default_value = "2")]
    load_cpu: String,
    /// Memory limit of each load pod.
    #[arg(long, default_value = "512Mi")]
    load_memory: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
    /// Use this existing namespace instead of creating `wasmbench-<run>`; only the run's
    /// labelled objects are deleted afterwards.
    #[arg(long)]
    namespace: Option<String>,
    /// Keep everything after the run (for debugging with kubectl).
    #[arg(long)]
    keep: bool,
    /// How long the echo Deployments may take to become ready.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Write k8s-run.json (spec, placement, every load pod's summary) into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    plan: PlanArgs,
}

#[derive(Debug, Args)]
struct ManifestsArgs {
    /// Directory to write the YAML files into.
    #[arg(long)]
    out: PathBuf,
    /// Namespace for the objects.
    #[arg(long, default_value = "wasmbench")]
    namespace: String,
    /// Add the pod anti-affinity that keeps load pods off the server nodes (multi-node clusters).
    #[arg(long)]
    separate_load: bool,
    #[command(flatten)]
    plan: PlanArgs,
}

fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "r{:06x}",
        (secs ^ u64::from(std::process::id())) & 0xff_ffff
    )
}

fn spec_from(plan: &PlanArgs, run: &str, namespace: Option<&str>) -> anyhow::Result<RunSpec> {
    spec_from_inner(plan, run, namespace).map_err(failure)
}

fn spec_from_inner(plan: &PlanArgs, run: &str, namespace: Option<&str>) -> Result<RunSpec, Error> {
    let mut spec = RunSpec::new(run, Variant::parse_list(&plan.variants)?);
    if let Some(ns) = namespace {
        spec.namespace = ns.to_owned();
    }
    spec.images.tag = plan.image_tag.clone();
    spec.images.prefix = plan.image_prefix.clone();
    spec.images.spin = plan.spin_image.clone();
    if let Some(v) = plan.load.vus {
        spec.load.vus = v;
    }
    if let Some(d) = plan.load.duration {
        spec.load.duration = d;
    }
    spec.load.extra_args = plan.load.to_load_args();
    spec.load.parallelism = plan.parallelism;
    spec.server_resources.cpu_limit = plan.server_cpu.clone();
    spec.server_resources.memory_limit = plan.server_memory.clone();
    spec.load_resources.cpu_limit = plan.load_cpu.clone();
    spec.load_resources.memory_limit = plan.load_memory.clone();
    spec.validate()?;
    Ok(spec)
}

fn print_progress(p: Progress) {
    match p {
        Progress::Applied {
            namespace,
            separate_load,
        } => eprintln!(
            "applied in namespace {namespace}; load pods {}",
            if separate_load {
                "kept off the server nodes"
            } else {
                "share the only schedulable node with the servers"
            }
        ),
        Progress::Ready(v) => eprintln!("{v}: ready"),
        Progress::LoadStarted(v) => eprintln!("{v}: load running…"),
        Progress::LoadDone(v) => eprintln!("{v}: load done"),
        Progress::CleaningUp => eprintln!("cleaning up…"),
        Progress::CleanupFailed(e) => eprintln!("warning: cleanup failed: {e}"),
        other => eprintln!("{other:?}"),
    }
}

/// Runs `wasmbench k8s …`; returns the exit code (14 = cluster unreachable).
pub fn run(args: K8sArgs) -> anyhow::Result<i32> {
    match args.command {
        K8sCommand::Manifests(m) => {
            let mut spec = spec_from(&m.plan, "manual", Some(&m.namespace))?;
            spec.separate_load = m.separate_load;
            for p in manifests::write_dir(&spec, &m.out).map_err(failure)? {
                println!("{}", p.display());
            }
            Ok(0)
        }
        K8sCommand::Run(r) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("start the async runtime")?;
            runtime.block_on(run_cluster(r))
        }
    }
}

async fn run_cluster(r: RunArgs) -> anyhow::Result<i32> {
    let id = run_id();
    let spec = spec_from(&r.plan, &id, r.namespace.as_deref())?;
    let cluster = driver::connect(&ClusterOptions {
        kubeconfig: r.kubeconfig.clone(),
        context: r.context.clone(),
        connect_timeout: None,
    })
    .await
    .map_err(failure)?;
    eprintln!(
        "cluster {} ({}), run {id}",
        cluster.url, cluster.server_version
    );
    let opts = DriverOptions {
        ready_timeout: r.timeout,
        keep: r.keep,
        create_namespace: r.namespace.is_none(),
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    crate::signals::install(cancel.clone());
    let (cluster_url, server_version) = (cluster.url.clone(), cluster.server_version.clone());
    let seen = std::sync::Mutex::new(Seen::default());
    let on_progress = |p: Progress| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).record(&p);
        print_progress(p);
    };
    let outcome = match Driver::new(cluster, opts)
        .run(&spec, &cancel, &on_progress)
        .await
    {
        Ok(o) => o,
        Err(Error::Cancelled(finished)) => {
            // Interrupted: keep what finished, marked partial, then exit 105.
            let finished = finished.map(|o| *o);
            if let Some(dir) = &r.out {
                let seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
                match write_partial(
                    dir,
                    &spec,
                    &cluster_url,
                    &server_version,
                    &seen,
                    finished.as_ref(),
                ) {
                    Ok(paths) => {
                        for p in paths {
                            println!("wrote {} (partial: interrupted)", p.display());
                        }
                    }
                    Err(w) => eprintln!("warning: cannot write the partial record: {w}"),
                }
            }
            return Err(failure(Error::Cancelled(None)));
        }
        Err(e) => return Err(failure(e)),
    };

    let mut merged = Vec::new();
    for v in &outcome.variants {
        let summary = merge(v)?;
        println!(
            "{:<14} runtimeClass={:<17} {:>10.1} req/s  p95 {:>8.2} ms  failed {:.2}%  servers on {:?}, {} load pod(s) on {:?}",
            v.variant.name(),
            v.runtime_class.as_deref().unwrap_or("-"),
            summary.http_reqs_per_s(),
            summary
                .percentile_ms("http_req_duration", 95.0)
                .unwrap_or(f64::NAN),
            summary.http_req_failed_rate() * 100.0,
            v.server_nodes,
            v.load_pods.len(),
            v.load_pods
                .iter()
                .filter_map(|p| p.node.as_deref())
                .collect::<Vec<_>>()
        );
        merged.push((v.variant.name(), summary));
    }
    if let Some(dir) = &r.out {
        let path = driver::write_outcome(&outcome, dir).map_err(failure)?;
        println!("wrote {}", path.display());
        for (name, summary) in &merged {
            let p = dir.join(format!("summary-{name}.json"));
            let text = serde_json::to_string_pretty(summary)?;
            std::fs::write(&p, text)
                .map_err(|e| fail(Exit::Output, format!("{}: {e}", p.display())))?;
        }
    }
    Ok(0)
}

/// What the driver reported before a run ended, for the record of an interrupted run.
#[derive(Debug, Default)]
struct Seen {
    namespace: Option<String>,
    ready: Vec<String>,
    load_done: Vec<String>,
    cleaning_up: bool,
    cleanup_failed: Option<String>,
}

impl Seen {
    fn record(&mut self, p: &Progress) {
        match p {
            Progress::Applied { namespace, .. } => self.namespace = Some(namespace.clone()),
            Progress::Ready(v) => self.ready.push(v.name().to_owned()),
            Progress::LoadDone(v) => self.load_done.push(v.name().to_owned()),
            Progress::CleaningUp => self.cleaning_up = true,
            Progress::CleanupFailed(e) => self.cleanup_failed = Some(e.clone()),
            _ => {}
        }
    }
}

/// Writes `k8s-run.json` for an interrupted run, marked `"partial": true`: the spec, the
/// cluster, how far the run got, whether its objects were deleted, and the results of the
/// variants whose load finished (each also as `summary-<variant>.json`). Returns the files.
fn write_partial(
    dir: &std::path::Path,
    spec: &RunSpec,
    cluster_url: &str,
    server_version: &str,
    seen: &Seen,
    finished: Option<&driver::RunOutcome>,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("k8s-run.json");
    let variants = finished.map_or(&[][..], |o| o.variants.as_slice());
    let mut written = Vec::new();
    for v in variants {
        let summary = merge(v).map_err(|e| e.to_string())?;
        let p = dir.join(format!("summary-{}.json", v.variant.name()));
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p);
    }
    let record = serde_json::json!({
        "partial": true,
        "interrupted": true,
        "spec": spec,
        "cluster_url": cluster_url,
        "server_version": server_version,
        "namespace": seen.namespace,
        "variants_ready": seen.ready,
        "variants_load_done": seen.load_done,
        "variants": variants,
        "cleaned_up": finished.map_or(
            seen.cleaning_up && seen.cleanup_failed.is_none(),
            |o| o.cleaned_up
        ),
        "cleanup_error": seen.cleanup_failed,
    });
    let text = serde_json::to_string_pretty(&record).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    written.insert(0, path);
    Ok(written)
}

/// One variant's load pods merged into one summary (distributed load: histograms add up).
fn merge(v: &VariantOutcome) -> anyhow::Result<Summary> {
    let mut pods = v.load_pods.iter().map(|p| {
        serde_json::from_value::<Summary>(p.summary.clone()).map_err(|e| {
            fail(
                Exit::VariantFailed,
                format!(
                    "{}: the summary in the log of pod {} is not a wasmbench load summary ({e}): use the same wasmbench version for the image (--image-tag)",
                    v.variant, p.pod
                ),
            )
        })
    });
    let Some(first) = pods.next() else {
        return Err(fail(
            Exit::VariantFailed,
            format!("{}: no load pod results", v.variant),
        ));
    };
    let mut total = first?;
    for s in pods {
        total.merge(&s?).map_err(|e| {
            fail(
                Exit::VariantFailed,
                format!("{}: cannot merge load pod summaries: {e}", v.variant),
            )
        })?;
    }
    Ok(total)
}
