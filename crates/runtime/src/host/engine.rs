//! What every embedded host shares: the Wasmtime release, the guest memory limit, the epoch
//! ticker that lets a host interrupt running guest code, the store limits and the code
//! generators an engine can be set up with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ::wasmtime::{Config, Engine, StoreLimits, StoreLimitsBuilder, Strategy};

use crate::error::RuntimeError;
use wasmbench_vocab::ExecMode;

/// Version of the embedded `wasmtime` crate (pinned in the workspace manifest).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Default guest memory limit (per instance on the `wasi:http` host), the same on every host so
/// every endpoint's full parameter range (`/alloc?kb=65536` needs 64 MiB plus the heap) fits on
/// each. Pool slots reserve address space, not memory, so the limit costs nothing until a guest
/// grows.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 256 << 20;

/// Milliseconds, as the host reports print them.
/// Gives a guest the host directories `dirs` (read and write, as `wasmtime run --dir`).
pub(crate) fn preopen(
    b: &mut wasmtime_wasi::WasiCtxBuilder,
    dirs: &[crate::launch::Preopen],
) -> ::wasmtime::Result<()> {
    for d in dirs {
        b.preopened_dir(&d.host, &d.guest, wasmtime_wasi::FsPerms::ReadWrite)?;
    }
    Ok(())
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The thread that advances an engine's epoch at a steady pace, so the epoch deadline set by
/// [`run_command`](crate::host::socket::run_command) (and the wasip1 host) interrupts running
/// guest code regularly; an engine from [`build_engine`](crate::host::socket::build_engine) has
/// epoch interruption on and needs one. Stops when dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts incrementing `engine`'s epoch every `tick` (at least 1 ms).
    pub fn start(engine: &Engine, tick: Duration) -> Result<EpochTicker, RuntimeError> {
        let engine = engine.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let tick = tick.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name("wasmbench-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::io("starting the epoch thread", e))?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The store limits of every embedded guest: linear memory capped at `max_memory_bytes`.
pub fn store_limits(max_memory_bytes: usize) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(max_memory_bytes)
        // A clear trap names the limit; a failed grow would surface as an opaque abort.
        .trap_on_grow_failure(true)
        .build()
}

/// Sets the code generator for `mode` on an engine configuration: Cranelift (default), Winch
/// (baseline compiler) or Pulley (Wasmtime's portable interpreter, `pulley64`).
///
/// Shared by every embedded host so their modes mean the same thing.
pub fn apply_exec_mode(config: &mut Config, mode: ExecMode) -> Result<(), RuntimeError> {
    check_exec_mode(mode)?;
    match mode {
        ExecMode::Winch => {
            config.strategy(Strategy::Winch);
        }
        ExecMode::Pulley => {
            config
                .target("pulley64")
                .map_err(|e| RuntimeError::wasmtime("selecting the pulley64 target", e))?;
        }
        ExecMode::CraneliftJit => {
            config.strategy(Strategy::Cranelift);
        }
        // Refused by check_exec_mode above.
        ExecMode::Native
        | ExecMode::Precompiled
        | ExecMode::Interpreter
        | ExecMode::Aot
        | ExecMode::Unreported => {}
    }
    Ok(())
}

/// Refuses the execution modes the embedded engine does not offer, with the ones it does.
pub(crate) fn check_exec_mode(mode: ExecMode) -> Result<(), RuntimeError> {
    match mode {
        ExecMode::CraneliftJit | ExecMode::Winch | ExecMode::Pulley => Ok(()),
        other @ (ExecMode::Native
        | ExecMode::Precompiled
        | ExecMode::Interpreter
        | ExecMode::Aot
        | ExecMode::Unreported) => Err(RuntimeError::Config(format!(
            "execution mode {other} is not one the embedded Wasmtime engine offers: use \
             cranelift-jit, winch or pulley"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_engines_own_code_generators_are_accepted() {
        for mode in [ExecMode::CraneliftJit, ExecMode::Winch, ExecMode::Pulley] {
            let mut c = Config::new();
            assert!(apply_exec_mode(&mut c, mode).is_ok(), "{mode}");
        }
        for mode in [
            ExecMode::Native,
            ExecMode::Precompiled,
            ExecMode::Interpreter,
            ExecMode::Aot,
        ] {
            let e = apply_exec_mode(&mut Config::new(), mode).unwrap_err();
            assert!(matches!(e, RuntimeError::Config(_)), "{mode}: {e:?}");
            assert!(e.to_string().contains("winch or pulley"), "{mode}: {e}");
        }
    }
}
