//! `echo-wasmedge`: the wasmbench workload over WasmEdge's socket ABI. Configured like `echo`
//! (`PORT`, `ECHO_HOST`, `ECHO_MODE`, `ECHO_MAX_BODY`, ...); prints `listening on <addr>`.

#[cfg(target_os = "wasi")]
mod event_loop;

#[cfg(target_os = "wasi")]
fn main() -> std::process::ExitCode {
    event_loop::main()
}

#[cfg(not(target_os = "wasi"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "echo-wasmedge: this build only runs under WasmEdge: build it with \
         `--target wasm32-wasip1` and run `wasmedge echo-wasmedge.wasm`"
    );
    std::process::ExitCode::from(2)
}
