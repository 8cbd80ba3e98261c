//! The metric registry: every metric name the engine records, its kind, and the names of a mix
//! request's sub-metrics. The names and definitions are k6's.

/// The kind of a metric, which decides the aggregations a threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Durations (HDR histogram).
    Trend,
    /// Counts.
    Counter,
    /// Share of non-zero samples.
    Rate,
    /// Current value.
    Gauge,
}

/// Trend metrics, in the order a worker stores their histograms.
pub const TREND_METRICS: [&str; 9] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
    "http_req_duration",
    "http_req_duration{expected_response:true}",
    "iteration_duration",
];

pub(crate) const T_BLOCKED: usize = 0;
pub(crate) const T_CONNECTING: usize = 1;
pub(crate) const T_TLS_HANDSHAKING: usize = 2;
pub(crate) const T_SENDING: usize = 3;
pub(crate) const T_WAITING: usize = 4;
pub(crate) const T_RECEIVING: usize = 5;
pub(crate) const T_DURATION: usize = 6;
pub(crate) const T_DURATION_EXPECTED: usize = 7;
/// The one trend that is not an HTTP request phase; the ones before it are.
pub(crate) const T_ITERATION: usize = 8;

/// Counter metrics.
const COUNTER_METRICS: [&str; 7] = [
    "http_reqs",
    "iterations",
    "dropped_iterations",
    "interrupted_iterations",
    "data_sent",
    "data_received",
    "http_req_errors",
];
const RATE_METRICS: [&str; 2] = ["http_req_failed", "checks"];
const GAUGE_METRICS: [&str; 2] = ["vus", "vus_max"];

/// The kind of a known metric, `None` for unknown names.
pub fn metric_kind(name: &str) -> Option<MetricKind> {
    if let (base, Some(_)) = split_name_tag(name) {
        // Sub-metrics of a mix request, as k6 tags them.
        return match base {
            "http_req_duration" | "http_req_waiting" => Some(MetricKind::Trend),
            "http_reqs" => Some(MetricKind::Counter),
            "http_req_failed" => Some(MetricKind::Rate),
            _ => None,
        };
    }
    if TREND_METRICS.contains(&name) {
        Some(MetricKind::Trend)
    } else if COUNTER_METRICS.contains(&name) {
        Some(MetricKind::Counter)
    } else if RATE_METRICS.contains(&name) {
        Some(MetricKind::Rate)
    } else if GAUGE_METRICS.contains(&name) {
        Some(MetricKind::Gauge)
    } else {
        None
    }
}

/// Every metric name a threshold may use.
pub fn known_metrics() -> Vec<&'static str> {
    TREND_METRICS
        .iter()
        .chain(&COUNTER_METRICS)
        .chain(&RATE_METRICS)
        .chain(&GAUGE_METRICS)
        .copied()
        .collect()
}

/// Sub-metric names of one mix request: (duration, waiting).
pub fn named_trend_names(name: &str) -> (String, String) {
    (
        format!("http_req_duration{{name:{name}}}"),
        format!("http_req_waiting{{name:{name}}}"),
    )
}

/// Splits `metric{name:x}` into (`metric`, Some(`x`)); other names come back whole.
pub(crate) fn split_name_tag(metric: &str) -> (&str, Option<&str>) {
    match metric.split_once("{name:") {
        Some((base, rest)) => match rest.strip_suffix('}') {
            Some(tag) if !tag.is_empty() => (base, Some(tag)),
            _ => (metric, None),
        },
        None => (metric, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_indices_name_their_metrics() {
        let at = |i: usize| TREND_METRICS[i];
        assert_eq!(at(T_BLOCKED), "http_req_blocked");
        assert_eq!(at(T_CONNECTING), "http_req_connecting");
        assert_eq!(at(T_TLS_HANDSHAKING), "http_req_tls_handshaking");
        assert_eq!(at(T_SENDING), "http_req_sending");
        assert_eq!(at(T_WAITING), "http_req_waiting");
        assert_eq!(at(T_RECEIVING), "http_req_receiving");
        assert_eq!(at(T_DURATION), "http_req_duration");
        assert_eq!(
            at(T_DURATION_EXPECTED),
            "http_req_duration{expected_response:true}"
        );
        assert_eq!(at(T_ITERATION), "iteration_duration");
        assert!(
            TREND_METRICS[..T_ITERATION]
                .iter()
                .all(|m| m.starts_with("http_req_"))
        );
    }

    #[test]
    fn kinds_of_plain_and_tagged_names() {
        assert_eq!(metric_kind("http_req_waiting"), Some(MetricKind::Trend));
        assert_eq!(metric_kind("data_sent"), Some(MetricKind::Counter));
        assert_eq!(metric_kind("checks"), Some(MetricKind::Rate));
        assert_eq!(metric_kind("vus_max"), Some(MetricKind::Gauge));
        assert_eq!(
            metric_kind("http_req_waiting{name:a}"),
            Some(MetricKind::Trend)
        );
        assert_eq!(metric_kind("http_reqs{name:a}"), Some(MetricKind::Counter));
        assert_eq!(
            metric_kind("http_req_failed{name:a}"),
            Some(MetricKind::Rate)
        );
        assert_eq!(metric_kind("http_req_sending{name:a}"), None);
        assert_eq!(metric_kind("http_req_speed"), None);
        assert!(known_metrics().iter().all(|m| metric_kind(m).is_some()));
        assert_eq!(known_metrics().len(), 20);
    }

    #[test]
    fn name_tags_split_only_when_whole() {
        assert_eq!(
            split_name_tag("http_reqs{name:a}"),
            ("http_reqs", Some("a"))
        );
        assert_eq!(
            split_name_tag("http_reqs{name:}"),
            ("http_reqs{name:}", None)
        );
        assert_eq!(
            split_name_tag("http_reqs{name:a"),
            ("http_reqs{name:a", None)
        );
        assert_eq!(split_name_tag("http_reqs"), ("http_reqs", None));
        let (d, w) = named_trend_names("a");
        assert_eq!(split_name_tag(&d), ("http_req_duration", Some("a")));
        assert_eq!(split_name_tag(&w), ("http_req_waiting", Some("a")));
    }
}
