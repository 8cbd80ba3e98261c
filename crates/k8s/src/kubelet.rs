//! What the cluster reports of a server pod besides its load: CPU and memory from the kubelet's
//! Summary API (`/api/v1/nodes/<node>/proxy/stats/summary`, what metrics-server reads), the
//! pod's start from its own timestamps, and its image's size as the node lists it.
//!
//! The kubelet refreshes a container's stats every few seconds (cAdvisor's housekeeping), and
//! each sample carries the time it was taken. CPU over a load window is therefore the counter's
//! difference between the last sample before the window and the first after it, less the
//! container's idle rate (from its samples outside every load) over the parts of that span
//! outside the window.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::error::api_err;

/// What `k8s run` does when the account may not read the kubelet's stats.
pub const WITHOUT_NODE_STATS: &str = "--no-node-stats";

/// One reading of a pod's counters, as the kubelet took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSample {
    /// When the kubelet read the CPU counter.
    pub at: DateTime<Utc>,
    /// CPU used since the pod started (user + system), in core-nanoseconds.
    pub cpu_core_ns: u64,
    /// The pod cgroup's resident memory (`rssBytes`), else its working set, at that reading.
    pub memory_bytes: u64,
}

/// CPU and memory of a pod over one load window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowUsage {
    /// CPU used in the window, idle rate subtracted where it could be measured.
    pub cpu_ms: f64,
    /// Highest memory reading in the span the CPU was read over.
    pub memory_peak_bytes: u64,
    /// Mean memory reading in that span.
    pub memory_avg_bytes: u64,
    /// The idle rate subtracted, in cores; `None` when no reading outside a load measured it.
    pub idle_cores: Option<f64>,
    /// The span between the two readings, the window inside it.
    pub span: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    #[serde(default)]
    pods: Vec<PodStats>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStats {
    pod_ref: PodRef,
    cpu: Option<CpuStats>,
    memory: Option<MemoryStats>,
}

#[derive(Deserialize)]
struct PodRef {
    name: String,
    namespace: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpuStats {
    time: DateTime<Utc>,
    usage_core_nano_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemoryStats {
    rss_bytes: Option<u64>,
    working_set_bytes: Option<u64>,
}

/// The readings of every pod of `namespace` in one Summary API answer, by pod name.
///
/// A pod's own figures, not its container's: the kubelet reads the pod's cgroup itself, the
/// same way under every runtime, while a container's figures come from its runtime's shim, and
/// runwasi-based shims report no CPU on cgroup v1 hosts (their `cpu.stat` reader knows only
/// the v2 fields). A server pod's cgroup holds its one container and the sandbox's pause
/// process, which neither uses CPU nor holds more than a few hundred KiB.
pub fn samples_in(summary: &str, namespace: &str) -> Result<BTreeMap<String, UsageSample>, String> {
    let s: Summary = serde_json::from_str(summary).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for p in s
        .pods
        .into_iter()
        .filter(|p| p.pod_ref.namespace == namespace)
    {
        let (Some(cpu), Some(mem)) = (p.cpu, p.memory) else {
            continue;
        };
        let (Some(ns), Some(memory)) = (
            cpu.usage_core_nano_seconds,
            mem.rss_bytes.or(mem.working_set_bytes),
        ) else {
            continue;
        };
        out.insert(
            p.pod_ref.name,
            UsageSample {
                at: cpu.time,
                cpu_core_ns: ns,
                memory_bytes: memory,
            },
        );
    }
    Ok(out)
}

/// What the account needs to read the kubelet's stats.
const STATS_PERMISSION: &str =
    "get on nodes/proxy, which is cluster-scoped: a namespace-scoped account cannot have it";

/// The Summary API of `node`, as text.
pub async fn summary(client: &Client, node: &str) -> Result<String, Error> {
    let req = http::Request::get(format!("/api/v1/nodes/{node}/proxy/stats/summary"))
        .body(Vec::new())
        .map_err(|e| Error::Api {
            action: format!("read the kubelet stats of node {node}"),
            reason: e.to_string(),
        })?;
    client.request_text(req).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 403 => forbidden_stats(),
        _ => api_err(format!("read the kubelet stats of node {node}"))(e),
    })
}

fn forbidden_stats() -> Error {
    Error::Forbidden {
        action: format!(
            "read the kubelet's CPU and memory figures (or pass {WITHOUT_NODE_STATS} to run without them)"
        ),
        permission: STATS_PERMISSION.to_owned(),
    }
}

/// Asks the API server whether the account may read the kubelet's stats, before anything is
/// deployed: one [`Error::Forbidden`] line when it may not.
pub async fn check_stats_access(client: &Client) -> Result<(), Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("get".to_owned()),
                resource: Some("nodes".to_owned()),
                subresource: Some("proxy".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(api_err(
            "ask whether the account may read the kubelet's stats",
        ))?;
    match answer.status.is_some_and(|s| s.allowed) {
        true => Ok(()),
        false => Err(forbidden_stats()),
    }
}

