//! The per-request table of a request mix: for every request of the mix, each variant's
//! throughput and p95 latencies (medians over repeats) and their ratio to the baseline.

use crate::model::Unit;
use crate::model::{Comparison, VariantResult, VariantStatus};
use crate::stats::Stat;
use crate::units::{fmt_ratio, fmt_value};

/// What a row of the mix table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixFigure {
    /// Requests of this kind per second.
    ThroughputRps,
    /// p95 of `http_req_waiting{name:…}`.
    WaitingP95Ms,
    /// p95 of `http_req_duration{name:…}`.
    DurationP95Ms,
}

impl MixFigure {
    /// Every figure, in table order.
    pub const ALL: [MixFigure; 3] = [
        MixFigure::ThroughputRps,
        MixFigure::WaitingP95Ms,
        MixFigure::DurationP95Ms,
    ];

    /// Column label.
    pub fn label(self) -> &'static str {
        match self {
            MixFigure::ThroughputRps => "req/s",
            MixFigure::WaitingP95Ms => "p95 waiting",
            MixFigure::DurationP95Ms => "p95 duration",
        }
    }

    fn unit(self) -> Unit {
        match self {
            MixFigure::ThroughputRps => Unit::PerS,
            _ => Unit::Ms,
        }
    }
}

/// Statistics over the repeats of `v` for request `name` of the mix.
pub fn mix_stat(v: &VariantResult, name: &str, f: MixFigure) -> Option<Stat> {
    if v.status != VariantStatus::Ok {
        return None;
    }
    let samples: Vec<f64> = v
        .runs
        .iter()
        .filter_map(|r| r.by_request.get(name))
        .map(|b| match f {
            MixFigure::ThroughputRps => b.throughput_rps,
            MixFigure::WaitingP95Ms => b.waiting.p95_ms,
            MixFigure::DurationP95Ms => b.duration.p95_ms,
        })
        .collect();
    Stat::from_samples(&samples)
}

/// Median of `v` over the baseline's median for request `name`.
pub fn mix_ratio(c: &Comparison, v: &VariantResult, name: &str, f: MixFigure) -> Option<f64> {
    let base = mix_stat(c.baseline_variant()?, name, f)?.median;
    let mine = mix_stat(v, name, f)?.median;
    (base != 0.0).then(|| mine / base)
}

/// The mix table as rows of cells: header first, then one row per (request, figure); each
/// variant cell is `median (ratio)`. Empty when the plan has no mix.
pub(crate) fn mix_rows(c: &Comparison) -> Vec<Vec<String>> {
    if c.plan.mix.is_empty() {
        return Vec::new();
    }
    let mut head = vec!["Request".to_string(), "Figure".to_string()];
    head.extend(c.variants.iter().map(|v| v.name.clone()));
    let mut rows = vec![head];
    for m in &c.plan.mix {
        for f in MixFigure::ALL {
            let mut row = vec![
                format!("{}: {} {} (weight {})", m.name, m.method, m.path, m.weight),
                f.label().to_string(),
            ];
            for v in &c.variants {
                let cell = match mix_stat(v, &m.name, f) {
                    None => "–".to_string(),
                    Some(s) => {
                        let value = fmt_value(s.median, f.unit());
                        match (v.name == c.baseline, mix_ratio(c, v, &m.name, f)) {
                            (false, Some(r)) => format!("{value} ({})", fmt_ratio(r)),
                            _ => value,
                        }
                    }
                };
                row.push(cell);
            }
            rows.push(row);
        }
    }
    rows
}
