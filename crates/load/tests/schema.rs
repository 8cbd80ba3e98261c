//! `schemas/load-summary.schema.json` against real output: the file `wasmbench load --json`
//! writes after a run against the echo service, and `Summary` values serialized from short runs
//! with other executors and options. Every field the engine writes must be described by the
//! schema (it would otherwise pass silently, the schema not forbidding extra fields), and
//! documents broken in typical ways must be rejected.

mod common;

// The cli's `load` subcommand, as the `loadgen` example compiles it, so the test exercises the
// code that writes `--json`.
#[path = "../../cli/src/capacity_flags.rs"]
#[allow(dead_code)]
mod capacity_flags;
#[path = "../../cli/src/exit.rs"]
#[allow(dead_code)]
mod exit;
#[path = "../../cli/src/load_cmd.rs"]
#[allow(dead_code)]
mod load_cmd;
#[path = "../../cli/src/load_flags.rs"]
#[allow(dead_code)]
mod load_flags;
#[path = "../../cli/src/signals.rs"]
mod signals;

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use wasmbench_echo::config::Mode;
use wasmbench_load::{
    Check, ConnectionMode, Executor, MixRequest, Plan, RunOptions, Stage, Threshold, run,
};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: load_cmd::LoadArgs,
}

fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/load-summary.schema.json");
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// The schema node a `$ref` points to (only local `#/$defs/...` references occur).
fn deref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => root
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => node,
    }
}

