//! `wasmbench`: compare an HTTP service running natively and as WebAssembly.
//!
//! This binary only parses arguments, shows progress and maps errors to exit codes; the work
//! is done by the library crates.

mod capacity_flags;
#[cfg(feature = "local")]
mod compare_cmd;
mod exit;
mod image_cmd;
mod k8s_cmd;
mod load_cmd;
mod load_flags;
#[cfg(all(test, feature = "local"))]
mod parse_props;
mod report_cmd;
#[cfg(feature = "local")]
mod sandbox_flags;
#[cfg(feature = "local")]
mod serve_cmd;
mod service_flags;
mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::{Exit, Failure};

/// Compare an HTTP service running natively and as WebAssembly, on one machine and on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "wasmbench", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the native-vs-Wasm comparison (the main job).
    #[cfg(feature = "local")]
    Compare(Box<compare_cmd::CompareArgs>),
    /// Re-render a saved comparison (`compare --out DIR`) in another format.
    Report(report_cmd::ReportArgs),
    /// Load-test a URL with k6's metric semantics.
    Load(Box<load_cmd::LoadArgs>),
    /// Serve the workload with one runtime until interrupted.
    #[cfg(feature = "local")]
    Serve(Box<serve_cmd::ServeArgs>),
    /// List the comparison variants and whether each can run on this machine.
    #[cfg(feature = "local")]
    Runtimes(compare_cmd::RuntimesArgs),
    /// Run the comparison on a Kubernetes cluster, or write its manifests.
    K8s(Box<k8s_cmd::K8sArgs>),
    /// Build OCI images of the workload and of wasmbench without a Docker daemon.
    Image(Box<image_cmd::ImageArgs>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Exit::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        #[cfg(feature = "local")]
        Command::Compare(args) => compare_cmd::run(*args),
        Command::Report(args) => report_cmd::run(args),
        Command::Load(args) => load_cmd::run(*args),
        #[cfg(feature = "local")]
        Command::Serve(args) => serve_cmd::run(*args),
        #[cfg(feature = "local")]
        Command::Runtimes(args) => compare_cmd::runtimes(args),
        Command::K8s(args) => k8s_cmd::run(*args),
        Command::Image(args) => image_cmd::run(*args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            let (exit, message) = classify(&e);
            eprintln!("wasmbench: {message}");
            ExitCode::from(exit.code())
        }
    }
}

/// Maps an error to its exit code and the one line shown to the user.
fn classify(e: &anyhow::Error) -> (Exit, String) {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return (f.exit, f.message.clone());
    }
    #[cfg(feature = "local")]
    if let Some(c) = e.downcast_ref::<wasmbench_compare::CompareError>() {
        use wasmbench_compare::CompareError as C;
        let exit = match c {
            C::Config { .. } | C::Invalid(_) | C::UnknownVariant { .. } | C::Load(_) => {
                Exit::InvalidConfig
            }
            C::NothingRan(_) => Exit::VariantFailed,
            C::Runtime(r) => runtime_exit(r),
        };
        return (exit, c.to_string());
    }
    #[cfg(feature = "local")]
    if let Some(r) = e.downcast_ref::<wasmbench_runtime::RuntimeError>() {
        return (runtime_exit(r), r.to_string());
    }
    if let Some(r) = e.downcast_ref::<wasmbench_report::ReportError>() {
        return (report_exit(r), r.to_string());
    }
    if let Some(l) = e.downcast_ref::<wasmbench_load::LoadError>() {
        return (Exit::InvalidConfig, l.to_string());
    }
    (Exit::Internal, format!("{e:#}"))
}

/// The exit code of a report error: reading a saved comparison is an input problem, writing
/// one an output problem.
pub(crate) fn report_exit(r: &wasmbench_report::ReportError) -> Exit {
    use wasmbench_report::ReportError as R;
    match r {
        R::Read { .. }
        | R::MissingComparison(_)
        | R::Parse { .. }
        | R::UnsupportedSchema { .. }
        | R::Impossible { .. } => Exit::Input,
        R::UnknownFormat(_) => Exit::Usage,
        R::Io { .. } | R::Serialize(_) | R::Chart { .. } => Exit::Output,
    }
}

#[cfg(feature = "local")]
fn runtime_exit(r: &wasmbench_runtime::RuntimeError) -> Exit {
    use wasmbench_runtime::RuntimeError as R;
    match r {
        R::Build { .. } | R::InvalidArtifact { .. } | R::Wasmtime(_) => Exit::Artifact,
        R::Unavailable { .. }
        | R::Spawn { .. }
        | R::Exited { .. }
        | R::NotReady { .. }
        | R::ReadyRejected { .. }
        | R::GuestExited(_) => Exit::ServerStart,
        R::Config(_) => Exit::InvalidConfig,
        R::Cancelled { .. } => Exit::Interrupted,
        R::Io { .. } => Exit::Internal,
    }
}
