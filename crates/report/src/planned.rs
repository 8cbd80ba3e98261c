//! Whether a variant's runs happened as planned: every VU served, every connection opened,
//! the run ending on time, no iteration cut off. A run that did not is still measured, but
//! its figures describe a smaller load than the plan's, so the report says how far off it was
//! and marks the figures.

use crate::model::{RunResult, VariantResult, VariantStatus};

/// How each of `v`'s runs departed from its plan, one phrase per kind with the worst run's
/// figure; empty when every run went as planned or none says what was planned.
pub fn deviations(v: &VariantResult) -> Vec<String> {
    if v.status != VariantStatus::Ok {
        return Vec::new();
    }
    let runs: Vec<(&RunResult, crate::model::PlannedRun)> = v
        .runs
        .iter()
        .filter_map(|r| Some((r, r.planned?)))
        .collect();
    let n = runs.len();
    let of = |k: usize| {
        if n > 1 {
            format!(" (in {k} of {n} runs)")
        } else {
            String::new()
        }
    };
    let mut out = Vec::new();
    // (worst figure, runs affected) over the runs where `f` gives one.
    let worst = |f: &dyn Fn(&RunResult, &crate::model::PlannedRun) -> Option<u64>, max: bool| {
        let found: Vec<u64> = runs.iter().filter_map(|(r, p)| f(r, p)).collect();
        let w = if max {
            found.iter().copied().max()
        } else {
            found.iter().copied().min()
        };
        w.map(|w| (w, found.len()))
    };
    let idle_vus = |r: &RunResult, p: &crate::model::PlannedRun| {
        p.vus?;
        let t = r.tail.as_ref()?;
        let idle = t.requests_per_vu.iter().filter(|&&n| n == 0).count() as u64;
        (idle > 0).then_some(idle)
    };
    if let Some((idle, k)) = worst(&idle_vus, true) {
        let vus = runs.iter().find_map(|(_, p)| p.vus).unwrap_or(0);
        out.push(format!("{idle} of {vus} VUs completed no request{}", of(k)));
    }
    let few_connections = |r: &RunResult, p: &crate::model::PlannedRun| {
        let opened = r.connections_opened?;
        (opened < p.vus?).then_some(opened)
    };
    if let Some((opened, k)) = worst(&few_connections, false) {
        let vus = runs.iter().find_map(|(_, p)| p.vus).unwrap_or(0);
        out.push(format!(
            "only {opened} connections opened for {vus} VUs{}",
            of(k)
        ));
    }
    let overran = runs
        .iter()
        .filter(|(r, p)| p.overran(r.duration_s))
        .collect::<Vec<_>>();
    if let Some((longest, plan)) = overran
        .iter()
        .map(|(r, p)| (r.duration_s, p.duration_s))
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        out.push(format!(
            "runs lasted up to {longest:.1} s of a planned {plan:.1} s{} (throughput counts \
             the requests started in the planned window)",
            of(overran.len())
        ));
    }
    let interrupted = |_: &RunResult, p: &crate::model::PlannedRun| {
        (p.interrupted_iterations > 0).then_some(p.interrupted_iterations)
    };
    if let Some((cut, k)) = worst(&interrupted, true) {
        out.push(format!("{cut} iterations interrupted at the end{}", of(k)));
    }
    out
}

/// The warning on every variant whose runs did not go as planned, or `None`.
pub fn warning(variants: &[VariantResult]) -> Option<String> {
    let parts: Vec<String> = variants
        .iter()
        .filter_map(|v| {
            let d = deviations(v);
            (!d.is_empty()).then(|| format!("{}: {}", v.name, d.join(", ")))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Runs that did not go as planned, so their figures (marked ⚠) describe a smaller \
             load than the plan's: {}. A server that accepts fewer connections than there are \
             VUs (a small listen backlog) or answers some of them very late does this.",
            parts.join("; ")
        )
    })
}
