//! How far apart two CPUs are: the time a cache line takes to go from one to the other and
//! back.
//!
//! On a virtual machine the host decides which physical cores the virtual CPUs run on, and it
//! may move them while a benchmark runs. Two virtual CPUs on sibling hyperthreads hand a cache
//! line over in tens of nanoseconds, on different cores or sockets in hundreds, and every
//! packet the load generator and the server exchange over loopback pays for that distance. A
//! short probe before each run records it, so a run made with the CPUs placed differently can
//! be told apart by a figure instead of guessed at.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Round trips per batch: long enough to average out a single interrupt (≈ 1–5 ms).
const ROUND_TRIPS: u64 = 10_000;
/// Batches per probe; the median batch is the result.
const BATCHES: usize = 5;
/// A probe gives up when the other side stops answering for this long (it was descheduled).
const STALL_LIMIT: Duration = Duration::from_millis(200);

/// Why a probe gave no figure.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The two CPUs are the same: there is nothing to hand over.
    #[error("the two CPUs are the same ({0})")]
    SameCpu(usize),
    /// A probe thread could not be started or pinned.
    #[error("cannot run a probe thread on CPU {cpu}: {source}")]
    Pin {
        /// The CPU asked for.
        cpu: usize,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// One side stopped answering (its CPU was busy with something else).
    #[error("the probe stalled for over {STALL_LIMIT:?} between CPUs {a} and {b}")]
    Stalled {
        /// The first CPU.
        a: usize,
        /// The second CPU.
        b: usize,
    },
}

fn pin_current_thread(cpu: usize) -> Result<(), HandoffError> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(HandoffError::Pin {
            cpu,
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    // SAFETY: an all-zero cpu_set_t is the empty set; `cpu` is below CPU_SETSIZE (checked
    // above), so CPU_SET writes inside it; sched_setaffinity(0) applies to this thread only.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(HandoffError::Pin {
            cpu,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Spins until `word` holds `want`; false after [`STALL_LIMIT`] without it (or when the other
/// side gave up and wrote `u64::MAX`).
fn await_value(word: &AtomicU64, want: u64) -> bool {
    let since = Instant::now();
    // Bounded: the clock is read every 1024 spins and the wait ends after STALL_LIMIT.
    loop {
        for _ in 0..1024 {
            match word.load(Ordering::Acquire) {
                v if v == want => return true,
                u64::MAX => return false,
                _ => std::hint::spin_loop(),
            }
        }
        if since.elapsed() > STALL_LIMIT {
            word.store(u64::MAX, Ordering::Release);
            return false;
        }
    }
}

/// The median time, in nanoseconds, for a cache line to go from CPU `a` to CPU `b` and back.
///
/// Runs two threads of its own, one pinned to each CPU (the calling thread's affinity is not
/// touched), for about 10–30 ms of spinning on both CPUs.
pub fn round_trip_ns(a: usize, b: usize) -> Result<f64, HandoffError> {
    if a == b {
        return Err(HandoffError::SameCpu(a));
    }
    let word = Arc::new(AtomicU64::new(0));
    let mut batches = Vec::with_capacity(BATCHES);
    std::thread::scope(|s| -> Result<(), HandoffError> {
        let echo = {
            let word = word.clone();
            std::thread::Builder::new()
                .name("cpu-probe".into())
                .spawn_scoped(s, move || -> Result<(), HandoffError> {
                    let pinned = pin_current_thread(b);
                    if pinned.is_err() {
                        word.store(u64::MAX, Ordering::Release);
                        return pinned;
                    }
                    // Odd values are A's pings, the next even value B's answer.
                    for i in 0..ROUND_TRIPS * BATCHES as u64 {
                        if !await_value(&word, 2 * i + 1) {
                            return Err(HandoffError::Stalled { a, b });
                        }
                        word.store(2 * i + 2, Ordering::Release);
                    }
                    Ok(())
                })
                .map_err(|source| HandoffError::Pin { cpu: b, source })?
        };
        let ping = (|| {
            std::thread::Builder::new()
                .name("cpu-probe".into())
                .spawn_scoped(s, || -> Result<Vec<f64>, HandoffError> {
                    pin_current_thread(a)?;
                    let mut out = Vec::with_capacity(BATCHES);
                    for batch in 0..BATCHES as u64 {
                        let t0 = Instant::now();
                        for j in 0..ROUND_TRIPS {
                            let i = batch * ROUND_TRIPS + j;
                            word.store(2 * i + 1, Ordering::Release);
                            if !await_value(&word, 2 * i + 2) {
                                return Err(HandoffError::Stalled { a, b });
                            }
                        }
                        out.push(t0.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64);
                    }
                    Ok(out)
                })
                .map_err(|source| HandoffError::Pin { cpu: a, source })?
                .join()
                .unwrap_or(Err(HandoffError::Stalled { a, b }))
        })();
        if ping.is_err() {
            // Release the echo thread if it still waits for a ping.
            word.store(u64::MAX, Ordering::Release);
        }
        let echoed = echo.join().unwrap_or(Err(HandoffError::Stalled { a, b }));
        // A side that could not be pinned makes the other one stall: report the cause.
        match (ping, echoed) {
            (Ok(found), Ok(())) => {
                batches = found;
                Ok(())
            }
            (Err(e @ HandoffError::Pin { .. }), _) | (_, Err(e @ HandoffError::Pin { .. })) => {
                Err(e)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    })?;
    batches.sort_by(f64::total_cmp);
    Ok(batches[batches.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cpus_give_a_positive_round_trip_and_one_cpu_is_refused() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(matches!(round_trip_ns(0, 0), Err(HandoffError::SameCpu(0))));
        assert!(matches!(
            round_trip_ns(0, libc::CPU_SETSIZE as usize),
            Err(HandoffError::Pin { .. })
        ));
        if cpus < 2 {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI machines have two CPUs; this one has {cpus}"
            );
            return;
        }
        let ns = round_trip_ns(0, 1).expect("a probe between CPUs 0 and 1");
        // A cache line round trip between two CPUs is tens to hundreds of nanoseconds; over
        // 100 µs would mean the probe measured scheduling, not the hand-over.
        assert!(ns > 1.0 && ns < 100_000.0, "round trip {ns} ns");
    }
}
