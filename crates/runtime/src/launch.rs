//! Launching a server: the [`Runtime`] trait every way of running the workload implements, the
//! [`LaunchSpec`] it is given, and the supervised process ([`RunningServer`]) it returns once
//! the server is ready.

mod cgroup;
mod process;
mod ready;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::build::Artifact;
use crate::error::RuntimeError;

pub use cgroup::{CpuLimit, PERIOD as CPU_LIMIT_PERIOD};
pub use process::{HOST_REPORT_PREFIX, RunningServer, spawn_server};
pub use ready::{connectable, http_get, parse_listening, rejects_readiness, wait_ready};
pub use wasmbench_vocab::{ExecMode, RuntimeInfo};

/// A host directory a guest may open, under a path of its own: `--dir HOST[::GUEST]`, as
/// `wasmtime run` writes it (GUEST defaults to HOST). Native servers see the whole file system
/// anyway and ignore it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Preopen {
    /// The directory on this machine (absolute once parsed).
    pub host: PathBuf,
    /// The path the guest opens it by.
    pub guest: String,
}

impl Preopen {
    /// Parses `HOST[::GUEST]`; HOST must be an existing directory.
    pub fn parse(text: &str) -> Result<Preopen, RuntimeError> {
        let (host, guest) = text.split_once("::").unwrap_or((text, text));
        if host.is_empty() || guest.is_empty() {
            return Err(RuntimeError::Config(format!(
                "--dir {text:?}: write HOST or HOST::GUEST, e.g. `--dir ./static::/static`"
            )));
        }
        let abs = std::fs::canonicalize(host)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                RuntimeError::Config(format!(
                    "--dir {text:?}: {host} is not a directory on this machine; give one that exists"
                ))
            })?;
        Ok(Preopen {
            host: abs,
            guest: guest.to_string(),
        })
    }
}

impl TryFrom<String> for Preopen {
    type Error = RuntimeError;
    fn try_from(s: String) -> Result<Preopen, RuntimeError> {
        Preopen::parse(&s)
    }
}

impl From<Preopen> for String {
    fn from(p: Preopen) -> String {
        p.to_string()
    }
}

impl fmt::Display for Preopen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.host.display(), self.guest)
    }
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
    /// Limit the server to this many CPUs' worth of time (`--server-cpu-limit`): a cgroup of
    /// its own with a CFS quota, as a Kubernetes pod's CPU limit.
    pub cpu_limit: Option<f64>,
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
    /// Host directories a Wasm guest may open (`--dir`); none by default.
    pub dirs: Vec<Preopen>,
    /// The most requests the caller will have in flight at once, when it knows (the callgrind
    /// pass: one VU); a host that reserves memory per request slot sizes its pool to it. The
    /// `wasi:http` host's default pool of 1000 slots reserves about 4 TiB of address space,
    /// more than a process under valgrind may map.
    pub max_in_flight: Option<usize>,
    /// Cancelled by the caller (Ctrl-C): the wait for readiness stops within a second and
    /// the server is killed.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
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
            cpu_limit: None,
            ready_path: "/healthz".into(),
            startup_timeout: Duration::from_secs(30),
            host_exe: None,
            allow_outbound: Vec::new(),
            wrapper: Vec::new(),
            dirs: Vec::new(),
            max_in_flight: None,
            cancel: None,
        }
    }

    /// Whether the caller gave up on this launch.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
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

#[cfg(test)]
mod tests {
    use super::Preopen;

    #[test]
    fn dir_mappings_parse_as_wasmtime_writes_them() {
        let tmp = std::fs::canonicalize(std::env::temp_dir()).unwrap();
        let t = tmp.to_str().unwrap();
        let p = Preopen::parse(&format!("{t}::/data")).unwrap();
        assert_eq!(
            (p.host.as_path(), p.guest.as_str()),
            (tmp.as_path(), "/data")
        );
        let same = Preopen::parse(t).unwrap();
        assert_eq!(same.guest, t);
        let round: Preopen = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(round, p);
        for bad in ["", "::/x", "/no/such/dir::/x", "/proc/self/status"] {
            let e = Preopen::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--dir"), "{bad}: {e}");
        }
    }
}
