//! The result of a run: counters, checks, thresholds and HDR histograms (serialized so
//! summaries from several processes or pods can be merged), with k6-style renderers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::client::ErrorKind;
use crate::error::LoadError;
use crate::metrics::{Counters, Metrics, TREND_METRICS};
use crate::plan::Plan;
use crate::threshold::{Aggregation, MetricKind, Threshold};

/// Version of the [`Summary`] JSON layout (`schemas/load-summary.schema.json`).
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

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

/// A trend metric: an HDR histogram of nanoseconds.
///
/// Serialized as `{unit, count, avg_ms, …, hdr}` where `hdr` is the histogram in HdrHistogram's
/// V2 encoding, base64; the statistics are for readers, only `hdr` is read back.
#[derive(Debug, Clone)]
pub struct Trend(pub Histogram<u64>);

#[derive(Serialize, Deserialize)]
struct TrendRepr {
    unit: String,
    count: u64,
    avg_ms: f64,
    min_ms: f64,
    med_ms: f64,
    max_ms: f64,
    p90_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    hdr: String,
}

impl Serialize for Trend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut buf)
            .map_err(|e| serde::ser::Error::custom(format!("{e:?}")))?;
        let st = TrendStats::of(&self.0);
        TrendRepr {
            unit: "ns".into(),
            count: st.count,
            avg_ms: st.avg,
            min_ms: st.min,
            med_ms: st.med,
            max_ms: st.max,
            p90_ms: st.p90,
            p95_ms: st.p95,
            p99_ms: st.p99,
            hdr: base64::engine::general_purpose::STANDARD.encode(buf),
        }
        .serialize(s)
    }
}

#[derive(Deserialize)]
struct TrendIn {
    unit: String,
    hdr: String,
}

impl<'de> Deserialize<'de> for Trend {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TrendIn::deserialize(d)?;
        if t.unit != "ns" {
            return Err(serde::de::Error::custom(format!(
                "trend unit `{}` is not supported (expected ns)",
                t.unit
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t.hdr)
            .map_err(serde::de::Error::custom)?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| serde::de::Error::custom(format!("bad HDR histogram: {e:?}")))?;
        h.auto(true);
        Ok(Trend(h))
    }
}

/// Statistics of one trend, in milliseconds (k6's conventions: `med` and percentiles interpolate
/// linearly between the two closest ranks).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TrendStats {
    /// Mean.
    pub avg: f64,
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub med: f64,
    /// Largest value.
    pub max: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Number of samples.
    pub count: u64,
}

/// Value (ns) at 0-based rank `r` of the sorted samples; the bucket's middle value.
fn rank_value(h: &Histogram<u64>, r: u64) -> f64 {
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen > r {
            return h.median_equivalent(v.value_iterated_to()) as f64;
        }
    }
    h.max() as f64
}

/// k6's percentile: linear interpolation at index `q/100 · (n − 1)`; result in ms.
pub(crate) fn percentile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    let n = h.len();
    if n == 0 {
        return 0.0;
    }
    let i = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let (lo, hi) = (i.floor() as u64, i.ceil() as u64);
    let a = rank_value(h, lo);
    let v = if hi == lo {
        a
    } else {
        a + (rank_value(h, hi) - a) * (i - lo as f64)
    };
    v / 1e6
}

impl TrendStats {
    fn of(h: &Histogram<u64>) -> TrendStats {
        if h.is_empty() {
            return TrendStats::default();
        }
        TrendStats {
            avg: h.mean() / 1e6,
            min: percentile_ms(h, 0.0),
            med: percentile_ms(h, 50.0),
            max: percentile_ms(h, 100.0),
            p90: percentile_ms(h, 90.0),
            p95: percentile_ms(h, 95.0),
            p99: percentile_ms(h, 99.0),
            count: h.len(),
        }
    }
}

/// One statistic of `summary_trend_stats`: `avg`, `min`, `med`, `max`, `count` or `p(N)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrendStat {
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Median.
    Med,
    /// Maximum.
    Max,
    /// Sample count.
    Count,
    /// Percentile 0–100.
    P(f64),
}

impl TrendStat {
    /// Parses one statistic name.
    pub fn parse(s: &str) -> Result<TrendStat, LoadError> {
        Ok(match s.trim() {
            "avg" => TrendStat::Avg,
            "min" => TrendStat::Min,
            "med" => TrendStat::Med,
            "max" => TrendStat::Max,
            "count" => TrendStat::Count,
            p => p
                .strip_prefix("p(")
                .and_then(|x| x.strip_suffix(')'))
                .and_then(|x| x.parse::<f64>().ok())
                .filter(|q| (0.0..=100.0).contains(q))
                .map(TrendStat::P)
                .ok_or_else(|| {
                    LoadError::InvalidPlan(format!(
                        "summary trend stat `{s}` is unknown: use avg, min, med, max, count or p(N)"
                    ))
                })?,
        })
    }

