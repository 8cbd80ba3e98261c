//! The load plan: what to request, how connections are used, which executor drives the load,
//! checks and thresholds. Plain data (serde), validated before a run, separate from execution.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::Check;
use crate::error::LoadError;
use crate::threshold::Threshold;

/// A complete load test description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plan {
    /// The request every iteration sends.
    pub request: RequestSpec,
    /// Keep-alive (default) or a new connection for every request.
    pub connection_mode: ConnectionMode,
    /// What drives the load.
    pub executor: Executor,
    /// Checks evaluated on every response (`status == 200`, `duration < 200`, `body contains ok`).
    pub checks: Vec<Check>,
    /// Pass/fail criteria on metrics, k6 syntax.
    pub thresholds: Vec<Threshold>,
    /// Per-request timeout, from asking for a connection to the last body byte (k6 default 60 s).
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub timeout: Duration,
    /// Time in-flight iterations get to finish after the executor's duration ends (k6 default 30 s).
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub graceful_stop: Duration,
    /// Pause at the end of every iteration (k6's `sleep()`), 0 by default.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub think_time: Duration,
    /// Statistics shown for trends in the text summary and the summary export.
    pub summary_trend_stats: Vec<String>,
    /// Response statuses that count as success for `http_req_failed` (k6 default 200–399).
    pub expected_statuses: Vec<StatusRange>,
    /// TLS options for `https` URLs.
    pub tls: TlsOptions,
    /// Worker threads generating load; 0 picks the number of CPUs (capped by the VU count).
    pub workers: usize,
    /// A request mix: when not empty, every iteration sends one of these (on the host of
    /// `request.url`) instead of `request`, in proportion to their weights, and each gets its
    /// own sub-metrics (`http_req_duration{name:<name>}`, as k6 tags them).
    pub mix: Vec<MixRequest>,
    /// Which I/O backend may run the plan: `auto` (io_uring where the kernel allows it and the
    /// plan is plain HTTP, else tokio) or `tokio`. The environment variable
    /// `WASMBENCH_IO_URING=0` forces tokio as well. Not serialized when `auto`.
    #[serde(skip_serializing_if = "Backend::is_auto")]
    pub backend: Backend,
}

/// The I/O backend a [`Plan`] asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// io_uring when available and the plan allows it, else tokio.
    #[default]
    Auto,
    /// Always the tokio (epoll) backend.
    Tokio,
}

impl Backend {
    /// True for [`Backend::Auto`].
    pub fn is_auto(&self) -> bool {
        *self == Backend::Auto
    }
}

/// Most requests a mix may hold: each adds histograms to every worker.
pub const MAX_MIX_REQUESTS: usize = 32;

/// One request of a [`Plan::mix`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixRequest {
    /// Name of its sub-metrics (letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Relative share of the iterations (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Method, e.g. `GET` or `POST` (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// Path and query, sent to the host of the plan's URL (default `/`).
    #[serde(default = "root")]
    pub path: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body; a string, or `{ base64 = "..." }` when it is not UTF-8.
    #[serde(default, with = "body_serde")]
    pub body: Vec<u8>,
}

fn one() -> u32 {
    1
}
fn get() -> String {
    "GET".into()
}
fn root() -> String {
    "/".into()
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            request: RequestSpec::default(),
            connection_mode: ConnectionMode::KeepAlive,
            executor: Executor::default(),
            checks: Vec::new(),
            thresholds: Vec::new(),
            timeout: Duration::from_secs(60),
            graceful_stop: Duration::from_secs(30),
            think_time: Duration::ZERO,
            summary_trend_stats: default_trend_stats(),
            expected_statuses: vec![StatusRange { min: 200, max: 399 }],
            tls: TlsOptions::default(),
            workers: 0,
            mix: Vec::new(),
            backend: Backend::Auto,
        }
    }
}

/// k6's default `summaryTrendStats`.
pub fn default_trend_stats() -> Vec<String> {
    ["avg", "min", "med", "max", "p(90)", "p(95)"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The HTTP request sent by every iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestSpec {
    /// Method, e.g. `GET` or `POST`.
    pub method: String,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Extra request headers (`Host`, `Content-Length` and `Connection` are set by the engine).
    pub headers: BTreeMap<String, String>,
    /// Request body; serialized as a string, or `{ base64 = "..." }` when it is not UTF-8.
    #[serde(with = "body_serde")]
    pub body: Vec<u8>,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            method: "GET".into(),
            url: "http://127.0.0.1:1234/".into(),
            headers: BTreeMap::new(),
            body: Vec::new(),
        }
    }
}

