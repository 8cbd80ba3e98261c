//! The guest sandbox options of every command that launches servers (`serve` and `compare`):
//! declared once, parsed in one place.

use std::net::SocketAddr;

use clap::Args;

use crate::exit::{Exit, fail};

/// Flags that widen what a guest may reach. Empty means the default policy: nothing.
#[derive(Debug, Clone, Default, Args)]
pub struct SandboxFlags {
    /// Let wasi:http guests send HTTP requests to this IP:PORT (repeatable). Without it every
    /// outgoing request is refused (`HTTP-request-denied`). Host names are refused: the host
    /// does no DNS lookups for guests.
    // Kept as text and parsed by `allow_list`, so a bad value exits with the invalid
    // configuration code (104) rather than clap's usage code.
    #[arg(long = "allow-outbound", value_name = "IP:PORT")]
    pub allow_outbound: Vec<String>,
}

impl SandboxFlags {
    /// The allow-list as addresses; a value that is not `IP:PORT` is an invalid configuration.
    pub fn allow_list(&self) -> anyhow::Result<Vec<SocketAddr>> {
        self.allow_outbound
            .iter()
            .map(|v| {
                wasmbench_runtime::host::http::parse_outbound_authority(v)
                    .map_err(|e| fail(Exit::InvalidConfig, e.to_string()))
            })
            .collect()
    }

    /// Refuses the flags for a command that would ignore them, so a guest is never thought
    /// more (or less) confined than it is.
    pub fn only_for_wasi_http(&self, what: &str) -> anyhow::Result<()> {
        if self.allow_outbound.is_empty() {
            return Ok(());
        }
        Err(fail(
            Exit::InvalidConfig,
            format!(
                "--allow-outbound applies to the wasi:http host (--runtime wasmtime --target \
                 wasi-http) only; {what}"
            ),
        ))
    }
}
