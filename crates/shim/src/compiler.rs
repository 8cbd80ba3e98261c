//! Precompilation: containerd-shim-wasm calls the [`Compiler`] once per image (and cache key)
//! for images whose layers are Wasm, and keeps the result in containerd's content store; later
//! containers of that image get the compiled code (`WasmLayer::precompiled`) and skip Cranelift.

use std::hash::Hash;
use std::sync::OnceLock;

use containerd_shim_wasm::sandbox::context::{WasmBinaryType, WasmLayer};
use containerd_shim_wasm::shim::Compiler;
use wasmbench_runtime::host::WASMTIME_VERSION;
use wasmtime::Engine;

use crate::error::ShimError;
use crate::guest::Serving;
use crate::info::VERSION;

/// Compiles Wasm layers with the engine the shim runs them on ([`crate::guest::engine`] for
/// commands, [`crate::guest::http_engine`] for `wasi:http` components).
///
/// The engine is built on first use: containerd-shim-wasm asks every shim process for its
/// compiler, but uses it only for images with Wasm layers, and an engine with the pooling
/// allocator reserves a large address range that images with a file entrypoint never need.
#[derive(Default)]
pub struct WasmbenchCompiler {
    engine: OnceLock<Result<Engine, String>>,
    http_engine: OnceLock<Result<Engine, String>>,
}

impl std::fmt::Debug for WasmbenchCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmbenchCompiler").finish_non_exhaustive()
    }
}

impl WasmbenchCompiler {
    /// A compiler with the shim's engine configuration.
    pub fn new() -> WasmbenchCompiler {
        WasmbenchCompiler::default()
    }

    /// The engine the shim runs `serving` components on, built once.
    fn engine(&self, serving: Serving) -> Result<&Engine, ShimError> {
        let cell = match serving {
            Serving::Command => &self.engine,
            Serving::WasiHttp => &self.http_engine,
        };
        cell.get_or_init(|| serving.engine().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ShimError::Unsupported(format!("no engine to precompile with: {e}")))
    }

    /// Compiled code for one layer: `Some` for a component, `None` for anything the shim would
    /// not run from compiled code (already compiled, a core module, not Wasm), which
    /// containerd-shim-wasm then passes on unchanged.
    pub fn compile_layer(&self, wasm: &[u8]) -> Result<Option<Vec<u8>>, ShimError> {
        if Engine::detect_precompiled(wasm).is_some() {
            return Ok(None);
        }
        match WasmBinaryType::from_bytes(wasm) {
            Some(WasmBinaryType::Component) => self
                .engine(Serving::of_component_bytes(wasm))?
                .precompile_component(wasm)
                .map(Some)
                .map_err(|e| {
                    ShimError::Unsupported(format!("Wasmtime cannot compile the layer: {e:#}"))
                }),
            Some(WasmBinaryType::Module) | None => Ok(None),
        }
    }
}

impl Compiler for WasmbenchCompiler {
    /// The shim version, the Wasmtime version and the engines' compatibility hashes (target, CPU
    /// features, compiler and memory settings): compiled code is reused only when all three
    /// match; otherwise containerd-shim-wasm compiles again under the new key.
    fn cache_key(&self) -> impl Hash {
        // Without an engine `compile` fails too, and containerd-shim-wasm then runs the
        // original layers; the key only has to differ from a working engine's.
        let hash = |s| {
            self.engine(s)
                .ok()
                .map(|e| e.precompile_compatibility_hash())
        };
        (
            VERSION,
            WASMTIME_VERSION,
            hash(Serving::Command),
            hash(Serving::WasiHttp),
        )
    }

    async fn compile(&self, layers: &[WasmLayer]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        // One entry per layer, in order: containerd-shim-wasm rejects any other count.
        let mut out = Vec::with_capacity(layers.len());
        for layer in layers {
            out.push(if layer.precompiled {
                None
            } else {
                self.compile_layer(&layer.layer)?
            });
        }
        Ok(out)
    }
}
