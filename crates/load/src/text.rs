//! The k6-like end-of-run text summary, and k6's formatting of durations and byte counts.

use std::fmt::Write as _;

use crate::histogram::TrendStat;
use crate::registry::{T_ITERATION, TREND_METRICS, named_trend_names};
use crate::summary::{Summary, ThresholdResult, rate, ratio};

/// k6's duration formatting: `0s`, `512ns`, `12.34µs`, `1.23ms`, `2.5s`.
pub fn format_ms(ms: f64) -> String {
    if ms <= 0.0 {
        "0s".into()
    } else if ms < 0.001 {
        format!("{:.0}ns", ms * 1e6)
    } else if ms < 1.0 {
        format!("{:.2}µs", ms * 1e3)
    } else if ms < 1000.0 {
        format!("{ms:.2}ms")
    } else if ms < 60_000.0 {
        format!("{:.2}s", ms / 1e3)
    } else {
        let s = ms / 1e3;
        format!("{}m{:.1}s", (s / 60.0).floor(), s % 60.0)
    }
}

/// Decimal byte units like k6 (`1.2 MB`).
pub fn format_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn stat_label(s: &str) -> String {
    s.trim().to_string()
}

/// k6-like end-of-run summary. `stats` are trend statistics (`avg`, `p(95)`, ...); empty means
/// the plan's `summary_trend_stats`.
pub fn render_text(s: &Summary, stats: &[String]) -> String {
    let stats: Vec<String> = if stats.is_empty() {
        s.plan.summary_trend_stats.clone()
    } else {
        stats.to_vec()
    };
    let parsed: Vec<(String, TrendStat)> = stats
        .iter()
        .filter_map(|x| TrendStat::parse(x).ok().map(|p| (stat_label(x), p)))
        .collect();
    let mut o = String::new();
    let p = &s.plan;
    let _ = writeln!(
        o,
        "  target: {} {} ({})  executor: {}  connections: {}  duration: {:.1}s{}",
        p.request.method,
        p.request.url,
        s.target,
        p.executor.name(),
        p.connection_mode.as_str(),
        s.duration_s,
        if s.partial { "  [PARTIAL]" } else { "" }
    );
    let mark = |metric: &str| -> String {
        let ts: Vec<&ThresholdResult> =
            s.thresholds.iter().filter(|t| t.metric == metric).collect();
        if ts.is_empty() {
            "  ".into()
        } else if ts.iter().all(|t| t.ok) {
            "✓ ".into()
        } else {
            "✗ ".into()
        }
    };
    let line = |o: &mut String, name: &str, value: String| {
        let m = mark(name.split('{').next().unwrap_or(name));
        let dots = 44usize.saturating_sub(name.chars().count());
        let _ = writeln!(o, "  {m}{name}{}: {value}", ".".repeat(dots));
    };
    let trend_line = |o: &mut String, name: &str| {
        if let Some(t) = s.trends.get(name) {
            let v: Vec<String> = parsed
                .iter()
                .map(|(l, st)| match st {
                    TrendStat::Count => format!("{l}={}", t.0.len()),
                    _ => format!("{l}={}", format_ms(st.value(&t.0))),
                })
                .collect();
            line(o, name, v.join(" "));
        }
    };
    let d = s.duration_s;
    let c = &s.counters;
    if !s.thresholds.is_empty() {
        let _ = writeln!(o, "\n  THRESHOLDS");
        for t in &s.thresholds {
            let _ = writeln!(
                o,
                "    {} {}: {}  (observed {:.4})",
                if t.ok { "✓" } else { "✗" },
                t.metric,
                t.expr,
                t.observed
            );
        }
    }
    if !s.checks.is_empty() {
        let (pa, fa) = s.checks_total();
        let _ = writeln!(o, "\n  CHECKS");
        line(
            &mut o,
            "checks",
            format!("{:.2}% {pa} out of {}", 100.0 * ratio(pa, pa + fa), pa + fa),
        );
        for ch in &s.checks {
            let _ = writeln!(
                o,
                "    {} {}  ({} passed, {} failed)",
                if ch.fails == 0 { "✓" } else { "✗" },
                ch.name,
                ch.passes,
                ch.fails
            );
        }
    }
    let _ = writeln!(o, "\n  HTTP");
    for n in &TREND_METRICS[..T_ITERATION] {
        trend_line(&mut o, n);
    }
    for (name, n) in &s.by_name {
        let (dur, wait) = named_trend_names(name);
        trend_line(&mut o, &dur);
        trend_line(&mut o, &wait);
        line(
            &mut o,
            &format!("http_reqs{{name:{name}}}"),
            format!(
                "{} {:.1}/s  failed {}",
                n.http_reqs,
                rate(n.http_reqs, d),
                n.http_req_failed
            ),
        );
    }
    line(
        &mut o,
        "http_req_failed",
        format!(
            "{:.2}% {} out of {}",
            100.0 * s.http_req_failed_rate(),
            c.http_req_failed,
            c.http_reqs
        ),
    );
    line(
        &mut o,
        "http_reqs",
        format!("{} {:.1}/s", c.http_reqs, rate(c.http_reqs, d)),
    );
    if c.total_errors() > 0 {
        let kinds: Vec<String> = c
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        line(
            &mut o,
            "http_req_errors",
            format!("{} {}", c.total_errors(), kinds.join(" ")),
        );
    }
    let _ = writeln!(o, "\n  EXECUTION");
    trend_line(&mut o, "iteration_duration");
    line(
        &mut o,
        "iterations",
        format!("{} {:.1}/s", c.iterations, rate(c.iterations, d)),
    );
    if c.dropped_iterations > 0 || p.executor.is_open_model() {
        line(
            &mut o,
            "dropped_iterations",
            format!(
                "{} {:.1}/s",
                c.dropped_iterations,
                rate(c.dropped_iterations, d)
            ),
        );
    }
    if let Some(lag) = &s.start_lag {
        let q = |p: f64| format_ms(crate::histogram::percentile_ms(&lag.0, p));
        line(
            &mut o,
            "start_lag",
            format!(
                "p(50)={} p(95)={} p(99)={} max={}  late(>{})={}",
                q(50.0),
                q(95.0),
                q(99.0),
                format_ms(lag.0.max() as f64 / 1e6),
                format_ms(crate::engine::LATE_START.as_secs_f64() * 1e3),
                c.late_iterations
            ),
        );
    }
    if let Some(t) = &s.tail {
        // Fairness and the worst moment of the run: the two facts the averages above hide.
        let mut per_vu = t.requests_per_vu.clone();
        per_vu.sort_unstable();
        if let (Some(min), Some(max)) = (per_vu.first(), per_vu.last()) {
            line(
                &mut o,
                "requests_per_vu",
                format!("min={min} med={} max={max}", per_vu[per_vu.len() / 2]),
            );
        }
        if let Some((i, b)) = t
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.requests > 0)
            .max_by(|a, b| a.1.p99_ms.total_cmp(&b.1.p99_ms))
        {
            line(
                &mut o,
                "worst_bucket",
                format!(
                    "p(99)={} max={}  {} requests started at {:.1}s–{:.1}s",
                    format_ms(b.p99_ms),
                    format_ms(b.max_ms),
                    b.requests,
                    t.start_s(i),
                    t.start_s(i + 1)
                ),
            );
        }
    }
    if c.interrupted_iterations > 0 {
        line(
            &mut o,
            "interrupted_iterations",
            c.interrupted_iterations.to_string(),
        );
    }
    line(
        &mut o,
        "vus",
        format!("{} min={} max={}", s.vus.value, s.vus.min, s.vus.max),
    );
    line(
        &mut o,
        "vus_max",
        format!(
            "{} min={} max={}",
            s.vus_max.value, s.vus_max.min, s.vus_max.max
        ),
    );
    let _ = writeln!(o, "\n  NETWORK");
    line(
        &mut o,
        "data_received",
        format!(
            "{} {}/s",
            format_bytes(c.data_received_bytes as f64),
            format_bytes(rate(c.data_received_bytes, d))
        ),
    );
    line(
        &mut o,
        "data_sent",
        format!(
            "{} {}/s",
            format_bytes(c.data_sent_bytes as f64),
            format_bytes(rate(c.data_sent_bytes, d))
        ),
    );
    line(
        &mut o,
        "connections_opened",
        c.connections_opened.to_string(),
    );
    if c.connections_failed > 0 {
        line(
            &mut o,
            "connections_failed",
            c.connections_failed.to_string(),
        );
    }
    if c.vus_not_started > 0 {
        line(&mut o, "vus_not_started", c.vus_not_started.to_string());
    }
    if let Some(e) = &s.engine {
        let _ = writeln!(
            o,
            "\n  engine: {}{}{}",
            e.backend,
            if e.pinned { ", pinned" } else { "" },
            e.fallback_reason
                .as_ref()
                .map(|r| format!(" (not io_uring: {r})"))
                .unwrap_or_default()
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::histogram::new_histogram;
    use crate::metrics::Metrics;
    use crate::plan::Plan;
    use crate::threshold::Threshold;
    use crate::trend::Trend;

    #[test]
    fn lines_are_dotted_to_one_column_and_marked_by_their_thresholds() {
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut plan = Plan::default();
        plan.request.url = "http://127.0.0.1:8080/".into();
        let mut s = Summary::from_metrics(&plan, &Metrics::new(0, 0), t, t, 2.0);
        let mut h = new_histogram();
        for ms in [1u64, 2, 3] {
            h.record(ms * 1_000_000).unwrap();
        }
        s.trends.insert("http_req_duration".into(), Trend(h));
        s.counters.http_reqs = 3;
        s.counters.iterations = 3;
        s.target = "127.0.0.1:8080".into();
        s.thresholds = s
            .evaluate(&[Threshold::parse_cli("http_req_duration=p(95)<1").unwrap()])
            .unwrap();
        let text = render_text(&s, &["avg".into(), "count".into()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "  target: GET http://127.0.0.1:8080/ (127.0.0.1:8080)  executor: constant-vus  \
             connections: keep-alive  duration: 2.0s"
        );
        assert!(
            lines.contains(&"    ✗ http_req_duration: p(95)<1  (observed 2.8994)"),
            "{text}"
        );
        assert!(
            lines.contains(&"  ✗ http_req_duration...........................: avg=2.00ms count=3"),
            "{text}"
        );
        assert!(
            lines.contains(&"    http_reqs...................................: 3 1.5/s"),
            "{text}"
        );
        assert!(
            !text.contains("http_req_errors"),
            "no errors, no line: {text}"
        );
    }

    #[test]
    fn the_tail_adds_fairness_and_the_worst_bucket() {
        use wasmbench_vocab::tail::{Tail, TailBucket};
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut s = Summary::from_metrics(&Plan::default(), &Metrics::new(0, 0), t, t, 2.0);
        assert!(s.tail.is_none(), "nothing recorded, no tail");
        let b = |requests, p99_ms| TailBucket {
            requests,
            p50_ms: 1.0,
            p99_ms,
            max_ms: p99_ms + 1.0,
        };
        s.tail = Some(Tail {
            bucket_ms: 100,
            buckets: vec![b(50, 2.0), b(20, 300.0), b(0, 0.0), b(45, 3.0)],
            over_limit: Vec::new(),
            requests_per_vu: vec![30, 3, 31, 28],
        });
        let text = render_text(&s, &[]);
        assert!(
            text.contains("requests_per_vu.............................: min=3 med=30 max=31"),
            "{text}"
        );
        assert!(
            text.contains(": p(99)=300.00ms max=301.00ms  20 requests started at 0.1s–0.2s"),
            "{text}"
        );
    }

    #[test]
    fn formats_like_k6() {
        assert_eq!(format_ms(0.0), "0s");
        assert_eq!(format_ms(0.01234), "12.34µs");
        assert_eq!(format_ms(1.5), "1.50ms");
        assert_eq!(format_ms(2500.0), "2.50s");
        assert_eq!(format_bytes(1_234_567.0), "1.2 MB");
    }
}
