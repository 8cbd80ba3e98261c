//! The `wasmedge` program the WasmEdge tests run: the real one when it is on `PATH`, else a
//! stand-in script with the same command-line contract that runs the native echo, so the
//! launcher, the AOT step and every byte on the wire are still exercised where WasmEdge cannot
//! be installed. Each test prints which one it used.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wasmbench_runtime::build::build_echo_wasmedge;
use wasmbench_runtime::external::{Locator, WasmEdgeCli, find_in_path};
use wasmbench_runtime::{Artifact, BuildOptions, ExecMode, LaunchSpec, RunningServer, Runtime};

/// The `wasmedge` under test.
pub struct WasmEdgeProgram {
    /// Where it is.
    pub path: PathBuf,
    /// Whether it is WasmEdge itself (`false`: the stand-in).
    pub real: bool,
    /// Where AOT files go: a directory of this test binary's own, so a stand-in's "AOT" file
    /// (a copy of the module) never lands in the cache a real WasmEdge of the same version reads.
    pub aot_dir: PathBuf,
    /// Keeps the stand-in and the AOT directory for the test binary's lifetime.
    _dir: tempfile::TempDir,
}

impl WasmEdgeProgram {
    /// One line saying what runs, for the test's output.
    pub fn describe(&self) -> String {
        if self.real {
            format!("real WasmEdge at {}", self.path.display())
        } else {
            format!(
                "stand-in {} (no wasmedge on PATH): WasmEdge 0.14.1's command line, serving \
                 with the NATIVE echo",
                self.path.display()
            )
        }
    }

    /// The runtime in `mode` with this program.
    pub fn runtime(&self, mode: ExecMode) -> WasmEdgeCli {
        let mut rt = WasmEdgeCli::new(mode).with_locator(Locator {
            program: Some(self.path.clone()),
            search_path: None,
        });
        rt.cache_dir = Some(self.aot_dir.clone());
        rt
    }
}

/// The program (found or written once per test binary).
pub fn program() -> &'static WasmEdgeProgram {
    static P: OnceLock<WasmEdgeProgram> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let aot_dir = dir.path().join("aot");
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let (path, real) = match find_in_path("wasmedge", &path_var) {
            Some(p) => (p, true),
            None => {
                let native = super::artifact(wasmbench_runtime::Target::Native).path;
                (write_stand_in(dir.path(), &native), false)
            }
        };
        WasmEdgeProgram {
            path,
            real,
            aot_dir,
            _dir: dir,
        }
    })
}

/// The WasmEdge socket build (`echo-wasmedge.wasm`), built once per test binary.
pub fn artifact() -> Artifact {
    static A: OnceLock<Artifact> = OnceLock::new();
    A.get_or_init(|| {
        build_echo_wasmedge(&BuildOptions::default())
            .unwrap_or_else(|e| panic!("building echo-wasmedge: {e}"))
    })
    .clone()
}

/// Launches the WasmEdge build under `program()` in `mode`, printing what runs it.
pub fn launch(mode: ExecMode) -> RunningServer {
    let p = program();
    let rt = p.runtime(mode);
    rt.available().unwrap_or_else(|e| panic!("{e}"));
    let server = rt
        .launch(&LaunchSpec::new(artifact()))
        .unwrap_or_else(|e| panic!("wasmedge-{mode}: {e}"));
    let cmd = &server.info.details["command"];
    println!(
        "wasmedge-{mode}: {}, version {}; command: {cmd}",
        p.describe(),
        server.info.version
    );
    if p.real && mode == ExecMode::Aot {
        // `wasmedge compile` output carries its machine code in a `wasmedge` custom section;
        // without it the "AOT" run would be the interpreter.
        let wasm = cmd.rsplit(' ').next().unwrap();
        assert!(
            has_custom_section(Path::new(wasm), "wasmedge"),
            "{wasm} has no AOT section"
        );
    }
    server
}

fn has_custom_section(path: &Path, name: &str) -> bool {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .any(|p| matches!(p, Ok(wasmparser::Payload::CustomSection(s)) if s.name() == name))
}

/// Writes `dir/wasmedge`: `--version` prints what WasmEdge 0.14.1 prints (its invocation path
/// first, then a plugin line); `compile [--optimize N] IN OUT` copies the module; `[--force-interpreter]
/// [--env K=V]... MODULE` checks the module exists and runs the native echo with that
/// environment. Anything else is refused, so a launcher change that real WasmEdge would reject
/// fails here too.
fn write_stand_in(dir: &Path, native_echo: &Path) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
case "$1" in
  --version)
    printf '%s version 0.14.1\n (plugin "wasi_logging") version 0.1.0.0\n' "$0"
    exit 0 ;;
  compile)
    shift
    if [ "$1" = --optimize ]; then
      case "$2" in 0|1|2|3|s|z) shift 2 ;; *) echo "--optimize: bad level $2" >&2; exit 1 ;; esac
    fi
    [ $# -eq 2 ] && [ -f "$1" ] || {{ echo "usage: $0 compile [--optimize N] WASM WASM_SO" >&2; exit 1; }}
    exec cp "$1" "$2" ;;
esac
while [ $# -gt 1 ]; do
  case "$1" in
    --force-interpreter) shift ;;
    --env) [ $# -gt 2 ] || {{ echo "--env needs NAME=VALUE" >&2; exit 1; }}
           export "$2"; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -f "$1" ] || {{ echo "$0: cannot open $1" >&2; exit 1; }}
exec '{}'
"#,
        native_echo.display()
    );
    let path = dir.join("wasmedge");
    std::fs::write(&path, script).expect("writing the stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
