use super::*;

fn spec_all() -> RunSpec {
    let mut s = RunSpec::new("t1", Variant::ALL.to_vec());
    s.images.spin = Some("localhost/wasmbench/echo-spin:0.1.0".to_owned());
    s
}

fn srv(spec: &RunSpec, v: Variant) -> Server {
    Server::of_variant(v, &spec.images)
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

#[test]
fn runtime_class_and_annotations_per_variant() {
    let spec = spec_all();
    let expected = [
        (Variant::Native, None, None),
        (Variant::CrunWasmedge, Some("crun"), Some("compat-smart")),
        (Variant::CrunWasmedgeAot, Some("crun"), Some("compat-smart")),
        (Variant::Wasmtime, Some("wasmtime"), None),
        (Variant::Wasmedge, Some("wasmedge"), None),
        (Variant::Wasmer, Some("wasmer"), None),
        (Variant::Spin, Some("wasmtime-spin-v2"), None),
    ];
    for (v, rc, annotation) in expected {
        let d = deployment(&spec, &srv(&spec, v));
        assert_eq!(pod_spec(&d).runtime_class_name.as_deref(), rc, "{v}");
        let meta = d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
        let got = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get("module.wasm.image/variant"))
            .map(String::as_str);
        assert_eq!(got, annotation, "{v}");
        match runtime_class(&srv(&spec, v)) {
            None => assert!(rc.is_none()),
            Some(obj) => {
                assert_eq!(obj.metadata.name.as_deref(), rc);
                assert_eq!(Some(obj.handler.as_str()), rc);
            }
        }
    }
}

#[test]
fn images_match_the_variant() {
    let spec = spec_all();
    let image = |v| {
        pod_spec(&deployment(&spec, &srv(&spec, v))).containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(
        image(Variant::Native),
        "localhost/wasmbench/echo-native:0.1.0"
    );
    assert_eq!(
        image(Variant::Wasmtime),
        "localhost/wasmbench/echo-wasm:0.1.0"
    );
    assert_eq!(
        image(Variant::CrunWasmedge),
        "localhost/wasmbench/echo-wasmedge:0.1.0"
    );
    assert_eq!(
        image(Variant::Wasmedge),
        "localhost/wasmbench/echo-wasmedge:0.1.0"
    );
    assert_eq!(
        image(Variant::CrunWasmedgeAot),
        "localhost/wasmbench/echo-wasmedge-aot:0.1.0"
    );
    assert_eq!(image(Variant::Spin), "localhost/wasmbench/echo-spin:0.1.0");
    for v in Variant::ALL {
        let d = deployment(&spec, &srv(&spec, v));
        let c = &pod_spec(&d).containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert!(!c.image.as_ref().unwrap().ends_with(":latest"));
    }
}

#[test]
fn restricted_security_everywhere() {
    let spec = spec_all();
    let objects = build(&spec).unwrap();
    for (v, d, _, j) in &objects.variants {
        let pods = [
            pod_spec(d),
            j.spec.as_ref().unwrap().template.spec.as_ref().unwrap(),
        ];
        for p in pods {
            let psc = p.security_context.as_ref().unwrap();
            assert_eq!(psc.run_as_non_root, Some(true), "{v}");
            assert_eq!(psc.run_as_user, Some(65532));
            assert_eq!(
                psc.seccomp_profile.as_ref().unwrap().type_,
                "RuntimeDefault"
            );
            assert_eq!(p.automount_service_account_token, Some(false));
            let c = &p.containers[0];
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{v}");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{v}");
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_owned()][..])
            );
        }
    }
}

#[test]
fn resources_are_set_and_configurable() {
    let mut spec = spec_all();
    spec.server_resources.cpu_limit = "750m".into();
    spec.load_resources.memory_limit = "1Gi".into();
    let objects = build(&spec).unwrap();
    for (_, d, _, j) in &objects.variants {
        let r = pod_spec(d).containers[0].resources.as_ref().unwrap();
        assert_eq!(r.limits.as_ref().unwrap()["cpu"].0, "750m");
        assert_eq!(r.requests.as_ref().unwrap()["cpu"].0, "500m");
        assert_eq!(r.limits.as_ref().unwrap()["memory"].0, "256Mi");
        let jr = j
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .resources
            .as_ref()
            .unwrap();
        assert_eq!(jr.limits.as_ref().unwrap()["memory"].0, "1Gi");
    }
    spec.server_resources.cpu_limit = "one".into();
    let err = build(&spec).unwrap_err().to_string();
    assert!(err.contains("`one`") && err.contains("quantity"), "{err}");
}

