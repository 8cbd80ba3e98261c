//! The embedded Wasmtime host.
//!
//! [`EmbeddedHost`] runs the workload in this process: one `Engine` (pooling allocator, epoch
//! interruption), the module or component compiled once and cached on disk as `.cwasm`, one
//! store with a memory limit. `wasm32-wasip2` components open their own listener through
//! `wasi:sockets`, restricted to the configured address; `wasm32-wasip1` modules get a
//! listener preopened at descriptor 3 (see [`p1net`]).
//!
//! [`EmbeddedWasmtime`] is the [`Runtime`]: it starts the `wasmbench serve` subcommand (which
//! calls [`serve_forever`]) as a separate process, so the server's CPU and memory are measured
//! apart from the load generator's.

pub mod p1net;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::wasmtime::component::{Component, ResourceTable};
use ::wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};
use serde::{Deserialize, Serialize};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::artifact::{Target, sha256_file};
use crate::error::RuntimeError;
use crate::process::{HOST_REPORT_PREFIX, RunningServer, spawn_server};
use crate::runtime::{ExecMode, LaunchSpec, Runtime, RuntimeInfo};
use crate::wasi_http::INCOMING_HANDLER;

/// Version of the embedded `wasmtime` crate (pinned in the workspace manifest).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Default guest memory limit.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 256 << 20;

/// How the embedded host runs one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }

    /// The effective `.cwasm` cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(d) = &self.cache_dir {
            return d.clone();
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("wasmbench").join("cwasm")
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

/// What the embedded host did; printed by [`serve_forever`] as one JSON line on stderr
/// prefixed with [`HOST_REPORT_PREFIX`].
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

enum Code {
    Module(Module),
    Component(Component),
}

/// The embedded Wasmtime host for one workload: engine and compiled code, ready to serve.
pub struct EmbeddedHost {
    cfg: EmbeddedConfig,
    engine: Engine,
    code: Code,
    report: Mutex<HostReport>,
    listening: Arc<(Mutex<Option<SocketAddr>>, Condvar)>,
    announce: bool,
    _ticker: EpochTicker,
}

impl EmbeddedHost {
    /// Builds the engine and compiles (or loads from the cache) the workload.
    pub fn new(cfg: EmbeddedConfig) -> Result<EmbeddedHost, RuntimeError> {
        if !cfg.target.is_wasm() {
            return Err(RuntimeError::Config(
                "the embedded Wasmtime host runs wasip1 or wasip2 artifacts; use the native \
                 runtime for native executables"
                    .into(),
            ));
        }
        // Validates existence and module/component kind with a clear message.
        let artifact = crate::artifact::Artifact::from_path(cfg.target, &cfg.wasm)?;
        let engine = build_engine(&cfg)?;
        let (code, mut report) = load_code(&engine, &cfg, &artifact.path)?;
        report.wasm_sha256 = artifact.sha256;
        match check_wasi_service(&artifact.path)? {
            WasiService::Command(t) if t == cfg.target => {}
            WasiService::HttpProxy => {
                return Err(RuntimeError::InvalidArtifact {
                    path: artifact.path,
                    problem: format!(
                        "is a wasi:http component (it exports {INCOMING_HANDLER}, not \
                         wasi:cli/run); serve it with --target wasi-http"
                    ),
                });
            }
            // `Artifact::from_path` already matched the binary kind to the target.
            WasiService::Command(_) => {}
        }

        let ticker = EpochTicker::start(&engine, cfg.epoch_deadline)?;
        Ok(EmbeddedHost {
            cfg,
            engine,
            code,
            report: Mutex::new(report),
            listening: Arc::new((Mutex::new(None), Condvar::new())),
            announce: false,
            _ticker: ticker,
        })
    }

    /// When on, `serve` prints the host report on stderr (prefixed with
    /// [`HOST_REPORT_PREFIX`]) and, for wasip1, `listening on <addr>` on stdout.
    pub fn announce(mut self, on: bool) -> Self {
        self.announce = on;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &EmbeddedConfig {
        &self.cfg
    }

    /// What the host did so far (instantiation time appears once `serve` instantiated).
    pub fn report(&self) -> HostReport {
        lock(&self.report).clone()
    }

    /// The listening address once known (wasip1: bound by the host; wasip2: reported by the
    /// socket check when the guest listens).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        *lock(&self.listening.0)
    }

