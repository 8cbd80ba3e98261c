//! Building the workload (`crates/echo`) for a target and describing the result.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RuntimeError;

pub use wasmbench_vocab::Target;

/// The two kinds of Wasm binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WasmKind {
    /// A core module (what `wasm32-wasip1` produces).
    Module,
    /// A component (what `wasm32-wasip2` produces).
    Component,
}

/// A built (or user-supplied) workload binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// What it runs on.
    pub target: Target,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// File size.
    pub size_bytes: u64,
    /// Wall time of the build command (zero for user-supplied files).
    pub build_time: Duration,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

impl Artifact {
    /// Describes a user-supplied file. Checks that it exists and, for Wasm targets, that it is a
    /// Wasm binary of the right kind (module for wasip1, component for wasip2).
    pub fn from_path(target: Target, path: impl AsRef<Path>) -> Result<Artifact, RuntimeError> {
        let path = path.as_ref();
        let invalid = |problem: String| RuntimeError::InvalidArtifact {
            path: path.to_path_buf(),
            problem,
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            invalid(format!(
                "cannot read it ({e}); pass the path of an existing {} file",
                if target.is_wasm() {
                    ".wasm"
                } else {
                    "executable"
                }
            ))
        })?;
        if !meta.is_file() {
            return Err(invalid("is not a regular file".into()));
        }
        if target.is_wasm() {
            let kind = wasm_kind(path)?;
            let want = if target == Target::Wasip1 {
                WasmKind::Module
            } else {
                WasmKind::Component
            };
            if kind != want {
                let (is, hint) = match kind {
                    WasmKind::Module => (
                        "a core Wasm module",
                        "use --target wasip1, or build it for wasm32-wasip2",
                    ),
                    WasmKind::Component => (
                        "a Wasm component",
                        "use --target wasip2, or build it for wasm32-wasip1",
                    ),
                };
                return Err(invalid(format!(
                    "is {is}, but target {target} needs a {}; {hint}",
                    match want {
                        WasmKind::Module => "core module",
                        WasmKind::Component => "component",
                    }
                )));
            }
        }
        let path = std::fs::canonicalize(path)
            .map_err(|e| RuntimeError::io(format!("resolving {}", path.display()), e))?;
        Ok(Artifact {
            target,
            sha256: sha256_file(&path)?,
            size_bytes: meta.len(),
            path,
            build_time: Duration::ZERO,
        })
    }
}

/// Reads the 8-byte header of a Wasm file and tells a core module from a component.
pub fn wasm_kind(path: &Path) -> Result<WasmKind, RuntimeError> {
    let invalid = |problem: String| RuntimeError::InvalidArtifact {
        path: path.to_path_buf(),
        problem,
    };
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(path).map_err(|e| invalid(format!("cannot open it: {e}")))?;
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(invalid(format!("cannot read it: {e}"))),
        }
    }
    if got < 8 || &head[..4] != b"\0asm" {
        return Err(invalid(
            "is not a WebAssembly binary (no `\\0asm` header); pass the .wasm file cargo built, \
             not a .wat, .cwasm or native executable"
                .into(),
        ));
    }
    // Bytes 4..8: version (1 for modules) and layer (0 module, 1 component).
    match (u16::from_le_bytes([head[4], head[5]]), head[6], head[7]) {
        (1, 0, 0) => Ok(WasmKind::Module),
        (_, 1, 0) => Ok(WasmKind::Component),
        (v, l0, l1) => Err(invalid(format!(
            "has an unknown WebAssembly version/layer ({v}, {l0}/{l1}); rebuild it with a current toolchain"
        ))),
    }
}

/// Hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String, RuntimeError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// How to build the workload.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The cargo workspace that contains `crates/echo`. Defaults to the workspace this crate was
    /// compiled from.
    pub workspace: PathBuf,
    /// Where cargo puts the artifacts. Defaults to `<workspace>/target/artifacts`: a directory
    /// of its own, so a build started from inside another cargo command (tests, `cargo run`)
    /// never waits for that command's build lock.
    pub target_dir: Option<PathBuf>,
    /// The cargo profile (default `artifact`, shared by every target so builds are comparable).
    pub profile: String,
    /// Pass `--offline` to cargo.
    pub offline: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            workspace: default_workspace(),
            target_dir: None,
            profile: "artifact".into(),
            offline: false,
        }
    }
}

impl BuildOptions {
    /// The effective cargo target directory.
    pub fn target_dir(&self) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| self.workspace.join("target").join("artifacts"))
    }
}

/// The workspace root this crate was compiled in (`crates/runtime/../..`).
pub fn default_workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// Builds `wasmbench-echo` for `target` with cargo and returns the artifact. Installs the rustup
/// target first when it is missing (rustup does not do that by itself here).
pub fn build_echo(target: Target, opts: &BuildOptions) -> Result<Artifact, RuntimeError> {
    let what = format!(
        "echo for {}",
        target.triple().unwrap_or("the host (native)")
    );
    if !opts.workspace.join("crates/echo/Cargo.toml").is_file() {
        return Err(RuntimeError::Build {
            what,
            detail: format!(
                "{} is not the wasmbench workspace (no crates/echo/Cargo.toml); pass the \
                 repository root",
                opts.workspace.display()
            ),
        });
    }
    let file = if target.is_wasm() {
        "echo.wasm"
    } else {
        "echo"
    };
    crate::cli::build_workload("wasmbench-echo", Some("echo"), file, target, opts)
}

pub(crate) fn ensure_rustup_target(workspace: &Path, triple: &str) -> Result<(), RuntimeError> {
    let err = |detail: String| RuntimeError::Build {
        what: format!("rustup target {triple}"),
        detail,
    };
    let out = Command::new("rustup")
        .current_dir(workspace)
        .args(["target", "list", "--installed"])
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        // Without rustup the toolchain may still have the target (distro packages); let cargo
        // report the real problem if it does not.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(format!("cannot run rustup: {e}"))),
    };
    if out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == triple)
    {
        return Ok(());
    }
    let out = Command::new("rustup")
        .current_dir(workspace)
        .args(["target", "add", triple])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(format!("cannot run rustup: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "`rustup target add {triple}` failed ({}); run it by hand:\n{}",
            out.status,
            tail(&out.stderr, 10)
        )));
    }
    Ok(())
}

/// The last `n` lines of a command's output.
pub(crate) fn tail(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_headers_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.wasm");
        std::fs::write(&m, b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(wasm_kind(&m).unwrap(), WasmKind::Module);
        let c = dir.path().join("c.wasm");
        std::fs::write(&c, b"\0asm\x0d\0\x01\0").unwrap();
        assert_eq!(wasm_kind(&c).unwrap(), WasmKind::Component);
        let e = Artifact::from_path(Target::Wasip2, &m)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("core Wasm module") && e.contains("--target wasip1"),
            "{e}"
        );
        let bad = dir.path().join("bad.wasm");
        std::fs::write(&bad, b"(module)").unwrap();
        let e = Artifact::from_path(Target::Wasip1, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a WebAssembly binary"), "{e}");
        let e = Artifact::from_path(Target::Native, dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read it"), "{e}");
        let a = Artifact::from_path(Target::Wasip1, &m).unwrap();
        assert_eq!(a.size_bytes, 8);
        assert_eq!(a.sha256.len(), 64);
    }
}
