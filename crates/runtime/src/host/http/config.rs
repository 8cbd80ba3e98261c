//! How the `wasi:http` host serves one component ([`WasiHttpConfig`]) and what it reports at
//! start ([`WasiHttpReport`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wasmbench_vocab::ExecMode;

use crate::error::RuntimeError;
use crate::host::engine::{DEFAULT_MAX_MEMORY_BYTES, check_exec_mode};

/// Default limit on requests handled at once (also the size of the instance pool), as in
/// `wasmtime serve`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1000;

/// How the embedded `wasi:http` host serves one component.
///
/// Serialised whole (unknown fields refused) when the launcher hands it to the `wasmbench
/// serve` child, inside a [`HostConfig`](crate::host::HostConfig).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasiHttpConfig {
    /// The component (`wasm32-wasip2`, exporting `wasi:http/incoming-handler`).
    pub wasm: PathBuf,
    /// Address to listen on.
    pub host: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Use the pooling instance allocator (what makes an instance per request cheap).
    pub pooling: bool,
    /// Largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// How the code is executed: [`ExecMode::CraneliftJit`], [`ExecMode::Winch`] or
    /// [`ExecMode::Pulley`].
    pub mode: ExecMode,
    /// Requests one instance answers (one after the other) before it is dropped; 1 is an
    /// instance per request.
    pub instance_reuse: usize,
    /// Requests handled at once; further requests wait. Also sizes the instance pool.
    pub max_concurrent_requests: usize,
    /// Threads of the tokio runtime (0: one per CPU).
    pub worker_threads: usize,
    /// The only authorities the guest's outgoing HTTP requests may go to; empty (the default)
    /// refuses every outgoing request. See
    /// [`outbound_allowed`](crate::host::http::outbound_allowed).
    pub allow_outbound: Vec<SocketAddr>,
    /// Compile once into the `.cwasm` cache and load it at later starts (Cranelift only);
    /// `false` compiles at every start, as `wasmtime serve` does.
    #[serde(default)]
    pub precompiled: bool,
    /// Where `.cwasm` files live (default: [`default_cache_dir`](crate::host::socket::default_cache_dir)).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Environment of every instance; none by default.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Host directories every instance may open; none by default.
    #[serde(default)]
    pub dirs: Vec<crate::launch::Preopen>,
    /// How the pooling allocator resets an instance's slot for the next one.
    #[serde(default)]
    pub pool: PoolTuning,
}

/// How the pooling allocator gives a finished instance's memory back and readies its slot for
/// the next instance: Wasmtime's `PoolingAllocationConfig` levers, each measured alone in
/// docs/benchmarks.md ("wasi:http host levers"). With an instance per request this is work
/// done once per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTuning {
    /// Bytes at the start of each linear memory and table reset with `memset` and kept
    /// resident when an instance ends, instead of `madvise` (which the next instance pays
    /// for again in page faults). 0 is Wasmtime's default.
    pub keep_resident_bytes: usize,
    /// Reset only the pages an instance wrote, found with Linux's `PAGEMAP_SCAN` (6.7+), up
    /// to `keep_resident_bytes`; ignored where the kernel lacks it.
    pub pagemap_scan: bool,
    /// Slots given back to the kernel together in one batch (1: each at once, Wasmtime's
    /// default).
    pub decommit_batch_size: usize,
    /// Slots an instance may be placed in that still hold another's pages (Wasmtime's default
    /// is 100).
    pub max_unused_warm_slots: u32,
}

impl PoolTuning {
    /// Wasmtime 48's own defaults: what `wasmtime serve` does.
    pub const WASMTIME_DEFAULTS: PoolTuning = PoolTuning {
        keep_resident_bytes: 0,
        pagemap_scan: false,
        decommit_batch_size: 1,
        max_unused_warm_slots: 100,
    };
}

impl PoolTuning {
    /// The settings in words, for the report's runtime line: `keep resident 1 MiB, pagemap
    /// scan, decommit batch 1, 100 warm slots`.
    pub fn describe(&self) -> String {
        let kib = self.keep_resident_bytes / 1024;
        let resident = if kib == 0 {
            "reset by madvise".to_string()
        } else if kib.is_multiple_of(1024) {
            format!("keep resident {} MiB", kib / 1024)
        } else {
            format!("keep resident {kib} KiB")
        };
        format!(
            "{resident}{}, decommit batch {}, {} warm slots",
            if self.pagemap_scan {
                ", pagemap scan"
            } else {
                ""
            },
            self.decommit_batch_size,
            self.max_unused_warm_slots
        )
    }
}

