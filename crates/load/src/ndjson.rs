//! Live progress and the NDJSON time series: one JSON object per second of the run, aggregated
//! over all workers (not one line per request as k6's `--out json` writes).

use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::summary::TrendStats;

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
    pub http_req_duration: TrendStats,
    /// `http_req_waiting` of the requests in the interval (ms).
    pub http_req_waiting: TrendStats,
    /// `http_req_blocked` of the requests in the interval (ms).
    pub http_req_blocked: TrendStats,
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
