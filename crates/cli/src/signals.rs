//! SIGINT/SIGTERM: the first one cancels the work so partial results are written; the second
//! one stops the servers this process started and exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::exit::Exit;

/// Spawns the signal watcher on the current tokio runtime.
pub fn install(cancel: CancellationToken) {
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                eprintln!(
                    "wasmbench: interrupted: stopping and writing partial results (interrupt again to exit now)"
                );
                cancel.cancel();
            } else {
                wasmbench_runtime::process::kill_all_children();
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        }
    });
}
