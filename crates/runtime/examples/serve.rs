//! Runs the embedded Wasmtime host from the command line, with the arguments of
//! `wasmbench serve` (see `wasmbench_runtime::wasmtime::serve_args`):
//!
//! ```text
//! serve serve --runtime wasmtime --target wasip2 --wasm echo.wasm --host 127.0.0.1 --port 8080 \
//!       [--no-pooling] [--no-cache] [--cache-dir DIR] [--max-memory-bytes N] [--env K=V]...
//! ```

use std::process::ExitCode;

use wasmbench_runtime::{EmbeddedConfig, Target, serve_forever};

fn parse(args: &[String]) -> Result<EmbeddedConfig, String> {
    let mut it = args.iter();
    if it.next().map(String::as_str) != Some("serve") {
        return Err("the first argument must be `serve`".into());
    }
    let mut target: Option<Target> = None;
    let mut wasm = None;
    let mut rest = Vec::new();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--runtime" => {
                let v = value()?;
                if v != "wasmtime" {
                    return Err(format!("--runtime {v}: this example runs only `wasmtime`"));
                }
            }
            "--target" => target = Some(value()?.parse()?),
            "--wasm" => wasm = Some(value()?),
            "--no-pooling" | "--no-cache" => rest.push((a.clone(), String::new())),
            "--host" | "--port" | "--cache-dir" | "--max-memory-bytes" | "--env" => {
                rest.push((a.clone(), value()?))
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let target = target.ok_or("--target is required (wasip1 or wasip2)")?;
    let wasm = wasm.ok_or("--wasm is required (path of the .wasm file)")?;
    let mut cfg = EmbeddedConfig::new(target, wasm);
    for (k, v) in rest {
        match k.as_str() {
            "--no-pooling" => cfg.pooling = false,
            "--no-cache" => cfg.precompiled = false,
            "--host" => {
                cfg.host = v
                    .parse()
                    .map_err(|_| format!("--host {v}: not an IP address"))?
            }
            "--port" => cfg.port = v.parse().map_err(|_| format!("--port {v}: not a port"))?,
            "--cache-dir" => cfg.cache_dir = Some(v.into()),
            "--max-memory-bytes" => {
                cfg.max_memory_bytes = v
                    .parse()
                    .map_err(|_| format!("--max-memory-bytes {v}: not a number"))?
            }
            _ => {
                let (key, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--env {v}: use KEY=VALUE"))?;
                cfg.env.push((key.into(), val.into()));
            }
        }
    }
    Ok(cfg)
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
    match serve_forever(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve: {e}");
            ExitCode::from(1)
        }
    }
}
