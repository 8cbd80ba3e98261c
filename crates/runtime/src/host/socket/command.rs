//! Running a WASI command to its end: the one way wasmbench runs a `wasi:cli/run` component
//! (the socket host and the containerd shim), and how a guest's exit maps to a result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::wasmtime::component::{Component, ResourceTable};
use ::wasmtime::{Engine, Store, StoreLimits, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::error::RuntimeError;
use crate::host::engine::store_limits;

/// How a `wasi:cli/run` guest run by [`run_command`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestExit {
    /// `run` returned `ok` (status 0), or the guest called `exit` with this status.
    Status(i32),
    /// `run` returned `err` (what `wasmtime run` reports as status 1).
    ErrorResult,
    /// The host set the shutdown flag and the guest was dropped.
    Stopped,
}

/// Instantiates a `wasi:cli/run` component with `wasi` and runs it on the calling thread until
/// it returns or `shutdown` is set: the one way wasmbench runs a wasip2 command, used by
/// [`EmbeddedHost`](super::EmbeddedHost) and by the containerd shim (`crates/shim`), so both
/// run guests alike (a current-thread async runtime, store limits from [`store_limits`], epoch
/// checks every tick of an [`EpochTicker`], no cooperative budget). `engine` must come from
/// [`build_engine`] and have a running [`EpochTicker`]. `instantiated` is called with the
/// instantiation time. Must not be called from inside an async runtime (it starts its own).
///
/// [`EpochTicker`]: crate::host::engine::EpochTicker
/// [`build_engine`]: super::build_engine
pub fn run_command(
    engine: &Engine,
    component: &Component,
    wasi: WasiCtx,
    max_memory_bytes: usize,
    shutdown: &Arc<AtomicBool>,
    instantiated: impl FnOnce(Duration),
) -> Result<GuestExit, RuntimeError> {
    let mut linker = ::wasmtime::component::Linker::<P2State>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| RuntimeError::wasmtime("linking WASI 0.2", e))?;
    let pre = linker
        .instantiate_pre(component)
        .and_then(wasmtime_wasi::p2::bindings::CommandPre::new)
        .map_err(|e| {
            RuntimeError::wasmtime(
                "the component is not a WASI command (build it for wasm32-wasip2 as a binary)",
                e,
            )
        })?;
    let state = P2State {
        ctx: wasi,
        table: ResourceTable::new(),
        limits: store_limits(max_memory_bytes),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RuntimeError::io("starting the async runtime", e))?;
    rt.block_on(async {
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        arm_epoch(&mut store, shutdown);
        let t = Instant::now();
        let cmd = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| RuntimeError::wasmtime("instantiating the component", e))?;
        instantiated(t.elapsed());
        let flag = Arc::clone(shutdown);
        let stopped = async move {
            // The guest may wait in `poll` indefinitely; check the flag at a steady pace
            // and drop the guest's future when it is set.
            while !flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        // Opt out of tokio's cooperative budget (128 resource polls per task tick): the
        // guest is one task that polls every connection in each `poll` call, so with the
        // budget, connections past the 128th would never be reported ready while earlier
        // ones keep the guest busy.
        let run = tokio::task::unconstrained(cmd.wasi_cli_run().call_run(&mut store));
        tokio::select! {
            r = run => match r {
                Ok(Ok(())) => Ok(GuestExit::Status(0)),
                Ok(Err(())) => Ok(GuestExit::ErrorResult),
                Err(e) => guest_exit(e, shutdown),
            },
            () = stopped => Ok(GuestExit::Stopped),
        }
    })
}

struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Interrupts guest code every epoch to check the stop flag.
pub(super) fn arm_epoch<T: 'static>(store: &mut Store<T>, shutdown: &Arc<AtomicBool>) {
    let flag = Arc::clone(shutdown);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if flag.load(Ordering::Relaxed) {
            Err(::wasmtime::Error::msg("the host is shutting down"))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
}

/// A guest's trap or `exit` call as a [`GuestExit`].
fn guest_exit(e: ::wasmtime::Error, shutdown: &AtomicBool) -> Result<GuestExit, RuntimeError> {
    if shutdown.load(Ordering::Relaxed) {
        return Ok(GuestExit::Stopped);
    }
    match e.downcast_ref::<I32Exit>() {
        Some(exit) => Ok(GuestExit::Status(exit.0)),
        None => Err(RuntimeError::GuestExited(format!(
            "the guest trapped: {e:#}"
        ))),
    }
}

/// A guest's trap or `exit` call as the embedded host's result: stopping and `exit(0)` are
/// success, any other status an error.
pub(super) fn guest_error(e: ::wasmtime::Error, shutdown: &AtomicBool) -> Result<(), RuntimeError> {
    exit_result(guest_exit(e, shutdown)?)
}

pub(super) fn exit_result(exit: GuestExit) -> Result<(), RuntimeError> {
    match exit {
        GuestExit::Status(0) | GuestExit::Stopped => Ok(()),
        GuestExit::Status(n) => Err(RuntimeError::GuestExited(format!(
            "the guest exited with status {n}; its stderr says why"
        ))),
        GuestExit::ErrorResult => Err(RuntimeError::GuestExited(
            "the guest exited with an error status; its stderr says why".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_exit_or_a_stop_is_success() {
        assert!(exit_result(GuestExit::Status(0)).is_ok());
        assert!(exit_result(GuestExit::Stopped).is_ok());
        let e = exit_result(GuestExit::Status(3)).unwrap_err().to_string();
        assert!(e.contains("status 3"), "{e}");
        let e = exit_result(GuestExit::ErrorResult).unwrap_err().to_string();
        assert!(e.contains("error status"), "{e}");
    }
}
