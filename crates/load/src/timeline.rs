//! Per-worker recording of the latency tail: `http_req_duration` per 100 ms bucket of start
//! time, requests over each duration check's limit, and completed iterations per VU. Owned by
//! one worker thread like [`crate::metrics::Metrics`] and merged by the collector; it becomes a
//! [`Tail`] in the summary.
//!
//! A bucket keeps a fixed array of logarithmic bins (4 per power of two of microseconds, so a
//! percentile read from it is within a 25 % wide bin) instead of an HDR histogram: 600 bytes
//! per bucket, and a run keeps at most [`MAX_BUCKETS`] buckets.

use std::time::Duration;

use wasmbench_vocab::tail::{BUCKET_MS, MAX_BUCKETS, OverLimit, Tail, TailBucket};

use crate::checks::CheckKind;
use crate::plan::{Executor, Plan};

/// Bins per power of two (as a shift).
const SUB_BITS: u32 = 2;
const SUB: usize = 1 << SUB_BITS;
/// Enough bins for 2^37 µs (38 hours); longer values land in the last one.
const NBINS: usize = 37 * SUB;

/// Bin of a value in µs.
fn bin(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros();
    let sub = ((us >> (e - SUB_BITS)) as usize) & (SUB - 1);
    ((e - SUB_BITS + 1) as usize * SUB + sub).min(NBINS - 1)
}

/// Middle of bin `i`, µs.
fn bin_mid_us(i: usize) -> f64 {
    if i < SUB {
        return i as f64 + 0.5;
    }
    let k = (i / SUB) as u32;
    let low = ((SUB + i % SUB) as u64) << (k - 1);
    low as f64 + (1u64 << (k - 1)) as f64 / 2.0
}

/// The requests that started in one bucket, as recorded.
#[derive(Debug, Clone)]
struct Bucket {
    bins: [u32; NBINS],
    requests: u64,
    max_ns: u64,
    /// Requests at or over each duration limit, in the order of [`Timeline::record`]'s limits.
    over: Vec<u64>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            bins: [0; NBINS],
            requests: 0,
            max_ns: 0,
            over: Vec::new(),
        }
    }

    fn add(&mut self, o: &Bucket) {
        for (a, b) in self.bins.iter_mut().zip(&o.bins) {
            *a = a.saturating_add(*b);
        }
        self.requests += o.requests;
        self.max_ns = self.max_ns.max(o.max_ns);
        if self.over.len() < o.over.len() {
            self.over.resize(o.over.len(), 0);
        }
        for (a, b) in self.over.iter_mut().zip(&o.over) {
            *a += b;
        }
    }

    /// Nearest-rank percentile `q` (0–1), ms: the middle of its bin, never above the maximum.
    fn quantile_ms(&self, q: f64) -> f64 {
        let n: u64 = self.bins.iter().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return (bin_mid_us(i) / 1e3).min(self.max_ns as f64 / 1e6);
            }
        }
        self.max_ns as f64 / 1e6
    }
}

/// The tail recording of one worker (or of the whole run, in the collector).
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    /// Bucket width is `BUCKET_MS << shift`; only the collector's total ever coarsens.
    shift: u32,
    /// `(index, bucket)`, ascending by index. A worker's holds the second since its last report
    /// (about ten entries); the total holds the run.
    buckets: Vec<(u64, Bucket)>,
    /// Completed iterations per VU id, reported by each VU when it ends.
    per_vu: Vec<u64>,
}

impl Timeline {
    /// Room for the buckets of one report interval, so recording does not allocate.
    pub(crate) fn new() -> Timeline {
        Timeline {
            shift: 0,
            buckets: Vec::with_capacity(12),
            per_vu: Vec::new(),
        }
    }

    fn slot(&mut self, idx: u64) -> &mut Bucket {
        // Requests complete roughly in start order: the last bucket is the usual hit.
        let pos = match self.buckets.last() {
            Some((last, _)) if *last == idx => self.buckets.len() - 1,
            _ => match self.buckets.binary_search_by_key(&idx, |(i, _)| *i) {
                Ok(p) => p,
                Err(p) => {
                    self.buckets.insert(p, (idx, Bucket::new()));
                    p
                }
            },
        };
        &mut self.buckets[pos].1
    }

    /// Records one request that started `since_start` after the run's start and took
    /// `duration`; `limits_ms` are the plan's duration-check limits, `responded` false after a
    /// transport error (which is not counted over any limit).
    pub(crate) fn record(
        &mut self,
        since_start: Duration,
        duration: Duration,
        responded: bool,
        limits_ms: &[f64],
    ) {
        let idx = (since_start.as_millis() / u128::from(BUCKET_MS)) as u64 >> self.shift;
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let b = self.slot(idx);
        b.bins[bin(ns / 1_000)] = b.bins[bin(ns / 1_000)].saturating_add(1);
        b.requests += 1;
        b.max_ns = b.max_ns.max(ns);
        if !limits_ms.is_empty() {
            if b.over.len() < limits_ms.len() {
                // Once per bucket: the first request of the bucket sizes it.
                b.over.resize(limits_ms.len(), 0);
            }
            let ms = duration.as_secs_f64() * 1e3;
            for (o, &l) in b.over.iter_mut().zip(limits_ms) {
                *o += u64::from(responded && ms >= l);
            }
        }
    }

    /// VU `id` ended after completing `iterations`.
    pub(crate) fn vu_done(&mut self, id: u64, iterations: u64) {
        let i = usize::try_from(id).unwrap_or(usize::MAX);
        if i >= self.per_vu.len() {
            self.per_vu.resize(i.saturating_add(1), 0);
        }
        self.per_vu[i] += iterations;
    }

