//! Stand-alone `wasmbench load`: the cli crate's `load` subcommand compiled as an example, so
//! scripts and benchmarks can run the engine from this crate alone.
//!
//! `cargo run -p wasmbench-load --release --example loadgen -- http://127.0.0.1:8080/ --vus 100 -d 10s`

#[path = "../../cli/src/capacity_flags.rs"]
mod capacity_flags;
#[path = "../../cli/src/exit.rs"]
#[allow(dead_code)]
mod exit;
#[path = "../../cli/src/load_cmd.rs"]
mod load_cmd;
#[path = "../../cli/src/load_flags.rs"]
#[allow(dead_code)]
mod load_flags;
#[path = "../../cli/src/signals.rs"]
mod signals;

use clap::Parser;

#[derive(Parser)]
#[command(name = "wasmbench-load", version)]
struct Cli {
    #[command(flatten)]
    load: load_cmd::LoadArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match load_cmd::run(cli.load) {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("wasmbench load: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
