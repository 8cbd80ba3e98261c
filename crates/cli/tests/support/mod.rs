//! Helpers shared by the CLI's process-level tests.
// Each test binary uses a part of them.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `wasmbench` binary under test, with no stdin.
pub fn wasmbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wasmbench"));
    c.stdin(Stdio::null());
    c
}

/// Runs `wasmbench args` to its end.
pub fn run(args: &[&str]) -> Output {
    wasmbench().args(args).output().expect("run wasmbench")
}

/// The exit code (-1 when a signal ended it).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Its stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child killed on drop, so a failing assertion never leaves a process behind.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until no process carries `tag`, at most `limit`; panics naming what is left.
pub fn wait_until_gone(tag: &str, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_tagged(tag, 0);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes (other than `exclude`) whose environment carries `tag`.
pub fn processes_tagged(tag: &str, exclude: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == exclude {
            continue;
        }
        if let Ok(env) = std::fs::read(entry.path().join("environ"))
            && env.split(|&b| b == 0).any(|kv| kv == tag.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}