    fn value(self, h: &Histogram<u64>) -> f64 {
        match self {
            TrendStat::Avg => h.mean() / 1e6,
            TrendStat::Min => percentile_ms(h, 0.0),
            TrendStat::Med => percentile_ms(h, 50.0),
            TrendStat::Max => percentile_ms(h, 100.0),
            TrendStat::Count => h.len() as f64,
            TrendStat::P(q) => percentile_ms(h, q),
        }
    }
}

/// Counter totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSummary {
    /// Requests sent (including failed ones).
    pub http_reqs: u64,
    /// Requests with an unexpected status or a transport error.
    pub http_req_failed: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Iterations cut off by the end of graceful stop or by cancellation (not in `iterations`).
    pub interrupted_iterations: u64,
    /// Open-model iterations not started because no VU was free.
    pub dropped_iterations: u64,
    /// Bytes written (request heads and bodies; TLS: plaintext bytes).
    pub data_sent_bytes: u64,
    /// Bytes read (response heads and bodies; TLS: plaintext bytes).
    pub data_received_bytes: u64,
    /// TCP connections opened.
    pub connections_opened: u64,
    /// Transport errors per kind (`connect_refused`, `reset`, `timeout`, `protocol`, `other`).
    pub errors: BTreeMap<String, u64>,
}

impl CounterSummary {
    pub(crate) fn from_counters(c: &Counters) -> CounterSummary {
        CounterSummary {
            http_reqs: c.http_reqs,
            http_req_failed: c.http_req_failed,
            iterations: c.iterations,
            interrupted_iterations: c.interrupted_iterations,
            dropped_iterations: c.dropped_iterations,
            data_sent_bytes: c.data_sent,
            data_received_bytes: c.data_received,
            connections_opened: c.connections_opened,
            errors: ErrorKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), c.errors[k.index()]))
                .collect(),
        }
    }

    /// Total transport errors.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    fn add(&mut self, o: &CounterSummary) {
        self.http_reqs += o.http_reqs;
        self.http_req_failed += o.http_req_failed;
        self.iterations += o.iterations;
        self.interrupted_iterations += o.interrupted_iterations;
        self.dropped_iterations += o.dropped_iterations;
        self.data_sent_bytes += o.data_sent_bytes;
        self.data_received_bytes += o.data_received_bytes;
        self.connections_opened += o.connections_opened;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// A gauge's last, smallest and largest value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaugeSummary {
    /// Last value.
    pub value: u64,
    /// Smallest value seen.
    pub min: u64,
    /// Largest value seen.
    pub max: u64,
}

impl GaugeSummary {
    pub(crate) fn observe(&mut self, v: u64, first: bool) {
        if first {
            *self = GaugeSummary {
                value: v,
                min: v,
                max: v,
            };
        } else {
            self.value = v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
}

/// Passes and fails of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's expression.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub fails: u64,
}

/// Outcome of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// Metric name.
    pub metric: String,
    /// Expression.
    pub expr: String,
    /// Whether the run stops when it fails.
    pub abort_on_fail: bool,
    /// The value the expression was evaluated on.
    pub observed: f64,
    /// True when the expression holds.
    pub ok: bool,
}

/// The result of a load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Layout version, [`SUMMARY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of the engine that produced it.
    pub wasmbench_version: String,
    /// The plan that was run.
    pub plan: Plan,
    /// Resolved target address.
    pub target: String,
    /// Wall-clock start.
    pub started: DateTime<Utc>,
    /// Wall-clock end.
    pub ended: DateTime<Utc>,
    /// Seconds of load, the denominator of every rate.
    pub duration_s: f64,
    /// True when the run was cancelled or aborted before its planned end.
    pub partial: bool,
    /// True when an `abortOnFail` threshold stopped the run.
    pub aborted_by_threshold: bool,
    /// Number of summaries merged into this one (1 for a single run).
    pub sources: u32,
    /// Worker threads that generated load (summed over merged summaries).
    pub workers: u64,
    /// Counter totals.
    pub counters: CounterSummary,
    /// Active VUs.
    pub vus: GaugeSummary,
    /// Allocated VUs.
    pub vus_max: GaugeSummary,
    /// Response status counts (transport errors are not included).
    pub statuses: BTreeMap<u16, u64>,
    /// One entry per check of the plan.
    pub checks: Vec<CheckResult>,
    /// One entry per threshold of the plan.
    pub thresholds: Vec<ThresholdResult>,
    /// Trend metrics by name; a mix adds `http_req_duration{name:<n>}` and
    /// `http_req_waiting{name:<n>}` per request.
    pub trends: BTreeMap<String, Trend>,
    /// Request and failure counts per request of the plan's mix (empty without a mix).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_name: BTreeMap<String, NamedCounts>,
}

/// Counts of one request of a mix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCounts {
    /// Requests sent.
    pub http_reqs: u64,
    /// Requests whose status was not expected (or that failed).
    pub http_req_failed: u64,
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

