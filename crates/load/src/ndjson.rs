//! Live progress and the NDJSON time series: one JSON object per second of the run, aggregated
//! over all workers (not one line per request as k6's `--out json` writes).

use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use wasmbench_vocab::TrendStats;

/// Aggregates of one second of the run (requests that *finished* in that second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimePoint {
    /// Seconds since the start; the point covers `(t_s - 1, t_s]` (the last one may be shorter).
    pub t_s: u64,
    /// Wall-clock time at the end of the interval.
    pub time: DateTime<Utc>,
    /// Requests finished in the interval.
    pub http_reqs: u64,
    /// Of those, failed (unexpected status or transport error).
    pub http_req_failed: u64,
    /// Transport errors in the interval.
    pub errors: u64,
    /// Iterations completed in the interval.
    pub iterations: u64,
    /// Open-model iterations dropped in the interval.
    pub dropped_iterations: u64,
    /// Bytes sent in the interval.
    pub data_sent_bytes: u64,
    /// Bytes received in the interval.
    pub data_received_bytes: u64,
    /// Active VUs at the end of the interval.
    pub vus: u64,
    /// Allocated VUs at the end of the interval.
    pub vus_max: u64,
    /// `http_req_duration` of the requests in the interval (ms).
    #[serde(with = "bare_names")]
    pub http_req_duration: TrendStats,
    /// `http_req_waiting` of the requests in the interval (ms).
    #[serde(with = "bare_names")]
    pub http_req_waiting: TrendStats,
    /// `http_req_blocked` of the requests in the interval (ms).
    #[serde(with = "bare_names")]
    pub http_req_blocked: TrendStats,
}

/// The series writes a trend's statistics under k6's bare names (`avg`, `p95`), in ms.
mod bare_names {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use wasmbench_vocab::TrendStats;

    #[derive(Serialize, Deserialize)]
    struct Bare {
        avg: f64,
        min: f64,
        med: f64,
        max: f64,
        p90: f64,
        p95: f64,
        p99: f64,
        count: u64,
    }

    pub(super) fn serialize<S: Serializer>(t: &TrendStats, s: S) -> Result<S::Ok, S::Error> {
        Bare {
            avg: t.avg_ms,
            min: t.min_ms,
            med: t.med_ms,
            max: t.max_ms,
            p90: t.p90_ms,
            p95: t.p95_ms,
            p99: t.p99_ms,
            count: t.count,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TrendStats, D::Error> {
        let b = Bare::deserialize(d)?;
        Ok(TrendStats {
            avg_ms: b.avg,
            min_ms: b.min,
            med_ms: b.med,
            max_ms: b.max,
            p90_ms: b.p90,
            p95_ms: b.p95,
            p99_ms: b.p99,
            count: b.count,
        })
    }
}

/// A live progress snapshot, sent once per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Time since the start.
    pub elapsed: Duration,
    /// Planned duration of the executor (without graceful stop).
    pub planned: Duration,
    /// Requests done so far.
    pub requests: u64,
    /// Failed requests so far.
    pub failed: u64,
    /// Transport errors so far.
    pub errors: u64,
    /// Currently active VUs.
    pub vus: u64,
    /// The second that just ended.
    pub point: TimePoint,
}

/// Writes [`TimePoint`]s as newline-delimited JSON, one object per line.
#[derive(Debug)]
pub struct NdjsonWriter<W: Write> {
    out: W,
}

impl<W: Write> NdjsonWriter<W> {
    /// Wraps a writer (use a `BufWriter` for files).
    pub fn new(out: W) -> Self {
        NdjsonWriter { out }
    }

    /// Writes one point as one line.
    pub fn write_point(&mut self, p: &TimePoint) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, p)?;
        self.out.write_all(b"\n")
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_write_bare_statistic_names_one_per_line() {
        let t = TrendStats {
            avg_ms: 1.25,
            p95_ms: 2.5,
            count: 4,
            ..TrendStats::default()
        };
        let p = TimePoint {
            t_s: 1,
            time: DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            http_reqs: 4,
            http_req_failed: 0,
            errors: 0,
            iterations: 4,
            dropped_iterations: 0,
            data_sent_bytes: 10,
            data_received_bytes: 20,
            vus: 1,
            vus_max: 1,
            http_req_duration: t,
            http_req_waiting: t,
            http_req_blocked: TrendStats::default(),
        };
        let mut w = NdjsonWriter::new(Vec::new());
        w.write_point(&p).unwrap();
        w.write_point(&p).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains(
                r#""http_req_duration":{"avg":1.25,"min":0.0,"med":0.0,"max":0.0,"p90":0.0,"p95":2.5,"p99":0.0,"count":4}"#
            ),
            "{}",
            lines[0]
        );
        assert!(!lines[0].contains("_ms"), "{}", lines[0]);
        assert_eq!(serde_json::from_str::<TimePoint>(lines[1]).unwrap(), p);
    }
}
