//! The embedded `wasi:http` host: serves a `wasi:http/proxy` component (see
//! `crates/echo-http`) the way `wasmtime serve` does.
//!
//! One [`Engine`] (pooling allocator by default), the component compiled and pre-instantiated
//! once, hyper serving HTTP/1.1 keep-alive on a multi-threaded tokio runtime with `TCP_NODELAY`,
//! and a fresh [`Store`] + instance for every request. Requests are dispatched through
//! `wasmtime_wasi_http::handler::ProxyHandler`, the same dispatcher `wasmtime serve` uses, so
//! [`WasiHttpConfig::instance_reuse`] can let one instance answer several requests in turn (the
//! equivalent of `wasmtime serve --max-instance-reuse-count`); the default of 1 is an instance per
//! request, as `wasmtime serve` does for WASI 0.2 components.
//!
//! [`EmbeddedWasiHttp`] is the [`Runtime`]: it starts `wasmbench serve --target wasi-http`
//! (which calls [`WasiHttpHost::serve`]) as a process of its own.
//!
//! Sandbox: the guest gets no arguments, environment, files or sockets (WASI's defaults), and
//! its outgoing HTTP requests (`wasi:http/outgoing-handler`) are refused with
//! `HTTP-request-denied` unless their authority is an `IP:port` in
//! [`WasiHttpConfig::allow_outbound`] (`--allow-outbound`), the same deny-by-default rule the
//! socket hosts apply to `connect`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::wasmtime::component::{Component, GuestTaskId, Linker, ResourceTable};
use ::wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreContextMut,
    StoreLimits, StoreLimitsBuilder, Strategy,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::artifact::{Artifact, BuildOptions, Target};
use crate::error::RuntimeError;
use crate::process::{HOST_REPORT_PREFIX, RunningServer, spawn_server};
use crate::runtime::{ExecMode, LaunchSpec, Runtime, RuntimeInfo};
use crate::wasmtime::WASMTIME_VERSION;

/// Default guest memory limit per instance: the socket hosts' limit, so every endpoint's full
/// parameter range (`/alloc?kb=65536` needs 64 MiB plus the heap) fits on every host. Pool
/// slots reserve address space, not memory, so the limit costs nothing until a guest grows.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 256 << 20;

/// Default limit on requests handled at once (also the size of the instance pool), as in
/// `wasmtime serve`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1000;

/// The interface a component must export to be served.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// How long an instance kept for reuse may sit idle before it is dropped.
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the accept loop checks the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// How the embedded `wasi:http` host serves one component.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// refuses every outgoing request. See [`outbound_allowed`].
    pub allow_outbound: Vec<SocketAddr>,
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
        }
    }

    fn validate(&self) -> Result<(), RuntimeError> {
        if self.instance_reuse == 0 {
            return Err(RuntimeError::Config(
                "instance reuse must be at least 1 (1 = a new instance per request)".into(),
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
        engine_mode_check(self.mode)
    }
}

fn engine_mode_check(mode: ExecMode) -> Result<(), RuntimeError> {
    match mode {
        ExecMode::CraneliftJit | ExecMode::Winch | ExecMode::Pulley => Ok(()),
        other @ (ExecMode::Native
        | ExecMode::Precompiled
        | ExecMode::Interpreter
        | ExecMode::Aot) => Err(RuntimeError::Config(format!(
            "execution mode {other} is not one the embedded Wasmtime engine offers: use \
             cranelift-jit, winch or pulley"
        ))),
    }
}

/// Parses one `--allow-outbound` value: an IP address and port (`127.0.0.1:8080`,
/// `[::1]:8080`). Host names are refused rather than resolved, so the allow-list means exactly
/// the addresses it names and allowing a request never sends a DNS query.
pub fn parse_outbound_authority(s: &str) -> Result<SocketAddr, RuntimeError> {
    let s = s.trim();
    let bad = |why: &str| {
        RuntimeError::Config(format!(
            "--allow-outbound {s:?}: {why}; give IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
        ))
    };
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() == 0 => Err(bad("port 0 is not an address a request can reach")),
        Ok(a) => Ok(a),
        Err(_) if s.parse::<IpAddr>().is_ok() => Err(bad("the port is missing")),
        Err(_) => match s.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty()
                    && host.parse::<IpAddr>().is_err()
                    && port.parse::<u16>().is_ok() =>
            {
                Err(bad(
                    "host names are not allowed (the host does no DNS lookups for guests)",
                ))
            }
            _ => Err(bad("not an IP address and port")),
        },
    }
}

