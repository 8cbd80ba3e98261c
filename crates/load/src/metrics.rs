//! Per-worker metric storage: HDR histograms and plain counters, owned by one worker thread
//! (no locks, no allocation per request) and merged by the collector.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::{ErrorKind, Outcome, Phases};
use crate::histogram::new_histogram;
use crate::registry::{
    T_BLOCKED, T_CONNECTING, T_DURATION, T_DURATION_EXPECTED, T_ITERATION, T_RECEIVING, T_SENDING,
    T_TLS_HANDSHAKING, T_WAITING, TREND_METRICS,
};
use crate::timeline::Timeline;

/// Counters of one worker (or of a merged run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) http_reqs: u64,
    pub(crate) http_req_failed: u64,
    pub(crate) iterations: u64,
    pub(crate) interrupted_iterations: u64,
    pub(crate) dropped_iterations: u64,
    pub(crate) late_iterations: u64,
    pub(crate) data_sent: u64,
    pub(crate) data_received: u64,
    pub(crate) connections_opened: u64,
    pub(crate) errors: [u64; ErrorKind::ALL.len()],
    pub(crate) connections_failed: u64,
    pub(crate) vus_not_started: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, o: &Counters) {
        self.http_reqs += o.http_reqs;
        self.http_req_failed += o.http_req_failed;
        self.iterations += o.iterations;
        self.interrupted_iterations += o.interrupted_iterations;
        self.dropped_iterations += o.dropped_iterations;
        self.late_iterations += o.late_iterations;
        self.data_sent += o.data_sent;
        self.data_received += o.data_received;
        self.connections_opened += o.connections_opened;
        self.connections_failed += o.connections_failed;
        self.vus_not_started += o.vus_not_started;
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
    }
}

/// Sub-metrics of one request of a mix.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub(crate) duration: Histogram<u64>,
    pub(crate) waiting: Histogram<u64>,
    pub(crate) http_reqs: u64,
    pub(crate) http_req_failed: u64,
}

impl Named {
    fn new() -> Named {
        Named {
            duration: new_histogram(),
            waiting: new_histogram(),
            http_reqs: 0,
            http_req_failed: 0,
        }
    }
}

/// One set of metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    /// One histogram per [`TREND_METRICS`] name, same order.
    pub(crate) trends: Vec<Histogram<u64>>,
    /// Per request of the plan's mix, same order; empty without a mix.
    pub(crate) named: Vec<Named>,
    pub(crate) counters: Counters,
    /// (passes, fails) per check of the plan, same order.
    pub(crate) checks: Vec<(u64, u64)>,
    /// (status, count); few distinct statuses, so a short vector beats a map.
    pub(crate) statuses: Vec<(u16, u64)>,
    /// Open model: how long after its scheduled time each iteration started, ns.
    pub(crate) start_lag: Histogram<u64>,
    /// Latency per 100 ms of the run, requests over the duration limits, iterations per VU.
    pub(crate) timeline: Timeline,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 4)
}

impl Metrics {
    pub(crate) fn new(n_checks: usize, n_named: usize) -> Metrics {
        Metrics {
            trends: TREND_METRICS.iter().map(|_| new_histogram()).collect(),
            named: (0..n_named).map(|_| Named::new()).collect(),
            counters: Counters::default(),
            checks: vec![(0, 0); n_checks],
            statuses: Vec::with_capacity(4),
            start_lag: new_histogram(),
            timeline: Timeline::new(),
        }
    }

    /// A fresh, empty set with the same shape (used to hand the current interval away).
    pub(crate) fn take(&mut self) -> Metrics {
        let fresh = Metrics::new(self.checks.len(), self.named.len());
        std::mem::replace(self, fresh)
    }

    fn rec(&mut self, i: usize, d: Duration) {
        // Auto-resize is on, so only values beyond u64 range could fail; those are clamped above.
        let _ = self.trends[i].record(nanos(d));
    }

    pub(crate) fn record_request(
        &mut self,
        p: &Phases,
        out: &Outcome,
        error: Option<ErrorKind>,
        expected: bool,
        mix_index: usize,
    ) {
        if let Some(n) = self.named.get_mut(mix_index) {
            n.http_reqs += 1;
            n.http_req_failed += u64::from(!expected);
            let _ = n.duration.record(nanos(p.duration));
            let _ = n.waiting.record(nanos(p.waiting));
        }
        let c = &mut self.counters;
        c.http_reqs += 1;
        c.data_sent += out.bytes_sent;
        c.data_received += out.bytes_received;
        c.connections_opened += u64::from(out.new_connection);
        c.connections_failed += u64::from(out.connect_failed);
        if let Some(k) = error {
            c.errors[k.index()] += 1;
        }
        if !expected {
            c.http_req_failed += 1;
        }
        if error.is_none() {
            match self.statuses.iter_mut().find(|(s, _)| *s == out.status) {
                Some((_, n)) => *n += 1,
                None => self.statuses.push((out.status, 1)),
            }
        }
        self.rec(T_BLOCKED, p.blocked);
        self.rec(T_CONNECTING, p.connecting);
        self.rec(T_TLS_HANDSHAKING, p.tls_handshaking);
        self.rec(T_SENDING, p.sending);
        self.rec(T_WAITING, p.waiting);
        self.rec(T_RECEIVING, p.receiving);
        self.rec(T_DURATION, p.duration);
        if expected {
            self.rec(T_DURATION_EXPECTED, p.duration);
        }
    }

    /// An open-model iteration started `lag` after its scheduled time.
    pub(crate) fn record_start_lag(&mut self, lag: Duration) {
        if lag > crate::engine::LATE_START {
            self.counters.late_iterations += 1;
        }
        let _ = self.start_lag.record(nanos(lag));
    }

    pub(crate) fn record_iteration(&mut self, d: Duration) {
        self.counters.iterations += 1;
        self.rec(T_ITERATION, d);
    }

    pub(crate) fn add(&mut self, o: &Metrics) {
        for (a, b) in self.trends.iter_mut().zip(&o.trends) {
            // Both auto-resize, so adding cannot run out of range.
            let _ = a.add(b);
        }
        for (a, b) in self.named.iter_mut().zip(&o.named) {
            let _ = a.duration.add(&b.duration);
            let _ = a.waiting.add(&b.waiting);
            a.http_reqs += b.http_reqs;
            a.http_req_failed += b.http_req_failed;
        }
        self.counters.add(&o.counters);
        let _ = self.start_lag.add(&o.start_lag);
        self.timeline.add(&o.timeline);
        for (a, b) in self.checks.iter_mut().zip(&o.checks) {
            a.0 += b.0;
            a.1 += b.1;
        }
        for &(s, n) in &o.statuses {
            match self.statuses.iter_mut().find(|(x, _)| *x == s) {
                Some((_, m)) => *m += n,
                None => self.statuses.push((s, n)),
            }
        }
    }
}
