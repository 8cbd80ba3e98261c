//! The driver against an in-process fake API server speaking real HTTP/JSON.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use support::fake_api::FakeApi;
use support::summaries;
use tokio_util::sync::CancellationToken;
use wasmbench_k8s::driver::{
    self, ClusterOptions, Driver, DriverEvent, DriverOptions, LoadSummary, RunOutcome,
};
use wasmbench_k8s::manifests::{RunSpec, SUMMARY_BEGIN, SUMMARY_END};
use wasmbench_k8s::report::{self, ReportOptions};
use wasmbench_k8s::{Error, Variant};
use wasmbench_load::Summary;
use wasmbench_report::{Format, PHASES, Platform, VariantStatus};

/// The summary every load pod prints unless a test says otherwise.
fn default_summary() -> Summary {
    summaries::summary(&summaries::latencies(200, 150, 2), 2, 0, 1)
}

fn load_log() -> String {
    // Between markers, as a wrapper script would print it; plain JSON is read too.
    let json = serde_json::to_string_pretty(&default_summary()).unwrap();
    format!(
        "wasmbench load starting on {{pod}}\nprogress 50%\n{SUMMARY_BEGIN}\n{json}\n{SUMMARY_END}\n"
    )
}

fn fast_opts() -> DriverOptions {
    DriverOptions {
        ready_timeout: Duration::from_secs(10),
        job_grace: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
        cleanup_timeout: Duration::from_secs(10),
        // This API has no kubelet behind it; the real cluster test reads the kubelet's stats.
        node_stats: false,
        ..Default::default()
    }
}

fn spec(variants: Vec<Variant>) -> RunSpec {
    let mut s = RunSpec::new("t1", variants);
    s.load.vus = 4;
    s.load.parallelism = 2;
    s.load.duration = Duration::from_secs(1);
    s
}

