//! The summary in k6's `--summary-export` JSON shape, for tools that read k6's export.

use crate::histogram::TrendStat;
use crate::summary::{Summary, rate, ratio};

/// The summary in k6's `--summary-export` shape: `{"metrics": {...}, "root_group": {...}}`.
/// Trends carry the plan's `summary_trend_stats` in ms, counters `{count, rate}`, rates
/// `{passes, fails, value}`, gauges `{value, min, max}`; metrics with thresholds get
/// `"thresholds": {"<expr>": <failed>}` like k6.
pub fn k6_summary_export(s: &Summary) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let d = s.duration_s;
    let c = &s.counters;
    let mut metrics = Map::new();
    for (name, t) in &s.trends {
        if t.0.is_empty() && name.contains('{') {
            continue;
        }
        let mut m = Map::new();
        for st in &s.plan.summary_trend_stats {
            if let Ok(p) = TrendStat::parse(st) {
                m.insert(st.trim().to_string(), json!(p.value(&t.0)));
            }
        }
        metrics.insert(name.clone(), Value::Object(m));
    }
    let counter = |n: u64| json!({"count": n, "rate": rate(n, d)});
    metrics.insert("http_reqs".into(), counter(c.http_reqs));
    metrics.insert("iterations".into(), counter(c.iterations));
    metrics.insert("data_sent".into(), counter(c.data_sent_bytes));
    metrics.insert("data_received".into(), counter(c.data_received_bytes));
    if c.dropped_iterations > 0 || s.plan.executor.is_open_model() {
        metrics.insert("dropped_iterations".into(), counter(c.dropped_iterations));
    }
    metrics.insert(
        "http_req_failed".into(),
        json!({"passes": c.http_req_failed, "fails": c.http_reqs - c.http_req_failed,
               "value": s.http_req_failed_rate()}),
    );
    if !s.checks.is_empty() {
        let (p, f) = s.checks_total();
        metrics.insert(
            "checks".into(),
            json!({"passes": p, "fails": f, "value": ratio(p, p + f)}),
        );
    }
    metrics.insert(
        "vus".into(),
        json!({"value": s.vus.value, "min": s.vus.min, "max": s.vus.max}),
    );
    metrics.insert(
        "vus_max".into(),
        json!({"value": s.vus_max.value, "min": s.vus_max.min, "max": s.vus_max.max}),
    );
    for t in &s.thresholds {
        if let Some(Value::Object(m)) = metrics.get_mut(&t.metric) {
            let th = m
                .entry("thresholds")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(th) = th {
                // k6 writes whether the threshold failed.
                th.insert(t.expr.clone(), Value::Bool(!t.ok));
            }
        }
    }
    let checks: Map<String, Value> = s
        .checks
        .iter()
        .map(|ch| {
            (
                ch.name.clone(),
                json!({"name": ch.name, "path": format!("::{}", ch.name), "id": "",
                       "passes": ch.passes, "fails": ch.fails}),
            )
        })
        .collect();
    json!({
        "root_group": {
            "name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e",
            "groups": {}, "checks": checks
        },
        "metrics": metrics
    })
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::metrics::Metrics;
    use crate::plan::Plan;
    use crate::summary::CheckResult;
    use crate::threshold::Threshold;

    #[test]
    fn metrics_have_k6_shapes_and_thresholds_say_whether_they_failed() {
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut s = Summary::from_metrics(&Plan::default(), &Metrics::new(0, 0), t, t, 4.0);
        s.counters.http_reqs = 8;
        s.counters.http_req_failed = 2;
        s.checks.push(CheckResult {
            name: "status == 200".into(),
            passes: 6,
            fails: 2,
        });
        s.thresholds = s
            .evaluate(&[
                Threshold::parse_cli("http_reqs=count>10").unwrap(),
                Threshold::parse_cli("http_req_failed=rate<0.5").unwrap(),
            ])
            .unwrap();
        let e = k6_summary_export(&s);
        let m = &e["metrics"];
        assert_eq!(m["http_reqs"]["count"], 8);
        assert_eq!(m["http_reqs"]["rate"], 2.0);
        assert_eq!(m["http_reqs"]["thresholds"]["count>10"], true);
        assert_eq!(m["http_req_failed"]["thresholds"]["rate<0.5"], false);
        assert_eq!(m["http_req_failed"]["value"], 0.25);
        assert_eq!(m["checks"]["value"], 0.75);
        assert!(
            m.get("dropped_iterations").is_none(),
            "closed model, none dropped"
        );
        // An empty trend keeps its statistics (k6 writes them as 0); tagged empty ones go.
        assert_eq!(m["http_req_waiting"]["avg"], 0.0);
        assert!(m.get("http_req_duration{expected_response:true}").is_none());
        assert_eq!(
            e["root_group"]["checks"]["status == 200"]["path"],
            "::status == 200"
        );
    }
}
