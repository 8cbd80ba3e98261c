//! `containerd-shim-wasmbench-v1`: a containerd shim, built on runwasi's `containerd-shim-wasm`
//! library, that runs wasmbench's wasip2 echo (or any `wasi:cli/run` socket server) in a pod
//! with the same Wasmtime engine configuration as wasmbench's local `wasmtime-wasip2` runs, and
//! serves `wasi:http` components (WASI 0.2 and 0.3) as the local `wasi-http` variant does.
//!
//! containerd starts the binary for the runtime type [`RUNTIME_TYPE`]; containerd-shim-wasm
//! creates the container with youki's libcontainer (namespaces, cgroups, root filesystem) and,
//! inside it, calls [`WasmbenchSandbox`], which compiles the entrypoint (`/echo.wasm` in the
//! `echo-wasm` image) with [`wasmbench_runtime::host::socket::build_engine`] and runs it through
//! [`wasmbench_runtime::host::socket::run_command`]: arguments, environment and stdio from the OCI
//! spec, the pod's network namespace with TCP allowed ([`guest::NETWORK_POLICY`]). Images whose
//! layers are Wasm are precompiled once by [`WasmbenchCompiler`]. `--version` prints
//! [`version_line`]. Installation: `crates/shim/README.md`.
#![deny(missing_docs)]

pub mod compiler;
pub mod error;
pub mod guest;
pub mod info;
pub mod sandbox;

use containerd_shim_wasm::shim::{Compiler, Shim, Version};

pub use compiler::WasmbenchCompiler;
pub use error::ShimError;
pub use info::{
    BINARY_NAME, RUNTIME_TYPE, SHIM_NAME, VERSION, parse_version_line, runtime_info, version_line,
};
pub use sandbox::{DirectContext, WasmbenchSandbox};

/// The shim: its name, version, sandbox and precompiler for containerd-shim-wasm.
#[derive(Debug)]
pub struct WasmbenchShim;

impl Shim for WasmbenchShim {
    fn name() -> &'static str {
        SHIM_NAME
    }

    fn version() -> Version {
        containerd_shim_wasm::shim::version!()
    }

    type Sandbox = WasmbenchSandbox;

    async fn compiler() -> Option<impl Compiler> {
        Some(WasmbenchCompiler::new())
    }
}
