//! Cell formatting shared by the text, Markdown and HTML tables.

use crate::model::{
    Comparison, Design, Figure, Placement, RuntimeInfo, UNKNOWN, VariantResult, VariantStatus,
};
use crate::units::{fmt_bytes, fmt_ratio, fmt_stat, fmt_value};

/// Rows of the headline table, in order: every figure but `iteration_duration`, which in the
/// closed model repeats `http_req_duration`.
pub(crate) fn table_figures() -> impl Iterator<Item = Figure> {
    Figure::ALL
        .into_iter()
        .filter(|f| *f != Figure::IterationDurationP95Ms)
}

/// k6's description of a figure (the demo's "Description" column); cold start names the
/// readiness rule the run used.
pub(crate) fn description(c: &Comparison, f: Figure) -> std::borrow::Cow<'static, str> {
    // On Kubernetes these figures are read from the cluster, not from a process.
    if c.meta.environment.kubernetes.is_some() {
        match f {
            Figure::ColdStartMs => {
                return "Pod creation → Ready, from the pod's timestamps (whole seconds)".into();
            }
            Figure::ServerCpuMsPer1kReq => {
                return "Server pod's CPU time (user + system) per 1000 requests, from the kubelet's Summary API"
                    .into();
            }
            Figure::ServerRssPeakBytes => {
                return "Peak resident memory of the server pod's cgroup, from the kubelet's Summary API"
                    .into();
            }
            Figure::ArtifactSizeBytes => {
                return "Size of the server's image, as its node lists it".into();
            }
            _ => {}
        }
    }
    if f == Figure::ColdStartMs {
        return match &c.plan.readiness {
            Some(r) => format!("Process spawn → {r}").into(),
            None => "Process spawn → ready".into(),
        };
    }
    let counted_by_callgrind = |v: &VariantResult| {
        v.callgrind.is_some() && crate::model::figure_samples(&v.runs, f).is_empty()
    };
    if f == Figure::InstructionsPerReq && c.variants.iter().any(counted_by_callgrind) {
        return "Instructions the server executed per request, counted by callgrind at 1 VU in a \
                pass of its own: the same from run to run, without the kernel's work, cache \
                misses or branch mispredictions"
            .into();
    }
    static_description(f).into()
}

fn static_description(f: Figure) -> &'static str {
    match f {
        Figure::HttpReqBlockedP95Ms => {
            "Time spent blocked (waiting for a free TCP connection slot) before initiating the request"
        }
        Figure::HttpReqConnectingP95Ms => {
            "Time spent establishing TCP connection to the remote host"
        }
        Figure::HttpReqTlsHandshakingP95Ms => "Time spent handshaking TLS session with remote host",
        Figure::HttpReqSendingP95Ms => "Time spent sending data to the remote host",
        Figure::HttpReqWaitingP95Ms => {
            "Time spent waiting for response from remote host (a.k.a. \"time to first byte\", or \"TTFB\")"
        }
        Figure::HttpReqReceivingP95Ms => "Time spent receiving response data from the remote host",
        Figure::ThroughputRps => "Completed requests per second",
        Figure::CapacityRps => {
            "Highest offered request rate served within the SLO (open-model search after each measured run)"
        }
        Figure::HttpReqDurationP50Ms => "Median request time (sending + waiting + receiving)",
        Figure::HttpReqDurationP95Ms => "95th percentile request time",
        Figure::HttpReqDurationP99Ms => "99th percentile request time",
        Figure::IterationDurationP95Ms => "Time to complete one full iteration",
        Figure::HttpReqFailedRate => "Share of failed requests (http_req_failed)",
        Figure::ColdStartMs => "Process spawn → ready",
        Figure::ServerCpuMsPer1kReq => "Server CPU time (user + system) per 1000 requests",
        Figure::LoadgenCpuMsPer1kReq => {
            "Load generator CPU time (user + system) per 1000 requests: the instrument's own cost"
        }
        Figure::ServerRssPeakBytes => "Peak resident memory of the server process",
        Figure::ArtifactSizeBytes => "Size of the built executable or .wasm",
        Figure::SyscallsPerReq => "System calls of the server process per request (every kind)",
        Figure::PollCallsPerReq => "poll/ppoll/epoll_wait/select calls per request",
        Figure::ReadCallsPerReq => "read/readv/recvfrom/recvmsg calls per request",
        Figure::WriteCallsPerReq => "write/writev/sendto/sendmsg calls per request",
        Figure::AcceptCallsPerReq => "accept/accept4 calls per request",
        Figure::ContextSwitchesPerReq => {
            "Voluntary + involuntary context switches of the server's threads per request"
        }
        Figure::PageFaultsPerReq => "Minor + major page faults of the server per request",
        Figure::InstructionsPerReq => {
            "Instructions retired by the server per request (CPU hardware counter)"
        }
    }
}

