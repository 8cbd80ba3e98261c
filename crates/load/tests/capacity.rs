//! The capacity search against a server whose capacity is known by construction: it serves
//! requests in fixed 2 ms slots, one after another, whatever the number of connections, so it
//! sustains exactly 500 req/s and queues beyond that.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{read_request, rt};
use wasmbench_load::capacity::{
    CapacityOptions, EngineRunner, Limit, Verdict, render_text, search,
};
use wasmbench_load::{Plan, RunOptions, Threshold};

const SLOT: Duration = Duration::from_millis(2);
const CAPACITY: f64 = 500.0;

/// Each request takes the next free slot after the previous one's end (not after the
/// thread's wake-up, so sleep overshoot never accumulates) and is answered at its end.
/// `next_free` is the end of the last slot handed out, shared by the server's connections.
fn slotted(mut s: TcpStream, next_free: &Mutex<Option<Instant>>, slot: Duration) {
    let _ = s.set_nodelay(true);
    while read_request(&mut s) {
        let end = {
            let mut next = next_free.lock().unwrap();
            let now = Instant::now();
            let end = next.map_or(now, |n| n.max(now)) + slot;
            *next = Some(end);
            end
        };
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// Serves [`slotted`] with [`SLOT`] on a thread per connection.
fn slotted_server() -> SocketAddr {
    slotted_server_with(SLOT)
}

/// Serves [`slotted`] on a thread per connection; bounded by the number of connections.
fn slotted_server_with(slot: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let next_free = Arc::new(Mutex::new(None));
    std::thread::spawn(move || {
        for s in l.incoming().take(200_000).flatten() {
            let next_free = next_free.clone();
            std::thread::spawn(move || slotted(s, &next_free, slot));
        }
    });
    addr
}

fn base(addr: SocketAddr) -> Plan {
    let mut p = Plan::default();
    p.request.url = format!("http://{addr}/");
    p
}

/// The searches of this binary run one at a time: each must see the machine to itself as far
/// as the other tests are concerned.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn fast_opts() -> CapacityOptions {
    CapacityOptions {
        step_duration: Duration::from_secs(1),
        calibration: Duration::from_millis(500),
        ..CapacityOptions::default()
    }
}

#[test]
fn finds_a_throttled_servers_capacity_within_five_percent() {
    let _one = serial();
    let addr = slotted_server();
    let mut runner = EngineRunner::new(RunOptions::default());
    // Overload by a share e over a step of T seconds queues e·T seconds of work: with 3 s steps
    // a 100 ms objective catches 3.3% over capacity, and leaves 98 ms above the 2 ms service
    // time for the scheduling delays of a shared machine.
    let opts = CapacityOptions {
        step_duration: Duration::from_secs(3),
        slo: vec![Threshold::parse_cli("http_req_waiting=p(99)<100").unwrap()],
        ..fast_opts()
    };
    let c = rt()
        .block_on(search(&base(addr), &opts, &mut runner, || false))
        .unwrap();
    println!("{}", render_text(&c));
    assert_eq!(c.limit, Limit::Server, "{c:#?}");
    let found = c.value().expect("a server-bound capacity") as f64;
    assert!(
        (found - CAPACITY).abs() <= 0.05 * CAPACITY,
        "found {found} req/s, built for {CAPACITY}"
    );
    // The start rate is what one VU reached unloaded: one request per 2 ms slot at most.
    let first = c.steps[0].offered as f64;
    assert!(first <= CAPACITY && first > CAPACITY / 2.0, "{first}");
    for s in &c.steps {
        assert!(s.usage.loadgen_cpu.is_some());
        match &s.verdict {
            Verdict::Pass => assert!(s.offered as f64 <= CAPACITY * 1.05, "{s:?}"),
            Verdict::Fail { reasons } => {
                assert!(s.offered as f64 > CAPACITY * 0.95, "{s:?}");
                assert!(!reasons.is_empty());
            }
            Verdict::ClientBound { .. } => panic!("no step is client-bound here: {s:?}"),
        }
    }
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["limit"], "server");
    assert!(json["steps"][0]["verdict"].is_string());
}

#[test]
fn steps_after_a_failed_one_start_once_the_server_has_drained() {
    let _one = serial();
    // The same kind of server at 4 ms a request (250 req/s), searched with the defaults of
    // `wasmbench load --capacity`: an overloaded step queues seconds of work in the server,
    // which would fail every later step if they started at once.
    let capacity = 250.0;
    let addr = slotted_server_with(Duration::from_millis(4));
    let mut runner = EngineRunner::new(RunOptions::default());
    let c = rt()
        .block_on(search(
            &base(addr),
            &CapacityOptions::default(),
            &mut runner,
            || false,
        ))
        .unwrap();
    println!("{}", render_text(&c));
    assert_eq!(c.limit, Limit::Server, "{c:#?}");
    let found = c.value().expect("a server-bound capacity") as f64;
    assert!(
        (found - capacity).abs() <= 0.05 * capacity,
        "found {found} req/s, built for {capacity}"
    );
    let mut failed_before = false;
    for s in &c.steps {
        match &s.verdict {
            Verdict::Fail { .. } => {
                let d = s.drain.expect("a failed step is followed by a drain");
                assert!(d.drained && d.seconds > 0.0, "{d:?}");
                failed_before = true;
            }
            Verdict::Pass => assert!(s.drain.is_none()),
            Verdict::ClientBound { .. } => panic!("no step is client-bound here: {s:?}"),
        }
        // A step below capacity after a failed one gets its rate: nothing left over.
        if failed_before && (s.offered as f64) < 0.95 * capacity {
            assert!(s.achieved >= 0.95 * s.offered as f64, "{s:?}");
        }
    }
    assert!(
        failed_before,
        "the search overloaded the server at least once"
    );
}

