//! Running a plan: per-core load threads, the executor driver, and the collector that merges
//! the threads' per-second metric intervals.
//!
//! Each load thread owns its VUs, their connections, its metrics and (open model) its share of
//! the arrival schedule, so nothing crosses threads per iteration. A thread runs either the
//! io_uring backend ([`crate::uring`], Linux, plain HTTP) or the tokio backend (one
//! current-thread runtime, VUs as local tasks); the summary's `engine` says which and why.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checks::Check;
use crate::client::{Client, ErrorKind, Outcome, RequestCtx, Target, Trace};
use crate::error::LoadError;
use crate::histogram::trend_stats;
use crate::metrics::Metrics;
use crate::ndjson::{Progress, TimePoint};
use crate::plan::{ArrivalSchedule, ConnectionMode, Executor, MixPicker, Plan};
use crate::registry::{T_DURATION, TREND_METRICS};
use crate::summary::{EngineInfo, GaugeSummary, Summary};
use crate::timeline::duration_limits;

/// In-flight iterations get at most this long after a cancellation before they are cut off.
const CANCEL_GRACE: Duration = Duration::from_secs(1);
/// After the hard stop, workers must report within this time or the run returns without them.
const REPORT_GRACE: Duration = Duration::from_secs(5);
/// How often ramping-vus recomputes its VU target.
const RAMP_STEP: Duration = Duration::from_millis(10);

/// The I/O backend of a run's load threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackendKind {
    #[cfg(target_os = "linux")]
    IoUring,
    Tokio,
}

impl BackendKind {
    fn as_str(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            BackendKind::IoUring => "io_uring",
            BackendKind::Tokio => "tokio",
        }
    }
}

/// Environment variable that, set to `0`, keeps every run on the tokio backend.
pub const IO_URING_ENV: &str = "WASMBENCH_IO_URING";

