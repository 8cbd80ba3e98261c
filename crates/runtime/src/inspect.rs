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
        WasmKind::Component => WasiService::of_component(&exports).ok_or_else(|| {
            invalid(format!(
                "exports neither {CLI_RUN} (a WASI command) nor {INCOMING_HANDLER} (a \
                 wasi:http component) (exports: {}); build the service as a binary (`fn \
                 main`) for wasm32-wasip2, or as a wasi:http/proxy component",
                list_or_none(&exports)
            ))
        }),
    }
}

impl WasiService {
    /// What a component with these top-level exports is, if it is a service at all. 0.3 comes
    /// first: a component may also carry a 0.2 handler, and a host that speaks 0.3 serves the
    /// 0.3 one (as `wasmtime serve` does).
    pub fn of_component(exports: &[String]) -> Option<WasiService> {
        let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
        if has(HANDLER_P3) {
            Some(WasiService::HttpService)
        } else if has(INCOMING_HANDLER) {
            Some(WasiService::HttpProxy)
        } else if has(CLI_RUN) {
            Some(WasiService::Command(Target::Wasip2))
        } else {
            None
        }
    }

    /// What the component in `bytes` is; `None` for a core module, a file that is not a
    /// complete component, or a component that is no service.
    pub fn of_component_bytes(bytes: &[u8]) -> Option<WasiService> {
        let (_, exports) = externs_of(bytes).ok()?;
        WasiService::of_component(&exports)
    }

    /// Whether it is served by a `wasi:http` host (either version).
    pub fn is_wasi_http(self) -> bool {
        matches!(self, WasiService::HttpProxy | WasiService::HttpService)
    }
}

/// `names` joined by commas, or `none`.
pub fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
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
    externs_of(&bytes).map_err(|e| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem: format!(
            "is not a complete Wasm {what} ({e}); the file is truncated or corrupt: rebuild it"
        ),
    })
}

/// [`top_level_externs`] of a binary in memory.
fn externs_of(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), wasmparser::BinaryReaderError> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested modules and components have imports and exports of their own; only the outermost
    // ones are what a host links and calls.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ExportSection(r) if depth == 0 => {
                for e in r {
                    let e = e?;
                    if e.kind == wasmparser::ExternalKind::Func {
                        exports.push(e.name.to_string());
                    }
                }
            }
            wasmparser::Payload::ComponentImportSection(r) if depth == 0 => {
                for i in r {
                    imports.push(i?.name.name.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    exports.push(e?.name.name.to_string());
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

/// The names a compiled (or deserialized) component exports at its top level: what
/// [`component_exports`] reads from a file, for code already loaded into `engine`.
pub fn loaded_component_exports(
    engine: &::wasmtime::Engine,
    component: &::wasmtime::component::Component,
) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
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
    if WasiService::of_component(&exports).is_some_and(WasiService::is_wasi_http) {
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
