//! What the comparison loop produces and reports while it runs: progress [`Event`]s, the
//! [`Options`] besides the configuration, and the outcomes of variants and runs that
//! `crate::report` turns into a report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmbench_load::{Plan, Summary};
use wasmbench_report::PrecisionRecord;
use wasmbench_runtime::{Artifact, BuildOptions, ResourceUsage};

use crate::variants::Resolved;

/// Progress of a comparison, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum Event {
    /// Building or locating a variant's artifact.
    Building {
        /// Variant name.
        variant: String,
    },
    /// A variant will not run here.
    Skipped {
        /// Variant name.
        variant: String,
        /// Why.
        reason: String,
    },
    /// A variant failed; the comparison goes on with the others.
    Failed {
        /// Variant name.
        variant: String,
        /// Why.
        reason: String,
    },
    /// A phase of one run started.
    Phase {
        /// Variant name.
        variant: String,
        /// Repeat index (0-based).
        repeat: u32,
        /// `cold-start`, `warm-up` or `load`.
        phase: &'static str,
        /// Expected length of the phase, when known.
        duration: Option<Duration>,
    },
    /// Live figures during the measured load.
    Progress {
        /// Seconds into the phase.
        elapsed: Duration,
        /// Requests completed so far.
        requests: u64,
    },
    /// The interleaved design's measured rounds are about to start.
    Measuring {
        /// Rounds planned (more may follow with a precision target).
        rounds: u32,
        /// The length of each block.
        block: Duration,
    },
    /// One round of the interleaved design finished: a block of every running variant.
    RoundDone {
        /// Round index (0-based).
        round: u32,
        /// Rounds planned.
        rounds: u32,
        /// Requests per second of each variant's block, in the order they ran.
        rps: Vec<(String, f64)>,
    },
    /// One measured run finished.
    RunDone {
        /// Variant name.
        variant: String,
        /// Repeat index.
        repeat: u32,
        /// Requests per second of the run.
        rps: f64,
    },
}

/// Everything a comparison needs besides its configuration.
#[derive(Clone)]
pub struct Options {
    /// Cancels the comparison (Ctrl-C); results so far are returned, marked partial.
    pub cancel: CancellationToken,
    /// The `wasmbench` executable, which hosts the embedded runtimes in their own process.
    pub host_exe: PathBuf,
    /// How workload artifacts are built.
    pub build: BuildOptions,
    /// The command line that started the comparison, one argument per element, recorded in
    /// the result.
    pub command_line: Vec<String>,
    /// Receives progress events.
    pub on_event: Arc<dyn Fn(Event) + Send + Sync>,
    /// When set, each run's full load summary is written there as JSON.
    pub raw_dir: Option<PathBuf>,
    /// Authorities the embedded `wasi:http` host lets guests send requests to
    /// (`--allow-outbound`); empty, the default, refuses every outgoing request.
    pub allow_outbound: Vec<SocketAddr>,
    /// Also count the server's syscalls by kind over each load run (`wasmbench_counters`);
    /// context switches and page faults are always counted. Off by default: the tracepoint
    /// counters lower a busy server's throughput (docs/metrics.md).
    pub count_syscalls: bool,
    /// Whether each variant's instructions per request are counted under valgrind's callgrind,
    /// in a pass of its own after the measured runs ([`crate::callgrind`]).
    pub callgrind: CallgrindPass,
    /// After each measured run, search the highest rate its server sustains within the SLO
    /// (`--capacity`), on the same server, outside the measured window.
    pub capacity: Option<wasmbench_load::capacity::CapacityOptions>,
}

/// When the callgrind pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallgrindPass {
    /// Never (`--no-callgrind`).
    Off,
    /// When valgrind is installed and every variant is one of the project's own builds: a
    /// user's service may take minutes to start under valgrind, so it is counted only when
    /// asked for (the default).
    #[default]
    WhenCheap,
    /// For every variant; a variant that cannot be counted gets a warning (`--callgrind`).
    Always,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("host_exe", &self.host_exe)
            .field("build", &self.build)
            .field("raw_dir", &self.raw_dir)
            .field("allow_outbound", &self.allow_outbound)
            .finish_non_exhaustive()
    }
}

/// The outcome of one variant, before it becomes part of the report.
#[derive(Debug)]
pub(crate) struct VariantOutcome {
    pub resolved: Resolved,
    pub artifact: Option<Artifact>,
    pub compile_ms: Option<f64>,
    pub host_report: Option<serde_json::Value>,
    /// What the runtime recorded about the variant's first launch.
    pub launch_details: std::collections::BTreeMap<String, String>,
    pub primed: bool,
    /// Whether a server of this variant ever became ready.
    pub started: bool,
    pub status: Status,
    pub runs: Vec<RunOutcome>,
    /// The callgrind pass's count, when `Options::callgrind` asked for one and it worked.
    pub callgrind: Option<wasmbench_report::CallgrindCount>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    Ok,
    Skipped(String),
    Failed(String),
}

/// One measured run.
#[derive(Debug)]
pub(crate) struct RunOutcome {
    pub repeat: u32,
    pub cold_start_ms: Vec<f64>,
    pub summary: Summary,
    pub usage: ResourceUsage,
    /// CPU (ms) and peak RSS of this process, which generates the load, over the run.
    pub loadgen: Option<(f64, u64)>,
    /// What the kernel counted for the server over the run (`None` when counting was off).
    pub server_counts: Option<wasmbench_vocab::ServerCounts>,
    pub raw_file: Option<String>,
    /// The capacity search after the measured run, when asked for.
    pub capacity: Option<wasmbench_load::capacity::Capacity>,
    /// Cache-line round trip between the server's and the load generator's first CPUs, just
    /// before the measured run.
    pub cpu_round_trip_ns: Option<f64>,
}

/// What the loop produced; turned into a report by `crate::report`.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub variants: Vec<VariantOutcome>,
    pub load_plan: Plan,
    pub environment: wasmbench_report::Environment,
    pub pinning: Option<(Vec<usize>, Vec<usize>)>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub partial: bool,
    /// What a pass after the measured runs could not do (the callgrind count).
    pub warnings: Vec<String>,
    /// Repeats started per variant.
    pub repeats: u32,
    /// What a precision target reached, when there was one.
    pub precision: Option<PrecisionRecord>,
}

/// How a design's loop ended.
#[derive(Debug, Default)]
pub(crate) struct LoopEnd {
    /// Interrupted, or a run was partial.
    pub partial: bool,
    /// Repeats (rounds, in the interleaved design) started per variant.
    pub repeats: u32,
    /// What a precision target reached, when there was one.
    pub precision: Option<PrecisionRecord>,
}
