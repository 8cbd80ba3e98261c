//! The io_uring backend: one load thread drives all its VUs' connections from one ring.
//!
//! Every VU is a small state machine; an iteration pushes its socket operations (connect,
//! then send and receive together) as submission entries, and one `io_uring_enter` submits
//! the entries of every VU that became ready and reaps whatever completed, like wrk's and
//! h2load's event loops, without a task, waker or channel per request. Responses are parsed by
//! the same [`ResponseParser`] as the tokio client, and the k6 tracer timestamps are taken at
//! the same points: `got_conn` when the connection is at hand, `wrote_request` when the send
//! completes, `first_byte` when the first read of the head returns, `done` when the parser
//! completes the response.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};
use tokio::sync::mpsc::UnboundedSender;

use crate::client::{ErrorKind, Outcome, Parsed, ReadErr, RecvBuf, ResponseParser, Trace};
use crate::engine::{Mode, Report, SPIN_BACKOFF, SPIN_BEFORE_DUE, Shared, involuntary_switches};
use crate::metrics::Metrics;
use crate::plan::MixPicker;

/// Timeouts, the ramping VU count and the stop flags are looked at this often.
const HOUSEKEEPING: Duration = Duration::from_millis(5);
/// After the hard stop, in-flight operations get this long to be cancelled before the thread
/// gives up on them (and leaks their buffers rather than free memory the kernel may write).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// Submission queue size bounds.
const MIN_ENTRIES: u32 = 64;
const MAX_ENTRIES: u32 = 4096;
const MAX_CQ_ENTRIES: u32 = 1 << 18;

/// Completions copied out of the ring at a time, and passes of that per wake-up.
const REAP_BATCH: usize = 64;
const MAX_REAP_PASSES: usize = 1024;

/// New connections a load thread starts per pass of its loop.
const MAX_CONNECTS_PER_PASS: usize = 64;

const OP_CONNECT: u64 = 0;
const OP_SEND: u64 = 1;
const OP_RECV: u64 = 2;
const OP_CANCEL: u64 = 3;

fn user_data(vu: usize, op: u64) -> u64 {
    ((vu as u64) << 2) | op
}

/// Whether this process may use io_uring (seccomp, `kernel.io_uring_disabled`, old kernels
/// refuse it) with the features the backend needs.
pub(crate) fn probe() -> io::Result<()> {
    let ring = IoUring::new(4)?;
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::other(
            "the kernel lacks IORING_FEAT_EXT_ARG (Linux 5.11)",
        ));
    }
    if !ring.params().is_feature_nodrop() {
        return Err(io::Error::other(
            "the kernel lacks IORING_FEAT_NODROP (Linux 5.5)",
        ));
    }
    Ok(())
}

/// One VU and its connection.
struct Vu {
    /// Closed model: the VU's id (it runs while the id is below the active count).
    id: u64,
    fd: RawFd,
    /// Operations in the kernel that use `fd` or `buf`; the VU's iteration ends only at 0.
    inflight: u8,
    busy: bool,
    buf: RecvBuf,
    parser: ResponseParser,
    trace: Trace,
    out: Outcome,
    body: Vec<u8>,
    pick: usize,
    /// The iteration's start (its scheduled time in the open model).
    started: Instant,
    sent: usize,
    send_done: bool,
    /// `Some(reusable)` once the response is complete.
    response: Option<bool>,
    error: Option<ErrorKind>,
    failed_at: Option<Instant>,
    reused: bool,
    attempt: u8,
    /// Reconnect and send again once the in-flight operations have ended.
    retry: bool,
    /// Cut off by the hard stop.
    interrupted: bool,
    /// Began at least one iteration.
    ran: bool,
    /// Iterations completed (closed model: the VU's share of the run).
    completed: u64,
}

impl Vu {
    fn new(id: u64) -> Vu {
        Vu {
            id,
            fd: -1,
            inflight: 0,
            busy: false,
            buf: RecvBuf::new(),
            parser: ResponseParser::new(false),
            trace: Trace::default(),
            out: Outcome::default(),
            body: Vec::new(),
            pick: 0,
            started: Instant::now(),
            sent: 0,
            send_done: false,
            response: None,
            error: None,
            failed_at: None,
            reused: false,
            attempt: 0,
            retry: false,
            interrupted: false,
            ran: false,
            completed: 0,
        }
    }

