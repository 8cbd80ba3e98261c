//! The `wasmedge` CLI as a runtime: the WasmEdge socket build, interpreted or compiled ahead of
//! time with `wasmedge compile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::detect::{
    DetectCache, Detected, Locator, parse_wasmedge_version, run_bounded, version_or_why,
};
use crate::build::Target;
use crate::error::RuntimeError;
use crate::launch::{ExecMode, LaunchSpec, RunningServer, Runtime, RuntimeInfo, spawn_server};

/// The `wasmedge` CLI as a runtime, serving the WasmEdge socket build (`echo-wasmedge.wasm`).
#[derive(Debug, Clone, PartialEq)]
pub struct WasmEdgeCli {
    /// [`ExecMode::Interpreter`] or [`ExecMode::Aot`] (`wasmedge compile` first).
    pub mode: ExecMode,
    /// Where the program is.
    pub locator: Locator,
    /// Where AOT-compiled files go (default: `<temp>/wasmbench-wasmedge-aot`).
    pub cache_dir: Option<PathBuf>,
    detected: DetectCache,
}

impl WasmEdgeCli {
    /// WasmEdge in `mode`.
    pub fn new(mode: ExecMode) -> WasmEdgeCli {
        WasmEdgeCli {
            mode,
            locator: Locator::default(),
            cache_dir: None,
            detected: DetectCache::default(),
        }
    }

    /// Uses the given locator.
    pub fn with_locator(mut self, locator: Locator) -> WasmEdgeCli {
        self.locator = locator;
        self.detected = DetectCache::default();
        self
    }

    /// Finds `wasmedge` and its version.
    pub fn detect(&self) -> Result<Detected, String> {
        self.detected
            .get("wasmedge", &self.locator, parse_wasmedge_version)
    }

    /// The arguments that run `wasm` with the spec's environment. The interpreter is forced
    /// in interpreter mode: WasmEdge would otherwise run the AOT code a module may carry, and
    /// report it as interpreted.
    pub fn run_args(mode: ExecMode, spec: &LaunchSpec, wasm: &Path) -> Vec<String> {
        let mut a = Vec::new();
        if mode == ExecMode::Interpreter {
            a.push("--force-interpreter".into());
        }
        let mut env = spec.env.clone();
        env.push(("PORT".into(), spec.port.to_string()));
        env.push(("ECHO_HOST".into(), spec.host.to_string()));
        for (k, v) in env {
            a.extend(["--env".into(), format!("{k}={v}")]);
        }
        for d in &spec.dirs {
            a.extend(["--dir".into(), format!("{}:{}", d.guest, d.host.display())]);
        }
        a.push(wasm.display().to_string());
        a
    }
}

/// A module compiled ahead of time by `wasmedge compile`.
#[derive(Debug, Clone, PartialEq)]
pub struct AotFile {
    /// The compiled module (WasmEdge's universal format: a `.wasm` carrying native code).
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Whether an earlier compile with the same key was reused.
    pub reused: bool,
    /// How long the compile took (0 when reused).
    pub compile_ms: f64,
    /// What the cache key was made of, one `name: value` per line.
    pub key: String,
}

impl AotFile {
    /// The facts a run records about its AOT code.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aot_file", self.path.display().to_string()),
            ("aot_bytes", self.bytes.to_string()),
            (
                "aot_cache",
                if self.reused { "reused" } else { "compiled" }.to_string(),
            ),
            ("aot_compile_ms", format!("{:.0}", self.compile_ms)),
            ("aot_key", self.key.replace('\n', "; ")),
        ]
    }
}