#[test]
fn readiness_probe_and_ports() {
    let spec = spec_all();
    for v in Variant::ALL {
        let d = deployment(&spec, &srv(&spec, v));
        let c = &pod_spec(&d).containers[0];
        let probe = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.path.as_deref(), Some("/healthz"));
        assert_eq!(probe.port, IntOrString::String("http".into()));
        let port = c.ports.as_ref().unwrap()[0].container_port;
        assert_eq!(port, i32::from(v.container_port()));
        let svc = service(&spec, &srv(&spec, v));
        assert_eq!(
            svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
            port
        );
        if v.uses_echo_env() {
            let env = c.env.as_ref().unwrap();
            assert!(
                env.iter()
                    .any(|e| e.name == "PORT" && e.value.as_deref() == Some("8080"))
            );
        }
    }
}

#[test]
fn service_selects_the_deployment_pods() {
    let spec = spec_all();
    for v in Variant::ALL {
        let d = deployment(&spec, &srv(&spec, v));
        let pod_labels = d
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        let svc = service(&spec, &srv(&spec, v));
        for (k, val) in svc.spec.unwrap().selector.unwrap() {
            assert_eq!(pod_labels.get(&k), Some(&val), "{v}: {k}");
        }
        for (k, val) in d
            .spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .clone()
            .unwrap()
        {
            assert_eq!(pod_labels.get(&k), Some(&val));
        }
    }
}

#[test]
fn load_job_splits_vus_and_spreads_when_asked() {
    let mut spec = spec_all();
    spec.load.vus = 90;
    spec.load.parallelism = 3;
    spec.load.duration = Duration::from_secs(20);
    let j = load_job(&spec, &srv(&spec, Variant::Wasmtime)).unwrap();
    let js = j.spec.as_ref().unwrap();
    assert_eq!(js.parallelism, Some(3));
    assert_eq!(js.completions, Some(3));
    assert_eq!(js.backoff_limit, Some(0));
    let pod = js.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    // One load pod per node, always; a single node gets no rule against the server's node.
    let terms = |pod: &PodSpec| -> Vec<(String, String)> {
        pod.affinity
            .as_ref()
            .unwrap()
            .pod_anti_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t.topology_key, "kubernetes.io/hostname");
                let sel = t
                    .label_selector
                    .as_ref()
                    .unwrap()
                    .match_labels
                    .as_ref()
                    .unwrap();
                assert_eq!(sel[LABEL_RUN], "t1");
                (sel[LABEL_ROLE].clone(), sel[LABEL_VARIANT].clone())
            })
            .collect()
    };
    assert_eq!(terms(pod), [("load".to_owned(), "wasmtime".to_owned())]);
    assert_eq!(
        pod.containers[0].args.as_ref().unwrap(),
        &[
            "load",
            "http://$(ECHO_WASMTIME_SERVICE_HOST):$(ECHO_WASMTIME_SERVICE_PORT)/",
            "--vus",
            "30",
            "--duration",
            "20s",
            "--json",
            "/dev/stdout",
            "--wait-ready",
            "30s"
        ]
    );
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("localhost/wasmbench/wasmbench:0.1.0")
    );

    spec.separate_load = true;
    let j = load_job(&spec, &srv(&spec, Variant::Wasmtime)).unwrap();
    let pod = j.spec.unwrap().template.spec.unwrap();
    // Off the node of the server it loads; the other variants' idle servers do not matter.
    assert_eq!(
        terms(&pod),
        [
            ("load".to_owned(), "wasmtime".to_owned()),
            ("server".to_owned(), "wasmtime".to_owned())
        ]
    );
    assert_eq!(spec.load.pods_for_nodes(2), 2);
    assert_eq!(spec.load.pods_for_nodes(4), 3, "90 VUs split over 3, not 4");
    assert_eq!(spec.load.pods_for_nodes(0), 1);

    spec.load.vus = 10;
    let err = load_job(&spec, &srv(&spec, Variant::Native))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--vus 10") && err.contains("multiple of 3"),
        "{err}"
    );
}

