//! Runs an embedded Wasmtime host from the command line the way `wasmbench serve` runs it for
//! the runtimes' launchers (see `wasmbench_runtime::HostConfig::serve_args`):
//!
//! ```text
//! serve serve --host-config '{"kind":"socket","target":"wasip2","wasm":"echo.wasm",…}'
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use wasmbench_runtime::host::HOST_CONFIG_OPTION;
use wasmbench_runtime::host::http::WasiHttpHost;
use wasmbench_runtime::{HostConfig, RuntimeError, serve_forever};

fn parse(args: &[String]) -> Result<HostConfig, String> {
    match args {
        [serve, option, json]
            if serve == "serve" && *option == format!("--{HOST_CONFIG_OPTION}") =>
        {
            HostConfig::from_json(json).map_err(|e| e.to_string())
        }
        _ => Err(format!("usage: serve serve --{HOST_CONFIG_OPTION} <JSON>")),
    }
}

fn serve(cfg: HostConfig) -> Result<(), RuntimeError> {
    match cfg {
        HostConfig::Socket(cfg) => serve_forever(cfg),
        HostConfig::WasiHttp(cfg) => {
            WasiHttpHost::new(cfg)?.serve(&Arc::new(AtomicBool::new(false)))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve: {e}");
            ExitCode::from(1)
        }
    }
}
