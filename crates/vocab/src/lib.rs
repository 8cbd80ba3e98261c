//! The shared vocabulary of wasmbench: how the workload's code runs ([`ExecMode`]), what it is
//! built for ([`Target`]), how the load generator uses connections ([`ConnectionMode`]), where
//! a comparison ran ([`Platform`]), how it schedules its measured load ([`Design`]), what a pod
//! may use ([`PodResources`]), the statistics of a latency metric ([`TrendStats`]), what the
//! kernel counted for a server ([`ServerCounts`], [`SyscallKind`]) and what code its
//! instructions ran in ([`CodeKind`]); how every flag and plan file writes a duration
//! ([`duration`]), how every result file is written ([`result_file`]) and the latency tail of
//! a run over time and per VU ([`tail`]).
//!
//! Each concept is declared here once; the runtime, load engine, report model, comparison loop,
//! Kubernetes driver and CLI all use these types, so adding a case is a compile error wherever it
//! is not handled (no match over them has a catch-all arm).
#![deny(missing_docs)]

pub mod duration;
pub mod result_file;
pub mod tail;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares `as_str`, `ALL`, `Display` and `FromStr` from one table of names, so the name a value
/// is printed with and the names it is parsed from cannot drift apart.
macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// Every value, in report order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used on the command line, in JSON and in reports.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name $(| $alias)* => Ok($ty::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?}: use {}"),
                        other,
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

/// How the workload's code is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecMode {
    /// Machine code from rustc: an ordinary process, no runtime.
    Native,
    /// Wasm compiled by Cranelift when the server starts.
    CraneliftJit,
    /// Wasm compiled ahead of the run (e.g. a cached `.cwasm`) and loaded at start.
    Precompiled,
    /// Wasm compiled by Winch, Wasmtime's baseline compiler.
    Winch,
    /// Wasm compiled to Pulley bytecode and interpreted (Wasmtime's portable interpreter).
    Pulley,
    /// Another runtime's plain interpreter.
    Interpreter,
    /// Another runtime's ahead-of-time compiled form.
    Aot,
    /// Wasm run by a runtime that did not report how (a user's image under a RuntimeClass
    /// whose handler prints nothing about itself).
    Unreported,
}

named_enum!(ExecMode, "execution mode", {
    Native => "native",
    CraneliftJit => "cranelift-jit",
    Precompiled => "precompiled",
    Winch => "winch",
    Pulley => "pulley",
    Interpreter => "interpreter",
    Aot => "aot",
    Unreported => "unreported",
});

/// What the workload is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The host's own triple: an ordinary executable.
    Native,
    /// `wasm32-wasip1`: a core Wasm module (WASI preview 1).
    Wasip1,
    /// `wasm32-wasip2`: a Wasm component (WASI 0.2; sockets through `wasi:sockets`, or a
    /// `wasi:http/proxy` component).
    Wasip2,
    /// WebAssembly whose kind (module or component) the run did not observe: a user's image
    /// under a runtime that does not report it. Never a build target.
    Wasm,
}

named_enum!(Target, "target", {
    Native => "native",
    Wasip1 => "wasip1" | "wasm32-wasip1",
    Wasip2 => "wasip2" | "wasm32-wasip2",
    Wasm => "wasm",
});

impl Target {
    /// The rustc target triple, `None` for the host (and for [`Target::Wasm`], which is never
    /// built).
    pub fn triple(self) -> Option<&'static str> {
        match self {
            Target::Native => None,
            Target::Wasip1 => Some("wasm32-wasip1"),
            Target::Wasip2 => Some("wasm32-wasip2"),
            Target::Wasm => None,
        }
    }

    /// Whether artifacts for this target are WebAssembly.
    pub fn is_wasm(self) -> bool {
        match self {
            Target::Native => false,
            Target::Wasip1 | Target::Wasip2 | Target::Wasm => true,
        }
    }
}

/// How the load generator uses connections.
///
/// Written as `keep-alive` or `new-connection-per-request`; `close` (the `--connection` flag and
/// `wasmbench.toml`) and `new-per-request` (load plans and summaries written before the names
/// were merged) are read as the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionMode {
    /// Reuse each VU's connection while the server allows it (HTTP/1.1 keep-alive, k6's default).
    #[default]
    KeepAlive,
    /// Open a new TCP connection for every request and send `Connection: close` (k6's
    /// `noConnectionReuse: true`; what the demo's server forced).
    #[serde(alias = "close", alias = "new-per-request")]
    NewConnectionPerRequest,
}

named_enum!(ConnectionMode, "connection mode", {
    KeepAlive => "keep-alive",
    NewConnectionPerRequest => "new-connection-per-request" | "close" | "new-per-request",
});

