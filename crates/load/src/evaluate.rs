//! Threshold evaluation: the value each k6 aggregation reads from a [`Summary`], and the
//! outcome of every threshold of a plan.

use crate::error::LoadError;
use crate::histogram::TrendStat;
use crate::registry::split_name_tag;
use crate::summary::{Summary, ThresholdResult, rate, ratio};
use crate::threshold::{Aggregation, Threshold};

impl Summary {
    /// The value a threshold aggregation reads from a metric.
    pub fn metric_value(&self, metric: &str, agg: Aggregation) -> Option<f64> {
        let c = &self.counters;
        let count = |n: u64| match agg {
            Aggregation::Count => Some(n as f64),
            Aggregation::Rate => Some(rate(n, self.duration_s)),
            _ => None,
        };
        match metric {
            "http_reqs" => count(c.http_reqs),
            "iterations" => count(c.iterations),
            "dropped_iterations" => count(c.dropped_iterations),
            "interrupted_iterations" => count(c.interrupted_iterations),
            "data_sent" => count(c.data_sent_bytes),
            "data_received" => count(c.data_received_bytes),
            "http_req_errors" => count(c.total_errors()),
            "http_req_failed" => Some(self.http_req_failed_rate()),
            "checks" => {
                let (p, f) = self.checks_total();
                Some(ratio(p, p + f))
            }
            "vus" => Some(self.vus.value as f64),
            "vus_max" => Some(self.vus_max.value as f64),
            m if m.starts_with("http_reqs{") || m.starts_with("http_req_failed{") => {
                let (base, tag) = split_name_tag(m);
                let n = self.by_name.get(tag?).copied().unwrap_or_default();
                if base == "http_reqs" {
                    count(n.http_reqs)
                } else {
                    Some(ratio(n.http_req_failed, n.http_reqs))
                }
            }
            m => {
                let h = &self.trends.get(m)?.0;
                Some(match agg {
                    Aggregation::Avg => TrendStat::Avg.value(h),
                    Aggregation::Min => TrendStat::Min.value(h),
                    Aggregation::Med => TrendStat::Med.value(h),
                    Aggregation::Max => TrendStat::Max.value(h),
                    Aggregation::Percentile(q) => TrendStat::P(q).value(h),
                    _ => return None,
                })
            }
        }
    }

    /// Evaluates `thresholds` on this summary.
    pub fn evaluate(&self, thresholds: &[Threshold]) -> Result<Vec<ThresholdResult>, LoadError> {
        thresholds
            .iter()
            .map(|t| {
                let x = t.parse_checked()?;
                let observed = self.metric_value(&t.metric, x.agg).unwrap_or(f64::NAN);
                Ok(ThresholdResult {
                    metric: t.metric.clone(),
                    expr: t.expr.clone(),
                    abort_on_fail: t.abort_on_fail,
                    observed,
                    ok: x.passes(observed),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::histogram::new_histogram;
    use crate::metrics::Metrics;
    use crate::plan::Plan;
    use crate::summary::NamedCounts;
    use crate::trend::Trend;

    fn summary() -> Summary {
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut s = Summary::from_metrics(&Plan::default(), &Metrics::new(0, 0), t, t, 2.0);
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            h.record(ms * 1_000_000).unwrap();
        }
        s.trends.insert("http_req_duration".into(), Trend(h));
        s.counters.http_reqs = 100;
        s.counters.http_req_failed = 5;
        s.by_name.insert(
            "a".into(),
            NamedCounts {
                http_reqs: 10,
                http_req_failed: 1,
            },
        );
        s
    }

    #[test]
    fn aggregations_read_their_metric() {
        let s = summary();
        assert_eq!(s.metric_value("http_reqs", Aggregation::Count), Some(100.0));
        assert_eq!(s.metric_value("http_reqs", Aggregation::Rate), Some(50.0));
        assert_eq!(
            s.metric_value("http_req_failed", Aggregation::Rate),
            Some(0.05)
        );
        assert_eq!(
            s.metric_value("http_reqs{name:a}", Aggregation::Count),
            Some(10.0)
        );
        assert_eq!(
            s.metric_value("http_req_failed{name:a}", Aggregation::Rate),
            Some(0.1)
        );
        assert_eq!(
            s.metric_value("http_reqs{name:b}", Aggregation::Count),
            Some(0.0)
        );
        let p95 = s.metric_value("http_req_duration", Aggregation::Percentile(95.0));
        assert!((p95.unwrap() - 95.05).abs() < 0.1, "{p95:?}");
        assert_eq!(
            s.metric_value("http_req_duration", Aggregation::Count),
            None
        );
        assert_eq!(
            s.metric_value("http_req_waiting{name:a}", Aggregation::Avg),
            None
        );
    }

    #[test]
    fn thresholds_pass_fail_and_record_what_they_saw() {
        let s = summary();
        let ts = [
            Threshold::parse_cli("http_req_failed=rate<0.1").unwrap(),
            Threshold::parse_cli("http_req_duration=p(95)<50:abortOnFail").unwrap(),
        ];
        let r = s.evaluate(&ts).unwrap();
        assert_eq!((r[0].ok, r[0].observed), (true, 0.05));
        assert!(!r[1].ok && r[1].abort_on_fail && r[1].observed > 90.0);
        assert_eq!(r[1].expr, "p(95)<50");
        let unknown = Threshold {
            metric: "http_req_speed".into(),
            expr: "avg<1".into(),
            abort_on_fail: false,
        };
        assert!(s.evaluate(&[unknown]).is_err());
    }
}
