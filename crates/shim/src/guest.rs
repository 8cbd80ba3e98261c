//! Loading and running a container's component with wasmbench's Wasmtime configuration.
//!
//! The engine comes from [`wasmbench_runtime::host::socket::build_engine`] with the local host's
//! defaults ([`engine_config`]) and the guest runs through
//! [`wasmbench_runtime::host::socket::run_command`], the function the local embedded host uses, so
//! a pod and a local `wasmtime-wasip2` run differ only in the WASI context: here the guest gets
//! the container's arguments, environment and stdio, and the pod's network namespace.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use containerd_shim_wasm::sandbox::context::WasmBinaryType;
use sha2::{Digest, Sha256};
use wasmbench_runtime::host::EpochTicker;
use wasmbench_runtime::host::socket::{GuestExit, build_engine, run_command};
use wasmbench_runtime::launch::HOST_REPORT_PREFIX;
use wasmbench_runtime::{EmbeddedConfig, HostReport};
use wasmbench_vocab::{ExecMode, Target};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::WasiCtx;

use crate::error::ShimError;

/// The guest's network, as recorded in the shim's [`crate::runtime_info`]. The pod's network
/// namespace is the boundary (NetworkPolicy applies to it as to any pod), so the guest may use
/// TCP on any address in it, as a native server may; UDP and name lookups stay off because a
/// socket server needs neither (as in the local host).
pub const NETWORK_POLICY: &str =
    "pod network namespace: TCP bind/listen/accept/connect on any address; no UDP, no name lookups";

/// The interface of a `wasi:http/proxy` component, which this shim does not serve.
const HTTP_HANDLER: &str = "wasi:http/incoming-handler";
/// The interface of a WASI command.
const CLI_RUN: &str = "wasi:cli/run";

/// The embedded host's settings the shim uses: the local defaults (pooling allocator,
/// 256 MiB guest memory, 10 ms epochs). The precompiler builds its engine from the same
/// settings, so the code it caches loads into the engine that runs it.
pub fn engine_config() -> EmbeddedConfig {
    // The path is not part of the engine configuration.
    EmbeddedConfig::new(Target::Wasip2, PathBuf::new())
}

