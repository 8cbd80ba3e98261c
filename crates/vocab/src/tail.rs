//! The latency tail of one run over time and per VU: what the load engine records in every
//! summary and the report explains the tail from.
//!
//! Requests are placed in fixed buckets by the time they *started*, counted from the start of the
//! run, so a window in which the service made every request wait shows as a bucket whose
//! requests took long, followed by buckets in which few requests could start.

use serde::{Deserialize, Serialize};

/// Width of a bucket, ms, for runs short enough to keep it (see [`MAX_BUCKETS`]).
pub const BUCKET_MS: u64 = 100;

/// Most buckets a series holds. A longer run doubles the bucket width as often as needed
/// (100 ms up to 409.6 s, 200 ms up to 13.6 min, 400 ms up to 27 min, …), so memory and the
/// summary's size stay bounded whatever the run's length.
pub const MAX_BUCKETS: usize = 4096;

/// The latency time series, the over-limit counts and the requests per VU of one run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    /// Width of one bucket, ms: [`BUCKET_MS`], doubled for runs longer than [`MAX_BUCKETS`]
    /// buckets.
    pub bucket_ms: u64,
    /// Bucket `i` holds the requests that started in `[i·bucket_ms, (i+1)·bucket_ms)` after the
    /// start of the run; empty buckets are included, so the index is the time.
    pub buckets: Vec<TailBucket>,
    /// Per duration check of the plan (`duration < 200`): how many requests per bucket took
    /// at least its limit (responses only; a transport error is not "over the limit").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_limit: Vec<OverLimit>,
    /// Completed iterations (one request each) per VU id, for executors whose VUs all run for
    /// the whole run (constant-vus); empty otherwise, where a VU's count says when it was
    /// active rather than how it was served. Under keep-alive a VU holds one connection, so
    /// this is also the requests per connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests_per_vu: Vec<u64>,
}

/// The requests that started in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailBucket {
    /// Requests started in the bucket (and completed, failed or not).
    pub requests: u64,
    /// Median `http_req_duration`, ms (within a bin of 25 % width; 0 when empty).
    pub p50_ms: f64,
    /// 99th percentile of `http_req_duration`, ms (within a bin of 25 % width; 0 when empty).
    pub p99_ms: f64,
    /// Largest `http_req_duration`, ms (exact; 0 when empty).
    pub max_ms: f64,
}

/// The requests over one duration check's limit, per bucket.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverLimit {
    /// The check's expression, e.g. `duration < 200`.
    pub check: String,
    /// Its limit, ms.
    pub limit_ms: f64,
    /// `[bucket index, requests over the limit]`, ascending, buckets without any left out.
    pub buckets: Vec<[u64; 2]>,
}

impl OverLimit {
    /// Requests over the limit in the whole run.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b[1]).sum()
    }
}

