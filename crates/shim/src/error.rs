//! The shim's errors.

use wasmbench_runtime::RuntimeError;

/// Why the shim could not run a container's guest.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// Engine, compilation, linking or a trap, as the embedded host reports them.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The container's Wasm is of a kind this shim does not run.
    #[error("{0}")]
    Unsupported(String),
    /// The entrypoint could not be read (containerd-shim-wasm's message).
    #[error("reading the container's Wasm entrypoint: {0}")]
    Entrypoint(String),
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The thread running the guest ended without reporting how the guest ended.
    #[error("the guest thread ended without a result (it panicked; see the log above)")]
    GuestThread,
    /// A `--version` line that is not the shim's JSON.
    #[error("not a containerd-shim-wasmbench-v1 --version line: {0}")]
    VersionLine(String),
}

impl ShimError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> ShimError {
        ShimError::Io {
            what: what.into(),
            source,
        }
    }
}
