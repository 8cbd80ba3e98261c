//! External Wasm runtimes driven through their command-line tools: `wasmtime run` and
//! `wasmtime serve` (Cranelift, Winch, Pulley, precompiled `.cwasm`), `wasmedge` (interpreter and
//! AOT) and `wasmer`.
//!
//! Each runtime finds its program on `PATH` (or at a given path), reads its version, and says in
//! one line why it cannot run when it cannot; `compare` reports that line instead of a result.

mod detect;
mod wasmedge_cli;
mod wasmer_cli;
mod wasmtime_cli;

use crate::launch::{ExecMode, Runtime};

pub use detect::{
    Detected, Locator, detect, find_in_path, parse_wasmedge_version, parse_wasmer_version,
    parse_wasmtime_version,
};
pub use wasmedge_cli::{AotFile, WasmEdgeCli};
pub use wasmer_cli::{WASMER_NO_WASIX_BUILD, WasmerCli};
pub use wasmtime_cli::{WasmtimeCli, WasmtimeCommand};

/// Every external CLI variant, in report order: wasmtime run (Cranelift, Winch, Pulley,
/// precompiled), wasmtime run wasip1 (unavailable, with the reason), wasmtime serve, WasmEdge
/// interpreter and AOT, Wasmer.
pub fn all_cli_runtimes() -> Vec<Box<dyn Runtime>> {
    vec![
        Box::new(WasmtimeCli::run(ExecMode::CraneliftJit)),
        Box::new(WasmtimeCli::run(ExecMode::Winch)),
        Box::new(WasmtimeCli::run(ExecMode::Pulley)),
        Box::new(WasmtimeCli::run(ExecMode::Precompiled)),
        Box::new(WasmtimeCli::run_wasip1()),
        Box::new(WasmtimeCli::serve(ExecMode::CraneliftJit)),
        Box::new(WasmEdgeCli::new(ExecMode::Interpreter)),
        Box::new(WasmEdgeCli::new(ExecMode::Aot)),
        Box::new(WasmerCli::default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cli_variant_is_listed_once() {
        let all = all_cli_runtimes();
        assert_eq!(all.len(), 9);
        let names: std::collections::BTreeSet<String> = all
            .iter()
            .map(|r| {
                let info = r.info();
                format!(
                    "{} {} {} {:?}",
                    info.name,
                    info.mode,
                    info.target,
                    info.details.get("variant")
                )
            })
            .collect();
        assert_eq!(names.len(), all.len(), "{names:?}");
    }
}
