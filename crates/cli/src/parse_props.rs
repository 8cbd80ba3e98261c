//! Random flag values and plan files fed to every parser of the command line: whatever they
//! are, parsing and turning them into a plan ends in a value or an error, never a panic, and a
//! plan that is accepted can be run without its durations overflowing the clock.

use std::time::Instant;

use clap::Parser;
use proptest::prelude::*;

use crate::{Cli, Command};

/// Values that have broken parsers before, or sit on a boundary.
const TRICKY: &[&str] = &[
    "0",
    "1",
    "-1",
    "30",
    "0.5",
    "1e20",
    "1.8e19",
    "18446744073709551616",
    "4294967296",
    "NaN",
    "inf",
    "-inf",
    "",
    " ",
    "0s",
    "1s",
    "250ms",
    "1m30s",
    "999999999h",
    "100000000y",
    "5%",
    "200%",
    "-5%",
    "100000",
    "1:2",
    "10s:5",
    "2s:-1",
    "status == 200",
    "duration <",
    "p(95)<200",
    "http_req_duration=p(95)<200",
    "http_req_duration=p(101)<1",
    "rate<",
    "K=V",
    "=x",
    "FOO",
    "native",
    "all",
    "nope",
    "constant-arrival-rate",
    "ramping-vus",
    "close",
];

const LOAD_FLAGS: &[&str] = &[
    "--vus",
    "--duration",
    "--rate",
    "--executor",
    "--connection",
    "--method",
    "--header",
    "--body",
    "--check",
    "--threshold",
    "--timeout",
    "--time-unit",
    "--stage",
    "--max-vus",
    "--start-vus",
    "--start-rate",
    "--graceful-stop",
    "--think-time",
    "--workers",
    "--wait-ready",
    "--summary-trend-stats",
    "--slo",
    "--step-duration",
    "--capacity-start",
    "--capacity-max",
    "--resolution",
    "--max-steps",
];

const COMPARE_FLAGS: &[&str] = &[
    "--vus",
    "--duration",
    "--rate",
    "--executor",
    "--connection",
    "--repeats",
    "--precision",
    "--max-time",
    "--warmup",
    "--cold-starts",
    "--path",
    "--server-cpus",
    "--load-cpus",
    "--env",
    "--ready-path",
    "--workload",
    "--variants",
    "--profile",
    "--check",
    "--threshold",
    "--fail-on-regression",
    "--slo",
    "--step-duration",
    "--capacity-start",
    "--capacity-max",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TRICKY).prop_map(str::to_owned),
        1 => "[ -~]{0,12}",
        1 => any::<f64>().prop_map(|f| f.to_string()),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => (any::<u32>(), proptest::sample::select(&["s", "ms", "m", "h", "d", "y"][..]))
            .prop_map(|(n, u)| format!("{n}{u}")),
    ]
}

fn argv(
    command: &'static str,
    flags: &'static [&'static str],
) -> impl Strategy<Value = Vec<String>> {
    (
        proptest::collection::vec((proptest::sample::select(flags), value()), 0..8),
        any::<bool>(),
    )
        .prop_map(move |(pairs, capacity)| {
            let mut a = vec!["wasmbench".to_owned(), command.to_owned()];
            if command == "load" {
                a.push("http://127.0.0.1:1/".to_owned());
            }
            if capacity {
                a.push("--capacity".to_owned());
            }
            for (f, v) in pairs {
                a.push(f.to_owned());
                a.push(v);
            }
            a
        })
}

/// What a run would do with the plan's durations first: add them to the clock.
fn clock_survives(d: &[std::time::Duration]) {
    let mut t = Instant::now();
    for d in d {
        t += *d;
    }
}

fn check_load(p: &wasmbench_load::Plan) {
    clock_survives(&[
        p.executor.duration(),
        p.graceful_stop,
        p.timeout,
        p.think_time,
    ]);
}

proptest! {
    // 256 cases each unless PROPTEST_CASES says otherwise (a longer run: README).
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn load_flags_never_panic(args in argv("load", LOAD_FLAGS)) {
        if let Ok(Cli { command: Command::Load(a) }) = Cli::try_parse_from(&args) {
            if let Ok(p) = crate::load_cmd::build_plan(&a) {
                check_load(&p);
            }
            let _ = a.capacity.to_options(a.max_vus);
        }
    }

    #[test]
    fn compare_flags_never_panic(args in argv("compare", COMPARE_FLAGS)) {
        if let Ok(Cli { command: Command::Compare(a) }) = Cli::try_parse_from(&args)
            && let Ok(cfg) = crate::compare_cmd::config_from_args(&a)
        {
            clock_survives(&[cfg.load.duration, cfg.load.timeout, cfg.warmup, cfg.startup_timeout]);
        }
    }

    #[test]
    fn plan_files_never_panic(
        fields in proptest::collection::vec(
            (proptest::sample::select(&[
                "timeout", "graceful_stop", "think_time", "connection_mode", "workers",
            ][..]), value()),
            0..4,
        ),
        executor in proptest::sample::select(&[
            "constant-vus", "ramping-vus", "constant-arrival-rate", "ramping-arrival-rate", "x",
        ][..]),
        exec_fields in proptest::collection::vec(
            (proptest::sample::select(&[
                "vus", "duration", "rate", "time_unit", "pre_allocated_vus", "max_vus",
                "start_rate", "start_vus",
            ][..]), value()),
            0..5,
        ),
        stage in (value(), value()),
    ) {
        let quote = |v: &str| {
            if v.parse::<f64>().is_ok() && !v.contains(['n', 'N', 'i']) { v.to_owned() } else { format!("{v:?}") }
        };
        let mut toml = String::new();
        for (k, v) in &fields {
            toml += &format!("{k} = {}\n", quote(v));
        }
        toml += "[request]\nurl = \"http://127.0.0.1:1/\"\n[executor]\n";
        toml += &format!("type = {executor:?}\n");
        for (k, v) in &exec_fields {
            toml += &format!("{k} = {}\n", quote(v));
        }
        toml += &format!("stages = [{{ duration = {}, target = {} }}]\n", quote(&stage.0), quote(&stage.1));
        if let Ok(p) = wasmbench_load::Plan::from_toml_str(&toml)
            && p.validate().is_ok()
        {
            check_load(&p);
        }
        let mut compare = String::from("[load]\n");
        for (k, v) in &exec_fields {
            let k = if *k == "vus" || *k == "duration" || *k == "rate" { *k } else { "timeout" };
            compare += &format!("{k} = {}\n", quote(v));
        }
        if let Ok(cfg) = wasmbench_compare::CompareConfig::from_toml(&compare) {
            clock_survives(&[cfg.load.duration, cfg.load.timeout, cfg.warmup]);
        }
    }
}

#[test]
fn a_rate_means_the_arrival_rate_executor_in_compare_as_in_load() {
    let Ok(Cli {
        command: Command::Compare(a),
    }) = Cli::try_parse_from(["wasmbench", "compare", "--rate", "500"])
    else {
        panic!("compare --rate 500 parses");
    };
    let cfg = crate::compare_cmd::config_from_args(&a).unwrap();
    assert_eq!(cfg.load.executor, "constant-arrival-rate");
    assert_eq!(cfg.load.rate, Some(500));
    let Ok(Cli {
        command: Command::Load(a),
    }) = Cli::try_parse_from(["wasmbench", "load", "http://127.0.0.1:1/", "--rate", "500"])
    else {
        panic!("load --rate 500 parses");
    };
    assert_eq!(
        crate::load_cmd::build_plan(&a).unwrap().executor.name(),
        "constant-arrival-rate"
    );
}
