//! Runtimes that serve the workload: native process, embedded Wasmtime host, external Wasm CLIs; process supervision and resource sampling.
#![deny(missing_docs)]
