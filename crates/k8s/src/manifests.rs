//! Kubernetes objects for one run, as typed `k8s-openapi` values and as YAML.
//!
//! Per variant: a Deployment + Service for the echo server and a load Job that runs the
//! `wasmbench` image. All objects carry the labels in [`labels`] so a run can be found and
//! deleted as a unit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvVar, HTTPGetAction, Namespace, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

pub use crate::image::Images;
use crate::server::{OwnService, Server};
use crate::variant::{ImageKind, Variant};
use crate::{Error, image};

/// Label: always `wasmbench`.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label: the run id; selects everything one run created.
pub const LABEL_RUN: &str = "wasmbench.dev/run";
/// Label: the variant name.
pub const LABEL_VARIANT: &str = "wasmbench.dev/variant";
/// Label: `server` or `load`.
pub const LABEL_ROLE: &str = "wasmbench.dev/role";
/// Markers around the JSON summary in a load pod's log.
pub const SUMMARY_BEGIN: &str = "----- wasmbench summary begin -----";
/// See [`SUMMARY_BEGIN`].
pub const SUMMARY_END: &str = "----- wasmbench summary end -----";
/// The uid/gid every pod runs as.
pub const RUN_AS: i64 = image::NONROOT_UID as i64;
/// The demo's k6 script, run by `--load-engine k6` Jobs.
pub const K6_SCRIPT: &str = include_str!("k6-demo.js");
/// The ConfigMap holding [`K6_SCRIPT`], and the file name it is mounted as.
pub const K6_SCRIPT_CONFIG_MAP: &str = "load-k6-script";
const K6_SCRIPT_FILE: &str = "demo.js";
const K6_SCRIPT_DIR: &str = "/scripts";

pub use wasmbench_vocab::{LoadEngine, PodResources};

/// Defaults for an echo server: one CPU at most, so every variant gets the same budget.
/// Wasm runtimes compile the module at start, hence the generous memory limit.
pub fn server_resources_default() -> PodResources {
    PodResources {
        cpu_request: "500m".into(),
        cpu_limit: "1".into(),
        memory_request: "64Mi".into(),
        memory_limit: "256Mi".into(),
    }
}

/// Defaults for one load pod: more CPU than the server so the generator is not the limit.
pub fn load_resources_default() -> PodResources {
    PodResources {
        cpu_request: "1".into(),
        cpu_limit: "2".into(),
        memory_request: "128Mi".into(),
        memory_limit: "512Mi".into(),
    }
}

fn resources_to_k8s(r: &PodResources) -> ResourceRequirements {
    let q = |cpu: &str, mem: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(mem.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(q(&r.cpu_request, &r.memory_request)),
        limits: Some(q(&r.cpu_limit, &r.memory_limit)),
        ..Default::default()
    }
}

fn validate_resources(r: &PodResources, what: &str) -> Result<(), Error> {
    for (name, v) in [
        ("cpu request", &r.cpu_request),
        ("cpu limit", &r.cpu_limit),
        ("memory request", &r.memory_request),
        ("memory limit", &r.memory_limit),
    ] {
        let ok = !v.is_empty()
            && v.chars().next().is_some_and(|c| c.is_ascii_digit())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
        if !ok {
            return Err(Error::InvalidPlan(format!(
                "{what} {name} `{v}` is not a Kubernetes quantity: use e.g. 500m, 1, 128Mi"
            )));
        }
    }
    Ok(())
}

/// The load each variant receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LoadPlan {
    /// Virtual users in total, split evenly over the load pods.
    pub vus: u32,
    /// How long each load pod runs.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Number of load pods (Job `parallelism` and `completions`), each on its own node.
    pub parallelism: u32,
    /// Extra arguments appended to `wasmbench load`.
    pub extra_args: Vec<String>,
    /// What the load pods run.
    #[serde(default)]
    pub engine: LoadEngine,
    /// Path (and query) of the load request.
    #[serde(default = "root_path")]
    pub path: String,
}

fn root_path() -> String {
    "/".to_owned()
}

mod duration_ms {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_millis(ms))
    }
}

