//! Runtimes that serve the workload: native process, embedded Wasmtime host, external Wasm CLIs;
//! process supervision and resource sampling.
//!
//! Every runtime implements [`Runtime`]: it says what it is ([`RuntimeInfo`]), whether it can run
//! here, and launches an [`Artifact`] as a separate server process ([`RunningServer`]) that is
//! ready (answers `GET /healthz`) when `launch` returns.
//!
//! The modules, each importing only those listed before it: [`error`]; [`build`] (what an
//! artifact is, cargo builds); [`inspect`] (a Wasm binary's imports and exports); [`resources`]
//! (CPU and memory from `/proc`); [`launch`] (the [`Runtime`] trait, process supervision,
//! readiness); [`host`] (the embedded Wasmtime hosts, which run in the `wasmbench serve` process,
//! and the [`HostConfig`] handed to it); [`native`], [`embedded`] (the embedded hosts as
//! runtimes) and [`external`] (the wasmtime, wasmedge and wasmer CLIs).
//!
//! The crate root re-exports the items most callers name; everything else is imported from the
//! module that defines it.
#![deny(missing_docs)]

pub mod build;
pub mod embedded;
pub mod error;
pub mod external;
pub mod host;
pub mod inspect;
pub mod launch;
pub mod native;
pub mod resources;
mod staging;
mod sync;

pub use build::{Artifact, BuildOptions, Target, WasmKind, build_echo};
pub use embedded::{EmbeddedWasiHttp, EmbeddedWasmtime};
pub use error::{RuntimeError, quote_tail};
pub use host::HostConfig;
pub use host::http::PoolTuning;
pub use host::socket::{EmbeddedConfig, EmbeddedHost, HostReport, serve_forever};
pub use launch::{ExecMode, LaunchSpec, Preopen, RunningServer, Runtime, RuntimeInfo};
pub use native::Native;
pub use resources::{ResourceSampler, ResourceUsage};
