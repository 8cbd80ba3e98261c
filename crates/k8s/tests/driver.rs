//! The driver against an in-process fake API server speaking real HTTP/JSON.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use support::fake_api::FakeApi;
use tokio_util::sync::CancellationToken;
use wasmbench_k8s::driver::{self, ClusterOptions, Driver, DriverOptions, Progress};
use wasmbench_k8s::manifests::{RunSpec, SUMMARY_BEGIN, SUMMARY_END};
use wasmbench_k8s::{Error, Variant};

const RECORDED: &str = include_str!("data/summary.json");

fn load_log() -> String {
    format!(
        "wasmbench load starting on {{pod}}\nprogress 50%\n{SUMMARY_BEGIN}\n{RECORDED}\n{SUMMARY_END}\n"
    )
}

fn fast_opts() -> DriverOptions {
    DriverOptions {
        ready_timeout: Duration::from_secs(10),
        job_grace: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
        cleanup_timeout: Duration::from_secs(10),
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

#[tokio::test]
async fn apply_wait_collect_cleanup() {
    let api = FakeApi::start(&load_log()).await;
    let d = driver(&api, fast_opts()).await;
    let events = Mutex::new(Vec::new());
    let progress = |p: Progress| events.lock().unwrap().push(format!("{p:?}"));
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
    assert_eq!(out.schedulable_nodes, vec!["node-a", "node-b"]);
    assert!(
        out.spec.separate_load,
        "two schedulable nodes: load is kept apart"
    );
    let recorded: serde_json::Value = serde_json::from_str(RECORDED).unwrap();
    assert_eq!(
        out.variants.iter().map(|v| v.variant).collect::<Vec<_>>(),
        variants
    );
    for v in &out.variants {
        assert_eq!(v.load_pods.len(), 2, "{}", v.variant);
        for p in &v.load_pods {
            assert_eq!(p.summary, recorded);
            assert_eq!(p.node.as_deref(), Some("node-b"));
        }
        assert_eq!(v.server_nodes, vec!["node-a"]);
    }
    assert_eq!(out.variants[1].runtime_class.as_deref(), Some("crun"));

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
        .filter(|r| r.starts_with("POST /apis/batch") || r.contains("/log?"))
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
async fn not_ready_names_pod_and_events_and_cleans_up() {
    let api = FakeApi::start(&load_log()).await;
    api.state
        .lock()
        .unwrap()
        .never_ready
        .insert("echo-wasmtime".to_owned());
    let mut opts = fast_opts();
    opts.ready_timeout = Duration::from_millis(300);
    let d = driver(&api, opts).await;
    let err = d
        .run(
            &spec(vec![Variant::Native, Variant::Wasmtime]),
            &CancellationToken::new(),
            &|_| {},
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotReady { .. }), "{msg}");
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
    // No load ran, and everything was deleted.
    let reqs = api.state.lock().unwrap().requests.clone();
    assert!(!reqs.iter().any(|r| r.starts_with("POST /apis/batch")));
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
    let progress = |p: Progress| {
        if matches!(p, Progress::Applied { .. }) {
            cancel.cancel();
        }
    };
    let err = d
        .run(&spec(vec![Variant::Native]), &cancel, &progress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled(Some(_))), "{err}");
    assert_eq!(api.object_count(), 0);
}

#[tokio::test]
async fn cancel_keeps_the_variants_that_finished() {
    let api = FakeApi::start(&load_log()).await;
    let d = driver(&api, fast_opts()).await;
    let cancel = CancellationToken::new();
    // Ctrl-C right after the first variant's load finished.
    let progress = |p: Progress| {
        if matches!(p, Progress::LoadDone(_)) {
            cancel.cancel();
        }
    };
    let err = d
        .run(
            &spec(vec![Variant::Native, Variant::Wasmtime]),
            &cancel,
            &progress,
        )
        .await
        .unwrap_err();
    let Error::Cancelled(Some(partial)) = err else {
        panic!("expected a cancelled run with its partial outcome, got {err}");
    };
    assert!(partial.partial);
    assert!(partial.cleaned_up);
    assert_eq!(partial.variants.len(), 1, "{:?}", partial.variants);
    assert_eq!(partial.variants[0].variant, Variant::Native);
    assert!(
        partial.variants[0]
            .load_pods
            .iter()
            .all(|p| p.summary.is_object())
    );
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
async fn missing_summary_is_an_error_and_still_cleans_up() {
    let api = FakeApi::start("wasmbench: error: connection refused\n").await;
    let d = driver(&api, fast_opts()).await;
    let err = d
        .run(
            &spec(vec![Variant::Native]),
            &CancellationToken::new(),
            &|_| {},
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NoSummary { .. }), "{msg}");
    assert!(
        msg.contains("load-native-0-q7w9z") && msg.contains("connection refused"),
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
