//! Running a plan: worker threads (one current-thread runtime each, VUs as local tasks sharing
//! the worker's metrics without locks), the executor driver, and the collector that merges the
//! workers' per-second metric intervals.

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
use crate::summary::{GaugeSummary, Summary};

/// In-flight iterations get at most this long after a cancellation before they are cut off.
const CANCEL_GRACE: Duration = Duration::from_secs(1);
/// After the hard stop, workers must report within this time or the run returns without them.
const REPORT_GRACE: Duration = Duration::from_secs(5);
/// How often ramping-vus recomputes its VU target.
const RAMP_STEP: Duration = Duration::from_millis(10);

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
struct Shared {
    /// The requests an iteration may send: the mix's in order, or the plan's one request.
    reqs: Vec<RequestCtx>,
    mix_weights: Vec<u32>,
    checks: Vec<Check>,
    keep_body: bool,
    plan: Plan,
    start: Instant,
    stop_new: CancellationToken,
    hard_stop: CancellationToken,
}

enum Cmd {
    /// Start an iteration on an idle VU (the driver reserved it through `free`).
    Start(Instant),
    /// Create a VU and start this iteration on it.
    Spawn(Instant),
}

struct Report {
    second: u64,
    metrics: Metrics,
    last: bool,
}

enum Mode {
    Closed {
        ids: Vec<u64>,
        active: watch::Receiver<u64>,
    },
    Open {
        initial: u64,
        cmds: mpsc::UnboundedReceiver<Cmd>,
        free: Arc<AtomicU64>,
    },
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
    while !sh.stop_new.is_cancelled() {
        if id >= *active.borrow_and_update() {
            tokio::select! {
                r = active.changed() => if r.is_err() { break },
                _ = sh.stop_new.cancelled() => break,
            }
            continue;
        }
        if !iteration(&sh, &mut client, &metrics, &picker, None).await {
            break;
        }
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
        // How late the start is says whether this process kept up with the schedule; its
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

async fn worker_main(
    sh: Arc<Shared>,
    worker: usize,
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
        Mode::Closed { ids, active } => {
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
            mut cmds,
            free,
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
            loop {
                // Iterations the driver scheduled before the stop are still started.
                let cmd = tokio::select! {
                    biased;
                    c = cmds.recv() => c,
                    _ = sh.stop_new.cancelled() => cmds.try_recv().ok(),
                };
                match cmd {
                    None => break,
                    Some(Cmd::Start(t)) => {
                        let slot = idle.borrow_mut().pop();
                        match slot {
                            Some(slot) => {
                                slot.next.set(Some(t));
                                slot.wake.notify_one();
                            }
                            // The driver reserves a free VU before sending; count rather than lose.
                            None => metrics.borrow_mut().counters.dropped_iterations += 1,
                        }
                    }
                    Some(Cmd::Spawn(t)) => spawn(&mut vus, Some(t)),
                }
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
    cmd_tx: Vec<mpsc::UnboundedSender<Cmd>>,
    free: Vec<Arc<AtomicU64>>,
    allocated: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

impl Driver {
    async fn run(self) {
        let end = self.start + self.exec.duration();
        match &self.exec {
            Executor::ConstantVus { vus, .. } => {
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
            exec => {
                let Some(sched) = ArrivalSchedule::new(exec) else {
                    return;
                };
                // A dedicated thread with `thread::sleep` wakes within tens of microseconds of
                // each start time; tokio's timer rounds up to whole milliseconds, which would
                // show up in every open-model iteration_duration.
                let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                let max_vus = exec.max_vus();
                let Driver {
                    start,
                    stop_new,
                    cmd_tx,
                    free,
                    allocated,
                    dropped,
                    ..
                } = self;
                let spawned = std::thread::Builder::new()
                    .name("load-scheduler".into())
                    .spawn(move || {
                        schedule(
                            &sched, start, &stop_new, &cmd_tx, &free, &allocated, &dropped,
                            max_vus, end,
                        );
                        let _ = done_tx.send(());
                    });
                if spawned.is_ok() {
                    let _ = done_rx.await;
                }
            }
        }
    }
}

/// Sleeps until `due` or until `stop` is cancelled (checked at least every 50 ms); false when
/// cancelled.
fn sleep_until_std(due: Instant, stop: &CancellationToken) -> bool {
    // Bounded: each pass sleeps up to 50 ms towards a fixed deadline.
    loop {
        if stop.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(50)));
    }
}

/// The open-model scheduler: starts iteration k at `start + time_of(k)` on a free VU, creates
/// a VU (up to `max_vus`) when none is free, and counts a dropped iteration otherwise.
#[allow(clippy::too_many_arguments)]
fn schedule(
    sched: &ArrivalSchedule,
    start: Instant,
    stop: &CancellationToken,
    cmd_tx: &[mpsc::UnboundedSender<Cmd>],
    free: &[Arc<AtomicU64>],
    allocated: &AtomicU64,
    dropped: &AtomicU64,
    max_vus: u64,
    end: Instant,
) {
    let n = cmd_tx.len();
    let mut rr = 0usize;
    let mut k: u64 = 0;
    // Each pass starts one iteration, at its *intended* time (after a late wake-up the
    // following ones are due at once and catch up), so the rate holds.
    while let Some(offset) = sched.time_of(k) {
        let due = start + offset;
        if !sleep_until_std(due, stop) {
            return;
        }
        let mut sent = false;
        for i in 0..n {
            let w = (rr + i) % n;
            if free[w].load(Ordering::Acquire) > 0 {
                free[w].fetch_sub(1, Ordering::AcqRel);
                sent = cmd_tx[w].send(Cmd::Start(due)).is_ok();
                rr = w + 1;
                break;
            }
        }
        if !sent {
            if allocated.load(Ordering::Relaxed) < max_vus {
                let w = rr % n;
                rr += 1;
                allocated.fetch_add(1, Ordering::Relaxed);
                let _ = cmd_tx[w].send(Cmd::Spawn(due));
            } else {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        k += 1;
    }
    sleep_until_std(end, stop);
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
    let allocated = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut cmd_tx = Vec::new();
    let mut free = Vec::new();
    let mut threads = Vec::new();
    for w in 0..n_workers {
        let mode = if exec.is_open_model() {
            let pre = match &exec {
                Executor::ConstantArrivalRate {
                    pre_allocated_vus, ..
                }
                | Executor::RampingArrivalRate {
                    pre_allocated_vus, ..
                } => *pre_allocated_vus,
                _ => 0,
            };
            let share = pre / n_workers as u64 + u64::from((w as u64) < pre % n_workers as u64);
            allocated.fetch_add(share, Ordering::Relaxed);
            let f = Arc::new(AtomicU64::new(share));
            free.push(f.clone());
            let (ctx, crx) = mpsc::unbounded_channel();
            cmd_tx.push(ctx);
            Mode::Open {
                initial: share,
                cmds: crx,
                free: f,
            }
        } else {
            allocated.fetch_add(
                (0..max_vus)
                    .filter(|i| i % n_workers as u64 == w as u64)
                    .count() as u64,
                Ordering::Relaxed,
            );
            Mode::Closed {
                ids: (0..max_vus)
                    .filter(|i| i % n_workers as u64 == w as u64)
                    .collect(),
                active: active_rx.clone(),
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LoadError::Worker)?;
        let (sh2, tx) = (sh.clone(), tx.clone());
        let th = std::thread::Builder::new()
            .name(format!("load-worker-{w}"))
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, worker_main(sh2, w, mode, tx));
            });
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
        cmd_tx,
        free: free.clone(),
        allocated: allocated.clone(),
        dropped: dropped.clone(),
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
    for t in threads {
        if t.is_finished() {
            let _ = t.join();
        }
    }
    total.counters.dropped_iterations += dropped.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let mut s = Summary::from_metrics(plan, &total, started, Utc::now(), elapsed);
    s.target = target_addr;
    s.partial = partial || aborted;
    s.aborted_by_threshold = aborted;
    s.workers = n_workers as u64;
    vus_g.value = 0;
    s.vus = vus_g;
    vus_max_g.value = allocated.load(Ordering::Relaxed);
    vus_max_g.max = vus_max_g.max.max(vus_max_g.value);
    s.vus_max = vus_max_g;
    s.thresholds = s.evaluate(&plan.thresholds)?;
    Ok(s)
}
