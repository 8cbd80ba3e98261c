//! Facts about the machine a comparison ran on, recorded in every result.

use std::process::Command;

use wasmbench_report::{Environment, Platform};

/// Reads this machine's facts for the report; anything unreadable is left empty rather than
/// failing the run. The host name is not recorded (a report is often shared).
pub fn detect() -> Environment {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_bytes = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    Environment {
        platform: Platform::Local,
        cpu_model,
        cpu_count: online_cpus(&cpuinfo) as u32,
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        os,
        hostname: None,
        rustc_version: Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        memory_bytes,
        details: Default::default(),
        kubernetes: None,
    }
}

/// CPUs of the machine, not of this process: after pinning, `available_parallelism` only sees
/// the load generator's share.
pub fn online_cpus(cpuinfo: &str) -> usize {
    let n = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// CPUs of the machine (see [`online_cpus`]).
pub fn machine_cpus() -> usize {
    online_cpus(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let e = detect();
        assert!(e.cpu_count >= 1);
        if cfg!(target_os = "linux") {
            assert!(!e.kernel.is_empty());
            assert!(e.memory_bytes > 0);
        }
    }
}
