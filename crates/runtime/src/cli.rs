//! External Wasm runtimes driven through their command-line tools: `wasmtime run` and
//! `wasmtime serve` (Cranelift, Winch, Pulley, precompiled `.cwasm`), `wasmedge` (interpreter and
//! AOT) and `wasmer`.
//!
//! Each runtime finds its program on `PATH` (or at a given path), reads its version, and says in
//! one line why it cannot run when it cannot; `compare` reports that line instead of a result.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::artifact::{Artifact, BuildOptions, Target};
use crate::error::RuntimeError;
use crate::process::{RunningServer, spawn_server};
use crate::runtime::{ExecMode, LaunchSpec, Runtime, RuntimeInfo};
use crate::wasi_http::{check_http_component, component_imports};

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

/// How long `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to find a runtime's program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locator {
    /// An explicit program path; `None` searches the search path.
    pub program: Option<PathBuf>,
    /// Directories to search instead of `$PATH` (in `PATH` syntax).
    pub search_path: Option<OsString>,
}

impl Locator {
    /// Finds `name`: the explicit program if set, else the first executable `name` on the search
    /// path.
    pub fn find(&self, name: &str) -> Result<PathBuf, String> {
        if let Some(p) = &self.program {
            return if is_executable(p) {
                Ok(p.clone())
            } else {
                Err(format!(
                    "{} is not an executable file: pass the path of the {name} program",
                    p.display()
                ))
            };
        }
        let path = self
            .search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        find_in_path(name, &path).ok_or_else(|| format!("{name} not found on PATH"))
    }
}

/// The first executable `name` in the `PATH`-style list `path`.
pub fn find_in_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Parses `wasmtime --version` output: `wasmtime 48.0.8 (1b1e1a0 2025-10-20)` → `48.0.8`.
pub fn parse_wasmtime_version(out: &str) -> Option<String> {
    version_after(out, &["wasmtime", "wasmtime-cli"], false)
}

/// Parses `wasmedge --version` output → `0.14.1`. A real WasmEdge prints the path it was
/// invoked by first (`/usr/local/bin/wasmedge version 0.14.1`, or `wasmedge version 0.14.1`
/// when run by name), then a line per plugin (` (plugin "wasi_logging") version 0.1.0.0`).
pub fn parse_wasmedge_version(out: &str) -> Option<String> {
    version_after(out, &["wasmedge"], true)
}

/// Parses `wasmer --version` output: `wasmer 6.0.1 (a1b2c3d 2025-05-01)` → `6.0.1`.
pub fn parse_wasmer_version(out: &str) -> Option<String> {
    version_after(out, &["wasmer", "wasmer-cli"], false)
}

/// The version on the first line that starts with one of `names` — as a bare name or as the
/// last component of a path, since some programs print how they were invoked — followed by
/// the word `version` when `word_version` is set.
fn version_after(out: &str, names: &[&str], word_version: bool) -> Option<String> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let first = w.next()?;
        let program = first.rsplit('/').next().unwrap_or(first);
        if !names.iter().any(|x| program.eq_ignore_ascii_case(x)) {
            return None;
        }
        if word_version && w.next() != Some("version") {
            return None;
        }
        semverish(w.next()?)
    })
}

/// `v1.2.3-rc1` → `1.2.3-rc1`; anything not starting with `digit.` is refused.
fn semverish(v: &str) -> Option<String> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    (!major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().next().is_some_and(|b| b.is_ascii_digit()))
    .then(|| v.to_string())
}

/// A found program and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Where the program is.
    pub path: PathBuf,
    /// Its version, e.g. `48.0.8`.
    pub version: String,
}

/// Finds `name` and runs `<name> --version`, parsing the output with `parse`.
pub fn detect(
    name: &str,
    locator: &Locator,
    parse: fn(&str) -> Option<String>,
) -> Result<Detected, String> {
    let path = locator.find(name)?;
    let out = run_bounded(Command::new(&path).arg("--version"), VERSION_TIMEOUT)
        .map_err(|e| format!("`{} --version` failed: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out);
    let version = parse(&text).ok_or_else(|| {
        let printed: Vec<&str> = text.lines().take(3).collect();
        format!(
            "found {name} at {}, but cannot read its version from `--version`, which printed \
             {:?}",
            path.display(),
            printed.join(" / ")
        )
    })?;
    Ok(Detected { path, version })
}

/// Runs a short command with a deadline and returns its stdout; stderr goes into the error.
/// Both pipes are drained while the command runs, so a talkative program cannot block on a full
/// pipe and be mistaken for a hung one.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", timeout.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{status}: {}", crate::artifact::tail(&err, 5)))
    }
}

