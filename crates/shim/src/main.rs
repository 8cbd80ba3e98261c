//! `containerd-shim-wasmbench-v1`: containerd starts it (`-namespace … -address … start`,
//! `delete`, …, handled by containerd-shim-wasm). Two flags of its own come first:
//! `--version` prints one JSON line (wasmbench's `RuntimeInfo`), `--run FILE [ARG…]` runs the
//! sandbox on FILE outside containerd, with this process's environment, until the guest exits
//! or SIGTERM/SIGINT.

use std::process::ExitCode;

use anyhow::Context;
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::shim::Cli;
use wasmbench_shim::{DirectContext, WasmbenchSandbox, WasmbenchShim};

const USAGE: &str = "\
containerd-shim-wasmbench-v1: containerd shim running wasip2 components with wasmbench's Wasmtime
  (started by containerd for runtime_type io.containerd.wasmbench.v1)
usage:
  containerd-shim-wasmbench-v1 --version          one JSON line: name, version, mode, details
  containerd-shim-wasmbench-v1 --run FILE [ARG…]  run FILE as a container would, without containerd
  containerd-shim-wasmbench-v1 -v | -info         containerd's version/info flags";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.get(1).map(String::as_str) {
        Some("--version") => {
            println!("{}", wasmbench_shim::version_line());
            ExitCode::SUCCESS
        }
        Some("--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("--run") => match run_direct(&args[2..]) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX)),
            Err(e) => {
                eprintln!("containerd-shim-wasmbench-v1: {e:#}");
                ExitCode::from(2)
            }
        },
        _ => {
            WasmbenchShim::run(None);
            ExitCode::SUCCESS
        }
    }
}

/// `--run FILE [ARG…]`: the sandbox as containerd-shim-wasm calls it (a multi-thread runtime,
/// as its ambient one), with FILE as `argv[0]`.
fn run_direct(args: &[String]) -> anyhow::Result<i32> {
    anyhow::ensure!(!args.is_empty(), "--run needs a Wasm file\n{USAGE}");
    let envs = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let ctx = DirectContext::new(args.to_vec(), envs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(WasmbenchSandbox.run_wasi(&ctx))
}
