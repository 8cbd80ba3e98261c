//! The wasmbench workload: a small HTTP/1.1 echo service.
//!
//! One source builds for the host, `wasm32-wasip1` and `wasm32-wasip2`. Every build runs the same
//! single-threaded, non-blocking event loop over `poll(2)` (wasi-libc implements `poll` on both
//! WASI versions), so native and Wasm are compared with the same concurrency model. Each
//! connection's protocol state is a [`session::Session`], free of I/O, which the WasmEdge build
//! (`wasmbench-echo-wasmedge`, WasmEdge's own socket ABI) drives from its loop too.
//!
//! Behaviour (compatible with the public demo's server): `POST` to any path answers
//! `echo: <body>`, `GET` answers `echo: `, `GET /healthz` answers `ok`. Workload endpoints
//! (`POST /hash`, `POST /json`, `GET /alloc`, `GET /sleep`) measure compute, parsing,
//! allocation and timers; see [`app`]. Configuration comes from the environment, see
//! [`config::Config`].
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod http;
pub mod server;
pub mod session;

#[cfg(test)]
mod proptests;
