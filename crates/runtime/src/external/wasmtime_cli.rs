//! The `wasmtime` CLI as a runtime: `wasmtime run` of the wasip2 socket build and `wasmtime
//! serve` of the `wasi:http` component, compiled at start (Cranelift, Winch, Pulley) or
//! precompiled with `wasmtime compile`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::detect::{
    DetectCache, Detected, Locator, parse_wasmtime_version, run_bounded, version_or_why,
};
use crate::build::{Artifact, Target};
use crate::error::RuntimeError;
use crate::inspect::{check_http_component, component_imports};
use crate::launch::{ExecMode, LaunchSpec, RunningServer, Runtime, RuntimeInfo, spawn_server};

/// Interfaces `wasmtime serve` links without `-S cli=y` (the `wasi:http/proxy` world).
const PROXY_WORLD_PREFIXES: &[&str] = &[
    "wasi:http/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
];

/// Which `wasmtime` subcommand serves the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmtimeCommand {
    /// `wasmtime run -S inherit-network`: the socket build (`echo.wasm`) opens its own listener.
    Run,
    /// `wasmtime serve`: the `wasi:http` component, an instance per request.
    Serve,
}

/// The `wasmtime` CLI as a runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmtimeCli {
    /// `run` or `serve`.
    pub command: WasmtimeCommand,
    /// The artifact's target (`run` only: `Wasip2`; `Wasip1` is reported unavailable).
    pub target: Target,
    /// [`ExecMode::CraneliftJit`], [`ExecMode::Winch`], [`ExecMode::Pulley`] (all compile at
    /// start, cache off) or [`ExecMode::Precompiled`] (`wasmtime compile` → `.cwasm`, then
    /// `--allow-precompiled`).
    pub mode: ExecMode,
    /// Where the program is.
    pub locator: Locator,
    /// Where `.cwasm` files go (default: `<temp>/wasmbench-cwasm`).
    pub cache_dir: Option<PathBuf>,
    /// `serve` only: `--max-instance-reuse-count` (1 = an instance per request, the default).
    pub instance_reuse: usize,
    detected: DetectCache,
}

impl WasmtimeCli {
    /// `wasmtime run` of the wasip2 socket build in `mode`.
    pub fn run(mode: ExecMode) -> WasmtimeCli {
        WasmtimeCli {
            command: WasmtimeCommand::Run,
            target: Target::Wasip2,
            mode,
            locator: Locator::default(),
            cache_dir: None,
            instance_reuse: 1,
            detected: DetectCache::default(),
        }
    }

    /// `wasmtime run` of the wasip1 build: kept as a named variant so reports say why it is
    /// missing.
    pub fn run_wasip1() -> WasmtimeCli {
        WasmtimeCli {
            target: Target::Wasip1,
            ..WasmtimeCli::run(ExecMode::CraneliftJit)
        }
    }

    /// `wasmtime serve` of the `wasi:http` component in `mode`.
    pub fn serve(mode: ExecMode) -> WasmtimeCli {
        WasmtimeCli {
            command: WasmtimeCommand::Serve,
            ..WasmtimeCli::run(mode)
        }
    }

    /// Uses the given locator (explicit program or search path).
    pub fn with_locator(mut self, locator: Locator) -> WasmtimeCli {
        self.locator = locator;
        self.detected = DetectCache::default();
        self
    }

    /// Finds `wasmtime` and its version.
    pub fn detect(&self) -> Result<Detected, String> {
        self.detected
            .get("wasmtime", &self.locator, parse_wasmtime_version)
    }

