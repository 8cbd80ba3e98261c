//! The result model: one serialisable [`Comparison`] value that every renderer reads.
//!
//! Units are part of every measured field's name (`_ms`, `_bytes`, `_per_s`/`_rps`, `_s`), so a
//! JSON reader never has to guess. The shape is versioned by [`SCHEMA_VERSION`] and described by
//! `schemas/comparison.schema.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::{Interval, Stat};

pub use wasmbench_vocab::tail::{OverLimit, Tail, TailBucket};
pub use wasmbench_vocab::{
    CodeKind, ConnectionMode, Design, ExecMode, LoadEngine, PlannedRun, Platform, PodResources,
    RuntimeInfo, ServerCounts, SyscallKind, Target, TrendStats, UNKNOWN,
};

/// Version of the JSON shape written by this crate; bump it on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// Phase metrics (k6 names) whose p95 is compared, in the order the demo's table lists them.
pub const PHASES: [&str; 5] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
];

/// The result of comparing variants of one workload under one load plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// Shape version, always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// What produced the result and where.
    pub meta: Meta,
    /// The load plan every variant ran.
    pub plan: PlanRecord,
    /// Name of the variant the others are compared with (usually `native`).
    pub baseline: String,
    /// One entry per variant, in the order they were declared.
    pub variants: Vec<VariantResult>,
    /// Per non-baseline variant: figure → variant median / baseline median.
    /// Filled by [`Comparison::compute_ratios`]; a figure is absent when either side lacks it
    /// or the baseline value is 0.
    pub ratios: BTreeMap<String, BTreeMap<Figure, f64>>,
    /// Per non-baseline variant: figure → 95% interval of its ratio, from a bootstrap over
    /// both variants' repeats ([`crate::ratio_interval`]); absent below two repeats a side.
    #[serde(default)]
    pub ratio_intervals: BTreeMap<String, BTreeMap<Figure, Interval>>,
    /// How precise the headline ratios got, when the run repeated until a precision target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionRecord>,
    /// This run against a saved one (`--baseline DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<crate::saved::SavedComparison>,
    /// Facts that explain the gap between variants, derived by [`crate::explain`].
    pub explanation: Vec<String>,
    /// Things the reader must know before trusting the numbers (noise, failures, thresholds).
    pub warnings: Vec<String>,
}

/// Provenance of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Version of wasmbench that produced the result.
    pub wasmbench_version: String,
    /// Start of the comparison, RFC 3339.
    pub started_at: String,
    /// End of the comparison, RFC 3339.
    pub ended_at: String,
    /// The command line, one argument per element.
    pub command_line: Vec<String>,
    /// True when the run was interrupted and some variants or repeats are missing.
    pub partial: bool,
    /// The machine the variants ran on.
    pub environment: Environment,
}

/// The ratios whose precision decides when a run with a precision target stops: every
/// non-baseline variant's throughput (and capacity, with `--capacity`), p95 time to first
/// byte and CPU per request.
pub const HEADLINE_FIGURES: [Figure; 4] = [
    Figure::ThroughputRps,
    Figure::CapacityRps,
    Figure::HttpReqWaitingP95Ms,
    Figure::ServerCpuMsPer1kReq,
];

/// What a run with a precision target (`--precision`) reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionRecord {
    /// The target: the largest allowed distance from a headline ratio to either bound of its
    /// 95% interval, as a share of the ratio (0.05 for ±5%).
    pub target: f64,
    /// The widest such distance over every headline ratio at the end (the limiting one).
    /// Absent when no ratio had an interval (fewer than two repeats ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<f64>,
    /// The ratio that set `reached`: `variant figure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
    /// Repeats run per variant.
    pub repeats: u32,
    /// Why the repeats stopped.
    pub stopped: PrecisionStop,
    /// The time budget (`--max-time`), seconds.
    pub max_time_s: f64,
}

/// Why a run with a precision target stopped repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrecisionStop {
    /// Every headline ratio's interval was within the target.
    TargetMet,
    /// Another repeat would not have fitted in the time budget.
    TimeBudget,
    /// The repeat cap was reached.
    RepeatCap,
    /// No ratio to make precise: the baseline or every other variant stopped running.
    NothingToCompare,
    /// The run was interrupted.
    Interrupted,
}

impl PrecisionStop {
    /// How a report says it.
    pub fn describe(self) -> &'static str {
        match self {
            PrecisionStop::TargetMet => "target met",
            PrecisionStop::TimeBudget => "time budget spent before the target was met",
            PrecisionStop::RepeatCap => "repeat cap reached before the target was met",
            PrecisionStop::NothingToCompare => {
                "stopped: the baseline or every other variant no longer runs"
            }
            PrecisionStop::Interrupted => "interrupted",
        }
    }
}

/// The widest distance from a headline ratio (variant median / baseline median of each of
/// [`HEADLINE_FIGURES`]) to either bound of its bootstrap interval, as a share of the ratio,
/// over every variant of `others`, with the ratio that has it (`variant figure`). Figures a
/// side did not measure are left out; `None` when a ratio has no interval yet (fewer than two
/// repeats a side) or no ratio exists.
pub fn headline_precision<'a>(
    baseline: &[RunResult],
    others: impl IntoIterator<Item = (&'a str, &'a [RunResult])>,
) -> Option<(f64, String)> {
    let mut worst: Option<(f64, String)> = None;
    for (variant, runs) in others {
        for f in HEADLINE_FIGURES {
            let (a, b) = (figure_samples(runs, f), figure_samples(baseline, f));
            let (Some(sa), Some(sb)) = (Stat::from_samples(&a), Stat::from_samples(&b)) else {
                continue;
            };
            let r = sa.median / sb.median;
            if !r.is_finite() || sb.median == 0.0 {
                continue;
            }
            let w = round_ratio_interval(runs, baseline, f)
                .map_or(f64::INFINITY, |i| i.relative_half_width(r));
            if worst.as_ref().is_none_or(|(x, _)| w > *x) {
                worst = Some((w, format!("{variant} {}", f.label())));
            }
        }
    }
    worst.filter(|(w, _)| w.is_finite())
}

