//! `wasmbench report`: re-render a saved comparison without running it again.

use std::path::PathBuf;

use clap::Args;
use wasmbench_report::Format;

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
        Some(path) => std::fs::write(path, &text).map_err(|e| {
            crate::exit::fail(
                crate::exit::Exit::Output,
                format!("cannot write {}: {e}", path.display()),
            )
        })?,
        None => print!("{text}"),
    }
    Ok(0)
}
