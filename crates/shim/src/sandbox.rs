//! The [`Sandbox`] containerd-shim-wasm calls inside the container: it has set up the
//! container's namespaces (the pod's network namespace among them), cgroups and root
//! filesystem, and calls [`Sandbox::run_wasi`] in the container's init process; the returned
//! status becomes the container's exit status.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{Entrypoint, RuntimeContext, Source};

use crate::error::ShimError;
use crate::guest::{Guest, env_pairs, exit_code};
use crate::info::BINARY_NAME;

/// Exit status of a container whose guest could not be started (its reason is on stderr).
pub const EXIT_SETUP_FAILED: i32 = 1;

/// How long a stopped guest gets to return before the status is reported anyway. The guest is
/// interrupted at its next epoch (10 ms) or poll check (20 ms), so this is only a backstop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs a container's `wasi:cli/run` component; see the crate documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasmbenchSandbox;

impl Sandbox for WasmbenchSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        match self.run_until(ctx, stop_signal()).await {
            Ok(code) => Ok(code),
            Err(e) => {
                // containerd-shim-wasm would log an `Err` at info level in the shim's log and
                // exit 137 (which reads as an OOM kill); the container's stderr is what
                // `kubectl logs` shows, so the reason goes there.
                eprintln!("{BINARY_NAME}: {e}");
                log::error!("running the guest: {e}");
                Ok(EXIT_SETUP_FAILED)
            }
        }
    }
}

impl WasmbenchSandbox {
    /// Loads the container's component and runs it until it ends or `stop` resolves; the
    /// status is the guest's ([`exit_code`]), or `stop`'s output once the guest was stopped.
    ///
    /// The guest runs on a thread of its own: [`wasmbench_runtime::host::socket::run_command`]
    /// starts the same current-thread async runtime as a local run, which cannot be nested in
    /// the runtime containerd-shim-wasm calls `run_wasi` from.
    pub async fn run_until(
        &self,
        ctx: &impl RuntimeContext,
        stop: impl Future<Output = i32>,
    ) -> Result<i32, ShimError> {
        let Entrypoint { source, .. } = ctx.entrypoint();
        let entry_err = |e: anyhow::Error| ShimError::Entrypoint(format!("{e:#}"));
        let precompiled = source.is_precompiled().map_err(entry_err)?;
        let guest = {
            let wasm = source.as_bytes().map_err(entry_err)?;
            Guest::load(&wasm, precompiled)?
        };
        log::info!("loaded the guest: {:?}", guest.report());
        let args = ctx.args().to_vec();
        let envs = env_pairs(ctx.envs());
        let shutdown = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let flag = Arc::clone(&shutdown);
        std::thread::Builder::new()
            .name("wasmbench-guest".into())
            .spawn(move || {
                let _ = tx.send(guest.run(&args, &envs, &flag, true));
            })
            .map_err(|e| ShimError::io("starting the guest thread", e))?;
        tokio::select! {
            r = &mut rx => Ok(exit_code(r.map_err(|_| ShimError::GuestThread)??)),
            code = stop => {
                shutdown.store(true, Ordering::Relaxed);
                match tokio::time::timeout(STOP_GRACE, rx).await {
                    Ok(Ok(Err(e))) => log::warn!("the stopped guest ended with: {e}"),
                    Err(_) => log::warn!("the guest did not stop within {STOP_GRACE:?}"),
                    Ok(_) => {}
                }
                Ok(code)
            }
        }
    }
}

/// Resolves when the container is asked to stop (SIGTERM from the kubelet or `ctr task kill`,
/// SIGINT, SIGQUIT) with the status a process ended by that signal reports (128 + signal), the
/// status containerd shows for a runc container stopped the same way.
pub async fn stop_signal() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, int, quit) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) {
        (Ok(t), Ok(i), Ok(q)) => (t, i, q),
        (t, i, q) => {
            // Without handlers the signals keep their default action (termination, or being
            // ignored as the namespace's PID 1, until SIGKILL); the guest still runs.
            let e = [t.err(), i.err(), q.err()].into_iter().flatten().next();
            log::error!("cannot install signal handlers: {e:?}");
            return std::future::pending().await;
        }
    };
    let (mut term, mut int, mut quit) = (term, int, quit);
    tokio::select! {
        _ = term.recv() => 128 + libc::SIGTERM,
        _ = int.recv() => 128 + libc::SIGINT,
        _ = quit.recv() => 128 + libc::SIGQUIT,
    }
}

/// A [`RuntimeContext`] outside containerd: the Wasm file, its arguments and environment
/// given directly. `containerd-shim-wasmbench-v1 --run` and the tests run the sandbox with it.
#[derive(Debug, Clone)]
pub struct DirectContext {
    args: Vec<String>,
    envs: Vec<String>,
}

impl DirectContext {
    /// `args[0]` is the Wasm file; `envs` are `KEY=VALUE` strings.
    pub fn new(args: Vec<String>, envs: Vec<String>) -> DirectContext {
        DirectContext { args, envs }
    }
}

impl RuntimeContext for DirectContext {
    fn args(&self) -> &[String] {
        &self.args
    }

    fn envs(&self) -> &[String] {
        &self.envs
    }

    fn entrypoint(&self) -> Entrypoint<'_> {
        let arg0 = self.args.first().map(String::as_str).unwrap_or("");
        let path = PathBuf::from(arg0);
        Entrypoint {
            func: "_start".into(),
            name: path.file_stem().map(|n| n.to_string_lossy().into_owned()),
            arg0: Some(Path::new(arg0)),
            source: Source::File(path),
        }
    }
}