/// The machine (or node) the variants ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Local processes or Kubernetes pods.
    pub platform: Platform,
    /// CPU model string (`/proc/cpuinfo` "model name").
    pub cpu_model: String,
    /// Logical CPUs available.
    pub cpu_count: u32,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Operating system name and version.
    pub os: String,
    /// Host name, when the user allowed recording it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `rustc --version` of the compiler that built the artifacts.
    pub rustc_version: String,
    /// Total memory of the machine.
    pub memory_bytes: u64,
    /// Anything else worth recording (governor, the node the figures above describe...).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// The cluster, when the platform is Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesEnv>,
}

/// The Kubernetes cluster a comparison ran on, as its API reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesEnv {
    /// The API server's version (`/version` `gitVersion`).
    pub server_version: String,
    /// Namespace of the run's objects.
    pub namespace: String,
    /// Every node at the start of the run.
    pub nodes: Vec<NodeInfo>,
    /// Requests and limits of every echo pod.
    pub server_resources: PodResources,
    /// Requests and limits of every load pod.
    pub load_resources: PodResources,
    /// Per variant name: its RuntimeClass and where its pods ran.
    pub variants: BTreeMap<String, Placement>,
    /// Whether the run's objects were deleted afterwards.
    pub cleaned_up: bool,
}

/// One node, from its `status.nodeInfo` and `status.capacity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Whether ordinary pods may run there (not cordoned, no `NoSchedule`/`NoExecute` taint).
    pub schedulable: bool,
    /// `kubeletVersion`.
    pub kubelet_version: String,
    /// `containerRuntimeVersion`, e.g. `containerd://1.7.24`.
    pub container_runtime_version: String,
    /// `kernelVersion`.
    pub kernel_version: String,
    /// `osImage`.
    pub os_image: String,
    /// `architecture`.
    pub architecture: String,
    /// CPU capacity as the node reports it (a quantity, e.g. `4`).
    pub cpu_capacity: String,
    /// Memory capacity.
    pub memory_capacity_bytes: u64,
}

/// Where one variant's pods ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The pods' `runtimeClassName`; `None` runs under the node's default runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class: Option<String>,
    /// The RuntimeClass's handler as the cluster has it, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Nodes of the echo server pods.
    pub server_nodes: Vec<String>,
    /// Node name → number of load pods that ran there.
    pub load_pods_per_node: BTreeMap<String, u32>,
}

/// The request each iteration sent, as a result records it (its body by size only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Size of the request body.
    pub body_bytes: u64,
}

/// CPU affinity of the server and the load generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuPinning {
    /// CPUs the server process may run on.
    pub server_cpus: Vec<u32>,
    /// CPUs the load generator may run on.
    pub load_cpus: Vec<u32>,
}

/// The load plan as a result records it, identical for every variant: what was run, in words
/// and figures (the engine's plan is `wasmbench_load::Plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRecord {
    /// Workload name (`echo`).
    pub workload: String,
    /// The request sent by every iteration.
    pub request: RequestRecord,
    /// Human description of the executor, e.g. `constant-vus 100 VUs for 30s`.
    pub executor: String,
    /// The program that generated the load.
    #[serde(default)]
    pub load_engine: LoadEngine,
    /// Virtual users (maximum for ramping or arrival-rate executors).
    pub vus: u32,
    /// Length of one measured load run.
    pub duration_s: f64,
    /// Keep-alive or a new connection per request.
    pub connection_mode: ConnectionMode,
    /// Check expressions, e.g. `status == 200`.
    pub checks: Vec<String>,
    /// Threshold expressions, e.g. `http_req_duration: p(95)<200`.
    pub thresholds: Vec<String>,
    /// Measured repeats per variant (rounds of blocks in the interleaved design).
    pub repeats: u32,
    /// How the measured load was scheduled across the variants; absent where the run loop
    /// has no choice (Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design: Option<Design>,
    /// Every variant's server was limited to this many CPUs' worth of time (a cgroup CFS
    /// quota, `--server-cpu-limit`); absent without a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_limit: Option<f64>,
    /// Warm-up load before each measured run.
    pub warmup_s: f64,
    /// Cold-start samples taken per repeat.
    pub cold_start_samples: u32,
    /// CPU affinity, `None` when processes were not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pinning: Option<CpuPinning>,
    /// Conditions kept equal across variants (listener options, limits...); differences too.
    pub fairness: Vec<String>,
    /// When a started server counted as ready, e.g. `first 200 on GET /healthz`; cold starts
    /// end there. `None` where no server start was timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
    /// The request mix, when iterations pick one of several requests instead of `request`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<MixEntry>,
}

/// One request of a mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// Name of its sub-metrics.
    pub name: String,
    /// Relative share of the iterations.
    pub weight: u32,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Size of the request body.
    pub body_bytes: u64,
}

/// What one request of a mix measured in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBreakdown {
    /// Requests sent.
    pub http_reqs: u64,
    /// Requests per second of the run.
    pub throughput_rps: f64,
    /// Share of failed requests, 0–1.
    pub http_req_failed_rate: f64,
    /// `http_req_waiting{name:…}`.
    pub waiting: TrendStats,
    /// `http_req_duration{name:…}`.
    pub duration: TrendStats,
}

/// The artifact a variant ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInfo {
    /// Path of the built file.
    pub path: String,
    /// Size of the built file.
    pub size_bytes: u64,
    /// Time `cargo build` took (0 when it was already up to date).
    pub build_ms: f64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Wasm → machine code compilation time, when measured separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_ms: Option<f64>,
    /// Size of the precompiled `.cwasm`, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwasm_size_bytes: Option<u64>,
}

/// Outcome of a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantStatus {
    /// All repeats ran.
    Ok,
    /// Building, starting or loading the variant failed (see `reason`).
    Failed,
    /// The variant was not run (see `reason`), e.g. its runtime is not installed.
    Skipped,
}

/// The [`VariantResult::workload_mode`] of a `wasi:http` component: the host accepts the
/// connections and calls the component's handler once per request.
pub const WASI_HTTP_MODE: &str = "wasi-http";