    /// Waits up to `timeout` for [`EmbeddedHost::listen_addr`].
    pub fn wait_listening(&self, timeout: Duration) -> Option<SocketAddr> {
        let (m, cv) = &*self.listening;
        let g = lock(m);
        let (g, _) = cv
            .wait_timeout_while(g, timeout, |a| a.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *g
    }

    /// Instantiates the workload and runs it until it exits or `shutdown` is set (then returns
    /// `Ok`). Blocks the calling thread.
    pub fn serve(&self, shutdown: &Arc<AtomicBool>) -> Result<(), RuntimeError> {
        match &self.code {
            Code::Component(c) => self.serve_p2(c, shutdown),
            Code::Module(m) => self.serve_p1(m, shutdown),
        }
    }

    fn set_listening(&self, addr: SocketAddr) {
        set_listening(&self.listening, addr);
    }

    fn instantiated(&self, took: Duration) {
        let report = {
            let mut r = lock(&self.report);
            r.instantiate_ms = Some(ms(took));
            r.clone()
        };
        if self.announce
            && let Ok(json) = serde_json::to_string(&report)
        {
            eprintln!("{HOST_REPORT_PREFIX}{json}");
        }
    }

    fn limits(&self) -> StoreLimits {
        store_limits(self.cfg.max_memory_bytes)
    }

    fn serve_p2(
        &self,
        component: &Component,
        shutdown: &Arc<AtomicBool>,
    ) -> Result<(), RuntimeError> {
        let (host, port) = (self.cfg.host, self.cfg.port);
        let listening = Arc::clone(&self.listening);
        let mut b = WasiCtx::builder();
        b.arg("echo.wasm")
            .envs(&self.cfg.guest_env()[..])
            .inherit_stdout()
            .inherit_stderr()
            .allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, use_| {
                let ok = socket_allowed(host, port, addr, use_);
                if ok && matches!(use_, SocketAddrUse::TcpListen) && addr.port() != 0 {
                    set_listening(&listening, addr);
                }
                Box::pin(async move { ok })
            });
        let exit = run_command(
            &self.engine,
            component,
            b.build(),
            self.cfg.max_memory_bytes,
            shutdown,
            |took| self.instantiated(took),
        )?;
        exit_result(exit)
    }

    fn serve_p1(&self, module: &Module, shutdown: &Arc<AtomicBool>) -> Result<(), RuntimeError> {
        let listener = TcpListener::bind((self.cfg.host, self.cfg.port)).map_err(|e| {
            RuntimeError::io(
                format!(
                    "binding {}:{} (pick another --port or free it)",
                    self.cfg.host, self.cfg.port
                ),
                e,
            )
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| RuntimeError::io("reading the listener address", e))?;

        let mut linker = ::wasmtime::Linker::<p1net::P1State>::new(&self.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi)
            .map_err(|e| RuntimeError::wasmtime("linking WASI preview 1", e))?;
        p1net::add_to_linker(&mut linker)
            .map_err(|e| RuntimeError::wasmtime("linking WASI preview 1 sockets", e))?;
        let pre = linker.instantiate_pre(module).map_err(|e| {
            RuntimeError::wasmtime("the module needs imports this host does not provide", e)
        })?;

        let base = Instant::now();
        let wasi = WasiCtx::builder()
            .arg("echo.wasm")
            .envs(&self.cfg.guest_env()[..])
            .inherit_stdout()
            .inherit_stderr()
            .monotonic_clock(p1net::SharedMonotonic(base))
            .build_p1();
        let state = p1net::P1State {
            wasi,
            net: p1net::SocketTable::new(listener, base, Arc::clone(shutdown)),
            limits: self.limits(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        arm_epoch(&mut store, shutdown);
        let t = Instant::now();
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| RuntimeError::wasmtime("instantiating the module", e))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| {
                RuntimeError::wasmtime("the module has no `_start` (build it as a binary)", e)
            })?;
        self.instantiated(t.elapsed());
        self.set_listening(addr);
        if self.announce {
            // The guest cannot learn its address on wasip1; the host announces it.
            println!("listening on {addr}");
        }
        match start.call(&mut store, ()) {
            Ok(()) => Ok(()),
            Err(e) => guest_error(e, shutdown),
        }
    }
}

impl std::fmt::Debug for EmbeddedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedHost")
            .field("cfg", &self.cfg)
            .field("report", &self.report())
            .field("listen_addr", &self.listen_addr())
            .finish_non_exhaustive()
    }
}

