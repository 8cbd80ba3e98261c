//! Capacity at an SLO: the highest offered request rate a server sustains while a latency
//! objective holds.
//!
//! An open-model search in the manner of Nighthawk's adaptive load controller: constant-arrival-
//! rate steps, doubling from a start rate until a step fails, then bisection between the highest
//! passing and the lowest failing rate until they are within a resolution. A step passes when
//! the achieved rate is at least 99% of the offered one, almost no iteration was dropped, few
//! requests failed and every SLO threshold held. A step where the load generator itself was the
//! limit (it used ≥ 90% of its CPUs, when its threads do not spin before each start; it
//! started iterations a median of over a millisecond late;
//! its own start delay reached half the latency tail it judged; or every VU was busy while the
//! server kept its latency) is marked *client-bound*: it ends the search and never counts as
//! the server's capacity, which is then reported as a lower bound. After a failed step the
//! search waits until one VU is answered at its unloaded speed again, so the queue an overload
//! left in the server is not charged to the next step.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::RunOptions;
use crate::error::LoadError;
use crate::plan::{Executor, Plan};
use crate::summary::Summary;
use crate::threshold::Threshold;

/// Share of the offered rate a step must achieve.
pub const MIN_ACHIEVED_SHARE: f64 = 0.99;
/// Share of the offered iterations that may be dropped.
pub const MAX_DROPPED_SHARE: f64 = 0.01;
/// Share of requests that may fail (`http_req_failed`).
pub const MAX_FAILED_SHARE: f64 = 0.01;
/// Load-generator CPU share (of the CPUs it may use) from which a step is client-bound; the
/// same limit at which a comparison warns that its throughput is bounded by the client.
pub const CLIENT_CPU_LIMIT: f64 = 0.90;
/// A step that failed its SLO is client-bound when the load generator's own delay, the `p(99)`
/// of its iterations' start lag, is at least this share of the `http_req_waiting` `p(99)` it
/// judged: the client measures waiting up to the moment it reads the response, so a stall of
/// its threads adds to the tail as much as it delays the starts, and a tail of that size
/// cannot be laid on the server.
pub const CLIENT_TAIL_SHARE: f64 = 0.5;
/// Default SLO: `p(99)` of `http_req_waiting` below this many times its unloaded value.
///
/// Unloaded means an open-model step at a tenth of the rate one VU reached: arrivals that
/// find the server and the load generator idle, as at any light load. Its `p(99)`, not its
/// median, is the base: on a VM an idle CPU's wake-up alone puts the light-load `p(99)` at
/// 30–90 times the median (measured: 0.035 ms median, 2–4 ms `p(99)` for the native echo at
/// 500–8,000 req/s), so a median-based limit would fail every step of any server.
pub const DEFAULT_SLO_FACTOR: f64 = 10.0;
/// The unloaded step's rate, as a share of the rate one VU reached.
pub const UNLOADED_RATE_SHARE: f64 = 0.1;
/// The metric of the default SLO.
pub const DEFAULT_SLO_METRIC: &str = "http_req_waiting";
/// After a failed step, the server counts as drained once one VU's median `http_req_waiting`
/// is within this many times its unloaded median (plus [`DRAIN_SLACK_MS`]): an overloaded
/// step leaves a queue in the server that would otherwise slow the next step down.
pub const DRAIN_FACTOR: f64 = 2.0;
/// Absolute slack of the drain test, ms: sub-millisecond medians move by this much with the
/// machine's wake-up latency alone.
pub const DRAIN_SLACK_MS: f64 = 0.5;
/// Length of one drain probe (one VU, closed model).
pub const DRAIN_PROBE: Duration = Duration::from_millis(200);
/// Longest wait for a drain; a server still slow after it is recorded as not drained and the
/// search goes on.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// How the search runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityOptions {
    /// The objective every step must meet; empty: `p(99) http_req_waiting <`
    /// [`DEFAULT_SLO_FACTOR`] × its unloaded value, measured first.
    pub slo: Vec<Threshold>,
    /// First offered rate (req/s); 0: the rate one VU reached unloaded.
    pub start_rate: u64,
    /// Highest rate offered; 0: no limit but the step budget.
    pub max_rate: u64,
    /// Length of each step.
    pub step_duration: Duration,
    /// Length of each of the two unloaded measurements (one VU closed; a light open step).
    pub calibration: Duration,
    /// The search ends when the lowest failing rate is within this share above the highest
    /// passing one.
    pub resolution: f64,
    /// Most steps, calibration not included.
    pub max_steps: u32,
    /// Most VUs a step may allocate; a step that needs more is client-bound.
    pub max_vus: u64,
}

