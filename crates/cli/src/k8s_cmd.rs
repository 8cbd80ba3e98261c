//! `wasmbench k8s run` and `wasmbench k8s manifests`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use wasmbench_k8s::driver::{self, ClusterOptions, Driver, DriverEvent, DriverOptions};
use wasmbench_k8s::manifests::{self, LoadEngine, RunSpec};
use wasmbench_k8s::report::{self, ReportOptions};
use wasmbench_k8s::server::{DEFAULT_PORT, OwnService, WasmImage};
use wasmbench_k8s::{Error, Variant};
use wasmbench_report::Format;

use crate::exit::{Exit, fail};
use crate::load_flags::LoadFlags;

/// Maps a k8s error to the CLI's exit table (14 = cluster unreachable / kubeconfig missing).
pub(crate) fn failure(e: Error) -> anyhow::Error {
    let exit = match &e {
        e if e.is_cluster_unreachable() => Exit::Cluster,
        Error::InvalidPlan(_) | Error::UnknownVariant(_) => Exit::InvalidConfig,
        Error::NotReady { .. } | Error::CannotStart { .. } | Error::RuntimeClassUnusable { .. } => {
            Exit::ServerStart
        }
        Error::JobFailed { .. }
        | Error::NoSummary { .. }
        | Error::BadSummary { .. }
        | Error::ServerDisrupted { .. } => Exit::VariantFailed,
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
    /// List the cluster's RuntimeClasses: each one's handler, the nodes that report that
    /// handler, the variants that use it, and the variants whose RuntimeClass is missing.
    Runtimes(ClusterArgs),
}

/// Which cluster, for commands that only read it.
#[derive(Debug, Args)]
struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
}

impl ClusterArgs {
    fn options(&self) -> ClusterOptions {
        ClusterOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            connect_timeout: None,
        }
    }
}

