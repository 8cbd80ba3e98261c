//! Merging summaries of one plan run at the same time by several processes or pods: the sum
//! of their histograms and counters is the summary of all their requests.

use crate::error::LoadError;
use crate::summary::{CounterSummary, Summary};

impl CounterSummary {
    fn add(&mut self, o: &CounterSummary) {
        self.http_reqs += o.http_reqs;
        self.http_req_failed += o.http_req_failed;
        self.iterations += o.iterations;
        self.interrupted_iterations += o.interrupted_iterations;
        self.dropped_iterations += o.dropped_iterations;
        self.late_iterations += o.late_iterations;
        self.data_sent_bytes += o.data_sent_bytes;
        self.data_received_bytes += o.data_received_bytes;
        self.connections_opened += o.connections_opened;
        self.connections_failed += o.connections_failed;
        self.vus_not_started += o.vus_not_started;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

impl Summary {
    /// Adds another summary of the same plan run at the same time (another process or pod):
    /// histograms, counters and checks are summed, the time span is the union, rates are
    /// recomputed over it, and thresholds are evaluated again.
    pub fn merge(&mut self, other: &Summary) -> Result<(), LoadError> {
        for (name, t) in &other.trends {
            match self.trends.get_mut(name) {
                Some(mine) => mine.0.add(&t.0).map_err(|e| LoadError::Histogram {
                    metric: name.clone(),
                    reason: format!("{e:?}"),
                })?,
                None => {
                    self.trends.insert(name.clone(), t.clone());
                }
            }
        }
        self.counters.add(&other.counters);
        match (&mut self.start_lag, &other.start_lag) {
            (Some(mine), Some(t)) => mine.0.add(&t.0).map_err(|e| LoadError::Histogram {
                metric: "start_lag".into(),
                reason: format!("{e:?}"),
            })?,
            (mine @ None, Some(t)) => *mine = Some(t.clone()),
            (_, None) => {}
        }
        for (name, n) in &other.by_name {
            let mine = self.by_name.entry(name.clone()).or_default();
            mine.http_reqs += n.http_reqs;
            mine.http_req_failed += n.http_req_failed;
        }
        for c in &other.checks {
            match self.checks.iter_mut().find(|x| x.name == c.name) {
                Some(x) => {
                    x.passes += c.passes;
                    x.fails += c.fails;
                }
                None => self.checks.push(c.clone()),
            }
        }
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        // Concurrent sources: gauges add up.
        self.vus.value += other.vus.value;
        self.vus.min += other.vus.min;
        self.vus.max += other.vus.max;
        self.vus_max.value += other.vus_max.value;
        self.vus_max.min += other.vus_max.min;
        self.vus_max.max += other.vus_max.max;
        self.started = self.started.min(other.started);
        self.ended = self.ended.max(other.ended);
        let span = (self.ended - self.started).num_microseconds().unwrap_or(0) as f64 / 1e6;
        self.duration_s = span.max(self.duration_s).max(other.duration_s);
        self.partial |= other.partial;
        self.aborted_by_threshold |= other.aborted_by_threshold;
        self.sources += other.sources;
        self.workers += other.workers;
        match (&mut self.tail, &other.tail) {
            (Some(mine), Some(t)) => mine.merge(t),
            (mine @ None, Some(t)) => *mine = Some(t.clone()),
            (_, None) => {}
        }
        // Sources that ran on different backends: the merged figures belong to neither.
        // The load threads' CPU adds up across sources.
        self.engine = match (self.engine.take(), &other.engine) {
            (Some(mine), Some(theirs))
                if (&mine.backend, &mine.fallback_reason, mine.pinned)
                    == (&theirs.backend, &theirs.fallback_reason, theirs.pinned) =>
            {
                Some(crate::EngineInfo {
                    worker_cpu_us: mine
                        .worker_cpu_us
                        .zip(theirs.worker_cpu_us)
                        .map(|(a, b)| a + b),
                    ..mine
                })
            }
            _ => None,
        };
        self.thresholds = self.evaluate(&self.plan.thresholds.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::histogram::{new_histogram, percentile_ms};
    use crate::metrics::Metrics;
    use crate::plan::Plan;
    use crate::summary::CheckResult;
    use crate::trend::Trend;

    /// A summary whose `http_req_duration` holds `values_ns`, with counters to match, run for
    /// `secs` seconds from `start_s` seconds after a fixed instant.
    fn summary_of(values_ns: &[u64], start_s: i64, secs: i64) -> Summary {
        let started = DateTime::from_timestamp(1_767_225_600 + start_s, 0).unwrap();
        let ended = started + chrono::Duration::seconds(secs);
        let mut s = Summary::from_metrics(
            &Plan::default(),
            &Metrics::new(0, 0),
            started,
            ended,
            secs as f64,
        );
        let mut h = new_histogram();
        for v in values_ns {
            h.record(*v).unwrap();
        }
        s.trends.insert("http_req_duration".into(), Trend(h));
        let n = values_ns.len() as u64;
        s.counters.http_reqs = n;
        s.counters.data_received_bytes = 100 * n;
        s.checks.push(CheckResult {
            name: "status == 200".into(),
            passes: n,
            fails: 1,
        });
        s
    }

    #[test]
    fn merged_summaries_equal_one_summary_of_all_values() {
        // Two load pods with different distributions: a fast one and one with a long tail.
        let a: Vec<u64> = (1..=1000).map(|i| i * 1_000).collect();
        let b: Vec<u64> = (1..=300).map(|i| 250_000 + i * 37_003).collect();
        let mut merged = summary_of(&a, 0, 1);
        // Through JSON, the way the pods' summaries reach the Kubernetes driver.
        let json = serde_json::to_string(&summary_of(&b, 1, 1)).unwrap();
        merged.merge(&serde_json::from_str(&json).unwrap()).unwrap();
        let one = summary_of(&[a.clone(), b.clone()].concat(), 0, 2);

        let (m, o) = (
            &merged.trends["http_req_duration"].0,
            &one.trends["http_req_duration"].0,
        );
        assert_eq!(m, o, "same count in every bucket");
        for q in [0.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
            assert_eq!(percentile_ms(m, q), percentile_ms(o, q), "p({q})");
        }
        assert_eq!(
            merged.trend("http_req_duration"),
            one.trend("http_req_duration")
        );
        // Averaging the pods' percentiles would be a different, wrong number.
        let p95 =
            |v: &[u64]| percentile_ms(&summary_of(v, 0, 1).trends["http_req_duration"].0, 95.0);
        assert!(((p95(&a) + p95(&b)) / 2.0 - percentile_ms(m, 95.0)).abs() > 0.1);
        // Counters and checks add up; the rate is over the wall-clock window of both.
        assert_eq!(merged.counters.http_reqs, 1300);
        assert_eq!(merged.counters.data_received_bytes, 130_000);
        assert_eq!(merged.checks_total(), (1300, 2));
        assert_eq!(merged.duration_s, 2.0);
        assert_eq!(merged.http_reqs_per_s(), 650.0);
        assert_eq!(merged.sources, 2);
    }

    #[test]
    fn tails_of_pods_merge_by_offset_from_each_pods_start() {
        use wasmbench_vocab::tail::{Tail, TailBucket};
        let b = |requests, p99_ms| TailBucket {
            requests,
            p50_ms: 1.0,
            p99_ms,
            max_ms: p99_ms,
        };
        let tail = |buckets, vus| Tail {
            bucket_ms: 100,
            buckets,
            over_limit: Vec::new(),
            requests_per_vu: vus,
        };
        let mut first = summary_of(&[1_000_000], 0, 1);
        let mut second = summary_of(&[2_000_000], 1, 1);
        let mut third = summary_of(&[3_000_000], 0, 1);
        assert!(first.tail.is_none());
        // A source without a tail (an older pod) leaves the other's as it is.
        first.merge(&third).unwrap();
        assert!(first.tail.is_none());
        second.tail = Some(tail(vec![b(10, 2.0), b(12, 40.0)], vec![11, 11]));
        first.merge(&second).unwrap();
        third.tail = Some(tail(vec![b(5, 9.0)], vec![5]));
        first.merge(&third).unwrap();
        let t = first.tail.unwrap();
        // Pod 2 started a second later, yet its first bucket adds to the others' first.
        assert_eq!(t.buckets, vec![b(15, 9.0), b(12, 40.0)]);
        assert_eq!(t.requests_per_vu, vec![11, 11, 5]);
    }
}