impl Default for LoadPlan {
    fn default() -> Self {
        LoadPlan {
            vus: wasmbench_vocab::demo::VUS,
            duration: wasmbench_vocab::demo::DURATION,
            parallelism: 1,
            extra_args: Vec::new(),
            engine: LoadEngine::default(),
            path: root_path(),
        }
    }
}

impl LoadPlan {
    /// VUs per load pod. The split must be exact so the merged result has the planned load.
    pub fn vus_per_pod(&self) -> Result<u32, Error> {
        if self.parallelism == 0 {
            return Err(Error::InvalidPlan(
                "--parallelism must be at least 1".to_owned(),
            ));
        }
        if self.vus < self.parallelism || !self.vus.is_multiple_of(self.parallelism) {
            return Err(Error::InvalidPlan(format!(
                "--vus {} cannot be split evenly over --parallelism {}: use a multiple of {}",
                self.vus, self.parallelism, self.parallelism
            )));
        }
        Ok(self.vus / self.parallelism)
    }

    /// The most load pods `nodes` nodes can take, one per node, with the VUs split evenly.
    pub fn pods_for_nodes(&self, nodes: u32) -> u32 {
        (1..=nodes.max(1))
            .rev()
            .find(|n| self.vus.is_multiple_of(*n))
            .unwrap_or(1)
    }

    /// `--duration` as both load engines take it: `30s`, or `1500ms`.
    pub fn duration_arg(&self) -> String {
        let ms = self.duration.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }
}

/// Everything that decides the objects of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunSpec {
    /// Short lowercase id; part of object labels and of the default namespace name.
    pub run_id: String,
    /// Namespace the run's objects live in.
    pub namespace: String,
    /// The project's variants to deploy and load, in order.
    pub variants: Vec<Variant>,
    /// A user's service, deployed after the variants (`--native-image`, `--wasm-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<OwnService>,
    /// Image references.
    pub images: Images,
    /// Requests/limits of each echo pod.
    pub server_resources: PodResources,
    /// Requests/limits of each load pod.
    pub load_resources: PodResources,
    /// The load plan.
    pub load: LoadPlan,
    /// Keep each variant's load pods off the node running its echo server (set when the
    /// other schedulable nodes can take every load pod).
    pub separate_load: bool,
}

impl serde::Serialize for Variant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Variant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl RunSpec {
    /// A spec with default images, resources and load, in namespace `wasmbench-<run_id>`.
    pub fn new(run_id: &str, variants: Vec<Variant>) -> RunSpec {
        RunSpec {
            run_id: run_id.to_owned(),
            namespace: format!("wasmbench-{run_id}"),
            variants,
            own: None,
            images: Images::default(),
            server_resources: server_resources_default(),
            load_resources: load_resources_default(),
            load: LoadPlan::default(),
            separate_load: false,
        }
    }

