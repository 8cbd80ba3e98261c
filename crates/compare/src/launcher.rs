//! What the comparison loop needs to start a variant's server and observe it while it runs.
//!
//! The loop talks to [`Launcher`] and [`ServerHandle`] only, so it can run against servers that
//! are not child processes; [`RuntimeLauncher`] is the real one: each variant's
//! [`wasmbench_runtime::Runtime`] launching a [`RunningServer`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use wasmbench_runtime::{LaunchSpec, RunningServer};

use crate::variants::Resolved;

#[cfg(test)]
pub(crate) mod fake;

/// A launch in progress: resolves to a server that answered its readiness probe, or to why it
/// could not start.
pub(crate) type Launching<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn ServerHandle>, String>> + Send + 'a>>;

/// Starts the servers of variants.
pub(crate) trait Launcher: Send + Sync {
    /// `Ok` when `variant` can run here, otherwise why not (the variant is then skipped).
    fn available(&self, variant: &Resolved) -> Result<(), String>;

    /// Starts `variant`'s server as `spec` says; resolves once it is ready.
    fn launch<'a>(&'a self, variant: &'a Resolved, spec: LaunchSpec) -> Launching<'a>;
}

/// A ready server, as far as the loop is concerned.
pub(crate) trait ServerHandle: Send {
    /// `http://<addr>` to send the load to.
    fn url(&self) -> String;

    /// The process serving, whose CPU and memory are sampled during the load.
    fn pid(&self) -> u32;

    /// From the start of the launch to the first successful readiness probe.
    fn spawn_to_ready(&self) -> Duration;

    /// The embedded host's JSON report, waiting up to `wait` for it; `None` without one.
    fn host_report_json(&self, wait: Duration) -> Option<String>;

    /// What the runtime recorded about this launch (its command line, files it made), to go
    /// with the variant's runtime details in the report.
    fn launch_details(&self) -> std::collections::BTreeMap<String, String>;

    /// The last lines the server wrote on stderr, for error messages.
    fn stderr_tail(&self) -> String;

    /// How the server ended (an exit status, in words) when it is no longer running.
    fn exited(&mut self) -> Option<String>;

    /// Stops the server; blocks until it is gone.
    fn stop(self: Box<Self>) -> Result<(), String>;
}

/// Launches every variant with its own runtime, as a supervised child process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RuntimeLauncher;

impl Launcher for RuntimeLauncher {
    fn available(&self, variant: &Resolved) -> Result<(), String> {
        variant.runtime.available()
    }

    fn launch<'a>(&'a self, variant: &'a Resolved, spec: LaunchSpec) -> Launching<'a> {
        let runtime = variant.runtime.clone();
        Box::pin(async move {
            // Launching blocks until the server is ready (seconds for a compiling host).
            let server = tokio::task::spawn_blocking(move || runtime.launch(&spec))
                .await
                .map_err(|e| format!("launch task failed: {e}"))?
                .map_err(|e| e.to_string())?;
            Ok(Box::new(server) as Box<dyn ServerHandle>)
        })
    }
}

impl ServerHandle for RunningServer {
    fn url(&self) -> String {
        RunningServer::url(self)
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn spawn_to_ready(&self) -> Duration {
        self.spawn_to_ready
    }

    fn host_report_json(&self, wait: Duration) -> Option<String> {
        RunningServer::host_report_json(self, wait)
    }

    fn launch_details(&self) -> std::collections::BTreeMap<String, String> {
        self.info.details.clone()
    }

    fn stderr_tail(&self) -> String {
        RunningServer::stderr_tail(self)
    }

    fn exited(&mut self) -> Option<String> {
        self.try_exit_status().map(|status| status.to_string())
    }

    fn stop(self: Box<Self>) -> Result<(), String> {
        RunningServer::stop(*self).map_err(|e| e.to_string())
    }
}