pub use wasmbench_vocab::ConnectionMode;

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRange {
    /// Lowest status in the range.
    pub min: u16,
    /// Highest status in the range.
    pub max: u16,
}

/// TLS client options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// PEM file with extra trusted CA certificates (added to the webpki roots).
    pub ca_file: Option<PathBuf>,
}

/// One stage of a ramping executor: move linearly to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Length of the stage.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub duration: Duration,
    /// VUs (ramping-vus) or iterations per time unit (ramping-arrival-rate) at the stage's end.
    pub target: u64,
}

/// What drives the load; the names and fields follow k6's executors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Executor {
    /// Closed model: `vus` VUs loop for `duration`.
    ConstantVus {
        /// Number of VUs.
        vus: u64,
        /// How long they loop.
        #[serde(with = "wasmbench_vocab::duration::serde")]
        duration: Duration,
    },
    /// Closed model with a VU count that follows `stages` linearly from `start_vus`.
    RampingVus {
        /// VUs at the start.
        start_vus: u64,
        /// Stages of `{duration, target}`.
        stages: Vec<Stage>,
    },
    /// Open model: `rate` iterations per `time_unit`, started regardless of response times.
    ConstantArrivalRate {
        /// Iterations per time unit.
        rate: u64,
        /// Unit of `rate` (default 1 s).
        #[serde(with = "wasmbench_vocab::duration::serde", default = "one_second")]
        time_unit: Duration,
        /// How long iterations are started.
        #[serde(with = "wasmbench_vocab::duration::serde")]
        duration: Duration,
        /// VUs created before the start.
        pre_allocated_vus: u64,
        /// Upper bound on VUs; when all are busy an iteration is dropped.
        max_vus: u64,
    },
    /// Open model with a rate that follows `stages` linearly from `start_rate`.
    RampingArrivalRate {
        /// Iterations per time unit at the start.
        start_rate: u64,
        /// Unit of the rates (default 1 s).
        #[serde(with = "wasmbench_vocab::duration::serde", default = "one_second")]
        time_unit: Duration,
        /// Stages of `{duration, target}` (target = rate).
        stages: Vec<Stage>,
        /// VUs created before the start.
        pre_allocated_vus: u64,
        /// Upper bound on VUs; when all are busy an iteration is dropped.
        max_vus: u64,
    },
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

impl Default for Executor {
    fn default() -> Self {
        Executor::ConstantVus {
            vus: 1,
            duration: Duration::from_secs(10),
        }
    }
}