    /// Checks names, quantities and the load split; call before generating objects.
    pub fn validate(&self) -> Result<(), Error> {
        let dns_label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !dns_label(&self.run_id) || self.run_id.len() > 20 {
            return Err(Error::InvalidPlan(format!(
                "run id `{}` must be 1-20 lowercase letters, digits or `-`",
                self.run_id
            )));
        }
        if !dns_label(&self.namespace) {
            return Err(Error::InvalidPlan(format!(
                "namespace `{}` is not a valid name: use lowercase letters, digits and `-`",
                self.namespace
            )));
        }
        if let Some(own) = &self.own {
            own.validate()?;
        }
        if self.servers().is_empty() {
            return Err(Error::InvalidPlan("no variant selected".to_owned()));
        }
        if self.images.tag.is_empty() || self.images.tag == "latest" {
            return Err(Error::InvalidPlan(
                "image tag must be a version, not empty or `latest` (which forces a pull): pass e.g. --image-tag 0.1.0"
                    .to_owned(),
            ));
        }
        if self.variants.contains(&Variant::Spin) && self.images.spin.is_none() {
            return Err(Error::InvalidPlan(
                "the spin variant needs a Spin application image (wasmbench does not build one): pass --spin-image REF or drop spin from --variants".to_owned(),
            ));
        }
        if !self.load.path.starts_with('/') {
            return Err(Error::InvalidPlan(format!(
                "--path `{}` must start with `/`, e.g. /kv/answer",
                self.load.path
            )));
        }
        if self.load.duration.is_zero() {
            return Err(Error::InvalidPlan("--duration must be above 0".to_owned()));
        }
        validate_resources(&self.server_resources, "server")?;
        validate_resources(&self.load_resources, "load")?;
        self.load.vus_per_pod()?;
        if self.load.engine == LoadEngine::K6 {
            // k6's export has no histograms: two pods' percentiles cannot be merged exactly.
            if self.load.parallelism != 1 {
                return Err(Error::InvalidPlan(format!(
                    "--load-engine k6 runs in one load pod (k6's summary has no histograms to merge exactly), not --parallelism {}: use --parallelism 1",
                    self.load.parallelism
                )));
            }
            if let Some(flag) = self.load.extra_args.iter().find(|a| a.starts_with("--")) {
                return Err(Error::InvalidPlan(format!(
                    "--load-engine k6 runs the demo's script (GET /, checks {}): only --vus and --duration apply, drop {flag}",
                    wasmbench_vocab::demo::CHECKS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Labels on every object of the run.
    pub fn run_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), "wasmbench".to_owned()),
            (LABEL_RUN.to_owned(), self.run_id.clone()),
        ])
    }

    /// Label selector string for everything of the run.
    pub fn run_selector(&self) -> String {
        format!("{LABEL_MANAGED_BY}=wasmbench,{LABEL_RUN}={}", self.run_id)
    }

    /// Every server of the run: the project's variants, then the user's images.
    pub fn servers(&self) -> Vec<Server> {
        let mut out: Vec<Server> = self
            .variants
            .iter()
            .map(|&v| Server::of_variant(v, &self.images))
            .collect();
        if let Some(own) = &self.own {
            out.extend(own.servers());
        }
        out
    }

    /// Name of the load Job of `s`.
    pub fn job_name(s: &Server) -> String {
        format!("load-{}", s.name)
    }

    /// In-cluster URL of `s`'s Service, as the load pods' arguments carry it.
    pub fn service_url(&self, s: &Server) -> String {
        // The kubelet expands `$(NAME_SERVICE_HOST)` in a container's arguments from the
        // Service's environment variables, so the load pods need no cluster DNS (many small
        // clusters have none) and spend no lookup time inside `http_req_blocked`.
        let env = s.object_name().to_uppercase().replace('-', "_");
        format!(
            "http://$({env}_SERVICE_HOST):$({env}_SERVICE_PORT){}",
            self.load.path
        )
    }

    /// `service_url` with the Service's DNS name and port in place of the variables, for
    /// checking the load pods' arguments before anything is deployed.
    pub fn service_dns_url(&self, s: &Server) -> String {
        format!(
            "http://{}.{}.svc:{}{}",
            s.object_name(),
            self.namespace,
            s.port,
            self.load.path
        )
    }
}

/// Labels of one server's objects with `role` (`server` or `load`).
pub fn labels(spec: &RunSpec, s: &Server, role: &str) -> BTreeMap<String, String> {
    let mut l = spec.run_labels();
    l.insert(LABEL_VARIANT.to_owned(), s.name.clone());
    l.insert(LABEL_ROLE.to_owned(), role.to_owned());
    l.insert("app.kubernetes.io/name".to_owned(), "wasmbench".to_owned());
    l
}

/// The run's Namespace.
pub fn namespace(spec: &RunSpec) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(spec.namespace.clone()),
            labels: Some(spec.run_labels()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The RuntimeClass `s` needs (`None` for native). Handlers are named like their RuntimeClass,
/// which is how `deploy/kind` configures containerd and CRI-O.
pub fn runtime_class(s: &Server) -> Option<RuntimeClass> {
    let name = s.runtime_class.as_deref()?;
    Some(RuntimeClass {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                LABEL_MANAGED_BY.to_owned(),
                "wasmbench".to_owned(),
            )])),
            ..Default::default()
        },
        handler: name.to_owned(),
        ..Default::default()
    })
}

