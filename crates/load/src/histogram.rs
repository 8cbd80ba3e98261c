//! HDR histograms of nanoseconds and the k6 statistics read from them: percentiles, the
//! [`TrendStats`] of a trend and the statistics `summary_trend_stats` names.

use hdrhistogram::Histogram;
use wasmbench_vocab::TrendStats;

use crate::error::LoadError;

/// Histograms record nanoseconds with 3 significant digits; they start sized for 2 minutes
/// and grow on demand (rarely: only for larger values), so recording never fails.
pub(crate) fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 120_000_000_000, 3)
        .expect("static histogram bounds are valid");
    h.auto(true);
    h
}

/// Value (ns) at 0-based rank `r` of the sorted samples; the bucket's middle value.
fn rank_value(h: &Histogram<u64>, r: u64) -> f64 {
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen > r {
            return h.median_equivalent(v.value_iterated_to()) as f64;
        }
    }
    h.max() as f64
}

/// k6's percentile: linear interpolation at index `q/100 · (n − 1)`; result in ms.
pub(crate) fn percentile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    let n = h.len();
    if n == 0 {
        return 0.0;
    }
    let i = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let (lo, hi) = (i.floor() as u64, i.ceil() as u64);
    let a = rank_value(h, lo);
    let v = if hi == lo {
        a
    } else {
        a + (rank_value(h, hi) - a) * (i - lo as f64)
    };
    v / 1e6
}

/// Statistics of one trend in ms (k6's conventions: `med` and percentiles interpolate linearly
/// between the two closest ranks); all zero for an empty histogram.
pub(crate) fn trend_stats(h: &Histogram<u64>) -> TrendStats {
    if h.is_empty() {
        return TrendStats::default();
    }
    TrendStats {
        avg_ms: h.mean() / 1e6,
        min_ms: percentile_ms(h, 0.0),
        med_ms: percentile_ms(h, 50.0),
        max_ms: percentile_ms(h, 100.0),
        p90_ms: percentile_ms(h, 90.0),
        p95_ms: percentile_ms(h, 95.0),
        p99_ms: percentile_ms(h, 99.0),
        count: h.len(),
    }
}

/// One statistic of `summary_trend_stats`: `avg`, `min`, `med`, `max`, `count` or `p(N)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrendStat {
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Median.
    Med,
    /// Maximum.
    Max,
    /// Sample count.
    Count,
    /// Percentile 0–100.
    P(f64),
}

impl TrendStat {
    /// Parses one statistic name.
    pub fn parse(s: &str) -> Result<TrendStat, LoadError> {
        Ok(match s.trim() {
            "avg" => TrendStat::Avg,
            "min" => TrendStat::Min,
            "med" => TrendStat::Med,
            "max" => TrendStat::Max,
            "count" => TrendStat::Count,
            p => p
                .strip_prefix("p(")
                .and_then(|x| x.strip_suffix(')'))
                .and_then(|x| x.parse::<f64>().ok())
                .filter(|q| (0.0..=100.0).contains(q))
                .map(TrendStat::P)
                .ok_or_else(|| {
                    LoadError::InvalidPlan(format!(
                        "summary trend stat `{s}` is unknown: use avg, min, med, max, count or p(N)"
                    ))
                })?,
        })
    }

    /// The statistic of `h`: ms, or the sample count for [`TrendStat::Count`].
    pub(crate) fn value(self, h: &Histogram<u64>) -> f64 {
        match self {
            TrendStat::Avg => h.mean() / 1e6,
            TrendStat::Min => percentile_ms(h, 0.0),
            TrendStat::Med => percentile_ms(h, 50.0),
            TrendStat::Max => percentile_ms(h, 100.0),
            TrendStat::Count => h.len() as f64,
            TrendStat::P(q) => percentile_ms(h, q),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_k6() {
        let mut h = new_histogram();
        for v in [1_000_000u64, 2_000_000, 3_000_000, 4_000_000] {
            h.record(v).unwrap();
        }
        // k6: med of [1,2,3,4] ms = 2.5; p(90) = 3 + 0.7 = 3.7.
        assert!((percentile_ms(&h, 50.0) - 2.5).abs() < 0.005);
        assert!((percentile_ms(&h, 90.0) - 3.7).abs() < 0.005);
        assert!((percentile_ms(&h, 0.0) - 1.0).abs() < 0.002);
        assert!((percentile_ms(&h, 100.0) - 4.0).abs() < 0.004);
    }

    #[test]
    fn trend_stats_agree_with_the_named_statistics() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 7_919).unwrap();
        }
        let t = trend_stats(&h);
        let of = |s: &str| TrendStat::parse(s).unwrap().value(&h);
        assert_eq!(
            [t.avg_ms, t.min_ms, t.med_ms, t.max_ms],
            [of("avg"), of("min"), of("med"), of("max")]
        );
        assert_eq!(
            [t.p90_ms, t.p95_ms, t.p99_ms],
            [of("p(90)"), of("p(95)"), of("p(99)")]
        );
        assert_eq!(t.count as f64, of(" count "));
        assert_eq!(trend_stats(&new_histogram()), TrendStats::default());
    }

    #[test]
    fn statistic_names_outside_the_list_are_refused() {
        assert_eq!(TrendStat::parse("p(99.9)").unwrap(), TrendStat::P(99.9));
        for bad in ["p(101)", "p(x)", "p95", "mean", ""] {
            let e = TrendStat::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("avg, min, med, max, count or p(N)"),
                "{bad}: {e}"
            );
        }
    }
}
