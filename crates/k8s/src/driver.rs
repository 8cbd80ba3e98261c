//! The cluster driver: apply → wait → load → collect → clean up, through the Kubernetes API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio_util::sync::CancellationToken;
use wasmbench_load::{K6Summary, LoadFigures, Summary};
use wasmbench_report::NodeInfo;

use crate::error::{api_err, forbidden_or};
use crate::kubelet::{self, PodStart, Sampler, WindowUsage};
use crate::manifests::{
    self, LABEL_ROLE, LABEL_RUN, LABEL_VARIANT, LoadEngine, RunSpec, SUMMARY_BEGIN, SUMMARY_END,
};
use crate::{Error, Server, Variant};
use wasmbench_vocab::one_line;

const FIELD_MANAGER: &str = "wasmbench";

/// How to find the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Kubeconfig file; default `$KUBECONFIG` (first entry), then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; default its current context.
    pub context: Option<String>,
    /// How long to wait for the API server's `/version`.
    pub connect_timeout: Option<Duration>,
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The kube client.
    pub client: Client,
    /// The API server URL.
    pub url: String,
    /// The kubeconfig context's namespace (or `default`).
    pub default_namespace: String,
    /// `gitVersion` reported by the API server.
    pub server_version: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.url)
            .field("server_version", &self.server_version)
            .finish_non_exhaustive()
    }
}

fn kubeconfig_path(opts: &ClusterOptions) -> Result<PathBuf, Error> {
    if let Some(p) = &opts.kubeconfig {
        if p.is_file() {
            return Ok(p.clone());
        }
        return Err(Error::KubeconfigMissing {
            searched: format!("--kubeconfig {} does not exist", p.display()),
        });
    }
    let from_env = std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .and_then(|v| std::env::split_paths(&v).find(|p| p.is_file()));
    if let Some(p) = from_env {
        return Ok(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(p) = home.map(|h| h.join(".kube/config")).filter(|p| p.is_file()) {
        return Ok(p);
    }
    let env_state = match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => {
            format!("KUBECONFIG={} has no existing file", v.to_string_lossy())
        }
        _ => "KUBECONFIG unset".to_owned(),
    };
    Err(Error::KubeconfigMissing {
        searched: format!("{env_state} and ~/.kube/config missing"),
    })
}

/// Builds a client from the kubeconfig and checks that the API server answers.
pub async fn connect(opts: &ClusterOptions) -> Result<Cluster, Error> {
    let path = kubeconfig_path(opts)?;
    let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| Error::Kubeconfig {
        path: path.clone(),
        reason: one_line(e.to_string()),
    })?;
    let options = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| Error::Kubeconfig {
            path: path.clone(),
            reason: one_line(e.to_string()),
        })?;
    connect_with_config(
        config,
        opts.connect_timeout.unwrap_or(Duration::from_secs(10)),
    )
    .await
}

/// Builds a client from an explicit `Config` (tests, in-cluster use) and checks the server.
pub async fn connect_with_config(config: Config, timeout: Duration) -> Result<Cluster, Error> {
    let url = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| Error::Unreachable {
        url: url.clone(),
        reason: one_line(e.to_string()),
    })?;
    let version = tokio::time::timeout(timeout, client.apiserver_version())
        .await
        .map_err(|_| Error::Unreachable {
            url: url.clone(),
            reason: format!("no answer within {}s", timeout.as_secs()),
        })?
        .map_err(|e| match e {
            kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
                Error::Unauthorized {
                    url: url.clone(),
                    code: status.code,
                    reason: status.reason.clone(),
                }
            }
            e => Error::Unreachable {
                url: url.clone(),
                reason: one_line(e.to_string()),
            },
        })?;
    Ok(Cluster {
        client,
        url,
        default_namespace,
        server_version: version.git_version,
    })
}

/// What the driver does besides the spec.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// How long Deployments may take to become ready.
    pub ready_timeout: Duration,
    /// How long a load Job may take beyond its planned duration.
    pub job_grace: Duration,
    /// How often to poll object status.
    pub poll_interval: Duration,
    /// Leave everything in place after the run.
    pub keep: bool,
    /// Create `spec.namespace` (and delete it at the end). When false the namespace must
    /// exist and only the run's labelled objects are deleted.
    pub create_namespace: bool,
    /// Create missing RuntimeClasses (and delete the ones created at the end).
    pub install_runtime_classes: bool,
    /// How long cleanup may take.
    pub cleanup_timeout: Duration,
    /// How long a server's image may keep failing to pull (`ErrImagePull`,
    /// `ImagePullBackOff`) before the server is given up.
    pub pull_grace: Duration,
    /// Read each server's CPU and memory from the kubelet's Summary API (needs `get` on
    /// `nodes/proxy`, checked before anything is deployed).
    pub node_stats: bool,
    /// How often the Summary API is read during the run.
    pub stats_interval: Duration,
    /// How long to wait after the last load for the kubelet's next reading.
    pub stats_settle: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            ready_timeout: Duration::from_secs(180),
            job_grace: Duration::from_secs(180),
            poll_interval: Duration::from_secs(1),
            keep: false,
            create_namespace: true,
            install_runtime_classes: true,
            cleanup_timeout: Duration::from_secs(120),
            pull_grace: Duration::from_secs(30),
            node_stats: true,
            stats_interval: Duration::from_secs(1),
            stats_settle: Duration::from_secs(40),
        }
    }
}

/// DriverEvent notifications, for a CLI to print.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DriverEvent {
    /// Objects were created.
    Applied {
        /// Namespace used.
        namespace: String,
        /// Whether load pods are kept off server nodes.
        separate_load: bool,
    },
    /// A server's Deployment is ready (by the server's name).
    Ready(String),
    /// A server's load Job was created.
    LoadStarted(String),
    /// A server's load Job completed and its summaries were read.
    LoadDone(String),
    /// A server failed (not ready, load Job failed, no readable summary); the run goes on.
    VariantFailed {
        /// The server's name.
        variant: String,
        /// Why, in one line.
        reason: String,
    },
    /// Cleanup started.
    CleaningUp,
    /// Cleanup failed (the run's own error, if any, is returned instead).
    CleanupFailed(String),
}