/// Whether any variant has a value for `f` (rows without any are left out).
pub(crate) fn present(c: &Comparison, f: Figure) -> bool {
    c.variants.iter().any(|v| {
        v.figure_value(f).is_some()
            || (f == Figure::CapacityRps && v.runs.iter().any(|r| r.capacity.is_some()))
    })
}

/// The value of `f` for `v`: median ± CI half-width, or the variant's status when it did not run.
pub(crate) fn cell(v: &VariantResult, f: Figure) -> String {
    if f == Figure::ArtifactSizeBytes {
        return v
            .artifact
            .as_ref()
            .map_or_else(|| "–".to_string(), |a| fmt_bytes(a.size_bytes as f64));
    }
    match v.status {
        VariantStatus::Failed => "failed".into(),
        VariantStatus::Skipped => "skipped".into(),
        VariantStatus::Ok => match v.aggregate.get(f) {
            Some(s) => format!("{}{}", fmt_stat(s, f.unit()), not_as_planned_mark(v)),
            None if f == Figure::CapacityRps => capacity_bound(v),
            None => "–".to_string(),
        },
    }
}

/// ` ⚠` after every figure of a variant whose runs did not go as planned (the warnings say
/// how), nothing otherwise.
fn not_as_planned_mark(v: &VariantResult) -> &'static str {
    if crate::planned::deviations(v).is_empty() {
        ""
    } else {
        " ⚠"
    }
}

/// A variant's capacity when no search found the server's limit: the best bound a search
/// gave (`≥ 40000 req/s (client-bound)`), never a bare number.
fn capacity_bound(v: &VariantResult) -> String {
    v.runs
        .iter()
        .filter_map(|r| r.capacity.as_ref())
        .max_by(|a, b| {
            a.passed_rps
                .unwrap_or(0.0)
                .total_cmp(&b.passed_rps.unwrap_or(0.0))
        })
        .map_or_else(|| "–".to_string(), |c| c.headline.clone())
}

/// The median alone (for compact cells).
pub(crate) fn median_cell(v: &VariantResult, f: Figure) -> String {
    v.figure_value(f)
        .map_or_else(|| "–".to_string(), |m| fmt_value(m, f.unit()))
}

/// The stored ratio of `f` for `v` with its 95% interval, `0.47x [0.44–0.51]`, or `–`.
pub(crate) fn ratio_cell(c: &Comparison, v: &VariantResult, f: Figure) -> String {
    c.ratio(&v.name, f).map_or_else(
        || "–".to_string(),
        |r| ratio_with_interval(r, c.ratio_interval(&v.name, f)),
    )
}

/// `0.47x [0.44–0.51x]`, or the ratio alone without a (non-empty) interval.
fn ratio_with_interval(r: f64, interval: Option<crate::stats::Interval>) -> String {
    match interval {
        Some(i) if i.high > i.low => format!(
            "{} [{}–{}]",
            fmt_ratio(r),
            fmt_ratio(i.low).trim_end_matches('x'),
            fmt_ratio(i.high)
        ),
        _ => fmt_ratio(r),
    }
}

/// The stored ratio of `f` for `v` alone, for tables of one short cell per variant.
pub(crate) fn compact_ratio_cell(c: &Comparison, v: &VariantResult, f: Figure) -> String {
    c.ratio(&v.name, f)
        .map_or_else(|| "–".to_string(), fmt_ratio)
}

/// What the values and ratios of the headline table are, in one sentence every renderer uses.
pub(crate) fn values_legend(c: &Comparison) -> String {
    format!(
        "values: median over repeats, with the 95% interval of the median in brackets (order \
         statistics) or, below 6 repeats, the range of the repeats; ratios: variant median / {} \
         median, with its 95% bootstrap interval over the repeats (resampled by round where \
         both ran the same ones) in brackets",
        c.baseline
    )
}

