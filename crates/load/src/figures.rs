//! What a report reads from one load run, whichever tool measured it: this engine's
//! [`Summary`] or k6's `--summary-export` ([`crate::k6::K6Summary`]).

use std::collections::BTreeMap;

use wasmbench_vocab::tail::Tail;
use wasmbench_vocab::{PlannedRun, TrendStats};

use crate::registry::named_trend_names;
use crate::summary::{NamedCounts, Summary};

/// One request of a mix, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedFigures {
    /// Its counters.
    pub counts: NamedCounts,
    /// Its `http_req_waiting`.
    pub waiting: TrendStats,
    /// Its `http_req_duration`.
    pub duration: TrendStats,
}

/// The figures of one load run that a report states.
pub trait LoadFigures: std::fmt::Debug {
    /// The tool that measured them, for the report (`wasmbench 0.1.0`, `k6`).
    fn measured_by(&self) -> String;
    /// Length of the measured run, seconds.
    fn duration_s(&self) -> f64;
    /// Completed requests.
    fn http_reqs(&self) -> u64;
    /// Share of failed requests, 0–1.
    fn http_req_failed_rate(&self) -> f64;
    /// Failed requests by kind, where the tool tells the kind.
    fn errors(&self) -> BTreeMap<String, u64>;
    /// Checks passed and failed, summed over all checks.
    fn checks_total(&self) -> (u64, u64);
    /// Each check's name with its passes and fails.
    fn checks(&self) -> Vec<(String, u64, u64)>;
    /// Threshold expressions (`metric: expr`) and whether each held.
    fn thresholds(&self) -> Vec<(String, bool)>;
    /// Bytes sent and received by the load generator.
    fn data_bytes(&self) -> (u64, u64);
    /// Statistics of one trend metric (k6 name), when measured.
    fn trend(&self, metric: &str) -> Option<TrendStats>;
    /// (percentile, ms) points of a trend, ascending; as many as the tool reports.
    fn percentile_curve(&self, metric: &str) -> Vec<(f64, f64)>;
    /// Per request of the plan's mix (empty without a mix).
    fn by_request(&self) -> BTreeMap<String, NamedFigures>;
    /// TCP connections the load generator opened, when the tool counts them (k6 does not).
    fn connections_opened(&self) -> Option<u64>;
    /// The latency tail over time and per VU, when the tool records it (k6's export does not).
    fn tail(&self) -> Option<Tail>;
    /// What the run was planned to be, when the tool's output says (k6's export does not).
    fn planned(&self) -> Option<PlannedRun>;

    /// Completed requests per second.
    fn http_reqs_per_s(&self) -> f64 {
        let d = self.duration_s();
        if d > 0.0 {
            self.http_reqs() as f64 / d
        } else {
            0.0
        }
    }
}

impl LoadFigures for Summary {
    fn measured_by(&self) -> String {
        format!("wasmbench {}", self.wasmbench_version)
    }
    fn tail(&self) -> Option<Tail> {
        self.tail.clone()
    }
    fn planned(&self) -> Option<PlannedRun> {
        Some(PlannedRun {
            duration_s: self.plan.executor.duration().as_secs_f64(),
            vus: match self.plan.executor {
                crate::plan::Executor::ConstantVus { vus, .. } => {
                    Some(vus * u64::from(self.sources.max(1)))
                }
                _ => None,
            },
            interrupted_iterations: self.counters.interrupted_iterations,
        })
    }
    fn duration_s(&self) -> f64 {
        self.duration_s
    }
    fn http_reqs(&self) -> u64 {
        self.counters.http_reqs
    }
    fn connections_opened(&self) -> Option<u64> {
        Some(self.counters.connections_opened)
    }
    fn http_req_failed_rate(&self) -> f64 {
        Summary::http_req_failed_rate(self)
    }
    fn errors(&self) -> BTreeMap<String, u64> {
        self.counters.errors.clone()
    }
    fn checks_total(&self) -> (u64, u64) {
        Summary::checks_total(self)
    }
    fn checks(&self) -> Vec<(String, u64, u64)> {
        self.checks
            .iter()
            .map(|c| (c.name.clone(), c.passes, c.fails))
            .collect()
    }
    fn thresholds(&self) -> Vec<(String, bool)> {
        self.thresholds
            .iter()
            .map(|t| (format!("{}: {}", t.metric, t.expr), t.ok))
            .collect()
    }
    fn data_bytes(&self) -> (u64, u64) {
        (
            self.counters.data_sent_bytes,
            self.counters.data_received_bytes,
        )
    }
    fn trend(&self, metric: &str) -> Option<TrendStats> {
        Summary::trend(self, metric)
    }
    fn percentile_curve(&self, metric: &str) -> Vec<(f64, f64)> {
        Summary::percentile_curve(self, metric)
    }
    fn by_request(&self) -> BTreeMap<String, NamedFigures> {
        self.by_name
            .iter()
            .filter_map(|(name, n)| {
                let (dur, wait) = named_trend_names(name);
                Some((
                    name.clone(),
                    NamedFigures {
                        counts: *n,
                        waiting: Summary::trend(self, &wait)?,
                        duration: Summary::trend(self, &dur)?,
                    },
                ))
            })
            .collect()
    }
    fn http_reqs_per_s(&self) -> f64 {
        Summary::http_reqs_per_s(self)
    }
}
