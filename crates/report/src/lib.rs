//! The comparison result model and its renderers (text, Markdown, JSON, HTML).
//!
//! A [`Comparison`] is filled in by the compare driver (variants and their runs), then
//! [`Comparison::finalize`] derives the aggregates, the ratios, the explanation and the warnings.
//! Every renderer reads that one value and never recomputes a measurement.
//!
//! ```no_run
//! # fn demo(c: &wasmbench_report::Comparison) -> Result<(), wasmbench_report::ReportError> {
//! use wasmbench_report::{Format, render};
//! println!("{}", render(c, "markdown".parse::<Format>()?)?);
//! wasmbench_report::write_all(c, std::path::Path::new("out"))?;
//! let again = wasmbench_report::read_dir(std::path::Path::new("out"))?;
//! # let _ = again; Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod assemble;
mod code_split;
mod explain;
mod html;
mod json;
mod markdown;
mod mix;
mod model;
mod planned;
mod saved;
mod stats;
mod table;
pub mod tail;
mod text;
pub mod units;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use explain::{derive_warnings, explain};
pub use mix::{MixFigure, mix_ratio, mix_stat};
pub use model::*;
pub use saved::{
    COMPARED_FIGURES, Change, PlanMismatch, SavedComparison, Verdict, against_saved,
    check_comparable,
};
pub use stats::{CONFIDENCE, CV_WARN_THRESHOLD, Interval, OUTLIER_Z, Stat, ratio_interval};

/// Name of the JSON file [`write_all`] writes and [`read_dir`] reads.
pub const COMPARISON_FILE: &str = "comparison.json";

/// Errors of rendering, writing and reading reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The format name is not one of text, markdown, json, html.
    #[error("unknown report format `{0}`: use one of text, markdown, json, html")]
    UnknownFormat(String),
    /// Serialising the model failed.
    #[error("cannot serialise the comparison to JSON: {0}")]
    Serialize(#[source] serde_json::Error),
    /// Drawing a chart failed.
    #[error("cannot draw the {chart} chart: {message}")]
    Chart {
        /// Which chart.
        chart: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `comparison.json` is missing from the directory.
    #[error("{0} not found: pass the directory written by `wasmbench compare --out DIR`")]
    MissingComparison(PathBuf),
    /// The JSON file is not a comparison this version understands.
    #[error("{path} is not a valid comparison: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A saved comparison cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A saved comparison holds figures no run could have produced (a hand-edited file).
    #[error(
        "{path} holds an impossible figure: {what}; write it again with `wasmbench compare --out`"
    )]
    Impossible {
        /// The file.
        path: PathBuf,
        /// Which field, and why it is impossible.
        what: String,
    },
    /// The JSON file has a schema version this build cannot read.
    #[error(
        "{path} has schema_version {found}, this wasmbench reads version {expected}: re-render it with the wasmbench that wrote it"
    )]
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// Version found in the file.
        found: String,
        /// Version this crate reads.
        expected: u32,
    },
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned terminal table.
    Text,
    /// Markdown with the demo's table layout plus a ratio column.
    Markdown,
    /// Pretty JSON of the model.
    Json,
    /// One self-contained HTML file with inline SVG charts.
    Html,
}

impl Format {
    /// Every format, in the order [`write_all`] writes them.
    pub const ALL: [Format; 4] = [Format::Json, Format::Markdown, Format::Html, Format::Text];

    /// Name of the file [`write_all`] writes for this format.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Text => "report.txt",
            Format::Markdown => "report.md",
            Format::Json => COMPARISON_FILE,
            Format::Html => "report.html",
        }
    }
}

impl FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "txt" => Ok(Format::Text),
            "markdown" | "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            _ => Err(ReportError::UnknownFormat(s.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Json => "json",
            Format::Html => "html",
        })
    }
}

/// Renders `c` in `format`.
pub fn render(c: &Comparison, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Text => Ok(text::render(c)),
        Format::Markdown => Ok(markdown::render(c)),
        Format::Json => json::render(c),
        Format::Html => html::render(c),
    }
}

/// Writes every format into `dir` (created if needed); returns the files written.
pub fn write_all(c: &Comparison, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for f in Format::ALL {
        let body = render(c, f)?;
        let path = dir.join(f.file_name());
        wasmbench_vocab::result_file::write(&path, body.as_bytes()).map_err(|source| {
            ReportError::Io {
                path: path.clone(),
                source,
            }
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Reads a saved comparison back, checking its schema version first and then its figures:
/// `dir` is the directory written by `compare --out`, or its `comparison.json`.
pub fn read_dir(dir: &Path) -> Result<Comparison, ReportError> {
    let path = if dir.is_dir() {
        dir.join(COMPARISON_FILE)
    } else {
        dir.to_path_buf()
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::MissingComparison(path));
        }
        Err(source) => return Err(ReportError::Read { path, source }),
    };
    json::parse(&text, &path)
}
