//! Orchestrates repeated, warmed-up native-vs-Wasm comparisons.
//!
//! For every variant and repeat (variants interleaved, order rotated per repeat to spread
//! machine noise): build the artifact once, measure cold starts (spawn → first `200`), start the
//! server, warm it up, run the measured load while sampling the server's CPU and memory, stop it.
//! The result is one [`wasmbench_report::Comparison`] value every report format renders.
#![deny(missing_docs)]

pub mod byo;
pub mod config;
pub mod environment;
pub mod error;
mod report;
pub mod run;
pub mod variants;
pub mod workloads;

pub use config::{CompareConfig, ConnectionMode, LoadSettings, Pinning, Profile, VariantSpec};
pub use error::CompareError;
pub use run::{Event, Options, run};
pub use variants::{Resolved, known_variants, resolve};
