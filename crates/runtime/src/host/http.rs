//! The embedded `wasi:http` host: serves a `wasi:http/proxy` component (see
//! `crates/echo-http`) the way `wasmtime serve` does.
//!
//! One [`Engine`] (pooling allocator by default), the component compiled and pre-instantiated
//! once, hyper serving HTTP/1.1 keep-alive on a multi-threaded tokio runtime with `TCP_NODELAY`,
//! and a fresh [`Store`](::wasmtime::Store) + instance for every request. Requests are
//! dispatched through `wasmtime_wasi_http::handler::ProxyHandler`, the same dispatcher
//! `wasmtime serve` uses, so [`WasiHttpConfig::instance_reuse`] can let one instance answer
//! several requests in turn (the equivalent of `wasmtime serve --max-instance-reuse-count`);
//! the default of 1 is an instance per request, as `wasmtime serve` does for WASI 0.2
//! components.
//!
//! Sandbox: the guest gets no arguments or sockets, only the environment and directories it is
//! given ([`WasiHttpConfig::env`], [`WasiHttpConfig::dirs`]; none by default), and
//! its outgoing HTTP requests (`wasi:http/outgoing-handler`) are refused with
//! `HTTP-request-denied` unless their authority is an `IP:port` in
//! [`WasiHttpConfig::allow_outbound`] (`--allow-outbound`), the same deny-by-default rule the
//! socket hosts apply to `connect`.

mod config;
mod instance;
mod outbound;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::wasmtime::component::{Component, Linker};
use ::wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use tokio::sync::Semaphore;
use wasmbench_vocab::{ExecMode, HOST_REPORT_PREFIX, Target};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};
use wasmtime_wasi_http::io::TokioIo;

use crate::build::Artifact;
use crate::error::RuntimeError;
use crate::host::engine::{WASMTIME_VERSION, apply_exec_mode, ms};
use crate::host::socket::code::{Code, CodeLoad, CodeSource};
use crate::inspect::{
    HANDLER_P3, INCOMING_HANDLER, WasiService, component_exports, list_or_none,
    loaded_component_exports,
};
use instance::{Handler, HostData};

pub use config::{
    DEFAULT_MAX_CONCURRENT_REQUESTS, PoolTuning, WasiHttpConfig, WasiHttpReport, WasiHttpVersion,
};
pub use outbound::{outbound_allowed, outbound_target, parse_outbound_authority};

/// How often the accept loop checks the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// The embedded `wasi:http` host: engine, pre-instantiated component and bound listener.
pub struct WasiHttpHost {
    cfg: WasiHttpConfig,
    engine: Engine,
    pre: ProxyPre<HostData>,
    listener: TcpListener,
    report: WasiHttpReport,
}