impl Tail {
    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.requests_per_vu.is_empty()
    }

    /// Seconds from the start of the run to the start of bucket `i`.
    pub fn start_s(&self, i: usize) -> f64 {
        i as f64 * self.bucket_ms as f64 / 1e3
    }

    /// Halves the resolution: buckets `2k` and `2k+1` become bucket `k`. Counts add and the
    /// maximum stays exact; the merged percentiles are the larger of the two, an upper bound
    /// (the exact value needs the histograms, which the summary does not keep).
    pub fn coarsen(&mut self) {
        self.bucket_ms = self.bucket_ms.saturating_mul(2);
        let old = std::mem::take(&mut self.buckets);
        self.buckets = old
            .chunks(2)
            .map(|p| p.iter().fold(TailBucket::default(), |a, b| a.merged(b)))
            .collect();
        for o in &mut self.over_limit {
            let mut out: Vec<[u64; 2]> = Vec::with_capacity(o.buckets.len());
            for &[i, n] in &o.buckets {
                match out.last_mut() {
                    Some(l) if l[0] == i / 2 => l[1] += n,
                    _ => out.push([i / 2, n]),
                }
            }
            o.buckets = out;
        }
    }

    /// Adds the series of another source that ran the same plan at the same time (another
    /// process or pod). Buckets are aligned by their offset from each source's own start;
    /// counts add, maxima are the maximum, and a merged percentile is the larger of the
    /// sources' (an upper bound: exact percentiles would need every source's histogram).
    /// The VUs of the two sources are different VUs, so `other`'s are appended.
    pub fn merge(&mut self, other: &Tail) {
        let mut other = other.clone();
        for t in [&mut *self, &mut other] {
            if t.bucket_ms == 0 {
                t.bucket_ms = BUCKET_MS;
            }
        }
        if self.buckets.is_empty() && self.over_limit.is_empty() {
            self.bucket_ms = self.bucket_ms.max(other.bucket_ms);
        }
        // Widths written by the engine are BUCKET_MS · 2^k: coarsen the finer until they
        // match. Bounded for any other width too: each pass doubles one of them.
        for _ in 0..128 {
            if self.bucket_ms < other.bucket_ms {
                self.coarsen();
            } else if other.bucket_ms < self.bucket_ms {
                other.coarsen();
            } else {
                break;
            }
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets
                .resize(other.buckets.len(), TailBucket::default());
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.merged(b);
        }
        for o in &other.over_limit {
            match self.over_limit.iter_mut().find(|x| x.check == o.check) {
                Some(mine) => {
                    let mut all = std::mem::take(&mut mine.buckets);
                    all.extend_from_slice(&o.buckets);
                    all.sort_unstable_by_key(|b| b[0]);
                    for b in all {
                        match mine.buckets.last_mut() {
                            Some(l) if l[0] == b[0] => l[1] += b[1],
                            _ => mine.buckets.push(b),
                        }
                    }
                }
                None => self.over_limit.push(o.clone()),
            }
        }
        self.requests_per_vu
            .extend_from_slice(&other.requests_per_vu);
        while self.buckets.len() > MAX_BUCKETS {
            self.coarsen();
        }
    }
}

impl TailBucket {
    /// The two buckets as one (see [`Tail::merge`] for the percentiles).
    pub fn merged(&self, o: &TailBucket) -> TailBucket {
        TailBucket {
            requests: self.requests + o.requests,
            p50_ms: self.p50_ms.max(o.p50_ms),
            p99_ms: self.p99_ms.max(o.p99_ms),
            max_ms: self.max_ms.max(o.max_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(requests: u64, p99_ms: f64) -> TailBucket {
        TailBucket {
            requests,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms * 2.0,
        }
    }

    #[test]
    fn merge_aligns_buckets_by_offset_and_coarsens_the_finer_source() {
        let mut a = Tail {
            bucket_ms: 100,
            buckets: vec![b(10, 1.0), b(10, 9.0), b(4, 2.0)],
            over_limit: vec![OverLimit {
                check: "duration < 5".into(),
                limit_ms: 5.0,
                buckets: vec![[1, 3]],
            }],
            requests_per_vu: vec![12, 12],
        };
        let o = Tail {
            bucket_ms: 200,
            buckets: vec![b(5, 3.0)],
            over_limit: vec![OverLimit {
                check: "duration < 5".into(),
                limit_ms: 5.0,
                buckets: vec![[0, 1]],
            }],
            requests_per_vu: vec![5],
        };
        a.merge(&o);
        assert_eq!(a.bucket_ms, 200);
        assert_eq!(a.buckets.len(), 2);
        assert_eq!(a.buckets[0].requests, 25);
        assert_eq!(a.buckets[0].p99_ms, 9.0);
        assert_eq!(a.buckets[0].max_ms, 18.0);
        assert_eq!(a.buckets[1].requests, 4);
        assert_eq!(a.over_limit[0].buckets, vec![[0, 4]]);
        assert_eq!(a.requests_per_vu, vec![12, 12, 5]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Tail>(&json).unwrap(), a);
        assert_eq!(a.start_s(1), 0.2);
    }

    #[test]
    fn a_series_never_exceeds_the_bucket_cap() {
        let mut a = Tail {
            bucket_ms: BUCKET_MS,
            ..Tail::default()
        };
        a.merge(&Tail {
            bucket_ms: BUCKET_MS,
            buckets: vec![b(1, 1.0); MAX_BUCKETS + 3],
            ..Tail::default()
        });
        assert_eq!(a.bucket_ms, 2 * BUCKET_MS);
        assert_eq!(a.buckets.len(), MAX_BUCKETS / 2 + 2);
        assert_eq!(
            a.buckets.iter().map(|b| b.requests).sum::<u64>(),
            MAX_BUCKETS as u64 + 3
        );
    }
}