/// The address an outgoing request's URI names, when it names one literally: `IP` or
/// `IP:port` (the port defaulting to 80, or 443 for `https`, as the default sender does).
/// `None` for host names and for authorities with user information, which the default sender
/// would hand to the resolver.
pub fn outbound_target(uri: &http::Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = authority
        .port_u16()
        .unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        });
    Some(SocketAddr::new(ip, port))
}

/// Whether the host sends an outgoing request to `uri`: only when it names, literally, one of
/// the `allowed` addresses.
pub fn outbound_allowed(allowed: &[SocketAddr], uri: &http::Uri) -> bool {
    outbound_target(uri).is_some_and(|a| allowed.contains(&a))
}

/// Sets the code generator for `mode` on an engine configuration: Cranelift (default), Winch
/// (baseline compiler) or Pulley (Wasmtime's portable interpreter, `pulley64`).
///
/// Shared by every embedded host so their modes mean the same thing.
pub fn apply_exec_mode(config: &mut Config, mode: ExecMode) -> Result<(), RuntimeError> {
    engine_mode_check(mode)?;
    match mode {
        ExecMode::Winch => {
            config.strategy(Strategy::Winch);
        }
        ExecMode::Pulley => {
            config
                .target("pulley64")
                .map_err(|e| RuntimeError::wasmtime("selecting the pulley64 target", e))?;
        }
        ExecMode::CraneliftJit => {
            config.strategy(Strategy::Cranelift);
        }
        // Refused by engine_mode_check above.
        ExecMode::Native | ExecMode::Precompiled | ExecMode::Interpreter | ExecMode::Aot => {}
    }
    Ok(())
}

/// What the host did at start; printed by [`WasiHttpHost::serve`] as one JSON line on stderr
/// prefixed with [`HOST_REPORT_PREFIX`].
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
    /// Time to compile the component.
    pub compile_ms: f64,
    /// Time to link and pre-instantiate it.
    pub pre_instantiate_ms: f64,
    /// Guest memory limit per instance.
    pub max_memory_bytes: usize,
    /// Authorities outgoing requests may go to (empty: none).
    #[serde(default)]
    pub allow_outbound: Vec<SocketAddr>,
}

/// Per-store state: WASI, `wasi:http`, the outbound policy and the memory limit.
struct HostData {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundPolicy,
    limits: StoreLimits,
}

/// The `wasi:http` hooks of every instance: outgoing requests go through wasmtime-wasi-http's
/// default sender only when [`outbound_allowed`]; the others fail with `HTTP-request-denied`
/// before any connection or DNS lookup is attempted.
struct OutboundPolicy {
    allow: Arc<[SocketAddr]>,
}

/// The I/O half of a sent request, as `WasiHttpHooks::send_request` spells it.
type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

/// What `WasiHttpHooks::send_request` returns.
type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
        + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        if outbound_allowed(&self.allow, request.uri()) {
            return wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        }
        Box::new(std::future::ready(Err(
            wasmtime_wasi_http::Error::HttpRequestDenied,
        )))
    }
}

