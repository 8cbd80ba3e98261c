//! CPU and memory of a process, read from `/proc/<pid>`: once, or sampled on a background
//! thread while a server is under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// Most threads the process had at once in a sample.
    #[serde(default)]
    pub threads_peak: u64,
}

pub use wasmbench_procfs::{CpuTimes, cpu_times, memory_bytes};

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
                if let Ok(n) = wasmbench_procfs::num_threads(pid) {
                    usage.threads_peak = usage.threads_peak.max(n);
                }
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
    fn reads_own_proc_entries() {
        let pid = std::process::id();
        cpu_times(pid).unwrap();
        let (rss, hwm) = memory_bytes(pid).unwrap();
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
    }
}
