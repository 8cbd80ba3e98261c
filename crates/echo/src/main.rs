//! `echo`: the wasmbench workload service. Configured by environment variables (`PORT`,
//! `ECHO_HOST`, `ECHO_MODE`, ...); see the `config` module.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cfg = match wasmbench_echo::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match wasmbench_echo::server::listen(&cfg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot listen on {}:{}: {e}", cfg.host, cfg.port);
            return ExitCode::from(1);
        }
    };
    match wasmbench_echo::server::serve(&cfg, listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::from(1)
        }
    }
}