/// io_uring when the plan, the environment and the kernel allow it; else tokio and why.
fn choose_backend(plan: &Plan) -> (BackendKind, Option<String>) {
    let tokio = |why: String| (BackendKind::Tokio, Some(why));
    if plan.backend == crate::plan::Backend::Tokio {
        return tokio("the plan asks for the tokio backend".into());
    }
    if std::env::var(IO_URING_ENV).is_ok_and(|v| v.trim() == "0") {
        return tokio(format!("{IO_URING_ENV}=0"));
    }
    if plan.request.url.starts_with("https:") {
        return tokio("https: TLS runs on the tokio backend".into());
    }
    if !plan.think_time.is_zero() {
        return tokio("think_time runs on the tokio backend".into());
    }
    #[cfg(target_os = "linux")]
    {
        match crate::uring::probe() {
            Ok(()) => (BackendKind::IoUring, None),
            Err(e) => {
                let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                    .ok()
                    .map(|v| v.trim().to_string())
                    .filter(|v| v != "0")
                    .map(|v| format!(" (kernel.io_uring_disabled={v})"))
                    .unwrap_or_default();
                tokio(format!("io_uring refused: {e}{disabled}"))
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    tokio("io_uring is Linux-only".into())
}

/// The CPU each load thread is pinned to: when the process may run on at least as many CPUs
/// as there are load threads, each gets one of its own (and the open model may spin before a
/// start); otherwise none is pinned.
fn thread_cpus(n: usize) -> Vec<Option<usize>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bitmask the kernel fills; its size is passed along.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is this thread; the pointer and size describe `set`.
        let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        if rc == 0 {
            let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                // SAFETY: `c` is below CPU_SETSIZE, the set's capacity.
                .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
                .collect();
            if allowed.len() >= n {
                return allowed.into_iter().take(n).map(Some).collect();
            }
        }
    }
    vec![None; n]
}

/// Pins the calling thread to `cpu` (no-op for `None` or off Linux).
fn pin_current_thread(cpu: Option<usize>) {
    #[cfg(target_os = "linux")]
    if let Some(cpu) = cpu {
        // SAFETY: as in `thread_cpus`; `cpu` came from this process's own affinity mask.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// Options of one run that are not part of the plan.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Cancelling it stops the run early; the summary comes back with `partial: true`.
    pub cancel: CancellationToken,
    /// Receives a [`Progress`] snapshot every second (also the source of the NDJSON series).
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
    /// Before the clock starts, wait up to this long for the target to accept a TCP
    /// connection. A new Kubernetes Service answers on each node only once that node's
    /// kube-proxy has programmed it; without the wait those first refusals would count as
    /// failed requests of the service.
    pub wait_ready: Option<Duration>,
}

/// Waits until `addr` accepts a TCP connection, at most `limit`.
async fn wait_reachable(addr: std::net::SocketAddr, limit: Duration) -> Result<(), LoadError> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(
            left.min(Duration::from_secs(1)),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        match attempt {
            Ok(Ok(_)) => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(LoadError::Unreachable {
                    addr: addr.to_string(),
                    waited: limit,
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Immutable state every VU reads.
pub(crate) struct Shared {
    /// The requests an iteration may send: the mix's in order, or the plan's one request.
    pub(crate) reqs: Vec<RequestCtx>,
    pub(crate) mix_weights: Vec<u32>,
    pub(crate) checks: Vec<Check>,
    /// Limits of the plan's duration checks, ms, for the over-limit counts of the tail.
    pub(crate) duration_limits_ms: Vec<f64>,
    pub(crate) keep_body: bool,
    pub(crate) plan: Plan,
    pub(crate) start: Instant,
    pub(crate) stop_new: CancellationToken,
    pub(crate) hard_stop: CancellationToken,
}

/// One load thread's metrics of one second (or its last, partial interval).
pub(crate) struct Report {
    pub(crate) second: u64,
    pub(crate) metrics: Metrics,
    pub(crate) last: bool,
}

/// What one load thread drives.
pub(crate) enum Mode {
    /// Closed model: VUs `ids` run back to back while their id is below the active count.
    Closed {
        ids: Vec<u64>,
        /// Active VU count for the tokio backend (wakes parked VUs).
        active: watch::Receiver<u64>,
        /// The same count for the io_uring backend (read every few milliseconds).
        active_n: Arc<AtomicU64>,
    },
    /// Open model: this thread starts arrivals `k ≡ index (mod threads)` of `sched`.
    Open {
        /// VUs allocated before the start.
        initial: u64,
        /// Most VUs this thread may allocate.
        max_vus: u64,
        sched: ArrivalSchedule,
        /// This thread's index and the number of load threads.
        index: u64,
        threads: u64,
        /// Idle VUs of this thread (read by the collector for the `vus` gauge).
        free: Arc<AtomicU64>,
        /// VUs allocated by all threads.
        allocated: Arc<AtomicU64>,
        /// Iterations dropped by all threads (no VU left).
        dropped: Arc<AtomicU64>,
    },
}

/// How long a pinned thread sleeps instead of spinning after it was preempted: when another
/// process shares its CPU, a spinning thread gets a time slice and then waits a whole one,
/// while a sleeping one is woken at once.
pub(crate) const SPIN_BACKOFF: Duration = Duration::from_secs(1);
/// How often a pinned open-model thread looks whether it was preempted.
const PREEMPTION_CHECK: Duration = Duration::from_millis(5);

/// Involuntary context switches of the calling thread so far (0 where unknown).
pub(crate) fn involuntary_switches() -> i64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: all-zero is a valid rusage, which getrusage fills.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_THREAD with a pointer to a live rusage.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } == 0 {
            return u.ru_nivcsw;
        }
    }
    0
}

/// CPU time (user + system, microseconds) the calling thread has used so far (`None` where
/// unknown).
fn thread_cpu_us() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: all-zero is a valid rusage, which getrusage fills.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_THREAD with a pointer to a live rusage.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } == 0 {
            let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
            return Some(us(u.ru_utime) + us(u.ru_stime));
        }
    }
    None
}

/// Spin rather than sleep for this last stretch before an open-model start, when the load
/// thread has a CPU to itself: a parked thread often wakes a millisecond late on a VM.
pub(crate) const SPIN_BEFORE_DUE: Duration = Duration::from_micros(300);

