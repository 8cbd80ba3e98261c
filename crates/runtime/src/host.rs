//! The embedded Wasmtime hosts, which run a guest inside this process: the socket host
//! ([`socket`], wasip1 modules and wasip2 commands that open their own listener) and the
//! `wasi:http` host ([`http`], `wasi:http/proxy` components behind hyper), what both share
//! ([`engine`]), and the one value that hands a host's settings to the `wasmbench serve`
//! process that runs it ([`HostConfig`]).

pub mod engine;
mod handoff;
pub mod http;
pub mod socket;

pub use engine::{
    DEFAULT_MAX_MEMORY_BYTES, EpochTicker, WASMTIME_VERSION, apply_exec_mode, store_limits,
};
pub use handoff::{HOST_CONFIG_OPTION, HostConfig};
