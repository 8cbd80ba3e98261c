//! Cell formatting shared by the text, Markdown and HTML tables.

use crate::model::{Comparison, Figure, VariantResult, VariantStatus};
use crate::units::{fmt_bytes, fmt_ratio, fmt_stat, fmt_value};

/// Rows of the headline table, in order: every figure but `iteration_duration`, which in the
/// closed model repeats `http_req_duration`.
pub(crate) fn table_figures() -> impl Iterator<Item = Figure> {
    Figure::ALL
        .into_iter()
        .filter(|f| *f != Figure::IterationDurationP95Ms)
}

/// k6's description of a figure (the demo's "Description" column).
pub(crate) fn description(f: Figure) -> &'static str {
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
        Figure::HttpReqDurationP50Ms => "Median request time (sending + waiting + receiving)",
        Figure::HttpReqDurationP95Ms => "95th percentile request time",
        Figure::HttpReqDurationP99Ms => "99th percentile request time",
        Figure::IterationDurationP95Ms => "Time to complete one full iteration",
        Figure::HttpReqFailedRate => "Share of failed requests (http_req_failed)",
        Figure::ColdStartMs => "Process spawn → first 200 on /healthz",
        Figure::ServerCpuMsPer1kReq => "Server CPU time (user + system) per 1000 requests",
        Figure::ServerRssPeakBytes => "Peak resident memory of the server process",
        Figure::ArtifactSizeBytes => "Size of the built executable or .wasm",
    }
}

/// Whether any variant has a value for `f` (rows without any are left out).
pub(crate) fn present(c: &Comparison, f: Figure) -> bool {
    c.variants.iter().any(|v| v.figure_value(f).is_some())
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
        VariantStatus::Ok => v
            .aggregate
            .get(f)
            .map_or_else(|| "–".to_string(), |s| fmt_stat(s, f.unit())),
    }
}

/// The median alone (for compact cells).
pub(crate) fn median_cell(v: &VariantResult, f: Figure) -> String {
    v.figure_value(f)
        .map_or_else(|| "–".to_string(), |m| fmt_value(m, f.unit()))
}

/// The stored ratio of `f` for `v`, or `–`.
pub(crate) fn ratio_cell(c: &Comparison, v: &VariantResult, f: Figure) -> String {
    c.ratio(&v.name, f)
        .map_or_else(|| "–".to_string(), fmt_ratio)
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
    format!(
        "{} {what}, {}, {}, {} repeat{} of {}s after {}s warm-up",
        p.workload,
        p.executor,
        p.connection_mode.as_str(),
        p.repeats,
        if p.repeats == 1 { "" } else { "s" },
        p.duration_s,
        p.warmup_s
    )
}

/// Runtime summary of a variant, e.g. `wasmtime 48.0.8, cranelift-jit, wasip2, pooling`.
pub(crate) fn runtime_line(v: &VariantResult) -> String {
    let r = &v.runtime;
    let mut s = format!(
        "{} {}, {}, {}",
        r.name,
        r.version,
        r.mode.as_str(),
        r.target.as_str()
    );
    match r.pooling {
        Some(true) => s.push_str(", pooling"),
        Some(false) => s.push_str(", no pooling"),
        None => {}
    }
    s.push_str(&format!(", {} mode", v.workload_mode));
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
