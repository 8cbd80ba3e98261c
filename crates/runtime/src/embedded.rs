//! The embedded hosts as [`Runtime`]s: each launch starts `wasmbench serve` with the host's
//! [`HostConfig`] in a process of its own, so the server's CPU and memory are measured apart
//! from the load generator's, then reads the host report the child prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::build::Target;
use crate::error::RuntimeError;
use crate::host::engine::check_exec_mode;
use crate::host::http::{
    DEFAULT_MAX_CONCURRENT_REQUESTS, PoolTuning, WasiHttpConfig, WasiHttpReport,
};
use crate::host::socket::{EmbeddedConfig, HostReport};
use crate::host::{DEFAULT_MAX_MEMORY_BYTES, HostConfig, WASMTIME_VERSION};
use crate::inspect::check_http_component;
use crate::launch::{ExecMode, LaunchSpec, RunningServer, Runtime, RuntimeInfo, spawn_server};
use wasmbench_vocab::POOL_DETAIL;

/// How long a launch waits for the child's host report once the server is ready.
const HOST_REPORT_WAIT: Duration = Duration::from_secs(1);

/// The embedded Wasmtime runtime, launched as `wasmbench serve` in a process of its own.
#[derive(Debug, Clone)]
pub struct EmbeddedWasmtime {
    /// `Wasip1` or `Wasip2`.
    pub target: Target,
    /// Pooling allocator on/off.
    pub pooling: bool,
    /// Use the `.cwasm` cache.
    pub precompiled: bool,
    /// `.cwasm` cache directory (default: see [`EmbeddedConfig::cache_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// Guest memory limit.
    pub max_memory_bytes: usize,
}

impl EmbeddedWasmtime {
    /// Defaults: pooling on, cache on, 256 MiB.
    pub fn new(target: Target) -> EmbeddedWasmtime {
        EmbeddedWasmtime {
            target,
            pooling: true,
            precompiled: true,
            cache_dir: None,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
        }
    }

    /// The host configuration `launch` passes to `wasmbench serve`.
    pub fn config(&self, spec: &LaunchSpec) -> EmbeddedConfig {
        EmbeddedConfig {
            target: self.target,
            wasm: spec.artifact.path.clone(),
            host: spec.host,
            port: spec.port,
            env: spec.env.clone(),
            max_memory_bytes: self.max_memory_bytes,
            epoch_deadline: Duration::from_millis(10),
            pooling: self.pooling,
            precompiled: self.precompiled,
            cache_dir: self.cache_dir.clone(),
            dirs: spec.dirs.clone(),
        }
    }
}

impl Runtime for EmbeddedWasmtime {
    fn info(&self) -> RuntimeInfo {
        let mut details = BTreeMap::new();
        details.insert("embedding".into(), "wasmbench (wasmtime crate)".into());
        details.insert("max_memory_bytes".into(), self.max_memory_bytes.to_string());
        RuntimeInfo {
            name: "wasmtime".into(),
            version: WASMTIME_VERSION.into(),
            mode: if self.precompiled {
                ExecMode::Precompiled
            } else {
                ExecMode::CraneliftJit
            },
            target: self.target,
            pooling: Some(self.pooling),
            details,
        }
    }

    fn available(&self) -> Result<(), String> {
        if self.target.is_wasm() {
            Ok(())
        } else {
            Err("the embedded Wasmtime host runs wasip1/wasip2 artifacts only".into())
        }
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        if spec.artifact.target != self.target {
            return Err(RuntimeError::Config(format!(
                "this host runs {} builds, but {} is a {} build; give it a {} build, or run \
                 this one with a host for {}",
                self.target,
                spec.artifact.path.display(),
                spec.artifact.target,
                self.target,
                spec.artifact.target
            )));
        }
        let exe = host_exe(spec, "Wasmtime")?;
        let cfg = HostConfig::Socket(self.config(spec));
        let mut server = spawn_host(&exe, &cfg, "wasmtime", self.info(), spec)?;
        if let Some(report) = server
            .host_report_json(HOST_REPORT_WAIT)
            .and_then(|j| serde_json::from_str::<HostReport>(&j).ok())
        {
            server.info.mode = report.mode;
            let d = &mut server.info.details;
            d.insert("cache_hit".into(), report.cache_hit.to_string());
            if let Some(c) = report.compile_ms {
                d.insert("compile_ms".into(), format!("{c:.3}"));
            }
            d.insert("load_ms".into(), format!("{:.3}", report.load_ms));
            if let Some(i) = report.instantiate_ms {
                d.insert("instantiate_ms".into(), format!("{i:.3}"));
            }
            if let Some(s) = report.cwasm_size_bytes {
                d.insert("cwasm_size_bytes".into(), s.to_string());
            }
        }
        Ok(server)
    }
}