impl WasiView for HostData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

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
        let exports = component_exports(&artifact.path)?;
        if !exports.iter().any(|e| e.starts_with(INCOMING_HANDLER)) {
            return Err(RuntimeError::InvalidArtifact {
                path: artifact.path,
                problem: format!(
                    "does not export {INCOMING_HANDLER} (exports: {}); build the wasi:http \
                     workload with `cargo build -p wasmbench-echo-http --profile artifact \
                     --target wasm32-wasip2`",
                    if exports.is_empty() {
                        "none".to_string()
                    } else {
                        exports.join(", ")
                    }
                ),
            });
        }
        let engine = build_engine(&cfg)?;
        let started = Instant::now();
        let component = Component::from_file(&engine, &artifact.path)
            .map_err(|e| RuntimeError::wasmtime("compiling the component", e))?;
        let compile = started.elapsed();
        let started = Instant::now();
        let mut linker = Linker::<HostData>::new(&engine);
        // All of WASI 0.2 (as `wasmtime serve -S cli=y`), so components built with toolchains
        // that import e.g. `wasi:cli/environment` run too; unused imports cost nothing per request.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::wasmtime("linking WASI", e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::wasmtime("linking wasi:http", e))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::wasmtime("pre-instantiating the component", e))?;
        let pre = wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)
            .map_err(|e| RuntimeError::wasmtime("the component is not a wasi:http proxy", e))?;
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
            mode: cfg.mode,
            pooling: cfg.pooling,
            instance_reuse: cfg.instance_reuse,
            compile_ms: compile.as_secs_f64() * 1000.0,
            pre_instantiate_ms: pre_instantiate.as_secs_f64() * 1000.0,
            max_memory_bytes: cfg.max_memory_bytes,
            allow_outbound: cfg.allow_outbound.clone(),
        };
        Ok(WasiHttpHost {
            cfg,
            engine,
            pre: ProxyPre::P2(pre),
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

fn build_engine(cfg: &WasiHttpConfig) -> Result<Engine, RuntimeError> {
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
            .max_memory_size(cfg.max_memory_bytes);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c).map_err(|e| RuntimeError::wasmtime("creating the engine", e))
}

/// The dispatcher's application state: how to make a new store and instance.
struct Handler {
    engine: Engine,
    pre: ProxyPre<HostData>,
    max_memory_bytes: usize,
    instance_reuse: usize,
    allow_outbound: Arc<[SocketAddr]>,
    requests: Semaphore,
    next_instance: AtomicU64,
}

impl HandlerState for Handler {
    type StoreData = HostData;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = ReuseLimit;

    async fn instantiate(
        &self,
    ) -> ::wasmtime::Result<Instance<HostData, IdleExpiration, ReuseLimit>> {
        self.next_instance.fetch_add(1, Ordering::Relaxed);
        let data = HostData {
            table: ResourceTable::new(),
            // The workload needs no arguments, environment or files; stderr is kept so guest
            // panics are visible.
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundPolicy {
                allow: Arc::clone(&self.allow_outbound),
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(self.max_memory_bytes)
                .build(),
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limits);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: IdleExpiration {
                sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
            },
            state: ReuseLimit {
                max_total: self.instance_reuse,
            },
        })
    }
}

/// Drops an instance kept for reuse once it has been idle for [`IDLE_INSTANCE_TIMEOUT`].
struct IdleExpiration {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if status != WorkerStatus::Idle {
            // No request timeout: the workload answers immediately.
            return Poll::Pending;
        }
        let me = self.get_mut();
        let deadline = tokio::time::Instant::from_std(start + IDLE_INSTANCE_TIMEOUT);
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        me.sleep.as_mut().poll(cx)
    }
}

/// Lets an instance answer `max_total` requests, one at a time (WASI 0.2 handlers are not
/// reentrant).
struct ReuseLimit {
    max_total: usize,
}

impl WorkerState for ReuseLimit {
    type StoreData = HostData;
    type RequestData = ();

