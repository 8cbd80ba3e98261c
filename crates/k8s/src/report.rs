//! A cluster run as the same [`Comparison`] a local run produces: what the driver observed is
//! handed to `wasmbench_report::assemble`, the one path both platforms share, so figures,
//! statistics, explanation and warnings are computed once for both.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use wasmbench_report::assemble::{self, Measured, MeasuredRun, PlanContext};
use wasmbench_report::{
    self as r, Comparison, Environment, KubernetesEnv, Placement, Platform, RuntimeInfo, UNKNOWN,
    VariantStatus,
};

use crate::Error;
use crate::Server;
use crate::driver::{LoadSummary, RunOutcome, SkippedVariant, VariantOutcome};

/// What the report needs besides the driver's outcome.
#[derive(Debug, Clone)]
pub struct ReportOptions<'a> {
    /// The load plan every load pod ran (the one `wasmbench load` builds from the pod's
    /// arguments); the report states it even when no variant got to its load.
    pub load_plan: &'a wasmbench_load::Plan,
    /// The command line, one argument per element.
    pub command_line: Vec<String>,
    /// Variants not run, and why.
    pub skipped: &'a [SkippedVariant],
    /// When set, every run's merged summary is written there as `<variant>-r1.json` and each
    /// load pod's summary, as it printed it, as `pods/<pod>.json`.
    pub raw_dir: Option<&'a Path>,
}

/// Fairness conditions of a cluster run, in words; the resources are added from the spec.
const FAIRNESS: [&str; 3] = [
    "same workload source (crates/echo) in every image, built by `wasmbench image build`",
    "one echo pod per variant, all deployed before the first load; variants loaded one after another by the same load Job, from inside the cluster through the variant's Service",
    "load pods one per node, kept off the node of the server they load when the other nodes can take them all",
];

/// The comparison of a cluster run. Writes the raw summaries when asked.
pub fn comparison(o: &RunOutcome, opts: &ReportOptions<'_>) -> Result<Comparison, Error> {
    let spec = &o.spec;
    if let Some(dir) = opts.raw_dir {
        write_raw(o, dir)?;
    }
    let mut fairness: Vec<String> = FAIRNESS.iter().map(|s| s.to_string()).collect();
    let mut workload = "echo".to_owned();
    if let Some(own) = &spec.own {
        // The user's images: only what the run was told of them.
        fairness[0] = format!(
            "the user's images, as named: {}",
            own.servers()
                .iter()
                .map(|s| format!("{} {}", s.name, s.image))
                .collect::<Vec<_>>()
                .join(", ")
        );
        workload = "the user's service".to_owned();
    }
    fairness.push(format!(
        "every echo pod: {}; every load pod: {}",
        resources_text(&spec.server_resources),
        resources_text(&spec.load_resources)
    ));
    let how = PlanContext {
        workload,
        load_generators: spec.load.parallelism,
        load_engine: spec.load.engine,
        repeats: 1,
        design: None,
        server_cpu_limit: None,
        warmup: Duration::ZERO,
        cold_start_samples: 0,
        cpu_pinning: None,
        fairness,
        readiness: None,
    };

    let mut variants: Vec<(Server, r::VariantResult)> = Vec::new();
    for v in &o.variants {
        variants.push((v.server.clone(), ran(o, v, opts.raw_dir.is_some())));
    }
    for s in spec.servers() {
        if !o.variants.iter().any(|x| x.server.name == s.name) {
            let result = not_run(&s, "not run: the run was interrupted before its load");
            variants.push((s, result));
        }
    }
    for s in opts.skipped {
        let server = Server::of_variant(s.variant, &spec.images);
        let result = not_run(&server, &s.reason);
        variants.push((server, result));
    }
    // Report order: the variants' declared order, native (the baseline) first; a user's
    // native image before their Wasm ones, in the order given.
    let order = spec.servers();
    variants.sort_by_key(|(s, _)| {
        (
            s.variant,
            s.runtime_class.is_some(),
            order.iter().position(|o| o.name == s.name),
        )
    });

    let ours = env!("CARGO_PKG_VERSION");
    let mut warnings = Vec::new();
    for v in &o.variants {
        for p in &v.load_pods {
            if let Some(theirs) = p.summary.wasmbench_version().filter(|t| *t != ours) {
                warnings.push(format!(
                    "{}: load pod {} ran wasmbench {theirs} while this is {ours}; use --image-tag {ours} for identical load generators",
                    v.server.name, p.pod
                ));
            }
        }
    }

    warnings.extend(o.notes.iter().cloned());

    Ok(assemble::comparison(Measured {
        started_at: o.started_at,
        ended_at: o.ended_at,
        command_line: opts.command_line.clone(),
        partial: o.partial,
        environment: environment(o),
        plan: assemble::plan(opts.load_plan, &how),
        variants: variants.into_iter().map(|(_, v)| v).collect(),
        warnings,
        precision: None,
    }))
}

