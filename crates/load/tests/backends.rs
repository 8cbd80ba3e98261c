//! Both I/O backends against real local servers: which one ran and why, the open model's own
//! schedule, per-phase timing at one VU, and connections that cannot be opened for lack of
//! file descriptors.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use wasmbench_echo::config::Mode;
use wasmbench_load::{Backend, Executor, Plan, RunOptions, Summary, render_text, run};

fn go(plan: &Plan) -> Summary {
    rt().block_on(run(plan, RunOptions::default()))
        .expect("run")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The plan run on each backend: the default (io_uring where allowed) and forced tokio.
fn on_both(p: &Plan) -> [(Plan, &'static str); 2] {
    let mut auto = p.clone();
    auto.backend = Backend::Auto;
    let mut tokio = p.clone();
    tokio.backend = Backend::Tokio;
    [(auto, "auto"), (tokio, "tokio")]
}

#[test]
fn the_summary_says_which_backend_ran_and_why() {
    let addr = echo(Mode::Concurrent);
    let mut p = plan(format!("http://{addr}/"), 2, 0.5);
    p.backend = Backend::Tokio;
    let s = go(&p);
    let e = s.engine.as_ref().expect("engine info");
    assert_eq!(e.backend, "tokio");
    assert!(
        e.fallback_reason.as_deref().unwrap_or("").contains("tokio"),
        "{e:?}"
    );
    assert!(s.counters.http_reqs > 10 && s.counters.http_req_failed == 0);
    assert!(render_text(&s, &[]).contains("engine: tokio"));
    threads_cpu_is_measured(&s);

    p.backend = Backend::Auto;
    let s = go(&p);
    let e = s.engine.as_ref().expect("engine info");
    if cfg!(target_os = "linux") && in_ci() {
        // CI runs on a kernel that allows io_uring: the default must use it.
        assert_eq!(e.backend, "io_uring", "{e:?}");
    }
    assert!(
        e.backend == "io_uring" || e.fallback_reason.is_some(),
        "a fallback always says why: {e:?}"
    );
    assert!(s.counters.http_reqs > 10 && s.counters.http_req_failed == 0);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["engine"]["backend"], e.backend.as_str());
    threads_cpu_is_measured(&s);
}

/// The load threads' CPU is measured, and no more than they could have used: every thread busy
/// for the whole run.
fn threads_cpu_is_measured(s: &wasmbench_load::Summary) {
    let e = s.engine.as_ref().expect("engine info");
    let us = e.worker_cpu_us.expect("the load threads' CPU");
    let most = s.duration_s * 1e6 * s.workers as f64;
    assert!(
        us > 0 && (us as f64) <= most,
        "{us} µs over {most} µs: {e:?}"
    );
}

#[test]
fn the_environment_switch_forces_the_tokio_backend() {
    if let Ok(addr) = std::env::var("WASMBENCH_TEST_ENV_CHILD") {
        // Child process: the parent set WASMBENCH_IO_URING=0.
        let s = go(&plan(format!("http://{addr}/"), 2, 0.3));
        let e = s.engine.expect("engine info");
        assert_eq!(e.backend, "tokio");
        assert_eq!(e.fallback_reason.as_deref(), Some("WASMBENCH_IO_URING=0"));
        assert!(s.counters.http_reqs > 0 && s.counters.http_req_failed == 0);
        return;
    }
    let addr = echo(Mode::Concurrent);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_environment_switch_forces_the_tokio_backend",
            "--test-threads=1",
        ])
        .env("WASMBENCH_TEST_ENV_CHILD", addr.to_string())
        .env("WASMBENCH_IO_URING", "0")
        .output()
        .expect("child test runs");
    assert!(
        out.status.success(),
        "child: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_open_model_keeps_its_schedule_on_each_backend() {
    let addr = echo(Mode::Concurrent);
    for (mut p, label) in on_both(&plan(format!("http://{addr}/"), 1, 1.0)) {
        p.executor = Executor::ConstantArrivalRate {
            rate: 2000,
            time_unit: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            pre_allocated_vus: 50,
            max_vus: 200,
        };
        let s = go(&p);
        let c = &s.counters;
        // 2 s at 2000/s: arrivals 0..4000, every one started and completed.
        assert_eq!(c.dropped_iterations, 0, "{label}: {c:?}");
        assert_eq!(c.iterations, 4000, "{label}: {c:?}");
        assert_eq!(c.http_req_failed, 0, "{label}: {c:?}");
        let lag = s.start_lag.as_ref().expect("start lag in the open model");
        assert_eq!(lag.0.len(), 4000, "{label}: one start lag per iteration");
        assert!(s.start_lag_ms(99.0).is_some());
        let text = render_text(&s, &[]);
        assert!(
            text.contains("start_lag") && text.contains("p(99)="),
            "{text}"
        );
    }
}

