//! The demo's run on a real cluster: `scripts/cluster/up.sh` starts a control plane and two
//! nodes (kube-apiserver, controller-manager, scheduler, etcd, and per node a kubelet,
//! containerd and kube-proxy) in network namespaces of their own, with this crate's shim
//! installed as RuntimeClass `wasmbench`; `wasmbench k8s run` loads the native echo and the
//! wasip2 echo under the shim from two load pods, one per node; the report, the cleanup and
//! the faults a cluster user meets are checked against the real API; `down.sh` removes it all.
//!
//! Needs root, Go (the components are built from the Go module proxy by the script, cached by
//! content), containerd, runc, iptables and the CNI plugins (`scripts/setup.sh --test`). Skips
//! with a message when they are missing; with `CI=true` it fails instead.
//!
//! With `WASMBENCH_CRUN=PATH` (a crun built `--with-wasmedge`, and that WasmEdge's `wasmedge`
//! on PATH to compile the AOT module) the nodes also get crun as RuntimeClass `crun`, and the
//! demo's own Wasm side runs too: crun-wasmedge and crun-wasmedge-aot. No registry ships such
//! a crun, so without the variable that part says it did not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../../cli/src/exit.rs"]
#[allow(dead_code)]
mod exit;
use exit::Exit;
use wasmbench_k8s::build;
use wasmbench_k8s::image::{self, ImageSpec};
use wasmbench_k8s::manifests::{LABEL_MANAGED_BY, LABEL_ROLE};
use wasmbench_k8s::variant::ImageKind;

/// The cluster of this test: its own directory, namespace prefix and node network, so that it
/// never touches a cluster a user started with the defaults.
const PREFIX: &str = "wbt";
const NET: &str = "10.202.0";
const TAG: &str = "0.0.0-cluster-test";
const SHIM_VARIANT: &str = "wasmbench-shim";
/// The same shim serving the echo as a WASI 0.3 wasi:http component.
const SHIM_P3_VARIANT: &str = "wasmbench-shim-http-p3";
/// A user's service that is not our echo (examples/kv), as their images are named in the
/// cluster's registry.
const KV_NATIVE: &str = "user/kv:1.0";
const KV_WASM: &str = "user/kv-wasm:1.0";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn cluster_dir() -> PathBuf {
    PathBuf::from("/var/tmp/wasmbench-cluster-test")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the machine can run the cluster; with `CI=true` a missing piece fails the test.
fn environment_ready() -> bool {
    let required = std::env::var("CI").is_ok_and(|v| v == "true");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut missing: Vec<String> = [
        "go",
        "containerd",
        "ctr",
        "runc",
        "iptables",
        "openssl",
        "k6",
    ]
    .into_iter()
    .filter(|t| !have(t))
    .map(str::to_owned)
    .collect();
    if !Path::new("/usr/lib/cni/bridge").exists() {
        missing.push("/usr/lib/cni/bridge (containernetworking-plugins)".into());
    }
    if !is_root {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "the real-cluster test needs {} (scripts/setup.sh --test installs the packages)",
        missing.join(", ")
    );
    assert!(!required, "{msg}");
    eprintln!("SKIP: {msg}");
    false
}

fn script(name: &str) -> Command {
    let mut cmd = Command::new(repo_root().join("scripts/cluster").join(name));
    cmd.env("WBC_DIR", cluster_dir())
        .env("WBC_PREFIX", PREFIX)
        .env("WBC_NET", NET);
    cmd
}

fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running cluster; `down.sh` on drop, also when the test panics.
struct Cluster {
    kubeconfig: PathBuf,
    /// The cluster's registry (`HOST:PORT`), which the nodes pull from.
    registry: String,
}

impl Cluster {
    fn up(images: &Path, shim: &Path, crun: Option<&Path>) -> Cluster {
        let started = Instant::now();
        let out = script("up.sh")
            .arg("--images")
            .arg(images)
            .env("WBC_SHIM", shim)
            .env("WBC_CRUN", crun.unwrap_or(Path::new("")))
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/cluster/up.sh");
        let text = output_text(&out);
        assert!(out.status.success(), "cluster bring-up failed: {text}");
        let kubeconfig = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("KUBECONFIG=").map(PathBuf::from))
            .unwrap_or_else(|| panic!("up.sh printed no KUBECONFIG= line: {text}"));
        let registry = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("REGISTRY=").map(str::to_owned))
            .unwrap_or_else(|| panic!("up.sh printed no REGISTRY= line: {text}"));
        eprintln!(
            "cluster up in {:.1} s (including the Go build when not cached)",
            started.elapsed().as_secs_f64()
        );
        Cluster {
            kubeconfig,
            registry,
        }
    }

    /// Pushes an image archive to the cluster's registry as `repository:tag` and returns the
    /// reference the nodes pull.
    fn push(&self, archive: &Path, name: &str) -> String {
        let out = script("push.sh").arg(archive).arg(name).output().unwrap();
        assert!(out.status.success(), "push {name}: {}", output_text(&out));
        format!("{}/{name}", self.registry)
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(cluster_dir().join("bin/kube"))
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// The cluster's kubeconfig with its user's client certificate replaced by `token`,
    /// written to `path`.
    fn kubeconfig_with_token(&self, token: &str, path: &Path) -> PathBuf {
        let kubeconfig = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let users = kubeconfig.find("users:").unwrap();
        let contexts = kubeconfig.find("contexts:").unwrap();
        std::fs::write(
            path,
            format!(
                "{}users:\n- name: admin\n  user:\n    token: {token}\n{}",
                &kubeconfig[..users],
                &kubeconfig[contexts..]
            ),
        )
        .unwrap();
        path.to_owned()
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Resident memory of every process of the cluster (control plane, nodes, shims, pods), in
    /// MiB: the components and shims name the cluster's directory in their arguments.
    fn rss_mib(&self) -> f64 {
        let mut kib = 0u64;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let in_cluster = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains(cluster_dir().to_str().unwrap()) || is_pod(pid));
            if !in_cluster {
                continue;
            }
            kib += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        kib as f64 / 1024.0
    }
}