/// What a load run was planned to be, and what of it could not happen as planned: a report
/// compares it with what the run did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedRun {
    /// The executor's duration, seconds (graceful stop excluded).
    pub duration_s: f64,
    /// VUs that were each to hold a connection for the whole run (constant-vus, summed over
    /// merged load generators); `None` for the executors whose VUs come and go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u64>,
    /// Iterations cut off by the end of the run (k6's `interrupted_iterations`).
    pub interrupted_iterations: u64,
}

impl PlannedRun {
    /// Whether a run of `actual_s` lasted well past its plan: in-flight iterations end within
    /// milliseconds of the plan, so half a second (or a tenth of a long run) more means VUs
    /// were stuck, e.g. in a connect that the server's listen backlog left waiting.
    pub fn overran(&self, actual_s: f64) -> bool {
        actual_s > self.duration_s + (0.1 * self.duration_s).max(0.5)
    }
}

/// How a comparison schedules its measured load across the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Each variant's server starts once and stays up; the load is measured in short blocks
    /// that alternate between the variants in a shuffled order each round, and every ratio is
    /// computed from the blocks of the same round. What drifts on the machine (frequency,
    /// a neighbour's load) moves both blocks of a round alike, so it cancels in the ratio.
    Interleaved,
    /// Each repeat restarts every variant's server and measures one run of the whole
    /// duration (k6's "one run" per repeat); the variants' runs of a repeat are paired.
    Restart,
    /// As interleaved, but each round's blocks run at the same time, every server loaded at
    /// once on the same CPUs, so a round's blocks share all the machine's interference (duet
    /// benchmarking); the servers also compete for those CPUs. The default: it gave the
    /// narrowest ratio intervals per minute of measuring (docs/benchmarks.md).
    #[default]
    Duet,
}

named_enum!(Design, "design", {
    Interleaved => "interleaved",
    Restart => "restart",
    Duet => "duet",
});

impl Design {
    /// Whether each server starts once and is measured in rounds of short blocks.
    pub fn in_blocks(self) -> bool {
        match self {
            Design::Interleaved | Design::Duet => true,
            Design::Restart => false,
        }
    }
}

/// A family of system calls counted per request on the server side.
///
/// `all` counts every syscall; the others count the calls that wait for readiness, receive,
/// send and accept, under every name Linux has for each (`poll`, `ppoll`, `epoll_wait`… for
/// `poll`; `read`, `recvfrom`, `recvmsg`… for `read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyscallKind {
    /// Every system call.
    All,
    /// Waiting for readiness: poll, ppoll, select, pselect6, epoll_wait, epoll_pwait(2).
    Poll,
    /// Receiving: read, readv, pread64, preadv, recvfrom, recvmsg, recvmmsg.
    Read,
    /// Sending: write, writev, pwrite64, pwritev, sendto, sendmsg, sendmmsg, sendfile.
    Write,
    /// Accepting connections: accept, accept4.
    Accept,
}

named_enum!(SyscallKind, "syscall kind", {
    All => "all",
    Poll => "poll",
    Read => "read",
    Write => "write",
    Accept => "accept",
});

/// What code a server's instructions ran in, from the symbol and object callgrind attributed
/// them to (`compare --callgrind`): the split behind "where does a Wasm server's CPU go".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeKind {
    /// The guest's compiled WebAssembly (and Wasmtime's trampolines into it): code in no file,
    /// or in a precompiled `.cwasm`.
    Guest,
    /// WASI host functions (`wasmtime_wasi*` crates), split further by interface.
    WasiHost,
    /// The rest of the Wasm runtime (Wasmtime, WasmEdge): instances, stores, the component
    /// model's lifting and lowering, interpreters.
    Runtime,
    /// The async runtime and HTTP stack: tokio, mio, hyper, h2, http, futures.
    AsyncIo,
    /// libc, the dynamic loader and Rust's std, core, alloc and `bytes` (memcpy, malloc,
    /// formatting) where no other part called them: called from another part, they count as
    /// that part's.
    Libc,
    /// Everything else: the server program itself and its other libraries.
    Program,
}

named_enum!(CodeKind, "code kind", {
    Guest => "guest",
    WasiHost => "wasi-host",
    Runtime => "runtime",
    AsyncIo => "async-io",
    Libc => "libc",
    Program => "program",
});

impl CodeKind {
    /// What a report calls it.
    pub fn label(self) -> &'static str {
        match self {
            CodeKind::Guest => "guest code (compiled Wasm)",
            CodeKind::WasiHost => "WASI host functions",
            CodeKind::Runtime => "Wasm runtime (Wasmtime, WasmEdge)",
            CodeKind::AsyncIo => "async runtime and HTTP (tokio, hyper)",
            CodeKind::Libc => "libc and Rust std (no other caller)",
            CodeKind::Program => "program and other libraries",
        }
    }
}

