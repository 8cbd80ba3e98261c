//! Durations as every flag and plan field spells them: `30s`, `1m30s`, `250ms`, or a bare
//! number of seconds (as k6 accepts), bounded by [`MAX`].
//!
//! One parser for every command, so `--duration 30`, `--warmup 30` and `--max-time 30` mean the
//! same, and no value can overflow a clock reading later (`Instant + Duration` panics on
//! overflow; a bare `1e20` used to).

use std::time::Duration;

/// The longest duration any flag or plan field accepts: a year is longer than any benchmark,
/// and far from where `Instant + Duration` overflows.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses `30s`, `1m30s`, `250ms`, or a bare number of seconds; refuses negative, non-finite
/// and larger-than-[`MAX`] values with a message that says what to write instead.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) if !secs.is_finite() || secs < 0.0 => {
            return Err(format!(
                "`{s}` is not a duration: it must be a finite, non-negative number of seconds or e.g. 30s, 1m30s, 250ms"
            ));
        }
        Ok(secs) if secs > MAX.as_secs_f64() => None,
        Ok(secs) => Some(Duration::from_secs_f64(secs)),
        Err(_) => {
            Some(humantime::parse_duration(s).map_err(|e| {
                format!("`{s}` is not a duration ({e}); use e.g. 30s, 1m30s or 250ms")
            })?)
        }
    };
    match d {
        Some(d) if d <= MAX => Ok(d),
        _ => Err(format!(
            "`{s}` is longer than the longest duration accepted ({} days); use e.g. 30s, 10m or 2h",
            MAX.as_secs() / 86_400
        )),
    }
}

/// The canonical spelling of `d` (`1m 30s`), which [`parse`] reads back.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde for a [`Duration`] field written as a human string, parsed by [`parse`]
/// (`#[serde(with = "wasmbench_vocab::duration::serde")]`).
pub mod serde {
    use ::serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as [`super::format`] spells it.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads a string through [`super::parse`], or a bare number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Seconds(f64),
        }
        let text = match Repr::deserialize(d)? {
            Repr::Text(t) => t,
            Repr::Seconds(n) => n.to_string(),
        };
        super::parse(&text).map_err(::serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds_and_huge_or_negative_values_are_refused() {
        assert_eq!(parse("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse(" 250ms ").unwrap(), Duration::from_millis(250));
        for bad in [
            "1e20",
            "1.8e19",
            "-1",
            "NaN",
            "inf",
            "100000000y",
            "5000d",
            "abc",
            "",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("e.g."), "{bad}: {e}");
        }
        assert_eq!(parse(&format(MAX)).unwrap(), MAX);
    }
}
