//! A service's environment and readiness, as every command that starts servers takes them
//! (`serve`, `compare`, `k8s run`): declared once, parsed in one place.

use clap::Args;

/// One `--env KEY=VALUE` of the workload's environment: a bad value is a usage error (exit 2)
/// in every command.
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE; write e.g. `--env RUST_LOG=info`"))
}

/// A service's environment, readiness and the path it is loaded on (`compare` and `k8s run`).
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceFlags {
    /// Environment variable for every server, `KEY=VALUE` (repeatable); Wasm guests get only
    /// these and the listening address.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Path answering `200` when the service is ready (default `/healthz` for our workload; for
    /// your own builds, without it, ready means the port accepts a TCP connection).
    #[arg(long)]
    pub ready_path: Option<String>,
    /// Path (and query) of the load request (default `/`).
    #[arg(long)]
    pub path: Option<String>,
}