/// The thread that advances an engine's epoch at a steady pace, so the epoch deadline set by
/// [`run_command`] (and the wasip1 host) interrupts running guest code regularly; an engine
/// from [`build_engine`] has epoch interruption on and needs one. Stops when dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts incrementing `engine`'s epoch every `tick` (at least 1 ms).
    pub fn start(engine: &Engine, tick: Duration) -> Result<EpochTicker, RuntimeError> {
        let engine = engine.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let tick = tick.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name("wasmbench-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::io("starting the epoch thread", e))?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The store limits of every embedded guest: linear memory capped at `max_memory_bytes`.
pub fn store_limits(max_memory_bytes: usize) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(max_memory_bytes)
        // A clear trap names the limit; a failed grow would surface as an opaque abort.
        .trap_on_grow_failure(true)
        .build()
}

/// How a `wasi:cli/run` guest run by [`run_command`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestExit {
    /// `run` returned `ok` (status 0), or the guest called `exit` with this status.
    Status(i32),
    /// `run` returned `err` (what `wasmtime run` reports as status 1).
    ErrorResult,
    /// The host set the shutdown flag and the guest was dropped.
    Stopped,
}

/// Instantiates a `wasi:cli/run` component with `wasi` and runs it on the calling thread until
/// it returns or `shutdown` is set: the one way wasmbench runs a wasip2 command, used by
/// [`EmbeddedHost`] and by the containerd shim (`crates/shim`), so both run guests alike (a
/// current-thread async runtime, store limits from [`store_limits`], epoch checks every tick of
/// an [`EpochTicker`], no cooperative budget). `engine` must come from [`build_engine`] and have
/// a running [`EpochTicker`]. `instantiated` is called with the instantiation time. Must not be
/// called from inside an async runtime (it starts its own).
pub fn run_command(
    engine: &Engine,
    component: &Component,
    wasi: WasiCtx,
    max_memory_bytes: usize,
    shutdown: &Arc<AtomicBool>,
    instantiated: impl FnOnce(Duration),
) -> Result<GuestExit, RuntimeError> {
    let mut linker = ::wasmtime::component::Linker::<P2State>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| RuntimeError::wasmtime("linking WASI 0.2", e))?;
    let pre = linker
        .instantiate_pre(component)
        .and_then(wasmtime_wasi::p2::bindings::CommandPre::new)
        .map_err(|e| {
            RuntimeError::wasmtime(
                "the component is not a WASI command (build it for wasm32-wasip2 as a binary)",
                e,
            )
        })?;
    let state = P2State {
        ctx: wasi,
        table: ResourceTable::new(),
        limits: store_limits(max_memory_bytes),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RuntimeError::io("starting the async runtime", e))?;
    rt.block_on(async {
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        arm_epoch(&mut store, shutdown);
        let t = Instant::now();
        let cmd = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| RuntimeError::wasmtime("instantiating the component", e))?;
        instantiated(t.elapsed());
        let flag = Arc::clone(shutdown);
        let stopped = async move {
            // The guest may wait in `poll` indefinitely; check the flag at a steady pace
            // and drop the guest's future when it is set.
            while !flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        // Opt out of tokio's cooperative budget (128 resource polls per task tick): the
        // guest is one task that polls every connection in each `poll` call, so with the
        // budget, connections past the 128th would never be reported ready while earlier
        // ones keep the guest busy.
        let run = tokio::task::unconstrained(cmd.wasi_cli_run().call_run(&mut store));
        tokio::select! {
            r = run => match r {
                Ok(Ok(())) => Ok(GuestExit::Status(0)),
                Ok(Err(())) => Ok(GuestExit::ErrorResult),
                Err(e) => guest_exit(e, shutdown),
            },
            () = stopped => Ok(GuestExit::Stopped),
        }
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn set_listening(slot: &(Mutex<Option<SocketAddr>>, Condvar), addr: SocketAddr) {
    *lock(&slot.0) = Some(addr);
    slot.1.notify_all();
}

/// What a Wasm binary offers a host to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiService {
    /// A WASI command: a wasip1 module exporting `_start`, or a wasip2 component exporting
    /// `wasi:cli/run`; it opens its own listener.
    Command(Target),
    /// A `wasi:http/proxy` component (exports `wasi:http/incoming-handler`).
    HttpProxy,
}

/// Checks that `path` is a complete Wasm binary a host can run as a service and says which
/// kind it is. Binaries without the expected exports (a library or `cdylib` build, an empty
/// module) get one line naming what is missing and how to build it instead.
pub fn check_wasi_service(path: &Path) -> Result<WasiService, RuntimeError> {
    let invalid = |problem: String| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem,
    };
    let kind = crate::artifact::wasm_kind(path)?;
    let (_, exports) = top_level_externs(path, kind)?;
    match kind {
        crate::WasmKind::Module => {
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
        crate::WasmKind::Component => {
            if exports.iter().any(|e| e.starts_with(INCOMING_HANDLER)) {
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

/// The interface a wasip2 command exports.
const CLI_RUN: &str = "wasi:cli/run";

/// The outermost (imports, exports) of a module (exported functions only; no imports) or of a
/// component; reading the whole binary also catches truncated and corrupt files.
pub(crate) fn top_level_externs(
    path: &Path,
    kind: crate::WasmKind,
) -> Result<(Vec<String>, Vec<String>), RuntimeError> {
    let bytes = std::fs::read(path).map_err(|e| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem: format!("cannot read it: {e}"),
    })?;
    let what = match kind {
        crate::WasmKind::Module => "module",
        crate::WasmKind::Component => "component",
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

/// The wasip2 guest's network policy: it may bind and listen on the configured address only
/// (any port when the configured port is 0) and accept clients; it may not connect anywhere
/// nor use UDP.
pub fn socket_allowed(host: IpAddr, port: u16, addr: SocketAddr, use_: SocketAddrUse) -> bool {
    match use_ {
        SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => {
            addr.ip() == host && (port == 0 || addr.port() == port)
        }
        SocketAddrUse::TcpAccept => true,
        _ => false,
    }
}

/// Interrupts guest code every epoch to check the stop flag.
fn arm_epoch<T: 'static>(store: &mut Store<T>, shutdown: &Arc<AtomicBool>) {
    let flag = Arc::clone(shutdown);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if flag.load(Ordering::Relaxed) {
            Err(::wasmtime::Error::msg("the host is shutting down"))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
}

/// A guest's trap or `exit` call as a [`GuestExit`].
fn guest_exit(e: ::wasmtime::Error, shutdown: &AtomicBool) -> Result<GuestExit, RuntimeError> {
    if shutdown.load(Ordering::Relaxed) {
        return Ok(GuestExit::Stopped);
    }
    match e.downcast_ref::<I32Exit>() {
        Some(exit) => Ok(GuestExit::Status(exit.0)),
        None => Err(RuntimeError::wasmtime("the guest trapped", e)),
    }
}

/// A guest's trap or `exit` call as the embedded host's result: stopping and `exit(0)` are
/// success, any other status an error.
fn guest_error(e: ::wasmtime::Error, shutdown: &AtomicBool) -> Result<(), RuntimeError> {
    exit_result(guest_exit(e, shutdown)?)
}

fn exit_result(exit: GuestExit) -> Result<(), RuntimeError> {
    match exit {
        GuestExit::Status(0) | GuestExit::Stopped => Ok(()),
        GuestExit::Status(n) => Err(RuntimeError::Wasmtime(format!(
            "the guest exited with status {n}; its stderr says why"
        ))),
        GuestExit::ErrorResult => Err(RuntimeError::Wasmtime(
            "the guest exited with an error status; its stderr says why".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_bind_only_the_listen_address() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(socket_allowed(
            lo,
            8080,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpBind
        ));
        assert!(socket_allowed(
            lo,
            8080,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpListen
        ));
        assert!(!socket_allowed(
            lo,
            8080,
            at("127.0.0.1:8081"),
            SocketAddrUse::TcpBind
        ));
        assert!(!socket_allowed(
            lo,
            8080,
            at("0.0.0.0:8080"),
            SocketAddrUse::TcpBind
        ));
        assert!(socket_allowed(
            lo,
            0,
            at("127.0.0.1:40000"),
            SocketAddrUse::TcpListen
        ));
        assert!(socket_allowed(
            lo,
            0,
            at("127.0.0.1:5"),
            SocketAddrUse::TcpAccept
        ));
        for use_ in [
            SocketAddrUse::TcpConnect,
            SocketAddrUse::UdpBind,
            SocketAddrUse::UdpSend,
            SocketAddrUse::UdpReceive,
        ] {
            assert!(!socket_allowed(lo, 0, at("127.0.0.1:8080"), use_));
        }
    }

    #[test]
    fn serve_args_name_every_setting() {
        let mut cfg = EmbeddedConfig::new(Target::Wasip1, "/x/echo.wasm");
        cfg.port = 8080;
        cfg.pooling = false;
        cfg.precompiled = false;
        cfg.env = vec![("ECHO_MODE".into(), "seed".into())];
        let a = serve_args(&cfg).join(" ");
        assert_eq!(
            a,
            "serve --runtime wasmtime --target wasip1 --wasm /x/echo.wasm --host 127.0.0.1 \
             --port 8080 --no-pooling --no-cache --env ECHO_MODE=seed"
        );
    }
}

struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
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
        p.total_component_instances(8)
            .total_core_instances(64)
            .total_memories(32)
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

fn load_code(
    engine: &Engine,
    cfg: &EmbeddedConfig,
    wasm: &Path,
) -> Result<(Code, HostReport), RuntimeError> {
    let is_component = cfg.target == Target::Wasip2;
    let mut report = HostReport::jit(cfg.target, cfg.pooling, cfg.max_memory_bytes);
    let bytes = std::fs::read(wasm)
        .map_err(|e| RuntimeError::io(format!("reading {}", wasm.display()), e))?;
    let compile_err = |e: ::wasmtime::Error| RuntimeError::InvalidArtifact {
        path: wasm.to_path_buf(),
        problem: format!(
            "Wasmtime cannot compile it ({e:#}); the file is truncated or corrupt: rebuild it \
             (the echo workload: `cargo build -p wasmbench-echo --profile artifact --target \
             wasm32-{}`)",
            cfg.target
        ),
    };
    if !cfg.precompiled {
        let t = Instant::now();
        let code = if is_component {
            Code::Component(Component::new(engine, &bytes).map_err(compile_err)?)
        } else {
            Code::Module(Module::new(engine, &bytes).map_err(compile_err)?)
        };
        report.compile_ms = Some(ms(t.elapsed()));
        return Ok((code, report));
    }

    let dir = cfg.cache_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| RuntimeError::io(format!("creating cache directory {}", dir.display()), e))?;
    let sha = sha256_file(wasm)?;
    let path = dir.join(format!("{}.cwasm", cache_key(engine, &sha)));
    report.cwasm_path = Some(path.clone());

    if path.is_file() {
        let t = Instant::now();
        if let Ok(code) = deserialize(engine, &path, is_component) {
            report.load_ms = ms(t.elapsed());
            report.cache_hit = true;
            report.mode = ExecMode::Precompiled;
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
    // Write to a unique temporary name and rename, so concurrent hosts never read a partial file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cwasm"),
        std::process::id()
    ));
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

/// Runs the workload until the process is killed or the guest exits. This is what
/// `wasmbench serve --runtime wasmtime` calls; it prints the host report on stderr and, for
/// wasip1, `listening on <addr>` on stdout.
pub fn serve_forever(cfg: EmbeddedConfig) -> Result<(), RuntimeError> {
    let host = EmbeddedHost::new(cfg)?.announce(true);
    host.serve(&Arc::new(AtomicBool::new(false)))
}

/// The `wasmbench` arguments that make `serve` run `cfg` (so the CLI and the launcher agree):
/// `serve --runtime wasmtime --target <t> --wasm <path> --host <ip> --port <p>
/// [--no-pooling] [--no-cache] [--cache-dir <dir>] [--max-memory-bytes <n>] [--env K=V]...`.
pub fn serve_args(cfg: &EmbeddedConfig) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "serve".into(),
        "--runtime".into(),
        "wasmtime".into(),
        "--target".into(),
        cfg.target.to_string(),
        "--wasm".into(),
        cfg.wasm.display().to_string(),
        "--host".into(),
        cfg.host.to_string(),
        "--port".into(),
        cfg.port.to_string(),
    ];
    if !cfg.pooling {
        a.push("--no-pooling".into());
    }
    if !cfg.precompiled {
        a.push("--no-cache".into());
    }
    if let Some(d) = &cfg.cache_dir {
        a.push("--cache-dir".into());
        a.push(d.display().to_string());
    }
    if cfg.max_memory_bytes != DEFAULT_MAX_MEMORY_BYTES {
        a.push("--max-memory-bytes".into());
        a.push(cfg.max_memory_bytes.to_string());
    }
    for (k, v) in &cfg.env {
        a.push("--env".into());
        a.push(format!("{k}={v}"));
    }
    a
}

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
                "this runtime is set up for {}, but the artifact is {}; pass a matching --target",
                self.target, spec.artifact.target
            )));
        }
        let exe = match &spec.host_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .ok()
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("wasmbench"))
                })
                .ok_or_else(|| {
                    RuntimeError::Config(
                        "the embedded Wasmtime host runs as `wasmbench serve`: set \
                         LaunchSpec.host_exe to the wasmbench executable"
                            .into(),
                    )
                })?,
        };
        let cfg = self.config(spec);
        let mut cmd = Command::new(&exe);
        cmd.args(serve_args(&cfg));
        let mut server = spawn_server(
            cmd,
            "wasmtime",
            self.info(),
            spec.cpu_set.as_deref(),
            &spec.ready_path,
            spec.startup_timeout,
        )?;
        if let Some(report) = server
            .host_report_json(Duration::from_secs(1))
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
