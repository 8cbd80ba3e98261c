//! Request mixes against the real echo service: every iteration sends one request of the mix in
//! proportion to the weights, and each request gets its own sub-metrics.

mod common;

use common::*;
use wasmbench_echo::config::Mode;
use wasmbench_load::{Check, MixRequest, Plan, RunOptions, Summary, Threshold, run};

fn go(plan: &Plan) -> Summary {
    rt().block_on(run(plan, RunOptions::default()))
        .expect("run")
}

fn req(name: &str, weight: u32, method: &str, path: &str, body: &[u8]) -> MixRequest {
    MixRequest {
        name: name.into(),
        weight,
        method: method.into(),
        path: path.into(),
        headers: Default::default(),
        body: body.to_vec(),
    }
}

fn mix_plan(addr: std::net::SocketAddr, vus: u64, secs: f64) -> Plan {
    let mut p = plan(format!("http://{addr}/"), vus, secs);
    p.mix = vec![
        req("echo", 3, "POST", "/", b"hello"),
        req("hash", 1, "POST", "/hash?rounds=10", b"abc"),
        req("sleep", 1, "GET", "/sleep?ms=2", b""),
    ];
    p.checks = vec![Check::parse("status == 200").unwrap()];
    p
}

#[test]
fn iterations_follow_the_weights_and_get_sub_metrics() {
    let addr = echo(Mode::Concurrent);
    let mut p = mix_plan(addr, 4, 1.5);
    p.workers = 2;
    p.thresholds = vec![
        Threshold::parse_cli("http_req_duration{name:sleep}=p(50)>=2").unwrap(),
        Threshold::parse_cli("http_req_duration{name:echo}=p(50)<2").unwrap(),
        Threshold::parse_cli("http_reqs{name:hash}=count>0").unwrap(),
        Threshold::parse_cli("http_req_failed{name:hash}=rate==0").unwrap(),
    ];
    let s = go(&p);
    let c = &s.counters;
    assert!(c.http_reqs > 100, "{c:?}");
    assert_eq!(c.http_req_failed, 0, "{:?}", s.statuses);
    let n = |k: &str| s.by_name[k].http_reqs;
    assert_eq!(n("echo") + n("hash") + n("sleep"), c.http_reqs);
    // Each worker picks in exact 3:1:1 windows of 5; only the unfinished window of each worker
    // (at most 4 picks) can be off.
    let total = c.http_reqs as i64;
    for (name, share) in [("echo", 3), ("hash", 1), ("sleep", 1)] {
        let want = total * share / 5;
        assert!(
            (n(name) as i64 - want).abs() <= 2 * 4 + 1,
            "{name}: {} of {total}, want ~{want}",
            n(name)
        );
    }
    // Sub-metrics carry their own distributions: the sleeping request is held 2 ms after the
    // server reads it, so its whole `duration` (from the moment it had a connection) can never
    // be shorter. Its `waiting` alone can: when the client thread is preempted between its
    // write and its timestamp, that time moves from `waiting` to `sending` (as in k6), so only
    // the median of `waiting` must reach the delay.
    let sleep = s.trend("http_req_waiting{name:sleep}").unwrap();
    let echo_t = s.trend("http_req_waiting{name:echo}").unwrap();
    assert_eq!(sleep.count, n("sleep"));
    let sleep_d = s.trend("http_req_duration{name:sleep}").unwrap();
    assert!(
        sleep_d.min_ms >= 1.99,
        "a sleeping request answered early: {sleep_d:?}"
    );
    assert!(sleep.med_ms >= 2.0, "{sleep:?}");
    assert!(echo_t.med_ms < sleep.med_ms, "{echo_t:?} vs {sleep:?}");
    assert_eq!(
        s.trend("http_req_duration{name:hash}").unwrap().count,
        n("hash")
    );
    assert!(s.thresholds.iter().all(|t| t.ok), "{:?}", s.thresholds);
    // Sub-metrics show in the text summary and in the k6 summary export.
    let text = wasmbench_load::render_text(&s, &[]);
    assert!(text.contains("http_req_duration{name:hash}"), "{text}");
    assert!(text.contains("http_reqs{name:sleep}"), "{text}");
    let export = wasmbench_load::k6_summary_export(&s);
    assert!(export["metrics"]["http_req_waiting{name:echo}"]["p(95)"].is_number());
    // Merging two summaries adds the per-request counts.
    let json = serde_json::to_string(&s).unwrap();
    let mut merged: Summary = serde_json::from_str(&json).unwrap();
    merged.merge(&s).unwrap();
    assert_eq!(merged.by_name["hash"].http_reqs, 2 * n("hash"));
    assert_eq!(
        merged.trend("http_req_duration{name:hash}").unwrap().count,
        2 * n("hash")
    );
}

