//! Orchestrates repeated, warmed-up native-vs-Wasm comparisons.
//!
//! Every variant's artifact is built once and its cold starts (spawn → ready) measured on
//! processes of their own; its measured load then follows the configured design
//! ([`config::Design`]): by default each server starts once and the variants' load alternates in
//! short blocks, paired by round; or each repeat restarts every server. During each measured
//! window the server's CPU and memory are sampled and its kernel counters read.
//! The result is one [`wasmbench_report::Comparison`] value every report format renders.
//!
//! `wasmbench_report::assemble` turns the measured runs into that value, as it does for the
//! Kubernetes driver's.
#![deny(missing_docs)]

pub mod byo;
mod callgrind;
pub mod config;
pub mod environment;
pub mod error;
mod interleaved;
mod launcher;
mod outcome;
mod precision;
mod preflight;
mod report;
mod restart;
pub mod run;
mod session;
pub mod variants;
pub mod workloads;

pub use config::{
    CompareConfig, ConnectionMode, Design, LoadSettings, Pinning, PrecisionGoal, Profile,
    VariantSpec,
};
pub use error::CompareError;
pub use outcome::{CallgrindPass, Event, Options};
pub use report::planned;
pub use run::run;
pub use variants::{Resolved, known_variants, resolve};