/// How precise the headline ratios got, for a run that repeated until a precision target.
pub(crate) fn precision_line(c: &Comparison) -> Option<String> {
    let Some(p) = c.precision.as_ref() else {
        // Without a target, still say how far the headline ratios can be trusted and which
        // one limits that.
        let base = c.baseline_variant()?;
        let others: Vec<&VariantResult> = c
            .variants
            .iter()
            .filter(|v| v.name != base.name && v.status == VariantStatus::Ok)
            .collect();
        let (w, by) = crate::model::headline_precision(
            &base.runs,
            others.iter().map(|v| (v.name.as_str(), v.runs.as_slice())),
        )?;
        return Some(format!(
            "precision: every headline ratio within ±{:.1}% at 95% (widest: {by}); \
             `--precision 5%` adds rounds until each is within ±5%",
            w * 100.0
        ));
    };
    let reached = match (&p.reached, &p.limited_by) {
        (Some(w), Some(by)) => format!(
            "every headline ratio within ±{:.1}% (widest: {by})",
            w * 100.0
        ),
        _ => "no headline ratio has an interval yet".to_string(),
    };
    Some(format!(
        "precision: {reached}, target ±{:.1}%, after {} repeat{} per variant ({}; budget {}s)",
        p.target * 100.0,
        p.repeats,
        if p.repeats == 1 { "" } else { "s" },
        p.stopped.describe(),
        p.max_time_s
    ))
}

/// One-line plan summary.
pub(crate) fn plan_line(c: &Comparison) -> String {
    let p = &c.plan;
    let what = if p.mix.is_empty() {
        format!(
            "{} {} ({} B body)",
            p.request.method, p.request.path, p.request.body_bytes
        )
    } else {
        let names: Vec<String> = p
            .mix
            .iter()
            .map(|m| format!("{}×{}", m.name, m.weight))
            .collect();
        format!("mix [{}]", names.join(" "))
    };
    let runs = match p.design {
        Some(d @ (Design::Interleaved | Design::Duet)) => format!(
            "{} round{} of one {}s block per variant ({})",
            p.repeats,
            if p.repeats == 1 { "" } else { "s" },
            p.duration_s,
            match d {
                Design::Duet => "servers started once, a round's blocks at the same time",
                _ => "servers started once",
            }
        ),
        Some(Design::Restart) | None => format!(
            "{} repeat{} of {}s",
            p.repeats,
            if p.repeats == 1 { "" } else { "s" },
            p.duration_s
        ),
    };
    let limit = p
        .server_cpu_limit
        .map(|c| format!(", every server limited to {c} CPU"))
        .unwrap_or_default();
    format!(
        "{} {what}, {} by {}, {}, {runs} after {}s warm-up{limit}",
        p.workload,
        p.executor,
        p.load_engine,
        p.connection_mode.as_str(),
        p.warmup_s
    )
}

/// The command line as a shell would take it back: each argument quoted where needed.
pub(crate) fn command_text(c: &Comparison) -> String {
    shlex::try_join(c.meta.command_line.iter().map(String::as_str))
        // Only a NUL byte cannot be quoted; no shell takes it, so show it as it came.
        .unwrap_or_else(|_| c.meta.command_line.join(" "))
}

/// `wasmtime 48.0.8`, or `wasmtime (version unknown)` when the run could not observe it.
pub(crate) fn runtime_label(r: &RuntimeInfo) -> String {
    if r.version == UNKNOWN {
        format!("{} (version unknown)", r.name)
    } else {
        format!("{} {}", r.name, r.version)
    }
}

/// Runtime summary of a variant, e.g. `wasmtime 48.0.8, cranelift-jit, wasip2, pooling`.
pub(crate) fn runtime_line(v: &VariantResult) -> String {
    let r = &v.runtime;
    let mut s = format!(
        "{}, {}, {}",
        runtime_label(r),
        r.mode.as_str(),
        r.target.as_str()
    );
    if let Some(v) = r.details.get("host.wasi_http") {
        s.push_str(&format!(", wasi:http {v}"));
    }
    match crate::explain::instance_reuse(r) {
        Some(1) => s.push_str(", instance per request"),
        Some(n) => s.push_str(&format!(", instance reuse {n}")),
        None => {}
    }
    match r.pooling {
        Some(true) => match r.details.get(wasmbench_vocab::POOL_DETAIL) {
            Some(pool) => s.push_str(&format!(", pooling ({pool})")),
            None => s.push_str(", pooling"),
        },
        Some(false) => s.push_str(", no pooling"),
        None => {}
    }
    if let Some(m) = &v.workload_mode {
        s.push_str(&format!(", {m} mode"));
    }
    s
}

