//! Where a run's latency tail came from, read from its [`Tail`]: stalls (short windows in which
//! the requests in flight all waited), unfair service (some VUs completed far fewer requests
//! than the others) or a steady spread (neither).
//!
//! The classifier reads only the recorded series, so it says what the run observed and nothing
//! about why.

use crate::model::{RunResult, Tail, VariantResult};
use crate::units::{fmt_count, fmt_ms};

/// A request is "far beyond the run's usual latency" when it took more than this many times
/// the run's median: a factor the ordinary spread of a service (p99/p50 is typically 2–5 on a
/// busy machine) does not reach.
pub const STALL_FACTOR: f64 = 10.0;

/// …and more than this many ms: on a fast service, 10× its median is a scheduler hiccup of a
/// millisecond or two, which every loaded machine has and which is no stall.
pub const STALL_FLOOR_MS: f64 = 50.0;

/// A bucket in which fewer than this share of the run's usual number of requests started
/// means the VUs were busy waiting (closed model): the usual count is the median bucket's, so
/// the ordinary jitter of a steady run (±30 %) stays far above it.
pub const COLLAPSE_SHARE: f64 = 0.25;

/// Stalls are short windows: when windows cover more than this share of the run, the run was
/// slow much of the time rather than stalling now and then (and its median, the yardstick of
/// "far beyond", no longer describes an ordinary request), so no stall is reported.
pub const STALL_MAX_SHARE: f64 = 1.0 / 3.0;

/// A VU that completed fewer than this share of the median VU's requests was served unfairly:
/// half is far outside the few per cent by which the VUs of a fair run differ.
pub const UNFAIR_SHARE: f64 = 0.5;

/// The median VU must have completed at least this many requests before shares of it are
/// compared: with fewer, one slow request moves a VU's count by more than the threshold.
pub const MIN_MEDIAN_REQUESTS: u64 = 20;

/// Fewest buckets with requests (one second) before the series says anything.
pub const MIN_BUCKETS: usize = 10;

/// How many stalls a sentence lists by time.
const LISTED: usize = 3;

/// One stall: a window of buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    /// When its first bucket starts, seconds into the run.
    pub start_s: f64,
    /// The longest request started in it, ms: how long a request that met the window's
    /// start waited.
    pub longest_ms: f64,
    /// Buckets it covers (its first bucket, then the buckets in which requests could not start
    /// or waited too).
    pub buckets: std::ops::Range<usize>,
}

