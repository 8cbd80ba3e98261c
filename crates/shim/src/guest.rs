//! Loading and running a container's component with wasmbench's Wasmtime configuration.
//!
//! A `wasi:cli/run` command gets an engine from [`wasmbench_runtime::host::socket::build_engine`]
//! with the local host's defaults ([`engine_config`]) and runs through
//! [`wasmbench_runtime::host::socket::run_command`], the function the local embedded host uses, so
//! a pod and a local `wasmtime-wasip2` run differ only in the WASI context: here the guest gets
//! the container's arguments, environment and stdio, and the pod's network namespace. A
//! `wasi:http` component (WASI 0.2 or 0.3) is served by the local `wasi:http` host
//! ([`wasmbench_runtime::host::http::WasiHttpHost`], the `wasi-http` variant's settings) on
//! [`HTTP_ADDR_ENV`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use containerd_shim_wasm::sandbox::context::WasmBinaryType;
use sha2::{Digest, Sha256};
use wasmbench_runtime::host::EpochTicker;
use wasmbench_runtime::host::http::{
    WasiHttpConfig, WasiHttpHost, build_engine as build_http_engine,
};
use wasmbench_runtime::host::socket::{CodeLoad, GuestExit, build_engine, run_command};
use wasmbench_runtime::inspect::{WasiService, list_or_none, loaded_component_exports};
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

/// The interface of a WASI command.
const CLI_RUN: &str = "wasi:cli/run";

/// The variable of the container's environment that sets where a `wasi:http` component is
/// served, as in runwasi's wasmtime shim: `IP:port`, default [`DEFAULT_HTTP_ADDR`]. The shim
/// takes it out of the environment the guest sees.
pub const HTTP_ADDR_ENV: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";
/// Where a `wasi:http` component is served when [`HTTP_ADDR_ENV`] is not set: every address
/// of the pod, port 8080 (`wasmtime serve`'s and runwasi's default).
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);

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

/// The local `wasi:http` host's defaults (`wasi-http` variant: pooling, an instance per
/// request, 1000 requests at once), for a component at `wasm`, served on [`DEFAULT_HTTP_ADDR`].
pub fn http_config(wasm: impl Into<PathBuf>) -> WasiHttpConfig {
    let mut cfg = WasiHttpConfig::new(wasm);
    cfg.host = DEFAULT_HTTP_ADDR.ip();
    cfg.port = DEFAULT_HTTP_ADDR.port();
    cfg
}

/// The engine for [`http_config`]: the one `wasi:http` components are compiled for.
pub fn http_engine() -> Result<Engine, ShimError> {
    Ok(build_http_engine(&http_config(PathBuf::new()))?)
}

/// Which host serves a component, and so which engine its code is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// A `wasi:cli/run` command: run once with the container's arguments; it opens its own
    /// listener ([`engine`]).
    Command,
    /// A `wasi:http` component, WASI 0.2 or 0.3: served by the embedded `wasi:http` host, an
    /// instance per request, on [`HTTP_ADDR_ENV`] ([`http_engine`]).
    WasiHttp,
}

impl Serving {
    /// How a component in `wasm` (not compiled) is served, judged from its exports before
    /// compiling; anything that is not `wasi:http` goes to the command path, which says what
    /// is wrong with it.
    pub fn of_component_bytes(wasm: &[u8]) -> Serving {
        WasiService::of_component_bytes(wasm).map_or(Serving::Command, Serving::of_service)
    }

    /// The host for a service of this kind.
    pub fn of_service(service: WasiService) -> Serving {
        if service.is_wasi_http() {
            Serving::WasiHttp
        } else {
            Serving::Command
        }
    }

