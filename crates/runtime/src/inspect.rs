//! What a Wasm binary offers a host: its top-level imports and exports, read with `wasmparser`,
//! and the checks that tell a WASI command from a `wasi:http` component before anything runs.

use std::path::Path;

use crate::build::{Artifact, Target, WasmKind, wasm_kind};
use crate::error::RuntimeError;

/// The interface a WASI 0.2 `wasi:http/proxy` component exports to be served.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// The interface a WASI 0.3 `wasi:http/service` component exports to be served (an `async`
/// `handle`).
pub const HANDLER_P3: &str = "wasi:http/handler@0.3";

/// The interface a wasip2 command exports.
const CLI_RUN: &str = "wasi:cli/run";

/// What a Wasm binary offers a host to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiService {
    /// A WASI command: a wasip1 module exporting `_start`, or a wasip2 component exporting
    /// `wasi:cli/run`; it opens its own listener.
    Command(Target),
    /// A `wasi:http/proxy` component (exports `wasi:http/incoming-handler`, WASI 0.2).
    HttpProxy,
    /// A `wasi:http/service` component (exports `wasi:http/handler@0.3`, WASI 0.3).
    HttpService,
}

/// Checks that `path` is a complete Wasm binary a host can run as a service and says which
/// kind it is. Binaries without the expected exports (a library or `cdylib` build, an empty
/// module) get one line naming what is missing and how to build it instead.
pub fn check_wasi_service(path: &Path) -> Result<WasiService, RuntimeError> {
    let invalid = |problem: String| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem,
    };
    let kind = wasm_kind(path)?;
    let (_, exports) = top_level_externs(path, kind)?;
    match kind {
        WasmKind::Module => {
            if exports.iter().any(|e| e == "_start") {
                Ok(WasiService::Command(Target::Wasip1))
            } else {
                Err(invalid(
                    "exports no `_start` function, so it is not a WASI command; build the service \
                     as a binary (`fn main`, not a library or cdylib) for wasm32-wasip1"
                        .into(),
                ))
            }
        }
        WasmKind::Component => {
            // 0.3 first: a component may also carry a 0.2 handler, and a host that speaks
            // 0.3 serves the 0.3 one (as `wasmtime serve` does).
            if exports.iter().any(|e| e.starts_with(HANDLER_P3)) {
                Ok(WasiService::HttpService)
            } else if exports.iter().any(|e| e.starts_with(INCOMING_HANDLER)) {
                Ok(WasiService::HttpProxy)
            } else if exports.iter().any(|e| e.starts_with(CLI_RUN)) {
                Ok(WasiService::Command(Target::Wasip2))
            } else {
                Err(invalid(format!(
                    "exports neither {CLI_RUN} (a WASI command) nor {INCOMING_HANDLER} (a \
                     wasi:http component) (exports: {}); build the service as a binary (`fn \
                     main`) for wasm32-wasip2, or as a wasi:http/proxy component",
                    if exports.is_empty() {
                        "none".to_string()
                    } else {
                        exports.join(", ")
                    }
                )))
            }
        }
    }
}

/// The outermost (imports, exports) of a module (exported functions only; no imports) or of a
/// component; reading the whole binary also catches truncated and corrupt files.
fn top_level_externs(
    path: &Path,
    kind: WasmKind,
) -> Result<(Vec<String>, Vec<String>), RuntimeError> {
    let bytes = std::fs::read(path).map_err(|e| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem: format!("cannot read it: {e}"),
    })?;
    let what = match kind {
        WasmKind::Module => "module",
        WasmKind::Component => "component",
    };
    let invalid = |e: wasmparser::BinaryReaderError| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem: format!(
            "is not a complete Wasm {what} ({e}); the file is truncated or corrupt: rebuild it"
        ),
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested modules and components have imports and exports of their own; only the outermost
    // ones are what a host links and calls.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.map_err(invalid)? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ExportSection(r) if depth == 0 => {
                for e in r {
                    let e = e.map_err(invalid)?;
                    if e.kind == wasmparser::ExternalKind::Func {
                        exports.push(e.name.to_string());
                    }
                }
            }
            wasmparser::Payload::ComponentImportSection(r) if depth == 0 => {
                for i in r {
                    imports.push(i.map_err(invalid)?.name.name.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    exports.push(e.map_err(invalid)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

/// The names a component exports at its top level (e.g.
/// `wasi:http/incoming-handler@0.2.4`).
pub fn component_exports(path: &Path) -> Result<Vec<String>, RuntimeError> {
    top_level_externs(path, WasmKind::Component).map(|(_, exports)| exports)
}

/// The names a component imports at its top level (e.g. `wasi:io/streams@0.2.4`).
pub fn component_imports(path: &Path) -> Result<Vec<String>, RuntimeError> {
    top_level_externs(path, WasmKind::Component).map(|(imports, _)| imports)
}

/// Checks that an artifact is a component exporting `wasi:http/incoming-handler`, with a
/// message that says which file to use instead.
pub fn check_http_component(artifact: &Artifact) -> Result<(), RuntimeError> {
    if artifact.target != Target::Wasip2 {
        return Err(RuntimeError::Config(format!(
            "wasi:http runtimes serve a wasm32-wasip2 component, not a {} artifact; build the \
             service as a wasi:http/proxy component for wasm32-wasip2",
            artifact.target
        )));
    }
    let exports = component_exports(&artifact.path)?;
    if exports
        .iter()
        .any(|e| e.starts_with(INCOMING_HANDLER) || e.starts_with(HANDLER_P3))
    {
        Ok(())
    } else {
        Err(RuntimeError::InvalidArtifact {
            path: artifact.path.clone(),
            problem: format!(
                "exports neither {INCOMING_HANDLER} nor {HANDLER_P3}: it is not a wasi:http \
                 component; a WASI command that opens its own listener runs under a socket host \
                 (wasmtime-wasip2, wasmtime-cli), a wasi:http runtime needs a wasi:http component"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_without_the_expected_exports_are_refused_with_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("empty-module.wasm");
        std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
        let e = check_wasi_service(&module).unwrap_err().to_string();
        assert!(e.contains("`_start`") && e.contains("wasm32-wasip1"), "{e}");
        let component = dir.path().join("empty-component.wasm");
        std::fs::write(&component, b"\0asm\x0d\0\x01\0").unwrap();
        let e = check_wasi_service(&component).unwrap_err().to_string();
        assert!(
            e.contains(CLI_RUN) && e.contains(INCOMING_HANDLER) && e.contains("exports: none"),
            "{e}"
        );
        assert!(component_exports(&component).unwrap().is_empty());
        let truncated = dir.path().join("truncated.wasm");
        std::fs::write(&truncated, b"\0asm\x01\0\0\0\x01\x05").unwrap();
        let e = check_wasi_service(&truncated).unwrap_err().to_string();
        assert!(e.contains("truncated or corrupt"), "{e}");
        let artifact = Artifact {
            target: Target::Wasip2,
            path: component,
            size_bytes: 8,
            build_time: std::time::Duration::ZERO,
            sha256: String::new(),
        };
        let e = check_http_component(&artifact).unwrap_err().to_string();
        assert!(
            e.contains(INCOMING_HANDLER)
                && e.contains(HANDLER_P3)
                && e.contains("needs a wasi:http component")
                && !e.contains("wasmbench_echo_http"),
            "{e}"
        );
    }
}