/// A pod's processes sit in the kubelets' cgroups (`cgroupRoot` `/<prefix>-n<i>`).
fn is_pod(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|c| c.contains(&format!(":/{PREFIX}-n")))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = script("down.sh")
            .output()
            .expect("run scripts/cluster/down.sh");
        if !out.status.success() {
            eprintln!("cluster teardown failed: {}", output_text(&out));
        }
    }
}

/// The crun built with WasmEdge named by `WASMBENCH_CRUN`, if any.
fn crun() -> Option<PathBuf> {
    match std::env::var_os("WASMBENCH_CRUN").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "WASMBENCH_CRUN={} is not a file", p.display());
            Some(p)
        }
        None => {
            eprintln!(
                "crun-wasmedge NOT RUN: set WASMBENCH_CRUN to a crun built --with-wasmedge (docs/kubernetes.md) to run the demo's Wasm side too"
            );
            None
        }
    }
}

/// The WasmEdge socket build, as is and compiled by `wasmedge compile` (the `wasmedge` on
/// PATH, which should be the WasmEdge the nodes' crun loads).
fn wasmedge_modules(root: &Path, target: &Path) -> [(ImageKind, PathBuf); 2] {
    use wasmbench_runtime::ExecMode;
    use wasmbench_runtime::external::WasmEdgeCli;
    let module = build::build_wasmedge_echo(root, target).expect("build the WasmEdge echo");
    let sha = wasmbench_runtime::build::sha256_file(&module).unwrap();
    let aot = WasmEdgeCli::new(ExecMode::Aot)
        .compile_aot(&module, &sha)
        .unwrap_or_else(|e| panic!("WASMBENCH_CRUN is set, but the AOT module: {e}"));
    [
        (ImageKind::WasmEdge, module),
        (ImageKind::WasmEdgeAot, aot.path),
    ]
}

/// Separate target dir, shared with `crates/k8s/tests/containerd.rs`: the same static builds.
fn image_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("k8s-images")
}