fn restricted_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env<K: AsRef<str>>(pairs: &[(K, String)]) -> Option<Vec<EnvVar>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| EnvVar {
                name: k.as_ref().to_owned(),
                value: Some(v.clone()),
                ..Default::default()
            })
            .collect()
    })
}

/// The kubelet's readiness check of `s`: `GET <ready path>`, or a TCP connection to its port.
fn readiness_probe(s: &Server) -> Probe {
    let port = IntOrString::String("http".to_owned());
    Probe {
        http_get: s.ready_path.as_ref().map(|path| HTTPGetAction {
            path: Some(path.clone()),
            port: port.clone(),
            ..Default::default()
        }),
        tcp_socket: s.ready_path.is_none().then(|| TCPSocketAction {
            port,
            ..Default::default()
        }),
        // Every second: the pod's start is timed to its first success.
        period_seconds: Some(1),
        timeout_seconds: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// The Deployment of `s` (one replica).
pub fn deployment(spec: &RunSpec, s: &Server) -> Deployment {
    let labels = labels(spec, s, "server");
    let port = i32::from(s.port);
    let container = Container {
        name: "server".to_owned(),
        image: Some(s.image.clone()),
        image_pull_policy: Some(s.pull_policy.clone()),
        env: env(&s.env),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: port,
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]),
        // The kubelet probes the pod IP from the node, so it works the same whether the
        // listener lives in a native process or inside a Wasm runtime.
        readiness_probe: Some(readiness_probe(s)),
        resources: Some(resources_to_k8s(&spec.server_resources)),
        security_context: Some(restricted_container_security()),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(s.object_name()),
            namespace: Some(spec.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(server_selector(spec, s)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: (!s.annotations.is_empty()).then(|| s.annotations.clone()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    runtime_class_name: s.runtime_class.clone(),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(restricted_pod_security()),
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The labels that select `s`'s server pods.
fn server_selector(spec: &RunSpec, s: &Server) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_RUN.to_owned(), spec.run_id.clone()),
        (LABEL_VARIANT.to_owned(), s.name.clone()),
        (LABEL_ROLE.to_owned(), "server".to_owned()),
    ])
}

/// The ClusterIP Service in front of `s`'s Deployment.
pub fn service(spec: &RunSpec, s: &Server) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(s.object_name()),
            namespace: Some(spec.namespace.clone()),
            labels: Some(labels(spec, s, "server")),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(server_selector(spec, s)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: i32::from(s.port),
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `wasmbench load` arguments of one load pod.
pub fn load_args(spec: &RunSpec, v: &Server) -> Result<Vec<String>, Error> {
    let per_pod = spec.load.vus_per_pod()?;
    let mut args = match spec.load.engine {
        LoadEngine::Wasmbench => vec![
            "load".to_owned(),
            spec.service_url(v),
            "--vus".to_owned(),
            per_pod.to_string(),
            "--duration".to_owned(),
            spec.load.duration_arg(),
            "--json".to_owned(),
            "/dev/stdout".to_owned(),
            // A new Service answers on a node only once its kube-proxy has caught up.
            "--wait-ready".to_owned(),
            "30s".to_owned(),
        ],
        LoadEngine::K6 => vec![
            "run".to_owned(),
            "--quiet".to_owned(),
            "--no-color".to_owned(),
            // Nothing leaves the cluster: no usage report, no REST API listener.
            "--no-usage-report".to_owned(),
            "--address".to_owned(),
            String::new(),
            // One stream, so the export's lines are never interleaved with log lines.
            "--log-output".to_owned(),
            "stdout".to_owned(),
            "--vus".to_owned(),
            per_pod.to_string(),
            "--duration".to_owned(),
            spec.load.duration_arg(),
            "--summary-trend-stats".to_owned(),
            wasmbench_load::k6::K6_TREND_STATS.to_owned(),
            "--summary-export".to_owned(),
            "/dev/stdout".to_owned(),
            "-e".to_owned(),
            format!("TARGET_URL={}", spec.service_url(v)),
            format!("{K6_SCRIPT_DIR}/{K6_SCRIPT_FILE}"),
        ],
    };
    args.extend(spec.load.extra_args.iter().cloned());
    Ok(args)
}

/// The ConfigMap with the demo's k6 script, for `--load-engine k6` runs.
pub fn k6_script_config_map(spec: &RunSpec) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(K6_SCRIPT_CONFIG_MAP.to_owned()),
            namespace: Some(spec.namespace.clone()),
            labels: Some(spec.run_labels()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            K6_SCRIPT_FILE.to_owned(),
            K6_SCRIPT.to_owned(),
        )])),
        ..Default::default()
    }
}

