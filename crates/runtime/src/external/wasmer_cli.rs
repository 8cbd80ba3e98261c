//! The `wasmer` CLI: detected and versioned, and reported unavailable with the reason.

use std::collections::BTreeMap;

use super::detect::{DetectCache, Detected, Locator, parse_wasmer_version, version_or_why};
use crate::build::Target;
use crate::error::RuntimeError;
use crate::launch::{ExecMode, LaunchSpec, RunningServer, Runtime, RuntimeInfo};

/// The `wasmer` CLI. Detected and versioned, but it cannot serve the workload: Wasmer offers
/// sockets to guests only through WASIX, and the workload has no WASIX build (its socket builds
/// use `wasi:sockets` (wasip2) and WasmEdge's `sock_*` functions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WasmerCli {
    /// Where the program is.
    pub locator: Locator,
    detected: DetectCache,
}

/// Why no Wasmer variant runs even when `wasmer` is installed.
pub const WASMER_NO_WASIX_BUILD: &str = "wasmer serves sockets only to WASIX guests (`wasmer run --net`), and the \
     workload has no WASIX build: its socket builds target wasi:sockets (wasip2) and WasmEdge's \
     sock_* functions";

impl WasmerCli {
    /// Uses the given locator.
    pub fn with_locator(mut self, locator: Locator) -> WasmerCli {
        self.locator = locator;
        self.detected = DetectCache::default();
        self
    }

    /// Finds `wasmer` and its version.
    pub fn detect(&self) -> Result<Detected, String> {
        self.detected
            .get("wasmer", &self.locator, parse_wasmer_version)
    }
}

impl Runtime for WasmerCli {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "wasmer".into(),
            version: version_or_why(&self.detect(), &self.locator, "wasmer"),
            mode: ExecMode::CraneliftJit,
            target: Target::Wasip1,
            pooling: None,
            details: BTreeMap::new(),
        }
    }

    fn available(&self) -> Result<(), String> {
        let det = self
            .detect()
            .map_err(|e| format!("{e}: install Wasmer 6+ to detect it"))?;
        Err(format!(
            "wasmer {} found, but {WASMER_NO_WASIX_BUILD}",
            det.version
        ))
    }

    fn launch(&self, _spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        Err(RuntimeError::Unavailable {
            runtime: "wasmer".into(),
            reason: self.available().err().unwrap_or_default(),
        })
    }
}