impl Default for CapacityOptions {
    fn default() -> Self {
        CapacityOptions {
            slo: Vec::new(),
            start_rate: 0,
            max_rate: 0,
            step_duration: Duration::from_secs(3),
            calibration: Duration::from_secs(1),
            resolution: 0.05,
            max_steps: 16,
            max_vus: 1000,
        }
    }
}

impl CapacityOptions {
    /// Checks the options before any traffic is sent.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::Capacity(m));
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return bad(format!(
                "resolution {} must be between 0 and 1 (e.g. 0.05 for 5%)",
                self.resolution
            ));
        }
        if self.step_duration < Duration::from_millis(200) {
            return bad("the step duration must be at least 200ms".into());
        }
        if self.max_steps == 0 || self.max_vus == 0 {
            return bad("it needs at least one step and one VU".into());
        }
        if self.max_rate > 0 && self.start_rate > self.max_rate {
            return bad(format!(
                "the start rate {} is above the max rate {}",
                self.start_rate, self.max_rate
            ));
        }
        for t in &self.slo {
            t.parse_checked()?;
        }
        Ok(())
    }
}

/// What one step (or the calibration) measured, besides the load summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StepUsage {
    /// CPU time of the load generator over the step, as a share of the CPUs it may use (0–1).
    pub loadgen_cpu: Option<f64>,
    /// CPU time of the server over the step, ms, when the caller knows the server process.
    pub server_cpu_ms: Option<f64>,
}

/// Runs one plan for the search: the engine, plus whatever the caller measures around it.
pub trait StepRunner {
    /// Runs `plan` to its end and returns its summary and usage.
    fn run_step(
        &mut self,
        plan: &Plan,
    ) -> impl Future<Output = Result<(Summary, StepUsage), LoadError>>;
}

/// Cumulative CPU time of a process so far; `None` when it cannot be read.
pub type CpuClock = Box<dyn Fn() -> Option<Duration> + Send + Sync>;

/// Runs steps with this crate's engine, reading the load generator's and (when known) the
/// server's CPU clocks around each.
pub struct EngineRunner {
    /// Options of every run (its cancel token stops a step early).
    pub run: RunOptions,
    /// This process's CPU clock.
    pub loadgen_cpu: Option<CpuClock>,
    /// The server process's CPU clock.
    pub server_cpu: Option<CpuClock>,
    /// CPUs the load generator may use (the denominator of its CPU share).
    pub loadgen_cpus: usize,
}

impl fmt::Debug for EngineRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineRunner")
            .field("loadgen_cpu", &self.loadgen_cpu.is_some())
            .field("server_cpu", &self.server_cpu.is_some())
            .field("loadgen_cpus", &self.loadgen_cpus)
            .finish_non_exhaustive()
    }
}

