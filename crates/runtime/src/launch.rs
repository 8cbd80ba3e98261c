//! Launching a server: the [`Runtime`] trait every way of running the workload implements, the
//! [`LaunchSpec`] it is given, and the supervised process ([`RunningServer`]) it returns once
//! the server is ready.

mod process;
mod ready;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::build::Artifact;
use crate::error::RuntimeError;

pub use process::{HOST_REPORT_PREFIX, RunningServer, spawn_server};
pub use ready::{connectable, http_get, parse_listening, wait_ready};
pub use wasmbench_vocab::{ExecMode, RuntimeInfo};

/// How to launch a server.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The workload binary.
    pub artifact: Artifact,
    /// Extra environment for the workload (e.g. `ECHO_MODE=seed`).
    pub env: Vec<(String, String)>,
    /// Address to listen on.
    pub host: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Pin the server process to these CPUs (`sched_setaffinity`).
    pub cpu_set: Option<Vec<usize>>,
    /// Path probed with `GET` until it answers `200`; empty: ready once the port accepts a
    /// TCP connection.
    pub ready_path: String,
    /// How long the server may take to become ready.
    pub startup_timeout: Duration,
    /// The `wasmbench` executable that hosts embedded runtimes in a process of their own.
    pub host_exe: Option<PathBuf>,
    /// Authorities a `wasi:http` guest of the embedded host may send requests to
    /// (`--allow-outbound`); empty refuses them all. Other runtimes ignore it: the socket
    /// hosts never let a guest connect, and native processes have no sandbox.
    pub allow_outbound: Vec<SocketAddr>,
    /// A program and its arguments the server's command runs under (`valgrind
    /// --tool=callgrind`), with the server's own program and arguments appended; empty runs it
    /// directly. The wrapper must run its client in its own process, so the pid stays the
    /// server's.
    pub wrapper: Vec<String>,
}

impl LaunchSpec {
    /// A spec with the defaults: `127.0.0.1`, port 0, `/healthz`, 30 s, no pinning, no
    /// outgoing requests.
    pub fn new(artifact: Artifact) -> LaunchSpec {
        LaunchSpec {
            artifact,
            env: Vec::new(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            cpu_set: None,
            ready_path: "/healthz".into(),
            startup_timeout: Duration::from_secs(30),
            host_exe: None,
            allow_outbound: Vec::new(),
            wrapper: Vec::new(),
        }
    }
}

/// One way of running the workload as a server.
pub trait Runtime: fmt::Debug + Send + Sync {
    /// What this runtime is; recorded in results.
    fn info(&self) -> RuntimeInfo;

    /// `Ok` when the runtime can run here, otherwise why not and how to fix it.
    fn available(&self) -> Result<(), String>;

    /// Starts the server and returns once it answers `spec.ready_path` with `200`.
    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError>;
}
