//! Bring your own service: the user's native command and Wasm build run through the same
//! pipeline as ours (cold start, warm-up, load, resources, reports).
//!
//! Contract: the service listens on the port given by `{port}` in the command line or by the
//! `PORT` environment variable (and `ECHO_HOST`/`HOST` for the address); it is ready when
//! `--ready-path` answers `200`, or, without one, when its port accepts a TCP connection.

use std::path::Path;

use wasmbench_runtime::Target;
use wasmbench_runtime::inspect::WasiService;

use crate::config::{CompareConfig, VariantSpec};
use crate::error::CompareError;

/// Name of the variant made from `--native-cmd`.
pub const NATIVE_CMD_VARIANT: &str = "native-cmd";

/// Replaces the variants of `cfg` with the user's builds, when any is given: the native
/// command, and the `.wasm` under each of `wasm_runtimes` (variant names; `all` for every
/// variant that runs this kind of `.wasm` and is installed here; none: the embedded host
/// that runs this kind).
pub fn apply(
    cfg: &mut CompareConfig,
    native_cmd: Option<&str>,
    wasm: Option<&Path>,
    wasm_runtimes: &[String],
) -> Result<(), CompareError> {
    if native_cmd.is_none() && wasm.is_none() {
        if !wasm_runtimes.is_empty() {
            return Err(CompareError::Invalid(
                "--wasm-runtime chooses the runtimes of --wasm: give the .wasm file with --wasm"
                    .into(),
            ));
        }
        return Ok(());
    }
    let mut variants = Vec::new();
    if let Some(cmd) = native_cmd {
        if cmd.trim().is_empty() {
            return Err(CompareError::Invalid(
                "--native-cmd is empty: give the command that starts your service".into(),
            ));
        }
        variants.push(VariantSpec {
            name: NATIVE_CMD_VARIANT.into(),
            runtime: NATIVE_CMD_VARIANT.into(),
            target: "native".into(),
            env: Vec::new(),
            artifact: None,
            command: Some(cmd.to_string()),
        });
    }
    if let Some(path) = wasm {
        let service = wasmbench_runtime::inspect::check_wasi_service(path)?;
        let fits = crate::variants::variants_for(service);
        let mut runtimes: Vec<String> = Vec::new();
        for r in wasm_runtimes.iter().map(|r| r.trim()) {
            if r == "all" {
                cfg.skip_unavailable = true;
                runtimes.extend(fits.iter().map(|f| f.to_string()));
                continue;
            }
            let known = crate::variants::resolve(&crate::config::variant(r))?;
            if !known.target.is_wasm() {
                return Err(CompareError::Invalid(format!(
                    "{r} runs wasmbench's own native build, not your .wasm; give your native \
                     build with --native-cmd, and Wasm runtimes with --wasm-runtime (one of: {})",
                    fits.join(", ")
                )));
            }
            runtimes.push(r.to_string());
        }
        // By default the cached-code host of each kind: a component compiled once, its
        // later cold starts load the code (a 15 MB interpreter component compiles for 15 s).
        if runtimes.is_empty() && wasm_runtimes.is_empty() {
            runtimes.push(
                match service {
                    WasiService::Command(Target::Wasip1) => "wasmtime-wasip1",
                    WasiService::Command(_) => "wasmtime-wasip2",
                    WasiService::HttpProxy => "wasi-http-precompiled",
                }
                .to_string(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for runtime in runtimes.into_iter().filter(|r| seen.insert(r.clone())) {
            variants.push(VariantSpec {
                name: format!("wasm-{runtime}"),
                runtime,
                target: String::new(),
                env: Vec::new(),
                artifact: Some(path.to_path_buf()),
                command: None,
            });
        }
    }
    cfg.workload = "user service".into();
    cfg.variants = variants;
    Ok(())
}

/// Runs the user's native command line as the server. The command is started through `sh` so
/// quoting works as in a shell; `exec` keeps the service itself as the measured process.
#[derive(Debug, Clone)]
pub struct CommandRuntime {
    command: String,
    program: std::path::PathBuf,
}

impl CommandRuntime {
    /// Checks the command names a program that exists.
    pub fn new(command: &str) -> Result<CommandRuntime, CompareError> {
        let first = command.split_whitespace().next().unwrap_or_default();
        let program = if first.contains('/') {
            std::path::PathBuf::from(first)
        } else {
            std::env::var_os("PATH")
                .and_then(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(first))
                        .find(|p| p.is_file())
                })
                .unwrap_or_else(|| std::path::PathBuf::from(first))
        };
        if !program.is_file() {
            return Err(CompareError::Invalid(format!(
                "--native-cmd: {} is not an executable file; give a path or a program on PATH",
                program.display()
            )));
        }
        Ok(CommandRuntime {
            command: command.to_string(),
            program,
        })
    }

    /// The command line as the user gave it.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The program file, recorded as the variant's artifact.
    pub fn artifact(&self) -> Result<wasmbench_runtime::Artifact, wasmbench_runtime::RuntimeError> {
        wasmbench_runtime::Artifact::from_path(wasmbench_runtime::Target::Native, &self.program)
    }
}

impl wasmbench_runtime::Runtime for CommandRuntime {
    fn info(&self) -> wasmbench_runtime::RuntimeInfo {
        let mut details = std::collections::BTreeMap::new();
        details.insert("command".into(), self.command.clone());
        wasmbench_runtime::RuntimeInfo {
            name: "native-cmd".into(),
            version: "user command".into(),
            mode: wasmbench_runtime::ExecMode::Native,
            target: wasmbench_runtime::Target::Native,
            pooling: None,
            details,
        }
    }

    fn available(&self) -> Result<(), String> {
        Ok(())
    }

    fn launch(
        &self,
        spec: &wasmbench_runtime::LaunchSpec,
    ) -> Result<wasmbench_runtime::RunningServer, wasmbench_runtime::RuntimeError> {
        let port = match spec.port {
            0 => std::net::TcpListener::bind((spec.host, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| wasmbench_runtime::RuntimeError::io("picking a free port", e))?,
            p => p,
        };
        let command = self.command.replace("{port}", &port.to_string());
        // The service may not announce its address; the shell does it for it, then becomes
        // the service, and readiness is confirmed over HTTP.
        let script = format!("echo \"listening on {}:{port}\"; exec {command}", spec.host);
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .env("PORT", port.to_string())
            .env("HOST", spec.host.to_string())
            .env("ECHO_HOST", spec.host.to_string())
            .envs(spec.env.iter().map(|(k, v)| (k, v)));
        wasmbench_runtime::launch::spawn_server(cmd, "native-cmd", self.info(), spec)
    }
}
