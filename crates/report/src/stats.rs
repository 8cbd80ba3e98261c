//! Summary statistics over repeats: the median with a distribution-free interval, spread,
//! outliers, and a bootstrap interval for the ratio of two medians.
//!
//! Repeats of a benchmark are few and often skewed (one slow start among fast ones), so no
//! interval here assumes a normal distribution: the median's comes from order statistics, a
//! ratio's from resampling the repeats.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Coefficient of variation above which a figure is reported as noisy (hyperfine uses 10% too).
pub const CV_WARN_THRESHOLD: f64 = 0.10;

/// Confidence the intervals aim at.
pub const CONFIDENCE: f64 = 0.95;

/// Fewest samples an outlier is named among: with fewer, the median absolute deviation is
/// itself too uncertain to call one of them exceptional (one of three runs that differs is
/// as likely the typical one), and the median's interval already spans them.
pub const OUTLIER_MIN_SAMPLES: usize = 6;
/// Modified z-score (Iglewicz & Hoaglin) beyond which a sample is named an outlier.
pub const OUTLIER_Z: f64 = 3.5;

/// Samples the ratio bootstrap draws; fixed, with a fixed seed, so a report re-rendered from
/// the same repeats states the same interval.
const BOOTSTRAP_RESAMPLES: usize = 4000;
const BOOTSTRAP_SEED: u64 = 0x05ee_d0f7_a710;

/// Statistics of one figure over its samples (usually one sample per repeat).
///
/// All values carry the unit of the figure they describe (the figure's name says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stat {
    /// Median of the samples; ratios between variants are ratios of medians.
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); 0 for a single sample.
    pub stddev: f64,
    /// Coefficient of variation, `stddev / mean` (0 when the mean is 0).
    pub cv: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Lower bound of the interval of the median, from order statistics (see `ci_level`).
    pub ci_low: f64,
    /// Upper bound of the interval of the median, from order statistics (see `ci_level`).
    pub ci_high: f64,
    /// Exact coverage of `[ci_low, ci_high]` for any continuous distribution: at least 0.95
    /// from 6 samples on; below that the interval is the sample range, which covers the median
    /// with probability 1 − 2^(1−n) (0.75 for 3 samples), and 0 for a single sample.
    pub ci_level: f64,
    /// Number of samples.
    pub n: u32,
    /// Samples whose modified z-score exceeds [`OUTLIER_Z`]: named, and kept in every figure
    /// above (the median and its interval resist them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outliers: Vec<f64>,
}

impl Stat {
    /// Statistics of `samples`; non-finite values are ignored. `None` when no finite sample is left.
    pub fn from_samples(samples: &[f64]) -> Option<Stat> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = median_of_sorted(&v);
        let mean = v.iter().sum::<f64>() / n as f64;
        let stddev = if n > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let cv = if mean != 0.0 {
            stddev / mean.abs()
        } else {
            0.0
        };
        let (k, ci_level) = median_interval_rank(n);
        Some(Stat {
            median,
            mean,
            stddev,
            cv,
            min: v[0],
            max: v[n - 1],
            ci_low: v[k],
            ci_high: v[n - 1 - k],
            ci_level,
            n: u32::try_from(n).unwrap_or(u32::MAX),
            outliers: outliers(&v, median),
        })
    }

    /// True when the samples spread more than [`CV_WARN_THRESHOLD`] around their mean.
    pub fn is_noisy(&self) -> bool {
        self.n > 1 && self.cv > CV_WARN_THRESHOLD
    }

    /// Whether the interval reaches [`CONFIDENCE`] (enough samples for it).
    pub fn is_confident(&self) -> bool {
        self.ci_level >= CONFIDENCE
    }
}

/// An interval around a ratio of two figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// The larger distance from `center` to either bound, as a share of `center`
    /// (what "within ±5%" is checked against).
    pub fn relative_half_width(&self, center: f64) -> f64 {
        if center == 0.0 {
            return f64::INFINITY;
        }
        ((center - self.low).max(self.high - center) / center).abs()
    }
}

/// The 95% percentile-bootstrap interval of `median(num) / median(den)`: each side's repeats
/// are resampled with replacement, independently, [`BOOTSTRAP_RESAMPLES`] times. `None` with
/// fewer than 2 finite samples on either side, or a zero median in a resample.
pub fn ratio_interval(num: &[f64], den: &[f64]) -> Option<Interval> {
    let a: Vec<f64> = num.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = den.iter().copied().filter(|x| x.is_finite()).collect();
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    percentile_interval(|| {
        for x in ra.iter_mut() {
            *x = a[rng.gen_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.gen_range(0..b.len())];
        }
        median_ratio(&mut ra, &mut rb)
    })
}

