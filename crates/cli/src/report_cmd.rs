//! `wasmbench report`: re-render a saved comparison without running it again.

use std::path::{Path, PathBuf};

use clap::Args;
use wasmbench_report::{Comparison, Format, VariantStatus};

use crate::exit::{Exit, fail};

/// Arguments of `wasmbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A directory written by `compare --out`, or its `comparison.json`.
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// `wasmbench report`.
pub fn run(a: ReportArgs) -> anyhow::Result<i32> {
    let comparison = wasmbench_report::read_dir(&a.dir)?;
    let text = wasmbench_report::render(&comparison, a.format)?;
    match &a.output {
        Some(path) => wasmbench_vocab::result_file::write(path, text.as_bytes()).map_err(|e| {
            fail(
                Exit::Output,
                format!("cannot write {}: {e}", path.display()),
            )
        })?,
        None => print!("{text}"),
    }
    Ok(0)
}

/// What every comparison command does with its result: every format into `out` (re-rendered
/// later by `wasmbench report`), `format` on stdout.
pub(crate) fn emit(c: &Comparison, format: Format, out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(dir) = out {
        wasmbench_report::write_all(c, dir).map_err(|e| fail(Exit::Output, e.to_string()))?;
        eprintln!("wasmbench: wrote {}", dir.display());
    }
    let text = wasmbench_report::render(c, format)?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// Checks that `dir` can be written before spending minutes measuring.
pub(crate) fn ensure_writable(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            let probe = dir.join(".wasmbench-write-test");
            std::fs::write(&probe, b"")?;
            std::fs::remove_file(probe)
        })
        .map_err(|e| {
            fail(
                Exit::Output,
                format!(
                    "cannot write to {}: {e}; choose another --out directory",
                    dir.display()
                ),
            )
        })
}

/// The exit code of a finished comparison, run locally or on a cluster: interrupted, then a
/// failed variant (an error when no variant produced results), then a failed threshold.
pub(crate) fn exit_of(c: &Comparison) -> anyhow::Result<Exit> {
    Ok(if c.meta.partial {
        Exit::Interrupted
    } else if c.variants.iter().all(|v| v.status != VariantStatus::Ok) {
        let why: Vec<String> = c
            .variants
            .iter()
            .map(|v| {
                format!(
                    "{} {}: {}",
                    v.name,
                    match v.status {
                        VariantStatus::Failed => "failed",
                        VariantStatus::Skipped | VariantStatus::Ok => "skipped",
                    },
                    v.reason.as_deref().unwrap_or("no reason recorded")
                )
            })
            .collect();
        // Servers that never became ready are a start failure (11), whatever the variant.
        let exit = if c
            .variants
            .iter()
            .all(|v| v.not_started || v.status == VariantStatus::Skipped)
        {
            Exit::ServerStart
        } else {
            Exit::VariantFailed
        };
        return Err(fail(
            exit,
            format!("no variant produced results: {}", why.join("; ")),
        ));
    } else if c.variants.iter().any(|v| v.status == VariantStatus::Failed) {
        Exit::VariantFailed
    } else if c
        .variants
        .iter()
        .flat_map(|v| &v.runs)
        .flat_map(|r| &r.thresholds)
        .any(|t| !t.passed)
    {
        Exit::ThresholdsFailed
    } else {
        Exit::Ok
    })
}