/// Reads the Summary API of `nodes` every `every` until `stop` fires, keeping each pod of
/// `namespace`'s distinct readings in time order.
#[derive(Debug, Clone, Default)]
pub struct Samples(Arc<Mutex<BTreeMap<String, Vec<UsageSample>>>>);

impl Samples {
    /// The readings of `pod` so far.
    pub fn of(&self, pod: &str) -> Vec<UsageSample> {
        self.0
            .lock()
            .map(|m| m.get(pod).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn add(&self, pod: String, s: UsageSample) {
        if let Ok(mut m) = self.0.lock() {
            let v = m.entry(pod).or_default();
            if v.last().is_none_or(|l| l.at < s.at) {
                v.push(s);
            }
        }
    }

    /// Samples `nodes` until `stop` fires; the first error (other than one node's answer
    /// failing to parse) ends the sampling and is returned.
    pub async fn collect(
        self,
        client: Client,
        nodes: Vec<String>,
        namespace: String,
        every: Duration,
        stop: CancellationToken,
    ) -> Result<(), Error> {
        loop {
            for node in &nodes {
                let text = summary(&client, node).await?;
                if let Ok(found) = samples_in(&text, &namespace) {
                    for (pod, s) in found {
                        self.add(pod, s);
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// [`Samples::collect`] running in the background; stopped (and its task aborted) when dropped.
#[derive(Debug)]
pub struct Sampler {
    samples: Samples,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), Error>>>,
}

impl Sampler {
    /// Starts reading the Summary API of `nodes` every `every`.
    pub fn start(
        client: Client,
        nodes: Vec<String>,
        namespace: String,
        every: Duration,
    ) -> Sampler {
        let samples = Samples::default();
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(
                samples
                    .clone()
                    .collect(client, nodes, namespace, every, stop.clone()),
            );
        Sampler {
            samples,
            stop,
            task: Some(task),
        }
    }

    /// Waits until each `(pod, end)` has a reading at or after `end` (the kubelet refreshes
    /// its stats every few seconds), at most `settle`, then stops. Returns the readings and
    /// why sampling ended early, if it did.
    pub async fn finish(
        mut self,
        wanted: &[(String, DateTime<Utc>)],
        settle: Duration,
    ) -> (Samples, Option<String>) {
        let deadline = tokio::time::Instant::now() + settle;
        let covered = |s: &Samples| {
            wanted
                .iter()
                .all(|(pod, end)| s.of(pod).last().is_some_and(|l| l.at >= *end))
        };
        while !covered(&self.samples)
            && tokio::time::Instant::now() < deadline
            && self.task.as_ref().is_some_and(|t| !t.is_finished())
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.stop.cancel();
        let why = match self.task.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            },
            None => None,
        };
        (self.samples.clone(), why)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// CPU and memory over `[start, end]` from a container's readings: `None` unless one reading
/// precedes the window and one follows it.
pub fn window_usage(
    samples: &[UsageSample],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    loads: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Option<WindowUsage> {
    // Readings carry whole seconds, truncated: one stamped a second before the window was
    // surely taken before it.
    let a = samples
        .iter()
        .rev()
        .find(|s| s.at + chrono::TimeDelta::seconds(1) <= start)?;
    let b = samples.iter().find(|s| s.at >= end)?;
    let secs = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1e6;
    // Idle: pairs of consecutive readings with no load of any server between them.
    let (mut idle_ns, mut idle_s) = (0.0, 0.0);
    for w in samples.windows(2) {
        let quiet = loads
            .iter()
            .all(|(ls, le)| w[1].at <= *ls || w[0].at >= *le);
        if quiet {
            idle_ns += w[1].cpu_core_ns.saturating_sub(w[0].cpu_core_ns) as f64;
            idle_s += secs(w[1].at - w[0].at);
        }
    }
    let idle_cores = (idle_s > 0.0).then(|| idle_ns / 1e9 / idle_s);
    let outside_s = secs(start - a.at) + secs(b.at - end);
    let raw_ns = b.cpu_core_ns.saturating_sub(a.cpu_core_ns) as f64;
    let cpu_ns = (raw_ns - idle_cores.unwrap_or(0.0) * 1e9 * outside_s).max(0.0);
    let span: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= a.at && s.at <= b.at)
        .map(|s| s.memory_bytes)
        .collect();
    Some(WindowUsage {
        cpu_ms: cpu_ns / 1e6,
        memory_peak_bytes: span.iter().copied().max().unwrap_or(0),
        memory_avg_bytes: span.iter().sum::<u64>() / span.len().max(1) as u64,
        idle_cores,
        span: Duration::from_secs_f64(secs(b.at - a.at).max(0.0)),
    })
}

/// A pod's start as its own timestamps tell it (whole seconds: Kubernetes keeps no finer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodStart {
    /// Creation → `PodScheduled`.
    pub scheduled_s: Option<i64>,
    /// Creation → the container's `running.startedAt` (image pulled, sandbox and container
    /// created, process or runtime started).
    pub started_s: Option<i64>,
    /// Creation → `Ready` (the readiness probe's first success).
    pub ready_s: Option<i64>,
}

impl PodStart {
    /// The parts of `pod`'s start.
    pub fn of(pod: &Pod) -> Option<PodStart> {
        let created = pod.metadata.creation_timestamp.as_ref()?.0;
        let status = pod.status.as_ref()?;
        let since = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
            t.0.as_second() - created.as_second()
        };
        let condition = |kind: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind && c.status == "True")
                .and_then(|c| c.last_transition_time.as_ref())
                .map(since)
        };
        let started_s = status
            .container_statuses
            .iter()
            .flatten()
            .next()
            .and_then(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
            .map(since);
        Some(PodStart {
            scheduled_s: condition("PodScheduled"),
            started_s,
            ready_s: condition("Ready"),
        })
    }
}

/// The size the node lists for the image `image_id` (the container's resolved digest) or
/// `image` (its reference).
pub fn image_size(node: &Node, image: &str, image_id: Option<&str>) -> Option<u64> {
    let digest = image_id.and_then(|id| id.rsplit_once('@').map_or(Some(id), |(_, d)| Some(d)));
    let images = node.status.as_ref()?.images.as_ref()?;
    images
        .iter()
        .find(|i| {
            i.names
                .iter()
                .flatten()
                .any(|n| n == image || digest.is_some_and(|d| n.ends_with(d) || n == d))
        })
        .and_then(|i| i.size_bytes)
        .and_then(|b| u64::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn sample(s: i64, cpu_ms: u64, mem: u64) -> UsageSample {
        UsageSample {
            at: t(s),
            cpu_core_ns: cpu_ms * 1_000_000,
            memory_bytes: mem,
        }
    }

    #[test]
    fn summary_api_answers_are_read_per_pod_for_the_run_namespace_only() {
        let text = r#"{"node":{"nodeName":"n1"},"pods":[
          {"podRef":{"name":"svc-native-1","namespace":"wb-r1","uid":"u"},
           "containers":[{"name":"server","cpu":{"time":"2026-12-07T10:00:05Z","usageNanoCores":0,"usageCoreNanoSeconds":0}}],
           "cpu":{"time":"2026-12-07T10:00:05Z","usageNanoCores":1,"usageCoreNanoSeconds":2500000000},
           "memory":{"time":"2026-12-07T10:00:05Z","workingSetBytes":9000,"rssBytes":7000}},
          {"podRef":{"name":"other","namespace":"kube-system","uid":"v"},
           "cpu":{"time":"2026-12-07T10:00:05Z","usageCoreNanoSeconds":1},"memory":{"workingSetBytes":1}},
          {"podRef":{"name":"starting","namespace":"wb-r1","uid":"w"},"containers":[]}]}"#;
        let got = samples_in(text, "wb-r1").unwrap();
        assert_eq!(got.len(), 1);
        let s = got["svc-native-1"];
        assert_eq!((s.cpu_core_ns, s.memory_bytes), (2_500_000_000, 7000));
        assert!(samples_in("not json", "wb-r1").is_err());
    }

    #[test]
    fn window_cpu_subtracts_the_idle_rate_outside_the_window() {
        // 10 ms/s idle before and after; 30 s of load at 1 core from t=20 to t=50.
        let s = [
            sample(0, 0, 100),
            sample(10, 100, 100),
            sample(18, 180, 150),
            sample(30, 180 + 2 * 10 + 10_000, 400),
            sample(53, 180 + 2 * 10 + 30_000 + 3 * 10, 300),
            sample(63, 180 + 2 * 10 + 30_000 + 13 * 10, 300),
        ];
        let load = (t(20), t(50));
        let u = window_usage(&s, load.0, load.1, &[load]).unwrap();
        assert!((u.idle_cores.unwrap() - 0.01).abs() < 1e-9, "{u:?}");
        assert!((u.cpu_ms - 30_000.0).abs() < 1e-6, "{u:?}");
        assert_eq!(u.memory_peak_bytes, 400);
        assert_eq!(u.span, Duration::from_secs(35));
        // No reading after the window yet: nothing is claimed.
        assert_eq!(window_usage(&s[..4], load.0, load.1, &[load]), None);
    }

    #[test]
    fn without_idle_readings_nothing_is_subtracted() {
        let s = [sample(19, 0, 1), sample(51, 30_500, 1)];
        let u = window_usage(&s, t(20), t(50), &[(t(20), t(50))]).unwrap();
        assert_eq!(u.idle_cores, None);
        assert!((u.cpu_ms - 30_500.0).abs() < 1e-6);
    }
}
