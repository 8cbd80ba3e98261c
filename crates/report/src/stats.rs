//! Summary statistics over repeats: median, mean, spread and a 95% confidence interval.

use serde::{Deserialize, Serialize};

/// Coefficient of variation above which a figure is reported as noisy (hyperfine uses 10% too).
pub const CV_WARN_THRESHOLD: f64 = 0.10;

/// Statistics of one figure over its samples (usually one sample per repeat).
///
/// All values carry the unit of the figure they describe (the figure's name says which).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    /// Lower bound of the 95% confidence interval of the mean (Student t); equals the value when n = 1.
    pub ci95_low: f64,
    /// Upper bound of the 95% confidence interval of the mean (Student t); equals the value when n = 1.
    pub ci95_high: f64,
    /// Number of samples.
    pub n: u32,
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
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
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
        let half = if n > 1 {
            student_t_975(n - 1) * stddev / (n as f64).sqrt()
        } else {
            0.0
        };
        Some(Stat {
            median,
            mean,
            stddev,
            cv,
            min: v[0],
            max: v[n - 1],
            ci95_low: mean - half,
            ci95_high: mean + half,
            n: u32::try_from(n).unwrap_or(u32::MAX),
        })
    }

    /// True when the samples spread more than [`CV_WARN_THRESHOLD`] around their mean.
    pub fn is_noisy(&self) -> bool {
        self.n > 1 && self.cv > CV_WARN_THRESHOLD
    }

    /// Half the width of the confidence interval (what renderers print after `±`).
    pub fn ci95_half_width(&self) -> f64 {
        (self.ci95_high - self.ci95_low) / 2.0
    }
}

/// Two-sided 97.5% quantile of Student's t distribution with `df` degrees of freedom.
pub fn student_t_975(df: usize) -> f64 {
    // Exact table for the small repeat counts benchmarks use; beyond it a Cornish–Fisher
    // expansion around the normal quantile is accurate to better than 1e-3.
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let z: f64 = 1.959_964;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_sample_has_a_degenerate_interval() {
        let s = Stat::from_samples(&[4.0]).unwrap();
        assert_eq!((s.median, s.ci95_low, s.ci95_high, s.n), (4.0, 4.0, 4.0, 1));
        assert_eq!(s.stddev, 0.0);
        assert!(!s.is_noisy());
    }

    #[test]
    fn three_samples_match_hand_computation() {
        let s = Stat::from_samples(&[10.0, 12.0, 11.0]).unwrap();
        assert_eq!(s.median, 11.0);
        assert!((s.mean - 11.0).abs() < 1e-12);
        assert!((s.stddev - 1.0).abs() < 1e-12);
        // t(2) = 4.303, half = 4.303 / sqrt(3)
        assert!((s.ci95_high - (11.0 + 4.303 / 3f64.sqrt())).abs() < 1e-9);
        assert!(s.ci95_low <= s.median && s.median <= s.ci95_high);
        assert!((s.cv - 1.0 / 11.0).abs() < 1e-12);
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
    fn t_quantile_approaches_normal() {
        assert!((student_t_975(31) - 2.040).abs() < 2e-3);
        assert!((student_t_975(120) - 1.980).abs() < 2e-3);
        assert!(student_t_975(1000) > 1.959 && student_t_975(1000) < 1.963);
    }
}