/// The embedded `wasi:http` host as a [`Runtime`], launched as `wasmbench serve` in a process
/// of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedWasiHttp {
    /// Cranelift, Winch or Pulley.
    pub mode: ExecMode,
    /// Pooling allocator on/off.
    pub pooling: bool,
    /// Guest memory limit per instance.
    pub max_memory_bytes: usize,
    /// Requests per instance (1 = instance per request).
    pub instance_reuse: usize,
    /// Load Cranelift's code from the `.cwasm` cache instead of compiling at every start.
    pub precompiled: bool,
    /// How the pooling allocator readies a slot for the next instance.
    pub pool: PoolTuning,
}

impl Default for EmbeddedWasiHttp {
    fn default() -> Self {
        EmbeddedWasiHttp {
            mode: ExecMode::CraneliftJit,
            pooling: true,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            instance_reuse: 1,
            precompiled: false,
            pool: PoolTuning::default(),
        }
    }
}

impl EmbeddedWasiHttp {
    /// The host configuration `launch` passes to `wasmbench serve`.
    pub fn config(&self, spec: &LaunchSpec) -> WasiHttpConfig {
        WasiHttpConfig {
            host: spec.host,
            port: spec.port,
            pooling: self.pooling,
            max_memory_bytes: self.max_memory_bytes,
            mode: self.mode,
            instance_reuse: self.instance_reuse,
            precompiled: self.precompiled,
            allow_outbound: spec.allow_outbound.clone(),
            env: spec.env.clone(),
            dirs: spec.dirs.clone(),
            pool: self.pool.clone(),
            max_concurrent_requests: spec
                .max_in_flight
                .map_or(DEFAULT_MAX_CONCURRENT_REQUESTS, |n| {
                    n.clamp(1, DEFAULT_MAX_CONCURRENT_REQUESTS)
                }),
            ..WasiHttpConfig::new(spec.artifact.path.clone())
        }
    }
}

impl Runtime for EmbeddedWasiHttp {
    fn info(&self) -> RuntimeInfo {
        let mut details = BTreeMap::new();
        details.insert(
            "embedding".into(),
            "wasmbench wasi:http host (wasmtime-wasi-http, hyper)".into(),
        );
        // 0.2 or 0.3: the host reads it from the component (`host.wasi_http`).
        details.insert("workload".into(), "wasi:http component".into());
        details.insert("instance_reuse".into(), self.instance_reuse.to_string());
        details.insert("max_memory_bytes".into(), self.max_memory_bytes.to_string());
        if self.pooling {
            details.insert(POOL_DETAIL.into(), self.pool.describe());
        }
        RuntimeInfo {
            name: "wasmtime-wasi-http".into(),
            version: WASMTIME_VERSION.into(),
            mode: if self.precompiled {
                ExecMode::Precompiled
            } else {
                self.mode
            },
            target: Target::Wasip2,
            pooling: Some(self.pooling),
            details,
        }
    }

    fn available(&self) -> Result<(), String> {
        check_exec_mode(self.mode).map_err(|e| e.to_string())
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        check_http_component(&spec.artifact)?;
        let exe = host_exe(spec, "wasi:http")?;
        let cfg = HostConfig::WasiHttp(self.config(spec));
        let mut info = self.info();
        info.details
            .insert("artifact_sha256".into(), spec.artifact.sha256.clone());
        if !spec.allow_outbound.is_empty() {
            // A run whose guests could reach other servers is recorded as such.
            let list: Vec<String> = spec.allow_outbound.iter().map(|a| a.to_string()).collect();
            info.details.insert("allow_outbound".into(), list.join(","));
        }
        let mut server = spawn_host(&exe, &cfg, "wasmtime-wasi-http", info, spec)?;
        if let Some(report) = server
            .host_report_json(HOST_REPORT_WAIT)
            .and_then(|j| serde_json::from_str::<WasiHttpReport>(&j).ok())
        {
            server.info.mode = report.mode;
            let d = &mut server.info.details;
            d.insert("cache_hit".into(), report.cache_hit.to_string());
            if let Some(c) = report.compile_ms {
                d.insert("compile_ms".into(), format!("{c:.3}"));
            }
            if report.cache_hit {
                d.insert("load_ms".into(), format!("{:.3}", report.load_ms));
            }
            d.insert(
                "pre_instantiate_ms".into(),
                format!("{:.3}", report.pre_instantiate_ms),
            );
        }
        Ok(server)
    }
}

/// The `wasmbench` executable that runs the embedded `host` host: `spec.host_exe`, else this
/// process when it is `wasmbench`.
fn host_exe(spec: &LaunchSpec, host: &str) -> Result<PathBuf, RuntimeError> {
    if let Some(p) = &spec.host_exe {
        return Ok(p.clone());
    }
    std::env::current_exe()
        .ok()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wasmbench"))
        })
        .ok_or_else(|| {
            RuntimeError::Config(format!(
                "the embedded {host} host runs as `wasmbench serve`: set LaunchSpec.host_exe to \
                 the wasmbench executable"
            ))
        })
}

