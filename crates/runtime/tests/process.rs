//! Process supervision and resource sampling with real child processes.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use wasmbench_runtime::launch::spawn_server;
use wasmbench_runtime::resources::cpu_times;
use wasmbench_runtime::{
    ExecMode, LaunchSpec, Native, ResourceSampler, Runtime, RuntimeError, RuntimeInfo, Target,
};

fn info() -> RuntimeInfo {
    RuntimeInfo {
        name: "test".into(),
        version: "0".into(),
        mode: ExecMode::Native,
        target: Target::Native,
        pooling: None,
        details: BTreeMap::new(),
    }
}

fn gone(pid: u32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[test]
fn sampler_sees_cpu_of_a_busy_child() {
    let mut child = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let sampler = ResourceSampler::start(pid, Duration::from_millis(10));
    let start = cpu_times(pid).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait (bounded) until the child has provably used CPU.
    loop {
        let t = cpu_times(pid).unwrap();
        if t.user_ms + t.sys_ms >= start.user_ms + start.sys_ms + 100 {
            break;
        }
        assert!(Instant::now() < deadline, "busy child used no CPU in 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let usage = sampler.stop();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(usage.cpu_user_ms + usage.cpu_sys_ms >= 100, "{usage:?}");
    assert!(usage.samples >= 1, "{usage:?}");
    assert!(
        usage.rss_peak_bytes > 0 && usage.rss_avg_bytes > 0,
        "{usage:?}"
    );
    assert!(usage.rss_avg_bytes <= usage.rss_peak_bytes, "{usage:?}");
}

#[test]
fn native_child_is_gone_after_drop() {
    let server = Native
        .launch(&LaunchSpec::new(common::artifact(Target::Native)))
        .unwrap();
    let pid = server.pid;
    assert!(!gone(pid));
    let usage = ResourceSampler::start(pid, Duration::from_millis(5));
    wasmbench_runtime::launch::http_get(server.addr, "/healthz", Duration::from_secs(5)).unwrap();
    let usage = usage.stop();
    assert!(usage.rss_peak_bytes > 0);
    drop(server);
    assert!(gone(pid), "pid {pid} still exists after Drop");
}

#[test]
fn a_child_that_exits_early_is_reported_with_its_status() {
    let mut spec = LaunchSpec::new(common::artifact(Target::Native));
    spec.env = vec![("ECHO_MODE".into(), "fast".into())];
    let e = Native.launch(&spec).unwrap_err();
    assert!(matches!(e, RuntimeError::Exited { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("exit status: 2") && e.contains("ECHO_MODE"),
        "{e}"
    );
}

#[test]
fn a_silent_child_times_out_with_the_stderr_tail() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo warming up >&2; exec sleep 30"]);
    let started = Instant::now();
    let e = spawn_server(
        cmd,
        "silent",
        info(),
        &probe("/healthz", Duration::from_millis(500)),
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let e = e.to_string();
    assert!(
        e.contains("silent was not ready within 500 ms") && e.contains("warming up"),
        "{e}"
    );
}

#[test]
fn cpu_affinity_is_applied_to_the_child() {
    let mut spec = LaunchSpec::new(common::artifact(Target::Native));
    spec.cpu_set = Some(vec![0]);
    let server = Native.launch(&spec).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid)).unwrap();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(allowed, "0");
}

/// A spec that probes `ready_path` for up to `timeout` (the artifact is not what runs: the
/// command given to `spawn_server` is).
fn probe(ready_path: &str, timeout: Duration) -> LaunchSpec {
    let mut spec = LaunchSpec::new(common::artifact(Target::Native));
    spec.ready_path = ready_path.into();
    spec.startup_timeout = timeout;
    spec
}

#[test]
fn a_wrapper_runs_the_server_in_the_same_process_with_its_environment() {
    let mut cmd = non_http_server();
    cmd.env("SERVER_VAR", "kept");
    let mut spec = probe("", Duration::from_secs(20));
    spec.wrapper = vec!["env".into(), "WRAPPER_VAR=set".into()];
    let server = spawn_server(cmd, "wrapped", info(), &spec).expect("ready under the wrapper");
    // `env` execs the server: the pid the loop measures is the server's.
    let environ = std::fs::read(format!("/proc/{}/environ", server.pid)).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("WRAPPER_VAR=set"), "{environ}");
    assert!(environ.contains("SERVER_VAR=kept"), "{environ}");
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", server.pid)).unwrap();
    let program = cmdline.split('\0').next().unwrap_or_default();
    assert!(program.ends_with("python3"), "{cmdline}");
    server.stop().expect("stop");
}

/// A TCP service that is not HTTP: it accepts connections and closes them without a byte.
fn non_http_server() -> Command {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import socket\n\
         s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)\n\
         print('listening on 127.0.0.1:%d' % s.getsockname()[1], flush=True)\n\
         for _ in range(1000):\n    c, _ = s.accept(); c.close()\n",
    ]);
    cmd
}