async fn driver(api: &FakeApi, opts: DriverOptions) -> Driver {
    let cluster = driver::connect_with_config(api.config(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(cluster.server_version, "v1.33.0-fake");
    Driver::new(cluster, opts)
}

/// The plan each load pod of `spec` runs (what `wasmbench load` builds from its arguments).
fn pod_plan(spec: &RunSpec) -> wasmbench_load::Plan {
    let mut p = wasmbench_load::Plan::default();
    p.request.url = spec.service_dns_url(&spec.servers()[0]);
    p.executor = wasmbench_load::Executor::ConstantVus {
        vus: u64::from(spec.load.vus_per_pod().unwrap()),
        duration: spec.load.duration,
    };
    p
}

fn comparison(out: &RunOutcome, raw_dir: Option<&std::path::Path>) -> wasmbench_report::Comparison {
    report::comparison(
        out,
        &ReportOptions {
            load_plan: &pod_plan(&out.spec),
            command_line: vec!["wasmbench".into(), "k8s".into(), "run".into()],
            skipped: &[],
            raw_dir,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn apply_wait_collect_cleanup() {
    let api = FakeApi::start(&load_log()).await;
    // Two load pods per variant with different latencies; the Wasm variants are slower.
    let pods = |base: u64| {
        [
            summaries::summary(&summaries::latencies(300, base, 3), 2, 0, 1),
            summaries::summary(&summaries::latencies(100, base * 2, 7), 2, 1, 1),
        ]
    };
    let mut expected = BTreeMap::new();
    for (v, base) in [("native", 100), ("crun-wasmedge", 400), ("wasmtime", 160)] {
        let [a, b] = pods(base);
        let mut s = api.state.lock().unwrap();
        s.load_logs
            .insert(format!("load-{v}-0"), summaries::log(&a));
        s.load_logs
            .insert(format!("load-{v}-1"), summaries::log(&b));
        expected.insert(v.to_owned(), (a, b));
    }
    let d = driver(&api, fast_opts()).await;
    let events = Mutex::new(Vec::new());
    let progress = |p: DriverEvent| events.lock().unwrap().push(format!("{p:?}"));
    let variants = vec![Variant::Native, Variant::CrunWasmedge, Variant::Wasmtime];
    let out = d
        .run(
            &spec(variants.clone()),
            &CancellationToken::new(),
            &progress,
        )
        .await
        .unwrap();

    assert!(out.cleaned_up);
    assert_eq!(out.schedulable_nodes(), vec!["node-a", "node-b", "node-c"]);
    assert_eq!(out.nodes.len(), 4, "the control plane is recorded too");
    assert!(
        out.spec.separate_load,
        "three schedulable nodes: load is kept apart"
    );
    assert_eq!(
        out.variants
            .iter()
            .map(|v| v.server.variant.unwrap())
            .collect::<Vec<_>>(),
        variants
    );
    for v in &out.variants {
        assert_eq!(v.load_pods.len(), 2, "{}", v.server.name);
        // One load pod per node, none on the server's.
        let nodes: Vec<_> = v.load_pods.iter().map(|p| p.node.as_deref()).collect();
        assert_eq!(nodes, [Some("node-b"), Some("node-c")], "{}", v.server.name);
        assert_eq!(v.server_pods.len(), 1);
        assert_eq!(v.server_pods[0].node.as_deref(), Some("node-a"));
        assert!(
            v.server_pods[0]
                .image_id
                .as_deref()
                .unwrap()
                .contains("@sha256:")
        );
        // The merge is exact: counters add, histograms add bucket by bucket, the rate is over
        // the union of the pods' time spans (0–1 s and 1–2 s).
        let (a, b) = &expected[v.server.name.as_str()];
        let Ok(LoadSummary::Wasmbench(merged)) = &v.summary else {
            panic!(
                "{}: no merged wasmbench summary: {:?}",
                v.server.name, v.summary
            );
        };
        assert_eq!(merged.sources, 2);
        assert_eq!(merged.counters.http_reqs, 400);
        assert_eq!(merged.checks[0].passes, 400);
        assert_eq!(merged.statuses[&200], 400);
        assert_eq!(merged.duration_s, 2.0);
        assert_eq!(merged.http_reqs_per_s(), 200.0);
        for m in PHASES.iter().chain(&["http_req_duration"]) {
            let mut all = a.trends[*m].0.clone();
            all.add(&b.trends[*m].0).unwrap();
            assert_eq!(merged.trends[*m].0, all, "{}: {m}", v.server.name);
        }
    }
    assert_eq!(out.variants[1].runtime_class.as_deref(), Some("crun"));
    assert_eq!(out.variants[1].handler.as_deref(), Some("crun"));

    // The report: one Comparison like a local run's, on Kubernetes.
    let tmp = tempfile::tempdir().unwrap();
    let c = comparison(&out, Some(&tmp.path().join("runs")));
    let env = &c.meta.environment;
    assert_eq!(env.platform, Platform::Kubernetes);
    let k = env.kubernetes.as_ref().unwrap();
    assert_eq!(k.server_version, "v1.33.0-fake");
    assert_eq!(k.namespace, "wasmbench-t1");
    assert!(k.cleaned_up);
    assert_eq!(k.nodes[1].kubelet_version, "v1.33.0-fake");
    assert_eq!(k.nodes[1].container_runtime_version, "containerd://1.7.24");
    assert_eq!(k.server_resources.cpu_limit, "1");
    assert_eq!(k.load_resources.memory_limit, "512Mi");
    assert_eq!(env.cpu_count, 4);
    assert_eq!(env.memory_bytes, 8 << 30);
    assert_eq!(env.kernel, "6.1.0-fake");
    for v in ["native", "crun-wasmedge", "wasmtime"] {
        let p = &k.variants[v];
        assert_eq!(p.server_nodes, ["node-a"], "{v}");
        assert_eq!(
            p.load_pods_per_node,
            BTreeMap::from([("node-b".to_owned(), 1), ("node-c".to_owned(), 1)]),
            "{v}"
        );
    }
    assert_eq!(
        k.variants["wasmtime"].runtime_class.as_deref(),
        Some("wasmtime")
    );
    assert_eq!(c.baseline, "native");
    assert_eq!(c.plan.vus, 4);
    assert_eq!(c.plan.executor, "2 load pods × constant-vus 2 VUs for 1s");
    for v in &c.variants {
        assert_eq!(v.status, VariantStatus::Ok, "{}: {:?}", v.name, v.reason);
        assert_eq!(v.runs.len(), 1);
        let run = &v.runs[0];
        assert_eq!(run.http_reqs, 400);
        assert!(run.throughput_rps > 0.0);
        for p in PHASES {
            assert!(run.phases.contains_key(p), "{}: {p} missing", v.name);
        }
        assert_eq!(
            run.raw_summary_file.as_deref(),
            Some(&*format!("{}-r1.json", v.name))
        );
        assert_eq!(v.runtime.version, "unknown", "never observed");
    }
    let wasmtime = c.variant("wasmtime").unwrap();
    assert_eq!(wasmtime.runtime.name, "wasmtime");
    assert_eq!(wasmtime.runtime.target, wasmbench_report::Target::Wasip2);
    assert_eq!(c.variant("native").unwrap().runtime.name, "native");
    let ratio = c
        .ratio("wasmtime", wasmbench_report::Figure::HttpReqDurationP95Ms)
        .unwrap();
    assert!(ratio > 1.0, "slower pods, higher p95: {ratio}");
    assert!(
        c.explanation
            .iter()
            .any(|e| e.contains("Pod placement") && e.contains("node-b ×1")),
        "{:?}",
        c.explanation
    );
    let md = wasmbench_report::render(&c, Format::Markdown).unwrap();
    assert!(
        md.contains("| Metric Name | Description | native | Wasm | Wasm/native |"),
        "{md}"
    );
    assert!(md.contains("- cluster: Kubernetes v1.33.0-fake"), "{md}");
    assert!(md.contains("load pods: node-b ×1, node-c ×1"), "{md}");

    // Valid against the checked-in schema, and re-read exactly as `wasmbench report DIR` does.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/comparison.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc = serde_json::to_value(&c).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    wasmbench_report::write_all(&c, tmp.path()).unwrap();
    assert_eq!(wasmbench_report::read_dir(tmp.path()).unwrap(), c);
    // Raw summaries: each variant's merged one and each pod's as printed.
    let merged: Summary = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/native-r1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(merged.counters.http_reqs, 400);
    assert!(
        tmp.path()
            .join("runs/pods/load-wasmtime-1-q7w9z.json")
            .is_file()
    );

    // What reached the server: typed objects with the right runtime classes and the Job split.
    let reqs = api.state.lock().unwrap().requests.clone();
    let posted = |p: &str| {
        reqs.iter()
            .filter(|r| r.starts_with(&format!("POST {p}")))
            .count()
    };
    assert_eq!(
        posted("/apis/apps/v1/namespaces/wasmbench-t1/deployments"),
        3
    );
    assert_eq!(posted("/api/v1/namespaces/wasmbench-t1/services"), 3);
    assert_eq!(posted("/apis/batch/v1/namespaces/wasmbench-t1/jobs"), 3);
    assert_eq!(posted("/apis/node.k8s.io/v1/runtimeclasses"), 2);
    assert!(reqs.iter().any(|r| {
        r.starts_with("GET /api/v1/namespaces/wasmbench-t1/pods/load-wasmtime-1-q7w9z/log")
    }));
    // Jobs ran one after another: each Job was created after the previous one's pods were read.
    let order: Vec<&String> = reqs
        .iter()
        .filter(|r| {
            r.starts_with("POST /apis/batch") || r.contains("/pods/load-") && r.contains("/log?")
        })
        .collect();
    assert!(
        order[0].starts_with("POST")
            && order[1].contains("/log")
            && order[2].contains("/log")
            && order[3].starts_with("POST"),
        "{order:?}"
    );

    // Everything is gone: namespace (with its contents) and the RuntimeClasses we created.
    assert_eq!(
        api.object_count(),
        0,
        "left behind: {:?}",
        api.state.lock().unwrap().objects.keys().collect::<Vec<_>>()
    );
    let ev = events.lock().unwrap();
    assert!(ev.iter().any(|e| e.starts_with("Applied")));
    assert_eq!(ev.iter().filter(|e| e.starts_with("LoadDone")).count(), 3);
}

#[tokio::test]
async fn one_schedulable_node_shares_it_and_says_so() {
    let api = FakeApi::start(&load_log()).await;
    api.set_nodes(&[("control-plane", true), ("worker", false)]);
    let d = driver(&api, fast_opts()).await;
    let mut s = spec(vec![Variant::Native, Variant::Wasmtime]);
    // One node, one load pod: two would need two nodes.
    let err = d
        .run(&s, &CancellationToken::new(), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPlan(_)), "{err}");
    assert!(err.to_string().contains("--parallelism 1"), "{err}");
    assert_eq!(api.object_count(), 0, "refused before creating anything");
    s.load.parallelism = s.load.pods_for_nodes(driver::load_node_count(1));
    assert_eq!(s.load.parallelism, 1);
    let out = d.run(&s, &CancellationToken::new(), &|_| {}).await.unwrap();
    assert!(!out.spec.separate_load);
    let c = comparison(&out, None);
    let k = c.meta.environment.kubernetes.as_ref().unwrap();
    assert_eq!(
        k.variants["native"].load_pods_per_node,
        BTreeMap::from([("worker".to_owned(), 1)])
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("native: load pods ran on worker, the node of its server")),
        "{:?}",
        c.warnings
    );
}

#[tokio::test]
async fn two_nodes_take_one_load_pod_each_or_one_off_the_server() {
    let api = FakeApi::start(&load_log()).await;
    api.set_nodes(&[("node-1", false), ("node-2", false)]);
    let d = driver(&api, fast_opts()).await;
    // Asked for two: one per node, so one shares the server's node.
    let s = spec(vec![Variant::Native]);
    let out = d.run(&s, &CancellationToken::new(), &|_| {}).await.unwrap();
    assert!(!out.spec.separate_load);
    let c = comparison(&out, None);
    let k = c.meta.environment.kubernetes.as_ref().unwrap();
    assert_eq!(
        k.variants["native"].load_pods_per_node,
        BTreeMap::from([("node-1".to_owned(), 1), ("node-2".to_owned(), 1)])
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("native: load pods ran on node-1, the node of its server")),
        "{:?}",
        c.warnings
    );
    // The default: as many as fit off the server's node.
    let mut s = spec(vec![Variant::Native]);
    s.load.parallelism = s.load.pods_for_nodes(driver::load_node_count(2));
    let out = d.run(&s, &CancellationToken::new(), &|_| {}).await.unwrap();
    assert!(out.spec.separate_load);
    let c = comparison(&out, None);
    let k = c.meta.environment.kubernetes.as_ref().unwrap();
    assert_eq!(
        k.variants["native"].load_pods_per_node,
        BTreeMap::from([("node-2".to_owned(), 1)])
    );
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.contains("the node of its server"))
    );
}

