//! A declared CPU limit for a server: a cgroup of its own with a CFS bandwidth quota, what a
//! Kubernetes pod's CPU limit is. The child joins the cgroup between fork and exec, so every
//! thread it ever starts is limited from its first instruction.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RuntimeError;

/// The CFS period of the quota. Kubernetes' default is 100 ms; a server that used its quota
/// early in a period then waits for the next one, so a shorter period keeps those pauses
/// (period − quota) well below a latency SLO of milliseconds, and the limit then shows as
/// capacity, not as a tail made of throttling.
pub const PERIOD: Duration = Duration::from_millis(10);

/// The root of cgroup v1's `cpu` controller.
const V1_CPU: &str = "/sys/fs/cgroup/cpu";
/// The root of the cgroup v2 hierarchy.
const V2_ROOT: &str = "/sys/fs/cgroup";

/// A cgroup made for one server; removed when dropped (after the server is gone).
#[derive(Debug)]
pub struct CpuLimit {
    /// `cgroup.procs`, opened before the fork: the child writes to it, not to a path.
    procs: File,
    /// The CPUs per period, as declared.
    cpus: f64,
    /// Declared last: dropped after `procs` is closed.
    dir: Made,
}

impl CpuLimit {
    /// A new cgroup named `name` whose processes get `cpus` CPUs' worth of time per period.
    pub fn new(cpus: f64, name: &str) -> Result<CpuLimit, RuntimeError> {
        if !(cpus.is_finite() && cpus >= 0.01) {
            return Err(RuntimeError::Config(format!(
                "a server CPU limit of {cpus} CPUs is not possible: give at least 0.01"
            )));
        }
        let period_us = PERIOD.as_micros() as u64;
        let quota_us = ((cpus * period_us as f64).round() as u64).max(1000);
        let v2 = Path::new(V2_ROOT).join("cgroup.controllers").is_file();
        let root = if v2 { V2_ROOT } else { V1_CPU };
        let dir = Path::new(root).join(name);
        let unusable = |what: &str, e: std::io::Error| {
            RuntimeError::Config(format!(
                "--server-cpu-limit needs a cgroup of its own, and {what} {} failed ({e}): run \
                 as root on a machine whose cgroup cpu controller is mounted at {root}, or \
                 leave --server-cpu-limit out",
                dir.display()
            ))
        };
        std::fs::create_dir(&dir).map_err(|e| unusable("creating", e))?;
        let made = Made(dir.clone());
        let write = |file: &str, value: String| {
            std::fs::write(dir.join(file), value)
                .map_err(|e| unusable(&format!("writing {file} in"), e))
        };
        if v2 {
            write("cpu.max", format!("{quota_us} {period_us}"))?;
        } else {
            write("cpu.cfs_period_us", period_us.to_string())?;
            write("cpu.cfs_quota_us", quota_us.to_string())?;
        }
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| unusable("opening cgroup.procs in", e))?;
        Ok(CpuLimit {
            procs,
            cpus,
            dir: made,
        })
    }

    /// Makes `cmd`'s child join the cgroup before it executes anything.
    pub(crate) fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let fd = self.procs.as_raw_fd();
        // SAFETY: the closure runs between fork and exec and makes one async-signal-safe
        // syscall (write) on a file descriptor opened before the fork; "0" is the writer.
        unsafe {
            cmd.pre_exec(move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// The limit in words, for the runtime's details in a report.
    pub fn describe(&self) -> String {
        let period_ms = PERIOD.as_secs_f64() * 1e3;
        format!(
            "{} CPU: a CFS quota of {:.1} ms per {period_ms:.0} ms period",
            self.cpus,
            self.cpus * period_ms
        )
    }
}

/// A cgroup directory this process made; removed when dropped, by then empty: its server
/// and everything it started were killed and reaped first.
#[derive(Debug)]
struct Made(PathBuf);

impl Drop for Made {
    fn drop(&mut self) {
        // A process that just exited may take a moment to leave the cgroup; bounded retries.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_below_a_hundredth_of_a_cpu_is_refused() {
        for cpus in [0.0, -1.0, f64::NAN, 0.001] {
            let e = CpuLimit::new(cpus, "wasmbench-test-refused").unwrap_err();
            assert!(e.to_string().contains("at least 0.01"), "{e}");
        }
    }
}
