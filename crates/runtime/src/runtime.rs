//! The [`Runtime`] trait and what a runtime reports about itself.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, Target};
use crate::error::RuntimeError;
use crate::process::RunningServer;

/// How the workload's code is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecMode {
    /// Machine code from rustc: an ordinary process.
    Native,
    /// Compiled by Cranelift when loaded.
    CraneliftJit,
    /// Loaded from machine code compiled earlier (e.g. a cached `.cwasm`).
    Precompiled,
    /// Wasmtime's baseline compiler.
    Winch,
    /// Wasmtime's portable bytecode interpreter.
    Pulley,
    /// Another runtime's interpreter.
    Interpreter,
    /// Another runtime's ahead-of-time compiled form.
    Aot,
}

impl ExecMode {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecMode::Native => "native",
            ExecMode::CraneliftJit => "cranelift-jit",
            ExecMode::Precompiled => "precompiled",
            ExecMode::Winch => "winch",
            ExecMode::Pulley => "pulley",
            ExecMode::Interpreter => "interpreter",
            ExecMode::Aot => "aot",
        }
    }
}

impl fmt::Display for ExecMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ran the workload; recorded in every result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Runtime name (`native`, `wasmtime`, ...).
    pub name: String,
    /// Runtime version (the rustc version for native).
    pub version: String,
    /// Execution mode.
    pub mode: ExecMode,
    /// What the workload was built for.
    pub target: Target,
    /// Whether the pooling instance allocator was on (`None` when not applicable).
    pub pooling: Option<bool>,
    /// Further settings worth recording (memory limit, cache hit, compile time, ...).
    pub details: BTreeMap<String, String>,
}

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
}

impl LaunchSpec {
    /// A spec with the defaults: `127.0.0.1`, port 0, `/healthz`, 30 s, no pinning.
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