/// What a run's tail came from.
#[derive(Debug, Clone, PartialEq)]
pub enum TailKind {
    /// Short windows in which (almost) every in-flight request waited.
    Stalls {
        /// The windows, in time order.
        stalls: Vec<Stall>,
        /// The run's median request, ms (count-weighted median of its buckets' medians).
        usual_ms: f64,
        /// The latency that counted as far beyond it, ms.
        limit_ms: f64,
        /// Per duration check: (its expression, requests over its limit, how many of those
        /// started inside a stall).
        over_limit: Vec<(String, u64, u64)>,
    },
    /// Some VUs completed far fewer requests than the median VU.
    Unfair {
        /// VUs below [`UNFAIR_SHARE`] of the median.
        starved: usize,
        /// VUs that completed at least one request.
        vus: usize,
        /// Mean requests of the starved VUs.
        starved_mean: f64,
        /// Requests of the median VU.
        median: f64,
    },
    /// Neither: the tail is spread over the run and the VUs alike.
    Steady,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The run's usual latency: the median of the buckets' medians, each weighted by its requests.
fn usual_ms(t: &Tail) -> Option<f64> {
    let mut pts: Vec<(f64, u64)> = t
        .buckets
        .iter()
        .filter(|b| b.requests > 0)
        .map(|b| (b.p50_ms, b.requests))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = pts.iter().map(|p| p.1).sum();
    let mut seen = 0;
    for (ms, n) in pts {
        seen += n;
        if seen * 2 >= total {
            return Some(ms);
        }
    }
    None
}

/// The stall windows of a run, when its tail is one of stalls.
fn stalls(t: &Tail) -> Option<TailKind> {
    let b = &t.buckets;
    if b.iter().filter(|x| x.requests > 0).count() < MIN_BUCKETS {
        return None;
    }
    let usual = usual_ms(t)?;
    let limit = (usual * STALL_FACTOR).max(STALL_FLOOR_MS);
    // The last bucket is cut short by the end of the run, so its count says nothing.
    let interior = &b[..b.len() - 1];
    let usual_count = median(interior.iter().map(|x| x.requests as f64).collect())?;
    let stuck = |x: &crate::model::TailBucket| {
        x.p50_ms > limit || (x.requests as f64) < COLLAPSE_SHARE * usual_count
    };
    let mut out = Vec::new();
    let mut i = 0;
    // Bounded: every pass moves `i` forward.
    while i < interior.len() {
        if interior[i].max_ms <= limit {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < interior.len() && stuck(&interior[end]) {
            end += 1;
        }
        // (Almost) every request in flight waited: most of the window's own requests did, or
        // the VUs could not start new ones in the buckets after it.
        if interior[i].p50_ms > limit || end > i + 1 {
            out.push(Stall {
                start_s: t.start_s(i),
                longest_ms: interior[i..end]
                    .iter()
                    .map(|x| x.max_ms)
                    .fold(0.0, f64::max),
                buckets: i..end,
            });
        }
        i = end;
    }
    let covered: usize = out.iter().map(|s| s.buckets.len()).sum();
    if out.is_empty() || covered as f64 > STALL_MAX_SHARE * b.len() as f64 {
        return None;
    }
    let over_limit = t
        .over_limit
        .iter()
        .map(|o| {
            let inside = o
                .buckets
                .iter()
                .filter(|[k, _]| out.iter().any(|s| s.buckets.contains(&(*k as usize))))
                .map(|[_, n]| n)
                .sum();
            (o.check.clone(), o.total(), inside)
        })
        .collect();
    Some(TailKind::Stalls {
        stalls: out,
        usual_ms: usual,
        limit_ms: limit,
        over_limit,
    })
}

/// The starved VUs of a run, when its service was unfair.
fn unfair(t: &Tail) -> Option<TailKind> {
    // A VU that completed nothing never began an iteration (the run counts those apart).
    let done: Vec<u64> = t
        .requests_per_vu
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect();
    let med = median(done.iter().map(|&n| n as f64).collect())?;
    if med < MIN_MEDIAN_REQUESTS as f64 {
        return None;
    }
    let starved: Vec<u64> = done
        .iter()
        .copied()
        .filter(|&n| (n as f64) < UNFAIR_SHARE * med)
        .collect();
    if starved.is_empty() {
        return None;
    }
    Some(TailKind::Unfair {
        starved: starved.len(),
        vus: done.len(),
        starved_mean: starved.iter().sum::<u64>() as f64 / starved.len() as f64,
        median: med,
    })
}

/// Classifies one run's tail: stalls, else unfair service, else a steady spread.
pub fn classify(t: &Tail) -> TailKind {
    stalls(t).or_else(|| unfair(t)).unwrap_or(TailKind::Steady)
}

fn pct(a: u64, b: u64) -> String {
    format!("{:.0}%", 100.0 * a as f64 / b.max(1) as f64)
}

/// The sentence for a stalls or unfair classification of `run` of `v`; `alike` runs were
/// classified the same way.
fn describe(
    v: &VariantResult,
    run: &RunResult,
    kind: &TailKind,
    alike: usize,
    keep_alive: bool,
    unit: &str,
) -> Option<String> {
    let of = v.runs.iter().filter(|r| r.tail.is_some()).count();
    let which = if of > 1 {
        format!(
            " ({unit} {}; {alike} of {of} {unit}s alike)",
            run.repeat + 1
        )
    } else {
        String::new()
    };
    match kind {
        TailKind::Stalls {
            stalls,
            usual_ms,
            limit_ms,
            over_limit,
        } => {
            let when: Vec<String> = stalls
                .iter()
                .take(LISTED)
                .map(|s| {
                    format!(
                        "at {:.1} s for about {}",
                        s.start_s,
                        fmt_ms(s.longest_ms.round())
                    )
                })
                .collect();
            let more = if stalls.len() > LISTED { ", …" } else { "" };
            let mut s = format!(
                "Latency tail of {}{which}: {} stall{}, short windows in which (almost) every \
                 request in flight waited over {} (the run's median request took {}): {}{more}",
                v.name,
                stalls.len(),
                if stalls.len() == 1 { "" } else { "s" },
                fmt_ms(*limit_ms),
                fmt_ms(*usual_ms),
                when.join(", ")
            );
            for (check, total, inside) in over_limit.iter().filter(|o| o.1 > 0) {
                s.push_str(&format!(
                    "; {} of the {} requests over `{check}` started in them",
                    pct(*inside, *total),
                    fmt_count(*total as f64)
                ));
            }
            s.push('.');
            Some(s)
        }
        TailKind::Unfair {
            starved,
            vus,
            starved_mean,
            median,
        } => Some(format!(
            "Latency tail of {}{which}: unfair service, {starved} of {vus} VUs ({}{}) completed \
             under half the median VU's requests: {} on average vs {} for the median VU.",
            v.name,
            pct(*starved as u64, *vus as u64),
            if keep_alive {
                " of the connections: each VU keeps one"
            } else {
                ""
            },
            fmt_count(starved_mean.round()),
            fmt_count(median.round())
        )),
        TailKind::Steady => None,
    }
}

/// The sentence on where `v`'s latency tail came from, when its runs recorded a tail and it
/// came from stalls or unfair service; the run cited is the first of the most frequent kind.
/// `keep_alive`: the VUs kept their connections, so a VU's share is its connection's; `unit`
/// names a run (`repeat`, or `block` in the block designs).
pub fn sentence(v: &VariantResult, keep_alive: bool, unit: &str) -> Option<String> {
    let kinds: Vec<(&RunResult, TailKind)> = v
        .runs
        .iter()
        .filter_map(|r| Some((r, classify(r.tail.as_ref()?))))
        .collect();
    let count = |f: fn(&TailKind) -> bool| kinds.iter().filter(|(_, k)| f(k)).count();
    let n_stalls = count(|k| matches!(k, TailKind::Stalls { .. }));
    let n_unfair = count(|k| matches!(k, TailKind::Unfair { .. }));
    let n_steady = kinds.len() - n_stalls - n_unfair;
    // The variant's kind is its runs' most frequent one; a tie goes to the one named first.
    let (pick, alike): (fn(&TailKind) -> bool, usize) =
        if n_stalls >= n_unfair && n_stalls > n_steady {
            (|k| matches!(k, TailKind::Stalls { .. }), n_stalls)
        } else if n_unfair > n_steady {
            (|k| matches!(k, TailKind::Unfair { .. }), n_unfair)
        } else {
            return spread(v, &kinds, keep_alive, unit);
        };
    let (run, kind) = kinds.iter().find(|(_, k)| pick(k))?;
    describe(v, run, kind, alike, keep_alive, unit)
}

/// The sentence for a steady spread, said only when some requests went over a check's limit
/// (the figure a reader wants explained): how many, in how many runs, the longest, and the
/// figures that rule out stalls and unfair service.
fn spread(
    v: &VariantResult,
    kinds: &[(&RunResult, TailKind)],
    keep_alive: bool,
    unit: &str,
) -> Option<String> {
    let mut over: Vec<(String, u64, usize)> = Vec::new();
    for (r, _) in kinds {
        for o in r.tail.as_ref().map_or(&[][..], |t| &t.over_limit) {
            let n = o.total();
            if n == 0 {
                continue;
            }
            match over.iter_mut().find(|(c, ..)| *c == o.check) {
                Some(e) => {
                    e.1 += n;
                    e.2 += 1;
                }
                None => over.push((o.check.clone(), n, 1)),
            }
        }
    }
    let (check, total, runs) = over.into_iter().max_by_key(|o| o.1)?;
    let requests: u64 = kinds.iter().map(|(r, _)| r.http_reqs).sum();
    let longest = kinds
        .iter()
        .filter_map(|(r, _)| r.tail.as_ref())
        .flat_map(|t| t.buckets.iter().map(|b| b.max_ms))
        .fold(0.0, f64::max);
    // The lowest share of its run's median VU that any VU completed, over the runs.
    let least_share = kinds
        .iter()
        .filter_map(|(r, _)| {
            let t = r.tail.as_ref()?;
            let done: Vec<f64> = t
                .requests_per_vu
                .iter()
                .filter(|&&n| n > 0)
                .map(|&n| n as f64)
                .collect();
            let least = done.iter().copied().fold(f64::INFINITY, f64::min);
            Some(least / median(done)?)
        })
        .fold(f64::INFINITY, f64::min);
    let count = |f: fn(&TailKind) -> bool| kinds.iter().filter(|(_, k)| f(k)).count();
    let n_unfair = count(|k| matches!(k, TailKind::Unfair { .. }));
    let n_stalls = count(|k| matches!(k, TailKind::Stalls { .. }));
    let fairness = if n_unfair + n_stalls > 0 {
        format!(
            "; {n_unfair} of the {n} {unit}s had a VU{} under half the median VU's requests, \
             {n_stalls} had stalls",
            if keep_alive { " (connection)" } else { "" },
            n = kinds.len(),
        )
    } else if least_share.is_finite() {
        format!(
            "; every VU{} completed at least {:.0}% of its run's median VU's requests",
            if keep_alive { " (connection)" } else { "" },
            100.0 * least_share
        )
    } else {
        String::new()
    };
    let within = if v.runs.len() > 1 {
        format!(" in {runs} of {} {unit}s", kinds.len())
    } else {
        String::new()
    };
    Some(format!(
        "Latency tail of {}: {}a steady spread, neither stalls nor unfair service: {} \
         requests ({:.2}%) over `{check}`{within}, the longest {}, came a few at a time while the \
         other requests kept being served{fairness}.",
        v.name,
        if n_unfair + n_stalls > 0 {
            "mostly "
        } else {
            ""
        },
        fmt_count(total as f64),
        100.0 * total as f64 / requests.max(1) as f64,
        fmt_ms(longest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OverLimit, TailBucket};

    fn bucket(requests: u64, p50_ms: f64, max_ms: f64) -> TailBucket {
        TailBucket {
            requests,
            p50_ms,
            p99_ms: max_ms,
            max_ms,
        }
    }

    /// 10 s of 100 ms buckets with a 1 ms median; `f` changes bucket `i`.
    fn series(f: impl Fn(usize, TailBucket) -> TailBucket) -> Tail {
        Tail {
            bucket_ms: 100,
            buckets: (0..100).map(|i| f(i, bucket(1000, 1.0, 4.0))).collect(),
            over_limit: Vec::new(),
            requests_per_vu: vec![5000; 20],
        }
    }

    #[test]
    fn windows_where_few_requests_start_after_a_long_one_are_stalls() {
        // Every 2 s: one bucket whose last requests waited 300 ms, then two with no starts.
        let mut t = series(|i, b| match i % 20 {
            10 => bucket(600, 1.0, 300.0),
            11 | 12 => bucket(0, 0.0, 0.0),
            13 => bucket(150, 1.0, 5.0),
            _ => b,
        });
        t.over_limit.push(OverLimit {
            check: "duration < 200".into(),
            limit_ms: 200.0,
            buckets: vec![[10, 20], [30, 20], [50, 20], [70, 20], [90, 20], [95, 5]],
        });
        let TailKind::Stalls {
            stalls,
            limit_ms,
            over_limit,
            ..
        } = classify(&t)
        else {
            panic!("{:?}", classify(&t))
        };
        assert_eq!(limit_ms, STALL_FLOOR_MS);
        let starts: Vec<f64> = stalls.iter().map(|s| s.start_s).collect();
        assert_eq!(starts, [1.0, 3.0, 5.0, 7.0, 9.0]);
        assert!(
            stalls
                .iter()
                .all(|s| s.longest_ms == 300.0 && s.buckets.len() == 4)
        );
        assert_eq!(over_limit, vec![("duration < 200".to_string(), 105, 100)]);
    }

    #[test]
    fn one_slow_request_or_slowness_throughout_is_no_stall() {
        let one = series(|i, b| if i == 40 { bucket(990, 1.0, 400.0) } else { b });
        assert_eq!(classify(&one), TailKind::Steady);
        let dip = series(|i, b| match i {
            40 => bucket(900, 1.0, 80.0),
            41 => bucket(700, 1.0, 5.0),
            _ => b,
        });
        assert_eq!(classify(&dip), TailKind::Steady, "a 30% dip is jitter");
        let slow = series(|i, b| {
            if i % 2 == 0 {
                bucket(1000, 80.0, 200.0)
            } else {
                b
            }
        });
        assert_eq!(
            classify(&slow),
            TailKind::Steady,
            "half the run is no short window"
        );
    }

    #[test]
    fn vus_far_below_the_median_are_unfair_service() {
        let mut t = series(|_, b| b);
        t.requests_per_vu = vec![1000; 18];
        t.requests_per_vu.extend([110, 90, 0]);
        assert_eq!(
            classify(&t),
            TailKind::Unfair {
                starved: 2,
                vus: 20,
                starved_mean: 100.0,
                median: 1000.0
            }
        );
        t.requests_per_vu = vec![1000, 900, 1100, 800, 1200];
        assert_eq!(classify(&t), TailKind::Steady);
        t.requests_per_vu = vec![10, 10, 3];
        assert_eq!(classify(&t), TailKind::Steady, "too few requests to tell");
    }
}