    /// The engine code for this kind of component is compiled for.
    pub fn engine(self) -> Result<Engine, ShimError> {
        match self {
            Serving::Command => engine(),
            Serving::WasiHttp => http_engine(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A compiled component, ready to run once.
pub struct Guest {
    engine: Engine,
    component: Component,
    serving: Serving,
    report: HostReport,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("serving", &self.serving)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Guest {
    /// Compiles `wasm` (a component), or, when `precompiled`, loads Wasmtime code that this
    /// shim's [`crate::WasmbenchCompiler`] produced and containerd cached.
    pub fn load(wasm: &[u8], precompiled: bool) -> Result<Guest, ShimError> {
        let cfg = engine_config();
        let mut report = HostReport::jit(Target::Wasip2, cfg.pooling, cfg.max_memory_bytes);
        report.wasm_sha256 = hex::encode(Sha256::digest(wasm));
        let t = Instant::now();
        let (engine, component) = if precompiled {
            let loaded = deserialize(wasm)?;
            report.mode = ExecMode::Precompiled;
            report.cache_hit = true;
            report.cwasm_size_bytes = Some(wasm.len() as u64);
            report.load_ms = ms(t.elapsed());
            loaded
        } else {
            check_binary_type(wasm)?;
            let engine = Serving::of_component_bytes(wasm).engine()?;
            let c = Component::new(&engine, wasm).map_err(|e| {
                ShimError::Unsupported(format!(
                    "Wasmtime cannot compile the component ({e:#}); the file is truncated or \
                     corrupt: rebuild it"
                ))
            })?;
            report.compile_ms = Some(ms(t.elapsed()));
            (engine, c)
        };
        let serving = serving(&engine, &component)?;
        Ok(Guest {
            engine,
            component,
            serving,
            report,
        })
    }

    /// What loading did so far (instantiation time is added by [`Guest::run`]).
    pub fn report(&self) -> &HostReport {
        &self.report
    }

    /// How the component is served.
    pub fn serving(&self) -> Serving {
        self.serving
    }

    /// Runs the component on the calling thread until it returns or `shutdown` is set, with
    /// `args` (including `argv[0]`) and `envs`. A command's host report is printed on stderr
    /// after instantiation when `announce` is set, one line prefixed with
    /// [`HOST_REPORT_PREFIX`] as the local host does, so a pod's log says how its code was
    /// compiled; a `wasi:http` component's report (and `listening on ADDR` on stdout) are
    /// printed by the `wasi:http` host once it listens, as locally.
    pub fn run(
        self,
        args: &[String],
        envs: &[(String, String)],
        shutdown: &Arc<AtomicBool>,
        announce: bool,
    ) -> Result<GuestExit, ShimError> {
        match self.serving {
            Serving::Command => self.run_command(args, envs, shutdown, announce),
            Serving::WasiHttp => self.serve_http(args, envs, shutdown),
        }
    }

    fn run_command(
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

    /// Serves the component until `shutdown` is set. Each instance gets the container's
    /// environment (less [`HTTP_ADDR_ENV`]) and no arguments, as `wasmtime serve` gives.
    fn serve_http(
        self,
        args: &[String],
        envs: &[(String, String)],
        shutdown: &Arc<AtomicBool>,
    ) -> Result<GuestExit, ShimError> {
        let (addr, env) = http_addr(envs)?;
        let mut cfg = http_config(args.first().map(String::as_str).unwrap_or_default());
        cfg.host = addr.ip();
        cfg.port = addr.port();
        cfg.env = env;
        let load = CodeLoad {
            compile_ms: self.report.compile_ms,
            load_ms: self.report.load_ms,
            cache_hit: self.report.cache_hit,
            cwasm_path: None,
            cwasm_size_bytes: self.report.cwasm_size_bytes,
        };
        WasiHttpHost::from_component(cfg, self.engine, self.component, load)?.serve(shutdown)?;
        Ok(GuestExit::Stopped)
    }
}

/// The address [`HTTP_ADDR_ENV`] names (or [`DEFAULT_HTTP_ADDR`]) and the rest of `envs`.
pub fn http_addr(
    envs: &[(String, String)],
) -> Result<(SocketAddr, Vec<(String, String)>), ShimError> {
    let mut addr = DEFAULT_HTTP_ADDR;
    let mut rest = Vec::with_capacity(envs.len());
    for (k, v) in envs {
        if k == HTTP_ADDR_ENV {
            addr = v.parse().map_err(|_| {
                ShimError::Unsupported(format!(
                    "{HTTP_ADDR_ENV}={v:?} is not an IP:port address; set it like \
                     0.0.0.0:8080, or leave it out for {DEFAULT_HTTP_ADDR}"
                ))
            })?;
        } else {
            rest.push((k.clone(), v.clone()));
        }
    }
    Ok((addr, rest))
}

/// Refuses what is not a component, each with what to do instead.
fn check_binary_type(wasm: &[u8]) -> Result<(), ShimError> {
    match WasmBinaryType::from_bytes(wasm) {
        Some(WasmBinaryType::Component) => Ok(()),
        Some(WasmBinaryType::Module) => Err(ShimError::Unsupported(
            "the entrypoint is a core Wasm module (wasm32-wasip1); this shim runs wasip2 \
             components: build the service for wasm32-wasip2"
                .into(),
        )),
        None if Engine::detect_precompiled(wasm).is_some() => Err(ShimError::Unsupported(
            "the entrypoint is precompiled Wasmtime code (.cwasm); the shim does not load such \
             files from images (loading one runs its machine code unchecked): ship the .wasm, \
             which the shim compiles"
                .into(),
        )),
        None => Err(ShimError::Unsupported(
            "the entrypoint is not a Wasm binary".into(),
        )),
    }
}

/// Loads code the precompiler cached, into whichever engine it was compiled for (commands and
/// `wasi:http` components have engines of their own; Wasmtime refuses code compiled for
/// another engine's settings).
fn deserialize(wasm: &[u8]) -> Result<(Engine, Component), ShimError> {
    let mut errors = Vec::new();
    for serving in [Serving::Command, Serving::WasiHttp] {
        let engine = serving.engine()?;
        // SAFETY: deserializing trusts the bytes to be Wasmtime output. containerd-shim-wasm
        // marks a layer precompiled only when it read it from containerd's content store
        // under this shim's precompile label, which it wrote with the output of
        // `WasmbenchCompiler::compile` (the same Wasmtime version and engine settings, both
        // part of the cache key); Wasmtime also checks the header, version and engine
        // settings before using it. Files in the image are never deserialized (above).
        match unsafe { Component::deserialize(&engine, wasm) } {
            Ok(c) => return Ok((engine, c)),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Err(ShimError::Unsupported(format!(
        "the precompiled layer containerd cached does not load ({}); remove the image's \
         `runwasi.io/precompiled/wasmbench/…` labels to recompile it",
        errors.join("; ")
    )))
}

/// How `component` is served, from its exports; components that are neither a command nor a
/// `wasi:http` service are refused with what they export.
fn serving(engine: &Engine, component: &Component) -> Result<Serving, ShimError> {
    let exports = loaded_component_exports(engine, component);
    match WasiService::of_component(&exports) {
        Some(service) => Ok(Serving::of_service(service)),
        None => Err(ShimError::Unsupported(format!(
            "the component exports no {CLI_RUN} and no wasi:http handler (exports: {}); build \
             the service as a binary (`fn main`) for wasm32-wasip2, or as a wasi:http component",
            list_or_none(&exports)
        ))),
    }
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