/// What the kernel counted for a server process over one measured window: totals, which the
/// report divides by the window's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCounts {
    /// System calls by kind; empty when they could not be counted (`syscalls_not_counted`
    /// says why).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub syscalls: BTreeMap<SyscallKind, u64>,
    /// Voluntary context switches (a thread blocked), over every thread.
    pub voluntary_switches: u64,
    /// Involuntary context switches (a thread was preempted), over every thread.
    pub involuntary_switches: u64,
    /// Minor page faults (no I/O).
    pub minor_faults: u64,
    /// Major page faults (I/O).
    pub major_faults: u64,
    /// Instructions retired, from the CPU's hardware counter; `None` where the machine has
    /// none (most VMs) or the counter could not be opened (`instructions_not_counted` says
    /// why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u64>,
    /// Most threads the server had at once over the window (sampled; at least those at its
    /// end).
    pub threads: u64,
    /// Why `syscalls` is empty, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_not_counted: Option<String>,
    /// Why `instructions` is `None`, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions_not_counted: Option<String>,
    /// What made a count partial (threads beyond the cap, a thread that ended), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Where a comparison ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// Processes on this machine.
    Local,
    /// Pods on a Kubernetes cluster.
    Kubernetes,
}

named_enum!(Platform, "platform", {
    Local => "local",
    Kubernetes => "kubernetes",
});

/// How load is scheduled: k6's executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// A fixed number of VUs loop for a duration (closed model; the demo's).
    ConstantVus,
    /// The VU count follows stage targets (closed model).
    RampingVus,
    /// A fixed number of iterations per time unit (open model).
    ConstantArrivalRate,
    /// The iteration rate follows stage targets (open model).
    RampingArrivalRate,
}

named_enum!(ExecutorKind, "executor", {
    ConstantVus => "constant-vus",
    RampingVus => "ramping-vus",
    ConstantArrivalRate => "constant-arrival-rate",
    RampingArrivalRate => "ramping-arrival-rate",
});

/// The public demo's load plan: the default of every command that generates load.
pub mod demo {
    use std::time::Duration;

    /// Virtual users.
    pub const VUS: u32 = 100;
    /// How long the load runs.
    pub const DURATION: Duration = Duration::from_secs(30);
    /// The checks on every response (k6 `check` names and wasmbench `--check` expressions).
    pub const CHECKS: [&str; 2] = ["status == 200", "duration < 200"];
}

/// What generates the load of a Kubernetes run: the load pods' program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadEngine {
    /// `wasmbench load`: k6's metric semantics with HDR histograms, merged exactly across pods.
    #[default]
    Wasmbench,
    /// The k6 binary running the demo's script; its `--summary-export` is read.
    K6,
}

named_enum!(LoadEngine, "load engine", {
    Wasmbench => "wasmbench",
    K6 => "k6",
});

/// What a result records for a fact the run could not observe (a version no API reports, a
/// CPU model a cluster does not tell), instead of a guess.
pub const UNKNOWN: &str = "unknown";

/// The workload of a comparison of the user's own builds (`--native-cmd`, `--wasm`): a
/// report states nothing of it that wasmbench did not observe (how it was built, what it is).
pub const USER_SERVICE_WORKLOAD: &str = "user service";

/// Puts a message on one line: a server's, a tool's or an API's message may hold newlines,
/// and a report's warning or a terminal's error line must not break.
pub fn one_line(s: impl AsRef<str>) -> String {
    s.as_ref().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runtime detail of a pooling wasi:http host: how a finished instance's slot is readied for
/// the next (`keep resident 1 MiB, pagemap scan, decommit batch 1, 100 warm slots`); the
/// report's runtime line quotes it.
pub const POOL_DETAIL: &str = "pool";

/// Prefix of the one-line JSON report an embedded Wasmtime host (the local host, the
/// project's containerd shim) writes on stderr: how the code was compiled and loaded.
pub const HOST_REPORT_PREFIX: &str = "wasmbench-host: ";

/// What ran a variant's workload; recorded in every result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeInfo {
    /// Runtime name (`native`, `wasmtime`, `wasmtime-cli`, ...).
    pub name: String,
    /// Runtime version (for native: the rustc version); [`UNKNOWN`] when not observed.
    pub version: String,
    /// Execution mode.
    pub mode: ExecMode,
    /// What the workload was built for.
    pub target: Target,
    /// Whether the pooling instance allocator was on; `None` when not applicable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<bool>,
    /// Further settings worth recording (memory limit, cache hit, compile time, instance
    /// reuse, ...).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// CPU and memory requests and limits of a pod's container, as Kubernetes quantities (`500m`,
/// `1`, `128Mi`): what the Kubernetes manifests set and what a Kubernetes report records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodResources {
    /// CPU request.
    pub cpu_request: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
}

