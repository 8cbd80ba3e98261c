//! What a workload binary is: its target, file, size, hash and, for Wasm, whether it is a core
//! module or a component.

use std::io::Read;
use std::path::{Path, PathBuf};
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