/// Builds the images the run needs into `dir` and returns the static wasmbench, which is also
/// the CLI that runs `k8s run` here (one static build for both). The k6 image is packed by
/// that CLI's `image build`, from the k6 on PATH.
fn build_images(dir: &Path, crun: bool) -> PathBuf {
    let root = repo_root();
    let target = image_target_dir();
    let native = build::build_native_echo(&root, &target).expect("build static echo");
    let wasm = build::build_wasm_echo(&root, &target, "wasm32-wasip2").expect("build wasip2 echo");
    let p3 =
        build::build_wasi_http_echo(&root, &target, true).expect("build the wasi:http 0.3 echo");
    let wasmbench = build::build_wasmbench(&root, &target).expect("build static wasmbench");
    let mut images = vec![
        (ImageKind::Native, native),
        (ImageKind::Wasm, wasm),
        (ImageKind::WasiHttpP3, p3),
        (ImageKind::Wasmbench, wasmbench.clone()),
    ];
    if crun {
        images.extend(wasmedge_modules(&root, &target));
    }
    for (kind, binary) in &images {
        let (kind, binary) = (*kind, binary);
        let reference = image::reference("localhost/wasmbench", kind, TAG);
        image::write_archive(
            &ImageSpec::for_kind(kind, binary, &reference),
            &dir.join(format!("{}.tar", kind.repository())),
        )
        .unwrap();
    }
    kv_images(&root, &target, &dir.join("user"));
    let k6 = Command::new(&wasmbench)
        .args([
            "image",
            "build",
            "--which",
            "k6",
            "--archive",
            "--image-tag",
            TAG,
        ])
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run wasmbench image build");
    assert!(k6.status.success(), "k6 image: {}", output_text(&k6));
    wasmbench
}

/// examples/kv as a user would ship it: a static native image and a wasip2 component image,
/// written to `dir` as `kv-1.0.tar` and `kv-wasm-1.0.tar` (pushed to the registry, not imported
/// on the nodes: their pods pull them).
fn kv_images(root: &Path, target: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let (native, _) = build::build_static(
        root,
        target,
        "wasmbench-example-kv",
        "kv",
        "release",
        false,
        false,
    )
    .expect("build the static kv");
    let wasm = build::CargoBuild {
        workspace: root.to_owned(),
        target_dir: target.to_owned(),
        package: "wasmbench-example-kv".to_owned(),
        bin: "kv".to_owned(),
        lib: false,
        target: "wasm32-wasip2".to_owned(),
        profile: "artifact".to_owned(),
        rustflags: Vec::new(),
        no_default_features: false,
    }
    .run()
    .expect("build the wasip2 kv");
    for (kind, binary, reference, file) in [
        (ImageKind::Native, native, KV_NATIVE, "/kv"),
        (ImageKind::Wasm, wasm, KV_WASM, "/kv.wasm"),
    ] {
        let mut spec = ImageSpec::for_kind(kind, &binary, reference);
        spec.files[0].path = file.to_owned();
        spec.entrypoint = vec![file.to_owned()];
        spec.labels
            .insert("org.opencontainers.image.title".to_owned(), "kv".to_owned());
        let name = reference.rsplit('/').next().unwrap().replace(':', "-");
        image::write_archive(&spec, &dir.join(format!("{name}.tar"))).unwrap();
    }
}

struct Wasmbench {
    binary: PathBuf,
    kubeconfig: PathBuf,
}