/// The version shown in a runtime's report line: the detected one, or why there is none.
fn version_or_why(detected: &Result<Detected, String>, locator: &Locator, name: &str) -> String {
    match detected {
        Ok(d) => d.version.clone(),
        Err(_) if locator.find(name).is_ok() => "unreadable".into(),
        Err(_) => "not found".into(),
    }
}

/// Remembers the detection result (programs do not change while a comparison runs).
#[derive(Debug, Clone, Default)]
struct DetectCache(Arc<OnceLock<Result<Detected, String>>>);

impl DetectCache {
    fn get(
        &self,
        name: &str,
        locator: &Locator,
        parse: fn(&str) -> Option<String>,
    ) -> Result<Detected, String> {
        self.0.get_or_init(|| detect(name, locator, parse)).clone()
    }
}

impl PartialEq for DetectCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

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
            | ExecMode::Aot => vec!["-C".into(), "compiler=cranelift".into()],
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
        let tmp = dir.join(format!("{sha}.{}.tmp", std::process::id()));
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
        spawn_server(
            cmd,
            &self.variant(),
            info,
            spec.cpu_set.as_deref(),
            &spec.ready_path,
            spec.startup_timeout,
        )
    }
}

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

    /// The arguments that run `wasm` with the spec's environment.
    pub fn run_args(spec: &LaunchSpec, wasm: &Path) -> Vec<String> {
        let mut a = Vec::new();
        let mut env = spec.env.clone();
        env.push(("PORT".into(), spec.port.to_string()));
        env.push(("ECHO_HOST".into(), spec.host.to_string()));
        for (k, v) in env {
            a.extend(["--env".into(), format!("{k}={v}")]);
        }
        a.push(wasm.display().to_string());
        a
    }
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
        if self.mode == ExecMode::Aot {
            let dir = self
                .cache_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("wasmbench-wasmedge-aot"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
            let sha = &spec.artifact.sha256[..16.min(spec.artifact.sha256.len())];
            let out = dir.join(format!("{sha}-wasmedge{}-aot.wasm", det.version));
            if !out.is_file() {
                let tmp = dir.join(format!("{sha}.{}.tmp.wasm", std::process::id()));
                run_bounded(
                    Command::new(&det.path)
                        .arg("compile")
                        .arg(&spec.artifact.path)
                        .arg(&tmp),
                    Duration::from_secs(300),
                )
                .map_err(|e| RuntimeError::Build {
                    what: "AOT code with `wasmedge compile`".into(),
                    detail: e,
                })?;
                std::fs::rename(&tmp, &out).map_err(|e| {
                    RuntimeError::io(format!("moving the AOT file to {}", out.display()), e)
                })?;
            }
            wasm = out;
        }
        let args = WasmEdgeCli::run_args(spec, &wasm);
        let mut info = self.info();
        info.details.insert("command".into(), args.join(" "));
        let mut cmd = Command::new(&det.path);
        cmd.args(&args);
        spawn_server(
            cmd,
            &format!("wasmedge-{}", self.mode),
            info,
            spec.cpu_set.as_deref(),
            &spec.ready_path,
            spec.startup_timeout,
        )
    }
}

/// The `wasmer` CLI. Detected and versioned, but it cannot serve the workload: Wasmer offers
/// sockets to guests only through WASIX, and the workload has no WASIX build (its socket builds
/// use `wasi:sockets` (wasip2) and WasmEdge's `sock_*` functions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WasmerCli {
    /// Where the program is.
    pub locator: Locator,
    detected: DetectCache,
}

/// Why no Wasmer variant runs even when `wasmer` is installed.
pub const WASMER_NO_WASIX_BUILD: &str = "wasmer serves sockets only to WASIX guests (`wasmer run --net`), and the \
     workload has no WASIX build: its socket builds target wasi:sockets (wasip2) and WasmEdge's \
     sock_* functions";

impl WasmerCli {
    /// Uses the given locator.
    pub fn with_locator(mut self, locator: Locator) -> WasmerCli {
        self.locator = locator;
        self.detected = DetectCache::default();
        self
    }

    /// Finds `wasmer` and its version.
    pub fn detect(&self) -> Result<Detected, String> {
        self.detected
            .get("wasmer", &self.locator, parse_wasmer_version)
    }
}

