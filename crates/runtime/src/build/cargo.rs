//! Building the workloads with cargo: the echo service for every target, its `wasi:http` and
//! WasmEdge variants, and any other workspace package a test or a runtime needs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::artifact::{Artifact, Target};
use crate::error::{RuntimeError, output_tail};

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
    build_workload("wasmbench-echo", Some("echo"), file, target, opts)
}

/// Builds `wasmbench-echo-http` for `wasm32-wasip2` and returns the component.
pub fn build_echo_http(opts: &BuildOptions) -> Result<Artifact, RuntimeError> {
    build_workload(
        "wasmbench-echo-http",
        None,
        "wasmbench_echo_http.wasm",
        Target::Wasip2,
        opts,
    )
}

/// Builds `wasmbench-echo-http-p3` (the same routes as a `wasi:http@0.3.0` service) for
/// `wasm32-wasip2` and returns the component.
pub fn build_echo_http_p3(opts: &BuildOptions) -> Result<Artifact, RuntimeError> {
    build_workload(
        "wasmbench-echo-http-p3",
        None,
        "wasmbench_echo_http_p3.wasm",
        Target::Wasip2,
        opts,
    )
}

/// Builds `wasmbench-echo-wasmedge` for `wasm32-wasip1` (WasmEdge's socket ABI).
pub fn build_echo_wasmedge(opts: &BuildOptions) -> Result<Artifact, RuntimeError> {
    build_workload(
        "wasmbench-echo-wasmedge",
        Some("echo-wasmedge"),
        "echo-wasmedge.wasm",
        Target::Wasip1,
        opts,
    )
}

/// Builds a workload package with cargo (profile from `opts`, into `opts.target_dir()`) and
/// returns `<target dir>/<triple>/<profile>/<file>` as an [`Artifact`].
pub fn build_workload(
    package: &str,
    bin: Option<&str>,
    file: &str,
    target: Target,
    opts: &BuildOptions,
) -> Result<Artifact, RuntimeError> {
    let triple = target.triple();
    let what = format!("{package} for {}", triple.unwrap_or("the host"));
    // rustup does not add missing targets by itself here (RUSTUP_AUTO_INSTALL=0).
    if let Some(t) = triple {
        ensure_rustup_target(&opts.workspace, t)?;
    }
    let target_dir = opts.target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&opts.workspace)
        .args(["build", "-p", package, "--profile"])
        .arg(&opts.profile)
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the outer build must not leak into the workload.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(b) = bin {
        cmd.args(["--bin", b]);
    }
    if let Some(t) = triple {
        cmd.args(["--target", t]);
    }
    if opts.offline {
        cmd.arg("--offline");
    }
    let started = Instant::now();
    let out = cmd.output().map_err(|e| RuntimeError::Build {
        what: what.clone(),
        detail: format!(
            "cannot run {}: {e}; is cargo on PATH?",
            cargo.to_string_lossy()
        ),
    })?;
    let build_time = started.elapsed();
    if !out.status.success() {
        return Err(RuntimeError::Build {
            what,
            detail: format!(
                "cargo {} (is the target installed? `rustup target add {}`):\n{}",
                out.status,
                triple.unwrap_or("<host>"),
                output_tail(&out.stderr, 30)
            ),
        });
    }
    let mut path = target_dir;
    if let Some(t) = triple {
        path.push(t);
    }
    path.push(&opts.profile);
    path.push(file);
    let mut art = Artifact::from_path(target, &path)?;
    art.build_time = build_time;
    Ok(art)
}

fn ensure_rustup_target(workspace: &Path, triple: &str) -> Result<(), RuntimeError> {
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
            output_tail(&out.stderr, 10)
        )));
    }
    Ok(())
}