impl Wasmbench {
    fn command(&self, kubeconfig: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["k8s", "run", "--image-tag", TAG, "--kubeconfig"])
            .arg(kubeconfig)
            .args(extra)
            .stdin(Stdio::null());
        cmd
    }

    fn k8s_run(&self, extra: &[&str]) -> Output {
        self.command(&self.kubeconfig, extra)
            .output()
            .expect("run wasmbench k8s run")
    }

    /// Runs `k8s run` with `extra` and `--out out_dir`, asserts that it succeeded and returns
    /// its comparison.json.
    fn k8s_run_ok(&self, extra: &[&str], out_dir: &Path) -> Value {
        let mut args = extra.to_vec();
        args.extend(["--out", out_dir.to_str().unwrap()]);
        let run = self.k8s_run(&args);
        assert!(
            run.status.success(),
            "k8s run {extra:?} failed: {}",
            output_text(&run)
        );
        read_json(&out_dir.join("comparison.json"))
    }

    /// Starts `k8s run --variants native --vus 2 --duration D --out DIR`, its stderr in `log`,
    /// and returns once its load pod runs.
    fn start_native_load(
        &self,
        cluster: &Cluster,
        duration: &str,
        out_dir: &Path,
        log: &Path,
    ) -> std::process::Child {
        let args = [
            "--variants",
            "native",
            "--vus",
            "2",
            "--duration",
            duration,
            "--out",
            out_dir.to_str().unwrap(),
        ];
        let child = self
            .command(&cluster.kubeconfig, &args)
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        wait_for_load_pod(cluster);
        child
    }

    /// Runs `k8s run` with `extra` and asserts its exit code and that it said why in one line.
    fn expect_failure(&self, kubeconfig: &Path, extra: &[&str], code: Exit, says: &[&str]) {
        let out = self
            .command(kubeconfig, extra)
            .output()
            .expect("run wasmbench k8s run");
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(code as i32), "{extra:?}: {text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("wasmbench:"))
            .unwrap_or_else(|| panic!("{extra:?}: no `wasmbench: ...` line: {text}"));
        for word in says {
            assert!(
                line.to_lowercase().contains(&word.to_lowercase()),
                "{extra:?}: the error line does not say {word:?}: {line}"
            );
        }
        eprintln!("{extra:?} -> exit {}: {line}", code as i32);
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The variants' names in a comparison.json, in report order.
fn variant_names(report: &Value) -> Vec<&str> {
    report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect()
}

/// Nothing of any run is left: no run namespace, no object labelled by wasmbench.
fn assert_nothing_left(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let ours = format!("{LABEL_MANAGED_BY}=wasmbench");
    loop {
        let namespaces = cluster.kubectl_ok(&["get", "namespaces", "-l", &ours, "-o", "name"]);
        let objects = cluster.kubectl_ok(&[
            "get",
            "deployments,services,jobs,pods,configmaps,runtimeclasses",
            "--all-namespaces",
            "-l",
            &ours,
            "-o",
            "name",
        ]);
        if namespaces.trim().is_empty() && objects.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left in the cluster after the run:\n{namespaces}{objects}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn demo_runs_on_a_real_two_node_cluster() {
    if !environment_ready() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let crun = crun();
    let wasmbench = build_images(&images, crun.is_some());
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-wasmbench-v1"));
    let cluster = Cluster::up(&images, &shim, crun.as_deref());
    eprintln!("cluster RSS after bring-up: {:.0} MiB", cluster.rss_mib());
    let nodes = cluster.kubectl_ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.lines().count(), 2, "{nodes}");
    let wb = Wasmbench {
        binary: wasmbench,
        kubeconfig: cluster.kubeconfig.clone(),
    };

    // The demo's comparison, short: native and the shim's Wasm pods (the socket echo and the
    // WASI 0.3 wasi:http echo), two load pods each.
    let out_dir = work.path().join("run");
    let variants = format!("native,{SHIM_VARIANT}");
    let run_variants = format!("{variants},{SHIM_P3_VARIANT}");
    let run = wb.k8s_run(&[
        "--variants",
        &run_variants,
        "--vus",
        "10",
        "--duration",
        "5s",
        "--parallelism",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "k8s run failed: {}",
        output_text(&run)
    );
    eprintln!(
        "cluster RSS at the end of the run: {:.0} MiB",
        cluster.rss_mib()
    );
    let report = read_json(&out_dir.join("comparison.json"));
    let env = &report["meta"]["environment"];
    assert_eq!(env["platform"], "kubernetes", "{env}");
    let k8s = &env["kubernetes"];
    assert!(
        k8s["server_version"].as_str().unwrap().starts_with("v1.33"),
        "{k8s}"
    );
    assert_eq!(k8s["nodes"].as_array().unwrap().len(), 2, "{k8s}");
    assert_eq!(k8s["cleaned_up"], true, "{k8s}");
    let names = variant_names(&report);
    assert_eq!(names, ["native", SHIM_VARIANT, SHIM_P3_VARIANT], "{report}");
    for v in report["variants"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["status"], "ok", "{name}: {v}");
        assert_cost_figures(v);
        let run = &v["runs"][0];
        assert!(run["http_reqs"].as_u64().unwrap() > 0, "{name}: {run}");
        for phase in ["blocked", "connecting", "sending", "waiting", "receiving"] {
            let phase = format!("http_req_{phase}");
            assert!(
                run["phases"][&phase].is_object(),
                "{name}: phase {phase} missing: {run}"
            );
        }
        if name == SHIM_VARIANT {
            // Observed, not declared: the shim's host report from the server pod's log.
            let runtime = &v["runtime"];
            assert!(
                runtime["version"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("wasmtime 48.")),
                "{runtime}"
            );
            assert_eq!(runtime["mode"], "cranelift-jit", "{runtime}");
        }
        if name == SHIM_P3_VARIANT {
            // The 0.3 component, served by the shim's wasi:http host: its report says so.
            let runtime = &v["runtime"];
            assert_eq!(runtime["details"]["host.wasi_http"], "0.3", "{runtime}");
            assert_eq!(runtime["details"]["instance_reuse"], "1", "{runtime}");
            assert!(
                runtime["version"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("wasmtime 48.")),
                "{runtime}"
            );
        }
        let placement = &k8s["variants"][name]["load_pods_per_node"];
        assert_eq!(
            placement.as_object().map(|m| m.len()),
            Some(2),
            "{name}: load pods not on both nodes: {placement}"
        );
    }
    let markdown = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("http_req_waiting"), "{markdown}");
    assert!(markdown.contains("/native"), "no ratio column:\n{markdown}");
    assert!(
        markdown.contains("wasi:http 0.3, instance per request"),
        "no wasi:http version in the runtime line:\n{markdown}"
    );
    let rerender = Command::new(&wb.binary)
        .arg("report")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(rerender.status.success(), "{}", output_text(&rerender));
    assert_nothing_left(&cluster);

    demo_k6_job(&cluster, &wb, work.path(), &variants);
    if crun.is_some() {
        crun_wasmedge(&cluster, &wb, work.path());
    }
    runtimes(&cluster, &wb, work.path());
    own_service(&cluster, &wb, work.path(), &images.join("user"));
    faults(&cluster, &wb, work.path());
}

/// The kubelet's figures of one variant of a report: server CPU per 1k requests, peak memory,
/// pod start and image size, all present and plausible.
fn assert_cost_figures(v: &Value) {
    let name = v["name"].as_str().unwrap();
    let run = &v["runs"][0];
    let server = &run["server"];
    assert_eq!(server["source"], "kubelet-summary", "{name}: {run}");
    assert!(
        server["cpu_ms_per_1k_req"]
            .as_f64()
            .is_some_and(|c| c > 0.0),
        "{name}: {server}"
    );
    assert!(
        server["rss_peak_bytes"]
            .as_u64()
            .is_some_and(|b| b > 100_000),
        "{name}: {server}"
    );
    let cold = run["cold_start_ms"].as_array().unwrap();
    assert_eq!(cold.len(), 1, "{name}: pod start missing: {run}");
    assert!(
        v["artifact"]["size_bytes"]
            .as_u64()
            .is_some_and(|b| b > 10_000),
        "{name}: image size missing: {v}"
    );
    assert!(
        v["runtime"]["details"]["pod_start"]
            .as_str()
            .is_some_and(|s| s.contains("ready +")),
        "{name}: {v}"
    );
}

/// A user's own service (examples/kv, not our echo) from their images: native under the node's
/// default runtime, the wasip2 component under the project's shim; its cost figures from the
/// kubelet. Then what a user of a shared cluster meets: a RuntimeClass that does not exist, an
/// account limited to one namespace without `nodes/proxy` (one line, exit 14), and that same
/// account's run with `--no-node-stats`.
fn own_service(cluster: &Cluster, wb: &Wasmbench, work: &Path, archives: &Path) {
    let native = cluster.push(&archives.join("kv-1.0.tar"), KV_NATIVE);
    let wasm = cluster.push(&archives.join("kv-wasm-1.0.tar"), KV_WASM);
    let wasm_image = format!("{wasm}=wasmbench");
    let own = [
        "--native-image",
        &native,
        "--wasm-image",
        &wasm_image,
        // Pulled from the registry by the nodes, every time.
        "--image-pull-policy",
        "Always",
        "--ready-path",
        "/healthz",
        "--method",
        "PUT",
        "--path",
        "/kv/answer",
        "--body",
        "42",
        "--check",
        "status == 200",
        "--vus",
        "10",
        "--duration",
        "5s",
        "--parallelism",
        "1",
    ];
    let report = wb.k8s_run_ok(&own, &work.join("own"));
    let names = variant_names(&report);
    assert_eq!(names, ["native", "wasm-wasmbench"], "{report}");
    for v in report["variants"].as_array().unwrap() {
        assert_eq!(v["status"], "ok", "{v}");
        assert_cost_figures(v);
        assert_eq!(
            v["runtime"]["details"]["image"].as_str(),
            Some(
                if v["name"] == "native" {
                    &native
                } else {
                    &wasm
                }
                .as_str()
            ),
            "{v}"
        );
        assert!(
            v["workload_mode"].is_null(),
            "declared for a user's service: {v}"
        );
    }
    // The shim reported how it ran the user's component.
    let runtime = &report["variants"][1]["runtime"];
    assert_eq!(runtime["mode"], "cranelift-jit", "{runtime}");
    assert_eq!(runtime["target"], "wasip2", "{runtime}");
    let markdown = std::fs::read_to_string(work.join("own/report.md")).unwrap();
    for needle in [
        "server CPU per 1k requests",
        "server peak RSS",
        "artifact size",
        "/native",
    ] {
        assert!(markdown.contains(needle), "no {needle:?}:\n{markdown}");
    }
    assert!(
        !markdown.contains("crates/echo"),
        "our echo named in the user's report:\n{markdown}"
    );
    assert_nothing_left(cluster);

    wb.expect_failure(
        &cluster.kubeconfig,
        &[
            "--native-image",
            &native,
            "--wasm-image",
            &format!("{wasm}=wbt-absent"),
        ],
        Exit::ServerStart,
        &["RuntimeClass wbt-absent does not exist", "k8s runtimes"],
    );

    // A namespace-scoped account: `edit` in its namespace, nothing cluster-wide.
    cluster.kubectl_ok(&["create", "namespace", "wbt-user"]);
    cluster.kubectl_ok(&["create", "serviceaccount", "runner", "-n", "wbt-user"]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "runner-edit",
        "--clusterrole=edit",
        "--serviceaccount=wbt-user:runner",
        "-n",
        "wbt-user",
    ]);
    let token = cluster.kubectl_ok(&[
        "create",
        "token",
        "runner",
        "-n",
        "wbt-user",
        "--duration=10m",
    ]);
    let scoped = cluster.kubeconfig_with_token(token.trim(), &work.join("user.kubeconfig"));
    let in_namespace = [
        "--native-image",
        &native,
        "--wasm-image",
        &wasm_image,
        "--namespace",
        "wbt-user",
        "--path",
        "/healthz",
        "--vus",
        "4",
        "--duration",
        "3s",
    ];
    wb.expect_failure(
        &scoped,
        &in_namespace,
        Exit::Cluster,
        &["nodes/proxy", "--no-node-stats"],
    );
    let mut args = in_namespace.to_vec();
    args.push("--no-node-stats");
    let out_dir = work.join("own-scoped");
    args.extend(["--out", out_dir.to_str().unwrap()]);
    let run = wb.command(&scoped, &args).output().unwrap();
    cluster.kubectl_ok(&["delete", "namespace", "wbt-user", "--wait=false"]);
    assert!(run.status.success(), "{}", output_text(&run));
    let report = read_json(&out_dir.join("comparison.json"));
    for v in report["variants"].as_array().unwrap() {
        assert_eq!(v["status"], "ok", "{v}");
        assert!(v["runs"][0]["server"].is_null(), "{v}");
    }
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("--no-node-stats"), "{warnings}");
    assert_nothing_left(cluster);
}