impl Runtime for WasmerCli {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "wasmer".into(),
            version: version_or_why(&self.detect(), &self.locator, "wasmer"),
            mode: ExecMode::CraneliftJit,
            target: Target::Wasip1,
            pooling: None,
            details: BTreeMap::new(),
        }
    }

    fn available(&self) -> Result<(), String> {
        let det = self
            .detect()
            .map_err(|e| format!("{e}: install Wasmer 6+ to detect it"))?;
        Err(format!(
            "wasmer {} found, but {WASMER_NO_WASIX_BUILD}",
            det.version
        ))
    }

    fn launch(&self, _spec: &LaunchSpec) -> Result<RunningServer, RuntimeError> {
        Err(RuntimeError::Unavailable {
            runtime: "wasmer".into(),
            reason: self.available().err().unwrap_or_default(),
        })
    }
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
        crate::artifact::ensure_rustup_target(&opts.workspace, t)?;
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
                crate::artifact::tail(&out.stderr, 30)
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

/// Every external CLI variant, in report order: wasmtime run (Cranelift, Winch, Pulley,
/// precompiled), wasmtime run wasip1 (unavailable, with the reason), wasmtime serve, WasmEdge
/// interpreter and AOT, Wasmer.
pub fn all_cli_runtimes() -> Vec<Box<dyn Runtime>> {
    vec![
        Box::new(WasmtimeCli::run(ExecMode::CraneliftJit)),
        Box::new(WasmtimeCli::run(ExecMode::Winch)),
        Box::new(WasmtimeCli::run(ExecMode::Pulley)),
        Box::new(WasmtimeCli::run(ExecMode::Precompiled)),
        Box::new(WasmtimeCli::run_wasip1()),
        Box::new(WasmtimeCli::serve(ExecMode::CraneliftJit)),
        Box::new(WasmEdgeCli::new(ExecMode::Interpreter)),
        Box::new(WasmEdgeCli::new(ExecMode::Aot)),
        Box::new(WasmerCli::default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recorded_version_strings() {
        assert_eq!(
            parse_wasmtime_version("wasmtime 48.0.8 (6c9ef2a36 2025-11-20)\n").as_deref(),
            Some("48.0.8")
        );
        assert_eq!(
            parse_wasmtime_version("wasmtime-cli 21.0.1\n").as_deref(),
            Some("21.0.1")
        );
        assert_eq!(
            parse_wasmedge_version(
                "wasmedge version 0.14.1\n (plugin \"wasi_logging\") version 0.1.0.0\n"
            )
            .as_deref(),
            Some("0.14.1")
        );
        assert_eq!(
            parse_wasmer_version("wasmer 6.0.1 (a5d4e9a 2025-05-30)\n").as_deref(),
            Some("6.0.1")
        );
        assert_eq!(parse_wasmtime_version("error: unknown flag"), None);
        assert_eq!(parse_wasmtime_version("wasmtime nightly"), None);
        assert_eq!(parse_wasmedge_version("wasmedge 0.14.1"), None);
        // Real WasmEdge output: the invocation path first, then plugin lines.
        assert_eq!(
            parse_wasmedge_version(
                "/usr/local/bin/wasmedge version 0.14.1\n (plugin \"wasi_logging\") version 0.1.0.0\n"
            )
            .as_deref(),
            Some("0.14.1")
        );
        assert_eq!(
            parse_wasmtime_version("/opt/bin/wasmtime 48.0.8 (6c9ef2a36 2025-11-20)").as_deref(),
            Some("48.0.8")
        );
        assert_eq!(
            parse_wasmedge_version("/usr/bin/notwasmedge version 0.14.1"),
            None
        );
        assert_eq!(parse_wasmer_version(""), None);
    }

    #[test]
    fn locator_reports_missing_and_non_executable_programs() {
        let dir = tempfile::tempdir().unwrap();
        let l = Locator {
            program: None,
            search_path: Some(dir.path().as_os_str().to_owned()),
        };
        assert_eq!(
            l.find("wasmtime").unwrap_err(),
            "wasmtime not found on PATH"
        );
        let f = dir.path().join("wasmtime");
        std::fs::write(&f, "").unwrap();
        // Not executable: skipped on the search path, refused when named explicitly.
        assert!(l.find("wasmtime").is_err());
        let e = Locator {
            program: Some(f.clone()),
            search_path: None,
        }
        .find("wasmtime")
        .unwrap_err();
        assert!(e.contains("not an executable"), "{e}");
    }

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
        assert_eq!(all_cli_runtimes().len(), 9);
    }
}