impl EngineRunner {
    /// A runner reading this process's CPU clock, without a server clock.
    pub fn new(run: RunOptions) -> EngineRunner {
        EngineRunner {
            run,
            loadgen_cpu: Some(process_cpu_clock(std::process::id())),
            server_cpu: None,
            loadgen_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The CPU clock of process `pid` (user + system time).
pub fn process_cpu_clock(pid: u32) -> CpuClock {
    Box::new(move || {
        wasmbench_procfs::cpu_times(pid)
            .ok()
            .map(|t| Duration::from_millis(t.user_ms + t.sys_ms))
    })
}

impl StepRunner for EngineRunner {
    async fn run_step(&mut self, plan: &Plan) -> Result<(Summary, StepUsage), LoadError> {
        let read = |c: &Option<CpuClock>| c.as_ref().and_then(|c| c());
        let (t0, l0, s0) = (
            Instant::now(),
            read(&self.loadgen_cpu),
            read(&self.server_cpu),
        );
        let summary = crate::engine::run(plan, self.run.clone()).await?;
        let wall = t0.elapsed().as_secs_f64();
        let (l1, s1) = (read(&self.loadgen_cpu), read(&self.server_cpu));
        let usage = StepUsage {
            loadgen_cpu: l0.zip(l1).filter(|_| wall > 0.0).map(|(a, b)| {
                b.saturating_sub(a).as_secs_f64() / (wall * self.loadgen_cpus as f64)
            }),
            server_cpu_ms: s0
                .zip(s1)
                .map(|(a, b)| b.saturating_sub(a).as_secs_f64() * 1000.0),
        };
        Ok((summary, usage))
    }
}

/// Why a step did not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// The server met every criterion at this rate.
    Pass,
    /// The server did not sustain this rate; the reasons say which criteria failed.
    Fail {
        /// One line per criterion that failed.
        reasons: Vec<String>,
    },
    /// The load generator was the limit: this step says nothing about the server.
    ClientBound {
        /// What limited the client.
        reason: String,
    },
}

/// One step of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Offered rate, req/s.
    pub offered: u64,
    /// Completed requests per second of the step's planned length.
    pub achieved: f64,
    /// Iterations that could not start (no free VU).
    pub dropped_iterations: u64,
    /// Share of failed requests.
    pub failed_share: f64,
    /// `http_req_waiting` p50/p95/p99, ms.
    pub waiting_ms: Percentiles,
    /// `http_req_duration` p50/p95/p99, ms.
    pub duration_ms: Percentiles,
    /// Most VUs allocated.
    pub vus_max: u64,
    /// How long after their scheduled time iterations started (the load generator's own
    /// delay) p50/p95/p99, ms.
    #[serde(default)]
    pub start_lag_ms: Option<Percentiles>,
    /// What the caller measured around the step.
    pub usage: StepUsage,
    /// Server CPU per request, µs, when the server's CPU was measured.
    pub server_cpu_us_per_req: Option<f64>,
    /// After a failed step: how long the server took to answer one VU at its unloaded speed
    /// again, s, before the next step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// The outcome.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The wait after a failed step for the server's queue to empty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drain {
    /// From the step's end to the probe that found the server at its unloaded speed, s.
    pub seconds: f64,
    /// False when [`DRAIN_LIMIT`] passed first (the next step started anyway).
    pub drained: bool,
    /// The last probe's median `http_req_waiting`, ms.
    pub last_p50_ms: f64,
}

/// Three latency percentiles, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// The three percentiles of `percentile_ms(q)`; NaN where it has none.
    fn from_fn(percentile_ms: impl Fn(f64) -> Option<f64>) -> Percentiles {
        let p = |q| percentile_ms(q).unwrap_or(f64::NAN);
        Percentiles {
            p50: p(50.0),
            p95: p(95.0),
            p99: p(99.0),
        }
    }

    fn of(s: &Summary, metric: &str) -> Percentiles {
        Percentiles::from_fn(|q| s.percentile_ms(metric, q))
    }
}

/// What ended the search, and so how to read its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The highest passing and lowest failing rates are within the resolution: the server's
    /// capacity lies between them.
    Server,
    /// A step was client-bound: the capacity is at least the highest passing rate.
    Client,
    /// Every step up to the max rate passed: the capacity is at least that.
    MaxRate,
    /// The step budget ended before the resolution was reached.
    Steps,
}

impl Limit {
    /// Lowercase name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Server => "server",
            Limit::Client => "client",
            Limit::MaxRate => "max-rate",
            Limit::Steps => "steps",
        }
    }
}

/// The result of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The highest rate that passed, req/s; `None` when none did.
    pub passed: Option<u64>,
    /// The lowest rate that failed, req/s; `None` when none did.
    pub failed: Option<u64>,
    /// What ended the search.
    pub limit: Limit,
    /// Unloaded `http_req_waiting` median, ms, when it was measured.
    pub unloaded_p50_ms: Option<f64>,
    /// Unloaded `http_req_waiting` `p(99)`, ms, when it was measured.
    #[serde(default)]
    pub unloaded_p99_ms: Option<f64>,
    /// The rate of the unloaded step, req/s.
    #[serde(default)]
    pub unloaded_rate: Option<u64>,
    /// The objective that was applied (`metric: expr`).
    pub slo: Vec<String>,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// Length of each step, s.
    pub step_s: f64,
    /// True when the search was cancelled before it ended.
    pub partial: bool,
}

