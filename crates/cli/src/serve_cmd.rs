//! `wasmbench serve`: the workload under one runtime, until interrupted. The comparison also
//! uses it to run the embedded Wasm hosts in a process of their own.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use wasmbench_runtime::wasi_http::{WasiHttpConfig, WasiHttpHost};
use wasmbench_runtime::{
    Artifact, BuildOptions, EmbeddedConfig, EmbeddedHost, ExecMode, LaunchSpec, Native, Runtime,
    Target,
};

use crate::exit::{Exit, fail};
use crate::sandbox_flags::SandboxFlags;

/// Arguments of `wasmbench serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// `native` or `wasmtime` (the embedded host).
    #[arg(long, default_value = "native")]
    pub runtime: String,
    /// Build target for `wasmtime`: `wasip1`, `wasip2` or `wasi-http` (a proxy component).
    #[arg(long, default_value = "wasip2")]
    pub target: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 1234)]
    pub port: u16,
    /// A `.wasm` to serve instead of building the echo workload.
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// A native executable to serve instead of building the echo workload.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Workload environment `KEY=VALUE` (repeatable), e.g. `ECHO_MODE=seed`.
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Turn the pooling instance allocator off.
    #[arg(long)]
    pub no_pooling: bool,
    /// Compile at start instead of loading a cached `.cwasm`.
    #[arg(long)]
    pub no_cache: bool,
    /// Directory of the `.cwasm` cache.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Guest memory limit in bytes.
    #[arg(long)]
    pub max_memory_bytes: Option<usize>,
    /// wasi-http: code generator, `cranelift-jit`, `winch` or `pulley`.
    #[arg(long, default_value = "cranelift-jit")]
    pub mode: String,
    /// wasi-http: requests one instance answers before it is dropped (1 = instance per request).
    #[arg(long, default_value_t = 1)]
    pub instance_reuse: usize,
    /// wasi-http: requests handled at once.
    #[arg(long)]
    pub max_concurrent_requests: Option<usize>,
    /// wasi-http: threads of the HTTP server (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// What the guest may reach beyond its own listener.
    #[command(flatten)]
    pub sandbox: SandboxFlags,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// `wasmbench serve`.
pub fn run(a: ServeArgs) -> anyhow::Result<i32> {
    match a.runtime.as_str() {
        "native" => serve_native(a),
        "wasmtime" => serve_wasmtime(a),
        other => Err(fail(
            Exit::Usage,
            format!("unknown runtime {other:?} for serve: use native or wasmtime"),
        )),
    }
}

fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

fn serve_native(a: ServeArgs) -> anyhow::Result<i32> {
    a.sandbox
        .only_for_wasi_http("a native process has no sandbox to widen")?;
    let artifact = match &a.binary {
        Some(p) => Artifact::from_path(Target::Native, p)?,
        None => wasmbench_runtime::build_echo(Target::Native, &BuildOptions::default())?,
    };
    let mut spec = LaunchSpec::new(artifact);
    spec.host = a.host;
    spec.port = a.port;
    spec.env = a.env;
    let stop = stop_flag()?;
    let mut server = Native.launch(&spec)?;
    eprintln!(
        "wasmbench: serving {} (native, pid {}, ready in {:.1} ms); interrupt to stop",
        server.url(),
        server.pid,
        server.spawn_to_ready.as_secs_f64() * 1e3
    );
    while !stop.load(Ordering::Relaxed) {
        if let Some(status) = server.try_exit_status() {
            return Err(fail(
                Exit::ServerStart,
                format!("the server exited ({status}): {}", server.stderr_tail()),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop()?;
    Ok(i32::from(Exit::Ok.code()))
}

fn serve_wasi_http(a: ServeArgs) -> anyhow::Result<i32> {
    // Before any build, so a bad value is reported at once.
    let allow_outbound = a.sandbox.allow_list()?;
    let wasm = match &a.wasm {
        Some(p) => p.clone(),
        None => wasmbench_runtime::wasi_http::build_echo_http(&BuildOptions::default())?.path,
    };
    let mut cfg = WasiHttpConfig::new(wasm);
    cfg.host = a.host;
    cfg.port = a.port;
    cfg.pooling = !a.no_pooling;
    cfg.mode = match a.mode.as_str() {
        "cranelift-jit" | "cranelift" => ExecMode::CraneliftJit,
        "winch" => ExecMode::Winch,
        "pulley" => ExecMode::Pulley,
        other => {
            return Err(fail(
                Exit::Usage,
                format!("unknown --mode {other:?}: use cranelift-jit, winch or pulley"),
            ));
        }
    };
    cfg.instance_reuse = a.instance_reuse;
    cfg.worker_threads = a.threads;
    cfg.allow_outbound = allow_outbound;
    if let Some(n) = a.max_concurrent_requests {
        cfg.max_concurrent_requests = n;
    }
    if let Some(m) = a.max_memory_bytes {
        cfg.max_memory_bytes = m;
    }
    let host = WasiHttpHost::new(cfg)?;
    let addr = host.local_addr()?;
    let stop = stop_flag()?;
    eprintln!("wasmbench: serving http://{addr} (wasmtime wasi:http host); interrupt to stop");
    host.serve(&stop)?;
    Ok(i32::from(Exit::Ok.code()))
}

fn serve_wasmtime(a: ServeArgs) -> anyhow::Result<i32> {
    if a.target == "wasi-http" {
        return serve_wasi_http(a);
    }
    a.sandbox.only_for_wasi_http(
        "socket guests (wasip1, wasip2) may listen on their own address but never connect",
    )?;
    let target: Target = a.target.parse().map_err(|e: String| fail(Exit::Usage, e))?;
    if !target.is_wasm() {
        return Err(fail(
            Exit::Usage,
            "--runtime wasmtime needs --target wasip1 or wasip2",
        ));
    }
    let wasm = match &a.wasm {
        Some(p) => Artifact::from_path(target, p)?.path,
        None => wasmbench_runtime::build_echo(target, &BuildOptions::default())?.path,
    };
    let mut cfg = EmbeddedConfig::new(target, wasm);
    cfg.host = a.host;
    cfg.port = a.port;
    cfg.env = a.env;
    cfg.pooling = !a.no_pooling;
    cfg.precompiled = !a.no_cache;
    cfg.cache_dir = a.cache_dir;
    if let Some(m) = a.max_memory_bytes {
        cfg.max_memory_bytes = m;
    }
    let host = Arc::new(EmbeddedHost::new(cfg)?.announce(true));
    let stop = stop_flag()?;
    let serving = {
        let host = Arc::clone(&host);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || host.serve(&stop))
    };
    // Waits in short slices so a guest that exits before listening (a denied bind, a crash)
    // is reported at once rather than after the whole wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut listening = None;
    while listening.is_none() && !serving.is_finished() && std::time::Instant::now() < deadline {
        listening = host.wait_listening(Duration::from_millis(50));
    }
    if let Some(addr) = listening {
        let r = host.report();
        eprintln!(
            "wasmbench: serving http://{addr} (wasmtime {}, {}, {}, pooling {}); interrupt to stop",
            r.wasmtime_version,
            r.target,
            r.mode,
            if r.pooling { "on" } else { "off" }
        );
    }
    match serving.join() {
        Ok(result) => result?,
        Err(_) => return Err(fail(Exit::Internal, "the Wasm host thread panicked")),
    }
    Ok(i32::from(Exit::Ok.code()))
}
