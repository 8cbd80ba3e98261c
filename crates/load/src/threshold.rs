//! Thresholds in k6's expression syntax: `p(95)<200`, `avg<100`, `rate<0.01`, `count>10`.

use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::registry::{MetricKind, known_metrics, metric_kind};

/// A pass/fail criterion on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Metric name, e.g. `http_req_duration` or `http_req_failed`.
    pub metric: String,
    /// k6 expression: `AGG OP NUMBER`, e.g. `p(95)<200`.
    pub expr: String,
    /// Stop the run as soon as the threshold fails (checked once per second).
    #[serde(default)]
    pub abort_on_fail: bool,
}

/// The aggregation a threshold reads from its metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// Trend mean (ms).
    Avg,
    /// Trend minimum (ms).
    Min,
    /// Trend median (ms).
    Med,
    /// Trend maximum (ms).
    Max,
    /// Trend percentile (0–100), ms.
    Percentile(f64),
    /// Rate metric share of non-zero samples, or counter per second.
    Rate,
    /// Counter total.
    Count,
    /// Gauge value.
    Value,
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==` or `===`
    Eq,
    /// `!=`
    Ne,
}

/// A parsed threshold expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdExpr {
    /// What is read from the metric.
    pub agg: Aggregation,
    /// How it is compared.
    pub op: Op,
    /// The limit.
    pub value: f64,
}

impl ThresholdExpr {
    /// Parses `AGG OP NUMBER` (whitespace allowed anywhere between the parts).
    pub fn parse(expr: &str) -> Result<ThresholdExpr, String> {
        let e: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        let pos = e
            .find(['<', '>', '=', '!'])
            .ok_or("missing comparison: write e.g. `p(95)<200`")?;
        let (agg_s, rest) = e.split_at(pos);
        let (op, num) = [
            ("===", Op::Eq),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (*op, n)))
        .ok_or_else(|| format!("unknown operator in `{rest}`: use <, <=, >, >=, == or !="))?;
        let value: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("`{num}` is not a number"))?;
        let agg = match agg_s {
            "avg" => Aggregation::Avg,
            "min" => Aggregation::Min,
            "med" => Aggregation::Med,
            "max" => Aggregation::Max,
            "rate" => Aggregation::Rate,
            "count" => Aggregation::Count,
            "value" => Aggregation::Value,
            p => {
                let q = p
                    .strip_prefix("p(")
                    .and_then(|x| x.strip_suffix(')'))
                    .and_then(|x| x.parse::<f64>().ok())
                    .filter(|q| (0.0..=100.0).contains(q))
                    .ok_or_else(|| {
                        format!(
                            "unknown aggregation `{p}`: use avg, min, med, max, p(N), rate, count or value"
                        )
                    })?;
                Aggregation::Percentile(q)
            }
        };
        Ok(ThresholdExpr { agg, op, value })
    }

    /// True when `observed` satisfies the expression.
    pub fn passes(&self, observed: f64) -> bool {
        let v = self.value;
        match self.op {
            Op::Lt => observed < v,
            Op::Le => observed <= v,
            Op::Gt => observed > v,
            Op::Ge => observed >= v,
            Op::Eq => observed == v,
            Op::Ne => observed != v,
        }
    }
}

impl Threshold {
    /// Parses the one flag form every command takes: `METRIC=EXPR`, or k6's object notation
    /// `METRIC: EXPR`, with an optional `:abortOnFail` suffix, e.g.
    /// `http_req_duration=p(95)<200` or `http_req_duration: p(95)<200`. The colon inside a
    /// sub-metric's tag (`http_req_duration{name:hash}`) belongs to the name.
    pub fn parse_cli(s: &str) -> Result<Threshold, LoadError> {
        // The metric ends at the first `=` or `:` after its tag (an expression may hold `<=`).
        let tag_end = s.find('}').map_or(0, |i| i + 1);
        let split = s[tag_end..]
            .find(['=', ':'])
            .map(|i| (&s[..tag_end + i], &s[tag_end + i + 1..]));
        let (metric, rest) = split.ok_or_else(|| LoadError::Threshold {
            metric: String::new(),
            expr: s.to_string(),
            reason: "write METRIC=EXPR or METRIC: EXPR, e.g. `http_req_duration=p(95)<200`".into(),
        })?;
        let (expr, abort) = match rest.strip_suffix(":abortOnFail") {
            Some(e) => (e, true),
            None => (rest, false),
        };
        let t = Threshold {
            metric: metric.trim().to_string(),
            expr: expr.trim().to_string(),
            abort_on_fail: abort,
        };
        t.parse_checked()?;
        Ok(t)
    }

    /// Parses the expression and checks that the metric exists and supports the aggregation.
    pub fn parse_checked(&self) -> Result<ThresholdExpr, LoadError> {
        let err = |reason: String| LoadError::Threshold {
            metric: self.metric.clone(),
            expr: self.expr.clone(),
            reason,
        };
        let x = ThresholdExpr::parse(&self.expr).map_err(err)?;
        let kind = metric_kind(&self.metric).ok_or_else(|| {
            err(format!(
                "unknown metric; known metrics: {}",
                known_metrics().join(", ")
            ))
        })?;
        let ok = matches!(
            (kind, x.agg),
            (
                MetricKind::Trend,
                Aggregation::Avg
                    | Aggregation::Min
                    | Aggregation::Med
                    | Aggregation::Max
                    | Aggregation::Percentile(_),
            ) | (MetricKind::Counter, Aggregation::Count | Aggregation::Rate)
                | (MetricKind::Rate, Aggregation::Rate)
                | (MetricKind::Gauge, Aggregation::Value)
        );
        if !ok {
            let allowed = match kind {
                MetricKind::Trend => "avg, min, med, max, p(N)",
                MetricKind::Counter => "count, rate",
                MetricKind::Rate => "rate",
                MetricKind::Gauge => "value",
            };
            return Err(err(format!(
                "this metric is a {kind:?}; it supports {allowed}"
            )));
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_syntax() {
        let x = ThresholdExpr::parse("p(95) < 200").unwrap();
        assert_eq!(x.agg, Aggregation::Percentile(95.0));
        assert_eq!(x.op, Op::Lt);
        assert_eq!(x.value, 200.0);
        assert!(x.passes(199.9) && !x.passes(200.0));
        let x = ThresholdExpr::parse("rate<=0.01").unwrap();
        assert_eq!((x.agg, x.op), (Aggregation::Rate, Op::Le));
        let x = ThresholdExpr::parse("count===5").unwrap();
        assert_eq!((x.agg, x.op, x.value), (Aggregation::Count, Op::Eq, 5.0));
        assert_eq!(
            ThresholdExpr::parse("p(99.9)>=1").unwrap().agg,
            Aggregation::Percentile(99.9)
        );
        for bad in ["p95<200", "p(95)", "avg<abc", "avg~3", "p(101)<3", "mean<3"] {
            assert!(ThresholdExpr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_expression() {
        let e = Threshold::parse_cli("http_req_duration=p(95)<<200").unwrap_err();
        assert!(e.to_string().contains("p(95)<<200"), "{e}");
        let e = Threshold::parse_cli("http_req_failed=p(95)<1").unwrap_err();
        assert!(e.to_string().contains("supports rate"), "{e}");
        let e = Threshold::parse_cli("nope=avg<1").unwrap_err();
        assert!(e.to_string().contains("unknown metric"), "{e}");
        let colon = Threshold::parse_cli("http_req_duration{name:hash}: p(95)<20").unwrap();
        assert_eq!(
            (colon.metric.as_str(), colon.expr.as_str()),
            ("http_req_duration{name:hash}", "p(95)<20")
        );
        let le = Threshold::parse_cli("http_req_duration: p(95)<=200").unwrap();
        assert_eq!(le.expr, "p(95)<=200");
        let c = Threshold::parse_cli("checks: rate>0.99:abortOnFail").unwrap();
        assert!(c.abort_on_fail && c.expr == "rate>0.99", "{c:?}");
        let t = Threshold::parse_cli("checks=rate>0.99:abortOnFail").unwrap();
        assert!(t.abort_on_fail);
        assert_eq!(t.expr, "rate>0.99");
    }
}