#[tokio::test]
async fn without_variants_only_existing_runtime_classes_run() {
    let api = FakeApi::start(&load_log()).await;
    api.insert("/apis/node.k8s.io/v1/runtimeclasses", "wasmtime",
        serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "wasmtime"}, "handler": "wasmtime-shim"}));
    api.insert("/apis/node.k8s.io/v1/runtimeclasses", "wasmtime-spin-v2",
        serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "wasmtime-spin-v2"}, "handler": "spin"}));
    let mut opts = fast_opts();
    opts.install_runtime_classes = false;
    let d = driver(&api, opts).await;
    let mut s = spec(vec![Variant::Native]);
    let skipped = d.select_available(&mut s).await.unwrap();
    assert_eq!(s.variants, [Variant::Native, Variant::Wasmtime]);
    let names: Vec<Variant> = skipped.iter().map(|s| s.variant).collect();
    assert_eq!(
        names,
        [
            Variant::CrunWasmedge,
            Variant::CrunWasmedgeAot,
            Variant::Wasmedge,
            Variant::Wasmer,
            Variant::Spin,
            Variant::Shim,
            Variant::ShimHttp,
            Variant::ShimHttpP3,
        ]
    );
    for crun in &skipped[..2] {
        assert!(
            crun.reason.contains("RuntimeClass crun does not exist"),
            "{skipped:?}"
        );
    }
    assert!(skipped[4].reason.contains("--spin-image"), "{skipped:?}");

    let out = d.run(&s, &CancellationToken::new(), &|_| {}).await.unwrap();
    let c = report::comparison(
        &out,
        &ReportOptions {
            load_plan: &pod_plan(&out.spec),
            command_line: Vec::new(),
            skipped: &skipped,
            raw_dir: None,
        },
    )
    .unwrap();
    let status: Vec<(&str, VariantStatus)> = c
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.status))
        .collect();
    assert_eq!(
        status,
        [
            ("native", VariantStatus::Ok),
            ("crun-wasmedge", VariantStatus::Skipped),
            ("crun-wasmedge-aot", VariantStatus::Skipped),
            ("wasmtime", VariantStatus::Ok),
            ("wasmedge", VariantStatus::Skipped),
            ("wasmer", VariantStatus::Skipped),
            ("spin", VariantStatus::Skipped),
            ("wasmbench-shim", VariantStatus::Skipped),
            ("wasmbench-shim-http", VariantStatus::Skipped),
            ("wasmbench-shim-http-p3", VariantStatus::Skipped),
        ]
    );
    // The handler as the cluster has it names the runtime.
    assert_eq!(c.variant("wasmtime").unwrap().runtime.name, "wasmtime-shim");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("wasmer skipped: RuntimeClass wasmer"))
    );
    // Nothing was installed, and the existing RuntimeClasses stay.
    assert_eq!(
        api.names("/apis/node.k8s.io/v1/runtimeclasses"),
        vec!["wasmtime", "wasmtime-spin-v2"]
    );
}

