//! Finding an external runtime's program and reading its version, and running short commands
//! (`--version`, ahead-of-time compiles) with a deadline.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::error::output_tail;

/// How long `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to find a runtime's program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locator {
    /// An explicit program path; `None` searches the search path.
    pub program: Option<PathBuf>,
    /// Directories to search instead of `$PATH` (in `PATH` syntax).
    pub search_path: Option<OsString>,
}

impl Locator {
    /// Finds `name`: the explicit program if set, else the first executable `name` on the search
    /// path.
    pub fn find(&self, name: &str) -> Result<PathBuf, String> {
        if let Some(p) = &self.program {
            return if is_executable(p) {
                Ok(p.clone())
            } else {
                Err(format!(
                    "{} is not an executable file: pass the path of the {name} program",
                    p.display()
                ))
            };
        }
        let path = self
            .search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        find_in_path(name, &path).ok_or_else(|| format!("{name} not found on PATH"))
    }
}

/// The first executable `name` in the `PATH`-style list `path`.
pub fn find_in_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Parses `wasmtime --version` output: `wasmtime 48.0.8 (1b1e1a0 2025-10-20)` → `48.0.8`.
pub fn parse_wasmtime_version(out: &str) -> Option<String> {
    version_after(out, &["wasmtime", "wasmtime-cli"], false)
}

/// Parses `wasmedge --version` output → `0.14.1`. A real WasmEdge prints the path it was
/// invoked by first (`/usr/local/bin/wasmedge version 0.14.1`, or `wasmedge version 0.14.1`
/// when run by name), then a line per plugin (` (plugin "wasi_logging") version 0.1.0.0`).
pub fn parse_wasmedge_version(out: &str) -> Option<String> {
    version_after(out, &["wasmedge"], true)
}

/// Parses `wasmer --version` output: `wasmer 6.0.1 (a1b2c3d 2025-05-01)` → `6.0.1`.
pub fn parse_wasmer_version(out: &str) -> Option<String> {
    version_after(out, &["wasmer", "wasmer-cli"], false)
}

/// The version on the first line that starts with one of `names` — as a bare name or as the
/// last component of a path, since some programs print how they were invoked — followed by
/// the word `version` when `word_version` is set.
fn version_after(out: &str, names: &[&str], word_version: bool) -> Option<String> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let first = w.next()?;
        let program = first.rsplit('/').next().unwrap_or(first);
        if !names.iter().any(|x| program.eq_ignore_ascii_case(x)) {
            return None;
        }
        if word_version && w.next() != Some("version") {
            return None;
        }
        semverish(w.next()?)
    })
}

/// `v1.2.3-rc1` → `1.2.3-rc1`; anything not starting with `digit.` is refused.
fn semverish(v: &str) -> Option<String> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    (!major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().next().is_some_and(|b| b.is_ascii_digit()))
    .then(|| v.to_string())
}

/// A found program and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Where the program is.
    pub path: PathBuf,
    /// Its version, e.g. `48.0.8`.
    pub version: String,
}

/// Finds `name` and runs `<name> --version`, parsing the output with `parse`.
pub fn detect(
    name: &str,
    locator: &Locator,
    parse: fn(&str) -> Option<String>,
) -> Result<Detected, String> {
    let path = locator.find(name)?;
    let out = run_bounded(Command::new(&path).arg("--version"), VERSION_TIMEOUT)
        .map_err(|e| format!("`{} --version` failed: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out);
    let version = parse(&text).ok_or_else(|| {
        let printed: Vec<&str> = text.lines().take(3).collect();
        format!(
            "found {name} at {}, but cannot read its version from `--version`, which printed \
             {:?}",
            path.display(),
            printed.join(" / ")
        )
    })?;
    Ok(Detected { path, version })
}

/// Runs a short command with a deadline and returns its stdout; stderr goes into the error.
/// Both pipes are drained while the command runs, so a talkative program cannot block on a full
/// pipe and be mistaken for a hung one.
pub(super) fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", timeout.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{status}: {}", output_tail(&err, 5)))
    }
}

