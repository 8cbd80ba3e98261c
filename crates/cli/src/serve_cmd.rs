//! `wasmbench serve`: the workload under one runtime, until interrupted. The comparison also
//! uses it to run the embedded Wasm hosts in a process of their own, handing it the whole
//! [`HostConfig`] as one `--host-config` value.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use wasmbench_runtime::host::HOST_CONFIG_OPTION;
use wasmbench_runtime::host::http::{WasiHttpConfig, WasiHttpHost};
use wasmbench_runtime::{
    Artifact, BuildOptions, EmbeddedConfig, EmbeddedHost, ExecMode, HostConfig, LaunchSpec, Native,
    Runtime, Target,
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
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = crate::service_flags::parse_env)]
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
    /// wasi-http: bytes of each instance's memory and tables reset with memset and kept
    /// resident when it ends (0 = give them back with madvise, Wasmtime's default)
    /// [default: 4194304]
    #[arg(long)]
    pub keep_resident_bytes: Option<usize>,
    /// wasi-http: find the pages an instance wrote with PAGEMAP_SCAN (Linux 6.7+) and reset
    /// only those [default: true]
    #[arg(long)]
    pub pagemap_scan: Option<bool>,
    /// wasi-http: slots given back to the kernel in one batch [default: 1]
    #[arg(long)]
    pub decommit_batch_size: Option<usize>,
    /// wasi-http: slots still holding an earlier instance's pages that a new one may take
    /// [default: 100]
    #[arg(long)]
    pub max_unused_warm_slots: Option<u32>,
    /// What the guest may reach beyond its own listener.
    #[command(flatten)]
    pub sandbox: SandboxFlags,
    /// The embedded host's whole configuration as JSON, written by the comparison's launcher
    /// (`HostConfig::serve_args`); the other flags describe the same settings for people.
    #[arg(
        long = HOST_CONFIG_OPTION,
        value_name = "JSON",
        hide = true,
        conflicts_with_all = [
            "runtime", "target", "host", "port", "wasm", "binary", "env", "no_pooling",
            "no_cache", "cache_dir", "max_memory_bytes", "mode", "instance_reuse",
            "max_concurrent_requests", "threads", "allow_outbound", "keep_resident_bytes",
            "pagemap_scan", "decommit_batch_size", "max_unused_warm_slots",
        ],
    )]
    pub host_config: Option<String>,
}