/// The load container's image and volumes: k6 reads its script from the ConfigMap and
/// needs a writable home and /tmp (the root filesystem is read-only).
fn load_volumes(
    spec: &RunSpec,
) -> (
    ImageKind,
    Vec<Volume>,
    Vec<VolumeMount>,
    Option<Vec<EnvVar>>,
) {
    match spec.load.engine {
        LoadEngine::Wasmbench => (ImageKind::Wasmbench, Vec::new(), Vec::new(), None),
        LoadEngine::K6 => (
            ImageKind::K6,
            vec![
                Volume {
                    name: "script".to_owned(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: K6_SCRIPT_CONFIG_MAP.to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "tmp".to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                },
            ],
            vec![
                VolumeMount {
                    name: "script".to_owned(),
                    mount_path: K6_SCRIPT_DIR.to_owned(),
                    read_only: Some(true),
                    ..Default::default()
                },
                VolumeMount {
                    name: "tmp".to_owned(),
                    mount_path: "/tmp".to_owned(),
                    ..Default::default()
                },
            ],
            env(&[("HOME", "/tmp".to_owned())]),
        ),
    }
}

/// The load Job of server `v`: `parallelism` = `completions` = N pods on N different nodes, each
/// running `wasmbench load <service-url> --vus VUS/N --duration D --json /dev/stdout`. The
/// driver reads each pod's summary back from its log and merges them.
pub fn load_job(spec: &RunSpec, v: &Server) -> Result<Job, Error> {
    let n = i32::try_from(spec.load.parallelism)
        .map_err(|_| Error::InvalidPlan("--parallelism is too large".to_owned()))?;
    let labels = labels(spec, v, "load");
    let on_other_node = |role: &str| PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([
                (LABEL_RUN.to_owned(), spec.run_id.clone()),
                (LABEL_VARIANT.to_owned(), v.name.clone()),
                (LABEL_ROLE.to_owned(), role.to_owned()),
            ])),
            ..Default::default()
        }),
        topology_key: "kubernetes.io/hostname".to_owned(),
        ..Default::default()
    };
    // Required, not preferred. One load pod per node, so N pods are N machines' worth of
    // client and their placement is known. Off the node of the server they load (only when
    // another node exists): a load generator next to the server steals its CPU and skews the
    // comparison. The other variants' servers sit idle while this one is loaded, so they may
    // share a node with its load pods.
    let mut terms = vec![on_other_node("load")];
    if spec.separate_load {
        terms.push(on_other_node("server"));
    }
    let affinity = Some(Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(terms),
            ..Default::default()
        }),
        ..Default::default()
    });
    let deadline = spec.load.duration.as_secs() as i64 + 300;
    let (image, volumes, mounts, load_env) = load_volumes(spec);
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(RunSpec::job_name(v)),
            namespace: Some(spec.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            parallelism: Some(n),
            completions: Some(n),
            // Indexed: pod names and logs map to a stable index 0..N.
            completion_mode: Some("Indexed".to_owned()),
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_owned()),
                    automount_service_account_token: Some(false),
                    // The Service's address reaches the load arguments through these variables.
                    enable_service_links: Some(true),
                    security_context: Some(restricted_pod_security()),
                    affinity,
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    containers: vec![Container {
                        name: "load".to_owned(),
                        image: Some(spec.images.reference(image)),
                        image_pull_policy: Some("IfNotPresent".to_owned()),
                        args: Some(load_args(spec, v)?),
                        env: load_env,
                        volume_mounts: (!mounts.is_empty()).then_some(mounts),
                        resources: Some(resources_to_k8s(&spec.load_resources)),
                        security_context: Some(restricted_container_security()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// All objects of a run, in apply order.
#[derive(Debug, Clone)]
pub struct RunObjects {
    /// The run namespace.
    pub namespace: Namespace,
    /// RuntimeClasses the project's variants need (cluster-scoped); a user's are their own.
    pub runtime_classes: Vec<RuntimeClass>,
    /// Per server: Deployment, Service, load Job.
    pub variants: Vec<(Server, Deployment, Service, Job)>,
    /// ConfigMaps the load Jobs mount (the k6 script), in the run namespace.
    pub config_maps: Vec<ConfigMap>,
}

/// Builds every object of `spec` after validating it.
pub fn build(spec: &RunSpec) -> Result<RunObjects, Error> {
    spec.validate()?;
    let mut runtime_classes = Vec::new();
    let servers = spec.servers();
    // A user's RuntimeClass is theirs: it is read, never written.
    for s in servers.iter().filter(|s| s.variant.is_some()) {
        if let Some(rc) = runtime_class(s).filter(|rc| !runtime_classes.contains(rc)) {
            runtime_classes.push(rc);
        }
    }
    let variants = servers
        .into_iter()
        .map(|s| {
            let (d, svc, job) = (deployment(spec, &s), service(spec, &s), load_job(spec, &s)?);
            Ok((s, d, svc, job))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(RunObjects {
        namespace: namespace(spec),
        runtime_classes,
        variants,
        config_maps: match spec.load.engine {
            LoadEngine::Wasmbench => Vec::new(),
            LoadEngine::K6 => vec![k6_script_config_map(spec)],
        },
    })
}

/// Serialises objects as one multi-document YAML stream.
pub fn to_yaml<T: Serialize>(objects: &[T]) -> Result<String, Error> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(o).map_err(|e| Error::Serialize {
            what: "manifest".to_owned(),
            reason: e.to_string(),
        })?);
    }
    Ok(out)
}

fn yaml_values(objs: &[&dyn erased::Obj]) -> Result<String, Error> {
    let values = objs
        .iter()
        .map(|o| o.value())
        .collect::<Result<Vec<_>, _>>()?;
    to_yaml(&values)
}

mod erased {
    use crate::Error;

    pub trait Obj {
        fn value(&self) -> Result<serde_json::Value, Error>;
    }
    impl<T: serde::Serialize> Obj for T {
        fn value(&self) -> Result<serde_json::Value, Error> {
            serde_json::to_value(self).map_err(|e| Error::Serialize {
                what: "manifest".to_owned(),
                reason: e.to_string(),
            })
        }
    }
}

/// Writes the run's objects as YAML files into `dir`, one file per concern, and returns their
/// paths: `00-namespace.yaml`, `01-runtimeclasses.yaml`, `10-server-<variant>.yaml`,
/// `20-load-<variant>.yaml`. Apply with `kubectl apply -f DIR`.
pub fn write_dir(spec: &RunSpec, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let objects = build(spec)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<(String, String)> = vec![(
        "00-namespace.yaml".to_owned(),
        yaml_values(&[&objects.namespace])?,
    )];
    if !objects.runtime_classes.is_empty() {
        files.push((
            "01-runtimeclasses.yaml".to_owned(),
            to_yaml(&objects.runtime_classes)?,
        ));
    }
    if !objects.config_maps.is_empty() {
        files.push((
            "05-load-config.yaml".to_owned(),
            to_yaml(&objects.config_maps)?,
        ));
    }
    for (v, d, s, j) in &objects.variants {
        files.push((format!("10-server-{}.yaml", v.name), yaml_values(&[d, s])?));
        files.push((format!("20-load-{}.yaml", v.name), yaml_values(&[j])?));
    }
    let mut paths = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        paths.push(p);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests;