fn resources_text(r: &r::PodResources) -> String {
    format!(
        "CPU request {} / limit {}, memory request {} / limit {}",
        r.cpu_request, r.cpu_limit, r.memory_request, r.memory_limit
    )
}

/// What is known of the runtime of `v` without having run it: the RuntimeClass handler it
/// would use and the mode the variant declares (nothing for a user's Wasm image).
fn runtime(v: &Server, handler: Option<&str>) -> RuntimeInfo {
    let mut details = BTreeMap::new();
    let name = match v.runtime_class.as_deref() {
        None => {
            details.insert(
                "runtime_class".into(),
                "none (the node's default runtime)".into(),
            );
            "native".to_owned()
        }
        Some(rc) => {
            details.insert("runtime_class".into(), rc.to_owned());
            let mode = match v.variant {
                Some(_) => "declared by the variant; the node does not report it",
                None => "not reported by the runtime, not declared",
            };
            details.insert("mode".into(), mode.into());
            handler.unwrap_or(rc).to_owned()
        }
    };
    RuntimeInfo {
        name,
        // No Kubernetes API reports a handler's (or the image's compiler's) version.
        version: UNKNOWN.into(),
        mode: v.exec_mode(),
        target: v.target(),
        pooling: None,
        details,
    }
}

/// What the server pod's runtime reported about itself replaces what the variant declares.
fn observed_runtime(runtime: &mut RuntimeInfo, report: &serde_json::Value) {
    let text = |k: &str| report.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(version) = text("wasmtime_version") {
        runtime.version = format!("wasmtime {version}");
    }
    if let Some(mode) = report
        .get("mode")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
    {
        runtime.mode = mode;
    }
    if let Some(target) = report
        .get("target")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
    {
        runtime.target = target;
    }
    runtime.pooling = report.get("pooling").and_then(serde_json::Value::as_bool);
    runtime.details.insert(
        "mode".into(),
        "observed: the runtime's host report in the server pod's log".into(),
    );
    for key in [
        "compile_ms",
        "load_ms",
        "instantiate_ms",
        "pre_instantiate_ms",
    ] {
        if let Some(ms) = report.get(key).and_then(serde_json::Value::as_f64) {
            runtime.details.insert(key.into(), format!("{ms:.1}"));
        }
    }
    // A wasi:http host's report: the key names the local runs use, so the runtime line reads
    // the same ("wasi:http 0.3, instance per request").
    if let Some(version) = text("wasi_http") {
        runtime.details.insert("host.wasi_http".into(), version);
    }
    if let Some(n) = report
        .get("instance_reuse")
        .and_then(serde_json::Value::as_u64)
    {
        runtime
            .details
            .insert("instance_reuse".into(), n.to_string());
    }
}