#[tokio::test]
async fn not_ready_fails_that_variant_names_pod_and_events_and_cleans_up() {
    let api = FakeApi::start(&load_log()).await;
    api.state
        .lock()
        .unwrap()
        .never_ready
        .insert("echo-wasmtime".to_owned());
    let mut opts = fast_opts();
    opts.ready_timeout = Duration::from_millis(300);
    let d = driver(&api, opts).await;
    let progress = Mutex::new(Vec::new());
    let out = d
        .run(
            &spec(vec![Variant::Native, Variant::Wasmtime]),
            &CancellationToken::new(),
            &|p| progress.lock().unwrap().push(p),
        )
        .await
        .unwrap();
    assert!(out.variants[0].summary.is_ok(), "native still runs");
    let msg = out.variants[1].summary.as_ref().unwrap_err();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains("deployment echo-wasmtime not ready"), "{msg}");
    assert!(
        msg.contains("pod echo-wasmtime-5d8f7-x2k4p is Pending"),
        "{msg}"
    );
    assert!(msg.contains("ImagePullBackOff"), "{msg}");
    assert!(
        msg.contains(
            "Warning Failed: Failed to pull image \"localhost/wasmbench/echo-wasm:0.1.0\""
        ),
        "{msg}"
    );
    assert!(progress.lock().unwrap().iter().any(|p| matches!(
        p,
        DriverEvent::VariantFailed { variant, .. } if variant == "wasmtime"
    )));
    // The report says so, as a local run reports a server that did not start.
    let c = comparison(&out, None);
    let w = c.variant("wasmtime").unwrap();
    assert_eq!(w.status, VariantStatus::Failed);
    assert!(w.reason.as_deref().unwrap().contains("ImagePullBackOff"));
    assert!(
        c.warnings
            .iter()
            .any(|x| x.starts_with("wasmtime failed: deployment echo-wasmtime"))
    );
    // No load ran for it, and everything was deleted.
    let reqs = api.state.lock().unwrap().requests.clone();
    assert!(!reqs.iter().any(
        |r| r.starts_with("POST /apis/batch/v1/namespaces/wasmbench-t1/jobs")
            && r.contains("wasmtime")
    ));
    assert_eq!(
        reqs.iter()
            .filter(|r| r.starts_with("POST /apis/batch"))
            .count(),
        1,
        "only native's load Job"
    );
    assert_eq!(api.object_count(), 0);
}