/// Paths of object keys in `doc` that the schema does not describe: not in `properties` and
/// no `additionalProperties` schema. Walks `properties`, `additionalProperties` and `items`.
fn undescribed(root: &Value, schema: &Value, doc: &Value, path: &str, out: &mut Vec<String>) {
    let schema = deref(root, schema);
    match doc {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                let p = format!("{path}/{k}");
                match (props.and_then(|ps| ps.get(k)), extra) {
                    (Some(s), _) | (None, Some(s)) => undescribed(root, s, v, &p, out),
                    (None, None) => {
                        // A oneOf branch (request body) is checked by validation itself.
                        if schema.get("oneOf").is_none() {
                            out.push(p);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    undescribed(root, s, v, &format!("{path}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

fn schema_json() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/load-summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("JSON")
}

/// Valid, and every field described.
fn assert_conforms(label: &str, doc: &Value) {
    let errs = errors(&validator(), doc);
    assert!(errs.is_empty(), "{label}: schema errors: {errs:#?}");
    let root = schema_json();
    let mut extra = Vec::new();
    undescribed(&root, &root, doc, "", &mut extra);
    // Fields newer than the schema file, which describes them in its own change (the engine's
    // backend and its connection failures; see docs/benchmarks.md). Only these may be missing.
    assert!(
        extra.is_empty(),
        "{label}: fields missing from the schema: {extra:?}"
    );
}

fn summary_of(plan: &Plan) -> Value {
    let s = common::rt()
        .block_on(run(plan, RunOptions::default()))
        .expect("run");
    serde_json::to_value(&s).expect("summary serializes")
}

#[test]
fn json_written_by_wasmbench_load_matches_the_schema() {
    let addr = common::echo(Mode::Concurrent);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("summary.json");
    let url = format!("http://{addr}/");
    let cli = Cli::try_parse_from([
        "wasmbench-load",
        url.as_str(),
        "--vus",
        "4",
        "-d",
        "1s",
        "-X",
        "POST",
        "--body",
        "hello",
        "-H",
        "X-Test: 1",
        "--check",
        "status == 200",
        "--check",
        "body contains hello",
        "--threshold",
        "http_req_duration=p(95)<5000",
        "--summary-trend-stats",
        "avg,min,med,max,p(90),p(95),p(99)",
        "--quiet",
        "--json",
        out.to_str().expect("utf-8 path"),
    ])
    .expect("flags parse");
    let code = load_cmd::run(cli.load).expect("load runs");
    assert_eq!(code, 0, "exit code");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("--json written"))
        .expect("JSON");
    assert!(
        doc["counters"]["http_reqs"].as_u64().unwrap_or(0) > 0,
        "{doc}"
    );
    assert_conforms("--json", &doc);
}

#[test]
fn summaries_of_other_executors_and_options_match_the_schema() {
    let addr = common::echo(Mode::Concurrent);
    let mut open = common::plan(format!("http://{addr}/"), 4, 1.0);
    open.executor = Executor::RampingArrivalRate {
        start_rate: 10,
        time_unit: Duration::from_secs(1),
        stages: vec![Stage {
            duration: Duration::from_secs(1),
            target: 50,
        }],
        pre_allocated_vus: 2,
        max_vus: 4,
    };
    open.connection_mode = ConnectionMode::NewConnectionPerRequest;
    open.request.body = vec![0xff, 0x00, 0x80];
    open.request.method = "POST".into();
    open.checks = vec![Check::parse("duration < 1000").expect("check")];
    open.thresholds = vec![
        Threshold::parse_cli("http_req_failed=rate<0.01").expect("threshold"),
        Threshold::parse_cli("dropped_iterations=count<1000000").expect("threshold"),
    ];
    assert_conforms("ramping-arrival-rate", &summary_of(&open));

    let mut ramp = common::plan(format!("http://{addr}/json"), 2, 1.0);
    ramp.executor = Executor::RampingVus {
        start_vus: 1,
        stages: vec![Stage {
            duration: Duration::from_millis(500),
            target: 2,
        }],
    };
    ramp.think_time = Duration::from_millis(5);
    assert_conforms("ramping-vus", &summary_of(&ramp));

    // A request mix adds per-request counts and sub-metric trends.
    let mut mix = common::plan(format!("http://{addr}/"), 2, 0.5);
    let request = |name: &str, path: &str, weight| MixRequest {
        name: name.into(),
        weight,
        method: "GET".into(),
        path: path.into(),
        headers: Default::default(),
        body: Vec::new(),
    };
    mix.mix = vec![request("root", "/", 3), request("json", "/json", 1)];
    mix.thresholds =
        vec![Threshold::parse_cli("http_req_duration{name:json}=p(95)<5000").expect("threshold")];
    let doc = summary_of(&mix);
    assert!(
        doc["by_name"]["json"]["http_reqs"].as_u64().unwrap_or(0) > 0,
        "{doc}"
    );
    assert_conforms("mix", &doc);

    // Nothing listens: errors and no statuses.
    let refused = common::plan(
        format!("http://127.0.0.1:{}/", common::closed_port()),
        1,
        0.2,
    );
    assert_conforms("refused", &summary_of(&refused));
}

/// A way to break a valid summary.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn broken_summaries_are_rejected() {
    let addr = common::echo(Mode::Concurrent);
    let good = summary_of(&common::plan(format!("http://{addr}/"), 1, 0.3));
    let v = validator();
    assert!(errors(&v, &good).is_empty(), "{:?}", errors(&v, &good));
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "schema_version 2",
            Box::new(|d| d["schema_version"] = json!(2)),
        ),
        (
            "no trends",
            Box::new(|d| {
                d.as_object_mut().expect("object").remove("trends");
            }),
        ),
        (
            "negative count",
            Box::new(|d| d["counters"]["http_reqs"] = json!(-1)),
        ),
        (
            "not a date",
            Box::new(|d| d["started"] = json!("yesterday")),
        ),
        (
            "bad mode",
            Box::new(|d| d["plan"]["connection_mode"] = json!("pipelined")),
        ),
        (
            "bad executor",
            Box::new(|d| d["plan"]["executor"]["type"] = json!("per-vu")),
        ),
        ("status key", Box::new(|d| d["statuses"] = json!({"ok": 1}))),
        (
            "trend unit",
            Box::new(|d| d["trends"]["http_req_waiting"]["unit"] = json!("ms")),
        ),
        (
            "check without fails",
            Box::new(|d| d["checks"] = json!([{"name": "x", "passes": 1}])),
        ),
        (
            "mix without name",
            Box::new(|d| d["plan"]["mix"] = json!([{"path": "/"}])),
        ),
    ];
    for (label, mutate) in mutations {
        let mut doc = good.clone();
        mutate(&mut doc);
        assert!(!v.is_valid(&doc), "accepted a summary with {label}");
    }
    // A field the schema does not describe is reported by the completeness walk.
    let mut doc = good.clone();
    doc["counters"]["surprise"] = json!(1);
    let root = schema_json();
    let mut extra = Vec::new();
    undescribed(&root, &root, &doc, "", &mut extra);
    assert_eq!(extra, vec!["/counters/surprise".to_string()]);
}
