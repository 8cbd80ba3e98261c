//! Bring your own service: the user's native command and Wasm build run through the same
//! pipeline as ours (cold start, warm-up, load, resources, reports).
//!
//! Contract: the service listens on the port given by `{port}` in the command line or by the
//! `PORT` environment variable (and `ECHO_HOST`/`HOST` for the address); it is ready when
//! `--ready-path` answers `200`, or, without one, when its port accepts a TCP connection.

use std::path::Path;

use crate::config::{CompareConfig, VariantSpec};
use crate::error::CompareError;

/// Name of the variant made from `--native-cmd`.
pub const NATIVE_CMD_VARIANT: &str = "native-cmd";

/// Replaces the variants of `cfg` with the user's builds, when any is given.
pub fn apply(
    cfg: &mut CompareConfig,
    native_cmd: Option<&str>,
    wasm: Option<&Path>,
    wasm_runtime: Option<&str>,
) -> Result<(), CompareError> {
    if native_cmd.is_none() && wasm.is_none() {
        return Ok(());
    }
    let mut variants = Vec::new();
    if let Some(cmd) = native_cmd {
        if cmd.trim().is_empty() {
            return Err(CompareError::Invalid(
                "--native-cmd is empty: give the command that starts your service".into(),
            ));
        }
        variants.push(VariantSpec {
            name: NATIVE_CMD_VARIANT.into(),
            runtime: NATIVE_CMD_VARIANT.into(),
            target: "native".into(),
            env: Vec::new(),
            artifact: None,
            command: Some(cmd.to_string()),
        });
    }
    if let Some(path) = wasm {
        let kind = wasmbench_runtime::artifact::wasm_kind(path)?;
        let runtime = match wasm_runtime {
            Some(r) => r.to_string(),
            None => match kind {
                wasmbench_runtime::WasmKind::Module => "wasmtime-wasip1".to_string(),
                wasmbench_runtime::WasmKind::Component => {
                    if is_http_proxy(path)? {
                        "wasi-http".to_string()
                    } else {
                        "wasmtime-wasip2".to_string()
                    }
                }
            },
        };
        variants.push(VariantSpec {
            name: format!("wasm-{runtime}"),
            runtime,
            target: String::new(),
            env: Vec::new(),
            artifact: Some(path.to_path_buf()),
            command: None,
        });
    }
    cfg.workload = "user service".into();
    cfg.variants = variants;
    Ok(())
}

/// Whether a component exports `wasi:http/incoming-handler` (a `wasi:http/proxy` service).
/// Export names are stored as plain strings in the component's export section, and only a
/// proxy exports the incoming handler (clients import `outgoing-handler`).
pub fn is_http_proxy(path: &Path) -> Result<bool, CompareError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CompareError::Invalid(format!("cannot read {}: {e}", path.display()))
    })?;
    let needle = b"wasi:http/incoming-handler";
    Ok(bytes.windows(needle.len()).any(|w| w == needle))
}
