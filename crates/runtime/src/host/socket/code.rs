//! The socket host's engine and the guest's code: compiled once with Cranelift and cached on
//! disk as `.cwasm` (keyed by input, Wasmtime version and engine settings), or compiled in
//! memory at every start.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ::wasmtime::component::Component;
use ::wasmtime::{Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};
use wasmbench_vocab::{ExecMode, Target};

use super::config::{EmbeddedConfig, HostReport};
use crate::build::sha256_file;
use crate::error::RuntimeError;
use crate::host::engine::{WASMTIME_VERSION, ms};

/// The guest's compiled code.
pub(crate) enum Code {
    /// A wasip1 core module.
    Module(Module),
    /// A wasip2 component.
    Component(Component),
}

/// The Wasmtime engine of every embedded run (pooling allocator sized by `cfg`, epoch
/// interruption), also used by the containerd shim (`crates/shim`) so a pod runs guests with
/// the same configuration as a local run. Code compiled by one engine from this function loads
/// into another built from an equal `cfg`.
pub fn build_engine(cfg: &EmbeddedConfig) -> Result<Engine, RuntimeError> {
    let mut c = Config::new();
    c.epoch_interruption(true);
    if cfg.pooling {
        let mut p = PoolingAllocationConfig::default();
        // One server instance per engine: small pools keep the virtual reservation modest.
        // Each memory reserves ~4 GiB of address space; 8 of them stay under the ~64 GiB a
        // process can map under valgrind (the callgrind pass), above the one to three
        // memories a component has.
        p.total_component_instances(8)
            .total_core_instances(64)
            .total_memories(8)
            .total_tables(32)
            .total_stacks(8)
            .max_memory_size(cfg.max_memory_bytes);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c).map_err(|e| RuntimeError::wasmtime("creating the engine", e))
}

/// The cache key: what makes compiled code valid — the input, the Wasmtime version and the
/// engine's compatibility hash (target, CPU features, compiler settings).
fn cache_key(engine: &Engine, wasm_sha256: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!(
        "{}-wasmtime{}-{:016x}",
        &wasm_sha256[..32.min(wasm_sha256.len())],
        WASMTIME_VERSION,
        h.finish()
    )
}

/// Where a host gets the guest's code from.
pub(crate) struct CodeSource<'a> {
    /// The `.wasm` file.
    pub wasm: &'a Path,
    /// A component (wasip2, wasi:http) rather than a core module.
    pub component: bool,
    /// Compile once into `cache_dir` and load the `.cwasm` afterwards; `false` compiles in
    /// memory at every start.
    pub precompiled: bool,
    /// Where `.cwasm` files live.
    pub cache_dir: PathBuf,
    /// What to say when the file cannot be compiled: how to rebuild it.
    pub rebuild_hint: String,
}

/// What getting the code took, for the host's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeLoad {
    /// Milliseconds spent compiling, when this process compiled.
    pub compile_ms: Option<f64>,
    /// Milliseconds spent loading a `.cwasm`.
    pub load_ms: f64,
    /// Whether a cached `.cwasm` was used.
    pub cache_hit: bool,
    /// The `.cwasm` file (when caching is on).
    pub cwasm_path: Option<PathBuf>,
    /// Its size.
    pub cwasm_size_bytes: Option<u64>,
}

impl CodeLoad {
    /// `precompiled` when the code came from the cache, `cranelift-jit` when compiled here.
    pub fn mode(&self) -> ExecMode {
        if self.cache_hit {
            ExecMode::Precompiled
        } else {
            ExecMode::CraneliftJit
        }
    }
}