impl Executor {
    /// k6's name of the executor.
    pub fn name(&self) -> &'static str {
        match self {
            Executor::ConstantVus { .. } => "constant-vus",
            Executor::RampingVus { .. } => "ramping-vus",
            Executor::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Executor::RampingArrivalRate { .. } => "ramping-arrival-rate",
        }
    }

    /// How long the executor starts iterations (without graceful stop).
    pub fn duration(&self) -> Duration {
        match self {
            Executor::ConstantVus { duration, .. }
            | Executor::ConstantArrivalRate { duration, .. } => *duration,
            Executor::RampingVus { stages, .. } | Executor::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration).sum()
            }
        }
    }

    /// The largest number of VUs the executor may use.
    pub fn max_vus(&self) -> u64 {
        match self {
            Executor::ConstantVus { vus, .. } => *vus,
            Executor::RampingVus { start_vus, stages } => {
                stages.iter().map(|s| s.target).fold(*start_vus, u64::max)
            }
            Executor::ConstantArrivalRate {
                pre_allocated_vus,
                max_vus,
                ..
            }
            | Executor::RampingArrivalRate {
                pre_allocated_vus,
                max_vus,
                ..
            } => (*max_vus).max(*pre_allocated_vus),
        }
    }

    /// True for the arrival-rate (open model) executors.
    pub fn is_open_model(&self) -> bool {
        matches!(
            self,
            Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. }
        )
    }

    fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::InvalidPlan(m));
        const MAX_VUS: u64 = 1_000_000;
        match self {
            Executor::ConstantVus { vus, duration } => {
                if *vus == 0 {
                    return bad("constant-vus needs vus >= 1 (e.g. --vus 10)".into());
                }
                if duration.is_zero() {
                    return bad("constant-vus needs a duration > 0 (e.g. --duration 30s)".into());
                }
            }
            Executor::RampingVus { stages, .. } => {
                if stages.is_empty() || self.duration().is_zero() {
                    return bad(
                        "ramping-vus needs at least one stage with a duration (e.g. --stage 10s:50)"
                            .into(),
                    );
                }
                if self.max_vus() == 0 {
                    return bad("ramping-vus never has a VU: give a stage a target > 0".into());
                }
            }
            Executor::ConstantArrivalRate {
                rate,
                time_unit,
                duration,
                pre_allocated_vus,
                max_vus,
            } => {
                if *rate == 0 || time_unit.is_zero() {
                    return bad("constant-arrival-rate needs rate >= 1 and a time unit > 0".into());
                }
                if duration.is_zero() {
                    return bad("constant-arrival-rate needs a duration > 0".into());
                }
                if *pre_allocated_vus == 0 && *max_vus == 0 {
                    return bad("constant-arrival-rate needs pre_allocated_vus >= 1".into());
                }
            }
            Executor::RampingArrivalRate {
                time_unit,
                stages,
                pre_allocated_vus,
                max_vus,
                ..
            } => {
                if time_unit.is_zero() {
                    return bad("ramping-arrival-rate needs a time unit > 0".into());
                }
                if stages.is_empty() || self.duration().is_zero() {
                    return bad("ramping-arrival-rate needs at least one stage with a duration (e.g. --stage 10s:200)".into());
                }
                if *pre_allocated_vus == 0 && *max_vus == 0 {
                    return bad("ramping-arrival-rate needs pre_allocated_vus >= 1".into());
                }
            }
        }
        if self.max_vus() > MAX_VUS {
            return bad(format!(
                "{} VUs is more than the supported {MAX_VUS}",
                self.max_vus()
            ));
        }
        Ok(())
    }
}

