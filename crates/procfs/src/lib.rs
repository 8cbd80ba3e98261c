//! What Linux's `/proc` says about a process: CPU times, memory, context switches, page faults
//! and threads. Every figure is cumulative since the process started, so a caller takes two
//! readings and subtracts; none needs privileges for a process of the same user.
#![deny(missing_docs)]

use std::io;

use serde::{Deserialize, Serialize};

/// Counters of a process from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcCounters {
    /// User CPU time, ms.
    pub user_ms: u64,
    /// System CPU time, ms.
    pub sys_ms: u64,
    /// Minor page faults (no I/O).
    pub minor_faults: u64,
    /// Major page faults (I/O).
    pub major_faults: u64,
    /// Voluntary context switches (the process blocked), summed over its threads.
    pub voluntary_switches: u64,
    /// Involuntary context switches (the process was preempted), summed over its threads.
    pub involuntary_switches: u64,
    /// Threads now.
    pub threads: u64,
}

impl ProcCounters {
    /// `self - earlier`, counter by counter (threads: the later value).
    pub fn since(&self, earlier: &ProcCounters) -> ProcCounters {
        ProcCounters {
            user_ms: self.user_ms.saturating_sub(earlier.user_ms),
            sys_ms: self.sys_ms.saturating_sub(earlier.sys_ms),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
            threads: self.threads,
        }
    }

    /// User plus system CPU time, ms.
    pub fn cpu_ms(&self) -> u64 {
        self.user_ms + self.sys_ms
    }
}

/// CPU times of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// User time, ms.
    pub user_ms: u64,
    /// System time, ms.
    pub sys_ms: u64,
}

/// The fields of `/proc/<pid>/stat` after the command name, which may itself contain spaces
/// and parentheses: they resume after the last `)`. Index 0 is field 3 (`state`).
fn stat_fields(stat: &str) -> io::Result<Vec<u64>> {
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc stat"))?;
    // Field 3 is a letter; keep positions by mapping it to 0.
    Ok(rest
        .split_whitespace()
        .map(|s| s.parse().unwrap_or(0))
        .collect())
}

fn field(f: &[u64], n: usize) -> io::Result<u64> {
    // `n` is the field number of proc(5), counted from 1.
    f.get(n - 3)
        .copied()
        .ok_or_else(|| io::Error::other("malformed /proc stat"))
}

/// Reads the number of threads of `pid` (`num_threads`).
pub fn num_threads(pid: u32) -> io::Result<u64> {
    let f = stat_fields(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)?;
    field(&f, 20)
}

/// Reads the CPU times of `pid` (`utime`, `stime`).
pub fn cpu_times(pid: u32) -> io::Result<CpuTimes> {
    let f = stat_fields(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)?;
    let tck = clock_ticks_per_second();
    Ok(CpuTimes {
        user_ms: field(&f, 14)? * 1000 / tck,
        sys_ms: field(&f, 15)? * 1000 / tck,
    })
}

/// Reads every counter of `pid`.
pub fn counters(pid: u32) -> io::Result<ProcCounters> {
    let f = stat_fields(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let tck = clock_ticks_per_second();
    // `status` counts the switches of the main thread only; each thread has its own.
    let (mut voluntary, mut involuntary) = (0, 0);
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        // A thread that ended since the listing is simply not counted.
        if let Ok(ts) = std::fs::read_to_string(t.path().join("status")) {
            voluntary += status_value(&ts, "voluntary_ctxt_switches:");
            involuntary += status_value(&ts, "nonvoluntary_ctxt_switches:");
        }
    }
    Ok(ProcCounters {
        user_ms: field(&f, 14)? * 1000 / tck,
        sys_ms: field(&f, 15)? * 1000 / tck,
        minor_faults: field(&f, 10)?,
        major_faults: field(&f, 12)?,
        voluntary_switches: voluntary,
        involuntary_switches: involuntary,
        threads: status_value(&status, "Threads:"),
    })
}

fn status_value(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Current and peak resident set size of `pid` (`VmRSS`, `VmHWM` from `/proc/<pid>/status`).
pub fn memory_bytes(pid: u32) -> io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok((
        status_value(&status, "VmRSS:") * 1024,
        status_value(&status, "VmHWM:") * 1024,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_keeps_the_fields_in_place() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 1234 0 56 0 300 200 0 0 20 0 3 0";
        let f = stat_fields(stat).unwrap();
        assert_eq!(field(&f, 10).unwrap(), 1234);
        assert_eq!(field(&f, 12).unwrap(), 56);
        assert_eq!(field(&f, 14).unwrap(), 300);
        assert_eq!(field(&f, 15).unwrap(), 200);
        assert!(field(&f, 60).is_err());
    }

    #[test]
    fn this_process_is_read_and_its_counters_grow() {
        let me = std::process::id();
        let a = counters(me).unwrap();
        // Burn some CPU and fault in fresh pages.
        let mut v = vec![0u8; 16 << 20];
        let mut x = 0u64;
        for (i, b) in v.iter_mut().enumerate().step_by(4096) {
            *b = i as u8;
            x = x.wrapping_add(*b as u64);
        }
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let b = counters(me).unwrap();
        let d = b.since(&a);
        assert!(d.minor_faults >= 1000, "{d:?}");
        assert!(d.cpu_ms() >= 20, "{d:?}");
        assert!(b.threads >= 1);
        assert!(memory_bytes(me).unwrap().0 > 0);
        assert!(cpu_times(me).unwrap().user_ms >= a.user_ms);
    }
}