/// Everything measured for one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantResult {
    /// Unique variant name, e.g. `native` or `wasmtime-wasip2`.
    pub name: String,
    /// Runtime and execution mode.
    pub runtime: RuntimeInfo,
    /// How the server handles connections, when the run knows it: our workload's mode
    /// (`ECHO_MODE`: `concurrent` or `seed`) or what the user declared; `None` for a service
    /// the run knows nothing about (its measured threads and connections are in `runs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_mode: Option<String>,
    /// The artifact, `None` when it was never built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactInfo>,
    /// Ok, failed or skipped.
    pub status: VariantStatus,
    /// Why the variant failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// True when the variant failed because its server never became ready (it did not start,
    /// exited, or its ready path refused), so nothing of it was measured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_started: bool,
    /// One entry per measured repeat.
    pub runs: Vec<RunResult>,
    /// Instructions per request counted under callgrind, in a pass of its own after the
    /// measured runs (`compare --callgrind`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callgrind: Option<CallgrindCount>,
    /// Statistics over `runs`, filled by [`Aggregate::from_runs`].
    pub aggregate: Aggregate,
}

/// Instructions a server executed per request under valgrind's callgrind: deterministic where
/// time is not, and available where the CPU has no hardware counters. Measured in a pass of its
/// own, never inside the measured runs (valgrind runs the server tens of times slower).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallgrindCount {
    /// Instructions (callgrind's `Ir`) over the load window, every thread of the server, less
    /// the idle rate over the window's length.
    pub instructions: u64,
    /// Requests completed in the window.
    pub requests: u64,
    /// Instructions per second of the server with no request (timer and epoch threads),
    /// measured just before the load window.
    pub idle_instructions_per_s: u64,
    /// Virtual users of the window's load.
    pub vus: u32,
    /// The window's requests arrived at this fixed rate, each to an idle server; absent when
    /// the VUs sent them back to back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<u32>,
    /// `valgrind --version`.
    pub valgrind: String,
    /// The callgrind profile of the window (opens in KCachegrind or `callgrind_annotate`),
    /// relative to the output directory, when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_file: Option<String>,
    /// `instructions` split by the code they ran in (callgrind's self cost per function, each
    /// function classified by its symbol and object, less each part's idle rate), largest
    /// first; empty when the profile could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_code: Vec<CodeCost>,
}

/// One part of a server's instructions in the callgrind window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeCost {
    /// What code ran.
    pub code: CodeKind,
    /// For WASI host functions, the interface (`wasi:io/streams`, `wasi:sockets`,
    /// `wasi_snapshot_preview1`…); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Instructions over the window, less this part's idle rate.
    pub instructions: u64,
}

impl CallgrindCount {
    /// Instructions per request.
    pub fn per_req(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.instructions as f64 / self.requests as f64)
    }
}

impl VariantResult {
    /// True when the variant runs WebAssembly (its target is not native).
    pub fn is_wasm(&self) -> bool {
        self.runtime.target != Target::Native
    }

    /// The compared value of `figure`: the aggregate's median, or the artifact size.
    pub fn figure_value(&self, figure: Figure) -> Option<f64> {
        match figure {
            Figure::ArtifactSizeBytes => self.artifact.as_ref().map(|a| a.size_bytes as f64),
            _ => self.aggregate.get(figure).map(|s| s.median),
        }
    }

    /// The samples of `figure` over this variant's runs; for instructions per request without
    /// a hardware counter, the callgrind pass's one count.
    pub fn samples(&self, figure: Figure) -> Vec<f64> {
        let samples = figure_samples(&self.runs, figure);
        match (figure, &self.callgrind) {
            (Figure::InstructionsPerReq, Some(c)) if samples.is_empty() => {
                c.per_req().into_iter().collect()
            }
            _ => samples,
        }
    }

    /// The run whose throughput is the median of all runs: the one charts draw curves from.
    pub fn representative_run(&self) -> Option<&RunResult> {
        let mut runs: Vec<&RunResult> = self.runs.iter().collect();
        runs.sort_by(|a, b| a.throughput_rps.total_cmp(&b.throughput_rps));
        runs.get(runs.len().saturating_sub(1) / 2).copied()
    }
}

/// Passed and failed check evaluations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Evaluations that passed.
    pub passes: u64,
    /// Evaluations that failed.
    pub fails: u64,
    /// Each check's own counts, by its expression; empty in results saved before they were
    /// kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_check: BTreeMap<String, CheckCounts>,
}

/// Passed and failed evaluations of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCounts {
    /// Evaluations that passed.
    pub passes: u64,
    /// Evaluations that failed.
    pub fails: u64,
}

/// Result of one threshold in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOutcome {
    /// The expression, e.g. `http_req_duration: p(95)<200`.
    pub expression: String,
    /// Whether it held.
    pub passed: bool,
}

/// One point of a latency percentile curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvePoint {
    /// Percentile, 0–100.
    pub percentile: f64,
    /// Latency at that percentile.
    pub value_ms: f64,
}

/// CPU and memory of the server process during the measured run (from `/proc`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerUsage {
    /// User CPU time.
    pub cpu_user_ms: f64,
    /// System CPU time.
    pub cpu_sys_ms: f64,
    /// (user + system) CPU per 1000 completed requests.
    pub cpu_ms_per_1k_req: f64,
    /// Peak resident set size.
    pub rss_peak_bytes: u64,
    /// Average resident set size over the samples.
    pub rss_avg_bytes: u64,
    /// Where the figures were read, when not from the server process's `/proc` (on
    /// Kubernetes: the kubelet's Summary API, whose CPU is user + system in `cpu_user_ms`, not
    /// split, and whose memory is the pod cgroup's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<UsageSource>,
}

/// Where a [`ServerUsage`] was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsageSource {
    /// The kubelet's Summary API (`/stats/summary`): the pod's cgroup, CPU not split into user
    /// and system (all of it in `cpu_user_ms`), memory as the cgroup's RSS.
    KubeletSummary,
}

impl ServerUsage {
    /// Usage with `cpu_ms_per_1k_req` derived from the CPU times and the request count.
    pub fn new(
        cpu_user_ms: f64,
        cpu_sys_ms: f64,
        http_reqs: u64,
        rss_peak_bytes: u64,
        rss_avg_bytes: u64,
    ) -> Self {
        let cpu_ms_per_1k_req = if http_reqs > 0 {
            (cpu_user_ms + cpu_sys_ms) * 1000.0 / http_reqs as f64
        } else {
            0.0
        };
        ServerUsage {
            cpu_user_ms,
            cpu_sys_ms,
            cpu_ms_per_1k_req,
            rss_peak_bytes,
            rss_avg_bytes,
            source: None,
        }
    }