#[test]
fn failing_requests_are_counted_per_name() {
    let addr = echo(Mode::Concurrent);
    let mut p = mix_plan(addr, 2, 0.5);
    // rounds=0 is out of range: the server answers 400 to this request only.
    p.mix[1].path = "/hash?rounds=0".into();
    p.thresholds = vec![Threshold::parse_cli("http_req_failed{name:hash}=rate<0.5").unwrap()];
    let s = go(&p);
    let hash = s.by_name["hash"];
    assert!(hash.http_reqs > 0);
    assert_eq!(hash.http_req_failed, hash.http_reqs);
    assert_eq!(s.by_name["echo"].http_req_failed, 0);
    assert_eq!(s.counters.http_req_failed, hash.http_reqs);
    assert_eq!(s.statuses.get(&400), Some(&hash.http_reqs));
    assert!(!s.thresholds[0].ok, "{:?}", s.thresholds);
}

#[test]
fn bad_mixes_are_rejected_with_the_reason() {
    let addr = echo(Mode::Concurrent);
    type Edit = Box<dyn Fn(&mut Plan)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|p| p.mix[1].name = "echo".into()), "used twice"),
        (
            Box::new(|p| p.mix[0].name = "a b".into()),
            "letters, digits",
        ),
        (Box::new(|p| p.mix[0].weight = 0), "weight >= 1"),
        (Box::new(|p| p.mix[2].path = "sleep".into()), "give a path"),
        (
            Box::new(|p| p.mix[2].method = "get".into()),
            "not an HTTP method",
        ),
        (
            Box::new(|p| {
                let r = p.mix[0].clone();
                p.mix = (0..40)
                    .map(|i| MixRequest {
                        name: format!("r{i}"),
                        ..r.clone()
                    })
                    .collect();
            }),
            "at most 32",
        ),
    ];
    for (edit, want) in cases {
        let mut p = mix_plan(addr, 1, 0.2);
        edit(&mut p);
        let e = p.validate().expect_err(want).to_string();
        assert!(e.contains(want), "{e} should contain {want}");
    }
    let e = Threshold::parse_cli("http_req_sending{name:echo}=p(95)<1")
        .expect_err("sending has no sub-metric");
    assert!(e.to_string().contains("http_req_sending{name:echo}"), "{e}");
    let mut p = mix_plan(addr, 1, 0.2);
    p.thresholds = vec![Threshold::parse_cli("http_req_duration{name:nope}=p(95)<1").unwrap()];
    let e = p.validate().expect_err("unknown mix name").to_string();
    assert!(e.contains("there is no mix request named `nope`"), "{e}");
}

#[test]
fn a_mix_reads_from_toml() {
    let p = Plan::from_toml_str(
        r#"
        [request]
        url = "http://127.0.0.1:9/"
        [executor]
        type = "constant-vus"
        vus = 2
        duration = "1s"
        [[mix]]
        name = "echo"
        weight = 4
        method = "POST"
        body = "hi"
        [[mix]]
        name = "json"
        method = "POST"
        path = "/json"
        body = '{"b":1,"a":2}'
        "#,
    )
    .expect("plan");
    assert_eq!(p.mix.len(), 2);
    assert_eq!((p.mix[0].weight, p.mix[0].path.as_str()), (4, "/"));
    assert_eq!((p.mix[1].weight, p.mix[1].method.as_str()), (1, "POST"));
    assert_eq!(p.mix_names(), ["echo", "json"]);
}