impl std::fmt::Debug for WasiHttpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiHttpHost")
            .field("cfg", &self.cfg)
            .field("listener", &self.listener)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl WasiHttpHost {
    /// Builds the engine, compiles and pre-instantiates the component, and binds the listener
    /// (so [`WasiHttpHost::local_addr`] is known before [`WasiHttpHost::serve`]).
    pub fn new(cfg: WasiHttpConfig) -> Result<WasiHttpHost, RuntimeError> {
        cfg.validate()?;
        let artifact = Artifact::from_path(Target::Wasip2, &cfg.wasm)?;
        // Refused before compiling, which takes seconds for a large component.
        let exports = component_exports(&artifact.path)?;
        if !WasiService::of_component(&exports).is_some_and(WasiService::is_wasi_http) {
            return Err(RuntimeError::InvalidArtifact {
                path: artifact.path,
                problem: format!(
                    "exports neither {INCOMING_HANDLER} (WASI 0.2) nor {HANDLER_P3} (WASI 0.3) \
                     (exports: {}); build the wasi:http workload with `cargo build -p \
                     wasmbench-echo-http --profile artifact --target wasm32-wasip2`",
                    list_or_none(&exports)
                ),
            });
        }
        let engine = build_engine(&cfg)?;
        let (code, load) = crate::host::socket::code::load(
            &engine,
            &CodeSource {
                wasm: &artifact.path,
                component: true,
                precompiled: cfg.precompiled,
                cache_dir: cfg
                    .cache_dir
                    .clone()
                    .unwrap_or_else(crate::host::socket::default_cache_dir),
                rebuild_hint: "rebuild it as a wasi:http/proxy component for wasm32-wasip2".into(),
            },
        )?;
        let Code::Component(component) = code else {
            unreachable!("a component source loads as a component")
        };
        WasiHttpHost::from_component(cfg, engine, component, load)
    }

    /// Serves `component`, compiled (or loaded) by the caller with `engine`, which must come
    /// from [`build_engine`] for the same `cfg`; `load` says how the code was obtained, for
    /// the report. Links WASI, pre-instantiates and binds the listener as [`WasiHttpHost::new`]
    /// does; `cfg.wasm` only names the component in messages.
    pub fn from_component(
        cfg: WasiHttpConfig,
        engine: Engine,
        component: Component,
        load: CodeLoad,
    ) -> Result<WasiHttpHost, RuntimeError> {
        cfg.validate()?;
        let exports = loaded_component_exports(&engine, &component);
        let wasi_http = match WasiService::of_component(&exports) {
            Some(WasiService::HttpService) => WasiHttpVersion::P3,
            Some(WasiService::HttpProxy) => WasiHttpVersion::P2,
            _ => {
                return Err(RuntimeError::InvalidArtifact {
                    path: cfg.wasm.clone(),
                    problem: format!(
                        "exports neither {INCOMING_HANDLER} (WASI 0.2) nor {HANDLER_P3} (WASI \
                         0.3) (exports: {}): it is not a wasi:http component",
                        list_or_none(&exports)
                    ),
                });
            }
        };
        let started = Instant::now();
        let mut linker = Linker::<HostData>::new(&engine);
        // All of WASI 0.2 (as `wasmtime serve -S cli=y`), so components built with toolchains
        // that import e.g. `wasi:cli/environment` run too; unused imports cost nothing per request.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::wasmtime("linking WASI", e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::wasmtime("linking wasi:http", e))?;
        if wasi_http == WasiHttpVersion::P3 {
            // All of WASI 0.3 beside 0.2: a 0.3 component may import either.
            wasmtime_wasi::p3::add_to_linker(&mut linker)
                .map_err(|e| RuntimeError::wasmtime("linking WASI 0.3", e))?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker)
                .map_err(|e| RuntimeError::wasmtime("linking wasi:http 0.3", e))?;
        }
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::wasmtime("pre-instantiating the component", e))?;
        let pre = match wasi_http {
            WasiHttpVersion::P3 => ProxyPre::P3(
                wasmtime_wasi_http::p3::bindings::ServicePre::new(pre).map_err(|e| {
                    RuntimeError::wasmtime("the component is not a wasi:http 0.3 service", e)
                })?,
            ),
            WasiHttpVersion::P2 => ProxyPre::P2(
                wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre).map_err(|e| {
                    RuntimeError::wasmtime("the component is not a wasi:http proxy", e)
                })?,
            ),
        };
        let pre_instantiate = started.elapsed();
        let listener = TcpListener::bind((cfg.host, cfg.port)).map_err(|e| {
            RuntimeError::io(
                format!(
                    "binding {}:{} (pick another --port, or 0 for any free port)",
                    cfg.host, cfg.port
                ),
                e,
            )
        })?;
        let report = WasiHttpReport {
            wasmtime_version: WASMTIME_VERSION.into(),
            mode: if load.cache_hit {
                ExecMode::Precompiled
            } else {
                cfg.mode
            },
            pooling: cfg.pooling,
            instance_reuse: cfg.instance_reuse,
            compile_ms: load.compile_ms,
            load_ms: load.load_ms,
            cache_hit: load.cache_hit,
            cwasm_size_bytes: load.cwasm_size_bytes,
            pre_instantiate_ms: ms(pre_instantiate),
            wasi_http,
            max_memory_bytes: cfg.max_memory_bytes,
            pool: cfg.pool.clone(),
            allow_outbound: cfg.allow_outbound.clone(),
        };
        Ok(WasiHttpHost {
            cfg,
            engine,
            pre,
            listener,
            report,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, RuntimeError> {
        self.listener
            .local_addr()
            .map_err(|e| RuntimeError::io("reading the listen address", e))
    }

    /// The configuration.
    pub fn config(&self) -> &WasiHttpConfig {
        &self.cfg
    }

    /// Compile and pre-instantiation figures.
    pub fn report(&self) -> &WasiHttpReport {
        &self.report
    }

    /// Prints the host report (stderr) and `listening on <addr>` (stdout), then serves until
    /// `shutdown` is set. Connections still open then are dropped. Blocks the calling thread.
    pub fn serve(self, shutdown: &Arc<AtomicBool>) -> Result<(), RuntimeError> {
        let addr = self.local_addr()?;
        let mut rt = tokio::runtime::Builder::new_multi_thread();
        if self.cfg.worker_threads > 0 {
            rt.worker_threads(self.cfg.worker_threads);
        }
        let rt = rt
            .enable_all()
            .thread_name("wasmbench-wasi-http")
            .build()
            .map_err(|e| RuntimeError::io("starting the tokio runtime", e))?;
        if let Ok(json) = serde_json::to_string(&self.report) {
            eprintln!("{HOST_REPORT_PREFIX}{json}");
        }
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {addr}");
            let _ = out.flush();
        }
        let WasiHttpHost {
            cfg,
            engine,
            pre,
            listener,
            ..
        } = self;
        listener
            .set_nonblocking(true)
            .map_err(|e| RuntimeError::io("configuring the listener", e))?;
        let shutdown = Arc::clone(shutdown);
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| RuntimeError::io("registering the listener", e))?;
            let handler = ProxyHandler::new(Handler {
                engine,
                pre,
                max_memory_bytes: cfg.max_memory_bytes,
                instance_reuse: cfg.instance_reuse,
                allow_outbound: cfg.allow_outbound.into(),
                env: cfg.env,
                dirs: cfg.dirs,
                requests: Semaphore::new(cfg.max_concurrent_requests),
                next_instance: AtomicU64::new(0),
            });
            let mut tick = tokio::time::interval(SHUTDOWN_POLL);
            loop {
                let stream = tokio::select! {
                    _ = tick.tick() => {
                        if shutdown.load(Ordering::Relaxed) {
                            break;
                        }
                        continue;
                    }
                    r = listener.accept() => match r {
                        Ok((stream, _)) => stream,
                        // Aborted handshakes and descriptor exhaustion must not stop the server.
                        Err(e) => {
                            eprintln!("wasi-http host: accept failed: {e}");
                            continue;
                        }
                    },
                };
                // Responses are written whole by hyper; Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handle_request(&handler, req).await) }
                    });
                    // A client that disconnects mid-request is not a server error.
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Ok(())
        })
    }
}

