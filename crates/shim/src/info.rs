//! What the shim says about itself: names containerd knows it by, versions, and the
//! [`RuntimeInfo`] printed by `containerd-shim-wasmbench-v1 --version`.
//!
//! Where the versions come from:
//! - the shim's own version is this crate's `CARGO_PKG_VERSION`, i.e. the workspace version in
//!   the root `Cargo.toml` (`[workspace.package] version`), the same as every wasmbench crate;
//! - the Wasmtime version is [`wasmbench_runtime::host::WASMTIME_VERSION`], the constant
//!   that matches the `=48.0.8` pin of the workspace manifest;
//! - the containerd-shim-wasm version is [`CONTAINERD_SHIM_WASM_VERSION`], kept equal to the
//!   `=1.0.1` pin in `crates/shim/Cargo.toml`;
//! - the Git revision (containerd's `-v`/`-info` and `details.revision`) is read by
//!   containerd-shimkit's `revision!()` macro (`git describe`) when the crate is compiled.

use std::collections::BTreeMap;

use wasmbench_runtime::host::{DEFAULT_MAX_MEMORY_BYTES, WASMTIME_VERSION};
use wasmbench_vocab::{ExecMode, RuntimeInfo, Target};

use crate::error::ShimError;

/// The shim's name for containerd-shim-wasm: it makes the runtime type
/// `io.containerd.wasmbench.v1` and the binary `containerd-shim-wasmbench-v1`.
pub const SHIM_NAME: &str = "wasmbench";
/// The binary containerd starts for [`RUNTIME_TYPE`]; it must be on containerd's `PATH`.
pub const BINARY_NAME: &str = "containerd-shim-wasmbench-v1";
/// The `runtime_type` of the containerd runtime entry.
pub const RUNTIME_TYPE: &str = "io.containerd.wasmbench.v1";
/// The shim's version (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of the containerd-shim-wasm library the shim is built on (pinned in its manifest).
pub const CONTAINERD_SHIM_WASM_VERSION: &str = "1.0.1";
/// The name in the shim's [`RuntimeInfo`].
pub const RUNTIME_NAME: &str = "wasmbench-shim";

/// The Git revision the shim was built from, when it was built from a Git checkout.
pub fn revision() -> Option<&'static str> {
    let r = containerd_shim_wasm::shim::version!().revision;
    (r != "<none>").then_some(r)
}

/// What the shim is, as wasmbench records a runtime. `mode` is how the images wasmbench builds
/// run: their entrypoint is a file (`/echo.wasm`), which is compiled by Cranelift at every
/// container start. Images whose layers are Wasm (`application/wasm`, or the
/// `…wasm.component.layer.v0+wasm` layer type) are compiled once per image and engine setting
/// and cached by containerd (`details.precompile`); each container's actual mode is in the
/// host report it prints on stderr (see [`crate::guest`]).
pub fn runtime_info() -> RuntimeInfo {
    let mut details = BTreeMap::new();
    details.insert("wasmtime_version".into(), WASMTIME_VERSION.into());
    details.insert(
        "containerd_shim_wasm_version".into(),
        CONTAINERD_SHIM_WASM_VERSION.into(),
    );
    details.insert("runtime_type".into(), RUNTIME_TYPE.into());
    details.insert(
        "engine".into(),
        "wasmbench-runtime build_engine (same as local wasmtime runs)".into(),
    );
    details.insert(
        "precompile".into(),
        "OCI Wasm layers: compiled once, cached in containerd's content store".into(),
    );
    details.insert("network".into(), crate::guest::NETWORK_POLICY.into());
    details.insert(
        "serves".into(),
        format!(
            "wasi:cli/run commands; wasi:http 0.2 and 0.3 components on {} (default {})",
            crate::guest::HTTP_ADDR_ENV,
            crate::guest::DEFAULT_HTTP_ADDR
        ),
    );
    details.insert(
        "max_memory_bytes".into(),
        DEFAULT_MAX_MEMORY_BYTES.to_string(),
    );
    if let Some(r) = revision() {
        details.insert("revision".into(), r.into());
    }
    RuntimeInfo {
        name: RUNTIME_NAME.into(),
        version: VERSION.into(),
        mode: ExecMode::CraneliftJit,
        target: Target::Wasip2,
        pooling: Some(true),
        details,
    }
}

/// The one line `containerd-shim-wasmbench-v1 --version` prints: [`runtime_info`] as JSON.
pub fn version_line() -> String {
    // A struct of strings and maps always serialises.
    serde_json::to_string(&runtime_info()).unwrap_or_default()
}

/// Reads a [`version_line`] back (what a caller of `--version` does; it needs only
/// `serde_json` and the vocab crate).
pub fn parse_version_line(line: &str) -> Result<RuntimeInfo, ShimError> {
    let info: RuntimeInfo = serde_json::from_str(line.trim())
        .map_err(|e| ShimError::VersionLine(format!("{e}: {}", line.trim())))?;
    if info.name != RUNTIME_NAME {
        return Err(ShimError::VersionLine(format!(
            "runtime name is {:?}, not {RUNTIME_NAME:?}",
            info.name
        )));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_reads_back() {
        let info = parse_version_line(&version_line()).unwrap();
        assert_eq!(info, runtime_info());
        assert_eq!(info.version, VERSION);
        assert_eq!(info.details["wasmtime_version"], WASMTIME_VERSION);
        assert!(parse_version_line("containerd-shim-wasmtime-v1 0.6.0").is_err());
    }

    #[test]
    fn names_follow_containerds_convention() {
        // containerd maps `io.containerd.<name>.v1` to the binary `containerd-shim-<name>-v1`.
        assert_eq!(RUNTIME_TYPE, format!("io.containerd.{SHIM_NAME}.v1"));
        assert_eq!(BINARY_NAME, format!("containerd-shim-{SHIM_NAME}-v1"));
    }
}
