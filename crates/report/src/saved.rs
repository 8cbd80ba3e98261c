//! A run against a saved one (`compare --baseline DIR`): each figure's change, with a bootstrap
//! interval over both runs' repeats, and whether it is a change beyond the noise threshold.

use serde::{Deserialize, Serialize};

use crate::model::{Comparison, Figure, PlanRecord, VariantStatus};
use crate::stats::{Interval, Stat, ratio_interval};

/// The figures compared with a saved run: the headline ratios' figures and the ones a change
/// in a runtime or build usually moves.
pub const COMPARED_FIGURES: [Figure; 8] = [
    Figure::ThroughputRps,
    Figure::CapacityRps,
    Figure::HttpReqWaitingP95Ms,
    Figure::HttpReqDurationP95Ms,
    Figure::ServerCpuMsPer1kReq,
    Figure::ColdStartMs,
    Figure::ServerRssPeakBytes,
    // Counted, not timed: a gate on it does not flake with the machine.
    Figure::InstructionsPerReq,
];

/// This run compared with a saved one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedComparison {
    /// Where the saved run was read from.
    pub dir: String,
    /// When the saved run started (RFC 3339).
    pub saved_started_at: String,
    /// A change counts only when its whole 95% interval is beyond this share (0.05: 5%).
    pub threshold: f64,
    /// One entry per variant and figure both runs measured.
    pub changes: Vec<Change>,
}

/// One figure of one variant, then and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Variant name.
    pub variant: String,
    /// The figure.
    pub figure: Figure,
    /// Median of the saved run.
    pub saved: f64,
    /// Median of this run.
    pub now: f64,
    /// `now / saved`.
    pub ratio: f64,
    /// 95% bootstrap interval of `ratio` over both runs' repeats (absent below two a side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// What the change amounts to.
    pub verdict: Verdict,
}

/// Whether a figure moved beyond noise, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Better beyond the threshold, with the whole interval beyond it.
    Improved,
    /// Within noise: the interval reaches inside the threshold.
    Unchanged,
    /// Worse beyond the threshold, with the whole interval beyond it.
    Regressed,
}

/// Why a saved run cannot be compared with this one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanMismatch(pub String);

/// Compares `now` with `saved` read from `dir`: both must have run the same variants under the
/// same plan (the request, executor, VUs, run length, connection mode, workload and warm-up).
pub fn against_saved(
    now: &Comparison,
    saved: &Comparison,
    dir: &str,
    threshold: f64,
) -> Result<SavedComparison, PlanMismatch> {
    let names: Vec<String> = now.variants.iter().map(|v| v.name.clone()).collect();
    check_comparable(saved, &now.plan, &names, dir)?;
    let mut changes = Vec::new();
    for v in now
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
    {
        let Some(old) = saved
            .variant(&v.name)
            .filter(|o| o.status == VariantStatus::Ok)
        else {
            continue;
        };
        for f in COMPARED_FIGURES {
            let (a, b) = (v.samples(f), old.samples(f));
            let (Some(sa), Some(sb)) = (Stat::from_samples(&a), Stat::from_samples(&b)) else {
                continue;
            };
            let ratio = sa.median / sb.median;
            if sb.median == 0.0 || !ratio.is_finite() {
                continue;
            }
            let interval = ratio_interval(&a, &b);
            changes.push(Change {
                variant: v.name.clone(),
                figure: f,
                saved: sb.median,
                now: sa.median,
                ratio,
                interval,
                verdict: verdict(f, ratio, interval, threshold),
            });
        }
    }
    Ok(SavedComparison {
        dir: dir.to_string(),
        saved_started_at: saved.meta.started_at.clone(),
        threshold,
        changes,
    })
}

/// Whether a run of `plan` over `variants` can be compared with `saved` (read from `dir`):
/// the same variants under the same plan; the error names the first difference.
pub fn check_comparable(
    saved: &Comparison,
    plan: &PlanRecord,
    variants: &[String],
    dir: &str,
) -> Result<(), PlanMismatch> {
    if let Some(diff) = plan_difference(&saved.plan, plan) {
        return Err(PlanMismatch(format!(
            "--baseline {dir}: the saved run ran a different plan ({diff}); give the same flags \
             as the saved run, or save a new baseline"
        )));
    }
    let before: Vec<&str> = saved.variants.iter().map(|v| v.name.as_str()).collect();
    if before != variants.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(PlanMismatch(format!(
            "--baseline {dir}: the saved run compared variants [{}], this one [{}]; give the \
             same --variants as the saved run, or save a new baseline",
            before.join(", "),
            variants.join(", ")
        )));
    }
    Ok(())
}

