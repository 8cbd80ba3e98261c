//! The load engine's error type.

use std::path::PathBuf;

/// Everything that can stop a load run from starting or a summary from being processed.
///
/// Failed requests are *not* errors: they are measured and counted in the [`crate::Summary`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The plan is inconsistent (zero VUs, empty stages, ...); the message says what to change.
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// A threshold expression does not parse or does not fit its metric.
    #[error("invalid threshold `{expr}` on metric `{metric}`: {reason}")]
    Threshold {
        /// Metric the threshold is attached to.
        metric: String,
        /// The expression as written.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A check expression does not parse.
    #[error("invalid check `{expr}`: {reason}")]
    Check {
        /// The expression as written.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The plan file is not valid TOML for a [`crate::Plan`] (one line, see [`toml_line`]).
    #[error("invalid plan file: {0}")]
    Toml(String),
    /// The target URL cannot be used.
    #[error("invalid URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target host name does not resolve.
    #[error("cannot resolve `{host}`: {source}")]
    Resolve {
        /// Host name.
        host: String,
        /// Resolver error.
        source: std::io::Error,
    },
    /// A k6 `--summary-export` document cannot be read as a summary.
    #[error("k6 summary export: {0}")]
    K6Export(String),
    /// TLS client configuration failed (unreadable or invalid CA file, bad server name).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A file named by the plan cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A serialized histogram in a summary cannot be decoded or merged.
    #[error("histogram of metric `{metric}` cannot be used: {reason}")]
    Histogram {
        /// Metric name.
        metric: String,
        /// Decoder or merge error.
        reason: String,
    },
    /// The target did not accept a connection within the readiness wait.
    #[error("{addr} accepted no connection within {}s (--wait-ready)", waited.as_secs())]
    Unreachable {
        /// The target address.
        addr: String,
        /// How long the run waited.
        waited: std::time::Duration,
    },
    /// A capacity search cannot start or go on; the message says why and what to change.
    #[error("capacity search: {0}")]
    Capacity(String),
    /// A run that had to get responses got none (nothing listening, or nothing answering).
    #[error("{url} gave no response: {why}")]
    NoResponse {
        /// The target URL.
        url: String,
        /// What the requests met, with the fix (refused: start the server; no answer: check
        /// that it answers).
        why: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start load worker thread: {0}")]
    Worker(std::io::Error),
}

/// A TOML error on one line, `line L, column C: message`: the parser's own text draws the
/// source with a caret over several lines, which a one-line error cannot carry.
pub fn toml_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let text_line = text[before.len() - (column - 1)..]
                .lines()
                .next()
                .unwrap_or("")
                .trim();
            let shown: String = text_line.chars().take(60).collect();
            format!("line {line}, column {column} (`{shown}`): {message}")
        }
        None => message.to_string(),
    }
}