    /// Usage read from a container's cgroup by the kubelet: CPU as one total.
    pub fn from_kubelet(
        cpu_ms: f64,
        http_reqs: u64,
        rss_peak_bytes: u64,
        rss_avg_bytes: u64,
    ) -> Self {
        ServerUsage {
            source: Some(UsageSource::KubeletSummary),
            ..ServerUsage::new(cpu_ms, 0.0, http_reqs, rss_peak_bytes, rss_avg_bytes)
        }
    }
}

/// CPU and memory of the load generator during the measured run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadgenUsage {
    /// User + system CPU time.
    pub cpu_ms: f64,
    /// Peak resident set size.
    pub rss_peak_bytes: u64,
}

/// One measured repeat of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    /// Repeat index, from 0.
    pub repeat: u32,
    /// Actual length of the measured load run.
    pub duration_s: f64,
    /// Cold-start samples: spawn → ready, by the plan's `readiness` rule.
    pub cold_start_ms: Vec<f64>,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Completed requests.
    pub http_reqs: u64,
    /// TCP connections the load generator opened during the run, when its tool counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_opened: Option<u64>,
    /// What the run was planned to be, when its tool says (k6's export does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<PlannedRun>,
    /// Share of failed requests, 0–1 (k6's `http_req_failed`).
    pub http_req_failed_rate: f64,
    /// Failed requests by kind (`status_500`, `connect`, `timeout`...).
    pub errors: BTreeMap<String, u64>,
    /// Check evaluations.
    pub checks: Checks,
    /// Threshold outcomes.
    pub thresholds: Vec<ThresholdOutcome>,
    /// Bytes sent by the load generator.
    pub data_sent_bytes: u64,
    /// Bytes received by the load generator.
    pub data_received_bytes: u64,
    /// k6 metric name (`http_req_waiting`...) → trend statistics.
    pub phases: BTreeMap<String, TrendStats>,
    /// Percentile curve of `http_req_duration`, ascending percentiles.
    pub latency_curve: Vec<CurvePoint>,
    /// Server CPU and memory, `None` when they could not be sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUsage>,
    /// Load generator CPU and memory, when sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen: Option<LoadgenUsage>,
    /// What the kernel counted for the server over the load run, when it could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_counts: Option<ServerCounts>,
    /// File (relative to the output directory) holding the load engine's raw summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_summary_file: Option<String>,
    /// Per request of the plan's mix (empty without a mix).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_request: BTreeMap<String, RequestBreakdown>,
    /// The capacity search run on this repeat's server after its measured load (`--capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacitySearch>,
    /// Time for a cache line to go from the load generator's CPU to the server's and back,
    /// measured just before the run (`None` when the two were not pinned apart). A VM's host
    /// may move its virtual CPUs closer together or further apart between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_round_trip_ns: Option<f64>,
    /// The latency tail over time and per VU, as the load engine recorded it (`None` for k6
    /// and for older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
}

impl RunResult {
    /// `count(server_counts) / http_reqs`, when the run counted it and completed a request.
    pub fn per_req(&self, count: impl Fn(&ServerCounts) -> Option<u64>) -> Option<f64> {
        let c = self.server_counts.as_ref()?;
        (self.http_reqs > 0).then_some(count(c)? as f64 / self.http_reqs as f64)
    }

    /// Syscalls of `kind` per request, when they were counted.
    pub fn syscalls_per_req(&self, kind: SyscallKind) -> Option<f64> {
        self.per_req(|c| c.syscalls.get(&kind).copied())
    }
}

/// A capacity search (`--capacity`): constant-arrival-rate steps, doubling then bisection,
/// for the highest offered rate the server sustains within the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySearch {
    /// The capacity, when the server was the limit (what ratios and intervals use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_rps: Option<f64>,
    /// The highest rate that passed, req/s (a lower bound when the client was the limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_rps: Option<f64>,
    /// The lowest rate that failed, req/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_rps: Option<f64>,
    /// What ended the search: `server`, `client` (a step was client-bound), `max-rate`, `steps`.
    pub limit: String,
    /// The search's result in words, e.g. `≥ 40000 req/s (client-bound)`.
    pub headline: String,
    /// The objective every step had to meet.
    pub slo: Vec<String>,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// One step of a capacity search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityStep {
    /// Offered rate, req/s.
    pub offered_rps: f64,
    /// Achieved rate, req/s.
    pub achieved_rps: f64,
    /// `http_req_waiting` p50, ms.
    pub waiting_p50_ms: f64,
    /// `http_req_waiting` p95, ms.
    pub waiting_p95_ms: f64,
    /// `http_req_waiting` p99, ms.
    pub waiting_p99_ms: f64,
    /// Server CPU per request, µs, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_req: Option<f64>,
    /// Load generator CPU over the step, as a share of its CPUs (0–1), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_cpu_share: Option<f64>,
    /// Median delay between an iteration's scheduled and actual start, ms (the load
    /// generator's own lateness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lag_p50_ms: Option<f64>,
    /// `p(99)` of that delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lag_p99_ms: Option<f64>,
    /// After a failed step: the wait until the server answered one VU at its unloaded speed
    /// again, s (the next step starts after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_s: Option<f64>,
    /// `pass`, `fail` or `client-bound`.
    pub verdict: String,
    /// Why the step did not pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// A compared figure: a field of [`Aggregate`], or the artifact size.
