//! k6's `--summary-export` document, read back as [`LoadFigures`], so that a k6 run (the
//! public demo's load tool) lands in the same report as this engine's.
//!
//! The export holds per-metric statistics only (no histograms): runs of several k6 processes
//! cannot be merged exactly, and percentiles are the ones k6 was asked for with
//! `--summary-trend-stats` ([`K6_TREND_STATS`]).

use std::collections::BTreeMap;

use serde_json::Value;

use wasmbench_vocab::TrendStats;

use crate::error::LoadError;
use crate::figures::{LoadFigures, NamedFigures};

/// The `--summary-trend-stats` value every statistic of the report needs.
pub const K6_TREND_STATS: &str = "avg,min,med,max,p(90),p(95),p(99)";

/// One metric of the export: its values (`avg`, `p(95)`, `count`, `rate`, `passes`...) and
/// its thresholds (expression → crossed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct K6Metric {
    /// Numeric values by k6's key.
    pub values: BTreeMap<String, f64>,
    /// Threshold expression → `true` when it failed (k6's export convention).
    pub thresholds: BTreeMap<String, bool>,
}

/// A check of the script, as counted by k6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K6Check {
    /// Check name.
    pub name: String,
    /// Evaluations that passed.
    pub passes: u64,
    /// Evaluations that failed.
    pub fails: u64,
}

/// k6's `--summary-export` document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct K6Summary {
    /// Every metric by name (tagged sub-metrics included, e.g.
    /// `http_req_duration{expected_response:true}`).
    pub metrics: BTreeMap<String, K6Metric>,
    /// Every check of every group.
    pub checks: Vec<K6Check>,
}

fn bad(reason: impl Into<String>) -> LoadError {
    LoadError::K6Export(reason.into())
}

fn collect_checks(group: &Value, out: &mut Vec<K6Check>) {
    // k6 writes `checks` as an object keyed by name (older releases: an array).
    let checks: Vec<&Value> = match group.get("checks") {
        Some(Value::Object(m)) => m.values().collect(),
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    };
    for c in checks {
        let count = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.push(K6Check {
            name: c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            passes: count("passes"),
            fails: count("fails"),
        });
    }
    let groups: Vec<&Value> = match group.get("groups") {
        Some(Value::Object(m)) => m.values().collect(),
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    };
    for g in groups {
        collect_checks(g, out);
    }
}

impl K6Summary {
    /// Reads the document. Every trend the report uses must carry [`K6_TREND_STATS`]; a
    /// document without them (k6 run with its default trend stats) is an error that says so.
    pub fn parse(doc: &Value) -> Result<K6Summary, LoadError> {
        let metrics = doc
            .get("metrics")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no `metrics` object"))?;
        let mut out = K6Summary::default();
        for (name, m) in metrics {
            let obj = m
                .as_object()
                .ok_or_else(|| bad(format!("metric `{name}` is not an object")))?;
            let mut metric = K6Metric::default();
            for (k, v) in obj {
                if k == "thresholds" {
                    for (expr, failed) in v.as_object().into_iter().flatten() {
                        metric
                            .thresholds
                            .insert(expr.clone(), failed.as_bool().unwrap_or(true));
                    }
                } else if let Some(x) = v.as_f64() {
                    metric.values.insert(k.clone(), x);
                }
            }
            out.metrics.insert(name.clone(), metric);
        }
        for name in ["http_reqs", "http_req_duration", "http_req_waiting"] {
            if !out.metrics.contains_key(name) {
                return Err(bad(format!("metric `{name}` is missing")));
            }
        }
        for (name, m) in &out.metrics {
            let is_trend = m.values.contains_key("avg") && m.values.contains_key("med");
            if is_trend && !m.values.contains_key("p(99)") {
                return Err(bad(format!(
                    "trend `{name}` has no p(99): run k6 with --summary-trend-stats {K6_TREND_STATS}"
                )));
            }
        }
        if let Some(root) = doc.get("root_group") {
            collect_checks(root, &mut out.checks);
        }
        Ok(out)
    }

    fn value(&self, metric: &str, key: &str) -> Option<f64> {
        self.metrics.get(metric)?.values.get(key).copied()
    }

    fn count(&self, metric: &str, key: &str) -> u64 {
        self.value(metric, key).unwrap_or(0.0).max(0.0).round() as u64
    }
}

impl LoadFigures for K6Summary {
    fn measured_by(&self) -> String {
        "k6".to_owned()
    }

    fn connections_opened(&self) -> Option<u64> {
        None
    }

    fn tail(&self) -> Option<wasmbench_vocab::tail::Tail> {
        None
    }

    fn planned(&self) -> Option<wasmbench_vocab::PlannedRun> {
        None
    }

    fn duration_s(&self) -> f64 {
        // The export has no run length; count / rate is k6's own elapsed time.
        let (count, rate) = (
            self.value("http_reqs", "count").unwrap_or(0.0),
            self.value("http_reqs", "rate").unwrap_or(0.0),
        );
        if rate > 0.0 { count / rate } else { 0.0 }
    }

    fn http_reqs(&self) -> u64 {
        self.count("http_reqs", "count")
    }