/// One load pod's result.
#[derive(Debug, Clone)]
pub struct LoadPodResult {
    /// Pod name.
    pub pod: String,
    /// Node it ran on.
    pub node: Option<String>,
    /// The summary the pod printed (`wasmbench load --json`, or k6's `--summary-export`), as
    /// printed.
    pub raw: serde_json::Value,
    /// The same, read.
    pub summary: LoadSummary,
    /// When its container ran, as its status says (whole seconds).
    pub ran: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A load pod's summary, or a variant's total, by the engine that measured it.
#[derive(Debug, Clone)]
pub enum LoadSummary {
    /// `wasmbench load`'s summary, with HDR histograms.
    Wasmbench(Box<Summary>),
    /// k6's `--summary-export` (statistics only).
    K6(K6Summary),
}

impl LoadSummary {
    /// The figures a report reads.
    pub fn figures(&self) -> &dyn LoadFigures {
        match self {
            LoadSummary::Wasmbench(s) => s.as_ref(),
            LoadSummary::K6(s) => s,
        }
    }

    /// The wasmbench version of the load generator (`None` for k6).
    pub fn wasmbench_version(&self) -> Option<&str> {
        match self {
            LoadSummary::Wasmbench(s) => Some(&s.wasmbench_version),
            LoadSummary::K6(_) => None,
        }
    }

    fn read(engine: LoadEngine, raw: &serde_json::Value) -> Result<LoadSummary, String> {
        match engine {
            LoadEngine::Wasmbench => serde_json::from_value::<Summary>(raw.clone())
                .map(|s| LoadSummary::Wasmbench(Box::new(s)))
                .map_err(|e| e.to_string()),
            LoadEngine::K6 => K6Summary::parse(raw)
                .map(LoadSummary::K6)
                .map_err(|e| e.to_string()),
        }
    }
}

/// One echo server pod, as its status reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPod {
    /// Pod name.
    pub pod: String,
    /// Node it ran on.
    pub node: Option<String>,
    /// The image reference the container runs.
    pub image: Option<String>,
    /// The image's digest as the container runtime resolved it (`imageID`).
    pub image_id: Option<String>,
    /// The host report the runtime printed in the pod's log (the project's shim does: how it
    /// compiled and loaded the module), if any.
    pub host_report: Option<serde_json::Value>,
    /// The pod's start, from its timestamps.
    pub start: Option<PodStart>,
    /// The image's size as the pod's node lists it.
    pub image_size_bytes: Option<u64>,
}

/// A variant that was not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedVariant {
    /// The variant.
    pub variant: Variant,
    /// Why, and how to make it run.
    pub reason: String,
}

/// One server's results.
#[derive(Debug, Clone)]
pub struct VariantOutcome {
    /// The server: a variant, or a user's image.
    pub server: Server,
    /// The RuntimeClass used (none for native).
    pub runtime_class: Option<String>,
    /// That RuntimeClass's handler, as read from (or created on) the cluster.
    pub handler: Option<String>,
    /// The echo server pods.
    pub server_pods: Vec<ServerPod>,
    /// One entry per load pod, in pod-name order.
    pub load_pods: Vec<LoadPodResult>,
    /// Every load pod's summary merged exactly (HDR histograms and counters added, rates over
    /// the union of their time spans; k6 runs one pod), or why the variant failed.
    pub summary: Result<LoadSummary, String>,
    /// When the load ran: the load generators' own clocks, else their containers' status.
    pub load_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The server container's CPU and memory over the load, from the kubelet.
    pub usage: Option<WindowUsage>,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The spec as applied (images, resources, load plan, placement).
    pub spec: RunSpec,
    /// API server URL.
    pub cluster_url: String,
    /// Kubernetes version.
    pub server_version: String,
    /// Every node at the start of the run.
    pub nodes: Vec<NodeInfo>,
    /// Per variant that got as far as its load (or failed on the way), in run order.
    pub variants: Vec<VariantOutcome>,
    /// When the run started (before the first API call that changes anything).
    pub started_at: DateTime<Utc>,
    /// When the last variant's load was read (or the run was interrupted).
    pub ended_at: DateTime<Utc>,
    /// Whether the run's objects were deleted.
    pub cleaned_up: bool,
    /// True when the run was interrupted: `variants` holds only those that finished.
    pub partial: bool,
    /// What the run could not observe, in one line each (e.g. why the kubelet's figures are
    /// missing).
    pub notes: Vec<String>,
}

impl RunOutcome {
    /// Names of the nodes that accepted ordinary pods at the start of the run.
    pub fn schedulable_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.schedulable)
            .map(|n| n.name.clone())
            .collect()
    }
}

/// The default number of load pods, one per node: every schedulable node but the one running
/// the server they load, or the only one (then load and server share it).
pub fn load_node_count(schedulable: usize) -> u32 {
    let n = u32::try_from(schedulable).unwrap_or(u32::MAX);
    if n > 1 { n - 1 } else { 1 }
}

/// Why a server's pod is not starting.
enum Blocked {
    /// A condition no waiting cures.
    Never(String),
    /// Its image fails to pull; the kubelet retries, the run waits `pull_grace`.
    Pull(String),
}

/// What the driver created and must delete.
#[derive(Debug, Default)]
struct Created {
    namespace: bool,
    objects: bool,
    runtime_classes: Vec<String>,
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Runs one comparison on a cluster.
#[derive(Debug, Clone)]
pub struct Driver {
    cluster: Cluster,
    opts: DriverOptions,
}

impl Driver {
    /// A driver for `cluster`.
    pub fn new(cluster: Cluster, opts: DriverOptions) -> Driver {
        Driver { cluster, opts }
    }

    fn client(&self) -> Client {
        self.cluster.client.clone()
    }