impl WasmEdgeCli {
    /// Compiles `module` (whose SHA-256 is `module_sha256`) with `wasmedge compile` into the
    /// cache directory, or reuses the file an identical compile wrote before.
    pub fn compile_aot(&self, module: &Path, module_sha256: &str) -> Result<AotFile, RuntimeError> {
        let unavailable = |reason: String| RuntimeError::Unavailable {
            runtime: "wasmedge-aot".into(),
            reason,
        };
        let det = self
            .detect()
            .map_err(|e| unavailable(format!("{e}: install WasmEdge 0.14+ to compile AOT code")))?;
        let dir = self
            .cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("wasmbench-wasmedge-aot"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let key = aot_cache_key(module_sha256, &det);
        let out = dir.join(format!("{}-aot.wasm", key.name()));
        let reused = out.is_file();
        let mut compile_ms = 0.0;
        if !reused {
            let tmp = crate::staging::staging_path(&out);
            let t0 = std::time::Instant::now();
            run_bounded(
                Command::new(&det.path)
                    .args(AOT_COMPILE_ARGS)
                    .arg(module)
                    .arg(&tmp),
                Duration::from_secs(300),
            )
            .map_err(|e| RuntimeError::Build {
                what: "AOT code with `wasmedge compile`".into(),
                detail: e,
            })?;
            compile_ms = t0.elapsed().as_secs_f64() * 1000.0;
            // What the key was made of, beside the file, for whoever wonders why a file was or
            // was not reused.
            let _ = std::fs::write(dir.join(format!("{}-aot.key", key.name())), &key.text);
            std::fs::rename(&tmp, &out).map_err(|e| {
                RuntimeError::io(format!("moving the AOT file to {}", out.display()), e)
            })?;
        }
        Ok(AotFile {
            bytes: std::fs::metadata(&out).map_or(0, |m| m.len()),
            path: out,
            reused,
            compile_ms,
            key: key.text,
        })
    }
}

/// `wasmedge compile`'s arguments before the input and output files: its defaults (`-O2`,
/// the host CPU), written out so they are part of the cache key.
const AOT_COMPILE_ARGS: &[&str] = &["compile", "--optimize", "2"];

/// What decides the code `wasmedge compile` writes, and so whether a cached file may be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AotCacheKey {
    /// One `name: value` line per input.
    text: String,
    /// SHA-256 of `text`, hex.
    digest: String,
}

impl AotCacheKey {
    /// The cache file's stem: module hash prefix and key digest prefix.
    fn name(&self) -> String {
        let module = self
            .text
            .lines()
            .find_map(|l| l.strip_prefix("module: "))
            .unwrap_or("");
        format!("{}-{}", &module[..16.min(module.len())], &self.digest[..16])
    }
}

/// The key of an AOT file: the module, the WasmEdge that compiles it (version, and the
/// program file itself: two builds of one version may use different LLVMs), the CPU it is
/// compiled for, and the compile options. Any change gives another file name, so a stale file is
/// never reused.
fn aot_cache_key(module_sha256: &str, det: &Detected) -> AotCacheKey {
    use sha2::{Digest, Sha256};
    let program = std::fs::metadata(&det.path).ok();
    let mtime = program
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let text = format!(
        "module: {module_sha256}\nwasmedge: {} {} ({} bytes, modified {mtime})\ncpu: {}\noptions: {}",
        det.path.display(),
        det.version,
        program.map_or(0, |m| m.len()),
        cpu_identity(),
        AOT_COMPILE_ARGS.join(" "),
    );
    let digest = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    AotCacheKey { text, digest }
}

/// The CPU model and feature flags, from `/proc/cpuinfo` (the first CPU's): what native code
/// compiled for this host may use.
fn cpu_identity() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map_or(String::new(), |(_, v)| v.trim().to_string())
    };
    format!("{} [{}]", field("model name"), field("flags"))
}

impl Runtime for WasmEdgeCli {
    fn info(&self) -> RuntimeInfo {
        let mut details = BTreeMap::new();
        details.insert("workload".into(), "WasmEdge socket build (sock_*)".into());
        RuntimeInfo {
            name: "wasmedge".into(),
            version: version_or_why(&self.detect(), &self.locator, "wasmedge"),
            mode: self.mode,
            target: Target::Wasip1,
            pooling: None,
            details,
        }
    }