impl Capacity {
    /// The capacity as a lower bound only (client-bound, max rate reached), or with its
    /// bracket; for tables and sentences.
    pub fn headline(&self) -> String {
        match (self.passed, self.failed, self.limit) {
            (None, _, Limit::Client) => {
                "unknown (the load generator was the limit from the first step)".into()
            }
            (None, Some(f), _) => format!("< {f} req/s (no step passed)"),
            (None, None, _) => "unknown (no step ran)".into(),
            (Some(p), _, Limit::Client) => format!("≥ {p} req/s (client-bound)"),
            (Some(p), _, Limit::MaxRate) => format!("≥ {p} req/s (max rate reached)"),
            (Some(p), Some(f), Limit::Steps) => {
                format!("{p}–{f} req/s (step budget ended before the resolution)")
            }
            (Some(p), Some(f), _) => format!("{p} req/s (fails at {f})"),
            (Some(p), None, _) => format!("≥ {p} req/s"),
        }
    }

    /// The capacity a ratio may use: the highest passing rate, only when the server was the
    /// limit (a lower bound is not a measurement).
    pub fn value(&self) -> Option<u64> {
        match self.limit {
            Limit::Server | Limit::Steps => self.passed,
            Limit::Client | Limit::MaxRate => None,
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())
    }
}

/// The plan of one step: `base`'s request and connection mode at a constant arrival rate for
/// `duration`.
fn step_plan(
    base: &Plan,
    opts: &CapacityOptions,
    rate: u64,
    duration: Duration,
    slo: &[Threshold],
) -> Plan {
    let mut p = base.clone();
    p.executor = Executor::ConstantArrivalRate {
        rate,
        time_unit: Duration::from_secs(1),
        duration,
        pre_allocated_vus: (rate / 100).clamp(1, opts.max_vus),
        max_vus: opts.max_vus,
    };
    p.thresholds = slo.to_vec();
    // A step that overloads the server must end promptly: what is still in flight after the
    // step is the overload itself, already visible in the achieved rate.
    p.graceful_stop = p.graceful_stop.min(Duration::from_secs(1));
    p
}

/// The unloaded measurement: one VU in a closed loop.
fn calibration_plan(base: &Plan, opts: &CapacityOptions) -> Plan {
    let mut p = base.clone();
    p.executor = Executor::ConstantVus {
        vus: 1,
        duration: opts.calibration,
    };
    p.thresholds.clear();
    // A server that accepts and never answers must not hold the calibration for the plan's
    // whole graceful stop (30 s by default).
    p.graceful_stop = p.graceful_stop.min(opts.calibration);
    p
}