fn not_run(v: &Server, reason: &str) -> r::VariantResult {
    let mut runtime = runtime(v, None);
    runtime.details.insert("image".into(), v.image.clone());
    r::VariantResult {
        name: v.name.clone(),
        runtime,
        workload_mode: v.workload_mode().map(str::to_owned),
        not_started: false,
        artifact: None,
        status: VariantStatus::Skipped,
        reason: Some(reason.to_owned()),
        runs: Vec::new(),
        callgrind: None,
        aggregate: r::Aggregate::default(),
    }
}

fn raw_name(v: &Server) -> String {
    format!("{}-r1.json", v.name)
}

fn ran(o: &RunOutcome, v: &VariantOutcome, raw: bool) -> r::VariantResult {
    let mut runtime = runtime(&v.server, v.handler.as_deref());
    let server = v.server_pods.first();
    if let Some(report) = server.and_then(|p| p.host_report.as_ref()) {
        observed_runtime(&mut runtime, report);
    }
    if let Some(image) = server.and_then(|p| p.image.clone()) {
        runtime.details.insert("image".into(), image);
    }
    if let Some(id) = server.and_then(|p| p.image_id.clone()) {
        runtime.details.insert("image_id".into(), id);
    }
    if let Some(node) = server
        .and_then(|p| p.node.as_deref())
        .and_then(|n| o.nodes.iter().find(|x| x.name == n))
    {
        runtime.details.insert(
            "container_runtime".into(),
            node.container_runtime_version.clone(),
        );
    }
    let start = server.and_then(|p| p.start);
    if let Some(text) = start.map(start_text) {
        runtime.details.insert("pod_start".into(), text);
    }
    if let Some(u) = &v.usage {
        runtime.details.insert("server_usage".into(), usage_text(u));
    }
    let (status, reason, runs) = match &v.summary {
        Ok(summary) => (
            VariantStatus::Ok,
            None,
            vec![assemble::run_result(&MeasuredRun {
                repeat: 0,
                summary: summary.figures(),
                // The pod's creation → Ready, from its timestamps (whole seconds).
                cold_start_ms: start
                    .and_then(|s| s.ready_s)
                    .map(|s| vec![s as f64 * 1000.0])
                    .unwrap_or_default(),
                server: v.usage.map(|u| {
                    r::ServerUsage::from_kubelet(
                        u.cpu_ms,
                        summary.figures().http_reqs(),
                        u.memory_peak_bytes,
                        u.memory_avg_bytes,
                    )
                }),
                loadgen: None,
                server_counts: None,
                raw_summary_file: raw.then(|| raw_name(&v.server)),
                capacity: None,
                // Pods are placed by the kubelet, not pinned by this process.
                cpu_round_trip_ns: None,
            })],
        ),
        Err(why) => (VariantStatus::Failed, Some(why.clone()), Vec::new()),
    };
    r::VariantResult {
        name: v.server.name.clone(),
        runtime,
        workload_mode: v.server.workload_mode().map(str::to_owned),
        not_started: false,
        artifact: server.and_then(image_artifact),
        status,
        reason,
        runs,
        callgrind: None,
        aggregate: r::Aggregate::default(),
    }
}

/// The parts of a pod's start, in words.
fn start_text(s: crate::kubelet::PodStart) -> String {
    let part = |name: &str, v: Option<i64>| v.map(|v| format!("{name} +{v} s"));
    let parts: Vec<String> = [
        part("scheduled", s.scheduled_s),
        part("container started", s.started_s),
        part("ready", s.ready_s),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "from creation: {} (the pod's timestamps, whole seconds)",
        parts.join(", ")
    )
}

/// How the server's CPU and memory were read, in words.
fn usage_text(u: &crate::kubelet::WindowUsage) -> String {
    let idle = match u.idle_cores {
        Some(c) => format!("idle rate {:.1} ms/s subtracted", c * 1000.0),
        None => "no idle reading to subtract".to_owned(),
    };
    format!(
        "kubelet Summary API: the pod cgroup's CPU (user + system) and RSS between readings {:.1} s apart around the load; {idle}",
        u.span.as_secs_f64()
    )
}

