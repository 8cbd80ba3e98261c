//! Checks made before any server starts: each variant's runtime can load the `.wasm` it is
//! given.

use wasmbench_runtime::RuntimeError;
use wasmbench_runtime::inspect::{WasiService, check_wasi_service};

use crate::error::CompareError;
use crate::variants::{Resolved, variants_for};

/// What a kind of `.wasm` is, in words.
fn describe(s: WasiService) -> &'static str {
    match s {
        WasiService::Command(wasmbench_runtime::Target::Wasip1) => "a wasip1 core module",
        WasiService::Command(_) => "a wasip2 command component",
        WasiService::HttpProxy => "a wasi:http/proxy component (WASI 0.2)",
        WasiService::HttpService => "a wasi:http/service component (WASI 0.3)",
    }
}

/// Fails when `v` is given a `.wasm` its runtime cannot run, naming the variants that can.
pub(crate) fn check_loadable(v: &Resolved) -> Result<(), CompareError> {
    let (Some(path), Some(want)) = (&v.artifact, v.build.service()) else {
        return Ok(());
    };
    let got = check_wasi_service(path)?;
    if got == want {
        return Ok(());
    }
    Err(CompareError::Runtime(RuntimeError::InvalidArtifact {
        path: path.clone(),
        problem: format!(
            "is {}, and variant {} takes a {}; give it to one of: {} (--wasm-runtime NAME)",
            describe(got),
            v.name,
            v.build.accepts(),
            variants_for(got).join(", ")
        ),
    }))
}