#[test]
fn without_a_ready_path_an_accepted_connection_means_ready() {
    let server = spawn_server(
        non_http_server(),
        "tcp-only",
        info(),
        &probe("", Duration::from_secs(20)),
    )
    .expect("ready by TCP connect");
    assert!(server.spawn_to_ready > Duration::ZERO);
    assert_ne!(server.addr.port(), 0);
    let pid = server.pid;
    server.stop().expect("stop");
    assert!(gone(pid));

    // The same service is never ready by an HTTP probe: it answers no HTTP.
    let e = spawn_server(
        non_http_server(),
        "tcp-only",
        info(),
        &probe("/healthz", Duration::from_millis(1500)),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tcp-only was not ready within 1500 ms"), "{e}");
}

/// A server that accepts (so it is ready) and burns CPU in two threads from its first
/// instruction.
fn busy_server() -> Command {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import socket, threading, multiprocessing\n\
         def burn():\n    while True: pass\n\
         s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)\n\
         print('listening on 127.0.0.1:%d' % s.getsockname()[1], flush=True)\n\
         multiprocessing.Process(target=burn, daemon=True).start()\n\
         burn()\n",
    ]);
    cmd
}

/// `--server-cpu-limit`: the server and the process it starts share one quota, the runtime's
/// details say so, and the cgroup is gone once the server is. Needs root (CI runs as root).
#[test]
fn a_cpu_limit_holds_the_server_and_its_children_to_their_quota() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs the tests as root: a CPU limit needs a cgroup"
        );
        eprintln!("skipped: a CPU limit needs root");
        return;
    }
    let mut spec = probe("", Duration::from_secs(20));
    spec.cpu_limit = Some(0.25);
    let server = spawn_server(busy_server(), "busy", info(), &spec).expect("ready under a limit");
    let detail = server
        .info
        .details
        .get("cpu_limit")
        .cloned()
        .unwrap_or_default();
    assert!(detail.starts_with("0.25 CPU"), "{detail}");
    let dir = server.cgroup().expect("a cgroup of its own").to_path_buf();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let joined = std::fs::read_to_string(format!("/proc/{}/cgroup", server.pid)).unwrap();
    assert!(
        joined.lines().any(|l| l.ends_with(&format!("/{name}"))),
        "the server is not in {name}: {joined}"
    );
    // Both processes of the group, over two seconds of wall time.
    let group_cpu = || -> u64 {
        let mut ms = 0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Field 5 (after the command's closing parenthesis) is the process group.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let pgrp: Option<u32> = after.split_whitespace().nth(2).and_then(|x| x.parse().ok());
            if pgrp == Some(server.pid)
                && let Ok(t) = cpu_times(pid)
            {
                ms += t.user_ms + t.sys_ms;
            }
        }
        ms
    };
    let (cpu0, t0) = (group_cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let used = (group_cpu() - cpu0) as f64 / t0.elapsed().as_millis() as f64;
    // Unlimited, two busy processes would use up to 2 CPUs.
    assert!(
        used < 0.4,
        "the group used {used:.2} CPUs under a 0.25 limit"
    );
    assert!(
        used > 0.1,
        "the group used {used:.2} CPUs: it should run, at its quota"
    );
    server.stop().expect("stop");
    assert!(!dir.exists(), "cgroup {} left behind", dir.display());
}
