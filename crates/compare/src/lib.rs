//! Orchestrates repeated, warmed-up native-vs-Wasm comparisons.
//!
//! Every variant's artifact is built once and its cold starts (spawn → ready) measured on
//! processes of their own; its measured load then follows the configured design
//! ([`config::Design`]): by default each server starts once and the variants' load alternates in
//! short blocks, paired by round; or each repeat restarts every server. During each measured
//! window the server's CPU and memory are sampled and its kernel counters read.
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
mod interleaved;
#[cfg(feature = "local")]
mod launcher;
#[cfg(feature = "local")]
mod outcome;
#[cfg(feature = "local")]
mod precision;
#[cfg(feature = "local")]
mod preflight;
#[cfg(feature = "local")]
mod report;
#[cfg(feature = "local")]
mod restart;
#[cfg(feature = "local")]
pub mod run;
#[cfg(feature = "local")]
mod session;
#[cfg(feature = "local")]
pub mod variants;
pub mod workloads;

pub use config::{
    CompareConfig, ConnectionMode, Design, LoadSettings, Pinning, PrecisionGoal, Profile,
    VariantSpec,
};
pub use error::CompareError;
#[cfg(feature = "local")]
pub use outcome::{CallgrindPass, Event, Options};
#[cfg(feature = "local")]
pub use report::planned;
#[cfg(feature = "local")]
pub use run::run;
#[cfg(feature = "local")]
pub use variants::{Resolved, known_variants, resolve};
