//! The workload binaries: what an [`Artifact`] is, and building one with cargo.

mod artifact;
mod cargo;

pub use artifact::{Artifact, Target, WasmKind, sha256_file, wasm_kind};
pub use cargo::{
    BuildOptions, build_echo, build_echo_http, build_echo_http_p3, build_echo_wasmedge,
    build_workload, default_workspace,
};
