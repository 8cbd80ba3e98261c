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
    /// The Kubernetes cluster cannot be reached, the kubeconfig is missing/invalid, or its
    /// account is refused (credentials rejected, or a permission the command needs missing).
    Cluster = 14,
    /// A comparison finished but one or more variants failed (the report says which and why).
    VariantFailed = 15,
    /// A figure got worse than the saved run by more than `--fail-on-regression` allows.
    // Only `compare` has a saved run; builds without it (no local runtimes, the load example
    // that includes this file) never exit with it.
    #[allow(dead_code)]
    Regressed = 16,
    /// The load ran but not one request succeeded: every request failed (reset, timed out,
    /// unexpected status) or none got a response before the run ended.
    NothingSucceeded = 17,
    /// An input file cannot be used: a saved comparison (`report`, `--baseline`) is missing,
    /// unreadable, not a comparison, of an unsupported version, or holds impossible figures.
    Input = 18,
    /// A threshold failed (k6: `ThresholdsHaveFailed`).
    ThresholdsFailed = 99,
    /// Invalid configuration: plan/config file, threshold expression, option combination
    /// (k6: `InvalidConfig`).
    InvalidConfig = 104,
    /// Interrupted by SIGINT/SIGTERM; partial results were written (k6: `ExternalAbort`).
    Interrupted = 105,
}

impl Exit {
    /// Every code, in the order of README's table (the test below holds them to it).
    #[cfg(test)]
    pub const ALL: [Exit; 15] = [
        Exit::Ok,
        Exit::Internal,
        Exit::Usage,
        Exit::Artifact,
        Exit::ServerStart,
        Exit::Unreachable,
        Exit::Output,
        Exit::Cluster,
        Exit::VariantFailed,
        Exit::Regressed,
        Exit::NothingSucceeded,
        Exit::Input,
        Exit::ThresholdsFailed,
        Exit::InvalidConfig,
        Exit::Interrupted,
    ];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A new code fails to compile here until it is added to [`Exit::ALL`] and README.
    fn listed(e: Exit) -> bool {
        match e {
            Exit::Ok
            | Exit::Internal
            | Exit::Usage
            | Exit::Artifact
            | Exit::ServerStart
            | Exit::Unreachable
            | Exit::Output
            | Exit::Cluster
            | Exit::VariantFailed
            | Exit::Regressed
            | Exit::NothingSucceeded
            | Exit::Input
            | Exit::ThresholdsFailed
            | Exit::InvalidConfig
            | Exit::Interrupted => Exit::ALL.contains(&e),
        }
    }

    #[test]
    fn readme_table_lists_exactly_the_codes_the_binary_returns() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("## Exit codes")
            .nth(1)
            .expect("README has an Exit codes section");
        let documented: Vec<u8> = table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                l.trim_start_matches('|')
                    .split('|')
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .collect();
        let returned: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(
            documented, returned,
            "README's exit table against Exit::ALL"
        );
        assert!(Exit::ALL.iter().all(|e| listed(*e)));
    }
}
