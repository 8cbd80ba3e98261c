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
    #[error(
        "{runtime} exited before it was ready ({status}); its stderr ended: {}",
        quote_tail(stderr_tail)
    )]
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
        "{runtime} was not ready within {timeout_ms} ms (last error: {last_error}); its stderr ended: {}",
        quote_tail(stderr_tail)
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
    /// The wait for the server to become ready was interrupted (SIGINT/SIGTERM); the server
    /// was stopped.
    #[error("{runtime}: interrupted while waiting for the server to become ready")]
    Cancelled {
        /// Runtime name.
        runtime: String,
    },
    /// Invalid configuration (bad address, conflicting options, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The embedded Wasmtime engine reported an error (compile, link, instantiate).
    #[error("wasmtime: {0}")]
    Wasmtime(String),
    /// The guest ran and then ended: it trapped or exited with an error status. The module
    /// was fine; the service it runs did not start or crashed.
    #[error("wasmtime: {0}")]
    GuestExited(String),
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

/// Lines of a child's stderr quoted in a one-line message.
const QUOTED_LINES: usize = 3;
/// Characters of a child's stderr quoted in a one-line message.
const QUOTED_CHARS: usize = 400;

/// A backtrace frame (`3: 0xc27 - guest.wasm!main`, `at src/main.rs:3`): the lines around
/// the frames say what happened.
fn is_frame(line: &str) -> bool {
    let rest = line.trim_start_matches(|c: char| c.is_ascii_digit());
    (rest.len() < line.len() && rest.starts_with(':')) || line.starts_with("at ")
}

/// The last lines of a child's stderr on one line, for an error message that must stay one
/// line: its last [`QUOTED_LINES`] non-empty lines (the embedded host's report left out),
/// joined by ` | `, at most [`QUOTED_CHARS`] characters, or `(nothing)`. The whole tail stays
/// in the error's field.
pub fn quote_tail(tail: &str) -> String {
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with(wasmbench_vocab::HOST_REPORT_PREFIX) && !is_frame(l)
        })
        .collect();
    if lines.is_empty() {
        return "(nothing)".into();
    }
    let joined = lines[lines.len().saturating_sub(QUOTED_LINES)..].join(" | ");
    // The end of a tail says most (the error, after the backtrace): cut from the front.
    let extra = joined.chars().count().saturating_sub(QUOTED_CHARS);
    if extra == 0 {
        joined
    } else {
        format!("…{}", joined.chars().skip(extra).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_tail_is_one_line_of_the_last_lines() {
        let tail = format!(
            "{}{{\"x\":1}}\nfirst\n\n  second  \nthird\nfourth\n",
            wasmbench_vocab::HOST_REPORT_PREFIX
        );
        assert_eq!(quote_tail(&tail), "second | third | fourth");
        assert_eq!(quote_tail("\n \n"), "(nothing)");
        let trap = "error: the guest trapped\n    0:   0x4a64 - g.wasm!abort\n    1: 0x2 - g.wasm!main\n             at src/main.rs:1\nnote: wasm `unreachable` executed";
        assert_eq!(
            quote_tail(trap),
            "error: the guest trapped | note: wasm `unreachable` executed"
        );
        let long = "x".repeat(1000);
        let q = quote_tail(&long);
        assert!(
            q.starts_with('…') && q.chars().count() == QUOTED_CHARS + 1,
            "{q}"
        );
    }
}