/// Compiles `src` with `engine`, or loads it from the `.cwasm` cache.
pub(crate) fn load(
    engine: &Engine,
    src: &CodeSource<'_>,
) -> Result<(Code, CodeLoad), RuntimeError> {
    let wasm = src.wasm;
    let is_component = src.component;
    let mut report = CodeLoad::default();
    let bytes = std::fs::read(wasm)
        .map_err(|e| RuntimeError::io(format!("reading {}", wasm.display()), e))?;
    let compile_err = |e: ::wasmtime::Error| RuntimeError::InvalidArtifact {
        path: wasm.to_path_buf(),
        problem: format!(
            "Wasmtime cannot compile it ({e:#}); the file is truncated or corrupt: {}",
            src.rebuild_hint
        ),
    };
    if !src.precompiled {
        let t = Instant::now();
        let code = if is_component {
            Code::Component(Component::new(engine, &bytes).map_err(compile_err)?)
        } else {
            Code::Module(Module::new(engine, &bytes).map_err(compile_err)?)
        };
        report.compile_ms = Some(ms(t.elapsed()));
        return Ok((code, report));
    }

    let dir = &src.cache_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| RuntimeError::io(format!("creating cache directory {}", dir.display()), e))?;
    let sha = sha256_file(wasm)?;
    let path = dir.join(format!("{}.cwasm", cache_key(engine, &sha)));
    report.cwasm_path = Some(path.clone());

    if path.is_file() {
        let t = Instant::now();
        if let Ok(code) = deserialize(engine, &path, is_component) {
            report.load_ms = ms(t.elapsed());
            report.cache_hit = true;
            report.cwasm_size_bytes = std::fs::metadata(&path).ok().map(|m| m.len());
            return Ok((code, report));
        }
        // An unusable entry (truncated, other build) is replaced below.
    }
    let t = Instant::now();
    let compiled = if is_component {
        engine.precompile_component(&bytes)
    } else {
        engine.precompile_module(&bytes)
    }
    .map_err(compile_err)?;
    report.compile_ms = Some(ms(t.elapsed()));
    // Staged and renamed, so concurrent hosts never read a partial file.
    let tmp = crate::staging::staging_path(&path);
    std::fs::write(&tmp, &compiled)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))?;
    report.cwasm_size_bytes = Some(compiled.len() as u64);
    let t = Instant::now();
    let code = deserialize(engine, &path, is_component)
        .map_err(|e| RuntimeError::wasmtime(&format!("loading {}", path.display()), e))?;
    report.load_ms = ms(t.elapsed());
    Ok((code, report))
}

/// The socket host's code, and its report.
pub(super) fn load_code(
    engine: &Engine,
    cfg: &EmbeddedConfig,
    wasm: &Path,
) -> Result<(Code, HostReport), RuntimeError> {
    let src = CodeSource {
        wasm,
        component: cfg.target == Target::Wasip2,
        precompiled: cfg.precompiled,
        cache_dir: cfg.cache_dir(),
        rebuild_hint: format!(
            "rebuild it (the echo workload: `cargo build -p wasmbench-echo --profile artifact \
             --target wasm32-{}`)",
            cfg.target
        ),
    };
    let (code, l) = load(engine, &src)?;
    let mut report = HostReport::jit(cfg.target, cfg.pooling, cfg.max_memory_bytes);
    report.mode = l.mode();
    report.cache_hit = l.cache_hit;
    report.cwasm_path = l.cwasm_path;
    report.cwasm_size_bytes = l.cwasm_size_bytes;
    report.compile_ms = l.compile_ms;
    report.load_ms = l.load_ms;
    Ok((code, report))
}

fn deserialize(engine: &Engine, path: &Path, component: bool) -> ::wasmtime::Result<Code> {
    // SAFETY: deserializing trusts the file to be Wasmtime output. This file was written by
    // `Engine::precompile_*` of this same Wasmtime version into the user's own cache directory,
    // under a name that includes the engine's compatibility hash; Wasmtime also checks the
    // header, version and engine settings before using it.
    unsafe {
        if component {
            Component::deserialize_file(engine, path).map(Code::Component)
        } else {
            Module::deserialize_file(engine, path).map(Code::Module)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(module (func (export "_start")))`.
    const START_ONLY: &[u8] = b"\0asm\x01\0\0\0\
        \x01\x04\x01\x60\0\0\
        \x03\x02\x01\0\
        \x07\x0a\x01\x06_start\0\0\
        \x0a\x04\x01\x02\0\x0b";

    #[test]
    fn code_is_compiled_once_then_loaded_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("start.wasm");
        std::fs::write(&wasm, START_ONLY).unwrap();
        let mut cfg = EmbeddedConfig::new(Target::Wasip1, &wasm);
        cfg.pooling = false;
        cfg.cache_dir = Some(dir.path().join("cwasm"));
        let engine = build_engine(&cfg).unwrap();

        let (code, first) = load_code(&engine, &cfg, &wasm).unwrap();
        assert!(matches!(code, Code::Module(_)));
        assert!(!first.cache_hit && first.compile_ms.is_some());
        assert_eq!(first.mode, ExecMode::CraneliftJit);
        let cwasm = first.cwasm_path.clone().unwrap();
        assert!(cwasm.starts_with(dir.path().join("cwasm")) && cwasm.is_file());
        assert!(
            cwasm.to_string_lossy().contains(WASMTIME_VERSION),
            "{}",
            cwasm.display()
        );

        let (_, second) = load_code(&engine, &cfg, &wasm).unwrap();
        assert!(second.cache_hit && second.compile_ms.is_none());
        assert_eq!(second.mode, ExecMode::Precompiled);
        assert_eq!(second.cwasm_path, first.cwasm_path);

        cfg.precompiled = false;
        let (_, jit) = load_code(&engine, &cfg, &wasm).unwrap();
        assert!(!jit.cache_hit && jit.cwasm_path.is_none() && jit.compile_ms.is_some());
        assert_eq!(jit.mode, ExecMode::CraneliftJit);
    }
}
