//! The native runtime: the workload binary as an ordinary process.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;

use crate::build::{Target, default_workspace};
use crate::error::RuntimeError;
use crate::launch::{ExecMode, LaunchSpec, RunningServer, Runtime, RuntimeInfo, spawn_server};

/// Runs the native `echo` executable with `PORT`/`ECHO_HOST` (plus the spec's environment).
#[derive(Debug, Clone, Default)]
pub struct Native;

/// `rustc --version` of the toolchain that builds the workload (`unknown` without rustc).
pub fn rustc_version() -> String {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .current_dir(default_workspace())
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| wasmbench_vocab::UNKNOWN.into())
    })
    .clone()
}

impl Runtime for Native {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "native".into(),
            version: rustc_version(),
            mode: ExecMode::Native,
            target: Target::Native,
            pooling: None,
            details: BTreeMap::new(),
        }
    }

    fn available(&self) -> Result<(), String> {
        Ok(())
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        if spec.artifact.target != Target::Native {
            return Err(RuntimeError::Config(format!(
                "the native runtime runs native executables, not a {} artifact; use the wasmtime \
                 runtime for Wasm",
                spec.artifact.target
            )));
        }
        let mut cmd = Command::new(&spec.artifact.path);
        cmd.env("PORT", spec.port.to_string())
            .env("ECHO_HOST", spec.host.to_string())
            .envs(spec.env.iter().map(|(k, v)| (k, v)));
        let mut info = self.info();
        info.details
            .insert("artifact_sha256".into(), spec.artifact.sha256.clone());
        spawn_server(cmd, "native", info, spec)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::build::Artifact;

    #[test]
    fn wasm_artifacts_are_refused_with_the_runtime_to_use() {
        let spec = LaunchSpec::new(Artifact {
            target: Target::Wasip2,
            path: "/x/echo.wasm".into(),
            size_bytes: 0,
            sha256: String::new(),
            build_time: Duration::ZERO,
        });
        let e = Native.launch(&spec).unwrap_err();
        assert!(matches!(e, RuntimeError::Config(_)), "{e:?}");
        assert!(e.to_string().contains("wasmtime runtime"), "{e}");
    }
}