/// The 95% percentile-bootstrap interval of `median(num) / median(den)` over paired samples
/// (`(num, den)` measured in the same round of interleaved repeats): the rounds are resampled
/// with replacement, each keeping its two values together, so what moved both variants of a
/// round (the machine's state at the time) does not widen the interval. `None` with fewer
/// than 2 finite pairs, or a zero median in a resample.
pub fn paired_ratio_interval(pairs: &[(f64, f64)]) -> Option<Interval> {
    let p: Vec<(f64, f64)> = pairs
        .iter()
        .copied()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    if p.len() < 2 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut ra = vec![0.0; p.len()];
    let mut rb = vec![0.0; p.len()];
    percentile_interval(|| {
        for (x, y) in ra.iter_mut().zip(rb.iter_mut()) {
            (*x, *y) = p[rng.gen_range(0..p.len())];
        }
        median_ratio(&mut ra, &mut rb)
    })
}

/// `median(a) / median(b)`, sorting both in place.
fn median_ratio(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    median_of_sorted(a) / median_of_sorted(b)
}

/// The [`CONFIDENCE`] percentile interval of [`BOOTSTRAP_RESAMPLES`] values of `resample`;
/// `None` when one is not finite.
fn percentile_interval(mut resample: impl FnMut() -> f64) -> Option<Interval> {
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let r = resample();
        if !r.is_finite() {
            return None;
        }
        ratios.push(r);
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let at =
        |q: f64| ratios[((q * (ratios.len() - 1) as f64).round() as usize).min(ratios.len() - 1)];
    Some(Interval {
        low: at(tail),
        high: at(1.0 - tail),
    })
}

fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The 0-based rank `k` such that `[x(k), x(n−1−k)]` is the narrowest order-statistic
/// interval covering the median with probability ≥ [`CONFIDENCE`], and that coverage; the
/// range (k = 0) when no interval reaches it.
fn median_interval_rank(n: usize) -> (usize, f64) {
    if n < 2 {
        return (0, 0.0);
    }
    // P(Binomial(n, ½) ≤ j), accumulated exactly in floating point for the counts used here.
    let mut cdf = Vec::with_capacity(n / 2 + 1);
    let mut term = 0.5f64.powi(n as i32); // C(n, 0) / 2^n
    let mut sum = 0.0;
    for j in 0..=n / 2 {
        if j > 0 {
            term *= (n - j + 1) as f64 / j as f64;
        }
        sum += term;
        cdf.push(sum);
    }
    // Coverage of [x(k), x(n−1−k)] is 1 − 2·P(B ≤ k).
    let mut best = (0, 1.0 - 2.0 * cdf[0]);
    for (k, tail) in cdf.iter().enumerate().take(n / 2) {
        let coverage = 1.0 - 2.0 * tail;
        if coverage >= CONFIDENCE && k < n - 1 - k {
            best = (k, coverage);
        } else {
            break;
        }
    }
    best
}

