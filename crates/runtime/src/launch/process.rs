//! Supervising a server child process: start it, wait until it answers, kill it (and everything
//! it started) when done.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmbench_vocab::RuntimeInfo;

use super::LaunchSpec;
use super::cgroup::CpuLimit;
use super::ready::{
    MIN_PROBE_WAIT, PROBE_INTERVAL, connectable, http_get, parse_listening, rejects_readiness,
};
use crate::error::RuntimeError;
use crate::sync::lock;

pub use wasmbench_vocab::HOST_REPORT_PREFIX;

/// Lines of the child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 40;

/// How long `stop` lets the server exit after `SIGTERM` before it sends `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A server process that answered its readiness probe. Dropping it kills the process group.
#[derive(Debug)]
pub struct RunningServer {
    /// Address to connect to (an unspecified listen address is replaced by loopback).
    pub addr: SocketAddr,
    /// Process id of the server (also its process group id).
    pub pid: u32,
    /// From just before `spawn` to the first `200` from the readiness probe.
    pub spawn_to_ready: Duration,
    /// What runs the workload.
    pub info: RuntimeInfo,
    child: Child,
    reaped: bool,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    host_report: Arc<Mutex<Option<String>>>,
    readers: Vec<JoinHandle<()>>,
    /// The server's cgroup under `--server-cpu-limit`; dropped (removed) after the server is
    /// gone, since `Drop` kills it before the fields are dropped.
    cpu_limit: Option<CpuLimit>,
}

impl RunningServer {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The cgroup the server runs in under a CPU limit (`LaunchSpec::cpu_limit`).
    pub fn cgroup(&self) -> Option<&std::path::Path> {
        self.cpu_limit.as_ref().map(CpuLimit::dir)
    }

    /// The last lines the server wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        lock(&self.stderr_tail)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The JSON the embedded host printed after the [`HOST_REPORT_PREFIX`], if any. Waits up
    /// to `wait` for it, since stderr is read by another thread.
    pub fn host_report_json(&self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(r) = lock(&self.host_report).clone() {
                return Some(r);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `Some(status)` when the server has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.reaped {
            return None;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.reaped = true;
                Some(s)
            }
            _ => None,
        }
    }

    /// Stops the server: `SIGTERM` to its process group, `SIGKILL` after a grace period.
    pub fn stop(mut self) -> Result<(), RuntimeError> {
        self.terminate(libc::SIGTERM, STOP_GRACE)
    }

    fn terminate(&mut self, signal: i32, grace: Duration) -> Result<(), RuntimeError> {
        if !self.reaped {
            kill_group(self.pid, signal);
            let deadline = Instant::now() + grace;
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Ok(None) => {
                        kill_group(self.pid, libc::SIGKILL);
                        self.child
                            .wait()
                            .map_err(|e| RuntimeError::io("waiting for the server", e))?;
                        break;
                    }
                    Err(e) => return Err(RuntimeError::io("waiting for the server", e)),
                }
            }
            self.reaped = true;
        }
        // Anything the server started lives in its group; make sure it is gone too.
        kill_group(self.pid, libc::SIGKILL);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ok(())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.terminate(libc::SIGKILL, Duration::from_secs(5));
    }
}

fn kill_group(pgid: u32, signal: i32) {
    // SAFETY: plain syscall; the negative pid addresses the process group created for the child
    // by `process_group(0)`, so no unrelated process is signalled.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// `cmd` run under `wrapper` (its program first), with the same environment and directory.
fn wrapped(cmd: Command, wrapper: &[String]) -> Command {
    let Some((program, args)) = wrapper.split_first() else {
        return cmd;
    };
    let mut w = Command::new(program);
    w.args(args).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        w.current_dir(dir);
    }
    w
}

/// Rust's switch for backtraces of library errors (`std::backtrace::Backtrace::capture`),
/// read before `RUST_BACKTRACE`.
const LIB_BACKTRACE: &str = "RUST_LIB_BACKTRACE";