impl Plan {
    /// Parses a plan from TOML (same field names as the serde representation) and validates it.
    pub fn from_toml_str(s: &str) -> Result<Plan, LoadError> {
        let plan: Plan =
            toml::from_str(s).map_err(|e| LoadError::Toml(crate::error::toml_line(&e, s)))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks everything that can be checked before a run: executor parameters, URL, method,
    /// headers, thresholds (syntax and metric), trend statistics.
    pub fn validate(&self) -> Result<(), LoadError> {
        self.executor.validate()?;
        crate::url::parse(&self.request.url)?;
        validate_method(&self.request.method)?;
        validate_headers(&self.request.headers)?;
        self.validate_mix()?;
        if self.timeout.is_zero() {
            return Err(LoadError::InvalidPlan(
                "timeout must be > 0 (e.g. 60s)".into(),
            ));
        }
        for r in &self.expected_statuses {
            if r.min > r.max || r.max > 999 {
                return Err(LoadError::InvalidPlan(format!(
                    "expected status range {}-{} is empty or not HTTP statuses",
                    r.min, r.max
                )));
            }
        }
        for s in &self.summary_trend_stats {
            crate::histogram::TrendStat::parse(s)?;
        }
        for t in &self.thresholds {
            t.parse_checked()?;
            if let (_, Some(tag)) = crate::registry::split_name_tag(&t.metric)
                && !self.mix.iter().any(|r| r.name == tag)
            {
                return Err(LoadError::InvalidPlan(format!(
                    "threshold on {}: there is no mix request named `{tag}`: the mix has {}",
                    t.metric,
                    if self.mix.is_empty() {
                        "no requests".to_string()
                    } else {
                        self.mix_names().join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    fn validate_mix(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::InvalidPlan(m));
        if self.mix.len() > MAX_MIX_REQUESTS {
            return bad(format!(
                "the mix has {} requests; at most {MAX_MIX_REQUESTS} are supported",
                self.mix.len()
            ));
        }
        let mut total: u64 = 0;
        for (i, r) in self.mix.iter().enumerate() {
            let name_ok = !r.name.is_empty()
                && r.name.len() <= 64
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
            if !name_ok {
                return bad(format!(
                    "mix request {} has name {:?}: use 1-64 letters, digits, `_`, `-` or `.`",
                    i + 1,
                    r.name
                ));
            }
            if self.mix[..i].iter().any(|o| o.name == r.name) {
                return bad(format!(
                    "mix request name {:?} is used twice: names must be unique",
                    r.name
                ));
            }
            if r.weight == 0 {
                return bad(format!("mix request {:?} needs a weight >= 1", r.name));
            }
            total += u64::from(r.weight);
            if !r.path.starts_with('/') || r.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return bad(format!(
                    "mix request {:?} has path {:?}: give a path such as /hash?rounds=100",
                    r.name, r.path
                ));
            }
            validate_method(&r.method)?;
            validate_headers(&r.headers)?;
        }
        if total > 1_000_000 {
            return bad(
                "the mix's weights add up to more than 1000000: use smaller weights".into(),
            );
        }
        Ok(())
    }

    /// Names of the requests iterations pick from: the mix's, or none for a single request.
    pub fn mix_names(&self) -> Vec<String> {
        self.mix.iter().map(|r| r.name.clone()).collect()
    }

    /// True when `status` counts as an expected response.
    pub fn is_expected_status(&self, status: u16) -> bool {
        self.expected_statuses
            .iter()
            .any(|r| status >= r.min && status <= r.max)
    }
}

fn validate_method(m: &str) -> Result<(), LoadError> {
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
        return Err(LoadError::InvalidPlan(format!(
            "method {m:?} is not an HTTP method: use e.g. GET or POST"
        )));
    }
    Ok(())
}

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), LoadError> {
    for (k, v) in headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(v).is_err()
        {
            return Err(LoadError::InvalidPlan(format!(
                "header `{k}: {v}` is not a valid HTTP header: use `Name: value`"
            )));
        }
    }
    Ok(())
}

/// Picks the request of each iteration from a weighted mix: smooth weighted round-robin, so
/// every window of `sum(weights)` picks holds each request exactly `weight` times, spread out
/// rather than in bursts.
#[derive(Debug, Clone)]
pub(crate) struct MixPicker {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl MixPicker {
    /// A picker over `weights`, advanced by `offset` picks (so workers do not all start on the
    /// same request); an empty mix always picks 0.
    pub(crate) fn new(weights: &[u32], offset: usize) -> MixPicker {
        let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w)).collect();
        let total = weights.iter().sum();
        let mut p = MixPicker {
            current: vec![0; weights.len()],
            weights,
            total,
        };
        for _ in 0..offset.min(p.total as usize) {
            p.next();
        }
        p
    }

    /// Index of the next request.
    pub(crate) fn next(&mut self) -> usize {
        if self.weights.len() <= 1 {
            return 0;
        }
        for (c, w) in self.current.iter_mut().zip(&self.weights) {
            *c += w;
        }
        // Ties go to the earlier request.
        let best = (0..self.current.len())
            .max_by_key(|&i| (self.current[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        self.current[best] -= self.total;
        best
    }
}

/// Iteration start times of the arrival-rate executors: rates are piecewise linear in time, the
/// cumulative count is their integral, and the k-th iteration starts when it reaches k.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalSchedule {
    /// (stage start seconds, stage length seconds, start rate /s, end rate /s, iterations before)
    segments: Vec<(f64, f64, f64, f64, f64)>,
    total_s: f64,
}

impl ArrivalSchedule {
    pub(crate) fn new(exec: &Executor) -> Option<ArrivalSchedule> {
        let (start_rate, unit, stages): (u64, Duration, Vec<Stage>) = match exec {
            Executor::ConstantArrivalRate {
                rate,
                time_unit,
                duration,
                ..
            } => (
                *rate,
                *time_unit,
                vec![Stage {
                    duration: *duration,
                    target: *rate,
                }],
            ),
            Executor::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                ..
            } => (*start_rate, *time_unit, stages.clone()),
            _ => return None,
        };
        let per_s = |r: u64| r as f64 / unit.as_secs_f64();
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut n, mut r0) = (0.0, 0.0, per_s(start_rate));
        for s in &stages {
            let d = s.duration.as_secs_f64();
            let r1 = per_s(s.target);
            segments.push((t, d, r0, r1, n));
            n += (r0 + r1) / 2.0 * d;
            t += d;
            r0 = r1;
        }
        Some(ArrivalSchedule {
            segments,
            total_s: t,
        })
    }

    /// Start offset of iteration `k` (0-based), or `None` when it falls after the end.
    pub(crate) fn time_of(&self, k: u64) -> Option<Duration> {
        let k = k as f64;
        for &(t0, d, r0, r1, n0) in &self.segments {
            let n_end = n0 + (r0 + r1) / 2.0 * d;
            if k >= n_end {
                continue;
            }
            let x = k - n0;
            // Solve r0*t + (r1-r0)/(2d)*t^2 = x for t in [0, d].
            let a = (r1 - r0) / (2.0 * d);
            let t = if a.abs() < 1e-12 {
                x / r0
            } else {
                (-r0 + (r0 * r0 + 4.0 * a * x).max(0.0).sqrt()) / (2.0 * a)
            };
            let t = t0 + t.clamp(0.0, d);
            return (t < self.total_s).then(|| Duration::from_secs_f64(t));
        }
        None
    }
}

/// Serde for the request body: a string when it is UTF-8, otherwise `{ base64 = "..." }`.
mod body_serde {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Binary { base64: String },
    }

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(b) {
            Ok(t) => Repr::Text(t.to_string()).serialize(s),
            Err(_) => Repr::Binary {
                base64: base64::engine::general_purpose::STANDARD.encode(b),
            }
            .serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(t.into_bytes()),
            Repr::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_validation() {
        let p = Plan::from_toml_str(
            r#"
            connection_mode = "new-per-request"
            timeout = "5s"
            checks = ["status == 200", "duration < 200"]
            [request]
            method = "POST"
            url = "http://127.0.0.1:8080/x"
            body = "hello"
            [executor]
            type = "ramping-arrival-rate"
            start_rate = 10
            pre_allocated_vus = 5
            max_vus = 10
            stages = [{ duration = "2s", target = 20 }]
            [[thresholds]]
            metric = "http_req_duration"
            expr = "p(95)<200"
            "#,
        )
        .unwrap();
        assert_eq!(p.connection_mode, ConnectionMode::NewConnectionPerRequest);
        assert_eq!(p.request.body, b"hello");
        assert_eq!(p.executor.duration(), Duration::from_secs(2));
        let back = Plan::from_toml_str(&toml::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let json: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(json, p);

        let e =
            Plan::from_toml_str("[executor]\ntype = \"constant-vus\"\nvus = 0\nduration = \"1s\"")
                .unwrap_err();
        assert!(e.to_string().contains("vus >= 1"), "{e}");
        let e = Plan::from_toml_str("[request]\nurl = \"ftp://x/\"").unwrap_err();
        assert!(e.to_string().contains("ftp://x/"), "{e}");
        assert!(Plan::from_toml_str("bogus = 1").is_err());
    }

    #[test]
    fn arrival_schedule_integrates_rates() {
        let exec = Executor::ConstantArrivalRate {
            rate: 100,
            time_unit: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            pre_allocated_vus: 1,
            max_vus: 1,
        };
        let s = ArrivalSchedule::new(&exec).unwrap();
        assert_eq!(s.time_of(0), Some(Duration::ZERO));
        assert_eq!(s.time_of(50), Some(Duration::from_millis(500)));
        assert!(s.time_of(199).is_some());
        assert_eq!(s.time_of(200), None);
        // Ramp 0 -> 100/s over 2 s: 100 iterations, the 25th at t = 1 s (n = 25 t^2).
        let exec = Executor::RampingArrivalRate {
            start_rate: 0,
            time_unit: Duration::from_secs(1),
            stages: vec![Stage {
                duration: Duration::from_secs(2),
                target: 100,
            }],
            pre_allocated_vus: 1,
            max_vus: 1,
        };
        let s = ArrivalSchedule::new(&exec).unwrap();
        let t = s.time_of(25).unwrap().as_secs_f64();
        assert!((t - 1.0).abs() < 1e-9, "{t}");
        assert!(s.time_of(99).is_some());
        assert_eq!(s.time_of(100), None);
    }

    #[test]
    fn mix_picker_spreads_exact_shares() {
        let mut p = MixPicker::new(&[5, 1, 1], 0);
        let seq: Vec<usize> = (0..7).map(|_| p.next()).collect();
        // Smooth: the heavy request is never sent 5 times in a row.
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
        for offset in 0..10 {
            let mut p = MixPicker::new(&[3, 2, 1], offset);
            let mut counts = [0; 3];
            for _ in 0..600 {
                counts[p.next()] += 1;
            }
            assert_eq!(counts, [300, 200, 100], "offset {offset}");
        }
        let mut single = MixPicker::new(&[], 3);
        assert_eq!((single.next(), single.next()), (0, 0));
    }
}
