//! The wasmbench workload over WasmEdge's socket ABI.
//!
//! WasmEdge (and so crun+WasmEdge on Kubernetes) does not run a WASI 0.2 socket server; it offers
//! its own `wasi_snapshot_preview1` `sock_*` functions, used through the `wasmedge_wasi_socket`
//! crate. This build serves the same routes with the same request parser as `wasmbench-echo`
//! ([`wasmbench_echo::http::parse`], [`wasmbench_echo::app::respond`]); only the socket layer
//! differs. The per-connection protocol state lives in [`session`], which is target independent
//! and tested on the host; the event loop over WasmEdge's `poll_oneoff` is in the binary.
//!
//! Build: `cargo build -p wasmbench-echo-wasmedge --profile artifact --target wasm32-wasip1` →
//! `target/wasm32-wasip1/artifact/echo-wasmedge.wasm`; run with
//! `wasmedge --env PORT=8080 echo-wasmedge.wasm`.
#![deny(missing_docs)]

pub mod session;

/// The `wasi_snapshot_preview1` functions a WasmEdge socket server must import (checked against
/// the built module by this crate's tests).
pub const REQUIRED_SOCKET_IMPORTS: &[&str] = &[
    "sock_open",
    "sock_bind",
    "sock_listen",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
    "sock_setsockopt",
];
