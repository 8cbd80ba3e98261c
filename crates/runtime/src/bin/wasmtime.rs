//! The wasmtime CLI (`run`, `serve`, `compile`, `config`, `settings`) from the `wasmtime-cli`
//! crate of the Wasmtime release the workspace pins: the same command implementations as the
//! upstream binary, without its other subcommands. The external-CLI tests run it.

use clap::Parser;

/// The pinned Wasmtime release (`wasmtime-cli = "=48.0.8"` in the workspace manifest); printed
/// by `--version` as upstream does, so the runtime detection reads it like a real install.
const VERSION: &str = "48.0.8";

#[derive(Parser)]
#[command(
    name = "wasmtime",
    version = VERSION,
    args_conflicts_with_subcommands = true
)]
struct Wasmtime {
    #[command(subcommand)]
    subcommand: Option<Subcommand>,
    /// Without a subcommand, `run` (as upstream).
    #[command(flatten)]
    run: wasmtime_cli::commands::RunCommand,
}

#[derive(Parser)]
enum Subcommand {
    /// Run a WebAssembly module or component.
    Run(wasmtime_cli::commands::RunCommand),
    /// Serve a `wasi:http/proxy` component.
    Serve(wasmtime_cli::commands::ServeCommand),
    /// Compile a module or component ahead of time.
    Compile(wasmtime_cli::commands::CompileCommand),
    /// Manage the compilation cache's configuration.
    Config(wasmtime_cli::commands::ConfigCommand),
    /// Show Cranelift's settings for a target.
    Settings(wasmtime_cli::commands::SettingsCommand),
}

fn main() -> wasmtime::Result<()> {
    let cli = Wasmtime::parse();
    match cli.subcommand.unwrap_or(Subcommand::Run(cli.run)) {
        Subcommand::Run(c) => c.execute(),
        Subcommand::Serve(c) => c.execute(),
        Subcommand::Compile(c) => c.execute(),
        Subcommand::Config(c) => c.execute(),
        Subcommand::Settings(c) => c.execute(),
    }
}
