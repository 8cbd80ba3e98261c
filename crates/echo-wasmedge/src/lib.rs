//! The wasmbench workload over WasmEdge's socket ABI.
//!
//! WasmEdge (and so crun+WasmEdge on Kubernetes) does not run a WASI 0.2 socket server; it offers
//! its own `wasi_snapshot_preview1` `sock_*` functions, used through the `wasmedge_wasi_socket`
//! crate. This build serves the same routes with the same connection state machine as
//! `wasmbench-echo` ([`wasmbench_echo::session::Session`], tested on the host); only the socket
//! layer differs: the event loop over WasmEdge's `poll_oneoff` is in the binary, and it wakes
//! for every session's deadline, so a held `GET /sleep` answer blocks no other connection.
//!
//! Build: `cargo build -p wasmbench-echo-wasmedge --profile artifact --target wasm32-wasip1` →
//! `target/wasm32-wasip1/artifact/echo-wasmedge.wasm`; run with
//! `wasmedge --env PORT=8080 echo-wasmedge.wasm`.
#![deny(missing_docs)]

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