/// Joins the load threads, each of which has sent its last report, and sums the CPU time they
/// used. A thread that has not ended after a short, bounded wait is left running (it was cut
/// off by the hard stop and exits on its own), and the sum is then unknown.
async fn join_workers(threads: Vec<std::thread::JoinHandle<Option<u64>>>) -> Option<u64> {
    const JOIN_WAIT: Duration = Duration::from_millis(200);
    let deadline = Instant::now() + JOIN_WAIT;
    while !threads.iter().all(|t| t.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut sum = Some(0u64);
    for t in threads {
        let cpu = if t.is_finished() {
            t.join().ok().flatten()
        } else {
            None
        };
        sum = sum.zip(cpu).map(|(a, b)| a + b);
    }
    sum
}

/// Runs one iteration; false when it was cut off by the hard stop.
async fn iteration(
    sh: &Shared,
    client: &mut Client,
    metrics: &RefCell<Metrics>,
    picker: &RefCell<MixPicker>,
    intended: Option<Instant>,
) -> bool {
    let start = intended.unwrap_or_else(Instant::now);
    let pick = picker.borrow_mut().next();
    let ctx = &sh.reqs[pick.min(sh.reqs.len() - 1)];
    let work = async {
        let mut trace = Trace::default();
        let mut out = Outcome::default();
        let res =
            tokio::time::timeout(sh.plan.timeout, client.request(ctx, &mut trace, &mut out)).await;
        let error = match res {
            Ok(Ok(())) => None,
            Ok(Err(k)) => Some(k),
            Err(_) => Some(ErrorKind::Timeout),
        };
        if error.is_some() {
            client.drop_connection();
            out.status = 0;
        }
        let done = trace.done.unwrap_or_else(Instant::now);
        let phases = trace.phases(done);
        let expected = error.is_none() && sh.plan.is_expected_status(out.status);
        {
            let mut m = metrics.borrow_mut();
            m.record_request(&phases, &out, error, expected, pick);
            let began = trace.get_conn.unwrap_or(done);
            m.timeline.record(
                began.saturating_duration_since(sh.start),
                phases.duration,
                error.is_none(),
                &sh.duration_limits_ms,
            );
            let ms = phases.duration.as_secs_f64() * 1e3;
            for (i, c) in sh.checks.iter().enumerate() {
                if c.eval(out.status, ms, &client.body) {
                    m.checks[i].0 += 1;
                } else {
                    m.checks[i].1 += 1;
                }
            }
        }
        if !sh.plan.think_time.is_zero() {
            tokio::time::sleep(sh.plan.think_time).await;
        }
        metrics.borrow_mut().record_iteration(start.elapsed());
    };
    let finished = tokio::select! {
        biased;
        _ = sh.hard_stop.cancelled() => false,
        _ = work => true,
    };
    if !finished {
        client.drop_connection();
        metrics.borrow_mut().counters.interrupted_iterations += 1;
    }
    finished
}

async fn closed_vu(
    id: u64,
    sh: Arc<Shared>,
    metrics: Rc<RefCell<Metrics>>,
    picker: Rc<RefCell<MixPicker>>,
    mut active: watch::Receiver<u64>,
) {
    let mut client = Client::new(sh.keep_body);
    let mut started = false;
    let mut completed = 0u64;
    while !sh.stop_new.is_cancelled() {
        if id >= *active.borrow_and_update() {
            tokio::select! {
                r = active.changed() => if r.is_err() { break },
                _ = sh.stop_new.cancelled() => break,
            }
            continue;
        }
        started = true;
        if !iteration(&sh, &mut client, &metrics, &picker, None).await {
            break;
        }
        completed += 1;
    }
    // Counted by the VU itself, so nothing is shared per request.
    metrics.borrow_mut().timeline.vu_done(id, completed);
    // A VU the executor wanted running that never began an iteration (its thread did not get
    // to it before the end): counted, so a run with too many VUs for its threads says so.
    if !started && id < *active.borrow() {
        metrics.borrow_mut().counters.vus_not_started += 1;
    }
}

#[derive(Default)]
struct VuSlot {
    next: Cell<Option<Instant>>,
    wake: Notify,
}

/// How late an open-model iteration may start after its scheduled time before it counts as
/// late ([`crate::summary::CounterSummary::late_iterations`]).
pub const LATE_START: Duration = Duration::from_millis(1);

async fn open_vu(
    slot: Rc<VuSlot>,
    sh: Arc<Shared>,
    metrics: Rc<RefCell<Metrics>>,
    picker: Rc<RefCell<MixPicker>>,
    idle: Rc<RefCell<Vec<Rc<VuSlot>>>>,
    free: Arc<AtomicU64>,
) {
    let mut client = Client::new(sh.keep_body);
    // Bounded: every pass either runs an iteration handed out by the driver or waits.
    loop {
        let Some(t) = slot.next.take() else {
            tokio::select! {
                biased;
                _ = slot.wake.notified() => continue,
                _ = sh.stop_new.cancelled() => break,
            }
        };
        // How late the start is says whether this thread kept up with the schedule; its
        // figures then include the client's own queueing.
        metrics.borrow_mut().record_start_lag(t.elapsed());
        if !iteration(&sh, &mut client, &metrics, &picker, Some(t)).await
            || sh.stop_new.is_cancelled()
        {
            break;
        }
        // Push before publishing the free slot, so the dispatcher always finds one.
        idle.borrow_mut().push(slot.clone());
        free.fetch_add(1, Ordering::Release);
    }
}

/// Waits until `due`: the tokio timer up to [`SPIN_BEFORE_DUE`] before it, then (when the thread
/// has a CPU to itself) yields in a loop, letting the VUs' I/O run, until the time has come.
/// False when `stop` was cancelled before `due`.
async fn wait_until(due: Instant, pinned: bool, stop: &CancellationToken) -> bool {
    let margin = if pinned {
        SPIN_BEFORE_DUE
    } else {
        Duration::ZERO
    };
    if let Some(sleep_to) = due.checked_sub(margin)
        && sleep_to > Instant::now()
    {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep_until(sleep_to.into()) => {}
        }
    }
    // Bounded by `due`: each pass yields once.
    while Instant::now() < due {
        if stop.is_cancelled() {
            return false;
        }
        tokio::task::yield_now().await;
    }
    // Due before the stop was seen: it still starts.
    true
}

