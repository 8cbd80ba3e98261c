//! SIGINT/SIGTERM: the first one cancels the work so partial results are written; the second
//! one stops the servers this process started and exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::exit::Exit;

/// Spawns the signal watcher on the current tokio runtime; abort the task once the work is
/// over.
pub fn install(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    // Registered before returning, so a signal that arrives before the task first runs is
    // not handled by the default action (which would exit 130/143 and write nothing).
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = streams else {
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
                kill_children();
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        }
    })
}

/// Kills the process group of every direct child (servers run in groups of their own), so an
/// immediate exit leaves nothing running.
fn kill_children() {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may contain spaces): state, ppid, pgrp, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (_state, ppid, pgrp) = (fields.next(), fields.next(), fields.next());
        if ppid == Some(me.as_str()) {
            // SAFETY: kill(2) with a process group id read from /proc; a stale id fails harmlessly.
            unsafe {
                if pgrp == Some(&pid.to_string()) {
                    libc::kill(-pid, libc::SIGKILL);
                }
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