/// The version shown in a runtime's report line: the detected one, or why there is none.
pub(super) fn version_or_why(
    detected: &Result<Detected, String>,
    locator: &Locator,
    name: &str,
) -> String {
    match detected {
        Ok(d) => d.version.clone(),
        Err(_) if locator.find(name).is_ok() => "unreadable".into(),
        Err(_) => "not found".into(),
    }
}

/// Remembers the detection result (programs do not change while a comparison runs).
#[derive(Debug, Clone, Default)]
pub(super) struct DetectCache(Arc<OnceLock<Result<Detected, String>>>);

impl DetectCache {
    /// The detection result, found on the first call.
    pub(super) fn get(
        &self,
        name: &str,
        locator: &Locator,
        parse: fn(&str) -> Option<String>,
    ) -> Result<Detected, String> {
        self.0.get_or_init(|| detect(name, locator, parse)).clone()
    }
}

impl PartialEq for DetectCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recorded_version_strings() {
        assert_eq!(
            parse_wasmtime_version("wasmtime 48.0.8 (6c9ef2a36 2025-11-20)\n").as_deref(),
            Some("48.0.8")
        );
        assert_eq!(
            parse_wasmtime_version("wasmtime-cli 21.0.1\n").as_deref(),
            Some("21.0.1")
        );
        assert_eq!(
            parse_wasmedge_version(
                "wasmedge version 0.14.1\n (plugin \"wasi_logging\") version 0.1.0.0\n"
            )
            .as_deref(),
            Some("0.14.1")
        );
        assert_eq!(
            parse_wasmer_version("wasmer 6.0.1 (a5d4e9a 2025-05-30)\n").as_deref(),
            Some("6.0.1")
        );
        assert_eq!(parse_wasmtime_version("error: unknown flag"), None);
        assert_eq!(parse_wasmtime_version("wasmtime nightly"), None);
        assert_eq!(parse_wasmedge_version("wasmedge 0.14.1"), None);
        // Real WasmEdge output: the invocation path first, then plugin lines.
        assert_eq!(
            parse_wasmedge_version(
                "/usr/local/bin/wasmedge version 0.14.1\n (plugin \"wasi_logging\") version 0.1.0.0\n"
            )
            .as_deref(),
            Some("0.14.1")
        );
        assert_eq!(
            parse_wasmtime_version("/opt/bin/wasmtime 48.0.8 (6c9ef2a36 2025-11-20)").as_deref(),
            Some("48.0.8")
        );
        assert_eq!(
            parse_wasmedge_version("/usr/bin/notwasmedge version 0.14.1"),
            None
        );
        assert_eq!(parse_wasmer_version(""), None);
    }

    #[test]
    fn locator_reports_missing_and_non_executable_programs() {
        let dir = tempfile::tempdir().unwrap();
        let l = Locator {
            program: None,
            search_path: Some(dir.path().as_os_str().to_owned()),
        };
        assert_eq!(
            l.find("wasmtime").unwrap_err(),
            "wasmtime not found on PATH"
        );
        let f = dir.path().join("wasmtime");
        std::fs::write(&f, "").unwrap();
        // Not executable: skipped on the search path, refused when named explicitly.
        assert!(l.find("wasmtime").is_err());
        let e = Locator {
            program: Some(f.clone()),
            search_path: None,
        }
        .find("wasmtime")
        .unwrap_err();
        assert!(e.contains("not an executable"), "{e}");
    }

    #[test]
    fn bounded_commands_report_their_failure_and_their_deadline() {
        let out = run_bounded(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out, b"out\n");
        let e = run_bounded(
            Command::new("/bin/sh").args(["-c", "echo why >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.contains("3") && e.contains("why"), "{e}");
        let started = Instant::now();
        let e = run_bounded(
            Command::new("/bin/sh").args(["-c", "sleep 30"]),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