/// What decides the objects (shared by `run` and `manifests`).
#[derive(Debug, Args)]
struct PlanArgs {
    /// Variants: native, crun-wasmedge, crun-wasmedge-aot, wasmtime, wasmedge, wasmer, spin,
    /// wasmbench-shim, wasmbench-shim-http (wasi:http 0.2), wasmbench-shim-http-p3 (wasi:http
    /// 0.3), or `all`; missing RuntimeClasses are created. Default for `run`: native
    /// and every Wasm variant whose RuntimeClass exists on the cluster, the others reported as
    /// skipped; for `manifests`: every variant (spin with --spin-image).
    #[arg(long)]
    variants: Option<String>,
    /// Your own service's images, in place of the variants.
    #[command(flatten)]
    own: OwnImageArgs,
    /// The load of each variant; --vus is the total, split evenly over --parallelism load pods.
    #[command(flatten)]
    load: LoadFlags,
    /// What the load pods run: wasmbench (default) or k6 with the demo's script (one load pod;
    /// needs the k6 image: `wasmbench image build --which k6`).
    #[arg(long, value_enum, default_value_t = LoadEngine::Wasmbench)]
    load_engine: LoadEngine,
    /// Load pods per variant, one per node, at most the schedulable nodes (distributed load;
    /// their HDR histograms and counters are merged exactly). Default for `run`: as many as the
    /// nodes other than the server's can take (at least 1) while splitting --vus evenly; for
    /// `manifests` and for k6: 1.
    #[arg(long)]
    parallelism: Option<u32>,
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

/// Bring your own service: the same contract as `compare --native-cmd/--wasm` (README "Bring
/// your own service"), as images.
#[derive(Debug, Args)]
struct OwnImageArgs {
    /// Your service's native image, run under the node's default runtime (the baseline).
    #[arg(long, value_name = "IMAGE")]
    native_image: Option<String>,
    /// Your service's Wasm image and the RuntimeClass to run it under (default `wasmbench`,
    /// this project's shim); repeat for more images or classes.
    #[arg(long, value_name = "IMAGE[=RUNTIMECLASS]")]
    wasm_image: Vec<String>,
    /// The port your service listens on (given to it as `PORT`; `HOST` is 0.0.0.0).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Your service's environment, readiness path and the path it is loaded on (`--path` also
    /// applies to --variants).
    #[command(flatten)]
    service: crate::service_flags::ServiceFlags,
    /// The server containers' imagePullPolicy: IfNotPresent, Always or Never.
    #[arg(long, default_value = "IfNotPresent")]
    image_pull_policy: String,
}

impl OwnImageArgs {
    /// The user's service, `None` when no image is named.
    fn own(&self) -> Result<Option<OwnService>, Error> {
        if self.native_image.is_none() && self.wasm_image.is_empty() {
            return Ok(None);
        }
        Ok(Some(OwnService {
            native_image: self.native_image.clone(),
            wasm_images: self
                .wasm_image
                .iter()
                .map(|w| WasmImage::parse(w))
                .collect::<Result<_, _>>()?,
            port: self.port,
            ready_path: self.service.ready_path.clone(),
            env: self.service.env.clone(),
            pull_policy: self.image_pull_policy.clone(),
        }))
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Use this existing namespace instead of creating `wasmbench-<run>`; only the run's
    /// labelled objects are deleted afterwards.
    #[arg(long)]
    namespace: Option<String>,
    /// Keep everything after the run (for debugging with kubectl).
    #[arg(long)]
    keep: bool,
    /// Run without the kubelet's figures (server CPU per request, peak memory): for an account
    /// that may not `get nodes/proxy`.
    #[arg(long)]
    no_node_stats: bool,
    /// How long the echo Deployments may take to become ready.
    #[arg(long, default_value = "180s", value_parser = wasmbench_vocab::duration::parse)]
    timeout: Duration,
    /// Output format on stdout.
    #[arg(long, short = 'f', default_value = "text")]
    format: Format,
    /// Write every report format (as `compare --out` does; `wasmbench report DIR` re-renders
    /// it) plus each variant's merged summary and each load pod's own into runs/.
    #[arg(long, short = 'o')]
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

fn spec_from(
    plan: &PlanArgs,
    run: &str,
    namespace: Option<&str>,
    variants: Vec<Variant>,
) -> anyhow::Result<RunSpec> {
    spec_from_inner(plan, run, namespace, variants).map_err(failure)
}

fn spec_from_inner(
    plan: &PlanArgs,
    run: &str,
    namespace: Option<&str>,
    variants: Vec<Variant>,
) -> Result<RunSpec, Error> {
    let own = plan.own.own()?;
    if own.is_some() && plan.variants.is_some() {
        return Err(Error::InvalidPlan(
            "--variants runs this project's echo, --native-image/--wasm-image your service: use one or the other".to_owned(),
        ));
    }
    let mut spec = RunSpec::new(run, if own.is_some() { Vec::new() } else { variants });
    spec.own = own;
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
    if let Some(p) = &plan.own.service.path {
        spec.load.path = p.clone();
    }
    spec.load.parallelism = plan.parallelism.unwrap_or(1);
    spec.load.engine = plan.load_engine;
    spec.server_resources.cpu_limit = plan.server_cpu.clone();
    spec.server_resources.memory_limit = plan.server_memory.clone();
    spec.load_resources.cpu_limit = plan.load_cpu.clone();
    spec.load_resources.memory_limit = plan.load_memory.clone();
    spec.validate()?;
    Ok(spec)
}

/// `--variants` as given, `None` when absent.
fn requested_variants(plan: &PlanArgs) -> anyhow::Result<Option<Vec<Variant>>> {
    plan.variants
        .as_deref()
        .map(Variant::parse_list)
        .transpose()
        .map_err(failure)
}

/// The plan one load pod runs, built by `wasmbench load`'s own parser: from the pod's
/// arguments, or for k6 from the `load` arguments that mean what the demo's script does. The
/// report states exactly what ran, and a bad flag is reported before anything is deployed.
fn pod_plan(spec: &RunSpec) -> anyhow::Result<wasmbench_load::Plan> {
    let servers = spec.servers();
    let v = servers
        .first()
        .ok_or_else(|| fail(Exit::InvalidConfig, "no variant selected"))?;
    // The kubelet fills in the Service's address; here its DNS name stands in for it.
    let (in_pod, here) = (spec.service_url(v), spec.service_dns_url(v));
    let args: Vec<String> = match spec.load.engine {
        LoadEngine::Wasmbench => manifests::load_args(spec, v)
            .map_err(failure)?
            .into_iter()
            .map(|a| if a == in_pod { here.clone() } else { a })
            .collect(),
        LoadEngine::K6 => {
            let per_pod = spec.load.vus_per_pod().map_err(failure)?;
            let mut a = vec![
                "load".to_owned(),
                here,
                "--vus".to_owned(),
                per_pod.to_string(),
                "--duration".to_owned(),
                spec.load.duration_arg(),
            ];
            for c in wasmbench_vocab::demo::CHECKS {
                a.extend(["--check".to_owned(), c.to_owned()]);
            }
            a
        }
    };
    let invalid = |e: String| fail(Exit::InvalidConfig, format!("load flags: {e}"));
    let cli = crate::Cli::try_parse_from(std::iter::once("wasmbench".to_owned()).chain(args))
        .map_err(|e| invalid(e.to_string().lines().next().unwrap_or("").to_owned()))?;
    match cli.command {
        crate::Command::Load(a) => crate::load_cmd::build_plan(&a).map_err(invalid),
        _ => Err(fail(Exit::Internal, "load pod arguments are not `load`")),
    }
}

/// Before anything is deployed: every RuntimeClass the user named exists and, where the nodes
/// report their handlers, some node has its handler. An account that may not read them is
/// told so and the run goes on (a missing class then shows as a server that cannot start).
async fn check_own_runtime_classes(
    cluster: &driver::Cluster,
    own: &OwnService,
) -> anyhow::Result<()> {
    let wanted: Vec<String> = own
        .wasm_images
        .iter()
        .map(|w| w.runtime_class.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    match wasmbench_k8s::runtimes::list(cluster).await {
        Ok(found) => wasmbench_k8s::runtimes::check_usable(&found, &wanted).map_err(failure),
        Err(e @ Error::Forbidden { .. }) => {
            eprintln!("warning: RuntimeClasses not checked before the run: {e}");
            Ok(())
        }
        Err(e) => Err(failure(e)),
    }
}

fn print_progress(p: DriverEvent) {
    match p {
        DriverEvent::Applied {
            namespace,
            separate_load,
        } => eprintln!(
            "applied in namespace {namespace}; load pods {}",
            if separate_load {
                "kept off the node of the server they load"
            } else {
                "one per node, one of them on the server's node (not enough other nodes)"
            }
        ),
        DriverEvent::Ready(v) => eprintln!("{v}: ready"),
        DriverEvent::LoadStarted(v) => eprintln!("{v}: load running…"),
        DriverEvent::LoadDone(v) => eprintln!("{v}: load done"),
        DriverEvent::VariantFailed { variant, reason } => eprintln!("{variant}: FAILED: {reason}"),
        DriverEvent::CleaningUp => eprintln!("cleaning up…"),
        DriverEvent::CleanupFailed(e) => eprintln!("warning: cleanup failed: {e}"),
        other => eprintln!("{other:?}"),
    }
}

/// Runs `wasmbench k8s …`; returns the exit code (14 = cluster unreachable).
pub fn run(args: K8sArgs) -> anyhow::Result<i32> {
    match args.command {
        K8sCommand::Manifests(m) => {
            let variants = requested_variants(&m.plan)?
                .unwrap_or_else(|| Variant::deployable(m.plan.spin_image.is_some()));
            let mut spec = spec_from(&m.plan, "manual", Some(&m.namespace), variants)?;
            spec.separate_load = m.separate_load;
            for p in manifests::write_dir(&spec, &m.out).map_err(failure)? {
                println!("{}", p.display());
            }
            Ok(0)
        }
        K8sCommand::Runtimes(c) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start the async runtime")?;
            runtime.block_on(async {
                let cluster = driver::connect(&c.options()).await.map_err(failure)?;
                let found = wasmbench_k8s::runtimes::list(&cluster)
                    .await
                    .map_err(failure)?;
                print!("{}", wasmbench_k8s::runtimes::render(&found));
                Ok(0)
            })
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
    let requested = requested_variants(&r.plan)?;
    // Without --variants the cluster decides; native always runs, so the spec is valid already.
    let mut spec = spec_from(
        &r.plan,
        &id,
        r.namespace.as_deref(),
        requested.clone().unwrap_or_else(|| vec![Variant::Native]),
    )?;
    pod_plan(&spec)?;
    if let Some(dir) = &r.out {
        crate::report_cmd::ensure_writable(dir)?;
    }
    let cluster = driver::connect(&r.cluster.options())
        .await
        .map_err(failure)?;
    eprintln!(
        "cluster {} ({}), run {id}",
        cluster.url, cluster.server_version
    );
    if let Some(own) = &spec.own {
        check_own_runtime_classes(&cluster, own).await?;
    }
    let opts = DriverOptions {
        ready_timeout: r.timeout,
        keep: r.keep,
        create_namespace: r.namespace.is_none(),
        // A user's RuntimeClass is theirs to install; ours are created when named.
        install_runtime_classes: requested.is_some(),
        node_stats: !r.no_node_stats,
        ..Default::default()
    };
    let driver = Driver::new(cluster, opts);
    let skipped = match (&requested, &spec.own) {
        (None, None) => driver.select_available(&mut spec).await.map_err(failure)?,
        _ => Vec::new(),
    };
    for s in &skipped {
        eprintln!("{}: skipped: {}", s.variant, s.reason);
    }
    if r.plan.parallelism.is_none() && spec.load.engine == LoadEngine::Wasmbench {
        let nodes = match driver.nodes().await {
            Ok(nodes) => nodes,
            Err(e @ Error::Forbidden { .. }) => {
                eprintln!("warning: one load pod (--parallelism 1): {e}");
                Vec::new()
            }
            Err(e) => return Err(failure(e)),
        };
        let schedulable = nodes.iter().filter(|n| n.schedulable).count();
        spec.load.parallelism = spec
            .load
            .pods_for_nodes(driver::load_node_count(schedulable));
    }
    let load_plan = pod_plan(&spec)?;

    let cancel = CancellationToken::new();
    crate::signals::install(cancel.clone());
    // Interrupted after the run started: what finished is reported, marked partial (exit 105).
    let outcome = driver
        .run(&spec, &cancel, &print_progress)
        .await
        .map_err(failure)?;
    let raw_dir = r.out.as_ref().map(|d| d.join("runs"));
    let comparison = report::comparison(
        &outcome,
        &ReportOptions {
            load_plan: &load_plan,
            command_line: std::env::args().collect(),
            skipped: &skipped,
            raw_dir: raw_dir.as_deref(),
        },
    )
    .map_err(failure)?;
    crate::report_cmd::emit(&comparison, r.format, r.out.as_deref())?;
    Ok(i32::from(crate::report_cmd::exit_of(&comparison)?.code()))
}