    /// The variant's name in reports, e.g. `wasmtime-run-winch`.
    pub fn variant(&self) -> String {
        let cmd = match self.command {
            WasmtimeCommand::Run => "run",
            WasmtimeCommand::Serve => "serve",
        };
        format!("wasmtime-{cmd}-{}", self.mode)
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("wasmbench-cwasm"))
    }

    /// Flags selecting the code generator (shared by `compile`, `run` and `serve`).
    fn codegen_flags(&self) -> Vec<String> {
        match self.mode {
            ExecMode::Winch => vec!["-C".into(), "compiler=winch".into()],
            ExecMode::Pulley => vec!["--target".into(), "pulley64".into()],
            // Precompiled: `wasmtime compile` with Cranelift; the others do not reach the CLI.
            ExecMode::CraneliftJit
            | ExecMode::Precompiled
            | ExecMode::Native
            | ExecMode::Interpreter
            | ExecMode::Aot
            | ExecMode::Unreported => vec!["-C".into(), "compiler=cranelift".into()],
        }
    }

    /// `wasmtime compile` into the cache unless the `.cwasm` is already there.
    fn precompile(
        &self,
        program: &Path,
        version: &str,
        artifact: &Artifact,
    ) -> Result<PathBuf, RuntimeError> {
        let dir = self.cache_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let sha = &artifact.sha256[..16.min(artifact.sha256.len())];
        let out = dir.join(format!("{sha}-wasmtime{version}-cranelift.cwasm"));
        if out.is_file() {
            return Ok(out);
        }
        // Compile to a temporary name and rename, so a crashed compile never leaves a
        // truncated file that later runs would trust.
        let tmp = crate::staging::staging_path(&out);
        let mut cmd = Command::new(program);
        cmd.arg("compile")
            .args(self.codegen_flags())
            .arg("-o")
            .arg(&tmp)
            .arg(&artifact.path);
        run_bounded(&mut cmd, Duration::from_secs(300)).map_err(|e| RuntimeError::Build {
            what: format!("{} with `wasmtime compile`", artifact.path.display()),
            detail: e,
        })?;
        std::fs::rename(&tmp, &out)
            .map_err(|e| RuntimeError::io(format!("moving the .cwasm to {}", out.display()), e))?;
        Ok(out)
    }

    /// The full command line `launch` runs for `spec` (after precompiling when needed).
    pub fn command_line(&self, spec: &LaunchSpec) -> Result<(PathBuf, Vec<String>), RuntimeError> {
        let det = self.detect().map_err(|reason| self.unavailable(reason))?;
        let mut args: Vec<String> = Vec::new();
        let mut wasm = spec.artifact.path.clone();
        match self.command {
            WasmtimeCommand::Run => {
                args.push("run".into());
                args.extend(["-S".into(), "inherit-network=y".into()]);
                let mut env = spec.env.clone();
                if !env.iter().any(|(k, _)| k == "PORT") {
                    env.push(("PORT".into(), spec.port.to_string()));
                }
                if !env.iter().any(|(k, _)| k == "ECHO_HOST") {
                    env.push(("ECHO_HOST".into(), spec.host.to_string()));
                }
                for (k, v) in env {
                    args.extend(["--env".into(), format!("{k}={v}")]);
                }
            }
            WasmtimeCommand::Serve => {
                for (k, v) in &spec.env {
                    args.extend(["--env".into(), format!("{k}={v}")]);
                }
                args.push("serve".into());
                let port = if spec.port == 0 {
                    free_port(spec.host)?
                } else {
                    spec.port
                };
                args.extend([
                    "--addr".into(),
                    SocketAddr::new(spec.host, port).to_string(),
                ]);
                args.extend(["-O".into(), "pooling-allocator=y".into()]);
                if self.instance_reuse != 1 {
                    args.extend([
                        "--max-instance-reuse-count".into(),
                        self.instance_reuse.to_string(),
                    ]);
                }
                let imports = component_imports(&spec.artifact.path)?;
                if imports
                    .iter()
                    .any(|i| !PROXY_WORLD_PREFIXES.iter().any(|p| i.starts_with(p)))
                {
                    // The component imports more than the proxy world (e.g.
                    // wasi:cli/environment); `-S cli=y` links all of WASI.
                    args.extend(["-S".into(), "cli=y".into()]);
                }
            }
        }
        for d in &spec.dirs {
            args.extend(["--dir".into(), format!("{}::{}", d.host.display(), d.guest)]);
        }
        if self.mode == ExecMode::Precompiled {
            wasm = self.precompile(&det.path, &det.version, &spec.artifact)?;
            args.push("--allow-precompiled".into());
        } else {
            args.extend(self.codegen_flags());
            // Compile at start every time: a warm cache would turn this into the precompiled
            // variant without saying so.
            args.extend(["-C".into(), "cache=n".into()]);
        }
        args.push(wasm.display().to_string());
        Ok((det.path, args))
    }

    fn unavailable(&self, reason: String) -> RuntimeError {
        RuntimeError::Unavailable {
            runtime: self.variant(),
            reason,
        }
    }
}

