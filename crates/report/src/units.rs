//! Number formatting shared by the renderers (k6's conventions: µs/ms/s, kB/MB).

use crate::model::Unit;
use crate::stats::Stat;

/// Up to two decimals, trailing zeros trimmed (k6 prints `2.5µs`, `11.12ms`).
fn trim2(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A duration given in milliseconds, printed like k6 (`412.5µs`, `12.34ms`, `1.2s`).
pub fn fmt_ms(ms: f64) -> String {
    let a = ms.abs();
    if ms == 0.0 {
        "0s".into()
    } else if a < 0.001 {
        format!("{}ns", trim2(ms * 1e6))
    } else if a < 1.0 {
        format!("{}µs", trim2(ms * 1e3))
    } else if a < 1000.0 {
        format!("{}ms", trim2(ms))
    } else {
        format!("{}s", trim2(ms / 1e3))
    }
}

/// Bytes with SI prefixes like k6 (`950 B`, `1.9 MB`).
pub fn fmt_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{} {}", trim_to(v, 1), UNITS[i])
    }
}

fn trim_to(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').into()
    } else {
        s
    }
}

/// A percentage with two decimals; one that would round to zero keeps two significant digits,
/// so a few failures among a million requests never read as none.
fn fmt_percent(p: f64) -> String {
    if p != 0.0 && p.abs() < 0.01 {
        let decimals = (-p.abs().log10()).ceil() as usize + 1;
        format!("{}%", trim_to(p, decimals))
    } else {
        format!("{}%", trim_to(p, 2))
    }
}

/// A value in `unit`.
pub fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms => fmt_ms(v),
        Unit::PerS => format!("{}/s", trim_to(v, 1)),
        Unit::Bytes => fmt_bytes(v),
        Unit::Rate => fmt_percent(v * 100.0),
        Unit::PerRequest => format!("{}/req", fmt_count(v)),
    }
}

/// `/req`, or `k/req` from a thousand up (instructions per request run into the tens of
/// thousands).
fn per_request_scale(v: f64) -> (f64, &'static str) {
    if v.abs() >= 1000.0 {
        (1e-3, "k/req")
    } else {
        (1.0, "/req")
    }
}

/// A count with at most two decimals, `k` from a thousand up, two significant digits below
/// 0.01 (a page fault every 10,000 requests is not zero): `3.13`, `48.25k`, `0.00064`.
pub fn fmt_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{}k", trim_to(v / 1000.0, 2))
    } else if a > 0.0 && a < 0.01 {
        let decimals = (-a.log10().floor()) as usize + 1;
        trim_to(v, decimals)
    } else {
        trim_to(v, 2)
    }
}

/// Median with its interval in the median's own scale: `12.3ms [12.1–12.6]` for a 95%
/// interval, `12.3ms (range 12.1–12.6)` when there are too few repeats for one (the range is
/// then all the samples say); just the median for one sample or an interval that rounds to it.
pub fn fmt_stat(s: &Stat, unit: Unit) -> String {
    let median = fmt_value(s.median, unit);
    if s.n <= 1 || s.ci_high <= s.ci_low {
        return median;
    }
    // The bounds are printed in the median's scale, with the median's suffix once.
    let (scale, _suffix) = match unit {
        Unit::Ms => {
            let a = s.median.abs();
            if a < 0.001 {
                (1e6, "ns")
            } else if a < 1.0 {
                (1e3, "µs")
            } else if a < 1000.0 {
                (1.0, "ms")
            } else {
                (1e-3, "s")
            }
        }
        Unit::Bytes => {
            let mut scale = 1.0;
            let mut i = 0;
            const SUFFIXES: [&str; 5] = [" B", " kB", " MB", " GB", " TB"];
            while (s.median * scale).abs() >= 1000.0 && i < SUFFIXES.len() - 1 {
                scale /= 1000.0;
                i += 1;
            }
            (scale, SUFFIXES[i])
        }
        Unit::PerS => (1.0, "/s"),
        Unit::Rate => (100.0, "%"),
        Unit::PerRequest => per_request_scale(s.median),
    };
    let (lo, hi) = (s.ci_low * scale, s.ci_high * scale);
    // Enough decimals that the two bounds differ, at most four.
    let mut digits = 0;
    while digits < 4 && trim_to(lo, digits) == trim_to(hi, digits) {
        digits += 1;
    }
    let (lo, hi) = (
        trim_to(lo, digits.max(significant(hi))),
        trim_to(hi, digits.max(significant(hi))),
    );
    if lo == hi {
        return median;
    }
    if s.is_confident() {
        format!("{median} [{lo}–{hi}]")
    } else {
        format!("{median} (range {lo}–{hi})")
    }
}

/// Decimals that give a value of this magnitude three significant digits (at most two).
fn significant(x: f64) -> usize {
    let a = x.abs();
    if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    }
}

/// A ratio, `2.13x`.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_k6() {
        assert_eq!(fmt_ms(0.0), "0s");
        assert_eq!(fmt_ms(0.0025), "2.5µs");
        assert_eq!(fmt_ms(0.4125), "412.5µs");
        assert_eq!(fmt_ms(11.1234), "11.12ms");
        assert_eq!(fmt_ms(1010.0), "1.01s");
        assert_eq!(fmt_ms(0.0000005), "0.5ns");
    }

    #[test]
    fn bytes_rates_and_ratios() {
        assert_eq!(fmt_bytes(950.0), "950 B");
        assert_eq!(fmt_bytes(1_900_000.0), "1.9 MB");
        assert_eq!(fmt_bytes(38_000_000.0), "38 MB");
        assert_eq!(fmt_value(12345.67, Unit::PerS), "12345.7/s");
        assert_eq!(fmt_value(0.0123, Unit::Rate), "1.23%");
        assert_eq!(fmt_value(0.0, Unit::Rate), "0%");
        // 6 failures in 429,001 requests.
        assert_eq!(fmt_value(6.0 / 429_001.0, Unit::Rate), "0.0014%");
        assert_eq!(fmt_value(0.00005, Unit::Rate), "0.005%");
        assert_eq!(fmt_value(5.0, Unit::PerRequest), "5/req");
        assert_eq!(fmt_value(3.126, Unit::PerRequest), "3.13/req");
        assert_eq!(fmt_value(48_250.0, Unit::PerRequest), "48.25k/req");
        assert_eq!(fmt_value(0.000_642, Unit::PerRequest), "0.00064/req");
        assert_eq!(fmt_ratio(2.126), "2.13x");
        assert_eq!(fmt_ratio(73.2), "73.2x");
    }

    #[test]
    fn stat_interval_uses_the_median_scale() {
        let s = Stat::from_samples(&[3.9, 4.0, 4.1]).unwrap();
        assert_eq!(fmt_stat(&s, Unit::Ms), "4ms (range 3.9–4.1)");
        let b = Stat::from_samples(&[38_000_000.0, 38_004_096.0, 38_008_192.0]).unwrap();
        assert_eq!(fmt_stat(&b, Unit::Bytes), "38 MB (range 38–38.01)");
        let nine: Vec<f64> = (0..9).map(|i| 100.0 + f64::from(i)).collect();
        let c = Stat::from_samples(&nine).unwrap();
        assert_eq!(fmt_stat(&c, Unit::PerS), "104/s [101–107]");
        let one = Stat::from_samples(&[0.011]).unwrap();
        assert_eq!(fmt_stat(&one, Unit::Ms), "11µs");
    }
}
