//! What the kernel counts for a running server over a window: system calls by kind, context
//! switches, page faults and, where the CPU exposes them, instructions.
//!
//! [`attach`] opens the counters on every thread of a process (threads it starts later inherit
//! them); [`Attached::finish`] reads them into a [`ServerCounts`]. Counting costs no sampling and
//! no ptrace stop: the kernel increments a counter per event.
//!
//! - System calls come from the `raw_syscalls:sys_enter` tracepoint through `perf_event_open`,
//!   one counter per [`SyscallKind`] with a filter on the syscall number. That needs tracefs
//!   mounted and root (or `CAP_PERFMON`, or `kernel.perf_event_paranoid` ≤ -1).
//! - Context switches and page faults come from `/proc` ([`wasmbench_procfs`]) and need nothing.
//! - Instructions come from the CPU's hardware counter, which most VMs do not expose.
//!
//! [`handoff`] measures how far apart the server's and the load generator's CPUs are.
//!
//! What cannot be counted is never an error: the result carries a note saying why, and the
//! figure is absent rather than zero.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::ffi::CString;

use perf_event_open::config::{Cpu, Inherit, Opts, Proc};
use perf_event_open::count::Counter;
use perf_event_open::event::hw::Hardware;
use perf_event_open::event::tp::Tracepoint;
pub use wasmbench_vocab::{ServerCounts, SyscallKind};

pub mod handoff;
mod syscalls;

/// Threads counted at most: each costs one file descriptor per syscall kind, and a server with
/// more threads than this is counted on its first ones (a note says so).
const MAX_THREADS: usize = 256;

/// Why syscalls were not counted when the caller did not ask for them.
pub const NOT_ASKED: &str = "not asked for: the tracepoint counters fire on every syscall of the server and lower its throughput, so they are off unless requested (compare --count-syscalls)";

/// Where the tracepoint ids live, in the order tried.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Why a counter could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// No tracefs with the `raw_syscalls:sys_enter` tracepoint.
    #[error(
        "no tracefs with raw_syscalls:sys_enter under {} (as root: `mount -t tracefs nodev /sys/kernel/tracing`)",
        TRACEFS.join(" or ")
    )]
    NoTracefs,
    /// `perf_event_open` refused a tracepoint counter.
    #[error(
        "perf_event_open refused the tracepoint ({0}); it needs root, CAP_PERFMON or kernel.perf_event_paranoid ≤ -1"
    )]
    TracepointRefused(std::io::Error),
    /// The CPU exposes no hardware counter for instructions.
    #[error(
        "the machine exposes no hardware performance counters ({0}); most VMs have no virtual PMU"
    )]
    NoHardwareCounters(std::io::Error),
    /// The process or its thread list could not be read.
    #[error("cannot read /proc/{pid}: {source}")]
    Proc {
        /// The process.
        pid: u32,
        /// What reading it said.
        source: std::io::Error,
    },
}

/// Counters open on a process; read them with [`Attached::finish`].
pub struct Attached {
    pid: u32,
    syscalls: Vec<(SyscallKind, Counter)>,
    instructions: Vec<Counter>,
    before: Option<wasmbench_procfs::ProcCounters>,
    syscalls_not_counted: Option<String>,
    instructions_not_counted: Option<String>,
    notes: Vec<String>,
}

/// Starts counting on every thread of `pid`; syscalls only when `syscalls` is set (each syscall
/// of the server then fires its counters: measurable on a busy server, see docs/metrics.md).
/// Never fails: what cannot be counted becomes a note of the result.
pub fn attach(pid: u32, syscalls: bool) -> Attached {
    let mut notes = Vec::new();
    let tids = match threads(pid) {
        Ok(t) => t,
        Err(e) => {
            notes.push(e.to_string());
            Vec::new()
        }
    };
    if tids.len() > MAX_THREADS {
        notes.push(format!(
            "counted the first {MAX_THREADS} of the server's {} threads",
            tids.len()
        ));
    }
    let tids = &tids[..tids.len().min(MAX_THREADS)];
    let (syscalls, syscalls_not_counted) = if !syscalls {
        (Vec::new(), Some(NOT_ASKED.to_string()))
    } else {
        match open_syscall_counters(tids) {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        }
    };
    let (instructions, instructions_not_counted) = match open_instruction_counters(tids) {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let before = wasmbench_procfs::counters(pid)
        .map_err(|e| notes.push(CounterError::Proc { pid, source: e }.to_string()))
        .ok();
    Attached {
        pid,
        syscalls,
        instructions,
        before,
        syscalls_not_counted,
        instructions_not_counted,
        notes,
    }
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("pid", &self.pid)
            .field("syscall_counters", &self.syscalls.len())
            .field("instruction_counters", &self.instructions.len())
            .field("notes", &self.notes)
            .finish()
    }
}