/// k6's statistics of one trend metric, in milliseconds: what the load engine reads from its
/// histograms (or from k6's export) and what a comparison records per run.
///
/// Serialized with the `_ms` names (`comparison.json`); the load engine's NDJSON time series
/// writes the same values under k6's bare names (`avg`, `p95`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendStats {
    /// Mean.
    pub avg_ms: f64,
    /// Smallest value.
    pub min_ms: f64,
    /// Median.
    pub med_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Number of samples.
    pub count: u64,
}

/// `--executor constant-vus|ramping-vus|constant-arrival-rate|ramping-arrival-rate`.
#[cfg(feature = "clap")]
impl clap::ValueEnum for ExecutorKind {
    fn value_variants<'a>() -> &'a [Self] {
        ExecutorKind::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// `--connection keep-alive|close`: `close` is the flag's documented spelling.
#[cfg(feature = "clap")]
impl clap::ValueEnum for ConnectionMode {
    fn value_variants<'a>() -> &'a [Self] {
        ConnectionMode::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            ConnectionMode::KeepAlive => PossibleValue::new("keep-alive")
                .help("reuse each VU's connection (HTTP/1.1 keep-alive)"),
            ConnectionMode::NewConnectionPerRequest => PossibleValue::new("close")
                .alias("new-per-request")
                .alias("new-connection-per-request")
                .help("a new connection for every request (Connection: close)"),
        })
    }
}

/// `--design interleaved|restart`.
#[cfg(feature = "clap")]
impl clap::ValueEnum for Design {
    fn value_variants<'a>() -> &'a [Self] {
        Design::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Design::Interleaved => PossibleValue::new("interleaved")
                .help("servers started once; short blocks alternate between the variants"),
            Design::Restart => PossibleValue::new("restart")
                .help("every repeat restarts every server and measures one whole run"),
            Design::Duet => PossibleValue::new("duet").help(
                "the default: servers started once; each round's blocks at the same time on the \
                 same CPUs",
            ),
        })
    }
}

/// `--load-engine wasmbench|k6`.
#[cfg(feature = "clap")]
impl clap::ValueEnum for LoadEngine {
    fn value_variants<'a>() -> &'a [Self] {
        LoadEngine::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            LoadEngine::Wasmbench => PossibleValue::new("wasmbench")
                .help("wasmbench load: HDR histograms, merged exactly over the load pods"),
            LoadEngine::K6 => PossibleValue::new("k6")
                .help("k6 running the demo's script in one load pod; its --summary-export is read"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value's name parses back to it and is its JSON form.
    fn round_trips<T>(all: &[T], name: fn(&T) -> &'static str)
    where
        T: FromStr<Err = String> + Serialize + PartialEq + fmt::Debug,
    {
        for v in all {
            assert_eq!(&name(v).parse::<T>().unwrap(), v);
            assert_eq!(serde_json::to_value(v).unwrap(), name(v));
        }
    }

    #[test]
    fn names_round_trip_through_text_and_json() {
        round_trips(ExecMode::ALL, |v| v.as_str());
        round_trips(Target::ALL, |v| v.as_str());
        round_trips(ConnectionMode::ALL, |v| v.as_str());
        round_trips(ExecutorKind::ALL, |v| v.as_str());
        round_trips(Platform::ALL, |v| v.as_str());
        round_trips(LoadEngine::ALL, |v| v.as_str());
        round_trips(Design::ALL, |v| v.as_str());
    }

    #[test]
    fn older_connection_names_are_read() {
        for old in ["close", "new-per-request"] {
            let v: ConnectionMode = serde_json::from_value(old.into()).unwrap();
            assert_eq!(v, ConnectionMode::NewConnectionPerRequest);
            assert_eq!(
                old.parse::<ConnectionMode>().unwrap(),
                ConnectionMode::NewConnectionPerRequest
            );
        }
    }

    #[test]
    fn trend_stats_have_the_ms_names_and_no_others() {
        let t = TrendStats {
            p95_ms: 1.5,
            count: 3,
            ..TrendStats::default()
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"avg_ms":0.0,"min_ms":0.0,"med_ms":0.0,"max_ms":0.0,"p90_ms":0.0,"p95_ms":1.5,"p99_ms":0.0,"count":3}"#
        );
        assert_eq!(serde_json::from_str::<TrendStats>(&json).unwrap(), t);
        let mut extra = serde_json::to_value(t).unwrap();
        extra["p95"] = 1.5.into();
        assert!(serde_json::from_value::<TrendStats>(extra).is_err());
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = "wasip3".parse::<Target>().unwrap_err();
        assert!(e.contains("native, wasip1, wasip2"), "{e}");
        assert_eq!("wasm32-wasip1".parse::<Target>().unwrap(), Target::Wasip1);
    }
}