    /// Every node with what its status reports (kubelet and container runtime versions,
    /// kernel, OS, capacity) and whether it accepts ordinary pods (not cordoned, no
    /// `NoSchedule`/`NoExecute` taint), sorted by name.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, Error> {
        let nodes: Api<Node> = Api::all(self.client());
        let list = nodes
            .list(&ListParams::default())
            .await
            .map_err(forbidden_or("list nodes", "nodes"))?;
        let mut out: Vec<NodeInfo> = list.items.iter().map(node_info).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Narrows `spec.variants` to native and every Wasm variant whose RuntimeClass exists on
    /// the cluster (spin also needs `--spin-image`), for a run without `--variants`; returns
    /// the others with the reason they are skipped.
    pub async fn select_available(&self, spec: &mut RunSpec) -> Result<Vec<SkippedVariant>, Error> {
        let rcs: Api<RuntimeClass> = Api::all(self.client());
        let mut run = Vec::new();
        let mut skipped = Vec::new();
        for v in Variant::ALL {
            let Some(rc) = v.runtime_class() else {
                run.push(v);
                continue;
            };
            let deployable = Variant::deployable(spec.images.spin.is_some()).contains(&v);
            let reason = match rcs.get(rc).await {
                Ok(_) if !deployable => Some(
                    "needs a Spin application image (wasmbench does not build one): pass --spin-image REF"
                        .to_owned(),
                ),
                Ok(_) => None,
                Err(e) if is_not_found(&e) => Some(format!(
                    "RuntimeClass {rc} does not exist on the cluster: install the runtime on the nodes (docs/kubernetes.md) and `kubectl apply -k deploy/runtimeclasses`, or name the variant in --variants to let wasmbench create the RuntimeClass"
                )),
                Err(e) => return Err(api_err(format!("get RuntimeClass {rc}"))(e)),
            };
            match reason {
                None => run.push(v),
                Some(reason) => skipped.push(SkippedVariant { variant: v, reason }),
            }
        }
        spec.variants = run;
        Ok(skipped)
    }

