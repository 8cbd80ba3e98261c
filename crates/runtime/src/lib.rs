//! Runtimes that serve the workload: native process, embedded Wasmtime host, external Wasm CLIs;
//! process supervision and resource sampling.
//!
//! Every runtime implements [`Runtime`]: it says what it is ([`RuntimeInfo`]), whether it can run
//! here, and launches an [`Artifact`] as a separate server process ([`RunningServer`]) that is
//! ready (answers `GET /healthz`) when `launch` returns.
#![deny(missing_docs)]

pub mod artifact;
pub mod cli;
pub mod error;
pub mod native;
pub mod process;
pub mod runtime;
pub mod wasi_http;
pub mod wasmtime;

pub use self::wasmtime::{
    EmbeddedConfig, EmbeddedHost, EmbeddedWasmtime, HostReport, serve_forever,
};
pub use artifact::{Artifact, BuildOptions, Target, WasmKind, build_echo};
pub use error::RuntimeError;
pub use native::Native;
pub use process::{ResourceSampler, ResourceUsage, RunningServer};
pub use runtime::{ExecMode, LaunchSpec, Runtime, RuntimeInfo};