/// `k8s runtimes`: the shim's RuntimeClass with the variants that use it; and an account that
/// may only act in one namespace (a service account with `edit` there, as a user of a shared
/// cluster has) gets one line naming the permission it lacks, exit 14.
fn runtimes(cluster: &Cluster, wb: &Wasmbench, work: &Path) {
    let run = |kubeconfig: &Path| {
        Command::new(&wb.binary)
            .args(["k8s", "runtimes", "--kubeconfig"])
            .arg(kubeconfig)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&cluster.kubeconfig);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("k8s runtimes:\n{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("wasmbench  handler wasmbench  nodes: "))
        .unwrap_or_else(|| panic!("no line for RuntimeClass wasmbench:\n{text}"));
    assert!(
        line.ends_with("variants: wasmbench-shim, wasmbench-shim-http, wasmbench-shim-http-p3"),
        "{line}"
    );
    assert!(text.contains("2 nodes: wbt-n1, wbt-n2"), "{text}");

    cluster.kubectl_ok(&["create", "namespace", "wbt-scoped"]);
    cluster.kubectl_ok(&["create", "serviceaccount", "runner", "-n", "wbt-scoped"]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "runner-edit",
        "--clusterrole=edit",
        "--serviceaccount=wbt-scoped:runner",
        "-n",
        "wbt-scoped",
    ]);
    let token = cluster.kubectl_ok(&[
        "create",
        "token",
        "runner",
        "-n",
        "wbt-scoped",
        "--duration=10m",
    ]);
    let scoped = cluster.kubeconfig_with_token(token.trim(), &work.join("scoped.kubeconfig"));
    let out = run(&scoped);
    cluster.kubectl_ok(&["delete", "namespace", "wbt-scoped", "--wait=false"]);
    assert_eq!(
        out.status.code(),
        Some(Exit::Cluster as i32),
        "{}",
        output_text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("may not list RuntimeClasses")
            && lines[0].contains("runtimeclasses.node.k8s.io"),
        "{stderr}"
    );
}