/// Samples farther than [`OUTLIER_Z`] robust standard deviations (1.4826 · MAD) from the
/// median. None when the MAD is 0 (most samples equal), where the score is undefined.
fn outliers(sorted: &[f64], median: f64) -> Vec<f64> {
    if sorted.len() < OUTLIER_MIN_SAMPLES {
        return Vec::new();
    }
    let mut dev: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = median_of_sorted(&dev);
    if mad == 0.0 {
        return Vec::new();
    }
    sorted
        .iter()
        .copied()
        .filter(|x| 0.6745 * (x - median).abs() / mad > OUTLIER_Z)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_sample_has_a_degenerate_interval() {
        let s = Stat::from_samples(&[4.0]).unwrap();
        assert_eq!((s.median, s.ci_low, s.ci_high, s.n), (4.0, 4.0, 4.0, 1));
        assert_eq!(s.ci_level, 0.0);
        assert_eq!(s.stddev, 0.0);
        assert!(!s.is_noisy() && !s.is_confident());
    }

    #[test]
    fn few_samples_give_the_range_with_its_true_coverage() {
        let s = Stat::from_samples(&[10.0, 12.0, 11.0]).unwrap();
        assert_eq!(s.median, 11.0);
        assert!((s.stddev - 1.0).abs() < 1e-12);
        assert_eq!((s.ci_low, s.ci_high), (10.0, 12.0));
        assert!((s.ci_level - 0.75).abs() < 1e-12);
        assert!((s.cv - 1.0 / 11.0).abs() < 1e-12);
        let five = Stat::from_samples(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!((five.ci_level - 0.9375).abs() < 1e-12 && !five.is_confident());
    }

    /// The classic table (e.g. Conover): for n = 6..8 the 95% interval is the range's
    /// inner neighbours only from n = 9 on (k = 1), and k = 2 from n = 12.
    #[test]
    fn order_statistic_ranks_match_the_binomial_table() {
        let rank = |n| median_interval_rank(n).0;
        assert_eq!(
            [rank(6), rank(8), rank(9), rank(11), rank(12), rank(20)],
            [0, 0, 1, 1, 2, 5]
        );
        assert!((median_interval_rank(6).1 - (1.0 - 2.0 / 64.0)).abs() < 1e-12);
        for n in 6..60 {
            let (k, level) = median_interval_rank(n);
            assert!(level >= CONFIDENCE, "n={n}");
            // The next rank inward would fall short.
            let tail: f64 = (0..=k + 1)
                .map(|j| binomial(n, j) / 2f64.powi(n as i32))
                .sum();
            assert!(1.0 - 2.0 * tail < CONFIDENCE, "n={n} k={k}");
        }
    }

    /// Both variants drifting together over the rounds (the machine's state): the paired
    /// interval sees a steady ratio, the independent one the drift.
    #[test]
    fn pairing_the_rounds_keeps_a_shared_drift_out_of_the_ratio() {
        let den = [150.0, 170.0, 160.0, 180.0, 155.0, 175.0];
        let num: Vec<f64> = den
            .iter()
            .zip([1.0, 0.99, 1.01, 1.0, 0.995, 1.005])
            .map(|(d, j)| 0.75 * d * j)
            .collect();
        let pairs: Vec<(f64, f64)> = num.iter().copied().zip(den).collect();
        let paired = paired_ratio_interval(&pairs).unwrap();
        let independent = ratio_interval(&num, &den).unwrap();
        let r = 0.75;
        assert!(
            paired.low <= r * 1.01 && paired.high >= r * 0.99,
            "{paired:?}"
        );
        assert!(paired.relative_half_width(r) < 0.02, "{paired:?}");
        assert!(independent.relative_half_width(r) > 0.04, "{independent:?}");
        // Below two pairs, or a zero median, there is no interval.
        assert_eq!(paired_ratio_interval(&pairs[..1]), None);
        assert_eq!(paired_ratio_interval(&[(1.0, 0.0), (2.0, 0.0)]), None);
    }

    fn binomial(n: usize, k: usize) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    /// One slow start among fast ones: named, and it does not move the median's interval the
    /// way mean ± t·σ did (2.5–4.6 ms starts and one of 38 ms gave 1.1–10.9 ms).
    #[test]
    fn an_outlier_is_named_and_the_median_interval_resists_it() {
        let mut starts = vec![
            2.5, 2.9, 3.1, 3.3, 3.4, 3.6, 3.8, 3.9, 4.0, 4.2, 4.3, 4.4, 4.6, 4.5,
        ];
        starts.push(38.0);
        let s = Stat::from_samples(&starts).unwrap();
        assert_eq!(s.outliers, vec![38.0]);
        assert!(s.is_confident());
        assert!(s.ci_low >= 2.9 && s.ci_high <= 4.4, "{s:?}");
        assert!(
            Stat::from_samples(&[5.0, 5.0, 5.0, 9.0])
                .unwrap()
                .outliers
                .is_empty()
        );
        // Three runs, one far off: no verdict from three samples.
        assert!(
            Stat::from_samples(&[100.0, 101.0, 160.0])
                .unwrap()
                .outliers
                .is_empty()
        );
    }

    #[test]
    fn even_count_median_and_noise_flag() {
        let s = Stat::from_samples(&[1.0, 2.0, 3.0, 10.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(s.is_noisy());
        assert!(Stat::from_samples(&[]).is_none());
        assert!(Stat::from_samples(&[f64::NAN]).is_none());
    }

    #[test]
    fn ratio_interval_brackets_the_ratio_and_narrows_with_agreement() {
        let a = [50.0, 52.0, 49.0, 51.0, 50.5, 49.5];
        let b = [100.0, 101.0, 99.0, 100.5, 99.5, 100.0];
        let i = ratio_interval(&a, &b).unwrap();
        assert!(i.low <= 0.5 && 0.5 <= i.high, "{i:?}");
        assert!(i.relative_half_width(0.5) < 0.05, "{i:?}");
        let noisy = [30.0, 70.0, 45.0, 60.0, 50.0, 40.0];
        let j = ratio_interval(&noisy, &b).unwrap();
        assert!(j.relative_half_width(0.5) > 0.1, "{j:?}");
        // Deterministic: the same repeats give the same interval.
        assert_eq!(ratio_interval(&a, &b), Some(i));
        assert_eq!(ratio_interval(&[1.0], &b), None);
        assert_eq!(ratio_interval(&a, &[0.0, 0.0]), None);
    }
}