#[test]
fn the_default_slo_is_ten_times_the_unloaded_p99() {
    let _one = serial();
    let addr = slotted_server();
    let mut runner = EngineRunner::new(RunOptions::default());
    let opts = CapacityOptions {
        max_steps: 1,
        ..fast_opts()
    };
    let c = rt()
        .block_on(search(&base(addr), &opts, &mut runner, || false))
        .unwrap();
    // Light open-model load: every request gets its own 2 ms slot.
    let (p50, p99) = (c.unloaded_p50_ms.unwrap(), c.unloaded_p99_ms.unwrap());
    assert!((2.0..3.0).contains(&p50), "unloaded p50 {p50} ms");
    assert!(p99 >= p50, "{p99} < {p50}");
    // A tenth of what one VU reached (one request per 2 ms slot at most).
    let rate = c.unloaded_rate.unwrap() as f64;
    assert!(
        (CAPACITY / 25.0..=CAPACITY / 10.0).contains(&rate),
        "{rate}"
    );
    let limit: f64 = c.slo[0]
        .strip_prefix("http_req_waiting: p(99)<")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("{:?}", c.slo));
    assert!((limit / p99 - 10.0).abs() < 0.1, "{limit} vs {p99}");
    assert_eq!(c.steps.len(), 1);
    assert_eq!(c.limit, Limit::Steps);
}

#[test]
fn a_busy_load_generator_marks_the_step_client_bound_and_the_capacity_a_lower_bound() {
    let _one = serial();
    let addr = slotted_server();
    let mut runner = EngineRunner::new(RunOptions::default());
    // A clock that runs at twice the wall clock on one CPU: the generator looks saturated.
    let t0 = Instant::now();
    runner.loadgen_cpu = Some(Box::new(move || Some(t0.elapsed() * 2)));
    runner.loadgen_cpus = 1;
    let opts = CapacityOptions {
        start_rate: 100,
        slo: vec![Threshold::parse_cli("http_req_duration=p(99)<50").unwrap()],
        ..fast_opts()
    };
    // More threads than CPUs: none is pinned, none spins, so its CPU share is its work.
    let mut plan = base(addr);
    plan.workers = std::thread::available_parallelism().map_or(1, |n| n.get()) + 1;
    let c = rt()
        .block_on(search(&plan, &opts, &mut runner, || false))
        .unwrap();
    assert_eq!(c.limit, Limit::Client, "{c:#?}");
    assert_eq!(c.steps.len(), 1);
    assert!(
        matches!(&c.steps[0].verdict, Verdict::ClientBound { reason } if reason.contains("CPUs"))
    );
    assert_eq!(c.value(), None);
    assert!(
        c.unloaded_p50_ms.is_none(),
        "an explicit SLO and start rate need no calibration"
    );
    assert_eq!(c.slo, ["http_req_duration: p(99)<50"]);
}

#[test]
fn the_max_rate_ends_a_search_that_never_failed_and_says_so() {
    let _one = serial();
    let addr = slotted_server();
    let mut runner = EngineRunner::new(RunOptions::default());
    let opts = CapacityOptions {
        start_rate: 50,
        max_rate: 200,
        slo: vec![Threshold::parse_cli("http_req_waiting=p(99)<200").unwrap()],
        ..fast_opts()
    };
    let c = rt()
        .block_on(search(&base(addr), &opts, &mut runner, || false))
        .unwrap();
    assert_eq!(c.limit, Limit::MaxRate, "{c:#?}");
    let offered: Vec<u64> = c.steps.iter().map(|s| s.offered).collect();
    assert_eq!(offered, [50, 100, 200]);
    assert_eq!(c.headline(), "≥ 200 req/s (max rate reached)");
    assert_eq!(c.value(), None);
}

#[test]
fn an_interrupted_search_keeps_its_steps_and_is_partial() {
    let _one = serial();
    let addr = slotted_server();
    let mut runner = EngineRunner::new(RunOptions::default());
    let stop = AtomicBool::new(false);
    let opts = CapacityOptions {
        start_rate: 50,
        ..fast_opts()
    };
    let steps_before_stop = std::cell::Cell::new(0);
    let c = rt()
        .block_on(search(&base(addr), &opts, &mut runner, || {
            let n = steps_before_stop.get();
            steps_before_stop.set(n + 1);
            if n == 2 {
                stop.store(true, Ordering::SeqCst);
            }
            stop.load(Ordering::SeqCst)
        }))
        .unwrap();
    assert!(c.partial);
    assert_eq!(c.steps.len(), 2, "{c:#?}");
    assert!(render_text(&c).contains("interrupted"));
}

#[test]
fn a_server_that_answers_nothing_is_a_clear_error() {
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut runner = EngineRunner::new(RunOptions::default());
    let e = rt()
        .block_on(search(&base(addr), &fast_opts(), &mut runner, || false))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gave no response"), "{e}");
}