impl Attached {
    /// Reads every counter: the totals since [`attach`].
    pub fn finish(self) -> ServerCounts {
        let Attached {
            pid,
            syscalls,
            instructions,
            before,
            mut syscalls_not_counted,
            mut instructions_not_counted,
            mut notes,
        } = self;
        let mut by_kind: BTreeMap<SyscallKind, u64> = BTreeMap::new();
        let mut unread = 0usize;
        for (kind, c) in &syscalls {
            match c.stat() {
                Ok(s) => *by_kind.entry(*kind).or_default() += s.count,
                Err(_) => unread += 1,
            }
        }
        if unread > 0 {
            notes.push(format!(
                "{unread} syscall counter(s) could not be read back (their thread ended)"
            ));
        }
        let instructions = (!instructions.is_empty()).then(|| {
            instructions
                .iter()
                .filter_map(|c| c.stat().ok())
                .map(|s| s.count)
                .sum()
        });
        // No thread at all (the process was gone): nothing was counted, and this says so.
        if syscalls.is_empty() && syscalls_not_counted.is_none() {
            syscalls_not_counted = Some("the server had no thread to count".into());
        }
        if instructions.is_none() && instructions_not_counted.is_none() {
            instructions_not_counted = Some("the server had no thread to count".into());
        }
        let after = wasmbench_procfs::counters(pid);
        let delta = match (before, after) {
            (Some(b), Ok(a)) => a.since(&b),
            (_, Err(e)) => {
                notes.push(CounterError::Proc { pid, source: e }.to_string());
                Default::default()
            }
            (None, Ok(a)) => a,
        };
        ServerCounts {
            syscalls: by_kind,
            voluntary_switches: delta.voluntary_switches,
            involuntary_switches: delta.involuntary_switches,
            minor_faults: delta.minor_faults,
            major_faults: delta.major_faults,
            instructions,
            threads: delta.threads,
            syscalls_not_counted,
            instructions_not_counted,
            notes,
        }
    }
}

/// Thread ids of `pid`, main thread first.
fn threads(pid: u32) -> Result<Vec<u32>, CounterError> {
    let proc_err = |source| CounterError::Proc { pid, source };
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(proc_err)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|t| (*t != pid, *t));
    Ok(tids)
}

fn counting() -> Opts {
    Opts {
        // Threads the server starts later count into the counter of the thread that started
        // them.
        inherit: Some(Inherit::NewChild),
        enable: true,
        ..Opts::default()
    }
}

fn sys_enter_id() -> Result<u64, CounterError> {
    TRACEFS
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(format!("{root}/events/raw_syscalls/sys_enter/id"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .ok_or(CounterError::NoTracefs)
}

fn open_syscall_counters(tids: &[u32]) -> Result<Vec<(SyscallKind, Counter)>, CounterError> {
    let id = sys_enter_id()?;
    let mut out = Vec::new();
    for &tid in tids {
        for &kind in SyscallKind::ALL {
            let counter = Counter::new(Tracepoint { id }, (Proc(tid), Cpu::ALL), counting())
                .map_err(CounterError::TracepointRefused)?;
            if let Some(filter) = syscalls::filter(kind) {
                let filter = CString::new(filter).expect("a filter is ASCII");
                counter
                    .with_ftrace_filter(&filter)
                    .map_err(CounterError::TracepointRefused)?;
            }
            out.push((kind, counter));
        }
    }
    Ok(out)
}

fn open_instruction_counters(tids: &[u32]) -> Result<Vec<Counter>, CounterError> {
    tids.iter()
        .map(|&tid| {
            Counter::new(Hardware::Instr, (Proc(tid), Cpu::ALL), counting())
                .map_err(CounterError::NoHardwareCounters)
        })
        .collect()
}