/// `wasmbench serve`.
pub fn run(a: ServeArgs) -> anyhow::Result<i32> {
    if let Some(json) = &a.host_config {
        return serve_host(HostConfig::from_json(json)?);
    }
    match a.runtime.as_str() {
        "native" => serve_native(a),
        "wasmtime" => serve_host(host_config(a)?),
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

/// The embedded host configuration the flags of `--runtime wasmtime` describe; builds the echo
/// workload when no `--wasm` is given.
fn host_config(a: ServeArgs) -> anyhow::Result<HostConfig> {
    if a.target == "wasi-http" {
        return wasi_http_config(a).map(HostConfig::WasiHttp);
    }
    a.sandbox.only_for_wasi_http(
        "socket guests (wasip1, wasip2) may listen on their own address but never connect",
    )?;
    let target: Target = a.target.parse().map_err(|e: String| fail(Exit::Usage, e))?;
    if target.triple().is_none() {
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
    Ok(HostConfig::Socket(cfg))
}

fn wasi_http_config(a: ServeArgs) -> anyhow::Result<WasiHttpConfig> {
    // Before any build, so a bad value is reported at once.
    let allow_outbound = a.sandbox.allow_list()?;
    let wasm = match &a.wasm {
        Some(p) => p.clone(),
        None => wasmbench_runtime::build::build_echo_http(&BuildOptions::default())?.path,
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
    let pool = &mut cfg.pool;
    pool.keep_resident_bytes = a.keep_resident_bytes.unwrap_or(pool.keep_resident_bytes);
    pool.pagemap_scan = a.pagemap_scan.unwrap_or(pool.pagemap_scan);
    pool.decommit_batch_size = a.decommit_batch_size.unwrap_or(pool.decommit_batch_size);
    pool.max_unused_warm_slots = a
        .max_unused_warm_slots
        .unwrap_or(pool.max_unused_warm_slots);
    Ok(cfg)
}

/// Runs one embedded host until interrupted (or until its guest exits).
fn serve_host(cfg: HostConfig) -> anyhow::Result<i32> {
    match cfg {
        HostConfig::Socket(cfg) => serve_socket(cfg),
        HostConfig::WasiHttp(cfg) => serve_wasi_http(cfg),
    }
}

fn serve_wasi_http(cfg: WasiHttpConfig) -> anyhow::Result<i32> {
    let host = WasiHttpHost::new(cfg)?;
    let addr = host.local_addr()?;
    let stop = stop_flag()?;
    eprintln!("wasmbench: serving http://{addr} (wasmtime wasi:http host); interrupt to stop");
    host.serve(&stop)?;
    Ok(i32::from(Exit::Ok.code()))
}

fn serve_socket(cfg: EmbeddedConfig) -> anyhow::Result<i32> {
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

#[cfg(test)]
mod tests {
    use clap::Parser;
    use wasmbench_runtime::RuntimeError;

    use super::*;

    /// `wasmbench` with only its `serve` subcommand.
    #[derive(Debug, Parser)]
    #[command(name = "wasmbench")]
    enum Cli {
        Serve(ServeArgs),
    }

    fn parse(args: &[String]) -> Result<ServeArgs, clap::Error> {
        let argv = std::iter::once("wasmbench".to_string()).chain(args.iter().cloned());
        Cli::try_parse_from(argv).map(|Cli::Serve(a)| a)
    }

    #[test]
    fn the_launchers_arguments_give_the_child_the_launchers_configuration() {
        let mut socket = EmbeddedConfig::new(Target::Wasip1, "/x/echo.wasm");
        socket.port = 8080;
        socket.env = vec![("ECHO_MODE".into(), "seed".into())];
        socket.pooling = false;
        let mut http = WasiHttpConfig::new("/x/h.wasm");
        http.mode = ExecMode::Pulley;
        http.allow_outbound = vec!["127.0.0.1:9000".parse().unwrap()];
        for sent in [HostConfig::Socket(socket), HostConfig::WasiHttp(http)] {
            let args = parse(&sent.serve_args().unwrap()).unwrap();
            let json = args.host_config.as_deref().expect("--host-config parsed");
            assert_eq!(HostConfig::from_json(json).unwrap(), sent);
        }
    }

    #[test]
    fn host_config_stands_alone_and_people_keep_their_flags() {
        let json = HostConfig::Socket(EmbeddedConfig::new(Target::Wasip2, "/x/echo.wasm"))
            .to_json()
            .unwrap();
        for extra in [
            &["--port", "9"][..],
            &["--runtime", "wasmtime"],
            &["--no-cache"],
        ] {
            let mut args = vec!["serve".to_string(), "--host-config".into(), json.clone()];
            args.extend(extra.iter().map(|s| s.to_string()));
            let e = parse(&args).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{extra:?}: {e}"
            );
        }
        let human: Vec<String> = ["serve", "--runtime", "wasmtime", "--target", "wasip1"]
            .iter()
            .chain(&["--port", "0", "--no-pooling", "--env", "A=b=c"])
            .map(|s| s.to_string())
            .collect();
        let a = parse(&human).unwrap();
        assert!(a.host_config.is_none());
        assert_eq!(
            (a.runtime.as_str(), a.port, a.no_pooling),
            ("wasmtime", 0, true)
        );
        assert_eq!(a.env, vec![("A".to_string(), "b=c".to_string())]);
    }

    #[test]
    fn a_malformed_host_config_is_one_invalid_configuration_line() {
        let args = ["serve", "--host-config", "{\"kind\":\"socket\",\"port\":"];
        let a = parse(&args.map(String::from)).unwrap();
        let e = run(a).unwrap_err();
        let r = e
            .downcast_ref::<RuntimeError>()
            .expect("a runtime configuration error (exit 104)");
        assert!(matches!(r, RuntimeError::Config(_)), "{r:?}");
        let line = e.to_string();
        assert!(
            line.contains("--host-config") && !line.contains('\n'),
            "{line}"
        );
    }
}
