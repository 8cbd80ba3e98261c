//! Schema validation of every generated manifest and every object in deploy/
//! (scripts/validate-manifests.sh), and `vagrant validate` (scripts/validate-vagrant.sh).
//! Both run when their tool is installed; with `CI=true` a missing tool is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmbench_k8s::Variant;
use wasmbench_k8s::manifests::{self, RunSpec};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// True when the test should run; panics in CI when a tool is missing.
fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI=true but {missing:?} not installed: run scripts/setup.sh --test"
    );
    eprintln!("SKIP: {missing:?} not installed (scripts/setup.sh --test installs them)");
    false
}

#[test]
fn manifests_and_deploy_dir_validate_against_the_schema() {
    if !tools_present(&["kubernetes-validate", "kubectl", "python3"]) {
        return;
    }
    // Render here, as the example does, so the script needs no nested cargo build.
    let tmp = tempfile::tempdir().unwrap();
    let mut single = RunSpec::new("validate", Variant::ALL.to_vec());
    single.images.spin = Some("localhost/wasmbench/echo-spin:0.1.0".to_owned());
    let mut spread = single.clone();
    spread.run_id = "validate-spread".into();
    spread.namespace = "wasmbench-validate-spread".into();
    spread.load.vus = 96;
    spread.load.parallelism = 4;
    spread.separate_load = true;
    manifests::write_dir(&single, &tmp.path().join("single")).unwrap();
    manifests::write_dir(&spread, &tmp.path().join("multi")).unwrap();

    let out = Command::new("bash")
        .arg(repo_root().join("scripts/validate-manifests.sh"))
        .env("WASMBENCH_MANIFESTS_DIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "validate-manifests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("valid (Kubernetes"), "{stdout}");
}

#[test]
fn schema_validation_rejects_a_broken_manifest() {
    // Guards against a validator that accepts anything.
    if !tools_present(&["kubernetes-validate"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = RunSpec::new("broken", vec![Variant::Native]);
    let paths = manifests::write_dir(&spec, tmp.path()).unwrap();
    let server = paths
        .iter()
        .find(|p| p.to_string_lossy().contains("10-server-native"))
        .unwrap();
    let text = std::fs::read_to_string(server).unwrap();
    std::fs::write(
        server,
        text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )
    .unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", "1.33.0"])
        .arg(server)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a misspelt field must fail strict validation"
    );
}

#[test]
fn vagrantfile_validates() {
    if !tools_present(&["vagrant"]) {
        return;
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/validate-vagrant.sh"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vagrant validate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("validated successfully"), "{stdout}");
}