///
/// The serialized names are the keys of [`Comparison::ratios`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Requests per second.
    ThroughputRps,
    /// Highest offered rate served within the SLO (`--capacity`), from searches where the
    /// server was the limit.
    CapacityRps,
    /// Median of `http_req_duration`.
    HttpReqDurationP50Ms,
    /// p95 of `http_req_duration`.
    HttpReqDurationP95Ms,
    /// p99 of `http_req_duration`.
    HttpReqDurationP99Ms,
    /// p95 of `http_req_blocked`.
    HttpReqBlockedP95Ms,
    /// p95 of `http_req_connecting`.
    HttpReqConnectingP95Ms,
    /// p95 of `http_req_tls_handshaking`.
    HttpReqTlsHandshakingP95Ms,
    /// p95 of `http_req_sending`.
    HttpReqSendingP95Ms,
    /// p95 of `http_req_waiting`.
    HttpReqWaitingP95Ms,
    /// p95 of `http_req_receiving`.
    HttpReqReceivingP95Ms,
    /// p95 of `iteration_duration`.
    IterationDurationP95Ms,
    /// Share of failed requests.
    HttpReqFailedRate,
    /// Cold start, pooled over all samples of all runs.
    ColdStartMs,
    /// Server CPU per 1000 requests.
    #[serde(rename = "server_cpu_ms_per_1k_req")]
    ServerCpuMsPer1kReq,
    /// The load generator's CPU per 1000 requests: what the instrument cost, beside what the
    /// server cost.
    #[serde(rename = "loadgen_cpu_ms_per_1k_req")]
    LoadgenCpuMsPer1kReq,
    /// Server peak RSS.
    ServerRssPeakBytes,
    /// Artifact file size.
    ArtifactSizeBytes,
    /// Server system calls per request, every kind.
    SyscallsPerReq,
    /// Server poll/epoll/select calls per request.
    PollCallsPerReq,
    /// Server read/recv calls per request.
    ReadCallsPerReq,
    /// Server write/send calls per request.
    WriteCallsPerReq,
    /// Server accept calls per request.
    AcceptCallsPerReq,
    /// Server context switches (voluntary + involuntary) per request.
    ContextSwitchesPerReq,
    /// Server page faults (minor + major) per request.
    PageFaultsPerReq,
    /// Server instructions retired per request (hardware counter).
    InstructionsPerReq,
}

/// How a figure's value is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds, printed like k6 (µs/ms/s).
    Ms,
    /// Requests per second.
    PerS,
    /// Bytes, printed with SI prefixes like k6.
    Bytes,
    /// A 0–1 rate, printed as a percentage.
    Rate,
    /// A count per completed request (`5/req`, `48k/req`).
    PerRequest,
}

impl Figure {
    /// Every figure, in report order.
    pub const ALL: [Figure; 26] = [
        Figure::ThroughputRps,
        Figure::CapacityRps,
        Figure::HttpReqDurationP50Ms,
        Figure::HttpReqDurationP95Ms,
        Figure::HttpReqDurationP99Ms,
        Figure::HttpReqBlockedP95Ms,
        Figure::HttpReqConnectingP95Ms,
        Figure::HttpReqTlsHandshakingP95Ms,
        Figure::HttpReqSendingP95Ms,
        Figure::HttpReqWaitingP95Ms,
        Figure::HttpReqReceivingP95Ms,
        Figure::IterationDurationP95Ms,
        Figure::HttpReqFailedRate,
        Figure::ColdStartMs,
        Figure::ServerCpuMsPer1kReq,
        Figure::LoadgenCpuMsPer1kReq,
        Figure::ServerRssPeakBytes,
        Figure::ArtifactSizeBytes,
        Figure::SyscallsPerReq,
        Figure::PollCallsPerReq,
        Figure::ReadCallsPerReq,
        Figure::WriteCallsPerReq,
        Figure::AcceptCallsPerReq,
        Figure::ContextSwitchesPerReq,
        Figure::PageFaultsPerReq,
        Figure::InstructionsPerReq,
    ];

    /// The serialized name (also the [`Aggregate`] field name).
    pub fn key(self) -> &'static str {
        match self {
            Figure::ThroughputRps => "throughput_rps",
            Figure::CapacityRps => "capacity_rps",
            Figure::HttpReqDurationP50Ms => "http_req_duration_p50_ms",
            Figure::HttpReqDurationP95Ms => "http_req_duration_p95_ms",
            Figure::HttpReqDurationP99Ms => "http_req_duration_p99_ms",
            Figure::HttpReqBlockedP95Ms => "http_req_blocked_p95_ms",
            Figure::HttpReqConnectingP95Ms => "http_req_connecting_p95_ms",
            Figure::HttpReqTlsHandshakingP95Ms => "http_req_tls_handshaking_p95_ms",
            Figure::HttpReqSendingP95Ms => "http_req_sending_p95_ms",
            Figure::HttpReqWaitingP95Ms => "http_req_waiting_p95_ms",
            Figure::HttpReqReceivingP95Ms => "http_req_receiving_p95_ms",
            Figure::IterationDurationP95Ms => "iteration_duration_p95_ms",
            Figure::HttpReqFailedRate => "http_req_failed_rate",
            Figure::ColdStartMs => "cold_start_ms",
            Figure::ServerCpuMsPer1kReq => "server_cpu_ms_per_1k_req",
            Figure::LoadgenCpuMsPer1kReq => "loadgen_cpu_ms_per_1k_req",
            Figure::ServerRssPeakBytes => "server_rss_peak_bytes",
            Figure::ArtifactSizeBytes => "artifact_size_bytes",
            Figure::SyscallsPerReq => "syscalls_per_req",
            Figure::PollCallsPerReq => "poll_calls_per_req",
            Figure::ReadCallsPerReq => "read_calls_per_req",
            Figure::WriteCallsPerReq => "write_calls_per_req",
            Figure::AcceptCallsPerReq => "accept_calls_per_req",
            Figure::ContextSwitchesPerReq => "context_switches_per_req",
            Figure::PageFaultsPerReq => "page_faults_per_req",
            Figure::InstructionsPerReq => "instructions_per_req",
        }
    }

    /// Short human label.
    pub fn label(self) -> &'static str {
        match self {
            Figure::ThroughputRps => "throughput",
            Figure::CapacityRps => "capacity at the SLO",
            Figure::HttpReqDurationP50Ms => "http_req_duration p50",
            Figure::HttpReqDurationP95Ms => "http_req_duration p95",
            Figure::HttpReqDurationP99Ms => "http_req_duration p99",
            Figure::HttpReqBlockedP95Ms => "http_req_blocked p95",
            Figure::HttpReqConnectingP95Ms => "http_req_connecting p95",
            Figure::HttpReqTlsHandshakingP95Ms => "http_req_tls_handshaking p95",
            Figure::HttpReqSendingP95Ms => "http_req_sending p95",
            Figure::HttpReqWaitingP95Ms => "http_req_waiting p95",
            Figure::HttpReqReceivingP95Ms => "http_req_receiving p95",
            Figure::IterationDurationP95Ms => "iteration_duration p95",
            Figure::HttpReqFailedRate => "errors (http_req_failed)",
            Figure::ColdStartMs => "cold start",
            Figure::ServerCpuMsPer1kReq => "server CPU per 1k requests",
            Figure::LoadgenCpuMsPer1kReq => "load generator CPU per 1k requests",
            Figure::ServerRssPeakBytes => "server peak RSS",
            Figure::ArtifactSizeBytes => "artifact size",
            Figure::SyscallsPerReq => "server syscalls",
            Figure::PollCallsPerReq => "server poll calls",
            Figure::ReadCallsPerReq => "server read calls",
            Figure::WriteCallsPerReq => "server write calls",
            Figure::AcceptCallsPerReq => "server accept calls",
            Figure::ContextSwitchesPerReq => "server context switches",
            Figure::PageFaultsPerReq => "server page faults",
            Figure::InstructionsPerReq => "server instructions",
        }
    }

    /// The unit of the figure's values.
    pub fn unit(self) -> Unit {
        match self {
            Figure::ThroughputRps | Figure::CapacityRps => Unit::PerS,
            Figure::HttpReqFailedRate => Unit::Rate,
            Figure::ServerRssPeakBytes | Figure::ArtifactSizeBytes => Unit::Bytes,
            Figure::SyscallsPerReq
            | Figure::PollCallsPerReq
            | Figure::ReadCallsPerReq
            | Figure::WriteCallsPerReq
            | Figure::AcceptCallsPerReq
            | Figure::ContextSwitchesPerReq
            | Figure::PageFaultsPerReq
            | Figure::InstructionsPerReq => Unit::PerRequest,
            _ => Unit::Ms,
        }
    }

    /// The per-request figure of a syscall kind.
    pub fn syscalls_per_req(kind: SyscallKind) -> Figure {
        match kind {
            SyscallKind::All => Figure::SyscallsPerReq,
            SyscallKind::Poll => Figure::PollCallsPerReq,
            SyscallKind::Read => Figure::ReadCallsPerReq,
            SyscallKind::Write => Figure::WriteCallsPerReq,
            SyscallKind::Accept => Figure::AcceptCallsPerReq,
        }
    }

    /// True when a larger value is better (throughput and capacity).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Figure::ThroughputRps | Figure::CapacityRps)
    }

    /// The p95 figure of a k6 phase metric name, if there is one.
    pub fn phase_p95(metric: &str) -> Option<Figure> {
        Some(match metric {
            "http_req_blocked" => Figure::HttpReqBlockedP95Ms,
            "http_req_connecting" => Figure::HttpReqConnectingP95Ms,
            "http_req_tls_handshaking" => Figure::HttpReqTlsHandshakingP95Ms,
            "http_req_sending" => Figure::HttpReqSendingP95Ms,
            "http_req_waiting" => Figure::HttpReqWaitingP95Ms,
            "http_req_receiving" => Figure::HttpReqReceivingP95Ms,
            "http_req_duration" => Figure::HttpReqDurationP95Ms,
            "iteration_duration" => Figure::IterationDurationP95Ms,
            _ => return None,
        })
    }
}

