//! SIGINT/SIGTERM during `wasmbench k8s run`: the real binary against the fake Kubernetes API
//! of crates/k8s/tests (real HTTP on 127.0.0.1). The run is interrupted while it waits for a
//! Deployment that never becomes ready; it must delete everything it created, write its
//! partial record, exit with 105 and leave no process behind.

#[path = "../../k8s/tests/support/fake_api.rs"]
#[allow(dead_code)]
mod fake_api;
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

fn interrupt_k8s_run(signal: i32, name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = rt.block_on(FakeApi::start(""));
    // The wasmtime server never becomes ready, so the run is still waiting when interrupted.
    api.state
        .lock()
        .unwrap()
        .never_ready
        .insert("echo-wasmtime".to_owned());

    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
            api.url()
        ),
    )
    .unwrap();
    let out = tmp.path().join("result");
    let tag = format!("WASMBENCH_TEST_TAG=k8s-{name}-{}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_wasmbench"))
            .args([
                "k8s",
                "run",
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

    // The partial record.
    let path = out.join("k8s-run.json");
    assert!(
        stdout.contains(&format!("wrote {}", path.display())),
        "{name}: {stdout}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(record["partial"], true, "{record}");
    assert_eq!(record["interrupted"], true, "{record}");
    assert_eq!(record["cleaned_up"], true, "{record}");
    assert_eq!(record["namespace"], namespaces[0].as_str(), "{record}");
    assert_eq!(
        record["spec"]["namespace"],
        namespaces[0].as_str(),
        "{record}"
    );
    assert_eq!(record["variants_ready"], serde_json::json!(["native"]));
    assert_eq!(record["variants_load_done"], serde_json::json!([]));
    assert_eq!(record["server_version"], "v1.33.0-fake");
    // Nothing else in the output directory, and no process left behind.
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["k8s-run.json"], "{name}");
    assert!(
        processes_tagged(&tag, 0).is_empty(),
        "{name}: processes left behind"
    );
    drop(api);
    drop(rt);
}

#[test]
fn sigint_during_k8s_run_cleans_up_and_writes_a_partial_record() {
    interrupt_k8s_run(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_during_k8s_run_cleans_up_and_writes_a_partial_record() {
    interrupt_k8s_run(libc::SIGTERM, "sigterm");
}
