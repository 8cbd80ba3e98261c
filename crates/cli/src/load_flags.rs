//! The load options of every command that generates load (`compare`, `load`, `k8s run` and
//! `k8s manifests`): declared once, with one type, one syntax and one default each (the demo's
//! plan, [`wasmbench_vocab::demo`]). Each command turns them into its own plan in one place.

use std::time::Duration;

use clap::Args;
use wasmbench_vocab::{ConnectionMode, ExecutorKind};

/// Flags shared by every load-generating command. `None`/empty means "not given": the command's
/// plan file (or the default plan) decides.
#[derive(Debug, Clone, Default, Args)]
pub struct LoadFlags {
    /// Executor: constant-vus (default), ramping-vus, constant-arrival-rate or
    /// ramping-arrival-rate.
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorKind>,
    /// Virtual users (default 100, the demo's), or pre-allocated VUs for the arrival-rate
    /// executors.
    #[arg(long, short = 'u')]
    pub vus: Option<u32>,
    /// How long the load runs (default 30s), e.g. 30s, 1m30s, 250ms.
    #[arg(long, short = 'd', value_parser = wasmbench_vocab::duration::parse)]
    pub duration: Option<Duration>,
    /// Iterations per time unit (constant-arrival-rate).
    #[arg(long)]
    pub rate: Option<u32>,
    /// keep-alive (default) or close (a new connection per request).
    #[arg(long, value_enum)]
    pub connection: Option<ConnectionMode>,
    /// HTTP method (default GET; POST when a body is given).
    #[arg(long, short = 'X')]
    pub method: Option<String>,
    /// Request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    pub body: Option<String>,
    /// Check on every response (repeatable; replaces the default checks): `status == 200`,
    /// `duration < 200`, `body contains TEXT`.
    #[arg(long = "check")]
    pub checks: Vec<String>,
    /// Threshold `METRIC=EXPR` or `METRIC: EXPR`, optionally `:abortOnFail` (repeatable), e.g.
    /// 'http_req_duration=p(95)<200'.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
}

impl LoadFlags {
    /// The executor these flags ask for: the one named, or the one the other flags imply
    /// (`--rate` means constant-arrival-rate, stages mean ramping-vus), as k6 infers it from
    /// its options; `None` leaves the plan's own.
    pub fn executor_kind(&self, has_stages: bool) -> Option<ExecutorKind> {
        self.executor.or(if self.rate.is_some() {
            Some(ExecutorKind::ConstantArrivalRate)
        } else if has_stages {
            Some(ExecutorKind::RampingVus)
        } else {
            None
        })
    }

    /// The `wasmbench load` flags that reproduce these settings in a load pod, except VUs and
    /// duration, which the cluster plan splits over the pods itself.
    pub fn to_load_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut flag = |name: &str, value: String| {
            a.push(format!("--{name}"));
            a.push(value);
        };
        if let Some(e) = self.executor {
            flag("executor", e.as_str().to_owned());
        }
        if let Some(r) = self.rate {
            flag("rate", r.to_string());
        }
        if let Some(c) = self.connection {
            // The flag's own spelling (`close`), from its one declaration.
            let v = clap::ValueEnum::to_possible_value(&c)
                .map_or_else(|| c.as_str().to_owned(), |p| p.get_name().to_owned());
            flag("connection", v);
        }
        if let Some(m) = &self.method {
            flag("method", m.clone());
        }
        for h in &self.headers {
            flag("header", h.clone());
        }
        if let Some(b) = &self.body {
            flag("body", b.clone());
        }
        for c in &self.checks {
            flag("check", c.clone());
        }
        for t in &self.thresholds {
            flag("threshold", t.clone());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadFlags,
    }

    fn parse(args: &[&str]) -> LoadFlags {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .load
    }

    #[test]
    fn one_syntax_for_every_command() {
        let f = parse(&[
            "-u",
            "7",
            "-d",
            "1m30s",
            "--connection",
            "close",
            "--executor",
            "constant-arrival-rate",
            "--rate",
            "500",
            "--body",
            "hi",
            "--threshold",
            "http_req_duration: p(95)<200",
        ]);
        assert_eq!(f.vus, Some(7));
        assert_eq!(f.duration, Some(Duration::from_secs(90)));
        assert_eq!(f.connection, Some(ConnectionMode::NewConnectionPerRequest));
        assert_eq!(f.executor, Some(ExecutorKind::ConstantArrivalRate));
        // What a load pod is given parses back to the same flags.
        let mut args: Vec<String> = f.to_load_args();
        args.extend(["-u".into(), "7".into(), "-d".into(), "90s".into()]);
        let again = parse(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(format!("{again:?}"), format!("{f:?}"));
    }

    #[test]
    fn nothing_given_adds_no_load_pod_flags() {
        assert!(parse(&[]).to_load_args().is_empty());
    }
}