#[test]
fn k6_job_runs_the_demo_script_from_its_config_map() {
    let mut spec = RunSpec::new("t1", vec![Variant::Native, Variant::Shim]);
    spec.load.engine = LoadEngine::K6;
    spec.load.vus = 100;
    let objects = build(&spec).unwrap();
    assert_eq!(objects.config_maps.len(), 1, "one script for every variant");
    let cm = &objects.config_maps[0];
    assert_eq!(cm.metadata.name.as_deref(), Some(K6_SCRIPT_CONFIG_MAP));
    assert_eq!(cm.metadata.labels.as_ref().unwrap()[LABEL_RUN], "t1");
    let script = &cm.data.as_ref().unwrap()[K6_SCRIPT_FILE];
    // The script's checks are the ones the report states for the plan.
    for c in wasmbench_vocab::demo::CHECKS {
        assert!(script.contains(&format!("'{c}'")), "{c} missing:\n{script}");
    }
    let (_, _, _, job) = &objects.variants[1];
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("localhost/wasmbench/k6:0.1.0"));
    let args = c.args.as_ref().unwrap();
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].as_str()
    };
    assert_eq!(args[0], "run");
    assert_eq!(after("--vus"), "100");
    assert_eq!(after("--duration"), "30s");
    assert_eq!(after("--summary-export"), "/dev/stdout");
    assert_eq!(
        after("--summary-trend-stats"),
        wasmbench_load::k6::K6_TREND_STATS
    );
    assert_eq!(
        after("-e"),
        "TARGET_URL=http://$(ECHO_WASMBENCH_SHIM_SERVICE_HOST):$(ECHO_WASMBENCH_SHIM_SERVICE_PORT)/"
    );
    assert!(args.iter().any(|a| a == "--no-usage-report"));
    assert_eq!(args.last().unwrap(), "/scripts/demo.js");
    let mounts = c.volume_mounts.as_ref().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_path == "/scripts" && m.read_only == Some(true))
    );
    assert!(mounts.iter().any(|m| m.mount_path == "/tmp"));
    // Still the restricted pod every run uses.
    assert_eq!(
        c.security_context
            .as_ref()
            .unwrap()
            .read_only_root_filesystem,
        Some(true)
    );
    // Without k6 there is no script.
    spec.load.engine = LoadEngine::Wasmbench;
    assert!(build(&spec).unwrap().config_maps.is_empty());
}

#[test]
fn k6_runs_in_one_pod_with_the_demo_plan_only() {
    let mut spec = RunSpec::new("t1", vec![Variant::Native]);
    spec.load.engine = LoadEngine::K6;
    spec.load.vus = 100;
    spec.load.parallelism = 2;
    let e = build(&spec).unwrap_err().to_string();
    assert!(e.contains("--parallelism 1"), "{e}");
    spec.load.parallelism = 1;
    spec.load.extra_args = vec!["--connection".into(), "close".into()];
    let e = build(&spec).unwrap_err().to_string();
    assert!(e.contains("drop --connection"), "{e}");
}

#[test]
fn validation_messages() {
    let mut spec = RunSpec::new("t1", vec![Variant::Spin]);
    assert!(
        build(&spec)
            .unwrap_err()
            .to_string()
            .contains("--spin-image")
    );
    spec.variants = vec![Variant::Native];
    spec.images.tag = "latest".into();
    assert!(build(&spec).unwrap_err().to_string().contains("latest"));
    spec.images.tag = "0.1.0".into();
    spec.run_id = "Bad_ID".into();
    assert!(build(&spec).unwrap_err().to_string().contains("run id"));
}

#[test]
fn yaml_round_trips_and_files_are_written() {
    let spec = spec_all();
    let tmp = tempfile::tempdir().unwrap();
    let paths = write_dir(&spec, tmp.path()).unwrap();
    // namespace + runtimeclasses + 2 per variant
    assert_eq!(paths.len(), 2 + 2 * Variant::ALL.len());
    let crun = std::fs::read_to_string(tmp.path().join("10-server-crun-wasmedge.yaml")).unwrap();
    assert!(
        crun.contains("module.wasm.image/variant: compat-smart"),
        "{crun}"
    );
    assert!(crun.contains("runtimeClassName: crun"));
    assert!(crun.contains("kind: Deployment") && crun.contains("kind: Service"));
    let docs: Vec<Deployment> = crun
        .split("---\n")
        .filter(|d| d.contains("kind: Deployment"))
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(
        docs[0],
        deployment(&spec, &srv(&spec, Variant::CrunWasmedge))
    );
    let rcs = std::fs::read_to_string(tmp.path().join("01-runtimeclasses.yaml")).unwrap();
    // One object per RuntimeClass, however many variants share it (crun's two).
    let classes: std::collections::BTreeSet<&str> = spec
        .variants
        .iter()
        .filter_map(|v| v.runtime_class())
        .collect();
    assert!(classes.len() < spec.variants.len() - 1, "{classes:?}");
    assert_eq!(rcs.matches("kind: RuntimeClass").count(), classes.len());
    assert!(rcs.contains("apiVersion: node.k8s.io/v1"));
}