#[tokio::test]
async fn cancellation_cleans_up() {
    let api = FakeApi::start(&load_log()).await;
    api.state
        .lock()
        .unwrap()
        .never_ready
        .insert("echo-native".to_owned());
    let d = driver(&api, fast_opts()).await;
    let cancel = CancellationToken::new();
    // Fire as soon as the objects exist, as Ctrl-C during the readiness wait would.
    let progress = |p: DriverEvent| {
        if matches!(p, DriverEvent::Applied { .. }) {
            cancel.cancel();
        }
    };
    let out = d
        .run(&spec(vec![Variant::Native]), &cancel, &progress)
        .await
        .unwrap();
    assert!(out.partial && out.variants.is_empty(), "{out:?}");
    assert_eq!(api.object_count(), 0);
}

#[tokio::test]
async fn cancel_keeps_the_variants_that_finished() {
    let api = FakeApi::start(&load_log()).await;
    let d = driver(&api, fast_opts()).await;
    let cancel = CancellationToken::new();
    // Ctrl-C right after the first variant's load finished.
    let progress = |p: DriverEvent| {
        if matches!(p, DriverEvent::LoadDone(_)) {
            cancel.cancel();
        }
    };
    let partial = d
        .run(
            &spec(vec![Variant::Native, Variant::Wasmtime]),
            &cancel,
            &progress,
        )
        .await
        .unwrap();
    assert!(partial.partial);
    assert!(partial.cleaned_up);
    assert_eq!(partial.variants.len(), 1, "{:?}", partial.variants);
    assert_eq!(partial.variants[0].server.variant, Some(Variant::Native));
    assert!(partial.variants[0].summary.is_ok());
    // The partial report: native measured, wasmtime never reached.
    let c = comparison(&partial, None);
    assert!(c.meta.partial);
    assert_eq!(c.variant("native").unwrap().status, VariantStatus::Ok);
    let w = c.variant("wasmtime").unwrap();
    assert_eq!(w.status, VariantStatus::Skipped);
    assert!(w.reason.as_deref().unwrap().contains("interrupted"));
    assert_eq!(api.object_count(), 0);
}