/// The engine for [`engine_config`].
pub fn engine() -> Result<Engine, ShimError> {
    Ok(build_engine(&engine_config())?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A compiled `wasi:cli/run` component, ready to run once.
pub struct Guest {
    engine: Engine,
    component: Component,
    report: HostReport,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Guest {
    /// Compiles `wasm` (a component), or, when `precompiled`, loads Wasmtime code that this
    /// shim's [`crate::WasmbenchCompiler`] produced and containerd cached.
    pub fn load(wasm: &[u8], precompiled: bool) -> Result<Guest, ShimError> {
        let engine = engine()?;
        let cfg = engine_config();
        let mut report = HostReport::jit(Target::Wasip2, cfg.pooling, cfg.max_memory_bytes);
        report.wasm_sha256 = hex::encode(Sha256::digest(wasm));
        let t = Instant::now();
        let component = if precompiled {
            // SAFETY: deserializing trusts the bytes to be Wasmtime output. containerd-shim-wasm
            // marks a layer precompiled only when it read it from containerd's content store
            // under this shim's precompile label, which it wrote with the output of
            // `WasmbenchCompiler::compile` (the same Wasmtime version and engine settings, both
            // part of the cache key); Wasmtime also checks the header, version and engine
            // settings before using it. Files in the image are never deserialized (below).
            let c = unsafe { Component::deserialize(&engine, wasm) }.map_err(|e| {
                ShimError::Unsupported(format!(
                    "the precompiled layer containerd cached does not load ({e:#}); remove the \
                     image's `runwasi.io/precompiled/wasmbench/…` labels to recompile it"
                ))
            })?;
            report.mode = ExecMode::Precompiled;
            report.cache_hit = true;
            report.cwasm_size_bytes = Some(wasm.len() as u64);
            report.load_ms = ms(t.elapsed());
            c
        } else {
            match WasmBinaryType::from_bytes(wasm) {
                Some(WasmBinaryType::Component) => {}
                Some(WasmBinaryType::Module) => {
                    return Err(ShimError::Unsupported(
                        "the entrypoint is a core Wasm module (wasm32-wasip1); this shim runs \
                         wasip2 components: build the service for wasm32-wasip2"
                            .into(),
                    ));
                }
                None if Engine::detect_precompiled(wasm).is_some() => {
                    return Err(ShimError::Unsupported(
                        "the entrypoint is precompiled Wasmtime code (.cwasm); the shim does not \
                         load such files from images (loading one runs its machine code \
                         unchecked): ship the .wasm, which the shim compiles"
                            .into(),
                    ));
                }
                None => {
                    return Err(ShimError::Unsupported(
                        "the entrypoint is not a Wasm binary".into(),
                    ));
                }
            }
            let c = Component::new(&engine, wasm).map_err(|e| {
                ShimError::Unsupported(format!(
                    "Wasmtime cannot compile the component ({e:#}); the file is truncated or \
                     corrupt: rebuild it"
                ))
            })?;
            report.compile_ms = Some(ms(t.elapsed()));
            c
        };
        check_exports(&engine, &component)?;
        Ok(Guest {
            engine,
            component,
            report,
        })
    }

    /// What loading did so far (instantiation time is added by [`Guest::run`]).
    pub fn report(&self) -> &HostReport {
        &self.report
    }

    /// Runs the component on the calling thread until it returns or `shutdown` is set, with
    /// `args` (including `argv[0]`) and `envs`. With `announce`, the host report is printed on
    /// stderr after instantiation, one line prefixed with [`HOST_REPORT_PREFIX`] as the local
    /// host does, so a pod's log says how its code was compiled.
    pub fn run(
        self,
        args: &[String],
        envs: &[(String, String)],
        shutdown: &Arc<AtomicBool>,
        announce: bool,
    ) -> Result<GuestExit, ShimError> {
        let cfg = engine_config();
        let _ticker = EpochTicker::start(&self.engine, cfg.epoch_deadline)?;
        let mut b = WasiCtx::builder();
        b.args(args)
            .envs(envs)
            .inherit_stdio()
            .inherit_network()
            .allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let mut report = self.report;
        Ok(run_command(
            &self.engine,
            &self.component,
            b.build(),
            cfg.max_memory_bytes,
            shutdown,
            |took| {
                report.instantiate_ms = Some(ms(took));
                if announce && let Ok(json) = serde_json::to_string(&report) {
                    eprintln!("{HOST_REPORT_PREFIX}{json}");
                }
            },
        )?)
    }
}

/// Rejects components that are not WASI commands with a message saying what they are.
fn check_exports(engine: &Engine, component: &Component) -> Result<(), ShimError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if exports.iter().any(|e| e.starts_with(HTTP_HANDLER)) {
        return Err(ShimError::Unsupported(format!(
            "the component is a wasi:http/proxy component (it exports {HTTP_HANDLER}); this shim \
             runs socket servers (wasi:cli/run): use the wasmtime shim for wasi:http"
        )));
    }
    if !exports.iter().any(|e| e.starts_with(CLI_RUN)) {
        return Err(ShimError::Unsupported(format!(
            "the component exports no {CLI_RUN} (exports: {}); build the service as a binary \
             (`fn main`) for wasm32-wasip2",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        )));
    }
    Ok(())
}

/// The container's exit status for how its guest ended: the guest's own status, 1 when `run`
/// returned its error value (as `wasmtime run` does), 0 when the host stopped it.
pub fn exit_code(exit: GuestExit) -> i32 {
    match exit {
        GuestExit::Status(n) => n,
        GuestExit::ErrorResult => 1,
        GuestExit::Stopped => 0,
    }
}

/// `KEY=VALUE` strings of an OCI process spec as pairs (a string without `=` is a key with an
/// empty value, as a shell would read it).
pub fn env_pairs(envs: &[String]) -> Vec<(String, String)> {
    envs.iter()
        .map(|v| {
            let (k, v) = v.split_once('=').unwrap_or((v.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_env_strings_split_at_the_first_equals_sign() {
        let env = env_pairs(&["PORT=8080".into(), "A=b=c".into(), "EMPTY".into()]);
        assert_eq!(
            env,
            vec![
                ("PORT".into(), "8080".into()),
                ("A".into(), "b=c".into()),
                ("EMPTY".into(), String::new()),
            ]
        );
    }

    #[test]
    fn exit_codes_follow_wasmtime_run() {
        assert_eq!(exit_code(GuestExit::Status(0)), 0);
        assert_eq!(exit_code(GuestExit::Status(3)), 3);
        assert_eq!(exit_code(GuestExit::ErrorResult), 1);
    }

    #[test]
    fn modules_and_non_wasm_are_refused_with_a_reason() {
        let e = Guest::load(b"\0asm\x01\0\0\0", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wasm32-wasip2"), "{e}");
        let e = Guest::load(b"#!/bin/sh\n", false).unwrap_err().to_string();
        assert!(e.contains("not a Wasm binary"), "{e}");
    }
}