/// A change counts when the whole interval (the ratio itself without one) lies beyond
/// `1 ± threshold`; its direction says whether that is better or worse for `f`.
fn verdict(f: Figure, ratio: f64, interval: Option<Interval>, threshold: f64) -> Verdict {
    let (low, high) = interval.map_or((ratio, ratio), |i| (i.low, i.high));
    let up = low > 1.0 + threshold;
    let down = high < 1.0 - threshold;
    match (up, down, f.higher_is_better()) {
        (true, _, true) | (_, true, false) => Verdict::Improved,
        (true, _, false) | (_, true, true) => Verdict::Regressed,
        _ => Verdict::Unchanged,
    }
}

/// The first setting two plans differ in, named as the flag that sets it.
fn plan_difference(a: &PlanRecord, b: &PlanRecord) -> Option<String> {
    // Saved runs from before the designs were named restarted every server.
    let design = |p: &PlanRecord| p.design.map_or("restart", |d| d.as_str()).to_string();
    let fields: [(&str, String, String); 9] = [
        ("workload", a.workload.clone(), b.workload.clone()),
        ("--design", design(a), design(b)),
        (
            "request",
            format!(
                "{} {} {} B",
                a.request.method, a.request.path, a.request.body_bytes
            ),
            format!(
                "{} {} {} B",
                b.request.method, b.request.path, b.request.body_bytes
            ),
        ),
        ("--vus", a.vus.to_string(), b.vus.to_string()),
        (
            "--duration",
            format!("{}s", a.duration_s),
            format!("{}s", b.duration_s),
        ),
        (
            "--connection",
            a.connection_mode.as_str().to_string(),
            b.connection_mode.as_str().to_string(),
        ),
        (
            "--warmup",
            format!("{}s", a.warmup_s),
            format!("{}s", b.warmup_s),
        ),
        (
            "mix",
            format!(
                "{:?}",
                a.mix
                    .iter()
                    .map(|m| (&m.name, m.weight))
                    .collect::<Vec<_>>()
            ),
            format!(
                "{:?}",
                b.mix
                    .iter()
                    .map(|m| (&m.name, m.weight))
                    .collect::<Vec<_>>()
            ),
        ),
        // Last: its line repeats the VUs and duration named above.
        ("--executor", a.executor.clone(), b.executor.clone()),
    ];
    fields
        .into_iter()
        .find(|(_, x, y)| x != y)
        .map(|(what, x, y)| format!("{what} {x} then, {y} now"))
}

impl SavedComparison {
    /// The changes judged [`Verdict::Regressed`].
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.verdict == Verdict::Regressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_only_when_its_whole_interval_is_beyond_the_threshold() {
        let i = |low, high| Some(Interval { low, high });
        let t = 0.05;
        assert_eq!(
            verdict(Figure::ServerCpuMsPer1kReq, 1.2, i(1.1, 1.3), t),
            Verdict::Regressed
        );
        assert_eq!(
            verdict(Figure::ServerCpuMsPer1kReq, 1.2, i(1.01, 1.3), t),
            Verdict::Unchanged
        );
        assert_eq!(
            verdict(Figure::ThroughputRps, 1.2, i(1.1, 1.3), t),
            Verdict::Improved
        );
        assert_eq!(
            verdict(Figure::ThroughputRps, 0.8, i(0.7, 0.9), t),
            Verdict::Regressed
        );
        assert_eq!(
            verdict(Figure::HttpReqWaitingP95Ms, 0.8, i(0.7, 0.9), t),
            Verdict::Improved
        );
        assert_eq!(
            verdict(Figure::HttpReqWaitingP95Ms, 1.04, None, t),
            Verdict::Unchanged
        );
    }
}
