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
    /// Images to build: native, wasm, wasmedge, wasmbench (comma-separated).
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
    /// Use this .wasm for the WasmEdge image instead of building crates/echo-wasmedge.
    #[arg(long)]
    wasmedge_wasm: Option<PathBuf>,
    /// Use this static wasmbench binary instead of building one.
    #[arg(long)]
    wasmbench_bin: Option<PathBuf>,
    /// Cargo target directory for the builds.
    #[arg(long, env = "CARGO_TARGET_DIR")]
    target_dir: Option<PathBuf>,
}

fn parse_which(s: &str) -> anyhow::Result<Vec<ImageKind>> {
    let mut out = Vec::new();
    for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let k = match w {
            "native" => ImageKind::Native,
            "wasm" => ImageKind::Wasm,
            "wasmedge" => ImageKind::WasmEdge,
            "wasmbench" => ImageKind::Wasmbench,
            other => {
                return Err(fail(
                    Exit::InvalidConfig,
                    format!(
                        "unknown image `{other}` in --which: use native, wasm, wasmedge, wasmbench"
                    ),
                ));
            }
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
        ImageKind::Native => &args.native_bin,
        ImageKind::Wasm => &args.wasm,
        ImageKind::WasmEdge => &args.wasmedge_wasm,
        ImageKind::Wasmbench => &args.wasmbench_bin,
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
        ImageKind::Wasmbench => build::build_wasmbench(&root, &target).map_err(failure)?,
        ImageKind::Spin => unreachable!("rejected above"),
    };
    Ok(path)
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