/// The demo's Wasm side: WasmEdge inside crun, picked by the pod annotation, on the module as
/// built (interpreted) and after `wasmedge compile` (native code).
fn crun_wasmedge(cluster: &Cluster, wb: &Wasmbench, work: &Path) {
    let report = wb.k8s_run_ok(
        &[
            "--variants",
            "crun-wasmedge,crun-wasmedge-aot",
            "--vus",
            "10",
            "--duration",
            "5s",
        ],
        &work.join("run-crun"),
    );
    let k8s = &report["meta"]["environment"]["kubernetes"];
    for (v, mode) in report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["interpreter", "aot"])
    {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["status"], "ok", "{name}: {v}");
        assert_eq!(v["runtime"]["mode"], mode, "{name}: {}", v["runtime"]);
        let run = &v["runs"][0];
        assert!(run["http_reqs"].as_u64().unwrap() > 0, "{name}: {run}");
        assert_eq!(run["http_req_failed_rate"], 0.0, "{name}: {run}");
        let pods = &k8s["variants"][name];
        assert_eq!(pods["runtime_class"], "crun", "{name}: {pods}");
        assert_eq!(pods["handler"], "crun", "{name}: {pods}");
        eprintln!(
            "{name} under crun: {} requests, {:.0} req/s",
            run["http_reqs"],
            run["throughput_rps"].as_f64().unwrap_or(0.0)
        );
    }
    assert_nothing_left(cluster);
}