/// Our default: each finished instance's written pages are found with `PAGEMAP_SCAN` and reset
/// with `memset`, up to 4 MiB (the echo touches about 1.1 MiB), and stay resident. Measured on
/// a 2-core VM against Wasmtime's defaults: 0 page faults per request instead of 5, about a
/// fifth less server CPU per request (docs/benchmarks.md "wasi:http host levers").
impl Default for PoolTuning {
    fn default() -> PoolTuning {
        PoolTuning {
            keep_resident_bytes: 4 << 20,
            pagemap_scan: true,
            ..PoolTuning::WASMTIME_DEFAULTS
        }
    }
}

impl WasiHttpConfig {
    /// Defaults: `127.0.0.1`, port 0, pooling, 256 MiB, Cranelift, an instance per request,
    /// 1000 concurrent requests, one thread per CPU, no outgoing requests.
    pub fn new(wasm: impl Into<PathBuf>) -> WasiHttpConfig {
        WasiHttpConfig {
            wasm: wasm.into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            pooling: true,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            mode: ExecMode::CraneliftJit,
            instance_reuse: 1,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            worker_threads: 0,
            allow_outbound: Vec::new(),
            precompiled: false,
            cache_dir: None,
            env: Vec::new(),
            dirs: Vec::new(),
            pool: PoolTuning::default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), RuntimeError> {
        if self.instance_reuse == 0 {
            return Err(RuntimeError::Config(
                "instance reuse must be at least 1 (1 = a new instance per request)".into(),
            ));
        }
        if self.pool.decommit_batch_size == 0 {
            return Err(RuntimeError::Config(
                "decommit batch size must be at least 1 (1 = no batching)".into(),
            ));
        }
        if self.max_concurrent_requests == 0 {
            return Err(RuntimeError::Config(
                "max concurrent requests must be at least 1".into(),
            ));
        }
        if let Some(a) = self.allow_outbound.iter().find(|a| a.port() == 0) {
            return Err(RuntimeError::Config(format!(
                "outbound authority {a} has port 0, which no request can reach"
            )));
        }
        if self.precompiled && self.mode != ExecMode::CraneliftJit {
            return Err(RuntimeError::Config(format!(
                "precompiled code is cached for Cranelift only, not for {}",
                self.mode
            )));
        }
        check_exec_mode(self.mode)
    }
}

/// The `wasi:http` a component's handler speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WasiHttpVersion {
    /// WASI 0.2: `wasi:http/incoming-handler`, a response out-parameter, one request per
    /// instance at a time.
    #[default]
    #[serde(rename = "0.2")]
    P2,
    /// WASI 0.3: `wasi:http/handler`, an `async` `handle` that returns the response.
    #[serde(rename = "0.3")]
    P3,
}

/// What the host did at start; printed by
/// [`WasiHttpHost::serve`](crate::host::http::WasiHttpHost::serve) as one JSON line on stderr
/// prefixed with [`HOST_REPORT_PREFIX`](wasmbench_vocab::HOST_REPORT_PREFIX).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WasiHttpReport {
    /// `wasmtime` crate version.
    pub wasmtime_version: String,
    /// Execution mode.
    pub mode: ExecMode,
    /// Pooling allocator on/off.
    pub pooling: bool,
    /// Requests per instance.
    pub instance_reuse: usize,
    /// Time to compile the component; `None` when it was loaded from the `.cwasm` cache.
    pub compile_ms: Option<f64>,
    /// Time to load the cached `.cwasm` (0 when compiled in memory).
    #[serde(default)]
    pub load_ms: f64,
    /// Whether a cached `.cwasm` was used.
    #[serde(default)]
    pub cache_hit: bool,
    /// Size of the `.cwasm`, when the code is cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwasm_size_bytes: Option<u64>,
    /// Time to link and pre-instantiate it.
    pub pre_instantiate_ms: f64,
    /// The `wasi:http` version the component's handler speaks, read from its exports.
    #[serde(default)]
    pub wasi_http: WasiHttpVersion,
    /// Guest memory limit per instance.
    pub max_memory_bytes: usize,
    /// How the pooling allocator resets a slot (when pooling is on).
    #[serde(default)]
    pub pool: PoolTuning,
    /// Authorities outgoing requests may go to (empty: none).
    #[serde(default)]
    pub allow_outbound: Vec<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let mut cfg = WasiHttpConfig::new("/x/h.wasm");
        cfg.instance_reuse = 0;
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
        cfg.instance_reuse = 1;
        cfg.mode = ExecMode::Aot;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("winch or pulley"), "{e}");
        cfg.mode = ExecMode::Winch;
        cfg.max_concurrent_requests = 0;
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
        cfg.max_concurrent_requests = 1;
        cfg.allow_outbound = vec!["127.0.0.1:0".parse().unwrap()];
        assert!(cfg.validate().unwrap_err().to_string().contains("port 0"));
        cfg.allow_outbound.clear();
        cfg.pool.decommit_batch_size = 0;
        assert!(cfg.validate().unwrap_err().to_string().contains("batch"));
        cfg.pool.decommit_batch_size = 1;
        assert!(cfg.validate().is_ok());
    }
}