/// Statistics over the repeats of one variant; each field is `None` when no run measured it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_rps: Option<Stat>,
    /// Median `http_req_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_duration_p50_ms: Option<Stat>,
    /// p95 `http_req_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_duration_p95_ms: Option<Stat>,
    /// p99 `http_req_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_duration_p99_ms: Option<Stat>,
    /// p95 `http_req_blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_blocked_p95_ms: Option<Stat>,
    /// p95 `http_req_connecting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_connecting_p95_ms: Option<Stat>,
    /// p95 `http_req_tls_handshaking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_tls_handshaking_p95_ms: Option<Stat>,
    /// p95 `http_req_sending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_sending_p95_ms: Option<Stat>,
    /// p95 `http_req_waiting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_waiting_p95_ms: Option<Stat>,
    /// p95 `http_req_receiving`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_receiving_p95_ms: Option<Stat>,
    /// p95 `iteration_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration_duration_p95_ms: Option<Stat>,
    /// Share of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_req_failed_rate: Option<Stat>,
    /// Cold start, pooled over every sample of every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_ms: Option<Stat>,
    /// Server CPU per 1000 requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_ms_per_1k_req: Option<Stat>,
    /// The load generator's CPU per 1000 requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_cpu_ms_per_1k_req: Option<Stat>,
    /// Server peak RSS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_peak_bytes: Option<Stat>,
    /// Capacity at the SLO, over the searches where the server was the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_rps: Option<Stat>,
    /// Server syscalls per request, every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_per_req: Option<Stat>,
    /// Server poll-family calls per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_calls_per_req: Option<Stat>,
    /// Server read/recv calls per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_calls_per_req: Option<Stat>,
    /// Server write/send calls per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_calls_per_req: Option<Stat>,
    /// Server accept calls per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_calls_per_req: Option<Stat>,
    /// Server context switches per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_switches_per_req: Option<Stat>,
    /// Server page faults per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_faults_per_req: Option<Stat>,
    /// Server instructions per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions_per_req: Option<Stat>,
}

