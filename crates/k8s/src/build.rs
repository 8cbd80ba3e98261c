//! Builds the binaries that go into the images, by running cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The Rust target for a static Linux executable that runs `FROM scratch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticTarget {
    /// `x86_64-unknown-linux-musl`: static by default.
    Musl,
    /// `x86_64-unknown-linux-gnu` with `-C target-feature=+crt-static`: a static glibc build,
    /// used when the musl target is not installed.
    GnuCrtStatic,
}

impl StaticTarget {
    /// The target triple.
    pub fn triple(self) -> &'static str {
        match self {
            StaticTarget::Musl => "x86_64-unknown-linux-musl",
            StaticTarget::GnuCrtStatic => "x86_64-unknown-linux-gnu",
        }
    }

    /// Musl when `rustup` lists it as installed for the active toolchain, else static glibc.
    pub fn detect(workspace: &Path) -> StaticTarget {
        let out = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .current_dir(workspace)
            .output();
        match out {
            Ok(o)
                if String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == "x86_64-unknown-linux-musl") =>
            {
                StaticTarget::Musl
            }
            _ => StaticTarget::GnuCrtStatic,
        }
    }
}

/// One `cargo build` invocation.
#[derive(Debug, Clone)]
pub struct CargoBuild {
    /// Workspace root (where `Cargo.toml` is).
    pub workspace: PathBuf,
    /// Cargo target directory.
    pub target_dir: PathBuf,
    /// Package (`-p`).
    pub package: String,
    /// Binary name (`--bin`), also the output file's stem; for a [`CargoBuild::lib`] build
    /// only the stem (the library's name, e.g. `wasmbench_echo_http`).
    pub bin: String,
    /// Build the package's library (`--lib`: a `cdylib` component) instead of a binary.
    pub lib: bool,
    /// Target triple; always passed so RUSTFLAGS do not reach build scripts and proc-macros.
    pub target: String,
    /// Cargo profile, e.g. `artifact`.
    pub profile: String,
    /// Extra RUSTFLAGS for the target only.
    pub rustflags: Vec<String>,
    /// Build without the package's default features.
    pub no_default_features: bool,
}

impl CargoBuild {
    /// Where cargo puts the binary.
    pub fn output(&self) -> PathBuf {
        let ext = if self.target.starts_with("wasm32") {
            ".wasm"
        } else {
            ""
        };
        self.target_dir
            .join(&self.target)
            .join(&self.profile)
            .join(format!("{}{ext}", self.bin))
    }

    /// Runs cargo and returns the binary's path.
    pub fn run(&self) -> Result<PathBuf, Error> {
        let what = format!("{} for {}", self.bin, self.target);
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&self.workspace)
            .args(["build", "--quiet", "-p", &self.package])
            .args(if self.lib {
                vec!["--lib"]
            } else {
                vec!["--bin", &self.bin]
            })
            .args(["--profile", &self.profile, "--target", &self.target])
            .args(self.no_default_features.then_some("--no-default-features"))
            .env("CARGO_TARGET_DIR", &self.target_dir)
            // Flags from an outer build must not leak into this one.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        if !self.rustflags.is_empty() {
            let var = format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                self.target.to_uppercase().replace(['-', '.'], "_")
            );
            cmd.env(var, self.rustflags.join(" "));
        }
        let out = cmd.output().map_err(|e| Error::Build {
            what: what.clone(),
            reason: format!("cannot run cargo: {e}"),
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let reason = stderr
                .lines()
                .rfind(|l| l.starts_with("error"))
                .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
                .unwrap_or("cargo failed without output")
                .to_owned();
            return Err(Error::Build { what, reason });
        }
        let path = self.output();
        if !path.is_file() {
            return Err(Error::Build {
                what,
                reason: format!("cargo succeeded but {} is missing", path.display()),
            });
        }
        Ok(path)
    }
}

fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Builds `package`'s `bin` as a static Linux executable with `profile`. Uses musl when the
/// target is installed (and, if `needs_c_compiler`, `musl-gcc` exists), and falls back to
/// static glibc if that is not possible or the musl build fails.
pub fn build_static(
    workspace: &Path,
    target_dir: &Path,
    package: &str,
    bin: &str,
    profile: &str,
    needs_c_compiler: bool,
    no_default_features: bool,
) -> Result<(PathBuf, StaticTarget), Error> {
    let mk = |t: StaticTarget| CargoBuild {
        workspace: workspace.to_owned(),
        target_dir: target_dir.to_owned(),
        package: package.to_owned(),
        bin: bin.to_owned(),
        lib: false,
        target: t.triple().to_owned(),
        profile: profile.to_owned(),
        rustflags: match t {
            StaticTarget::Musl => Vec::new(),
            StaticTarget::GnuCrtStatic => {
                vec!["-C".to_owned(), "target-feature=+crt-static".to_owned()]
            }
        },
        no_default_features,
    };
    // Crates with C code (ring, in the CLI's TLS stack) need a musl C compiler for the musl
    // target; without one that build fails late, so skip straight to static glibc.
    let musl_ok = !needs_c_compiler || command_exists("musl-gcc");
    if musl_ok
        && StaticTarget::detect(workspace) == StaticTarget::Musl
        && let Ok(p) = mk(StaticTarget::Musl).run()
    {
        return Ok((p, StaticTarget::Musl));
    }
    let p = mk(StaticTarget::GnuCrtStatic).run()?;
    Ok((p, StaticTarget::GnuCrtStatic))
}

/// Builds the echo workload as a static native binary (`wasmbench-echo`, profile `artifact`).
pub fn build_native_echo(workspace: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    build_static(
        workspace,
        target_dir,
        "wasmbench-echo",
        "echo",
        "artifact",
        false,
        false,
    )
    .map(|r| r.0)
}

/// Builds the echo workload for a Wasm target (`wasm32-wasip2` or `wasm32-wasip1`).
pub fn build_wasm_echo(
    workspace: &Path,
    target_dir: &Path,
    target: &str,
) -> Result<PathBuf, Error> {
    CargoBuild {
        workspace: workspace.to_owned(),
        target_dir: target_dir.to_owned(),
        package: "wasmbench-echo".to_owned(),
        bin: "echo".to_owned(),
        target: target.to_owned(),
        profile: "artifact".to_owned(),
        rustflags: Vec::new(),
        no_default_features: false,
        lib: false,
    }
    .run()
}

/// Builds the echo as a `wasi:http` component for `wasm32-wasip2`: WASI 0.2
/// (`wasmbench-echo-http`) or, with `p3`, WASI 0.3 (`wasmbench-echo-http-p3`).
pub fn build_wasi_http_echo(
    workspace: &Path,
    target_dir: &Path,
    p3: bool,
) -> Result<PathBuf, Error> {
    let (package, stem) = if p3 {
        ("wasmbench-echo-http-p3", "wasmbench_echo_http_p3")
    } else {
        ("wasmbench-echo-http", "wasmbench_echo_http")
    };
    CargoBuild {
        workspace: workspace.to_owned(),
        target_dir: target_dir.to_owned(),
        package: package.to_owned(),
        bin: stem.to_owned(),
        lib: true,
        target: "wasm32-wasip2".to_owned(),
        profile: "artifact".to_owned(),
        rustflags: Vec::new(),
        no_default_features: false,
    }
    .run()
}

/// Builds the `wasmbench` CLI as a static binary for the load Jobs: the `release` profile, and
/// without the `local` feature (the embedded Wasmtime and the local runtimes), which a load
/// Job never uses; that keeps this build a fraction of a full one.
pub fn build_wasmbench(workspace: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    build_static(
        workspace,
        target_dir,
        "wasmbench",
        "wasmbench",
        "release",
        true,
        true,
    )
    .map(|r| r.0)
}

/// Builds the WasmEdge-socket echo (`wasmbench-echo-wasmedge`, bin `echo-wasmedge`) for
/// `wasm32-wasip1`. Any other `.wasm` can be passed to the image builder instead.
pub fn build_wasmedge_echo(workspace: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    CargoBuild {
        workspace: workspace.to_owned(),
        target_dir: target_dir.to_owned(),
        package: "wasmbench-echo-wasmedge".to_owned(),
        bin: "echo-wasmedge".to_owned(),
        target: "wasm32-wasip1".to_owned(),
        profile: "artifact".to_owned(),
        rustflags: Vec::new(),
        no_default_features: false,
        lib: false,
    }
    .run()
}