/// Judges one step.
fn judge(s: &Summary, offered: u64, step_s: f64, usage: StepUsage, max_vus: u64) -> Step {
    // Against the planned length, not the measured one: the measured window also holds the
    // drain of what was still in flight when the step ended.
    let planned = offered as f64 * step_s;
    let achieved = s.counters.http_reqs as f64 / step_s;
    let dropped = s.counters.dropped_iterations;
    let failed_share = s.http_req_failed_rate();
    let vus_max = s.vus_max.max;
    let slo_failed: Vec<String> = s
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| format!("SLO {}: {} not met", t.metric, t.expr))
        .collect();
    let mut reasons = Vec::new();
    // One iteration of slack: a step's first and last arrivals fall on its edges.
    if (s.counters.http_reqs as f64) + 1.0 < MIN_ACHIEVED_SHARE * planned {
        reasons.push(format!(
            "achieved {achieved:.0} of {offered} req/s ({:.1}%)",
            100.0 * achieved / offered as f64
        ));
    }
    if dropped as f64 > MAX_DROPPED_SHARE * planned {
        reasons.push(format!("{dropped} iterations dropped (no free VU)"));
    }
    if failed_share > MAX_FAILED_SHARE {
        reasons.push(format!("{:.1}% of requests failed", 100.0 * failed_share));
    }
    reasons.extend(slo_failed.iter().cloned());
    let start_lag_ms = s
        .start_lag
        .as_ref()
        .map(|_| Percentiles::from_fn(|q| s.start_lag_ms(q)));
    let (lag_p50, lag_p99) = start_lag_ms.map_or((0.0, 0.0), |l| (l.p50, l.p99));
    let waiting_p99 = s.percentile_ms("http_req_waiting", 99.0).unwrap_or(0.0);
    let late_ms = crate::engine::LATE_START.as_secs_f64() * 1e3;
    // A pinned open-model engine spins through the last stretch before each start, so at any
    // real rate its CPU share is near 100% whatever its work: only its start lag says whether
    // it kept up.
    let spins = s.engine.as_ref().is_some_and(|e| e.pinned);
    let verdict = match usage.loadgen_cpu.filter(|_| !spins) {
        Some(c) if c >= CLIENT_CPU_LIMIT => Verdict::ClientBound {
            reason: format!("the load generator used {:.0}% of its CPUs", 100.0 * c),
        },
        // Half the iterations started later than that: the schedule itself was not kept.
        _ if lag_p50 > late_ms => Verdict::ClientBound {
            reason: format!(
                "the load generator could not issue the rate: iterations started a median \
                 {lag_p50:.2} ms late"
            ),
        },
        _ if !slo_failed.is_empty()
            && lag_p99 > 0.0
            && lag_p99 >= CLIENT_TAIL_SHARE * waiting_p99 =>
        {
            Verdict::ClientBound {
                reason: format!(
                    "the load generator's own delay (start lag p(99) {lag_p99:.2} ms) is {:.0}% \
                     of the waiting tail it judged (p(99) {waiting_p99:.2} ms)",
                    100.0 * lag_p99 / waiting_p99.max(f64::MIN_POSITIVE)
                ),
            }
        }
        // Every VU busy while the latency objective still held: the VUs, not the server,
        // were too few for this rate (Little's law: VUs = rate × latency).
        _ if !reasons.is_empty() && slo_failed.is_empty() && vus_max >= max_vus => {
            Verdict::ClientBound {
                reason: format!(
                    "all {max_vus} VUs were busy while the SLO held: raise the VU limit"
                ),
            }
        }
        _ if reasons.is_empty() => Verdict::Pass,
        _ => Verdict::Fail { reasons },
    };
    let server_cpu_us_per_req = usage
        .server_cpu_ms
        .filter(|_| s.counters.http_reqs > 0)
        .map(|ms| 1000.0 * ms / s.counters.http_reqs as f64);
    Step {
        offered,
        achieved,
        dropped_iterations: dropped,
        failed_share,
        waiting_ms: Percentiles::of(s, "http_req_waiting"),
        duration_ms: Percentiles::of(s, "http_req_duration"),
        vus_max,
        start_lag_ms,
        usage,
        server_cpu_us_per_req,
        drain: None,
        verdict,
    }
}

/// One VU, closed model, for [`DRAIN_PROBE`]: how fast the server answers right now.
fn probe_plan(base: &Plan) -> Plan {
    let mut p = base.clone();
    p.executor = Executor::ConstantVus {
        vus: 1,
        duration: DRAIN_PROBE,
    };
    p.thresholds.clear();
    // A request still queued behind the overload may take long; the drain's own limit bounds
    // the wait, not the plan's 30 s graceful stop.
    p.graceful_stop = p.graceful_stop.min(Duration::from_secs(5));
    p
}

/// Probes until the server answers one VU within [`DRAIN_FACTOR`] of `unloaded_p50_ms`, or
/// [`DRAIN_LIMIT`] passes.
async fn drain<R: StepRunner>(
    runner: &mut R,
    base: &Plan,
    unloaded_p50_ms: f64,
    cancelled: &impl Fn() -> bool,
) -> Result<Drain, LoadError> {
    let started = Instant::now();
    let limit = DRAIN_FACTOR * unloaded_p50_ms + DRAIN_SLACK_MS;
    let probe = probe_plan(base);
    let mut last_p50_ms = f64::NAN;
    // Bounded by DRAIN_LIMIT: each probe lasts DRAIN_PROBE plus at most its graceful stop.
    while started.elapsed() < DRAIN_LIMIT && !cancelled() {
        let (s, _) = runner.run_step(&probe).await?;
        if s.counters.http_reqs > 0 {
            last_p50_ms = s
                .percentile_ms(DEFAULT_SLO_METRIC, 50.0)
                .unwrap_or(f64::NAN);
            if last_p50_ms <= limit {
                return Ok(Drain {
                    seconds: started.elapsed().as_secs_f64(),
                    drained: true,
                    last_p50_ms,
                });
            }
        }
    }
    Ok(Drain {
        seconds: started.elapsed().as_secs_f64(),
        drained: false,
        last_p50_ms,
    })
}

