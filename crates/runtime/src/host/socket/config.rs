//! How the socket host runs one workload ([`EmbeddedConfig`]) and what it reports having done
//! ([`HostReport`]).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmbench_vocab::{ExecMode, Target};

use crate::host::engine::{DEFAULT_MAX_MEMORY_BYTES, WASMTIME_VERSION};

/// Where `.cwasm` files live unless a host is told otherwise: `$XDG_CACHE_HOME/wasmbench/cwasm`,
/// else `~/.cache/wasmbench/cwasm`, else the temp directory.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("wasmbench").join("cwasm")
}

/// How the embedded host runs one workload.
///
/// Serialised whole (unknown fields refused) when the launcher hands it to the `wasmbench
/// serve` child, inside a [`HostConfig`](crate::host::HostConfig).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// `Wasip1` (core module) or `Wasip2` (component).
    pub target: Target,
    /// The `.wasm` file.
    pub wasm: PathBuf,
    /// Address the workload listens on; the only address a wasip2 guest may bind.
    pub host: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Extra environment for the guest (e.g. `ECHO_MODE=seed`). `PORT` and `ECHO_HOST` are set
    /// from `host`/`port` unless given here.
    pub env: Vec<(String, String)>,
    /// Largest linear memory the guest may grow to; growing beyond it traps.
    pub max_memory_bytes: usize,
    /// How often running guest code is interrupted (epoch interruption) so the host can check
    /// whether it is stopping; bounds how long a guest that never calls the host can delay a
    /// shutdown.
    pub epoch_deadline: Duration,
    /// Use the pooling instance allocator.
    pub pooling: bool,
    /// Compile once and load the cached `.cwasm` afterwards; `false` compiles in memory on every
    /// start.
    pub precompiled: bool,
    /// Where `.cwasm` files live (default: `$XDG_CACHE_HOME/wasmbench/cwasm`, else
    /// `~/.cache/wasmbench/cwasm`, else the temp directory).
    pub cache_dir: Option<PathBuf>,
    /// Host directories the guest may open; none by default.
    #[serde(default)]
    pub dirs: Vec<crate::launch::Preopen>,
}

impl EmbeddedConfig {
    /// Defaults: `127.0.0.1`, port 0, 256 MiB, 10 ms epochs, pooling, cached `.cwasm`.
    pub fn new(target: Target, wasm: impl Into<PathBuf>) -> EmbeddedConfig {
        EmbeddedConfig {
            target,
            wasm: wasm.into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            env: Vec::new(),
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            epoch_deadline: Duration::from_millis(10),
            pooling: true,
            precompiled: true,
            cache_dir: None,
            dirs: Vec::new(),
        }
    }

    /// The effective `.cwasm` cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }

    /// The guest environment: `env`, plus `PORT`/`ECHO_HOST` when `env` does not set them.
    pub fn guest_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        if !env.iter().any(|(k, _)| k == "PORT") {
            env.push(("PORT".into(), self.port.to_string()));
        }
        // `HOST` is the bring-your-own-service contract, `ECHO_HOST` our workload's name.
        for key in ["ECHO_HOST", "HOST"] {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.into(), self.host.to_string()));
            }
        }
        env
    }
}

/// What the embedded host did; printed by [`serve_forever`](crate::host::socket::serve_forever)
/// as one JSON line on stderr prefixed with
/// [`HOST_REPORT_PREFIX`](wasmbench_vocab::HOST_REPORT_PREFIX).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// `wasmtime` crate version.
    pub wasmtime_version: String,
    /// Guest target.
    pub target: Target,
    /// `precompiled` when the code came from the `.cwasm` cache, `cranelift-jit` when it was
    /// compiled by this process.
    pub mode: ExecMode,
    /// Pooling allocator on/off.
    pub pooling: bool,
    /// Whether a cached `.cwasm` was used.
    pub cache_hit: bool,
    /// The `.cwasm` file (when caching is on).
    pub cwasm_path: Option<PathBuf>,
    /// Size of the `.cwasm` file.
    pub cwasm_size_bytes: Option<u64>,
    /// Cranelift compile time (`None` on a cache hit).
    pub compile_ms: Option<f64>,
    /// Time to load the compiled code (deserialize the `.cwasm`, or nothing extra when compiled
    /// in memory).
    pub load_ms: f64,
    /// Time to instantiate (set once the guest is instantiated).
    pub instantiate_ms: Option<f64>,
    /// Guest memory limit.
    pub max_memory_bytes: usize,
    /// Hex SHA-256 of the `.wasm`.
    pub wasm_sha256: String,
}

impl HostReport {
    /// The report of code this process compiles with Cranelift; the caller fills in the
    /// timings, the cache fields and the hash as it goes.
    pub fn jit(target: Target, pooling: bool, max_memory_bytes: usize) -> HostReport {
        HostReport {
            wasmtime_version: WASMTIME_VERSION.into(),
            target,
            mode: ExecMode::CraneliftJit,
            pooling,
            cache_hit: false,
            cwasm_path: None,
            cwasm_size_bytes: None,
            compile_ms: None,
            load_ms: 0.0,
            instantiate_ms: None,
            max_memory_bytes,
            wasm_sha256: String::new(),
        }
    }
}
