//! Runs the comparison on a Kubernetes cluster: images, manifests, apply/wait/collect/cleanup.
//!
//! - [`image`] writes reproducible OCI images (layout directories and archives) without a
//!   container daemon; [`build`] produces the static and Wasm binaries they contain.
//! - [`variant`] names the ways the echo service can run on a node (native, crun + WasmEdge,
//!   runwasi shims, Spin) and what each needs from the node.
//! - [`server`] is one server of a run: a variant, or a user's image (`--native-image`,
//!   `--wasm-image IMG=RUNTIMECLASS`) with its port, ready path and environment.
//! - [`manifests`] turns a [`manifests::RunSpec`] into typed Kubernetes objects and YAML.
//! - [`driver`] applies them through the Kubernetes API, waits, runs the load Jobs, reads the
//!   JSON summaries back from the pod logs, merges them and deletes everything it created.
//! - [`kubelet`] reads what the cluster reports of a server pod: CPU and memory from the
//!   kubelet's Summary API, the pod's start, its image's size.
//! - [`report`] turns a run into the same `Comparison` a local run produces.
//! - [`runtimes`] lists the cluster's RuntimeClasses, the nodes that have each handler and the
//!   variants that use each (`wasmbench k8s runtimes`).
#![deny(missing_docs)]

pub mod build;
pub mod driver;
mod error;
pub mod image;
pub mod kubelet;
pub mod manifests;
pub mod report;
pub mod runtimes;
pub mod server;
pub mod variant;

pub use error::Error;
pub use server::Server;
pub use variant::Variant;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
