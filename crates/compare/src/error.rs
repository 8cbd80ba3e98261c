//! The crate's error type.

use std::path::PathBuf;

/// Why a comparison could not run. Variant failures during a run are not errors: they are
/// recorded in the result and the other variants go on.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A configuration file is unreadable or invalid.
    #[error("{}: {problem}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A variant name is not known.
    #[error("unknown variant {name:?}: known variants are {known}")]
    UnknownVariant {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// Every variant failed or was skipped, so there is nothing to compare.
    #[error("no variant produced results: {0}")]
    NothingRan(String),
    /// Building the workload failed.
    #[error(transparent)]
    Runtime(#[from] wasmbench_runtime::RuntimeError),
    /// The load engine rejected the plan.
    #[error(transparent)]
    Load(#[from] wasmbench_load::LoadError),
}