/// The demo's own load tool: k6 running the demo's script in one load pod per variant, its
/// `--summary-export` read into the same report.
fn demo_k6_job(cluster: &Cluster, wb: &Wasmbench, work: &Path, variants: &str) {
    let out_dir = work.join("run-k6");
    let report = wb.k8s_run_ok(
        &[
            "--variants",
            variants,
            "--load-engine",
            "k6",
            "--vus",
            "10",
            "--duration",
            "5s",
        ],
        &out_dir,
    );
    assert_eq!(report["plan"]["load_engine"], "k6", "{}", report["plan"]);
    let checks = report["plan"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    let k8s = &report["meta"]["environment"]["kubernetes"];
    for v in report["variants"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["status"], "ok", "{name}: {v}");
        assert_cost_figures(v);
        let run = &v["runs"][0];
        assert!(run["http_reqs"].as_u64().unwrap() > 0, "{name}: {run}");
        assert!(
            run["checks"]["passes"].as_u64().unwrap() > 0,
            "{name}: {run}"
        );
        for phase in ["blocked", "connecting", "sending", "waiting", "receiving"] {
            let p95 = &run["phases"][format!("http_req_{phase}")]["p95_ms"];
            assert!(p95.as_f64().is_some(), "{name}: {phase} p95 missing: {run}");
        }
        let placement = &k8s["variants"][name]["load_pods_per_node"];
        let pods: u64 = placement
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(pods, 1, "{name}: one k6 pod: {placement}");
        // The variant's raw figures are k6's own export.
        let raw = read_json(&out_dir.join("runs").join(format!("{name}-r1.json")));
        assert!(raw["metrics"]["http_req_waiting"].is_object(), "{raw}");
    }
    let markdown = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("by k6"), "{markdown}");
    assert_nothing_left(cluster);
}