#[test]
fn one_closed_model_vu_measures_every_phase_on_each_backend() {
    let addr = echo(Mode::Concurrent);
    for (p, label) in on_both(&plan(format!("http://{addr}/"), 1, 0.5)) {
        let s = go(&p);
        let c = &s.counters;
        assert!(c.http_reqs > 20, "{label}: {c:?}");
        assert_eq!(c.http_req_failed, 0, "{label}");
        assert_eq!(
            c.connections_opened, 1,
            "{label}: one keep-alive connection"
        );
        let t = |m: &str| s.trend(m).unwrap();
        assert!(t("http_req_waiting").min_ms > 0.0, "{label}: waiting");
        assert!(t("http_req_duration").min_ms > 0.0, "{label}: duration");
        assert!(
            t("http_req_connecting").max_ms > 0.0,
            "{label}: first connect"
        );
        assert!(t("http_req_blocked").max_ms >= t("http_req_connecting").max_ms);
        assert!(t("http_req_sending").max_ms > 0.0, "{label}: sending");
        assert_eq!(t("http_req_waiting").count, c.http_reqs);
        let d = t("http_req_duration").avg_ms;
        let parts: f64 = ["http_req_sending", "http_req_waiting", "http_req_receiving"]
            .iter()
            .map(|m| t(m).avg_ms)
            .sum();
        assert!(
            (d - parts).abs() < 0.01 * d + 0.001,
            "{label}: {d} vs {parts}"
        );
        assert!(s.start_lag.is_none(), "closed model: no start lag");
    }
}

/// VUs beyond the file-descriptor limit: their failed connections are counted (error kind
/// `fd_limit`, `connections_failed`), not lost. Runs in a child process whose RLIMIT_NOFILE
/// is lowered, against a server in this process.
#[test]
fn connections_beyond_the_fd_limit_are_counted() {
    if let Ok(addr) = std::env::var("WASMBENCH_TEST_FD_CHILD") {
        let backend = std::env::var("WASMBENCH_TEST_FD_BACKEND").unwrap();
        let mut p = plan(format!("http://{addr}/"), 200, 0.5);
        p.backend = if backend == "tokio" {
            Backend::Tokio
        } else {
            Backend::Auto
        };
        let s = go(&p);
        let c = &s.counters;
        let fd_errors = c.errors.get("fd_limit").copied().unwrap_or(0);
        println!("{backend}: {c:?}");
        assert!(fd_errors > 0, "{backend}: {c:?}");
        assert!(c.connections_failed > 0, "{backend}: {c:?}");
        assert!(c.http_req_failed >= fd_errors, "{backend}: {c:?}");
        assert!(
            c.http_reqs > c.http_req_failed,
            "the VUs with a socket still ran"
        );
        assert!(render_text(&s, &[]).contains("fd_limit="));
        return;
    }
    let addr = echo(Mode::Concurrent);
    for backend in ["auto", "tokio"] {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "connections_beyond_the_fd_limit_are_counted",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("WASMBENCH_TEST_FD_CHILD", addr.to_string())
        .env("WASMBENCH_TEST_FD_BACKEND", backend);
        // 100 descriptors: enough for the runtime and some VUs, far fewer than 200 VUs.
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 100,
                    rlim_max: 100,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().expect("child test runs");
        assert!(
            out.status.success(),
            "{backend} child: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