    /// Applies `spec`, waits for the servers, runs each ready variant's load Job in turn, reads
    /// and merges the summaries and deletes what it created — also on error and when `cancel`
    /// fires — unless `keep` is set. A variant that does not become ready or whose load fails
    /// is recorded as failed and the others go on. One load pod per node, so
    /// `spec.load.parallelism` must not exceed the schedulable nodes; `separate_load` is decided
    /// here: set when the nodes other than the server's can take every load pod. When `cancel`
    /// fires the outcome holds the variants that finished and is marked `partial`, as a local
    /// run's is.
    pub async fn run(
        &self,
        spec: &RunSpec,
        cancel: &CancellationToken,
        progress: &(dyn Fn(DriverEvent) + Sync),
    ) -> Result<RunOutcome, Error> {
        spec.validate()?;
        let started_at = Utc::now();
        // An account limited to a namespace cannot see the nodes: the run goes on without
        // knowing them, and the report says so.
        let nodes = match self.nodes().await {
            Err(Error::Forbidden { .. }) => Vec::new(),
            other => other?,
        };
        let schedulable = nodes.iter().filter(|n| n.schedulable).count();
        let mut spec = spec.clone();
        let pods = spec.load.parallelism as usize;
        if !nodes.is_empty() && pods > schedulable {
            return Err(Error::InvalidPlan(format!(
                "--parallelism {pods} needs {pods} schedulable nodes (one load pod per node), but the cluster has {schedulable}: use --parallelism {} or add nodes",
                load_node_count(schedulable)
            )));
        }
        // Off the server's node whenever the other nodes can take every load pod; else one of
        // them shares it, and the report says so.
        spec.separate_load = schedulable > pods;

        let mut created = Created::default();
        if self.opts.node_stats {
            kubelet::check_stats_access(&self.cluster.client).await?;
        }
        let mut finished = Vec::new();
        let mut notes = Vec::new();
        // `None` when the user asked to stop.
        let result = {
            let body = self.body(&spec, &mut created, &mut finished, &mut notes, progress);
            tokio::select! {
                // Checked first, so nothing new starts once the user has asked to stop.
                biased;
                () = cancel.cancelled() => None,
                r = body => Some(r),
            }
        };
        let ended_at = Utc::now();
        let mut cleaned_up = false;
        if !self.opts.keep {
            progress(DriverEvent::CleaningUp);
            let cleanup =
                tokio::time::timeout(self.opts.cleanup_timeout, self.cleanup(&spec, &created))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Api {
                            action: "cleanup".to_owned(),
                            reason: format!(
                                "not finished after {}s; delete namespace {} by hand",
                                self.opts.cleanup_timeout.as_secs(),
                                spec.namespace
                            ),
                        })
                    });
            match cleanup {
                Ok(()) => cleaned_up = true,
                Err(e) => {
                    progress(DriverEvent::CleanupFailed(e.to_string()));
                    if matches!(result, Some(Ok(()))) {
                        return Err(e);
                    }
                }
            }
        }
        let cancelled = result.is_none();
        if let Some(r) = result {
            r?;
        }
        let outcome = RunOutcome {
            spec,
            cluster_url: self.cluster.url.clone(),
            server_version: self.cluster.server_version.clone(),
            nodes,
            variants: finished,
            started_at,
            ended_at,
            cleaned_up,
            // What finished before the interruption is kept for the caller to write out, as
            // a local run keeps it.
            partial: cancelled,
            notes,
        };
        Ok(outcome)
    }

    async fn body(
        &self,
        spec: &RunSpec,
        created: &mut Created,
        finished: &mut Vec<VariantOutcome>,
        notes: &mut Vec<String>,
        progress: &(dyn Fn(DriverEvent) + Sync),
    ) -> Result<(), Error> {
        let objects = manifests::build(spec)?;
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        let client = self.client();

        if self.opts.create_namespace {
            Api::<Namespace>::all(client.clone())
                .create(&pp, &objects.namespace)
                .await
                .map_err(api_err(format!("create Namespace {}", spec.namespace)))?;
            created.namespace = true;
        } else {
            Api::<Namespace>::all(client.clone())
                .get(&spec.namespace)
                .await
                .map_err(api_err(format!(
                    "get Namespace {} (it must exist)",
                    spec.namespace
                )))?;
        }

        // RuntimeClass name → its handler on this cluster, for the report.
        let mut handlers = BTreeMap::new();
        let rcs: Api<RuntimeClass> = Api::all(client.clone());
        let mut names: Vec<String> = spec
            .servers()
            .into_iter()
            .filter_map(|s| s.runtime_class)
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let installable = objects
                .runtime_classes
                .iter()
                .find(|rc| rc.metadata.name.as_deref() == Some(name.as_str()))
                .filter(|_| self.opts.install_runtime_classes);
            match (rcs.get(&name).await, installable) {
                (Ok(existing), _) => {
                    handlers.insert(name, existing.handler);
                }
                // Not readable by a namespace-scoped account: the report names no handler.
                (Err(kube::Error::Api(s)), _) if s.code == 403 => {}
                (Err(e), Some(rc)) if is_not_found(&e) => {
                    rcs.create(&pp, rc)
                        .await
                        .map_err(api_err(format!("create RuntimeClass {name}")))?;
                    created.runtime_classes.push(name.clone());
                    handlers.insert(name, rc.handler.clone());
                }
                // Left missing on purpose: its pods cannot start and the variant fails.
                (Err(e), None) if is_not_found(&e) => {}
                (Err(e), _) => return Err(api_err(format!("get RuntimeClass {name}"))(e)),
            }
        }

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &spec.namespace);
        let services: Api<Service> = Api::namespaced(client.clone(), &spec.namespace);
        created.objects = true;
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &spec.namespace);
        for cm in &objects.config_maps {
            let name = cm.metadata.name.clone().unwrap_or_default();
            config_maps
                .create(&pp, cm)
                .await
                .map_err(api_err(format!("create ConfigMap {name}")))?;
        }
        for (v, d, s, _) in &objects.variants {
            deployments
                .create(&pp, d)
                .await
                .map_err(api_err(format!("create Deployment {}", v.object_name())))?;
            services
                .create(&pp, s)
                .await
                .map_err(api_err(format!("create Service {}", v.object_name())))?;
        }
        progress(DriverEvent::Applied {
            namespace: spec.namespace.clone(),
            separate_load: spec.separate_load,
        });

        let not_ready = self.wait_ready(spec, progress).await?;
        let sampler = match self.opts.node_stats {
            true => Some(self.start_sampler(spec).await?),
            false => None,
        };

        for (v, _, _, job) in &objects.variants {
            let (load_pods, summary) = match not_ready.get(&v.name) {
                Some(e) => (Vec::new(), Err(e.to_string())),
                None => {
                    let before = self.server_identity(spec, v).await?;
                    progress(DriverEvent::LoadStarted(v.name.clone()));
                    match self.run_load(spec, v, job, &pp).await {
                        // The load pods' summaries are kept (and written) either way.
                        Ok((pods, merged)) => match self.server_change(spec, v, &before).await? {
                            None => (pods, Ok(merged)),
                            Some(what) => (pods, Err(Error::ServerDisrupted { what }.to_string())),
                        },
                        // The variant's own failure: recorded, and the next variant runs.
                        Err(
                            e @ (Error::JobFailed { .. }
                            | Error::NoSummary { .. }
                            | Error::BadSummary { .. }),
                        ) => (Vec::new(), Err(e.to_string())),
                        Err(e) => return Err(e),
                    }
                }
            };
            let runtime_class = v.runtime_class.clone();
            let server_pods = self.server_pods(spec, v).await?;
            // Recorded before it is announced: an interruption from then on keeps it.
            finished.push(VariantOutcome {
                server: v.clone(),
                handler: runtime_class
                    .as_ref()
                    .and_then(|rc| handlers.get(rc).cloned()),
                runtime_class,
                server_pods,
                load_window: load_window(&load_pods),
                load_pods,
                summary: summary.clone(),
                usage: None,
            });
            progress(match summary {
                Ok(_) => DriverEvent::LoadDone(v.name.clone()),
                Err(reason) => DriverEvent::VariantFailed {
                    variant: v.name.clone(),
                    reason,
                },
            });
        }
        if let Some(sampler) = sampler {
            self.read_usage(sampler, finished, notes).await;
        } else {
            notes.push(format!(
                "server CPU and memory not read ({}): the kubelet's figures were not asked for",
                kubelet::WITHOUT_NODE_STATS
            ));
        }
        self.image_sizes(finished).await;
        Ok(())
    }

    /// Starts reading the kubelet's stats on every node running a server pod.
    async fn start_sampler(&self, spec: &RunSpec) -> Result<Sampler, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let selector = format!("{},{LABEL_ROLE}=server", spec.run_selector());
        let mut nodes: Vec<String> = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(api_err("list server pods"))?
            .items
            .into_iter()
            .filter_map(|p| p.spec.and_then(|s| s.node_name))
            .collect();
        nodes.sort();
        nodes.dedup();
        Ok(Sampler::start(
            self.client(),
            nodes,
            spec.namespace.clone(),
            self.opts.stats_interval,
        ))
    }

    /// Each loaded server's CPU and memory over its load, once the kubelet has a reading
    /// after the last load.
    async fn read_usage(
        &self,
        sampler: Sampler,
        finished: &mut [VariantOutcome],
        notes: &mut Vec<String>,
    ) {
        let pod_of = |v: &VariantOutcome| v.server_pods.first().map(|p| p.pod.clone());
        let wanted: Vec<(String, DateTime<Utc>)> = finished
            .iter()
            .filter(|v| v.summary.is_ok())
            .filter_map(|v| Some((pod_of(v)?, v.load_window?.1)))
            .collect();
        let (samples, why) = sampler.finish(&wanted, self.opts.stats_settle).await;
        if let Some(why) = why {
            notes.push(format!("the kubelet's stats stopped being read: {why}"));
        }
        let loads: Vec<_> = finished.iter().filter_map(|v| v.load_window).collect();
        for v in finished.iter_mut().filter(|v| v.summary.is_ok()) {
            let (Some(pod), Some((start, end))) = (pod_of(v), v.load_window) else {
                continue;
            };
            v.usage = kubelet::window_usage(&samples.of(&pod), start, end, &loads);
            if v.usage.is_none() {
                notes.push(format!(
                    "{}: no kubelet reading before and after its load (pod {pod}), so no server CPU or memory",
                    v.server.name
                ));
            }
        }
    }

    /// The variant's server pods by UID, with their containers' restart counts.
    async fn server_identity(
        &self,
        spec: &RunSpec,
        v: &Server,
    ) -> Result<BTreeMap<String, (String, i32)>, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let list = pods
            .list(&ListParams::default().labels(&Self::selector(spec, v, "server")))
            .await
            .map_err(api_err(format!("list server pods of {}", v.name)))?;
        Ok(list
            .items
            .iter()
            // A pod being deleted is gone for the load, though the API still lists it.
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                let restarts = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum());
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    (p.metadata.name.clone().unwrap_or_default(), restarts),
                )
            })
            .collect())
    }

    /// What happened to the server pods since `before`, in words; `None` when nothing did.
    async fn server_change(
        &self,
        spec: &RunSpec,
        v: &Server,
        before: &BTreeMap<String, (String, i32)>,
    ) -> Result<Option<String>, Error> {
        let after = self.server_identity(spec, v).await?;
        let mut what = Vec::new();
        for (uid, (name, restarts)) in before {
            match after.get(uid) {
                None => what.push(format!("pod {name} was deleted")),
                Some((_, now)) if now > restarts => {
                    what.push(format!("pod {name} restarted {} time(s)", now - restarts));
                }
                Some(_) => {}
            }
        }
        for (uid, (name, _)) in &after {
            if !before.contains_key(uid) {
                what.push(format!("pod {name} was started"));
            }
        }
        Ok((!what.is_empty()).then(|| what.join(", ")))
    }

    async fn server_pods(&self, spec: &RunSpec, v: &Server) -> Result<Vec<ServerPod>, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let mut list = pods
            .list(&ListParams::default().labels(&Self::selector(spec, v, "server")))
            .await
            .map_err(api_err("list server pods"))?
            .items;
        list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut out = Vec::new();
        for p in &list {
            let status = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first());
            let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let image = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone());
            let image_id = status.and_then(|c| nonempty(&c.image_id));
            out.push(ServerPod {
                pod: p.metadata.name.clone().unwrap_or_default(),
                host_report: self.host_report(&pods, p).await,
                start: PodStart::of(p),
                node,
                image,
                image_id,
                // Read at the end of the run: the node lists a freshly pulled image only at
                // its next status update.
                image_size_bytes: None,
            });
        }
        Ok(out)
    }

    /// The size each server pod's node lists for its image, waiting up to `stats_settle` for
    /// the nodes' next status update when one is not listed yet; left out when the account
    /// may not read nodes.
    async fn image_sizes(&self, finished: &mut [VariantOutcome]) {
        let nodes: Api<Node> = Api::all(self.client());
        let deadline = Instant::now() + self.opts.stats_settle;
        loop {
            let mut missing = false;
            for p in finished.iter_mut().flat_map(|v| v.server_pods.iter_mut()) {
                let (Some(node), Some(image)) = (&p.node, &p.image) else {
                    continue;
                };
                if p.image_size_bytes.is_some() {
                    continue;
                }
                match nodes.get(node).await {
                    Ok(n) => {
                        p.image_size_bytes = kubelet::image_size(&n, image, p.image_id.as_deref());
                        missing |= p.image_size_bytes.is_none();
                    }
                    Err(_) => return,
                }
            }
            if !missing || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }

    /// The runtime's host report from the start of `pod`'s log; `None` when the runtime
    /// prints none (runc, other shims) or the log cannot be read.
    async fn host_report(&self, pods: &Api<Pod>, pod: &Pod) -> Option<serde_json::Value> {
        let name = pod.metadata.name.as_deref()?;
        let params = LogParams {
            // The report is printed once the module is instantiated, before any request.
            limit_bytes: Some(64 * 1024),
            ..Default::default()
        };
        let log = pods.logs(name, &params).await.ok()?;
        log.lines()
            .find_map(|l| l.strip_prefix(wasmbench_vocab::HOST_REPORT_PREFIX))
            .and_then(|json| serde_json::from_str(json).ok())
    }

    /// Waits until every Deployment is ready or the timeout has passed; returns the variants
    /// that did not become ready, each with a [`Error::NotReady`] naming why.
    async fn wait_ready(
        &self,
        spec: &RunSpec,
        progress: &(dyn Fn(DriverEvent) + Sync),
    ) -> Result<BTreeMap<String, Error>, Error> {
        let deployments: Api<Deployment> = Api::namespaced(self.client(), &spec.namespace);
        let deadline = Instant::now() + self.opts.ready_timeout;
        let mut pending: Vec<Server> = spec.servers();
        let mut not_ready = BTreeMap::new();
        // When each server's image was first seen failing to pull.
        let mut pull_failing: BTreeMap<String, Instant> = BTreeMap::new();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for v in pending {
                let name = v.object_name();
                let d = deployments
                    .get(&name)
                    .await
                    .map_err(api_err(format!("get Deployment {name}")))?;
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let ready = d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                if ready >= want {
                    progress(DriverEvent::Ready(v.name.clone()));
                    continue;
                }
                let why = match self.cannot_start(spec, &v).await {
                    Some(Blocked::Never(why)) => Some(why),
                    // The kubelet retries a failed pull forever; the run gives it a while.
                    Some(Blocked::Pull(why)) => {
                        let since = *pull_failing
                            .entry(v.name.clone())
                            .or_insert_with(Instant::now);
                        (since.elapsed() >= self.opts.pull_grace).then(|| {
                            format!(
                                "{why} for {}s (check the image name and that the nodes may pull it)",
                                self.opts.pull_grace.as_secs()
                            )
                        })
                    }
                    None => None,
                };
                if let Some(why) = why {
                    let diagnosis = format!("{why}; {}", self.diagnose(spec, &v, "server").await);
                    not_ready.insert(
                        v.name.clone(),
                        Error::CannotStart {
                            deployment: name,
                            diagnosis,
                        },
                    );
                } else {
                    still.push(v);
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for v in pending {
                    not_ready.insert(
                        v.name.clone(),
                        Error::NotReady {
                            deployment: v.object_name(),
                            timeout: self.opts.ready_timeout,
                            diagnosis: self.diagnose(spec, &v, "server").await,
                        },
                    );
                }
                return Ok(not_ready);
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
        Ok(not_ready)
    }

    /// Why `v`'s server pods cannot become ready, if they met such a condition: a container
    /// waiting for a reason the kubelet does not retry, a sandbox whose RuntimeClass handler
    /// the node's container runtime does not have, or an image that failed to pull.
    async fn cannot_start(&self, spec: &RunSpec, v: &Server) -> Option<Blocked> {
        const FATAL_WAITING: [&str; 3] = [
            "ErrImageNeverPull",
            "InvalidImageName",
            "CreateContainerConfigError",
        ];
        const PULL_FAILING: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let list = pods
            .list(&ListParams::default().labels(&Self::selector(spec, v, "server")))
            .await
            .ok()?
            .items;
        if list.is_empty() {
            let prefix = format!("{}-", v.object_name());
            return self
                .failed_create(spec, "ReplicaSet", &prefix)
                .await
                .map(|m| Blocked::Never(format!("its pod cannot be created: {m}")));
        }
        for p in &list {
            let statuses = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            for cs in statuses.into_iter().flatten() {
                let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
                let reason = waiting.and_then(|w| w.reason.as_deref());
                if let Some(r) = reason.filter(|r| FATAL_WAITING.contains(r)) {
                    return Some(Blocked::Never(format!(
                        "container {} is waiting with {r}",
                        cs.name
                    )));
                }
                if let Some(r) = reason.filter(|r| PULL_FAILING.contains(r)) {
                    let message = waiting.and_then(|w| w.message.as_deref()).unwrap_or("");
                    return Some(Blocked::Pull(one_line(format!(
                        "image {} fails to pull ({r}: {message})",
                        cs.image
                    ))));
                }
            }
            let name = p.metadata.name.as_deref()?;
            let events: Api<Event> = Api::namespaced(self.client(), &spec.namespace);
            let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
            let handler_missing = events.list(&lp).await.ok()?.items.into_iter().any(|e| {
                e.reason.as_deref() == Some("FailedCreatePodSandBox")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("no runtime for"))
            });
            if handler_missing {
                return Some(Blocked::Never(format!(
                    "the node has no container runtime handler for RuntimeClass {} (install it on the nodes, see docs/kubernetes.md)",
                    v.runtime_class.as_deref().unwrap_or("-")
                )));
            }
        }
        None
    }

    /// The message of a `FailedCreate` event of a controller (ReplicaSet, Job) whose name
    /// starts with `prefix`: admission refused its pod (PodSecurity, a quota, a webhook), which
    /// no amount of waiting fixes.
    async fn failed_create(&self, spec: &RunSpec, kind: &str, prefix: &str) -> Option<String> {
        let events: Api<Event> = Api::namespaced(self.client(), &spec.namespace);
        let lp = ListParams::default()
            .fields(&format!("involvedObject.kind={kind},reason=FailedCreate"));
        events
            .list(&lp)
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("FailedCreate")
                    && e.involved_object.kind.as_deref() == Some(kind)
                    && e.involved_object
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(prefix))
            })
            .find_map(|e| e.message.map(one_line))
    }

    fn selector(spec: &RunSpec, v: &Server, role: &str) -> String {
        format!(
            "{LABEL_RUN}={},{LABEL_VARIANT}={},{LABEL_ROLE}={role}",
            spec.run_id, v.name
        )
    }

    /// Names the first unhealthy pod of `v`/`role`, its phase, container state and recent
    /// events; without pods, the events of the owning objects (e.g. a missing RuntimeClass).
    async fn diagnose(&self, spec: &RunSpec, v: &Server, role: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let list = match pods
            .list(&ListParams::default().labels(&Self::selector(spec, v, role)))
            .await
        {
            Ok(l) => l.items,
            Err(e) => return format!("cannot list pods: {}", one_line(e.to_string())),
        };
        let unhealthy = list.iter().find(|p| !pod_ready(p)).or(list.first());
        let Some(pod) = unhealthy else {
            let prefix = match role {
                "server" => v.object_name(),
                _ => RunSpec::job_name(v),
            };
            let events = self.events(spec, None, Some(&prefix)).await;
            return format!("no pod was created; events: {events}");
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let events = self.events(spec, Some(&name), None).await;
        format!("pod {name} is {}; events: {events}", pod_state(pod))
    }

    async fn events(&self, spec: &RunSpec, object: Option<&str>, prefix: Option<&str>) -> String {
        let api: Api<Event> = Api::namespaced(self.client(), &spec.namespace);
        let mut lp = ListParams::default();
        if let Some(o) = object {
            lp = lp.fields(&format!("involvedObject.name={o}"));
        }
        let mut items = match api.list(&lp).await {
            Ok(l) => l.items,
            Err(e) => return format!("cannot list events: {}", one_line(e.to_string())),
        };
        if let Some(p) = prefix {
            items.retain(|e| {
                e.involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(p))
            });
        }
        items.sort_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default()
        });
        let recent: Vec<String> = items
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|e| {
                one_line(format!(
                    "{} {}: {}",
                    e.type_.as_deref().unwrap_or("?"),
                    e.reason.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("")
                ))
            })
            .collect();
        if recent.is_empty() {
            "none".to_owned()
        } else {
            recent.join("; ")
        }
    }

    async fn run_load(
        &self,
        spec: &RunSpec,
        v: &Server,
        job: &Job,
        pp: &PostParams,
    ) -> Result<(Vec<LoadPodResult>, LoadSummary), Error> {
        let jobs: Api<Job> = Api::namespaced(self.client(), &spec.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let name = RunSpec::job_name(v);
        jobs.create(pp, job)
            .await
            .map_err(api_err(format!("create Job {name}")))?;
        let n = i32::try_from(spec.load.parallelism).unwrap_or(i32::MAX);
        let limit = spec.load.duration + self.opts.job_grace;
        let deadline = Instant::now() + limit;
        loop {
            let j = jobs
                .get(&name)
                .await
                .map_err(api_err(format!("get Job {name}")))?;
            let status = j.status.unwrap_or_default();
            if status.succeeded.unwrap_or(0) >= n {
                break;
            }
            let failed_condition = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Failed" && c.status == "True");
            if status.failed.unwrap_or(0) > 0 || failed_condition {
                return Err(Error::JobFailed {
                    job: name,
                    diagnosis: self.diagnose_job(spec, v).await,
                });
            }
            if status.active.unwrap_or(0) == 0
                && let Some(m) = self.failed_create(spec, "Job", &name).await
            {
                return Err(Error::JobFailed {
                    job: name,
                    diagnosis: format!("its pods cannot be created: {m}"),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::JobFailed {
                    diagnosis: format!(
                        "not complete after {}s; {}",
                        limit.as_secs(),
                        self.diagnose_job(spec, v).await
                    ),
                    job: name,
                });
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }

        let mut load_pods = Vec::new();
        let mut list = pods
            .list(&ListParams::default().labels(&Self::selector(spec, v, "load")))
            .await
            .map_err(api_err(format!("list pods of Job {name}")))?
            .items;
        list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for pod in list
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
        {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let log = pods
                .logs(&pod_name, &LogParams::default())
                .await
                .map_err(api_err(format!("read log of pod {pod_name}")))?;
            let raw = extract_summary(&log).ok_or_else(|| Error::NoSummary {
                hint: match spec.load.engine {
                    LoadEngine::Wasmbench => {
                        "check that the wasmbench image supports `wasmbench load --json`"
                    }
                    LoadEngine::K6 => {
                        "check that the k6 image runs k6 v0.46 or later (`--summary-export`)"
                    }
                },
                pod: pod_name.clone(),
                last_line: log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
            })?;
            let summary =
                LoadSummary::read(spec.load.engine, &raw).map_err(|e| Error::BadSummary {
                    pod: pod_name.clone(),
                    reason: one_line(e),
                })?;
            load_pods.push(LoadPodResult {
                pod: pod_name,
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                raw,
                summary,
                ran: container_ran(pod),
            });
        }
        if load_pods.len() < spec.load.parallelism as usize {
            return Err(Error::JobFailed {
                job: name,
                diagnosis: format!(
                    "{} of {} load pods are left to read (pods deleted early?)",
                    load_pods.len(),
                    spec.load.parallelism
                ),
            });
        }
        let merged = merge(&load_pods)?;
        Ok((load_pods, merged))
    }

    async fn diagnose_job(&self, spec: &RunSpec, v: &Server) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client(), &spec.namespace);
        let list = pods
            .list(&ListParams::default().labels(&Self::selector(spec, v, "load")))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let bad = list
            .iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
            .or_else(|| {
                list.iter().find(|p| {
                    p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded")
                })
            });
        let Some(pod) = bad else {
            return self.diagnose(spec, v, "load").await;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let tail = pods
            .logs(
                &name,
                &LogParams {
                    tail_lines: Some(3),
                    ..Default::default()
                },
            )
            .await
            .map(one_line)
            .unwrap_or_default();
        let events = self.events(spec, Some(&name), None).await;
        format!(
            "pod {name} is {}; log tail: {tail:?}; events: {events}",
            pod_state(pod)
        )
    }

    async fn cleanup(&self, spec: &RunSpec, created: &Created) -> Result<(), Error> {
        let client = self.client();
        let dp = DeleteParams::background();
        if created.namespace {
            let ns: Api<Namespace> = Api::all(client.clone());
            match ns.delete(&spec.namespace, &dp).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_err(format!("delete Namespace {}", spec.namespace))(e)),
            }
            // Wait until it is gone so a following run starts from a clean cluster.
            loop {
                match ns.get(&spec.namespace).await {
                    Err(e) if is_not_found(&e) => break,
                    Err(e) => return Err(api_err(format!("get Namespace {}", spec.namespace))(e)),
                    Ok(_) => tokio::time::sleep(self.opts.poll_interval).await,
                }
            }
        } else if created.objects {
            let lp = ListParams::default().labels(&spec.run_selector());
            let ns = &spec.namespace;
            Api::<Job>::namespaced(client.clone(), ns)
                .delete_collection(&dp, &lp)
                .await
                .map_err(api_err("delete Jobs"))?;
            Api::<Deployment>::namespaced(client.clone(), ns)
                .delete_collection(&dp, &lp)
                .await
                .map_err(api_err("delete Deployments"))?;
            // Services have no deletecollection endpoint.
            let services: Api<Service> = Api::namespaced(client.clone(), ns);
            for s in services
                .list(&lp)
                .await
                .map_err(api_err("list Services"))?
                .items
            {
                let name = s.metadata.name.unwrap_or_default();
                match services.delete(&name, &dp).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(api_err(format!("delete Service {name}"))(e)),
                }
            }
            Api::<Pod>::namespaced(client.clone(), ns)
                .delete_collection(&dp, &lp)
                .await
                .map_err(api_err("delete Pods"))?;
            Api::<ConfigMap>::namespaced(client.clone(), ns)
                .delete_collection(&dp, &lp)
                .await
                .map_err(api_err("delete ConfigMaps"))?;
        }
        let rcs: Api<RuntimeClass> = Api::all(client);
        for name in &created.runtime_classes {
            match rcs.delete(name, &dp).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_err(format!("delete RuntimeClass {name}"))(e)),
            }
        }
        Ok(())
    }
}

