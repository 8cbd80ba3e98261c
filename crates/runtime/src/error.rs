//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, launching or hosting the workload. Every
/// message says what went wrong and, where possible, how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `cargo build` (or `rustup target add`) failed.
    #[error("building {what} failed: {detail}")]
    Build {
        /// What was being built, e.g. `echo for wasm32-wasip2`.
        what: String,
        /// The command's error output (tail) or why it could not run.
        detail: String,
    },
    /// A user-supplied or built artifact is unusable.
    #[error("{path}: {problem}")]
    InvalidArtifact {
        /// The file.
        path: PathBuf,
        /// What is wrong with it and how to fix it.
        problem: String,
    },
    /// The runtime cannot run on this machine.
    #[error("runtime {runtime} is not available: {reason}")]
    Unavailable {
        /// Runtime name.
        runtime: String,
        /// Why, and how to make it available.
        reason: String,
    },
    /// The server process could not be started.
    #[error("cannot start {runtime} ({program}): {source}")]
    Spawn {
        /// Runtime name.
        runtime: String,
        /// The program that was executed.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server process exited before it was ready.
    #[error("{runtime} exited before it was ready ({status}); stderr tail:\n{stderr_tail}")]
    Exited {
        /// Runtime name.
        runtime: String,
        /// Exit status as printed by the OS.
        status: String,
        /// Last lines of the child's stderr.
        stderr_tail: String,
    },
    /// The server did not become ready in time.
    #[error(
        "{runtime} was not ready within {timeout_ms} ms (last error: {last_error}); stderr tail:\n{stderr_tail}"
    )]
    NotReady {
        /// Runtime name.
        runtime: String,
        /// The readiness deadline.
        timeout_ms: u128,
        /// The last readiness probe error.
        last_error: String,
        /// Last lines of the child's stderr.
        stderr_tail: String,
    },
    /// The readiness probe got an answer that waiting will not change (a 4xx, or a 5xx other
    /// than 503), so the server was stopped at once.
    #[error(
        "{runtime}: GET {path} answered {status}, so the service will not become ready; give --ready-path a path it answers with 200, or leave --ready-path out to wait for its port to accept a connection"
    )]
    ReadyRejected {
        /// Runtime name.
        runtime: String,
        /// The probed path.
        path: String,
        /// The status it answered.
        status: u16,
    },
    /// Invalid configuration (bad address, conflicting options, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The embedded Wasmtime engine reported an error (compile, link, instantiate, trap).
    #[error("wasmtime: {0}")]
    Wasmtime(String),
    /// An I/O error with the file or operation it concerns.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a Wasmtime error (an `anyhow` chain) with its full cause chain.
    pub(crate) fn wasmtime(context: &str, e: impl std::fmt::Display) -> Self {
        RuntimeError::Wasmtime(format!("{context}: {e:#}"))
    }
}

/// The last `n` lines of a command's output, for the `detail` of an error.
pub(crate) fn output_tail(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
