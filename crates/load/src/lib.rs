//! Load engine with k6 metric semantics: per-phase HTTP timing, executors, checks, thresholds,
//! HDR histograms.
//!
//! A [`Plan`] says what to request and how to drive the load; [`run`] executes it and returns a
//! [`Summary`] whose metric names and definitions are k6's (`http_req_blocked`,
//! `http_req_waiting`, `http_req_duration`, `iterations`, `checks`, ...). Summaries serialize
//! their HDR histograms, so results from several processes can be merged with
//! [`Summary::merge`]. [`render_text`] prints a k6-like end-of-run summary and
//! [`k6_summary_export`] writes k6's `--summary-export` JSON shape.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wasmbench_load::LoadError> {
//! use wasmbench_load::{Plan, RunOptions, run, render_text};
//! let mut plan = Plan::default();
//! plan.request.url = "http://127.0.0.1:8080/".into();
//! let summary = run(&plan, RunOptions::default()).await?;
//! println!("{}", render_text(&summary, &[]));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod capacity;
pub mod checks;
mod client;
mod engine;
mod error;
mod evaluate;
pub mod figures;
pub mod histogram;
pub mod k6;
pub mod k6_export;
mod merge;
mod metrics;
pub mod ndjson;
pub mod plan;
mod probe;
pub mod registry;
pub mod summary;
pub mod text;
pub mod threshold;
mod timeline;
pub mod trend;
#[cfg(target_os = "linux")]
mod uring;
mod url;

pub use checks::{Check, CheckKind};
pub use client::ErrorKind;
pub use engine::{LATE_START, RunOptions, run};
pub use error::{LoadError, toml_line};
pub use figures::{LoadFigures, NamedFigures};
pub use k6::K6Summary;
pub use k6_export::k6_summary_export;
pub use ndjson::{NdjsonWriter, Progress, TimePoint};
pub use plan::{
    Backend, ConnectionMode, Executor, MAX_MIX_REQUESTS, MixRequest, Plan, RequestSpec, Stage,
    StatusRange, TlsOptions,
};
pub use probe::{ProbeAnswer, ProbeError, probe};
pub use registry::{TREND_METRICS, named_trend_names};
pub use summary::{
    CheckResult, CounterSummary, EngineInfo, GaugeSummary, NamedCounts, Summary, ThresholdResult,
};
pub use text::render_text;
pub use threshold::Threshold;
pub use tokio_util::sync::CancellationToken;
pub use trend::Trend;
pub use wasmbench_vocab::TrendStats;