/// Starts `cmd` as a server and waits until it is ready: first its address, from a stdout
/// line `listening on <ip:port>` or, when `spec.port` is fixed, from that port accepting a TCP
/// connection (a service need not announce itself); then `GET <spec.ready_path>` answering
/// `200` (or, when it is empty, the port accepting a TCP connection). A probe answer that
/// waiting will not change (see [`rejects_readiness`]) stops the server at once.
///
/// `cmd` gets piped stdout/stderr, its own process group and, when `spec.cpu_set` is given, that
/// CPU affinity; it runs under `spec.wrapper` when there is one.
pub fn spawn_server(
    cmd: Command,
    runtime: &str,
    info: RuntimeInfo,
    spec: &LaunchSpec,
) -> Result<RunningServer, RuntimeError> {
    let cpu_set = spec.cpu_set.as_deref();
    let ready_path = spec.ready_path.as_str();
    let timeout = spec.startup_timeout;
    let mut cmd = wrapped(cmd, &spec.wrapper);
    if std::env::var_os(LIB_BACKTRACE).is_none() {
        // With RUST_BACKTRACE=1 in the shell, a Rust server would unwind its stack for every
        // error value it makes, and Wasmtime makes one per finished instance: 6% of a
        // wasi:http request's CPU. Panics still print their backtrace.
        cmd.env(LIB_BACKTRACE, "0");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cpus) = cpu_set {
        // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET only writes inside it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            if c >= libc::CPU_SETSIZE as usize {
                return Err(RuntimeError::Config(format!(
                    "CPU {c} is out of range (max {}); pick CPUs listed by `nproc --all`",
                    libc::CPU_SETSIZE - 1
                )));
            }
            // SAFETY: `c` is below CPU_SETSIZE (checked above), so the write stays in `set`.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: the closure runs between fork and exec and only makes one async-signal-safe
        // syscall on a value prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let cpu_limit = match spec.cpu_limit {
        Some(cpus) => {
            let limit = CpuLimit::new(cpus, &cgroup_name())?;
            limit.apply(&mut cmd);
            Some(limit)
        }
        None => None,
    };
    die_with_parent(&mut cmd);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let mut child = spawn_from_spawner(cmd).map_err(|source| RuntimeError::Spawn {
        runtime: runtime.to_string(),
        program,
        source,
    })?;
    let pid = child.id();

    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let host_report = Arc::new(Mutex::new(None));
    let mut readers = Vec::new();
    if let Some(err) = child.stderr.take() {
        let tail = Arc::clone(&stderr_tail);
        let report = Arc::clone(&host_report);
        readers.push(std::thread::spawn(move || read_stderr(err, &tail, &report)));
    }
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(out) = child.stdout.take() {
        readers.push(std::thread::spawn(move || {
            // Keep reading after readiness so a chatty server never blocks on a full pipe.
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        }));
    } else {
        drop(tx);
    }

    let mut info = info;
    if let Some(limit) = &cpu_limit {
        info.details.insert("cpu_limit".into(), limit.describe());
    }
    let mut server = RunningServer {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        pid,
        spawn_to_ready: Duration::ZERO,
        info,
        child,
        reaped: false,
        stderr_tail,
        host_report,
        readers,
        cpu_limit,
    };
    let deadline = started + timeout;
    let not_ready = |server: &mut RunningServer, last_error: String| {
        let _ = server.terminate(libc::SIGKILL, Duration::from_secs(2));
        RuntimeError::NotReady {
            runtime: runtime.to_string(),
            timeout_ms: timeout.as_millis(),
            last_error,
            stderr_tail: server.stderr_tail(),
        }
    };
    let exited = |server: &mut RunningServer, status: ExitStatus| {
        let _ = server.terminate(libc::SIGKILL, Duration::ZERO);
        RuntimeError::Exited {
            runtime: runtime.to_string(),
            status: status.to_string(),
            stderr_tail: server.stderr_tail(),
        }
    };

    // Phase 1: learn the address from stdout, or from the fixed port accepting.
    let fixed = (spec.port != 0).then(|| connectable(SocketAddr::new(spec.host, spec.port)));
    let mut stdout_open = true;
    let cancelled = |server: &mut RunningServer| {
        let _ = server.terminate(libc::SIGKILL, Duration::ZERO);
        RuntimeError::Cancelled {
            runtime: runtime.to_string(),
        }
    };
    let addr = loop {
        if let Some(status) = server.try_exit_status() {
            return Err(exited(&mut server, status));
        }
        if spec.is_cancelled() {
            return Err(cancelled(&mut server));
        }
        let now = Instant::now();
        if now >= deadline {
            let why = match (fixed, stdout_open) {
                (Some(a), _) => format!(
                    "no `listening on <ip:port>` line on stdout, and nothing accepted on {a}, \
                     the port it was given (`{{port}}` in its command, or $PORT): does it listen \
                     there?"
                ),
                (None, true) => "no `listening on <ip:port>` line on stdout".into(),
                (None, false) => "stdout was closed without a `listening on <ip:port>` line".into(),
            };
            return Err(not_ready(&mut server, why));
        }
        let wait = (deadline - now).min(Duration::from_millis(20));
        if let Some(a) = fixed
            && std::net::TcpStream::connect_timeout(&a, wait.max(MIN_PROBE_WAIT)).is_ok()
        {
            break a;
        }
        if !stdout_open {
            // Only the exit status, the fixed port or the deadline can end this phase now.
            std::thread::sleep(if fixed.is_some() {
                PROBE_INTERVAL
            } else {
                wait
            });
            continue;
        }
        let wait = if fixed.is_some() {
            PROBE_INTERVAL
        } else {
            wait
        };
        match rx.recv_timeout(wait) {
            Ok(line) => {
                if let Some(addr) = parse_listening(&line) {
                    break addr;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stdout_open = false,
        }
    };
    server.addr = connectable(addr);

    // Phase 2: probe until 200 (or until the port accepts a connection).
    loop {
        let wait = Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()));
        let last_error = if ready_path.is_empty() {
            match std::net::TcpStream::connect_timeout(&server.addr, wait.max(MIN_PROBE_WAIT)) {
                Ok(_) => break,
                Err(e) => format!("connecting to {} failed: {e}", server.addr),
            }
        } else {
            match http_get(server.addr, ready_path, wait) {
                Ok((200, _)) => break,
                Ok((status, _)) if rejects_readiness(status) => {
                    let _ = server.terminate(libc::SIGKILL, Duration::from_secs(2));
                    return Err(RuntimeError::ReadyRejected {
                        runtime: runtime.to_string(),
                        path: ready_path.to_string(),
                        status,
                    });
                }
                Ok((status, _)) => format!("GET {ready_path} answered {status}"),
                Err(e) => e,
            }
        };
        if let Some(status) = server.try_exit_status() {
            return Err(exited(&mut server, status));
        }
        if Instant::now() >= deadline {
            return Err(not_ready(&mut server, last_error));
        }
        if spec.is_cancelled() {
            return Err(cancelled(&mut server));
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
    server.spawn_to_ready = started.elapsed();
    Ok(server)
}

/// Makes the kernel kill the child when this process dies, however it dies (SIGKILL, a
/// crash, a test's timeout): a server must never outlive the run that started it.
/// A cgroup name no other server of this or another wasmbench process uses.
fn cgroup_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("wasmbench-{}-{n}", std::process::id())
}