/// Waits until a load pod of some run is running.
fn wait_for_load_pod(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let load_pods = format!("{LABEL_ROLE}=load");
    loop {
        let jobs = cluster.kubectl_ok(&[
            "get",
            "pods",
            "--all-namespaces",
            "-l",
            &load_pods,
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ]);
        if !jobs.trim().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the load pod never ran");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The faults a cluster user meets, each on the real cluster: one line, the documented exit
/// code, and nothing left behind.
fn faults(cluster: &Cluster, wb: &Wasmbench, work: &Path) {
    let short = [
        "--vus",
        "2",
        "--duration",
        "2s",
        "--parallelism",
        "1",
        "--timeout",
        "40s",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        short.iter().chain(extra).copied().collect()
    };

    // An API server that does not answer: a closed port inside the control plane's namespace.
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let unreachable = work.join("unreachable.kubeconfig");
    std::fs::write(
        &unreachable,
        kubeconfig.replace(
            &format!("https://{NET}.1:6443"),
            &format!("https://{NET}.1:1"),
        ),
    )
    .unwrap();
    wb.expect_failure(
        &unreachable,
        &with(&["--variants", "native"]),
        Exit::Cluster,
        &[],
    );

    // Credentials the API server does not accept: a token instead of the client certificate.
    let wrong = cluster.kubeconfig_with_token(
        "not-a-valid-token",
        &work.join("wrong-credentials.kubeconfig"),
    );
    wb.expect_failure(
        &wrong,
        &with(&["--variants", "native"]),
        Exit::Cluster,
        &["401"],
    );

    // A RuntimeClass whose handler no node has: runwasi's wasmtime shim is not installed.
    wb.expect_failure(
        &cluster.kubeconfig,
        &with(&["--variants", "wasmtime"]),
        Exit::VariantFailed,
        &["wasmtime"],
    );
    assert_nothing_left(cluster);

    // An image no node has and no registry serves (the kubelet's pull goes to the node's own
    // loopback and is refused).
    wb.expect_failure(
        &cluster.kubeconfig,
        &with(&["--variants", "native", "--image-prefix", "localhost/absent"]),
        Exit::VariantFailed,
        &["localhost/absent/echo-native", "ErrImagePull"],
    );
    assert_nothing_left(cluster);

    // Admission refuses the server's pod (here a quota of zero pods in the namespace the user
    // gave; a PodSecurity rejection takes the same path, but every pod wasmbench makes passes
    // `restricted`): the variant fails at once with the API's reason, not after --timeout.
    cluster.kubectl_ok(&["create", "namespace", "wbt-quota"]);
    cluster.kubectl_ok(&[
        "create",
        "quota",
        "no-pods",
        "--hard=pods=0",
        "--namespace",
        "wbt-quota",
    ]);
    let started = Instant::now();
    wb.expect_failure(
        &cluster.kubeconfig,
        &with(&["--variants", "native", "--namespace", "wbt-quota"]),
        Exit::VariantFailed,
        &["cannot be created", "exceeded quota"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "a refused pod waited {:?} (the timeout is 40 s)",
        started.elapsed()
    );
    cluster.kubectl_ok(&["delete", "namespace", "wbt-quota", "--wait=false"]);
    assert_nothing_left(cluster);

    // Ctrl-C while the load runs: exit 105, the partial report written, everything deleted.
    let out_dir = work.join("interrupted");
    let mut child = wb.start_native_load(cluster, "60s", &out_dir, &work.join("interrupted.log"));
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(work.join("interrupted.log")).unwrap();
    assert_eq!(status.code(), Some(Exit::Interrupted as i32), "{log}");
    let partial = read_json(&out_dir.join("comparison.json"));
    assert_eq!(partial["meta"]["partial"], true, "{partial}");
    assert_nothing_left(cluster);

    // The server pod deleted while it is loaded: the variant fails with what happened, the
    // load pod's summary is still written, nothing is left.
    let out_dir = work.join("server-killed");
    let log_path = work.join("server-killed.log");
    let mut child = wb.start_native_load(cluster, "20s", &out_dir, &log_path);
    std::thread::sleep(Duration::from_secs(2));
    let servers = format!("{LABEL_MANAGED_BY}=wasmbench,{LABEL_ROLE}=server");
    cluster.kubectl_ok(&[
        "delete",
        "pods",
        "--all-namespaces",
        "-l",
        &servers,
        "--wait=false",
    ]);
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(Exit::VariantFailed as i32), "{log}");
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with("wasmbench:"))
        .unwrap_or_else(|| panic!("no `wasmbench: ...` line: {log}"));
    assert!(
        line.contains("server pod changed during the load"),
        "{line}"
    );
    assert!(line.contains("deleted"), "{line}");
    eprintln!("server pod deleted mid-load -> exit 15: {line}");
    let report = read_json(&out_dir.join("comparison.json"));
    assert_eq!(report["variants"][0]["status"], "failed", "{report}");
    let pods = std::fs::read_dir(out_dir.join("runs/pods"))
        .unwrap()
        .count();
    assert_eq!(pods, 1, "the load pod's summary is kept");
    assert_nothing_left(cluster);
}
