//! Bring your own service: the user's native command and Wasm build run through the same
//! pipeline as ours (cold start, warm-up, load, resources, reports).
//!
//! Contract: the service listens on the port given by `{port}` in the command line or by the
//! `PORT` environment variable (and `ECHO_HOST`/`HOST` for the address); it is ready when
//! `--ready-path` answers `200`, or, without one, when its port accepts a TCP connection.

use std::path::Path;

use crate::config::{CompareConfig, VariantSpec};
use crate::error::CompareError;

/// Name of the variant made from `--native-cmd`.
pub const NATIVE_CMD_VARIANT: &str = "native-cmd";

/// Replaces the variants of `cfg` with the user's builds, when any is given.
pub fn apply(
    cfg: &mut CompareConfig,
    native_cmd: Option<&str>,
    wasm: Option<&Path>,
    wasm_runtime: Option<&str>,
) -> Result<(), CompareError> {
    if native_cmd.is_none() && wasm.is_none() {
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
        let kind = wasmbench_runtime::build::wasm_kind(path)?;
        let runtime = match wasm_runtime {
            Some(r) => r.to_string(),
            None => match kind {
                wasmbench_runtime::WasmKind::Module => "wasmtime-wasip1".to_string(),
                wasmbench_runtime::WasmKind::Component => {
                    if is_http_proxy(path)? {
                        "wasi-http".to_string()
                    } else {
                        "wasmtime-wasip2".to_string()
                    }
                }
            },
        };
        variants.push(VariantSpec {
            name: format!("wasm-{runtime}"),
            runtime,
            target: String::new(),
            env: Vec::new(),
            artifact: Some(path.to_path_buf()),
            command: None,
        });
    }
    cfg.workload = "user service".into();
    cfg.variants = variants;
    Ok(())
}

/// Whether a component exports `wasi:http/incoming-handler` (a `wasi:http/proxy` service).
/// Export names are stored as plain strings in the component's export section, and only a
/// proxy exports the incoming handler (clients import `outgoing-handler`).
pub fn is_http_proxy(path: &Path) -> Result<bool, CompareError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CompareError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let needle = b"wasi:http/incoming-handler";
    Ok(bytes.windows(needle.len()).any(|w| w == needle))
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