/// One sample of `figure` per run of `runs` (cold start: every start of every run); empty for
/// the artifact size, which has no repeats.
pub fn figure_samples(runs: &[RunResult], figure: Figure) -> Vec<f64> {
    let phase = |metric: &str, pick: fn(&TrendStats) -> f64| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| r.phases.get(metric).map(pick))
            .collect()
    };
    let each =
        |f: &dyn Fn(&RunResult) -> Option<f64>| -> Vec<f64> { runs.iter().filter_map(f).collect() };
    match figure {
        Figure::ThroughputRps => each(&|r| Some(r.throughput_rps)),
        Figure::CapacityRps => each(&|r| r.capacity.as_ref().and_then(|c| c.capacity_rps)),
        Figure::HttpReqDurationP50Ms => phase("http_req_duration", |t| t.med_ms),
        Figure::HttpReqDurationP95Ms => phase("http_req_duration", |t| t.p95_ms),
        Figure::HttpReqDurationP99Ms => phase("http_req_duration", |t| t.p99_ms),
        Figure::HttpReqBlockedP95Ms => phase("http_req_blocked", |t| t.p95_ms),
        Figure::HttpReqConnectingP95Ms => phase("http_req_connecting", |t| t.p95_ms),
        Figure::HttpReqTlsHandshakingP95Ms => phase("http_req_tls_handshaking", |t| t.p95_ms),
        Figure::HttpReqSendingP95Ms => phase("http_req_sending", |t| t.p95_ms),
        Figure::HttpReqWaitingP95Ms => phase("http_req_waiting", |t| t.p95_ms),
        Figure::HttpReqReceivingP95Ms => phase("http_req_receiving", |t| t.p95_ms),
        Figure::IterationDurationP95Ms => phase("iteration_duration", |t| t.p95_ms),
        Figure::HttpReqFailedRate => each(&|r| Some(r.http_req_failed_rate)),
        Figure::ColdStartMs => runs
            .iter()
            .flat_map(|r| r.cold_start_ms.iter().copied())
            .collect(),
        Figure::ServerCpuMsPer1kReq => each(&|r| r.server.map(|s| s.cpu_ms_per_1k_req)),
        Figure::LoadgenCpuMsPer1kReq => each(&|r| {
            let l = r.loadgen.as_ref()?;
            (r.http_reqs > 0).then(|| 1000.0 * l.cpu_ms / r.http_reqs as f64)
        }),
        Figure::ServerRssPeakBytes => each(&|r| r.server.map(|s| s.rss_peak_bytes as f64)),
        Figure::ArtifactSizeBytes => Vec::new(),
        Figure::SyscallsPerReq => each(&|r| r.syscalls_per_req(SyscallKind::All)),
        Figure::PollCallsPerReq => each(&|r| r.syscalls_per_req(SyscallKind::Poll)),
        Figure::ReadCallsPerReq => each(&|r| r.syscalls_per_req(SyscallKind::Read)),
        Figure::WriteCallsPerReq => each(&|r| r.syscalls_per_req(SyscallKind::Write)),
        Figure::AcceptCallsPerReq => each(&|r| r.syscalls_per_req(SyscallKind::Accept)),
        Figure::ContextSwitchesPerReq => {
            each(&|r| r.per_req(|c| Some(c.voluntary_switches + c.involuntary_switches)))
        }
        Figure::PageFaultsPerReq => each(&|r| r.per_req(|c| Some(c.minor_faults + c.major_faults))),
        Figure::InstructionsPerReq => each(&|r| r.per_req(|c| c.instructions)),
    }
}

/// The 95% bootstrap interval of the ratio of `figure` between two variants of one comparison:
/// paired by round ([`crate::stats::paired_ratio_interval`]) when both ran the same repeats
/// with one value each, as interleaved repeats do; otherwise each side resampled on its own.
pub fn round_ratio_interval(
    num: &[RunResult],
    den: &[RunResult],
    figure: Figure,
) -> Option<Interval> {
    let one = |r: &RunResult| match figure_samples(std::slice::from_ref(r), figure)[..] {
        [x] => Some(x),
        _ => None,
    };
    let pairs: Option<Vec<(f64, f64)>> = (num.len() == den.len())
        .then(|| {
            num.iter()
                .map(|a| {
                    let b = den.iter().find(|b| b.repeat == a.repeat)?;
                    Some((one(a)?, one(b)?))
                })
                .collect()
        })
        .flatten();
    match pairs {
        Some(p) => crate::stats::paired_ratio_interval(&p),
        None => {
            crate::stats::ratio_interval(&figure_samples(num, figure), &figure_samples(den, figure))
        }
    }
}

impl Aggregate {
    /// Statistics over `runs` (one sample per run; cold start pools all samples).
    pub fn from_runs(runs: &[RunResult]) -> Aggregate {
        let stat = |f: Figure| Stat::from_samples(&figure_samples(runs, f));
        Aggregate {
            throughput_rps: stat(Figure::ThroughputRps),
            capacity_rps: stat(Figure::CapacityRps),
            http_req_duration_p50_ms: stat(Figure::HttpReqDurationP50Ms),
            http_req_duration_p95_ms: stat(Figure::HttpReqDurationP95Ms),
            http_req_duration_p99_ms: stat(Figure::HttpReqDurationP99Ms),
            http_req_blocked_p95_ms: stat(Figure::HttpReqBlockedP95Ms),
            http_req_connecting_p95_ms: stat(Figure::HttpReqConnectingP95Ms),
            http_req_tls_handshaking_p95_ms: stat(Figure::HttpReqTlsHandshakingP95Ms),
            http_req_sending_p95_ms: stat(Figure::HttpReqSendingP95Ms),
            http_req_waiting_p95_ms: stat(Figure::HttpReqWaitingP95Ms),
            http_req_receiving_p95_ms: stat(Figure::HttpReqReceivingP95Ms),
            iteration_duration_p95_ms: stat(Figure::IterationDurationP95Ms),
            http_req_failed_rate: stat(Figure::HttpReqFailedRate),
            cold_start_ms: stat(Figure::ColdStartMs),
            server_cpu_ms_per_1k_req: stat(Figure::ServerCpuMsPer1kReq),
            loadgen_cpu_ms_per_1k_req: stat(Figure::LoadgenCpuMsPer1kReq),
            server_rss_peak_bytes: stat(Figure::ServerRssPeakBytes),
            syscalls_per_req: stat(Figure::SyscallsPerReq),
            poll_calls_per_req: stat(Figure::PollCallsPerReq),
            read_calls_per_req: stat(Figure::ReadCallsPerReq),
            write_calls_per_req: stat(Figure::WriteCallsPerReq),
            accept_calls_per_req: stat(Figure::AcceptCallsPerReq),
            context_switches_per_req: stat(Figure::ContextSwitchesPerReq),
            page_faults_per_req: stat(Figure::PageFaultsPerReq),
            instructions_per_req: stat(Figure::InstructionsPerReq),
        }
    }

