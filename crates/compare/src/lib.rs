//! Orchestrates repeated, warmed-up native-vs-Wasm comparisons.
//!
//! For every variant and repeat (variants interleaved, order rotated per repeat to spread
//! machine noise): build the artifact once, measure cold starts (spawn → first `200`), start the
//! server, warm it up, run the measured load while sampling the server's CPU and memory, stop it.
//! The result is one [`wasmbench_report::Comparison`] value every report format renders.
//!
//! [`assemble`] turns measured runs into that value; it is the part the Kubernetes driver
//! shares, and it is all this crate offers without its default `local` feature (the local
//! loop, which needs the runtimes and the embedded Wasmtime).
#![deny(missing_docs)]

pub mod assemble;
#[cfg(feature = "local")]
pub mod byo;
#[cfg(feature = "local")]
mod callgrind;
pub mod config;
pub mod environment;
pub mod error;
#[cfg(feature = "local")]
mod launcher;
#[cfg(feature = "local")]
mod preflight;
#[cfg(feature = "local")]
mod report;
#[cfg(feature = "local")]
pub mod run;
#[cfg(feature = "local")]
pub mod variants;
pub mod workloads;

pub use config::{
    CompareConfig, ConnectionMode, LoadSettings, Pinning, PrecisionGoal, Profile, VariantSpec,
};
pub use error::CompareError;
#[cfg(feature = "local")]
pub use report::planned;
#[cfg(feature = "local")]
pub use run::{Event, Options, run};
#[cfg(feature = "local")]
pub use variants::{Resolved, known_variants, resolve};