async fn handle_request(
    handler: &ProxyHandler<Handler>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<WasiBody> {
    let Ok(_permit) = handler.state().requests.acquire().await else {
        return error_response("the server is shutting down");
    };
    let req = req.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
    match handler.handle((), req).await {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!("wasi-http host: request failed: {e:#}");
            error_response("the component failed to handle the request")
        }
    }
}

fn error_response(msg: &'static str) -> hyper::Response<WasiBody> {
    let mut resp = hyper::Response::new(
        Full::new(Bytes::from_static(msg.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

/// The engine a `wasi:http` host with `cfg` serves from: the execution mode, and with pooling
/// a pool sized for `cfg.max_concurrent_requests` instances reset as `cfg.pool` says. Code
/// compiled for it loads only into an engine built from the same settings.
pub fn build_engine(cfg: &WasiHttpConfig) -> Result<Engine, RuntimeError> {
    let mut c = Config::new();
    apply_exec_mode(&mut c, cfg.mode)?;
    if cfg.pooling {
        let n = u32::try_from(cfg.max_concurrent_requests).unwrap_or(u32::MAX);
        let mut p = PoolingAllocationConfig::default();
        // One slot per request in flight (plus the instances kept for reuse, which only exist
        // while they answer requests or idle briefly between them).
        p.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n)
            .total_tables(n.saturating_mul(2))
            .total_stacks(n)
            .max_memory_size(cfg.max_memory_bytes)
            .linear_memory_keep_resident(cfg.pool.keep_resident_bytes)
            .table_keep_resident(cfg.pool.keep_resident_bytes)
            .pagemap_scan(if cfg.pool.pagemap_scan {
                Enabled::Auto
            } else {
                Enabled::No
            })
            .decommit_batch_size(cfg.pool.decommit_batch_size)
            .max_unused_warm_slots(cfg.pool.max_unused_warm_slots);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c).map_err(|e| RuntimeError::wasmtime("creating the engine", e))
}