async fn worker_main(
    sh: Arc<Shared>,
    worker: usize,
    pinned: bool,
    mode: Mode,
    tx: mpsc::UnboundedSender<Report>,
) {
    let metrics = Rc::new(RefCell::new(Metrics::new(
        sh.checks.len(),
        sh.mix_weights.len(),
    )));
    // One picker per worker: exact proportions without a lock; workers start at different
    // points of the sequence.
    let picker = Rc::new(RefCell::new(MixPicker::new(&sh.mix_weights, worker)));
    let ticker = {
        let (metrics, tx, start) = (metrics.clone(), tx.clone(), sh.start);
        tokio::task::spawn_local(async move {
            let mut iv = tokio::time::interval_at(
                (start + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            let mut second = 0;
            loop {
                iv.tick().await;
                second += 1;
                let m = metrics.borrow_mut().take();
                if tx
                    .send(Report {
                        second,
                        metrics: m,
                        last: false,
                    })
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let mut vus = JoinSet::new();
    match mode {
        Mode::Closed { ids, active, .. } => {
            for id in ids {
                vus.spawn_local(closed_vu(
                    id,
                    sh.clone(),
                    metrics.clone(),
                    picker.clone(),
                    active.clone(),
                ));
            }
        }
        Mode::Open {
            initial,
            max_vus,
            sched,
            index,
            threads,
            free,
            allocated,
            dropped,
        } => {
            let idle: Rc<RefCell<Vec<Rc<VuSlot>>>> = Rc::new(RefCell::new(Vec::new()));
            let spawn = |vus: &mut JoinSet<()>, first: Option<Instant>| {
                let slot = Rc::new(VuSlot::default());
                slot.next.set(first);
                if first.is_none() {
                    idle.borrow_mut().push(slot.clone());
                }
                vus.spawn_local(open_vu(
                    slot,
                    sh.clone(),
                    metrics.clone(),
                    picker.clone(),
                    idle.clone(),
                    free.clone(),
                ));
            };
            for _ in 0..initial {
                spawn(&mut vus, None);
            }
            let mut local_vus = initial;
            let mut k = index;
            let mut preempted = involuntary_switches();
            let mut spin_from = sh.start;
            let mut next_check = sh.start;
            // This thread's own share of the schedule: no hand-off to another thread.
            // Bounded: each pass consumes one arrival of a finite schedule, or stops.
            while let Some(offset) = sched.time_of(k) {
                let due = sh.start + offset;
                let now = Instant::now();
                if pinned && now >= next_check {
                    next_check = now + PREEMPTION_CHECK;
                    let n = involuntary_switches();
                    if n > preempted {
                        spin_from = now + SPIN_BACKOFF;
                    }
                    preempted = n;
                }
                if !wait_until(due, pinned && now >= spin_from, &sh.stop_new).await {
                    break;
                }
                let slot = idle.borrow_mut().pop();
                match slot {
                    Some(slot) => {
                        free.fetch_sub(1, Ordering::Relaxed);
                        slot.next.set(Some(due));
                        slot.wake.notify_one();
                    }
                    None if local_vus < max_vus => {
                        local_vus += 1;
                        allocated.fetch_add(1, Ordering::Relaxed);
                        spawn(&mut vus, Some(due));
                    }
                    None => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                k += threads;
            }
        }
    }
    while vus.join_next().await.is_some() {}
    ticker.abort();
    let m = metrics.borrow_mut().take();
    let _ = tx.send(Report {
        second: u64::MAX,
        metrics: m,
        last: true,
    });
}

/// The executor side: decides how many VUs are active (closed model) or when iterations start
/// (open model). Returns when the executor's duration is over or `stop_new` is cancelled.
struct Driver {
    exec: Executor,
    start: Instant,
    stop_new: CancellationToken,
    active: watch::Sender<u64>,
    active_n: Arc<AtomicU64>,
}

impl Driver {
    async fn run(self) {
        let end = self.start + self.exec.duration();
        match &self.exec {
            Executor::ConstantVus { vus, .. } => {
                self.active_n.store(*vus, Ordering::Relaxed);
                self.active.send_replace(*vus);
                tokio::select! {
                    _ = tokio::time::sleep_until(end.into()) => {},
                    _ = self.stop_new.cancelled() => {},
                }
            }
            Executor::RampingVus { start_vus, stages } => {
                let target_at = |t: Duration| -> u64 {
                    let mut from = *start_vus as f64;
                    let mut t0 = Duration::ZERO;
                    for s in stages {
                        if t < t0 + s.duration {
                            let f = (t - t0).as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
                            return (from + (s.target as f64 - from) * f).round() as u64;
                        }
                        t0 += s.duration;
                        from = s.target as f64;
                    }
                    from as u64
                };
                let mut next = self.start;
                while next < end && !self.stop_new.is_cancelled() {
                    let v = target_at(next - self.start);
                    self.active_n.store(v, Ordering::Relaxed);
                    self.active.send_if_modified(|cur| {
                        let changed = *cur != v;
                        *cur = v;
                        changed
                    });
                    next += RAMP_STEP;
                    tokio::select! {
                        _ = tokio::time::sleep_until(next.into()) => {},
                        _ = self.stop_new.cancelled() => {},
                    }
                }
            }
            // Open model: the load threads keep the schedule themselves.
            _ => {
                tokio::select! {
                    _ = tokio::time::sleep_until(end.into()) => {},
                    _ = self.stop_new.cancelled() => {},
                }
            }
        }
    }
}

fn point(t_s: u64, m: &Metrics, dropped: u64, vus: u64, vus_max: u64) -> TimePoint {
    let stats = |name: &str| {
        TREND_METRICS
            .iter()
            .position(|n| *n == name)
            .and_then(|i| m.trends.get(i))
            .map(trend_stats)
            .unwrap_or_default()
    };
    let c = &m.counters;
    TimePoint {
        t_s,
        time: Utc::now(),
        http_reqs: c.http_reqs,
        http_req_failed: c.http_req_failed,
        errors: c.errors.iter().sum(),
        iterations: c.iterations,
        dropped_iterations: dropped,
        data_sent_bytes: c.data_sent,
        data_received_bytes: c.data_received,
        vus,
        vus_max,
        http_req_duration: stats(TREND_METRICS[T_DURATION]),
        http_req_waiting: stats("http_req_waiting"),
        http_req_blocked: stats("http_req_blocked"),
    }
}

/// Runs `plan` to completion (or cancellation) and returns its summary.
///
/// Failed requests are measured, not errors; `Err` means the plan could not be run at all
/// (invalid plan, unresolvable host, TLS setup, no worker thread). The run never lasts longer
/// than the executor's duration + `graceful_stop` (+ a few seconds of reporting grace), and a
/// cancellation cuts in-flight iterations off after at most one second.
pub async fn run(plan: &Plan, opts: RunOptions) -> Result<Summary, LoadError> {
    plan.validate()?;
    let (target, bytes) = Target::prepare(plan).await?;
    if let Some(limit) = opts.wait_ready {
        wait_reachable(target.addr, limit).await?;
    }
    let target_addr = target.addr.to_string();
    let exec = plan.executor.clone();
    let max_vus = exec.max_vus();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n_workers = if plan.workers > 0 { plan.workers } else { cpus }
        .min(usize::try_from(max_vus).unwrap_or(usize::MAX))
        .max(1);
    let (backend, fallback_reason) = choose_backend(plan);
    let cpus_of_threads = thread_cpus(n_workers);
    let engine_info = EngineInfo {
        backend: backend.as_str().to_string(),
        fallback_reason,
        pinned: cpus_of_threads.iter().all(Option::is_some),
        worker_cpu_us: None,
    };

    let started = Utc::now();
    let start = Instant::now();
    let sh = Arc::new(Shared {
        reqs: bytes
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| RequestCtx {
                target: target.clone(),
                bytes,
                keep_alive: plan.connection_mode == ConnectionMode::KeepAlive,
                is_head: plan.mix.get(i).map_or(&plan.request.method, |r| &r.method) == "HEAD",
            })
            .collect(),
        mix_weights: plan.mix.iter().map(|r| r.weight).collect(),
        keep_body: plan.checks.iter().any(Check::needs_body),
        checks: plan.checks.clone(),
        duration_limits_ms: duration_limits(plan).map(|(_, ms)| ms).collect(),
        plan: plan.clone(),
        start,
        stop_new: CancellationToken::new(),
        hard_stop: CancellationToken::new(),
    });

    let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
    let initial_active = match &exec {
        Executor::RampingVus { start_vus, .. } => *start_vus,
        _ => 0,
    };
    let (active_tx, active_rx) = watch::channel(initial_active);
    let active_n = Arc::new(AtomicU64::new(match &exec {
        Executor::ConstantVus { vus, .. } => *vus,
        _ => initial_active,
    }));
    let allocated = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut free = Vec::new();
    let mut threads = Vec::new();
    let sched = ArrivalSchedule::new(&exec);
    let share_of = |total: u64, w: usize| {
        total / n_workers as u64 + u64::from((w as u64) < total % n_workers as u64)
    };
    for (w, cpu) in cpus_of_threads.iter().copied().enumerate() {
        let mode = match &sched {
            Some(sched) => {
                let pre = match &exec {
                    Executor::ConstantArrivalRate {
                        pre_allocated_vus, ..
                    }
                    | Executor::RampingArrivalRate {
                        pre_allocated_vus, ..
                    } => *pre_allocated_vus,
                    _ => 0,
                };
                let share = share_of(pre, w);
                allocated.fetch_add(share, Ordering::Relaxed);
                let f = Arc::new(AtomicU64::new(share));
                free.push(f.clone());
                Mode::Open {
                    initial: share,
                    max_vus: share_of(max_vus, w).max(share),
                    sched: sched.clone(),
                    index: w as u64,
                    threads: n_workers as u64,
                    free: f,
                    allocated: allocated.clone(),
                    dropped: dropped.clone(),
                }
            }
            None => {
                let ids: Vec<u64> = (0..max_vus)
                    .filter(|i| i % n_workers as u64 == w as u64)
                    .collect();
                allocated.fetch_add(ids.len() as u64, Ordering::Relaxed);
                Mode::Closed {
                    ids,
                    active: active_rx.clone(),
                    active_n: active_n.clone(),
                }
            }
        };
        let (sh2, tx) = (sh.clone(), tx.clone());
        let pinned = cpu.is_some();
        let th = match backend {
            #[cfg(target_os = "linux")]
            BackendKind::IoUring => std::thread::Builder::new()
                .name(format!("load-uring-{w}"))
                .spawn(move || {
                    pin_current_thread(cpu);
                    crate::uring::worker(&sh2, w, pinned, mode, &tx);
                    thread_cpu_us()
                }),
            BackendKind::Tokio => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(LoadError::Worker)?;
                std::thread::Builder::new()
                    .name(format!("load-worker-{w}"))
                    .spawn(move || {
                        pin_current_thread(cpu);
                        let local = tokio::task::LocalSet::new();
                        local.block_on(&rt, worker_main(sh2, w, pinned, mode, tx));
                        thread_cpu_us()
                    })
            }
        };
        match th {
            Ok(t) => threads.push(t),
            Err(e) => {
                sh.stop_new.cancel();
                sh.hard_stop.cancel();
                return Err(LoadError::Worker(e));
            }
        }
    }
    drop(tx);
    drop(active_rx);

    let is_open = exec.is_open_model();
    let driver = Driver {
        exec: exec.clone(),
        start,
        stop_new: sh.stop_new.clone(),
        active: active_tx,
        active_n,
    };
    let active_view = driver.active.subscribe();
    let driver = driver.run();
    tokio::pin!(driver);

    let current_vus = || -> u64 {
        if is_open {
            let f: u64 = free.iter().map(|f| f.load(Ordering::Relaxed)).sum();
            allocated.load(Ordering::Relaxed).saturating_sub(f)
        } else {
            *active_view.borrow()
        }
    };
    let abort_thresholds: Vec<_> = plan
        .thresholds
        .iter()
        .filter(|t| t.abort_on_fail)
        .cloned()
        .collect();

    let mut total = Metrics::new(plan.checks.len(), plan.mix.len());
    let mut pending: std::collections::BTreeMap<u64, (Metrics, usize)> = Default::default();
    let mut vus_g = GaugeSummary::default();
    let mut vus_max_g = GaugeSummary::default();
    vus_max_g.observe(allocated.load(Ordering::Relaxed), true);
    vus_g.observe(current_vus(), true);
    let mut last_dropped = 0u64;
    let mut finished = 0usize;
    let mut driver_done = false;
    let mut partial = false;
    let mut aborted = false;
    let mut hard_at: Option<Instant> = None;
    let mut give_up_at: Option<Instant> = None;
    let planned = exec.duration();
    let mut emitted_second = 0u64;

    let emit = |second: u64,
                m: &Metrics,
                total: &Metrics,
                vus_g: &mut GaugeSummary,
                vus_max_g: &mut GaugeSummary,
                last_dropped: &mut u64|
     -> TimePoint {
        let d = dropped.load(Ordering::Relaxed);
        let (v, vm) = (current_vus(), allocated.load(Ordering::Relaxed));
        vus_g.observe(v, false);
        vus_max_g.observe(vm, false);
        let p = point(second, m, d - *last_dropped, v, vm);
        *last_dropped = d;
        if let Some(tx) = &opts.progress {
            let _ = tx.send(Progress {
                elapsed: start.elapsed(),
                planned,
                requests: total.counters.http_reqs,
                failed: total.counters.http_req_failed,
                errors: total.counters.errors.iter().sum(),
                vus: v,
                point: p.clone(),
            });
        }
        p
    };

    // Bounded: every wake-up either consumes a report, or advances a one-way state
    // (driver done, cancel, hard stop, give-up), and give-up ends the loop.
    loop {
        tokio::select! {
            _ = &mut driver, if !driver_done => {
                driver_done = true;
                sh.stop_new.cancel();
                let t = Instant::now() + plan.graceful_stop;
                hard_at = Some(hard_at.map_or(t, |h| h.min(t)));
            }
            _ = opts.cancel.cancelled(), if !partial => {
                partial = true;
                sh.stop_new.cancel();
                let t = Instant::now() + CANCEL_GRACE.min(plan.graceful_stop);
                hard_at = Some(hard_at.map_or(t, |h| h.min(t)));
            }
            _ = tokio::time::sleep_until(hard_at.unwrap_or(start).into()), if hard_at.is_some() && give_up_at.is_none() => {
                sh.hard_stop.cancel();
                give_up_at = Some(Instant::now() + REPORT_GRACE);
            }
            _ = tokio::time::sleep_until(give_up_at.unwrap_or(start).into()), if give_up_at.is_some() => {
                partial = true;
                break;
            }
            r = rx.recv() => {
                let Some(r) = r else { break };
                total.add(&r.metrics);
                if r.last {
                    finished += 1;
                    let e = pending.entry(u64::MAX).or_insert_with(|| (Metrics::new(plan.checks.len(), plan.mix.len()), 0));
                    e.0.add(&r.metrics);
                    if finished == n_workers { break; }
                    continue;
                }
                let e = pending.entry(r.second).or_insert_with(|| (Metrics::new(plan.checks.len(), plan.mix.len()), 0));
                e.0.add(&r.metrics);
                e.1 += 1;
                if e.1 == n_workers - finished
                    && let Some((m, _)) = pending.remove(&r.second)
                {
                        emitted_second = emitted_second.max(r.second);
                        emit(r.second, &m, &total, &mut vus_g, &mut vus_max_g, &mut last_dropped);
                        if !abort_thresholds.is_empty() && !aborted {
                            let mut s = Summary::from_metrics(plan, &total, started, Utc::now(), start.elapsed().as_secs_f64());
                            s.vus = vus_g;
                            s.vus_max = vus_max_g;
                            if s.evaluate(&abort_thresholds)?.iter().any(|t| !t.ok) {
                                aborted = true;
                                sh.stop_new.cancel();
                                let t = Instant::now() + CANCEL_GRACE.min(plan.graceful_stop);
                                hard_at = Some(hard_at.map_or(t, |h| h.min(t)));
                            }
                        }
                }
            }
        }
    }
    sh.stop_new.cancel();
    sh.hard_stop.cancel();
    // Flush the seconds not every worker reported, then the final partial second.
    let rest: Vec<(u64, (Metrics, usize))> = std::mem::take(&mut pending).into_iter().collect();
    let mut merged_tail = Metrics::new(plan.checks.len(), plan.mix.len());
    let mut any_tail = false;
    for (sec, (m, _)) in rest {
        if sec == u64::MAX {
            merged_tail.add(&m);
            any_tail = true;
        } else {
            emitted_second = emitted_second.max(sec);
            emit(
                sec,
                &m,
                &total,
                &mut vus_g,
                &mut vus_max_g,
                &mut last_dropped,
            );
        }
    }
    if any_tail && (merged_tail.counters.http_reqs > 0 || merged_tail.counters.iterations > 0) {
        emit(
            emitted_second + 1,
            &merged_tail,
            &total,
            &mut vus_g,
            &mut vus_max_g,
            &mut last_dropped,
        );
    }
    let worker_cpu_us = join_workers(threads).await;
    total.counters.dropped_iterations += dropped.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let mut s = Summary::from_metrics(plan, &total, started, Utc::now(), elapsed);
    s.target = target_addr;
    s.partial = partial || aborted;
    s.aborted_by_threshold = aborted;
    s.workers = n_workers as u64;
    s.engine = Some(EngineInfo {
        worker_cpu_us,
        ..engine_info
    });
    vus_g.value = 0;
    s.vus = vus_g;
    vus_max_g.value = allocated.load(Ordering::Relaxed);
    vus_max_g.max = vus_max_g.max.max(vus_max_g.value);
    s.vus_max = vus_max_g;
    s.thresholds = s.evaluate(&plan.thresholds)?;
    Ok(s)
}