/// Status text with the reason.
pub(crate) fn status_line(v: &VariantResult) -> String {
    let s = match v.status {
        VariantStatus::Ok => format!("ok ({} runs)", v.runs.len()),
        VariantStatus::Failed => "failed".into(),
        VariantStatus::Skipped => "skipped".into(),
    };
    match &v.reason {
        Some(r) => format!("{s}: {r}"),
        None => s,
    }
}

/// `node-b ×2, node-c ×1`.
pub(crate) fn pods_per_node(p: &Placement) -> String {
    if p.load_pods_per_node.is_empty() {
        return "none".into();
    }
    p.load_pods_per_node
        .iter()
        .map(|(node, n)| format!("{node} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Label/value rows of the cluster a Kubernetes comparison ran on (none for a local one), for
/// every renderer's environment section.
pub(crate) fn kubernetes_rows(c: &Comparison) -> Vec<(String, String)> {
    let Some(k) = &c.meta.environment.kubernetes else {
        return Vec::new();
    };
    let mut rows = vec![(
        "cluster".to_string(),
        format!(
            "Kubernetes {}, namespace {} ({})",
            k.server_version,
            k.namespace,
            if k.cleaned_up {
                "deleted after the run"
            } else {
                "kept"
            }
        ),
    )];
    for n in &k.nodes {
        rows.push((
            format!("node {}", n.name),
            format!(
                "kubelet {}, {}, kernel {}, {}, {}, {} CPUs, {}{}",
                n.kubelet_version,
                n.container_runtime_version,
                n.kernel_version,
                n.os_image,
                n.architecture,
                n.cpu_capacity,
                fmt_bytes(n.memory_capacity_bytes as f64),
                if n.schedulable {
                    ""
                } else {
                    ", not schedulable"
                }
            ),
        ));
    }
    for (what, r) in [
        ("echo pod resources", &k.server_resources),
        ("load pod resources", &k.load_resources),
    ] {
        rows.push((
            what.to_string(),
            format!(
                "CPU {} request / {} limit, memory {} request / {} limit",
                r.cpu_request, r.cpu_limit, r.memory_request, r.memory_limit
            ),
        ));
    }
    for (name, p) in &k.variants {
        let class = match (&p.runtime_class, &p.handler) {
            (None, _) => "no RuntimeClass (the node's default runtime)".to_string(),
            (Some(rc), Some(h)) => format!("RuntimeClass {rc} (handler {h})"),
            (Some(rc), None) => {
                format!("RuntimeClass {rc} (handler unknown: not readable, or not found)")
            }
        };
        rows.push((
            format!("pods of {name}"),
            format!(
                "{class}; server on {}; load pods: {}",
                if p.server_nodes.is_empty() {
                    "no node".to_string()
                } else {
                    p.server_nodes.join(", ")
                },
                pods_per_node(p)
            ),
        ));
    }
    rows
}

/// The rows of the table against a saved run (`--baseline`): a header, then one row per
/// variant and figure; `None` without a saved run.
pub(crate) fn saved_rows(c: &Comparison) -> Option<(String, Vec<Vec<String>>)> {
    let s = c.saved.as_ref()?;
    let heading = format!(
        "against the saved run in {} (started {}): a change counts when its whole 95% interval is beyond ±{:.1}%",
        s.dir,
        s.saved_started_at,
        s.threshold * 100.0
    );
    let mut rows = vec![
        ["variant", "metric", "saved", "now", "now/saved", "verdict"]
            .map(String::from)
            .to_vec(),
    ];
    for ch in &s.changes {
        let unit = ch.figure.unit();
        let change = ratio_with_interval(ch.ratio, ch.interval);
        rows.push(vec![
            ch.variant.clone(),
            ch.figure.label().to_string(),
            fmt_value(ch.saved, unit),
            fmt_value(ch.now, unit),
            change,
            match ch.verdict {
                crate::saved::Verdict::Improved => "improved",
                crate::saved::Verdict::Unchanged => "within noise",
                crate::saved::Verdict::Regressed => "REGRESSED",
            }
            .to_string(),
        ]);
    }
    Some((heading, rows))
}