fn die_with_parent(cmd: &mut Command) {
    // SAFETY: getpid is async-signal-safe and called before the fork.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (prctl, getppid, _exit) on values prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died between fork and prctl: nothing would deliver the signal.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// A child started for [`spawn_from_spawner`] and where its `spawn` result goes.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from one thread that lives as long as the process. The kernel sends the
/// parent-death signal when the *thread* that forked the child exits, and launches run on
/// blocking-pool threads that exit when idle: forking from one of those would kill the
/// server mid-run.
fn spawn_from_spawner(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: std::sync::OnceLock<Option<mpsc::Sender<SpawnRequest>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("server-spawner".into())
            .spawn(move || {
                for (mut cmd, back) in rx {
                    let _ = back.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| tx)
    });
    let unavailable = || std::io::Error::other("the thread that starts servers is not running");
    let spawner = spawner.as_ref().ok_or_else(unavailable)?;
    let (back, result) = mpsc::channel();
    spawner.send((cmd, back)).map_err(|_| unavailable())?;
    result.recv().map_err(|_| unavailable())?
}

fn read_stderr(err: impl Read, tail: &Mutex<VecDeque<String>>, report: &Mutex<Option<String>>) {
    for line in BufReader::new(err).lines() {
        let Ok(line) = line else { break };
        if let Some(json) = line.strip_prefix(HOST_REPORT_PREFIX) {
            *lock(report) = Some(json.to_string());
        }
        let mut t = lock(tail);
        if t.len() == STDERR_TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_its_tail_and_the_host_report() {
        let mut text = String::new();
        for i in 0..STDERR_TAIL_LINES + 5 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str(&format!(
            "{HOST_REPORT_PREFIX}{{\"mode\":\"winch\"}}\nlast\n"
        ));
        let tail = Mutex::new(VecDeque::new());
        let report = Mutex::new(None);
        read_stderr(text.as_bytes(), &tail, &report);
        let tail = tail.into_inner().unwrap();
        assert_eq!(tail.len(), STDERR_TAIL_LINES);
        assert_eq!(tail.back().map(String::as_str), Some("last"));
        assert_eq!(tail.front().map(String::as_str), Some("line 7"));
        assert_eq!(
            report.into_inner().unwrap().as_deref(),
            Some("{\"mode\":\"winch\"}")
        );
    }
}
