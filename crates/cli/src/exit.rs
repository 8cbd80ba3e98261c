//! The one table of process exit codes (documented in README.md). Where k6 defines a code for
//! the same situation we use k6's number, so CI scripts written for k6 keep working.

use std::fmt;

/// Why the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything ran; all thresholds passed.
    Ok = 0,
    /// An unexpected error (a bug or an environment problem not covered below).
    Internal = 1,
    /// Bad command-line usage (unknown flag, bad value).
    Usage = 2,
    /// The workload could not be built or loaded: build failure, missing/corrupt `.wasm`, a
    /// module without the expected exports, a `.wasm` the chosen runtime cannot run.
    Artifact = 10,
    /// A server did not start: its runtime is not installed, port in use, crashed, not ready
    /// before the timeout, ready path answered an error.
    ServerStart = 11,
    /// The load target is unreachable (every request refused).
    Unreachable = 12,
    /// An output file or directory cannot be written.
    Output = 13,
    /// The Kubernetes cluster cannot be reached or the kubeconfig is missing/invalid.
    Cluster = 14,
    /// A comparison finished but one or more variants failed (the report says which and why).
    VariantFailed = 15,
    /// A figure got worse than the saved run by more than `--fail-on-regression` allows.
    // Only `compare` has a saved run; builds without it (no local runtimes, the load example
    // that includes this file) never exit with it.
    #[allow(dead_code)]
    Regressed = 16,
    /// A threshold failed (k6: `ThresholdsHaveFailed`).
    ThresholdsFailed = 99,
    /// Invalid configuration: plan/config file, threshold expression, option combination
    /// (k6: `InvalidConfig`).
    InvalidConfig = 104,
    /// Interrupted by SIGINT/SIGTERM; partial results were written (k6: `ExternalAbort`).
    Interrupted = 105,
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// An error that carries the exit code it should produce.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub exit: Exit,
    /// One line: what is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Builds an error that exits with `exit`.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    Failure {
        exit,
        message: message.into(),
    }
    .into()
}