#[tokio::test]
async fn keep_leaves_objects() {
    let api = FakeApi::start(&load_log()).await;
    let mut opts = fast_opts();
    opts.keep = true;
    let d = driver(&api, opts).await;
    let out = d
        .run(
            &spec(vec![Variant::Wasmtime]),
            &CancellationToken::new(),
            &|_| {},
        )
        .await
        .unwrap();
    assert!(!out.cleaned_up);
    assert_eq!(
        api.names("/apis/apps/v1/namespaces/wasmbench-t1/deployments"),
        vec!["echo-wasmtime"]
    );
    // The stored object is what the server received: check the fields that matter on a node.
    let d = api
        .get(
            "/apis/apps/v1/namespaces/wasmbench-t1/deployments",
            "echo-wasmtime",
        )
        .unwrap();
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["runtimeClassName"], "wasmtime");
    assert_eq!(
        pod["containers"][0]["image"],
        "localhost/wasmbench/echo-wasm:0.1.0"
    );
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let job = api
        .get(
            "/apis/batch/v1/namespaces/wasmbench-t1/jobs",
            "load-wasmtime",
        )
        .unwrap();
    assert_eq!(job["spec"]["parallelism"], 2);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"][3],
        "2"
    );
    assert_eq!(api.names("/api/v1/namespaces"), vec!["wasmbench-t1"]);
}