/// Starts `exe serve` with `cfg` and waits until the server is ready.
fn spawn_host(
    exe: &Path,
    cfg: &HostConfig,
    runtime: &str,
    info: RuntimeInfo,
    spec: &LaunchSpec,
) -> Result<RunningServer, RuntimeError> {
    let mut cmd = Command::new(exe);
    cmd.args(cfg.serve_args()?);
    spawn_server(cmd, runtime, info, spec)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::build::Artifact;

    fn spec(target: Target, file: &str) -> LaunchSpec {
        LaunchSpec::new(Artifact {
            target,
            path: file.into(),
            size_bytes: 0,
            sha256: String::new(),
            build_time: Duration::ZERO,
        })
    }

    /// What the `wasmbench serve` child reads from the arguments `launch` gives it.
    fn child_reads(cfg: HostConfig) -> HostConfig {
        let args = cfg.serve_args().unwrap();
        assert_eq!(args[..2], ["serve", "--host-config"]);
        HostConfig::from_json(&args[2]).unwrap()
    }

    #[test]
    fn the_socket_launcher_hands_its_settings_and_the_spec_to_the_child() {
        let rt = EmbeddedWasmtime {
            pooling: false,
            precompiled: false,
            cache_dir: Some("/tmp/cwasm".into()),
            max_memory_bytes: 1 << 20,
            ..EmbeddedWasmtime::new(Target::Wasip1)
        };
        let mut spec = spec(Target::Wasip1, "/x/echo.wasm");
        spec.port = 8080;
        spec.host = "::1".parse().unwrap();
        spec.env = vec![("ECHO_MODE".into(), "seed".into())];
        let HostConfig::Socket(cfg) = child_reads(HostConfig::Socket(rt.config(&spec))) else {
            panic!("the socket launcher handed over another host");
        };
        assert_eq!(
            (cfg.target, cfg.wasm.to_str(), cfg.host, cfg.port),
            (Target::Wasip1, Some("/x/echo.wasm"), spec.host, 8080)
        );
        assert_eq!(cfg.env, spec.env);
        assert!(!cfg.pooling && !cfg.precompiled);
        assert_eq!(cfg.cache_dir, rt.cache_dir);
        assert_eq!(cfg.max_memory_bytes, 1 << 20);
    }

    #[test]
    fn the_launcher_hands_the_allow_list_to_the_child() {
        let mut spec = spec(Target::Wasip2, "/x/h.wasm");
        let rt = EmbeddedWasiHttp {
            mode: ExecMode::Pulley,
            instance_reuse: 7,
            ..EmbeddedWasiHttp::default()
        };
        let HostConfig::WasiHttp(cfg) = child_reads(HostConfig::WasiHttp(rt.config(&spec))) else {
            panic!("the wasi:http launcher handed over another host");
        };
        assert!(cfg.allow_outbound.is_empty());
        assert_eq!((cfg.mode, cfg.instance_reuse), (ExecMode::Pulley, 7));
        spec.allow_outbound = vec!["127.0.0.1:9000".parse::<SocketAddr>().unwrap()];
        let HostConfig::WasiHttp(cfg) = child_reads(HostConfig::WasiHttp(rt.config(&spec))) else {
            panic!("the wasi:http launcher handed over another host");
        };
        assert_eq!(cfg.allow_outbound, spec.allow_outbound);
    }

    #[test]
    fn an_explicit_host_executable_is_used_as_given() {
        let mut spec = spec(Target::Wasip2, "/x/echo.wasm");
        spec.host_exe = Some("/opt/wasmbench/bin/wb".into());
        assert_eq!(
            host_exe(&spec, "Wasmtime").unwrap(),
            PathBuf::from("/opt/wasmbench/bin/wb")
        );
    }

    #[test]
    fn a_caller_that_knows_its_in_flight_limit_gets_a_pool_of_that_size() {
        let rt = EmbeddedWasiHttp::default();
        let mut spec = spec(Target::Wasip2, "/x/echo-http.wasm");
        assert_eq!(
            rt.config(&spec).max_concurrent_requests,
            DEFAULT_MAX_CONCURRENT_REQUESTS
        );
        spec.max_in_flight = Some(8);
        let HostConfig::WasiHttp(cfg) = child_reads(HostConfig::WasiHttp(rt.config(&spec))) else {
            panic!("the wasi:http launcher handed over another host");
        };
        assert_eq!(cfg.max_concurrent_requests, 8);
        spec.max_in_flight = Some(0);
        assert_eq!(rt.config(&spec).max_concurrent_requests, 1);
    }
}
