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
                    WasiService::HttpService => "wasi-http-p3",
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
    cfg.workload = wasmbench_vocab::USER_SERVICE_WORKLOAD.into();
    cfg.variants = variants;
    Ok(())
}

/// Runs the user's native command line as the server. The command is started through `sh` so
/// quoting works as in a shell; `exec` keeps the service itself as the measured process.
#[derive(Debug, Clone)]
pub struct CommandRuntime {
    command: String,
    program: std::path::PathBuf,
    /// What the program file is, as read from it: `ELF executable`, `script for …`.
    kind: String,
    /// The first line the program prints for `--version`, asked only of a program that runs a
    /// file the command names (an interpreter): a server binary might serve on `--version`.
    version: Option<String>,
}

/// How long an interpreter may take to print its version.
const VERSION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What `program` is, from its first bytes.
fn program_kind(program: &std::path::Path) -> String {
    use std::io::Read;
    let mut head = [0u8; 128];
    let n = std::fs::File::open(program)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") {
        "ELF executable".into()
    } else if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        format!("script for `{}`", String::from_utf8_lossy(line).trim())
    } else {
        "file of another kind (neither ELF nor a #! script)".into()
    }
}

/// The first non-empty line `program --version` prints (stdout, else stderr), within
/// [`VERSION_WAIT`]; `None` when it prints nothing, fails or takes longer.
fn program_version(program: &std::path::Path) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + VERSION_WAIT;
    // Bounded by the deadline: a program that does not end is killed.
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    [out.stdout, out.stderr].iter().find_map(|b| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(120).collect())
    })
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
        // A command whose next word is a file runs it with the program: an interpreter.
        let runs_a_file = command
            .split_whitespace()
            .nth(1)
            .is_some_and(|w| std::path::Path::new(w).is_file());
        Ok(CommandRuntime {
            command: command.to_string(),
            kind: program_kind(&program),
            version: runs_a_file.then(|| program_version(&program)).flatten(),
            program,
        })
    }

    /// The command line as the user gave it.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The program file, the variant's artifact to launch.
    pub fn artifact(&self) -> Result<wasmbench_runtime::Artifact, wasmbench_runtime::RuntimeError> {
        wasmbench_runtime::Artifact::from_path(wasmbench_runtime::Target::Native, &self.program)
    }

    /// Whether the report states the program file (its size, its hash): only when the user
    /// named it by its path and it is an executable of its own, not for a program found on
    /// PATH (an interpreter or a tool, whose size says nothing of the service).
    pub fn states_artifact(&self) -> bool {
        let named = self
            .command
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('/'));
        named && self.kind == "ELF executable"
    }
}

impl wasmbench_runtime::Runtime for CommandRuntime {
    fn info(&self) -> wasmbench_runtime::RuntimeInfo {
        let mut details = std::collections::BTreeMap::new();
        details.insert("command".into(), self.command.clone());
        details.insert("program".into(), self.program.display().to_string());
        details.insert("program_kind".into(), self.kind.clone());
        if let Some(v) = &self.version {
            details.insert("program_version".into(), v.clone());
        }
        wasmbench_runtime::RuntimeInfo {
            name: "native-cmd".into(),
            version: self
                .version
                .clone()
                .unwrap_or_else(|| "user command".into()),
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