fn chrono_time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().try_into().ok()?)
}

/// When a finished pod's container ran, from its terminated state.
fn container_ran(pod: &Pod) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let t = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some((
        chrono_time(t.started_at.as_ref()?)?,
        chrono_time(t.finished_at.as_ref()?)?,
    ))
}

/// When a variant's load ran: from its generators' summaries (millisecond clocks), else from
/// its pods' container status (whole seconds, widened to cover the load).
fn load_window(pods: &[LoadPodResult]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let spans: Vec<_> = pods
        .iter()
        .map(|p| match &p.summary {
            LoadSummary::Wasmbench(s) => Some((s.started, s.ended)),
            LoadSummary::K6(_) => p.ran,
        })
        .collect::<Option<_>>()?;
    let start = spans.iter().map(|s| s.0).min()?;
    let end = spans.iter().map(|s| s.1).max()?;
    Some((start, end))
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// "Pending, container echo waiting: ImagePullBackOff (message)".
fn pod_state(p: &Pod) -> String {
    let status = p.status.clone().unwrap_or_default();
    let mut out = status
        .phase
        .unwrap_or_else(|| "in an unknown phase".to_owned());
    for cs in status.container_statuses.iter().flatten() {
        let Some(state) = &cs.state else { continue };
        if let Some(w) = &state.waiting {
            out.push_str(&format!(
                ", container {} waiting: {}",
                cs.name,
                w.reason.as_deref().unwrap_or("?")
            ));
            if let Some(m) = &w.message {
                out.push_str(&format!(" ({})", one_line(m)));
            }
        } else if let Some(t) = &state.terminated {
            out.push_str(&format!(
                ", container {} terminated: {} (exit code {})",
                cs.name,
                t.reason.as_deref().unwrap_or("?"),
                t.exit_code
            ));
        } else if state.running.is_some() && !cs.ready {
            out.push_str(&format!(
                ", container {} running but not ready (readiness probe failing?)",
                cs.name
            ));
        }
    }
    if let Some(reason) = status.reason {
        out.push_str(&format!(", reason {reason}"));
    }
    if let Some(msg) = status.message {
        out.push_str(&format!(" ({})", one_line(msg)));
    }
    out
}

/// Finds the JSON summary in a load pod's log: the text between [`SUMMARY_BEGIN`] and
/// [`SUMMARY_END`] if present, else the last JSON object that starts at the beginning of a line
/// (so `--json /dev/stdout` works even when progress lines are interleaved).
pub fn extract_summary(log: &str) -> Option<serde_json::Value> {
    if let Some(start) = log.rfind(SUMMARY_BEGIN) {
        let rest = &log[start + SUMMARY_BEGIN.len()..];
        if let Some(v) = rest
            .find(SUMMARY_END)
            .and_then(|end| serde_json::from_str::<serde_json::Value>(rest[..end].trim()).ok())
        {
            return Some(v);
        }
    }
    let mut found = None;
    let mut offset = 0;
    for line in log.split_inclusive('\n') {
        if line.starts_with('{') {
            let mut stream =
                serde_json::Deserializer::from_str(&log[offset..]).into_iter::<serde_json::Value>();
            if let Some(Ok(v)) = stream
                .next()
                .filter(|v| matches!(v, Ok(v) if v.is_object()))
            {
                found = Some(v);
            }
        }
        offset += line.len();
    }
    found
}

/// The pods' summaries as one: histograms and counters added exactly, rates over the union
/// of their time spans, thresholds evaluated again on the total (see `Summary::merge`). k6
/// summaries have no histograms: only one of them is its own total.
pub fn merge(pods: &[LoadPodResult]) -> Result<LoadSummary, Error> {
    let (first, rest) = pods.split_first().ok_or_else(|| Error::JobFailed {
        job: String::new(),
        diagnosis: "no load pod results".to_owned(),
    })?;
    let mut total = match &first.summary {
        LoadSummary::Wasmbench(s) => (**s).clone(),
        LoadSummary::K6(_) if rest.is_empty() => return Ok(first.summary.clone()),
        LoadSummary::K6(_) => {
            return Err(Error::BadSummary {
                pod: first.pod.clone(),
                reason: "k6 summaries of several pods cannot be merged exactly".to_owned(),
            });
        }
    };
    for p in rest {
        let LoadSummary::Wasmbench(other) = &p.summary else {
            return Err(Error::BadSummary {
                pod: p.pod.clone(),
                reason: "not a wasmbench summary".to_owned(),
            });
        };
        total.merge(other).map_err(|e| Error::BadSummary {
            pod: p.pod.clone(),
            reason: format!(
                "cannot merge it with the others: {}",
                one_line(e.to_string())
            ),
        })?;
    }
    Ok(LoadSummary::Wasmbench(Box::new(total)))
}

fn node_info(n: &Node) -> NodeInfo {
    let spec = n.spec.as_ref();
    let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let tainted = spec.and_then(|s| s.taints.as_ref()).is_some_and(|t| {
        t.iter()
            .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    });
    let status = n.status.as_ref();
    let info = status.and_then(|s| s.node_info.as_ref());
    let field = |f: fn(&k8s_openapi::api::core::v1::NodeSystemInfo) -> &String| {
        info.map(f).cloned().unwrap_or_default()
    };
    let capacity = |name: &str| {
        status
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get(name))
            .map(|q| q.0.clone())
    };
    NodeInfo {
        name: n.metadata.name.clone().unwrap_or_default(),
        schedulable: !cordoned && !tainted,
        kubelet_version: field(|i| &i.kubelet_version),
        container_runtime_version: field(|i| &i.container_runtime_version),
        kernel_version: field(|i| &i.kernel_version),
        os_image: field(|i| &i.os_image),
        architecture: field(|i| &i.architecture),
        cpu_capacity: capacity("cpu").unwrap_or_default(),
        memory_capacity_bytes: capacity("memory")
            .and_then(|q| quantity_bytes(&q))
            .unwrap_or(0),
    }
}