    fn available(&self) -> Result<(), String> {
        if !matches!(self.mode, ExecMode::Interpreter | ExecMode::Aot) {
            return Err(format!(
                "wasmedge has no {} mode here: use interpreter or aot",
                self.mode
            ));
        }
        self.detect()
            .map(|_| ())
            .map_err(|e| format!("{e}: install WasmEdge 0.14+ to run this variant"))
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        let unavailable = |reason: String| RuntimeError::Unavailable {
            runtime: format!("wasmedge-{}", self.mode),
            reason,
        };
        self.available().map_err(unavailable)?;
        let det = self.detect().map_err(unavailable)?;
        if spec.artifact.target != Target::Wasip1 {
            return Err(RuntimeError::Config(
                "wasmedge runs the WasmEdge socket build (wasm32-wasip1, echo-wasmedge.wasm)"
                    .into(),
            ));
        }
        let mut wasm = spec.artifact.path.clone();
        let mut aot_details = Vec::new();
        if self.mode == ExecMode::Aot {
            let aot = self.compile_aot(&spec.artifact.path, &spec.artifact.sha256)?;
            aot_details = aot.details();
            wasm = aot.path;
        }
        let args = WasmEdgeCli::run_args(self.mode, spec, &wasm);
        let mut info = self.info();
        info.details.insert(
            "command".into(),
            format!("{} {}", det.path.display(), args.join(" ")),
        );
        for (k, v) in aot_details {
            info.details.insert(k.into(), v);
        }
        let mut cmd = Command::new(&det.path);
        cmd.args(&args);
        spawn_server(cmd, &format!("wasmedge-{}", self.mode), info, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(path: &Path, version: &str) -> Detected {
        Detected {
            path: path.to_path_buf(),
            version: version.into(),
        }
    }

    #[test]
    fn the_interpreter_is_forced_and_aot_runs_the_compiled_file() {
        let spec = LaunchSpec::new(crate::build::Artifact {
            target: Target::Wasip1,
            path: "/x/echo.wasm".into(),
            size_bytes: 0,
            build_time: Duration::ZERO,
            sha256: "00".repeat(32),
        });
        let i = WasmEdgeCli::run_args(ExecMode::Interpreter, &spec, Path::new("/x/echo.wasm"));
        assert_eq!(i[0], "--force-interpreter");
        assert_eq!(i.last().unwrap(), "/x/echo.wasm");
        let a = WasmEdgeCli::run_args(ExecMode::Aot, &spec, Path::new("/c/k-aot.wasm"));
        assert!(!a.iter().any(|x| x == "--force-interpreter"));
        assert!(a.windows(2).any(|w| w[0] == "--env" && w[1] == "PORT=0"));
    }

    #[test]
    fn every_input_of_the_aot_code_changes_the_cache_file() {
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("wasmedge");
        std::fs::write(&prog, b"one build").unwrap();
        let sha = "ab".repeat(32);
        let base = aot_cache_key(&sha, &detected(&prog, "0.14.1"));
        assert_eq!(base, aot_cache_key(&sha, &detected(&prog, "0.14.1")));
        assert!(base.name().starts_with(&sha[..16]));
        assert!(base.text.contains("options: compile --optimize 2"));
        assert!(base.text.contains("cpu: "));
        // Another module, another version, another program file of the same version.
        assert_ne!(
            base.name(),
            aot_cache_key(&"cd".repeat(32), &detected(&prog, "0.14.1")).name()
        );
        assert_ne!(
            base.name(),
            aot_cache_key(&sha, &detected(&prog, "0.14.2")).name()
        );
        std::fs::write(&prog, b"another build, same version").unwrap();
        assert_ne!(
            base.name(),
            aot_cache_key(&sha, &detected(&prog, "0.14.1")).name()
        );
    }
}