    /// Halves the resolution (collector only, to stay within [`MAX_BUCKETS`]).
    fn coarsen(&mut self) {
        self.shift += 1;
        let old = std::mem::take(&mut self.buckets);
        for (i, b) in old {
            match self.buckets.last_mut() {
                Some((l, lb)) if *l == i / 2 => lb.add(&b),
                _ => self.buckets.push((i / 2, b)),
            }
        }
    }

    pub(crate) fn add(&mut self, o: &Timeline) {
        while self.shift < o.shift {
            self.coarsen();
        }
        for (i, b) in &o.buckets {
            let base = i << o.shift;
            // Keep the total within MAX_BUCKETS buckets by coarsening as the run grows.
            while base >> self.shift >= MAX_BUCKETS as u64 {
                self.coarsen();
            }
            self.slot(base >> self.shift).add(b);
        }
        if self.per_vu.len() < o.per_vu.len() {
            self.per_vu.resize(o.per_vu.len(), 0);
        }
        for (a, b) in self.per_vu.iter_mut().zip(&o.per_vu) {
            *a += b;
        }
    }

    /// The series as the summary stores it; `None` when nothing was recorded.
    pub(crate) fn to_tail(&self, plan: &Plan) -> Option<Tail> {
        if self.buckets.is_empty() && self.per_vu.is_empty() {
            return None;
        }
        let len = self.buckets.last().map_or(0, |(i, _)| *i as usize + 1);
        let mut buckets = vec![TailBucket::default(); len];
        for (i, b) in &self.buckets {
            buckets[*i as usize] = TailBucket {
                requests: b.requests,
                p50_ms: b.quantile_ms(0.5),
                p99_ms: b.quantile_ms(0.99),
                max_ms: b.max_ns as f64 / 1e6,
            };
        }
        let over_limit = duration_limits(plan)
            .enumerate()
            .map(|(k, (check, limit_ms))| OverLimit {
                check: check.to_string(),
                limit_ms,
                buckets: self
                    .buckets
                    .iter()
                    .filter_map(|(i, b)| {
                        let n = b.over.get(k).copied().unwrap_or(0);
                        (n > 0).then_some([*i, n])
                    })
                    .collect(),
            })
            .collect();
        // Only where every VU runs for the whole run does a VU's count say how it was served.
        let per_vu_comparable = match plan.executor {
            Executor::ConstantVus { .. } => true,
            Executor::RampingVus { .. }
            | Executor::ConstantArrivalRate { .. }
            | Executor::RampingArrivalRate { .. } => false,
        };
        Some(Tail {
            bucket_ms: BUCKET_MS << self.shift,
            buckets,
            over_limit,
            requests_per_vu: if per_vu_comparable {
                self.per_vu.clone()
            } else {
                Vec::new()
            },
        })
    }
}

/// The plan's duration checks: (expression, limit ms), in plan order.
pub(crate) fn duration_limits(plan: &Plan) -> impl Iterator<Item = (&str, f64)> {
    plan.checks.iter().filter_map(|c| match c.kind {
        CheckKind::DurationBelowMs(ms) => Some((c.name.as_str(), ms)),
        CheckKind::Status(_) | CheckKind::BodyContains(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_values_in_order_and_their_middles_fall_inside() {
        let mut last = 0;
        for us in (0..5_000u64).chain([1 << 20, 1 << 30, u64::MAX / 1_000]) {
            let b = bin(us);
            assert!(b >= last, "{us}");
            last = b;
            if us >= 4 && b < NBINS - 1 {
                let mid = bin_mid_us(b);
                assert!(
                    mid >= us as f64 * 0.8 && mid <= us as f64 * 1.2,
                    "{us}: {mid}"
                );
            }
        }
    }

    #[test]
    fn buckets_count_percentiles_and_limits_and_the_total_coarsens() {
        let mut w = Timeline::new();
        let ms = Duration::from_millis;
        for k in 0..100 {
            w.record(ms(50), ms(1), true, &[5.0]);
            w.record(ms(250 + k), ms(if k == 0 { 300 } else { 2 }), true, &[5.0]);
        }
        w.record(ms(260), ms(900), false, &[5.0]);
        w.vu_done(3, 7);
        let mut total = Timeline::new();
        total.add(&w);
        let plan = Plan {
            checks: vec![crate::Check::parse("duration < 5").unwrap()],
            ..Plan::default()
        };
        let t = total.to_tail(&plan).unwrap();
        assert_eq!(t.bucket_ms, 100);
        assert_eq!(t.buckets.len(), 4);
        assert_eq!(t.buckets[0].requests, 100);
        assert!((t.buckets[0].p99_ms - 1.0).abs() < 0.15);
        assert_eq!(t.buckets[1].requests, 0);
        assert_eq!(t.buckets[2].requests, 51);
        assert_eq!(t.buckets[2].max_ms, 900.0);
        assert!((t.buckets[2].p50_ms - 2.0).abs() < 0.3);
        assert_eq!(
            t.over_limit[0].buckets,
            vec![[2, 1]],
            "the failed request is not over"
        );
        assert_eq!(t.requests_per_vu, vec![0, 0, 0, 7]);

        let mut late = Timeline::new();
        late.record(ms(BUCKET_MS * MAX_BUCKETS as u64 + 50), ms(1), true, &[]);
        total.add(&late);
        let t = total.to_tail(&plan).unwrap();
        assert_eq!(t.bucket_ms, 200);
        assert_eq!(t.buckets.len(), MAX_BUCKETS / 2 + 1);
        assert_eq!(t.buckets[1].requests, 101);
        assert_eq!(t.buckets.iter().map(|b| b.requests).sum::<u64>(), 202);
    }
}