    fn close(&mut self) {
        if self.fd >= 0 {
            // SAFETY: `fd` is a socket this VU opened and no operation in flight uses it
            // (callers close only at `inflight == 0`).
            unsafe { libc::close(self.fd) };
            self.fd = -1;
        }
    }
}

/// The target's socket address in the C layout the connect operation reads.
struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    family: libc::c_int,
}

impl SockAddr {
    fn new(addr: SocketAddr) -> SockAddr {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let (len, family) = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
                (std::mem::size_of::<libc::sockaddr_in>(), libc::AF_INET)
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
                (std::mem::size_of::<libc::sockaddr_in6>(), libc::AF_INET6)
            }
        };
        SockAddr {
            storage,
            len: len as libc::socklen_t,
            family,
        }
    }
}

/// Open-model state of one thread.
struct Arrivals {
    sched: crate::plan::ArrivalSchedule,
    next_k: u64,
    stride: u64,
    next_due: Option<Instant>,
    max_vus: u64,
    free_list: Vec<usize>,
    free: Arc<std::sync::atomic::AtomicU64>,
    allocated: Arc<std::sync::atomic::AtomicU64>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

struct Worker<'a> {
    sh: &'a Shared,
    ring: IoUring,
    /// Boxed so the connect operations' address pointer stays put.
    addr: Box<SockAddr>,
    vus: Vec<Vu>,
    metrics: Metrics,
    picker: MixPicker,
    /// VUs whose next iteration starts at the next pass of the loop (never recursively, so a
    /// VU that fails at once, e.g. with no file descriptor left, cannot grow the stack).
    ready: VecDeque<usize>,
    /// Closed-model VUs waiting for the active count to include them.
    parked: Vec<usize>,
    busy: usize,
    active_n: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The active count at the last look (a lower one parks VUs).
    last_active: u64,
    arrivals: Option<Arrivals>,
}

/// Runs one load thread on io_uring until the run ends; sends a [`Report`] every second and
/// a last one at the end. A ring that cannot be set up leaves the thread's VUs unstarted and
/// counted as `fd_limit`/`other` failures of their first iteration.
pub(crate) fn worker(
    sh: &Shared,
    index: usize,
    pinned: bool,
    mode: Mode,
    tx: &UnboundedSender<Report>,
) {
    // The kernel's default 50 µs timer slack would blur every open-model start.
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let vus_hint = match &mode {
        Mode::Closed { ids, .. } => ids.len() as u64,
        Mode::Open { max_vus, .. } => *max_vus,
    };
    let entries = (vus_hint.saturating_mul(2) + 8)
        .clamp(u64::from(MIN_ENTRIES), u64::from(MAX_ENTRIES))
        .next_power_of_two() as u32;
    // A completion queue with room for every VU's operations at once, so it does not overflow
    // (the kernel would keep the overflow, but refuse submissions until it is reaped).
    let cq_entries = (vus_hint.saturating_mul(4) + 16)
        .clamp(u64::from(entries) * 2, u64::from(MAX_CQ_ENTRIES))
        .next_power_of_two() as u32;
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_cqsize(cq_entries)
        .build(entries)
        .or_else(|_| IoUring::new(entries));
    let mut metrics = Metrics::new(sh.checks.len(), sh.mix_weights.len());
    let ring = match ring {
        Ok(r) => r,
        Err(e) => {
            // The probe succeeded, so this is a resource limit: count, do not hide it.
            let kind = ErrorKind::from_io(&e);
            metrics.counters.errors[kind.index()] += vus_hint;
            metrics.counters.http_reqs += vus_hint;
            metrics.counters.http_req_failed += vus_hint;
            let _ = tx.send(Report {
                second: u64::MAX,
                metrics,
                last: true,
            });
            return;
        }
    };
    let target = sh.reqs[0].target.addr;
    let mut w = Worker {
        sh,
        ring,
        addr: Box::new(SockAddr::new(target)),
        vus: Vec::new(),
        metrics,
        picker: MixPicker::new(&sh.mix_weights, index),
        ready: VecDeque::new(),
        parked: Vec::new(),
        busy: 0,
        active_n: None,
        last_active: 0,
        arrivals: None,
    };
    match mode {
        Mode::Closed { ids, active_n, .. } => {
            w.vus = ids.iter().map(|&id| Vu::new(id)).collect();
            w.ready.reserve(w.vus.len());
            w.parked = (0..w.vus.len()).rev().collect();
            w.active_n = Some(active_n);
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
            w.vus = (0..initial).map(|_| Vu::new(0)).collect();
            let next_due = sched.time_of(index).map(|o| sh.start + o);
            w.arrivals = Some(Arrivals {
                sched,
                next_k: index,
                stride: threads,
                next_due,
                max_vus,
                free_list: (0..w.vus.len()).rev().collect(),
                free,
                allocated,
                dropped,
            });
        }
    }
    w.run(pinned, tx);
}