#[tokio::test]
async fn existing_namespace_only_labelled_objects_are_deleted() {
    let api = FakeApi::start(&load_log()).await;
    api.insert(
        "/api/v1/namespaces",
        "bench",
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}),
    );
    // Somebody else's object in the same namespace must survive.
    api.insert(
        "/api/v1/namespaces/bench/services",
        "other",
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other", "namespace": "bench", "labels": {"app": "other"}}}),
    );
    let mut opts = fast_opts();
    opts.create_namespace = false;
    let d = driver(&api, opts).await;
    let mut s = spec(vec![Variant::Native, Variant::Wasmer]);
    s.namespace = "bench".to_owned();
    let out = d.run(&s, &CancellationToken::new(), &|_| {}).await.unwrap();
    assert!(out.cleaned_up);
    assert_eq!(api.names("/api/v1/namespaces"), vec!["bench"]);
    assert_eq!(
        api.names("/api/v1/namespaces/bench/services"),
        vec!["other"]
    );
    assert!(
        api.names("/apis/apps/v1/namespaces/bench/deployments")
            .is_empty()
    );
    assert!(api.names("/apis/batch/v1/namespaces/bench/jobs").is_empty());
    assert!(api.names("/api/v1/namespaces/bench/pods").is_empty());
    assert!(api.names("/apis/node.k8s.io/v1/runtimeclasses").is_empty());
}

#[tokio::test]
async fn missing_or_foreign_summary_fails_the_variant_and_still_cleans_up() {
    let api = FakeApi::start("wasmbench: error: connection refused\n").await;
    // A pod of the other variant prints JSON that is no load summary (an old image, say).
    api.state
        .lock()
        .unwrap()
        .load_logs
        .insert("load-wasmtime-".into(), "{\"requests\": 5}\n".into());
    let d = driver(&api, fast_opts()).await;
    let out = d
        .run(
            &spec(vec![Variant::Native, Variant::Wasmtime]),
            &CancellationToken::new(),
            &|_| {},
        )
        .await
        .unwrap();
    let msg = out.variants[0].summary.as_ref().unwrap_err();
    assert!(
        msg.starts_with("no JSON summary in the log of pod"),
        "{msg}"
    );
    assert!(
        msg.contains("load-native-0-q7w9z") && msg.contains("connection refused"),
        "{msg}"
    );
    let msg = out.variants[1].summary.as_ref().unwrap_err();
    assert!(
        msg.contains("load-wasmtime-0-q7w9z is not a wasmbench load summary"),
        "{msg}"
    );
    assert_eq!(api.object_count(), 0);
}

#[tokio::test]
async fn existing_runtime_class_is_not_deleted() {
    let api = FakeApi::start(&load_log()).await;
    api.insert("/apis/node.k8s.io/v1/runtimeclasses", "wasmtime",
        serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "wasmtime"}, "handler": "wasmtime"}));
    let d = driver(&api, fast_opts()).await;
    d.run(
        &spec(vec![Variant::Wasmtime]),
        &CancellationToken::new(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        api.names("/apis/node.k8s.io/v1/runtimeclasses"),
        vec!["wasmtime"]
    );
}

#[tokio::test]
async fn unreachable_server_is_one_clear_line() {
    // Bind then drop a listener: nothing answers on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let err = driver::connect_with_config(config, Duration::from_secs(5))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(err.is_cluster_unreachable(), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Kubernetes API server at http://127.0.0.1:{port}"
        )),
        "{msg}"
    );
    assert!(msg.contains("--kubeconfig") && !msg.contains('\n'), "{msg}");
}

#[tokio::test]
async fn kubeconfig_and_context_are_honoured() {
    let api = FakeApi::start(&load_log()).await;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n- name: dead\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\n    namespace: team-a\n- name: other\n  context:\n    cluster: dead\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
            url = api.url()
        ),
    )
    .unwrap();
    let opts = |ctx: Option<&str>| ClusterOptions {
        kubeconfig: Some(path.clone()),
        context: ctx.map(str::to_owned),
        connect_timeout: Some(Duration::from_secs(5)),
    };
    let c = driver::connect(&opts(Some("fake"))).await.unwrap();
    assert_eq!(c.default_namespace, "team-a");
    assert_eq!(c.server_version, "v1.33.0-fake");
    // The current context points at a dead server.
    let err = driver::connect(&opts(None)).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    let err = driver::connect(&opts(Some("nope"))).await.unwrap_err();
    assert!(matches!(err, Error::Kubeconfig { .. }), "{err}");
    assert!(err.is_cluster_unreachable());
}