    fn should_accept_request(&self, concurrent_count: usize, total_count: usize) -> ShouldAccept {
        if total_count >= self.max_total {
            ShouldAccept::Never
        } else if concurrent_count >= 1 {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, HostData>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<HostData>, result: ::wasmtime::Result<()>) {
        if let Err(e) = result {
            eprintln!("wasi-http host: instance failed: {e:#}");
        }
        drop(store);
    }
}

/// The names a component exports at its top level (e.g.
/// `wasi:http/incoming-handler@0.2.4`).
pub fn component_exports(path: &Path) -> Result<Vec<String>, RuntimeError> {
    component_externs(path).map(|(_, exports)| exports)
}

/// The names a component imports at its top level (e.g. `wasi:io/streams@0.2.4`).
pub fn component_imports(path: &Path) -> Result<Vec<String>, RuntimeError> {
    component_externs(path).map(|(imports, _)| imports)
}

fn component_externs(path: &Path) -> Result<(Vec<String>, Vec<String>), RuntimeError> {
    crate::wasmtime::top_level_externs(path, crate::WasmKind::Component)
}

/// Builds `wasmbench-echo-http` for `wasm32-wasip2` and returns the component.
pub fn build_echo_http(opts: &BuildOptions) -> Result<Artifact, RuntimeError> {
    crate::cli::build_workload(
        "wasmbench-echo-http",
        None,
        "wasmbench_echo_http.wasm",
        Target::Wasip2,
        opts,
    )
}

/// The `wasmbench` arguments that make `serve` run `cfg`:
/// `serve --runtime wasmtime --target wasi-http --wasm <path> --host <ip> --port <p>
/// [--mode winch|pulley] [--no-pooling] [--max-memory-bytes <n>] [--instance-reuse <n>]
/// [--max-concurrent-requests <n>] [--threads <n>] [--allow-outbound <ip:port>]...`.
pub fn wasi_http_serve_args(cfg: &WasiHttpConfig) -> Vec<String> {
    let mut a: Vec<String> = [
        "serve",
        "--runtime",
        "wasmtime",
        "--target",
        "wasi-http",
        "--wasm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(cfg.wasm.display().to_string());
    a.extend(["--host".into(), cfg.host.to_string()]);
    a.extend(["--port".into(), cfg.port.to_string()]);
    if cfg.mode != ExecMode::CraneliftJit {
        a.extend(["--mode".into(), cfg.mode.to_string()]);
    }
    if !cfg.pooling {
        a.push("--no-pooling".into());
    }
    if cfg.max_memory_bytes != DEFAULT_MAX_MEMORY_BYTES {
        a.extend([
            "--max-memory-bytes".into(),
            cfg.max_memory_bytes.to_string(),
        ]);
    }
    if cfg.instance_reuse != 1 {
        a.extend(["--instance-reuse".into(), cfg.instance_reuse.to_string()]);
    }
    if cfg.max_concurrent_requests != DEFAULT_MAX_CONCURRENT_REQUESTS {
        a.extend([
            "--max-concurrent-requests".into(),
            cfg.max_concurrent_requests.to_string(),
        ]);
    }
    if cfg.worker_threads != 0 {
        a.extend(["--threads".into(), cfg.worker_threads.to_string()]);
    }
    for addr in &cfg.allow_outbound {
        a.extend(["--allow-outbound".into(), addr.to_string()]);
    }
    a
}

/// The embedded `wasi:http` host as a [`Runtime`], launched as `wasmbench serve --target
/// wasi-http` in a process of its own.
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
}

impl Default for EmbeddedWasiHttp {
    fn default() -> Self {
        EmbeddedWasiHttp {
            mode: ExecMode::CraneliftJit,
            pooling: true,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            instance_reuse: 1,
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
            allow_outbound: spec.allow_outbound.clone(),
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
        details.insert("workload".into(), "wasi:http/proxy component".into());
        details.insert("instance_reuse".into(), self.instance_reuse.to_string());
        details.insert("max_memory_bytes".into(), self.max_memory_bytes.to_string());
        RuntimeInfo {
            name: "wasmtime-wasi-http".into(),
            version: WASMTIME_VERSION.into(),
            mode: self.mode,
            target: Target::Wasip2,
            pooling: Some(self.pooling),
            details,
        }
    }

    fn available(&self) -> Result<(), String> {
        engine_mode_check(self.mode).map_err(|e| e.to_string())
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        check_http_component(&spec.artifact)?;
        let exe = host_exe(spec)?;
        let mut cmd = Command::new(&exe);
        cmd.args(wasi_http_serve_args(&self.config(spec)));
        let mut info = self.info();
        info.details
            .insert("artifact_sha256".into(), spec.artifact.sha256.clone());
        if !spec.allow_outbound.is_empty() {
            // A run whose guests could reach other servers is recorded as such.
            let list: Vec<String> = spec.allow_outbound.iter().map(|a| a.to_string()).collect();
            info.details.insert("allow_outbound".into(), list.join(","));
        }
        let mut server = spawn_server(
            cmd,
            "wasmtime-wasi-http",
            info,
            spec.cpu_set.as_deref(),
            &spec.ready_path,
            spec.startup_timeout,
        )?;
        if let Some(report) = server
            .host_report_json(Duration::from_secs(1))
            .and_then(|j| serde_json::from_str::<WasiHttpReport>(&j).ok())
        {
            let d = &mut server.info.details;
            d.insert("compile_ms".into(), format!("{:.3}", report.compile_ms));
            d.insert(
                "pre_instantiate_ms".into(),
                format!("{:.3}", report.pre_instantiate_ms),
            );
        }
        Ok(server)
    }
}

/// Checks that an artifact is a component exporting `wasi:http/incoming-handler`, with a
/// message that says which file to use instead.
pub fn check_http_component(artifact: &Artifact) -> Result<(), RuntimeError> {
    if artifact.target != Target::Wasip2 {
        return Err(RuntimeError::Config(format!(
            "wasi:http runtimes serve a wasm32-wasip2 component, not a {} artifact; build \
             wasmbench-echo-http for wasm32-wasip2",
            artifact.target
        )));
    }
    let exports = component_exports(&artifact.path)?;
    if exports.iter().any(|e| e.starts_with(INCOMING_HANDLER)) {
        Ok(())
    } else {
        Err(RuntimeError::InvalidArtifact {
            path: artifact.path.clone(),
            problem: format!(
                "does not export {INCOMING_HANDLER}: it is not a wasi:http component (the socket \
                 build `echo.wasm` runs under `wasmtime run`); use wasmbench_echo_http.wasm"
            ),
        })
    }
}

/// The `wasmbench` executable that hosts embedded runtimes: `spec.host_exe`, else this process
/// when it is `wasmbench`.
pub(crate) fn host_exe(spec: &LaunchSpec) -> Result<PathBuf, RuntimeError> {
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
            RuntimeError::Config(
                "the embedded wasi:http host runs as `wasmbench serve`: set LaunchSpec.host_exe \
                 to the wasmbench executable"
                    .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_args_name_every_setting() {
        let mut cfg = WasiHttpConfig::new("/x/h.wasm");
        assert_eq!(
            wasi_http_serve_args(&cfg).join(" "),
            "serve --runtime wasmtime --target wasi-http --wasm /x/h.wasm --host 127.0.0.1 \
             --port 0"
        );
        cfg.port = 8080;
        cfg.mode = ExecMode::Winch;
        cfg.pooling = false;
        cfg.max_memory_bytes = 1 << 20;
        cfg.instance_reuse = 100;
        cfg.max_concurrent_requests = 10;
        cfg.worker_threads = 2;
        cfg.allow_outbound = vec![
            "127.0.0.1:9000".parse().unwrap(),
            "[::1]:9001".parse().unwrap(),
        ];
        assert_eq!(
            wasi_http_serve_args(&cfg).join(" "),
            "serve --runtime wasmtime --target wasi-http --wasm /x/h.wasm --host 127.0.0.1 \
             --port 8080 --mode winch --no-pooling --max-memory-bytes 1048576 \
             --instance-reuse 100 --max-concurrent-requests 10 --threads 2 \
             --allow-outbound 127.0.0.1:9000 --allow-outbound [::1]:9001"
        );
        // Every value written parses back to the same address.
        for addr in &cfg.allow_outbound {
            assert_eq!(parse_outbound_authority(&addr.to_string()).unwrap(), *addr);
        }
    }

    #[test]
    fn the_launcher_hands_the_allow_list_to_the_child() {
        let artifact = Artifact {
            target: Target::Wasip2,
            path: "/x/h.wasm".into(),
            size_bytes: 0,
            sha256: String::new(),
            build_time: Duration::ZERO,
        };
        let mut spec = LaunchSpec::new(artifact);
        let cfg = EmbeddedWasiHttp::default().config(&spec);
        assert!(cfg.allow_outbound.is_empty());
        assert!(!wasi_http_serve_args(&cfg).contains(&"--allow-outbound".to_string()));
        spec.allow_outbound = vec!["127.0.0.1:9000".parse().unwrap()];
        let args = wasi_http_serve_args(&EmbeddedWasiHttp::default().config(&spec));
        assert!(
            args.join(" ").ends_with("--allow-outbound 127.0.0.1:9000"),
            "{args:?}"
        );
    }

    #[test]
    fn allow_list_values_are_ip_and_port_only() {
        assert_eq!(
            parse_outbound_authority(" 10.0.0.1:80 ").unwrap(),
            "10.0.0.1:80".parse().unwrap()
        );
        for (bad, why) in [
            ("localhost:8080", "host names are not allowed"),
            ("example.com:80", "host names are not allowed"),
            ("127.0.0.1", "port is missing"),
            ("::1", "port is missing"),
            ("127.0.0.1:0", "port 0"),
            // An IPv6 address without brackets reads as an address without a port.
            ("::1:8080", "port is missing"),
            ("127.0.0.1:http", "not an IP address and port"),
            ("", "not an IP address and port"),
        ] {
            let e = parse_outbound_authority(bad).unwrap_err();
            assert!(matches!(e, RuntimeError::Config(_)), "{bad}: {e:?}");
            let e = e.to_string();
            assert!(e.contains(why) && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn only_literal_allowed_authorities_pass() {
        let allowed: Vec<SocketAddr> = vec![
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
            "[::1]:443".parse().unwrap(),
        ];
        let ok = |u: &str| outbound_allowed(&allowed, &u.parse().unwrap());
        assert!(ok("http://127.0.0.1:8080/x?y=1"));
        assert!(ok("http://127.0.0.1/"));
        assert!(ok("https://[::1]/"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("https://127.0.0.1/"));
        assert!(!ok("http://localhost:8080/"));
        assert!(!ok("http://user@127.0.0.1:8080/"));
        assert!(!ok("http://127.1:8080/"));
        assert!(!ok("/relative"));
        assert!(!outbound_allowed(
            &[],
            &"http://127.0.0.1:8080/".parse().unwrap()
        ));
    }

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
        let mut c = Config::new();
        assert!(apply_exec_mode(&mut c, ExecMode::Pulley).is_ok());
        assert!(apply_exec_mode(&mut c, ExecMode::Interpreter).is_err());
    }
}