/// The server's image as the artifact: its reference, digest and the size its node lists.
fn image_artifact(p: &crate::driver::ServerPod) -> Option<r::ArtifactInfo> {
    Some(r::ArtifactInfo {
        path: p.image.clone()?,
        size_bytes: p.image_size_bytes?,
        build_ms: 0.0,
        sha256: p
            .image_id
            .as_deref()
            .and_then(|id| id.rsplit_once("sha256:"))
            .map(|(_, hex)| hex.to_owned())
            .unwrap_or_default(),
        compile_ms: None,
        cwasm_size_bytes: None,
    })
}

/// The node the environment's machine fields describe: the baseline's server node, else the
/// first schedulable one.
fn environment(o: &RunOutcome) -> Environment {
    let server_node = o
        .variants
        .iter()
        .flat_map(|v| &v.server_pods)
        .find_map(|p| p.node.clone());
    let node = server_node
        .as_deref()
        .and_then(|n| o.nodes.iter().find(|x| x.name == n))
        .or_else(|| o.nodes.iter().find(|n| n.schedulable))
        .or(o.nodes.first());
    let placements = o
        .variants
        .iter()
        .map(|v| {
            let mut load_pods_per_node = BTreeMap::new();
            for p in &v.load_pods {
                let node = p.node.clone().unwrap_or_else(|| UNKNOWN.into());
                *load_pods_per_node.entry(node).or_insert(0u32) += 1;
            }
            (
                v.server.name.clone(),
                Placement {
                    runtime_class: v.runtime_class.clone(),
                    handler: v.handler.clone(),
                    server_nodes: v
                        .server_pods
                        .iter()
                        .filter_map(|p| p.node.clone())
                        .collect(),
                    load_pods_per_node,
                },
            )
        })
        .collect();
    let mut details = BTreeMap::new();
    if let Some(n) = node {
        details.insert("node".into(), n.name.clone());
    }
    Environment {
        platform: Platform::Kubernetes,
        cpu_model: UNKNOWN.into(),
        cpu_count: node.map_or(1, |n| crate::driver::quantity_cpus(&n.cpu_capacity)),
        kernel: node.map_or_else(|| UNKNOWN.into(), |n| n.kernel_version.clone()),
        os: node.map_or_else(|| UNKNOWN.into(), |n| n.os_image.clone()),
        hostname: None,
        rustc_version: UNKNOWN.into(),
        memory_bytes: node.map_or(0, |n| n.memory_capacity_bytes),
        details,
        kubernetes: Some(KubernetesEnv {
            server_version: o.server_version.clone(),
            namespace: o.spec.namespace.clone(),
            nodes: o.nodes.clone(),
            server_resources: o.spec.server_resources.clone(),
            load_resources: o.spec.load_resources.clone(),
            variants: placements,
            cleaned_up: o.cleaned_up,
        }),
    }
}

/// `<variant>-r1.json` (the merged summary, or the one k6 pod's export) and `pods/<pod>.json` (each pod's, as printed).
fn write_raw(o: &RunOutcome, dir: &Path) -> Result<(), Error> {
    let pods = dir.join("pods");
    std::fs::create_dir_all(&pods).map_err(|e| Error::io(&pods, e))?;
    for v in &o.variants {
        let total = dir.join(raw_name(&v.server));
        match (&v.summary, v.load_pods.first()) {
            (Ok(LoadSummary::Wasmbench(s)), _) => write_json(&total, s)?,
            // One k6 pod: its export is the variant's total.
            (Ok(LoadSummary::K6(_)), Some(p)) => write_json(&total, &p.raw)?,
            _ => {}
        }
        for p in &v.load_pods {
            write_json(&pods.join(format!("{}.json", p.pod)), &p.raw)?;
        }
    }
    Ok(())
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Serialize {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
    wasmbench_vocab::result_file::write(path, text.as_bytes()).map_err(|e| Error::io(path, e))
}