/// A free port on `host` for programs that cannot report the port they were given with port 0.
/// Another process could take it before the program binds it; the launch then fails loudly.
fn free_port(host: IpAddr) -> Result<u16, RuntimeError> {
    TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RuntimeError::io(format!("finding a free port on {host}"), e))
}

impl Runtime for WasmtimeCli {
    fn info(&self) -> RuntimeInfo {
        let mut details = BTreeMap::new();
        details.insert("variant".into(), self.variant());
        let detected = self.detect();
        if let Ok(d) = &detected {
            details.insert("program".into(), d.path.display().to_string());
        }
        let version = version_or_why(&detected, &self.locator, "wasmtime");
        match self.command {
            WasmtimeCommand::Run => {
                details.insert("workload".into(), "socket server (wasi:sockets)".into());
            }
            WasmtimeCommand::Serve => {
                details.insert("workload".into(), "wasi:http/proxy component".into());
                details.insert("instance_reuse".into(), self.instance_reuse.to_string());
            }
        }
        RuntimeInfo {
            name: "wasmtime-cli".into(),
            version,
            mode: self.mode,
            target: self.target,
            pooling: match self.command {
                WasmtimeCommand::Serve => Some(true),
                WasmtimeCommand::Run => None,
            },
            details,
        }
    }

    fn available(&self) -> Result<(), String> {
        if self.target == Target::Wasip1 {
            return Err(
                "wasmtime 48 no longer preopens listeners for wasip1 modules (`--tcplisten` was \
                 removed): run the wasip2 build, or the WasmEdge build under wasmedge"
                    .into(),
            );
        }
        if self.target != Target::Wasip2 {
            return Err(format!(
                "wasmtime runs Wasm, not a {} artifact",
                self.target
            ));
        }
        if !matches!(
            self.mode,
            ExecMode::CraneliftJit | ExecMode::Winch | ExecMode::Pulley | ExecMode::Precompiled
        ) {
            return Err(format!(
                "the wasmtime CLI has no {} mode: use cranelift-jit, winch, pulley or precompiled",
                self.mode
            ));
        }
        self.detect().map(|_| ()).map_err(|e| {
            format!("{e}: install it with `cargo install --locked wasmtime-cli@48.0.8`")
        })
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        self.available().map_err(|r| self.unavailable(r))?;
        if spec.artifact.target != self.target {
            return Err(RuntimeError::Config(format!(
                "{} runs a {} artifact, got {}",
                self.variant(),
                self.target,
                spec.artifact.target
            )));
        }
        if self.command == WasmtimeCommand::Serve {
            check_http_component(&spec.artifact)?;
        }
        let (program, args) = self.command_line(spec)?;
        let mut info = self.info();
        info.details.insert("command".into(), args.join(" "));
        info.details
            .insert("artifact_sha256".into(), spec.artifact.sha256.clone());
        let cmd = match self.command {
            WasmtimeCommand::Run => {
                let mut c = Command::new(&program);
                c.args(&args);
                c
            }
            WasmtimeCommand::Serve => {
                let addr = args
                    .iter()
                    .position(|a| a == "--addr")
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .unwrap_or_default();
                // `wasmtime serve` announces its address on stderr in its own words; the
                // wrapper states the address it was given, then `exec`s (same pid), so the
                // shared readiness logic (stdout line, then GET probe) applies unchanged.
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg("echo \"listening on $0\"; exec \"$@\"")
                    .arg(addr)
                    .arg(&program)
                    .args(&args);
                c
            }
        };
        spawn_server(cmd, &self.variant(), info, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_named_and_wasip1_is_unavailable_with_a_reason() {
        assert_eq!(
            WasmtimeCli::run(ExecMode::Winch).variant(),
            "wasmtime-run-winch"
        );
        assert_eq!(
            WasmtimeCli::serve(ExecMode::CraneliftJit).variant(),
            "wasmtime-serve-cranelift-jit"
        );
        let e = WasmtimeCli::run_wasip1().available().unwrap_err();
        assert!(e.contains("--tcplisten"), "{e}");
        let e = WasmtimeCli::run(ExecMode::Aot).available().unwrap_err();
        assert!(e.contains("no aot mode"), "{e}");
    }
}
