//! The embedded Wasmtime socket host.
//!
//! [`EmbeddedHost`] runs the workload in this process: one `Engine` (pooling allocator, epoch
//! interruption), the module or component compiled once and cached on disk as `.cwasm`, one
//! store with a memory limit. `wasm32-wasip2` components open their own listener through
//! `wasi:sockets`, restricted to the configured address ([`socket_allowed`]); `wasm32-wasip1`
//! modules get a listener preopened at descriptor 3 (see [`p1net`]).

pub(crate) mod code;
pub use code::CodeLoad;
mod command;
mod config;
pub mod p1net;
mod policy;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ::wasmtime::component::Component;
use ::wasmtime::{Engine, Module, Store, StoreLimits};
use wasmbench_vocab::HOST_REPORT_PREFIX;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::build::Artifact;
use crate::error::RuntimeError;
use crate::host::engine::{EpochTicker, ms, preopen, store_limits};
use crate::inspect::{WasiService, check_wasi_service};
use crate::sync::lock;
use code::{Code, load_code};
use command::{arm_epoch, exit_result, guest_error};

pub use code::build_engine;
pub use command::{GuestExit, run_command};
pub use config::{EmbeddedConfig, HostReport, default_cache_dir};
pub use policy::socket_allowed;

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
        let artifact = Artifact::from_path(cfg.target, &cfg.wasm)?;
        let engine = build_engine(&cfg)?;
        let (code, mut report) = load_code(&engine, &cfg, &artifact.path)?;
        report.wasm_sha256 = artifact.sha256;
        match check_wasi_service(&artifact.path)? {
            WasiService::Command(t) if t == cfg.target => {}
            WasiService::HttpProxy | WasiService::HttpService => {
                return Err(RuntimeError::InvalidArtifact {
                    path: artifact.path,
                    problem: "is a wasi:http component (it exports a wasi:http handler, not \
                              wasi:cli/run); serve it with --target wasi-http"
                        .into(),
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
        preopen(&mut b, &self.cfg.dirs)
            .map_err(|e| RuntimeError::wasmtime("giving the guest its --dir directories", e))?;
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
        let mut b = WasiCtx::builder();
        b.arg("echo.wasm")
            .envs(&self.cfg.guest_env()[..])
            .inherit_stdout()
            .inherit_stderr()
            .monotonic_clock(p1net::SharedMonotonic(base));
        preopen(&mut b, &self.cfg.dirs)
            .map_err(|e| RuntimeError::wasmtime("giving the guest its --dir directories", e))?;
        let wasi = b.build_p1();
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

fn set_listening(slot: &(Mutex<Option<SocketAddr>>, Condvar), addr: SocketAddr) {
    *lock(&slot.0) = Some(addr);
    slot.1.notify_all();
}

/// Runs the workload until the process is killed or the guest exits. This is what
/// `wasmbench serve --runtime wasmtime` calls; it prints the host report on stderr and, for
/// wasip1, `listening on <addr>` on stdout.
pub fn serve_forever(cfg: EmbeddedConfig) -> Result<(), RuntimeError> {
    let host = EmbeddedHost::new(cfg)?.announce(true);
    host.serve(&Arc::new(AtomicBool::new(false)))
}