    /// The statistics of `figure` (`None` for the artifact size, which is not aggregated).
    pub fn get(&self, figure: Figure) -> Option<&Stat> {
        match figure {
            Figure::ThroughputRps => self.throughput_rps.as_ref(),
            Figure::CapacityRps => self.capacity_rps.as_ref(),
            Figure::HttpReqDurationP50Ms => self.http_req_duration_p50_ms.as_ref(),
            Figure::HttpReqDurationP95Ms => self.http_req_duration_p95_ms.as_ref(),
            Figure::HttpReqDurationP99Ms => self.http_req_duration_p99_ms.as_ref(),
            Figure::HttpReqBlockedP95Ms => self.http_req_blocked_p95_ms.as_ref(),
            Figure::HttpReqConnectingP95Ms => self.http_req_connecting_p95_ms.as_ref(),
            Figure::HttpReqTlsHandshakingP95Ms => self.http_req_tls_handshaking_p95_ms.as_ref(),
            Figure::HttpReqSendingP95Ms => self.http_req_sending_p95_ms.as_ref(),
            Figure::HttpReqWaitingP95Ms => self.http_req_waiting_p95_ms.as_ref(),
            Figure::HttpReqReceivingP95Ms => self.http_req_receiving_p95_ms.as_ref(),
            Figure::IterationDurationP95Ms => self.iteration_duration_p95_ms.as_ref(),
            Figure::HttpReqFailedRate => self.http_req_failed_rate.as_ref(),
            Figure::ColdStartMs => self.cold_start_ms.as_ref(),
            Figure::ServerCpuMsPer1kReq => self.server_cpu_ms_per_1k_req.as_ref(),
            Figure::LoadgenCpuMsPer1kReq => self.loadgen_cpu_ms_per_1k_req.as_ref(),
            Figure::ServerRssPeakBytes => self.server_rss_peak_bytes.as_ref(),
            Figure::ArtifactSizeBytes => None,
            Figure::SyscallsPerReq => self.syscalls_per_req.as_ref(),
            Figure::PollCallsPerReq => self.poll_calls_per_req.as_ref(),
            Figure::ReadCallsPerReq => self.read_calls_per_req.as_ref(),
            Figure::WriteCallsPerReq => self.write_calls_per_req.as_ref(),
            Figure::AcceptCallsPerReq => self.accept_calls_per_req.as_ref(),
            Figure::ContextSwitchesPerReq => self.context_switches_per_req.as_ref(),
            Figure::PageFaultsPerReq => self.page_faults_per_req.as_ref(),
            Figure::InstructionsPerReq => self.instructions_per_req.as_ref(),
        }
    }
}

impl Comparison {
    /// A comparison with empty ratios, explanation and warnings; call [`Comparison::finalize`]
    /// once all variants are in.
    pub fn new(meta: Meta, plan: PlanRecord, baseline: impl Into<String>) -> Comparison {
        Comparison {
            schema_version: SCHEMA_VERSION,
            meta,
            plan,
            baseline: baseline.into(),
            variants: Vec::new(),
            ratios: BTreeMap::new(),
            ratio_intervals: BTreeMap::new(),
            precision: None,
            saved: None,
            explanation: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The baseline variant, if present.
    pub fn baseline_variant(&self) -> Option<&VariantResult> {
        self.variant(&self.baseline)
    }

    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Option<&VariantResult> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The Wasm variant the two-column tables show: the first one that ran, else the first one.
    pub fn primary_wasm_variant(&self) -> Option<&VariantResult> {
        self.variants
            .iter()
            .find(|v| v.is_wasm() && v.status == VariantStatus::Ok && v.name != self.baseline)
            .or_else(|| {
                self.variants
                    .iter()
                    .find(|v| v.is_wasm() && v.name != self.baseline)
            })
    }

    /// The stored ratio variant / baseline of `figure`.
    pub fn ratio(&self, variant: &str, figure: Figure) -> Option<f64> {
        self.ratios.get(variant)?.get(&figure).copied()
    }

    /// Recomputes every variant's [`Aggregate`] from its runs.
    pub fn compute_aggregates(&mut self) {
        for v in &mut self.variants {
            v.aggregate = Aggregate::from_runs(&v.runs);
            // Without a hardware counter, the callgrind pass gives the figure (one sample).
            if v.aggregate.instructions_per_req.is_none() {
                v.aggregate.instructions_per_req =
                    Stat::from_samples(&v.samples(Figure::InstructionsPerReq));
            }
        }
    }

    /// Recomputes [`Comparison::ratios`]: variant median / baseline median for every figure both
    /// have (baseline value ≠ 0), for every non-baseline variant that ran.
    pub fn compute_ratios(&mut self) {
        let mut ratios = BTreeMap::new();
        let mut intervals = BTreeMap::new();
        if let Some(base) = self
            .baseline_variant()
            .filter(|b| b.status == VariantStatus::Ok)
        {
            for v in &self.variants {
                if v.name == self.baseline || v.status != VariantStatus::Ok {
                    continue;
                }
                let mut per = BTreeMap::new();
                let mut per_interval = BTreeMap::new();
                for f in Figure::ALL {
                    if let (Some(a), Some(b)) = (v.figure_value(f), base.figure_value(f)) {
                        let r = a / b;
                        if b != 0.0 && r.is_finite() {
                            per.insert(f, r);
                            let interval = round_ratio_interval(&v.runs, &base.runs, f);
                            if let Some(i) = interval {
                                per_interval.insert(f, i);
                            }
                        }
                    }
                }
                ratios.insert(v.name.clone(), per);
                if !per_interval.is_empty() {
                    intervals.insert(v.name.clone(), per_interval);
                }
            }
        }
        self.ratios = ratios;
        self.ratio_intervals = intervals;
    }

    /// The 95% bootstrap interval of the ratio of `figure` (variant / baseline), when both
    /// sides have at least two samples.
    pub fn ratio_interval(&self, variant: &str, figure: Figure) -> Option<Interval> {
        self.ratio_intervals.get(variant)?.get(&figure).copied()
    }

    /// The compiler wasmbench built the variants' artifacts with; `None` for a comparison of
    /// the user's own builds, whose build environment the run did not see.
    pub fn built_with(&self) -> Option<&str> {
        (self.plan.workload != wasmbench_vocab::USER_SERVICE_WORKLOAD)
            .then_some(self.meta.environment.rustc_version.as_str())
    }

    /// Recomputes aggregates, ratios and the explanation, and adds derived warnings that are not
    /// already present (warnings added by the caller are kept).
    pub fn finalize(&mut self) {
        self.compute_aggregates();
        self.compute_ratios();
        self.explanation = crate::explain::explain(self);
        for w in crate::explain::derive_warnings(self) {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }
}
