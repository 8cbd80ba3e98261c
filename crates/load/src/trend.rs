//! A trend metric's histogram and its JSON form, so that summaries written by several processes
//! or pods can be read back and merged exactly.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::histogram::trend_stats;

/// A trend metric: an HDR histogram of nanoseconds.
///
/// Serialized as `{unit, count, avg_ms, …, hdr}` where `hdr` is the histogram in HdrHistogram's
/// V2 encoding, base64; the statistics are for readers, only `hdr` is read back.
#[derive(Debug, Clone)]
pub struct Trend(pub Histogram<u64>);

/// The written form: `count` leads the statistics, the histogram closes the object.
#[derive(Serialize)]
struct TrendOut {
    unit: &'static str,
    count: u64,
    avg_ms: f64,
    min_ms: f64,
    med_ms: f64,
    max_ms: f64,
    p90_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    hdr: String,
}

/// What is read back: the statistics are derived from the histogram again.
#[derive(Deserialize)]
struct TrendIn {
    unit: String,
    hdr: String,
}

impl Serialize for Trend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut buf)
            .map_err(|e| serde::ser::Error::custom(format!("{e:?}")))?;
        let st = trend_stats(&self.0);
        TrendOut {
            unit: "ns",
            count: st.count,
            avg_ms: st.avg_ms,
            min_ms: st.min_ms,
            med_ms: st.med_ms,
            max_ms: st.max_ms,
            p90_ms: st.p90_ms,
            p95_ms: st.p95_ms,
            p99_ms: st.p99_ms,
            hdr: base64::engine::general_purpose::STANDARD.encode(buf),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Trend {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TrendIn::deserialize(d)?;
        if t.unit != "ns" {
            return Err(serde::de::Error::custom(format!(
                "trend unit `{}` is not supported (expected ns)",
                t.unit
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t.hdr)
            .map_err(serde::de::Error::custom)?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| serde::de::Error::custom(format!("bad HDR histogram: {e:?}")))?;
        h.auto(true);
        Ok(Trend(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{new_histogram, percentile_ms};

    #[test]
    fn trend_round_trips_through_json() {
        let mut h = new_histogram();
        for v in 1..1000u64 {
            h.record(v * 1000).unwrap();
        }
        let t = Trend(h.clone());
        let j = serde_json::to_string(&t).unwrap();
        let back: Trend = serde_json::from_str(&j).unwrap();
        assert_eq!(back.0.len(), h.len());
        assert_eq!(back.0.max(), h.max());
        assert!((percentile_ms(&back.0, 95.0) - percentile_ms(&h, 95.0)).abs() < 1e-9);
    }

    #[test]
    fn written_fields_keep_their_order_and_other_units_are_refused() {
        let mut h = new_histogram();
        h.record(2_000_000).unwrap();
        let j = serde_json::to_string(&Trend(h)).unwrap();
        let keys: Vec<&str> = j
            .split(['{', ','])
            .filter_map(|f| f.split_once("\":").map(|(k, _)| k.trim_start_matches('"')))
            .collect();
        assert_eq!(
            keys,
            [
                "unit", "count", "avg_ms", "min_ms", "med_ms", "max_ms", "p90_ms", "p95_ms",
                "p99_ms", "hdr"
            ]
        );
        assert!(
            j.starts_with(r#"{"unit":"ns","count":1,"avg_ms":2."#),
            "{j}"
        );
        let ms = j.replacen(r#""unit":"ns""#, r#""unit":"ms""#, 1);
        let e = serde_json::from_str::<Trend>(&ms).unwrap_err().to_string();
        assert!(e.contains("trend unit `ms` is not supported"), "{e}");
    }
}