    fn http_req_failed_rate(&self) -> f64 {
        self.value("http_req_failed", "value").unwrap_or(0.0)
    }

    fn errors(&self) -> BTreeMap<String, u64> {
        // k6 counts failed requests (a Rate's `passes` are its true samples) but not their kind.
        let failed = self.count("http_req_failed", "passes");
        if failed > 0 {
            BTreeMap::from([("failed (kind not reported by k6)".to_owned(), failed)])
        } else {
            BTreeMap::new()
        }
    }

    fn checks_total(&self) -> (u64, u64) {
        (
            self.count("checks", "passes"),
            self.count("checks", "fails"),
        )
    }

    fn checks(&self) -> Vec<(String, u64, u64)> {
        self.checks
            .iter()
            .map(|c| (c.name.clone(), c.passes, c.fails))
            .collect()
    }

    fn thresholds(&self) -> Vec<(String, bool)> {
        self.metrics
            .iter()
            .flat_map(|(name, m)| {
                m.thresholds
                    .iter()
                    .map(move |(expr, failed)| (format!("{name}: {expr}"), !failed))
            })
            .collect()
    }

    fn data_bytes(&self) -> (u64, u64) {
        (
            self.count("data_sent", "count"),
            self.count("data_received", "count"),
        )
    }

    fn trend(&self, metric: &str) -> Option<TrendStats> {
        let get = |k: &str| self.value(metric, k);
        // Samples: one per request for the request phases, one per iteration otherwise.
        let count = if metric.starts_with("http_req_") {
            self.http_reqs()
        } else if metric == "iteration_duration" {
            self.count("iterations", "count")
        } else {
            0
        };
        Some(TrendStats {
            avg_ms: get("avg")?,
            min_ms: get("min")?,
            med_ms: get("med")?,
            max_ms: get("max")?,
            p90_ms: get("p(90)")?,
            p95_ms: get("p(95)")?,
            p99_ms: get("p(99)")?,
            count,
        })
    }

    fn percentile_curve(&self, metric: &str) -> Vec<(f64, f64)> {
        match self.trend(metric) {
            Some(t) => vec![
                (0.0, t.min_ms),
                (50.0, t.med_ms),
                (90.0, t.p90_ms),
                (95.0, t.p95_ms),
                (99.0, t.p99_ms),
                (100.0, t.max_ms),
            ],
            None => Vec::new(),
        }
    }

    fn by_request(&self) -> BTreeMap<String, NamedFigures> {
        BTreeMap::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape k6 v1.1 writes (keys as k6 orders them, values shortened).
    const EXPORT: &str = r#"{
    "metrics": {
        "http_reqs": {"count": 351, "rate": 348.947},
        "http_req_failed": {"passes": 2, "fails": 349, "value": 0.0057},
        "http_req_duration": {"max": 43.1, "p(90)": 8.35, "p(95)": 10.39, "p(99)": 12.9,
            "avg": 4.79, "min": 0.40, "med": 4.11, "thresholds": {"p(95)<1": true, "avg<500": false}},
        "http_req_waiting": {"max": 40.0, "p(90)": 8.0, "p(95)": 10.0, "p(99)": 12.0,
            "avg": 4.5, "min": 0.3, "med": 4.0},
        "checks": {"passes": 700, "fails": 2, "value": 0.997},
        "data_sent": {"count": 1000, "rate": 990.0},
        "data_received": {"count": 5000, "rate": 4950.0}
    },
    "root_group": {"name": "", "path": "", "id": "x", "groups": {},
        "checks": {"status == 200": {"name": "status == 200", "passes": 349, "fails": 2}}}
}"#;

    #[test]
    fn reads_the_figures_k6_reports() {
        let s = K6Summary::parse(&serde_json::from_str(EXPORT).unwrap()).unwrap();
        assert_eq!(s.http_reqs(), 351);
        assert!((s.duration_s() - 351.0 / 348.947).abs() < 1e-9);
        assert!((s.http_req_failed_rate() - 0.0057).abs() < 1e-12);
        assert_eq!(s.errors().values().sum::<u64>(), 2);
        assert_eq!(s.checks_total(), (700, 2));
        assert_eq!(s.data_bytes(), (1000, 5000));
        let t = s.trend("http_req_duration").unwrap();
        assert_eq!((t.p95_ms, t.p99_ms, t.count), (10.39, 12.9, 351));
        assert!(s.trend("http_req_blocked").is_none());
        // k6 marks a crossed threshold `true`.
        let th = s.thresholds();
        assert!(th.contains(&("http_req_duration: p(95)<1".to_owned(), false)));
        assert!(th.contains(&("http_req_duration: avg<500".to_owned(), true)));
        assert_eq!(s.checks[0].name, "status == 200");
        assert_eq!(s.percentile_curve("http_req_waiting").len(), 6);
    }

    #[test]
    fn default_trend_stats_are_refused_with_the_flag_to_use() {
        let doc = EXPORT.replace(r#""p(99)": 12.0,"#, "");
        let e = K6Summary::parse(&serde_json::from_str(&doc).unwrap()).unwrap_err();
        assert!(e.to_string().contains("--summary-trend-stats"), "{e}");
    }
}