/// A Kubernetes memory quantity (`16Gi`, `16384Ki`, `1G`, `1e9`, `17179869184`) in bytes.
pub fn quantity_bytes(q: &str) -> Option<u64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let q = q.trim();
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let v: f64 = number.parse().ok()?;
    (v >= 0.0 && v.is_finite()).then(|| (v * factor).round() as u64)
}

/// Whole CPUs of a CPU quantity (`4`, `3500m`), at least 1.
pub fn quantity_cpus(q: &str) -> u32 {
    let q = q.trim();
    let cpus = match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map(|m| m / 1000.0),
        None => q.parse::<f64>(),
    };
    cpus.map_or(1, |c| (c.floor() as u32).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_between_markers_wins() {
        let log = format!(
            "starting\n{{\"not\": \"this\"}}\n{SUMMARY_BEGIN}\n{{\"requests\": 5}}\n{SUMMARY_END}\n"
        );
        assert_eq!(extract_summary(&log).unwrap()["requests"], 5);
    }

    #[test]
    fn summary_last_json_object_in_plain_log() {
        let log = "progress 10%\n{\"a\": 1}\nprogress 100%\n{\n  \"requests\": 7,\n  \"nested\": {\"x\": [1,2]}\n}\ndone\n";
        let v = extract_summary(log).unwrap();
        assert_eq!(v["requests"], 7);
        assert!(extract_summary("no json here\n{broken\n").is_none());
    }

    #[test]
    fn missing_kubeconfig_is_one_clear_line() {
        let opts = ClusterOptions {
            kubeconfig: Some(PathBuf::from("/nonexistent/kubeconfig")),
            ..Default::default()
        };
        let err = kubeconfig_path(&opts).unwrap_err();
        let msg = err.to_string();
        assert!(err.is_cluster_unreachable());
        assert!(!msg.contains('\n'));
        assert!(
            msg.contains("/nonexistent/kubeconfig") && msg.contains("--kubeconfig"),
            "{msg}"
        );
    }
}