/// The next rate to offer, or `None` when the search is over (with why).
fn next_rate(
    last: u64,
    passed: Option<u64>,
    failed: Option<u64>,
    opts: &CapacityOptions,
) -> Result<u64, Limit> {
    match (passed, failed) {
        // Ramp up: double, up to the max rate.
        (_, None) => {
            if opts.max_rate > 0 && last >= opts.max_rate {
                return Err(Limit::MaxRate);
            }
            let up = last.saturating_mul(2);
            Ok(if opts.max_rate > 0 {
                up.min(opts.max_rate)
            } else {
                up
            })
        }
        // Nothing passed yet: halve (a rate of 1 req/s that fails ends the search).
        (None, Some(f)) => {
            if f <= 1 {
                Err(Limit::Server)
            } else {
                Ok(f / 2)
            }
        }
        (Some(p), Some(f)) => {
            if (f - p) as f64 <= opts.resolution * p as f64 || f - p <= 1 {
                Err(Limit::Server)
            } else {
                Ok(p + (f - p) / 2)
            }
        }
    }
}

/// Runs the search against `base`'s request with `runner`; `cancelled` is polled between
/// steps so an interrupted search returns what it measured (marked partial).
pub async fn search<R: StepRunner>(
    base: &Plan,
    opts: &CapacityOptions,
    runner: &mut R,
    cancelled: impl Fn() -> bool,
) -> Result<Capacity, LoadError> {
    opts.validate()?;
    let mut unloaded = (None, None, None);
    let mut start = opts.start_rate;
    let mut slo = opts.slo.clone();
    // Always measured: besides the start rate and the default SLO, its median is what a
    // server must be back to after a failed step before the next one starts.
    let one_vu_p50_ms;
    {
        let (s, _) = runner.run_step(&calibration_plan(base, opts)).await?;
        if s.statuses.values().sum::<u64>() == 0 {
            let refused = s
                .counters
                .errors
                .get("connect_refused")
                .copied()
                .unwrap_or(0);
            let why = if refused > 0 && refused == s.counters.http_reqs {
                format!("all {refused} connections were refused; is the server running?")
            } else {
                format!(
                    "no answer within {:.1} s ({} requests failed, {} still waiting when the calibration ended); is the server answering?",
                    s.duration_s, s.counters.http_req_failed, s.counters.interrupted_iterations
                )
            };
            return Err(LoadError::NoResponse {
                url: base.request.url.clone(),
                why,
            });
        }
        one_vu_p50_ms = s.percentile_ms(DEFAULT_SLO_METRIC, 50.0).unwrap_or(0.0);
        let one_vu_rate = (s.http_reqs_per_s().floor() as u64).max(1);
        if slo.is_empty() {
            let rate = ((one_vu_rate as f64 * UNLOADED_RATE_SHARE) as u64).max(1);
            let light = step_plan(base, opts, rate, opts.calibration, &[]);
            let (l, _) = runner.run_step(&light).await?;
            let p = |q| l.percentile_ms(DEFAULT_SLO_METRIC, q).unwrap_or(0.0);
            let (p50, p99) = (p(50.0), p(99.0));
            unloaded = (Some(p50), Some(p99), Some(rate));
            // Three significant digits: the limit is printed, and must read as it is applied.
            let limit = significant(DEFAULT_SLO_FACTOR * p99.max(0.001), 3);
            slo.push(Threshold {
                metric: DEFAULT_SLO_METRIC.into(),
                expr: format!("p(99)<{limit}"),
                abort_on_fail: false,
            });
        }
        if start == 0 {
            start = one_vu_rate;
            if opts.max_rate > 0 {
                start = start.min(opts.max_rate);
            }
        }
    }
    let mut out = Capacity {
        passed: None,
        failed: None,
        limit: Limit::Steps,
        unloaded_p50_ms: unloaded.0,
        unloaded_p99_ms: unloaded.1,
        unloaded_rate: unloaded.2,
        slo: slo
            .iter()
            .map(|t| format!("{}: {}", t.metric, t.expr))
            .collect(),
        steps: Vec::new(),
        step_s: opts.step_duration.as_secs_f64(),
        partial: false,
    };
    let mut rate = start;
    for _ in 0..opts.max_steps {
        if cancelled() {
            out.partial = true;
            break;
        }
        let (s, usage) = runner
            .run_step(&step_plan(base, opts, rate, opts.step_duration, &slo))
            .await?;
        if s.partial {
            out.partial = true;
            break;
        }
        let mut step = judge(&s, rate, out.step_s, usage, opts.max_vus);
        let verdict = step.verdict.clone();
        if matches!(verdict, Verdict::Fail { .. }) {
            step.drain = Some(drain(runner, base, one_vu_p50_ms, &cancelled).await?);
        }
        out.steps.push(step);
        match verdict {
            Verdict::Pass => out.passed = Some(out.passed.map_or(rate, |p| p.max(rate))),
            Verdict::Fail { .. } => out.failed = Some(out.failed.map_or(rate, |f| f.min(rate))),
            Verdict::ClientBound { .. } => {
                out.limit = Limit::Client;
                return Ok(out);
            }
        }
        match next_rate(rate, out.passed, out.failed, opts) {
            Ok(r) => rate = r,
            Err(limit) => {
                out.limit = limit;
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// `x` rounded to `digits` significant digits.
fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// A text table of the search, for a terminal.
pub fn render_text(c: &Capacity) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "capacity: {}", c.headline());
    if let (Some(p50), Some(p99), Some(rate)) =
        (c.unloaded_p50_ms, c.unloaded_p99_ms, c.unloaded_rate)
    {
        let _ = writeln!(
            o,
            "unloaded http_req_waiting (at {rate} req/s): p50 {p50:.3} ms, p99 {p99:.3} ms"
        );
    }
    let _ = writeln!(o, "SLO: {}", c.slo.join(", "));
    let _ = writeln!(
        o,
        "{:>9} {:>10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}  verdict",
        "offered",
        "achieved",
        "dropped",
        "wait p50",
        "wait p95",
        "wait p99",
        "lag p50",
        "client",
        "server"
    );
    for s in &c.steps {
        let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.0}%", 100.0 * v));
        let server = s
            .server_cpu_us_per_req
            .map_or("-".into(), |v| format!("{v:.1}µs"));
        let verdict = match &s.verdict {
            Verdict::Pass => "pass".to_string(),
            Verdict::Fail { reasons } => {
                let drained = s.drain.map_or(String::new(), |d| {
                    if d.drained {
                        format!(" (drained in {:.1} s)", d.seconds)
                    } else {
                        format!(
                            " (still slow after {:.0} s: p50 {:.2} ms)",
                            d.seconds, d.last_p50_ms
                        )
                    }
                });
                format!("fail: {}{drained}", reasons.join("; "))
            }
            Verdict::ClientBound { reason } => format!("client-bound: {reason}"),
        };
        let lag = s
            .start_lag_ms
            .map_or("-".into(), |l| format!("{:.3}ms", l.p50));
        let _ = writeln!(
            o,
            "{:>9} {:>10.0} {:>8} {:>8.3}ms {:>8.3}ms {:>8.3}ms {:>10} {:>8} {:>8}  {verdict}",
            s.offered,
            s.achieved,
            s.dropped_iterations,
            s.waiting_ms.p50,
            s.waiting_ms.p95,
            s.waiting_ms.p99,
            lag,
            pct(s.usage.loadgen_cpu),
            server,
        );
    }
    if c.partial {
        let _ = writeln!(o, "(interrupted: partial search)");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> CapacityOptions {
        CapacityOptions {
            start_rate: 100,
            ..CapacityOptions::default()
        }
    }

    #[test]
    fn ramp_doubles_then_bisects_until_the_resolution() {
        let o = opts();
        assert_eq!(next_rate(100, Some(100), None, &o), Ok(200));
        assert_eq!(next_rate(800, Some(400), Some(800), &o), Ok(600));
        assert_eq!(next_rate(600, Some(600), Some(800), &o), Ok(700));
        assert_eq!(next_rate(100, None, Some(100), &o), Ok(50));
        // 20 apart at 400 is within 5%.
        assert_eq!(next_rate(420, Some(400), Some(420), &o), Err(Limit::Server));
        assert_eq!(next_rate(1, None, Some(1), &o), Err(Limit::Server));
    }

    #[test]
    fn the_max_rate_caps_the_ramp_and_ends_it() {
        let o = CapacityOptions {
            max_rate: 300,
            ..opts()
        };
        assert_eq!(next_rate(200, Some(200), None, &o), Ok(300));
        assert_eq!(next_rate(300, Some(300), None, &o), Err(Limit::MaxRate));
    }

    #[test]
    fn headline_never_states_a_bound_as_a_value() {
        let mut c = Capacity {
            passed: Some(4000),
            failed: None,
            limit: Limit::Client,
            unloaded_p50_ms: Some(0.1),
            unloaded_p99_ms: Some(1.0),
            unloaded_rate: Some(100),
            slo: vec![],
            steps: vec![],
            step_s: 3.0,
            partial: false,
        };
        assert_eq!(c.headline(), "≥ 4000 req/s (client-bound)");
        assert_eq!(c.value(), None);
        c.limit = Limit::Server;
        c.failed = Some(4100);
        assert_eq!(c.headline(), "4000 req/s (fails at 4100)");
        assert_eq!(c.value(), Some(4000));
    }

    /// A step's summary: `n` requests whose waiting is `wait`, and `n` starts `lag` late.
    fn step_summary(n: u64, wait: Duration, lag: Duration) -> Summary {
        let mut m = crate::metrics::Metrics::new(0, 0);
        let waiting = crate::registry::TREND_METRICS
            .iter()
            .position(|t| *t == "http_req_waiting")
            .unwrap();
        for _ in 0..n {
            m.counters.http_reqs += 1;
            let _ = m.trends[waiting].record(wait.as_nanos() as u64);
            m.record_start_lag(lag);
        }
        let t = chrono::Utc::now();
        let mut s = Summary::from_metrics(&Plan::default(), &m, t, t, 1.0);
        s.thresholds = vec![crate::summary::ThresholdResult {
            metric: "http_req_waiting".into(),
            expr: "p(99)<1".into(),
            abort_on_fail: false,
            observed: wait.as_secs_f64() * 1e3,
            ok: wait < Duration::from_millis(1),
        }];
        s
    }

    #[test]
    fn a_tail_as_long_as_the_clients_own_delay_is_not_laid_on_the_server() {
        let usage = StepUsage {
            loadgen_cpu: Some(0.5),
            server_cpu_ms: None,
        };
        let ms = Duration::from_millis;
        // The server's queue: a 40 ms waiting tail, the client on time.
        let s = judge(
            &step_summary(1000, ms(40), Duration::from_micros(70)),
            1000,
            1.0,
            usage,
            1000,
        );
        assert!(matches!(s.verdict, Verdict::Fail { .. }), "{s:?}");
        assert!(s.start_lag_ms.unwrap().p99 < 0.1);
        // The same tail while the client's own starts were 30 ms late at p(99) (and on time at
        // the median): the tail may be the client's.
        let mut sm = step_summary(980, ms(40), Duration::from_micros(70));
        sm.merge(&step_summary(20, ms(40), ms(30))).unwrap();
        sm.thresholds = step_summary(1, ms(40), ms(0)).thresholds;
        let s = judge(&sm, 1000, 1.0, usage, 1000);
        match &s.verdict {
            Verdict::ClientBound { reason } => assert!(reason.contains("own delay"), "{reason}"),
            v => panic!("{v:?}"),
        }
        // Half the starts over a millisecond late: the rate was not issued.
        let s = judge(&step_summary(1000, ms(0), ms(3)), 1000, 1.0, usage, 1000);
        match &s.verdict {
            Verdict::ClientBound { reason } => {
                assert!(reason.contains("could not issue the rate"), "{reason}")
            }
            v => panic!("{v:?}"),
        }
        // A passing step stays a pass whatever its tail of lag.
        let s = judge(
            &step_summary(1000, Duration::from_micros(100), Duration::from_micros(400)),
            1000,
            1.0,
            usage,
            1000,
        );
        assert_eq!(s.verdict, Verdict::Pass);
    }

    #[test]
    fn bad_options_are_refused_before_any_traffic() {
        for bad in [
            CapacityOptions {
                resolution: 0.0,
                ..opts()
            },
            CapacityOptions {
                step_duration: Duration::from_millis(10),
                ..opts()
            },
            CapacityOptions {
                max_rate: 50,
                ..opts()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(opts().validate().is_ok());
        assert_eq!(significant(21.456, 3), 21.5);
        assert_eq!(significant(0.01234, 3), 0.0123);
    }
}
