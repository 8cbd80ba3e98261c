//! Supervising a server child process: start it, wait until it answers, kill it (and everything
//! it started) when done, and sample its CPU and memory from `/proc`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::runtime::RuntimeInfo;

/// Lines of the child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 40;

pub use wasmbench_vocab::HOST_REPORT_PREFIX;

/// Gap between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// connect_timeout rejects a zero timeout.
const MIN_PROBE_WAIT: Duration = Duration::from_millis(1);

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
}

impl RunningServer {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `cmd` as a server and waits until it is ready: first a stdout line
/// `listening on <ip:port>`, then `GET <ready_path>` answering `200` (or, when `ready_path` is
/// empty, the port accepting a TCP connection).
///
/// `cmd` gets piped stdout/stderr, its own process group and, when `cpu_set` is given, that CPU
/// affinity.
pub fn spawn_server(
    mut cmd: Command,
    runtime: &str,
    info: RuntimeInfo,
    cpu_set: Option<&[usize]>,
    ready_path: &str,
    timeout: Duration,
) -> Result<RunningServer, RuntimeError> {
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
    let program = cmd.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
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

    // Phase 1: learn the address from stdout.
    let mut stdout_open = true;
    let addr = loop {
        if let Some(status) = server.try_exit_status() {
            return Err(exited(&mut server, status));
        }
        let now = Instant::now();
        if now >= deadline {
            let why = if stdout_open {
                "no `listening on <ip:port>` line on stdout"
            } else {
                "stdout was closed without a `listening on <ip:port>` line"
            };
            return Err(not_ready(&mut server, why.into()));
        }
        let wait = (deadline - now).min(Duration::from_millis(20));
        if !stdout_open {
            // Only the exit status or the deadline can end this phase now.
            std::thread::sleep(wait);
            continue;
        }
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
        std::thread::sleep(PROBE_INTERVAL);
    }
    server.spawn_to_ready = started.elapsed();
    Ok(server)
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

/// Parses `listening on <ip:port>` (the line the echo service and `wasmbench serve` print).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim()
        .strip_prefix("listening on ")?
        .trim()
        .trim_start_matches("http://")
        .parse()
        .ok()
}

/// Replaces an unspecified address (`0.0.0.0`, `::`) by the loopback address of its family.
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// One `GET` over a fresh TCP connection (`Connection: close`); returns the status code and
/// the body. Used for readiness probes.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let timeout = timeout.max(Duration::from_millis(1));
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = Vec::new();
    // Bounded: the server closes after the response; the read timeout ends a stuck one.
    s.take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete response from {addr} ({} bytes)", buf.len()))?;
    let status_line = String::from_utf8_lossy(
        &buf[..buf[..head_end]
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(head_end)],
    )
    .into_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    Ok((status, buf[head_end + 4..].to_vec()))
}

/// Waits until `GET path` on `addr` answers `200`, or the deadline passes (then returns the
/// last error).
pub fn wait_ready(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match http_get(addr, path, left.min(Duration::from_secs(1))) {
            Ok((200, _)) => return Ok(started.elapsed()),
            Ok((s, _)) => format!("GET {path} answered {s}"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}

/// CPU and memory used by a process while it was sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// User CPU time consumed between `start` and `stop`.
    pub cpu_user_ms: u64,
    /// System CPU time consumed between `start` and `stop`.
    pub cpu_sys_ms: u64,
    /// Peak resident set size (the larger of the kernel's `VmHWM` and the sampled maximum).
    pub rss_peak_bytes: u64,
    /// Mean of the sampled resident set sizes.
    pub rss_avg_bytes: u64,
    /// Number of samples taken.
    pub samples: u64,
}

/// CPU times of a process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// User time.
    pub user_ms: u64,
    /// System time.
    pub sys_ms: u64,
}

/// Reads the CPU times of `pid`.
pub fn cpu_times(pid: u32) -> std::io::Result<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'. utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("malformed /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> std::io::Result<u64> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("malformed /proc stat"))
    };
    let tck = clock_ticks_per_second();
    Ok(CpuTimes {
        user_ms: field(11)? * 1000 / tck,
        sys_ms: field(12)? * 1000 / tck,
    })
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Current and peak resident set size of `pid` (`VmRSS`, `VmHWM` from `/proc/<pid>/status`).
pub fn memory_bytes(pid: u32) -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((kb("VmRSS:") * 1024, kb("VmHWM:") * 1024))
}

/// Samples a process's CPU and memory on a background thread.
#[derive(Debug)]
pub struct ResourceSampler {
    stop: Arc<AtomicBool>,
    wake: mpsc::Sender<()>,
    handle: Option<JoinHandle<ResourceUsage>>,
}

impl ResourceSampler {
    /// Starts sampling `pid` every `interval`.
    pub fn start(pid: u32, interval: Duration) -> ResourceSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, rx) = mpsc::channel::<()>();
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let first = cpu_times(pid).ok();
            let mut last = first;
            let mut usage = ResourceUsage::default();
            let mut rss_sum = 0u128;
            // Ends when the process is gone, or when `stop` is called.
            while let Ok((rss, hwm)) = memory_bytes(pid) {
                usage.samples += 1;
                rss_sum += u128::from(rss);
                usage.rss_peak_bytes = usage.rss_peak_bytes.max(rss).max(hwm);
                if let Ok(t) = cpu_times(pid) {
                    last = Some(t);
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                match rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // Woken by `stop` (or the sampler was dropped).
                    _ => {
                        // One last sample so the CPU figure covers the whole window.
                        if let Ok(t) = cpu_times(pid) {
                            last = Some(t);
                        }
                        break;
                    }
                }
            }
            if let (Some(a), Some(b)) = (first, last) {
                usage.cpu_user_ms = b.user_ms.saturating_sub(a.user_ms);
                usage.cpu_sys_ms = b.sys_ms.saturating_sub(a.sys_ms);
            }
            if usage.samples > 0 {
                usage.rss_avg_bytes = (rss_sum / u128::from(usage.samples)) as u64;
            }
            usage
        });
        ResourceSampler {
            stop,
            wake,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns what was measured.
    pub fn stop(mut self) -> ResourceUsage {
        self.finish()
    }

    fn finish(&mut self) -> ResourceUsage {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.send(());
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ResourceSampler {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        assert_eq!(
            parse_listening("listening on 0.0.0.0:1234"),
            Some("0.0.0.0:1234".parse().unwrap())
        );
        assert_eq!(
            parse_listening("listening on [::1]:80\n"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_listening("listening on fd 3"), None);
        assert_eq!(
            connectable("0.0.0.0:9".parse().unwrap()),
            "127.0.0.1:9".parse().unwrap()
        );
    }

    #[test]
    fn reads_own_proc_entries() {
        let pid = std::process::id();
        cpu_times(pid).unwrap();
        let (rss, hwm) = memory_bytes(pid).unwrap();
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
    }
}