impl Worker<'_> {
    fn run(&mut self, pinned: bool, tx: &UnboundedSender<Report>) {
        let start = self.sh.start;
        let mut second = 0u64;
        let mut next_report = start + Duration::from_secs(1);
        let mut next_housekeeping = Instant::now();
        let mut hard_stopped_at: Option<Instant> = None;
        // Spinning pays only while the CPU is really this thread's: when the scheduler took it
        // away (another process runs there), a spinning thread gets a time slice and then
        // waits a whole one, while a sleeping one is woken at once. So spinning stops for a
        // while after every involuntary context switch.
        let mut preempted = involuntary_switches();
        let mut spin_allowed_from = start;
        // Bounded: the loop ends once the executor stopped starting iterations and none is in
        // flight, or `DRAIN_LIMIT` after the hard stop; every pass waits for an event or a
        // deadline that is at most `HOUSEKEEPING` away.
        loop {
            let now = Instant::now();
            let stopping = self.sh.stop_new.is_cancelled();
            self.start_due_arrivals(now);
            if stopping && let Some(a) = &mut self.arrivals {
                // Arrivals that fell due before the stop was seen have just started; no more.
                a.next_due = None;
            }
            if now >= next_housekeeping {
                next_housekeeping = now + HOUSEKEEPING;
                if pinned && self.arrivals.is_some() {
                    let n = involuntary_switches();
                    if n > preempted {
                        spin_allowed_from = now + SPIN_BACKOFF;
                    }
                    preempted = n;
                }
                if hard_stopped_at.is_none() && self.sh.hard_stop.is_cancelled() {
                    hard_stopped_at = Some(now);
                    self.interrupt_all(now);
                }
                self.expire_timeouts(now);
                if !stopping {
                    self.unpark();
                }
            }
            // Only the VUs ready now: one that fails at once is ready again, for the next pass.
            let mut connects = 0;
            for _ in 0..self.ready.len() {
                let Some(i) = self.ready.pop_front() else {
                    break;
                };
                if stopping {
                    self.park(i);
                    continue;
                }
                if self.vus[i].fd < 0 {
                    // A connect can spend long in the kernel (its ephemeral-port search grows
                    // with the connections to the same address): a few per pass keep the loop,
                    // its reports and its stop checks going while thousands of VUs connect.
                    if connects >= MAX_CONNECTS_PER_PASS {
                        self.ready.push_back(i);
                        continue;
                    }
                    connects += 1;
                }
                self.begin(i, None);
            }
            if now >= next_report {
                second += 1;
                next_report += Duration::from_secs(1);
                self.publish_free();
                let m = self.metrics.take();
                let _ = tx.send(Report {
                    second,
                    metrics: m,
                    last: false,
                });
            }
            let open_done = self.arrivals.as_ref().is_none_or(|a| a.next_due.is_none());
            if (stopping || (self.arrivals.is_some() && open_done)) && self.busy == 0 {
                break;
            }
            if let Some(t) = hard_stopped_at
                && now.duration_since(t) > DRAIN_LIMIT
            {
                break;
            }
            // Wait for completions, at most until the next deadline.
            let mut wake = next_housekeeping.min(next_report);
            // VUs ready for their next iteration must not wait for an event.
            let mut spin = !self.ready.is_empty();
            let pinned = pinned && now >= spin_allowed_from;
            if !stopping && let Some(due) = self.arrivals.as_ref().and_then(|a| a.next_due) {
                if spin || (pinned && due <= now + SPIN_BEFORE_DUE) {
                    spin = true;
                } else if pinned {
                    wake = wake.min(due - SPIN_BEFORE_DUE);
                } else {
                    wake = wake.min(due);
                }
            }
            let submitted = if spin {
                self.ring.submit()
            } else {
                let d = wake.saturating_duration_since(now);
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            };
            match submitted {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                // EBUSY: completions must be reaped before more can be submitted.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(_) => {
                    // The ring itself failed: end every iteration in flight as an error.
                    self.interrupt_all(now);
                    break;
                }
            }
            self.reap();
        }
        self.publish_free();
        if let Some(active) = &self.active_n {
            let active = active.load(Ordering::Relaxed);
            self.metrics.counters.vus_not_started +=
                self.vus.iter().filter(|v| !v.ran && v.id < active).count() as u64;
            for v in &self.vus {
                self.metrics.timeline.vu_done(v.id, v.completed);
            }
        }
        if self.vus.iter().any(|v| v.inflight > 0) {
            // The kernel may still write into these buffers: leak them rather than free them.
            std::mem::forget(std::mem::take(&mut self.vus));
        }
        for v in &mut self.vus {
            v.close();
        }
        let m = self.metrics.take();
        let _ = tx.send(Report {
            second: u64::MAX,
            metrics: m,
            last: true,
        });
    }

    fn publish_free(&self) {
        if let Some(a) = &self.arrivals {
            a.free.store(a.free_list.len() as u64, Ordering::Relaxed);
        }
    }

    /// Reaps every completion, each handled with its own timestamp.
    fn reap(&mut self) {
        let mut batch = [(0u64, 0i32); REAP_BATCH];
        // Bounded: each pass handles the entries that were there; the loop ends when a pass
        // finds fewer than a full batch (or after a fixed number of passes).
        for _ in 0..MAX_REAP_PASSES {
            let mut n = 0;
            {
                let mut cq = self.ring.completion();
                for (slot, cqe) in batch.iter_mut().zip(&mut cq) {
                    *slot = (cqe.user_data(), cqe.result());
                    n += 1;
                }
            }
            for &(ud, res) in &batch[..n] {
                let i = (ud >> 2) as usize;
                let op = ud & 3;
                if op == OP_CANCEL || i >= self.vus.len() {
                    continue;
                }
                let now = Instant::now();
                self.vus[i].inflight -= 1;
                match op {
                    OP_CONNECT => self.on_connect(i, res, now),
                    OP_SEND => self.on_send(i, res, now),
                    _ => self.on_recv(i, res, now),
                }
                self.settle(i, now);
                // A long batch must not hold back a start that fell due meanwhile.
                if self
                    .arrivals
                    .as_ref()
                    .and_then(|a| a.next_due)
                    .is_some_and(|d| d <= now)
                {
                    self.start_due_arrivals(now);
                }
            }
            if n < REAP_BATCH {
                break;
            }
        }
    }

    fn push(&mut self, e: &squeue::Entry) {
        // Bounded: a full queue is drained by one submit; if the kernel refuses (ring broken)
        // the entry is pushed over a reaped queue on the second pass at most.
        for _ in 0..3 {
            // SAFETY: every entry points into memory that outlives the operation: the VU's
            // buffer (kept until `inflight` is 0, or leaked), the shared request bytes and the
            // boxed socket address, both alive for the whole run.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return;
            }
            let _ = self.ring.submit();
        }
    }

    /// Starts an iteration on VU `i` (`started`: its scheduled time in the open model).
    fn begin(&mut self, i: usize, started: Option<Instant>) {
        // A fresh time: a batch of VUs starting one after another must not share one.
        let now = Instant::now();
        if let Some(due) = started {
            // How late the start is says whether this thread kept up with the schedule.
            self.metrics
                .record_start_lag(now.saturating_duration_since(due));
        }
        let started = started.unwrap_or(now);
        let pick = self.picker.next().min(self.sh.reqs.len() - 1);
        let is_head = self.sh.reqs[pick].is_head;
        let v = &mut self.vus[i];
        v.busy = true;
        v.ran = true;
        v.pick = pick;
        v.started = started;
        v.trace = Trace {
            get_conn: Some(now),
            ..Trace::default()
        };
        v.out = Outcome::default();
        v.body.clear();
        v.parser = ResponseParser::new(is_head);
        v.response = None;
        v.error = None;
        v.failed_at = None;
        v.attempt = 0;
        v.retry = false;
        v.interrupted = false;
        self.busy += 1;
        self.open_or_send(i, now);
    }

    fn open_or_send(&mut self, i: usize, now: Instant) {
        let keep_alive = self.sh.reqs[self.vus[i].pick].keep_alive;
        let v = &mut self.vus[i];
        v.reused = v.fd >= 0 && keep_alive;
        if v.reused {
            v.trace.got_conn = Some(now);
            self.send_and_receive(i, now);
            self.settle(i, now);
            return;
        }
        v.close();
        v.trace.connect_start = Some(now);
        // SAFETY: plain socket(2) call; the result is checked.
        let fd =
            unsafe { libc::socket(self.addr.family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            v.out.connect_failed = true;
            self.fail(i, ErrorKind::from_io(&e), now);
            self.settle(i, now);
            return;
        }
        let one: libc::c_int = 1;
        // Small requests would otherwise wait for Nagle; k6 (Go) sets TCP_NODELAY too.
        // SAFETY: `one` outlives the call and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        v.fd = fd;
        v.inflight += 1;
        let e = opcode::Connect::new(
            types::Fd(fd),
            (&raw const self.addr.storage).cast(),
            self.addr.len,
        )
        .build()
        .user_data(user_data(i, OP_CONNECT));
        self.push(&e);
    }

    /// Writes the request at once with a non-blocking `send` (so `wrote_request` is when the
    /// bytes went out, not when a batch was submitted), then arms the response's first receive
    /// in the ring. A request the socket does not take whole goes on through the ring.
    fn send_and_receive(&mut self, i: usize, now: Instant) {
        let bytes = &self.sh.reqs[self.vus[i].pick].bytes;
        let v = &mut self.vus[i];
        v.sent = 0;
        v.send_done = false;
        // SAFETY: `bytes` is valid for its length; MSG_DONTWAIT keeps the call from blocking.
        let r = unsafe {
            libc::send(
                v.fd,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EAGAIN) {
                if v.reused && v.attempt == 0 {
                    v.retry = true;
                } else {
                    self.fail(i, ErrorKind::from_io(&e), now);
                }
                return;
            }
        }
        let r = r.max(0) as usize;
        if r == bytes.len() {
            v.send_done = true;
            v.sent = r;
            v.out.bytes_sent += r as u64;
            v.trace.wrote_request = Some(Instant::now());
        } else {
            v.sent = r;
            let rest = &bytes[r..];
            let send = opcode::Send::new(types::Fd(v.fd), rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(i, OP_SEND));
            v.inflight += 1;
            self.push(&send);
        }
        self.receive(i);
    }

    fn receive(&mut self, i: usize) {
        let v = &mut self.vus[i];
        let spare = v.buf.spare();
        let e = opcode::Recv::new(types::Fd(v.fd), spare.as_mut_ptr(), spare.len() as u32)
            .build()
            .user_data(user_data(i, OP_RECV));
        v.inflight += 1;
        self.push(&e);
    }

    fn on_connect(&mut self, i: usize, res: i32, now: Instant) {
        let v = &mut self.vus[i];
        if v.error.is_some() || v.interrupted {
            return;
        }
        if res < 0 {
            v.out.connect_failed = true;
            let k = ErrorKind::from_io(&io::Error::from_raw_os_error(-res));
            self.fail(i, k, now);
            return;
        }
        v.trace.connect_done = Some(now);
        v.out.new_connection = true;
        v.trace.got_conn = Some(now);
        self.send_and_receive(i, now);
    }

    fn on_send(&mut self, i: usize, res: i32, now: Instant) {
        let len = self.sh.reqs[self.vus[i].pick].bytes.len();
        let v = &mut self.vus[i];
        if v.error.is_some() || v.interrupted || v.retry {
            return;
        }
        if res < 0 {
            if v.reused && v.attempt == 0 {
                self.retry(i);
            } else {
                let k = ErrorKind::from_io(&io::Error::from_raw_os_error(-res));
                self.fail(i, k, now);
            }
            return;
        }
        v.sent += res as usize;
        if v.sent < len {
            let rest = &self.sh.reqs[v.pick].bytes[v.sent..];
            let e = opcode::Send::new(types::Fd(v.fd), rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(i, OP_SEND));
            v.inflight += 1;
            self.push(&e);
            return;
        }
        v.send_done = true;
        v.out.bytes_sent += len as u64;
        v.trace.wrote_request = Some(now);
    }

    fn on_recv(&mut self, i: usize, res: i32, now: Instant) {
        let keep_body = self.sh.keep_body;
        let v = &mut self.vus[i];
        if v.error.is_some() || v.interrupted || v.retry {
            return;
        }
        if res < 0 {
            let k = ErrorKind::from_io(&io::Error::from_raw_os_error(-res));
            self.fail(i, k, now);
            return;
        }
        if res == 0 {
            match v.parser.eof(v.trace.first_byte.is_some()) {
                Ok(reusable) => {
                    v.trace.done = Some(now);
                    v.response = Some(reusable);
                }
                Err(ReadErr::Stale) if v.reused && v.attempt == 0 => self.retry(i),
                Err(e) => self.fail(i, e.kind(), now),
            }
            return;
        }
        let n = res as usize;
        v.buf.commit(n);
        if v.parser.in_head() && v.trace.first_byte.is_none() {
            v.trace.first_byte = Some(now);
        }
        v.out.bytes_received += n as u64;
        match v
            .parser
            .advance(&mut v.buf, &mut v.out, &mut v.body, keep_body)
        {
            Ok(Parsed::Done(reusable)) => {
                v.trace.done = Some(now);
                v.response = Some(reusable);
            }
            Ok(Parsed::More) => self.receive(i),
            Err(k) => self.fail(i, k, now),
        }
    }

    /// A reused connection the server had already closed: like Go's transport (and the
    /// tokio client), send the request once more on a fresh connection.
    fn retry(&mut self, i: usize) {
        let v = &mut self.vus[i];
        v.retry = true;
        if v.inflight > 0 {
            self.cancel(i);
        }
    }

    fn fail(&mut self, i: usize, k: ErrorKind, now: Instant) {
        let v = &mut self.vus[i];
        if v.error.is_none() {
            v.error = Some(k);
            v.failed_at = Some(now);
        }
        if v.inflight > 0 {
            self.cancel(i);
        }
    }

    /// Cancels every operation in flight on VU `i`'s socket.
    fn cancel(&mut self, i: usize) {
        let fd = self.vus[i].fd;
        if fd < 0 {
            return;
        }
        let e = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
            .build()
            .user_data(user_data(i, OP_CANCEL));
        self.push(&e);
        // Also ends a pending receive on kernels without fd-wide cancellation (before 5.19):
        // the socket is given up either way.
        // SAFETY: `fd` is this VU's open socket.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }

    /// Ends VU `i`'s iteration (or retries it) once nothing of it is left in the kernel.
    fn settle(&mut self, i: usize, now: Instant) {
        let v = &mut self.vus[i];
        if v.inflight > 0 || !v.busy {
            return;
        }
        if v.interrupted {
            v.close();
            v.busy = false;
            self.busy -= 1;
            self.metrics.counters.interrupted_iterations += 1;
            return;
        }
        if v.retry && v.error.is_none() {
            v.retry = false;
            v.close();
            v.attempt = 1;
            v.trace.wrote_request = None;
            v.parser = ResponseParser::new(v.parser_is_head());
            self.open_or_send(i, now);
            return;
        }
        if v.error.is_some() || (v.response.is_some() && v.send_done) {
            self.complete(i, now);
        }
    }

    /// Records the iteration of VU `i` exactly as the tokio backend's `iteration()` does.
    fn complete(&mut self, i: usize, now: Instant) {
        let sh = self.sh;
        let v = &mut self.vus[i];
        let error = v.error;
        let keep_alive = sh.reqs[v.pick].keep_alive;
        let reusable = v.response.unwrap_or(false);
        if error.is_some() || !(reusable && keep_alive) {
            v.close();
        }
        if error.is_some() {
            v.out.status = 0;
        }
        let done = v.trace.done.or(v.failed_at).unwrap_or(now);
        let phases = v.trace.phases(done);
        let expected = error.is_none() && sh.plan.is_expected_status(v.out.status);
        let m = &mut self.metrics;
        m.record_request(&phases, &v.out, error, expected, v.pick);
        let began = v.trace.get_conn.unwrap_or(done);
        m.timeline.record(
            began.saturating_duration_since(sh.start),
            phases.duration,
            error.is_none(),
            &sh.duration_limits_ms,
        );
        let ms = phases.duration.as_secs_f64() * 1e3;
        for (c, counts) in sh.checks.iter().zip(m.checks.iter_mut()) {
            if c.eval(v.out.status, ms, &v.body) {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
        m.record_iteration(now.saturating_duration_since(v.started));
        v.completed += 1;
        v.busy = false;
        self.busy -= 1;
        match &mut self.arrivals {
            Some(a) => a.free_list.push(i),
            None => self.ready.push_back(i),
        }
    }

    fn park(&mut self, i: usize) {
        self.parked.push(i);
    }

    /// Closed model: starts the parked VUs the active count now includes.
    fn unpark(&mut self) {
        let Some(active) = &self.active_n else { return };
        let active = active.load(Ordering::Relaxed);
        let mut k = 0;
        while k < self.parked.len() {
            let i = self.parked[k];
            if self.vus[i].id < active {
                self.parked.swap_remove(k);
                self.ready.push_back(i);
            } else {
                k += 1;
            }
        }
        let lowered = active < self.last_active;
        self.last_active = active;
        if !lowered {
            return;
        }
        // VUs above a lowered count stop after their current iteration.
        let mut k = 0;
        while k < self.ready.len() {
            let i = self.ready[k];
            if self.vus[i].id >= active {
                self.ready.remove(k);
                self.parked.push(i);
            } else {
                k += 1;
            }
        }
    }

    /// Open model: starts every arrival of this thread that is due.
    fn start_due_arrivals(&mut self, now: Instant) {
        let start = self.sh.start;
        // Bounded: each pass consumes one arrival of a finite schedule.
        loop {
            let Some(a) = &mut self.arrivals else { return };
            let Some(due) = a.next_due.filter(|d| *d <= now) else {
                return;
            };
            a.next_k += a.stride;
            a.next_due = a.sched.time_of(a.next_k).map(|o| start + o);
            let i = match a.free_list.pop() {
                Some(i) => i,
                None if (self.vus.len() as u64) < a.max_vus => {
                    a.allocated.fetch_add(1, Ordering::Relaxed);
                    self.vus.push(Vu::new(0));
                    self.vus.len() - 1
                }
                None => {
                    a.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            self.begin(i, Some(due));
        }
    }

    /// Fails the requests that have run past the plan's timeout.
    fn expire_timeouts(&mut self, now: Instant) {
        let timeout = self.sh.plan.timeout;
        for i in 0..self.vus.len() {
            let v = &self.vus[i];
            if v.busy
                && v.error.is_none()
                && v.trace
                    .get_conn
                    .is_some_and(|t| now.duration_since(t) >= timeout)
            {
                self.fail(i, ErrorKind::Timeout, now);
                self.settle(i, now);
            }
        }
    }

    /// The hard stop: every iteration in flight is cut off.
    fn interrupt_all(&mut self, now: Instant) {
        for i in 0..self.vus.len() {
            if self.vus[i].busy {
                self.vus[i].interrupted = true;
                if self.vus[i].inflight > 0 {
                    self.cancel(i);
                }
                self.settle(i, now);
            }
        }
        let _ = self.ring.submit();
    }
}

impl Vu {
    fn parser_is_head(&self) -> bool {
        self.parser.is_head()
    }
}