impl Summary {
    pub(crate) fn from_metrics(
        plan: &Plan,
        m: &Metrics,
        started: DateTime<Utc>,
        ended: DateTime<Utc>,
        duration_s: f64,
    ) -> Summary {
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            wasmbench_version: env!("CARGO_PKG_VERSION").to_string(),
            plan: plan.clone(),
            target: String::new(),
            started,
            ended,
            duration_s,
            partial: false,
            aborted_by_threshold: false,
            sources: 1,
            workers: 0,
            counters: CounterSummary::from_counters(&m.counters),
            vus: GaugeSummary::default(),
            vus_max: GaugeSummary::default(),
            statuses: m.statuses.iter().copied().collect(),
            checks: plan
                .checks
                .iter()
                .zip(&m.checks)
                .map(|(c, &(passes, fails))| CheckResult {
                    name: c.name.clone(),
                    passes,
                    fails,
                })
                .collect(),
            thresholds: Vec::new(),
            trends: TREND_METRICS
                .iter()
                .zip(&m.trends)
                .map(|(n, h)| (n.to_string(), Trend(h.clone())))
                .chain(plan.mix.iter().zip(&m.named).flat_map(|(r, n)| {
                    let (d, w) = named_trend_names(&r.name);
                    [
                        (d, Trend(n.duration.clone())),
                        (w, Trend(n.waiting.clone())),
                    ]
                }))
                .collect(),
            by_name: plan
                .mix
                .iter()
                .zip(&m.named)
                .map(|(r, n)| {
                    (
                        r.name.clone(),
                        NamedCounts {
                            http_reqs: n.http_reqs,
                            http_req_failed: n.http_req_failed,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Statistics of a trend metric in ms; `None` for unknown names.
    pub fn trend(&self, metric: &str) -> Option<TrendStats> {
        self.trends.get(metric).map(|t| TrendStats::of(&t.0))
    }

    /// Percentile `q` (0–100) of a trend metric in ms (k6 interpolation).
    pub fn percentile_ms(&self, metric: &str, q: f64) -> Option<f64> {
        self.trends.get(metric).map(|t| percentile_ms(&t.0, q))
    }

    /// (percentile, ms) points for latency charts, dense in the tail.
    pub fn percentile_curve(&self, metric: &str) -> Vec<(f64, f64)> {
        const QS: [f64; 19] = [
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 90.0, 95.0, 97.5, 99.0,
            99.5, 99.9, 99.95, 99.99, 100.0,
        ];
        match self.trends.get(metric) {
            Some(t) if !t.0.is_empty() => QS.iter().map(|&q| (q, percentile_ms(&t.0, q))).collect(),
            _ => Vec::new(),
        }
    }

    /// Requests per second.
    pub fn http_reqs_per_s(&self) -> f64 {
        rate(self.counters.http_reqs, self.duration_s)
    }

    /// Share of failed requests (0–1).
    pub fn http_req_failed_rate(&self) -> f64 {
        ratio(self.counters.http_req_failed, self.counters.http_reqs)
    }

    /// Checks passed and failed, summed over all checks.
    pub fn checks_total(&self) -> (u64, u64) {
        self.checks
            .iter()
            .fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails))
    }

    /// True when any threshold failed.
    pub fn threshold_failed(&self) -> bool {
        self.thresholds.iter().any(|t| !t.ok)
    }

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
        self.thresholds = self.evaluate(&self.plan.thresholds.clone())?;
        Ok(())
    }
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

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
    for n in TREND_METRICS.iter().take(8) {
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
    o
}

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
    use super::*;
    use crate::metrics::new_histogram;

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
    fn percentiles_interpolate_like_k6() {
        let mut h = new_histogram();
        for v in [1_000_000u64, 2_000_000, 3_000_000, 4_000_000] {
            h.record(v).unwrap();
        }
        // k6: med of [1,2,3,4] ms = 2.5; p(90) = 3 + 0.7 = 3.7.
        assert!((percentile_ms(&h, 50.0) - 2.5).abs() < 0.005);
        assert!((percentile_ms(&h, 90.0) - 3.7).abs() < 0.005);
        assert!((percentile_ms(&h, 0.0) - 1.0).abs() < 0.002);
        assert!((percentile_ms(&h, 100.0) - 4.0).abs() < 0.004);
    }

    #[test]
    fn trend_round_trips_through_json() {
        let mut h = new_histogram();
        for v in 1..1000u64 {
            h.record(v * 1000).unwrap();
        }
        let t = Trend(h.clone());
        let j = serde_json::to_string(&t).unwrap();
        let back: Trend = serde_json::from_str(&j).unwrap();
        assert_eq!(back.0.len(), h.len());
        assert_eq!(back.0.max(), h.max());
        assert!((percentile_ms(&back.0, 95.0) - percentile_ms(&h, 95.0)).abs() < 1e-9);
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
