//! `wasmbench k8s run`, the real binary against the fake Kubernetes API of crates/k8s/tests
//! (real HTTP on 127.0.0.1): a whole run writes the same report files as `compare --out` and
//! `wasmbench report DIR` re-renders them; SIGINT/SIGTERM while it waits for a Deployment that
//! never becomes ready must delete everything it created, write the partial report, exit with
//! 105 and leave no process behind.

#[path = "../../k8s/tests/support/fake_api.rs"]
#[allow(dead_code)]
mod fake_api;
#[path = "../../k8s/tests/support/summaries.rs"]
mod summaries;
mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fake_api::FakeApi;
use support::processes_tagged;

/// `Exit::Interrupted` in the README table.
const INTERRUPTED: i32 = 105;

/// A child killed on drop, so a failing assertion never leaves it running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Polls `cond` every 20 ms until it holds or `within` has passed.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A kubeconfig in `dir` pointing at `api`.
fn kubeconfig(dir: &std::path::Path, api: &FakeApi) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
            api.url()
        ),
    )
    .unwrap();
    path
}

#[test]
fn k8s_run_writes_the_comparison_and_report_re_renders_it() {
    let rt = runtime();
    let api = rt.block_on(FakeApi::start(""));
    {
        let mut s = api.state.lock().unwrap();
        for (v, base) in [("native", 100), ("wasmtime", 180)] {
            for i in 0..2 {
                let lat = summaries::latencies(200, base + 10 * i, 2);
                let sum = summaries::summary(&lat, 2, i as i64, 1);
                s.load_logs
                    .insert(format!("load-{v}-{i}"), summaries::log(&sum));
            }
        }
    }
    // Only the wasmtime RuntimeClass exists: without --variants, the others are skipped.
    api.insert("/apis/node.k8s.io/v1/runtimeclasses", "wasmtime",
        serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "wasmtime"}, "handler": "wasmtime"}));
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(tmp.path(), &api);
    let out = tmp.path().join("result");
    let run = Command::new(env!("CARGO_BIN_EXE_wasmbench"))
        .args([
            "k8s",
            "run",
            // This API has no kubelet behind it (the real cluster test reads the kubelet).
            "--no-node-stats",
            "--vus",
            "4",
            "--duration",
            "1s",
            "--format",
            "markdown",
        ])
        .arg("--out")
        .arg(&out)
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(0),
        "stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    assert!(
        stderr.contains("crun-wasmedge: skipped: RuntimeClass crun does not exist"),
        "{stderr}"
    );
    // The demo's table with the ratio column, on stdout as asked.
    assert!(
        stdout.contains("| Metric Name | Description | native | Wasm | Wasm/native |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("native = `native`, Wasm = `wasmtime`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("load pods: node-b ×1, node-c ×1"),
        "{stdout}"
    );

    assert_eq!(sorted_entries(&out), REPORT_ENTRIES);
    assert!(out.join("runs/native-r1.json").is_file());
    assert!(out.join("runs/pods/load-wasmtime-1-q7w9z.json").is_file());
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(c["meta"]["environment"]["platform"], "kubernetes");
    assert_eq!(c["variants"][0]["status"], "ok");
    assert_eq!(c["variants"][0]["runs"][0]["http_reqs"], 400);
    let status = |name: &str| {
        c["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| v["status"].clone())
    };
    assert_eq!(status("wasmtime"), Some("ok".into()));
    assert_eq!(status("crun-wasmedge"), Some("skipped".into()));
    assert_eq!(status("crun-wasmedge-aot"), Some("skipped".into()));
    // Two load pods by default: three schedulable nodes, one runs the server.
    assert_eq!(
        c["meta"]["environment"]["kubernetes"]["variants"]["wasmtime"]["load_pods_per_node"],
        serde_json::json!({"node-b": 1, "node-c": 1})
    );
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/comparison.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&c).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // `wasmbench report DIR` renders the saved run exactly as the run did.
    let again = Command::new(env!("CARGO_BIN_EXE_wasmbench"))
        .args(["report", "--format", "markdown"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        std::fs::read_to_string(out.join("report.md")).unwrap()
    );
    assert_eq!(
        api.object_count(),
        1,
        "only the pre-existing RuntimeClass is left"
    );
    drop(api);
    drop(rt);
}

fn interrupt_k8s_run(signal: i32, name: &str) {
    let rt = runtime();
    let api = rt.block_on(FakeApi::start(""));
    // The wasmtime server never becomes ready, so the run is still waiting when interrupted.
    api.state
        .lock()
        .unwrap()
        .never_ready
        .insert("echo-wasmtime".to_owned());

    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(tmp.path(), &api);
    let out = tmp.path().join("result");
    let tag = format!("WASMBENCH_TEST_TAG=k8s-{name}-{}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_wasmbench"))
            .args([
                "k8s",
                "run",
                "--no-node-stats",
                "--variants",
                "native,wasmtime",
                "--vus",
                "2",
                "--duration",
                "5s",
                "--timeout",
                "600s",
                "--out",
                out.to_str().unwrap(),
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env(k, v)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = drain(child.0.stdout.take().unwrap());
    let stderr = drain(child.0.stderr.take().unwrap());

    // Interrupt once the run's objects exist and it polls the Deployments for readiness.
    let requests = || api.state.lock().unwrap().requests.clone();
    let waiting = wait_for(Duration::from_secs(120), || {
        let r = requests();
        let posted = |what: &str| r.iter().any(|q| q.starts_with("POST ") && q.contains(what));
        posted("/api/v1/namespaces?")
            && posted("/deployments?")
            && posted("/services?")
            && r.iter()
                .any(|q| q.starts_with("GET ") && q.contains("/deployments/echo-wasmtime?"))
    });
    if !waiting {
        let _ = child.0.kill();
        panic!(
            "{name}: the run never reached the readiness wait; requests: {:?}\nstderr:\n{}",
            requests(),
            stderr.join().unwrap()
        );
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "{name}: the run ended by itself"
    );
    let created: Vec<String> = requests()
        .into_iter()
        .filter(|q| q.starts_with("POST "))
        .collect();
    let namespaces = api.names("/api/v1/namespaces");
    let runtime_classes = api.names("/apis/node.k8s.io/v1/runtimeclasses");
    assert_eq!(namespaces.len(), 1, "{name}: {namespaces:?}");
    assert!(
        namespaces[0].starts_with("wasmbench-"),
        "{name}: {namespaces:?}"
    );
    assert_eq!(runtime_classes.len(), 1, "{name}: {runtime_classes:?}");
    assert!(api.object_count() > 1, "{name}: nothing was created");

    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.0.id() as i32, signal) };
    let mut status = None;
    let stopped = wait_for(Duration::from_secs(60), || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(stopped, "{name}: `k8s run` did not stop after the signal");
    let stderr = stderr.join().unwrap();
    let stdout = stdout.join().unwrap();
    assert_eq!(
        status.unwrap().code(),
        Some(INTERRUPTED),
        "{name}: stderr:\n{stderr}"
    );

    // Everything it created was deleted: the namespace (and with it every namespaced object)
    // and the RuntimeClasses it installed.
    let r = requests();
    let deleted = |path: &str| r.iter().any(|q| q.starts_with(&format!("DELETE {path}?")));
    assert!(
        deleted(&format!("/api/v1/namespaces/{}", namespaces[0])),
        "{name}: namespace not deleted; created {created:?}; requests {r:?}"
    );
    for rc in &runtime_classes {
        assert!(
            deleted(&format!("/apis/node.k8s.io/v1/runtimeclasses/{rc}")),
            "{name}: RuntimeClass {rc} not deleted; requests {r:?}"
        );
    }
    assert_eq!(
        api.object_count(),
        0,
        "{name}: objects left in the fake cluster after {created:?}"
    );

    // The partial report, the same files a whole run writes.
    assert!(
        stderr.contains(&format!("wrote {}", out.display())),
        "{name}: {stderr}"
    );
    assert!(stdout.contains("PARTIAL RESULT"), "{name}: {stdout}");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(c["meta"]["partial"], true, "{c}");
    let k = &c["meta"]["environment"]["kubernetes"];
    assert_eq!(k["cleaned_up"], true, "{c}");
    assert_eq!(k["namespace"], namespaces[0].as_str(), "{c}");
    assert_eq!(k["server_version"], "v1.33.0-fake");
    for v in c["variants"].as_array().unwrap() {
        assert_eq!(v["status"], "skipped", "{name}: no load finished: {v}");
    }
    // Nothing else in the output directory (no load finished, so no raw summaries beyond the
    // empty runs/), and no process left behind.
    assert_eq!(sorted_entries(&out), REPORT_ENTRIES, "{name}");
    assert!(
        processes_tagged(&tag, 0).is_empty(),
        "{name}: processes left behind"
    );
    drop(api);
    drop(rt);
}

#[test]
fn sigint_during_k8s_run_cleans_up_and_writes_a_partial_report() {
    interrupt_k8s_run(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_during_k8s_run_cleans_up_and_writes_a_partial_report() {
    interrupt_k8s_run(libc::SIGTERM, "sigterm");
}

/// What `--out DIR` holds after a run, complete or interrupted.
const REPORT_ENTRIES: [&str; 5] = [
    "comparison.json",
    "report.html",
    "report.md",
    "report.txt",
    "runs",
];

/// The names in `dir`, sorted.
fn sorted_entries(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}
