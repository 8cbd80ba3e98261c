//! The native echo image and the wasmbench image, built by `image.rs`, loaded into a real
//! containerd (started here with its own root/state/socket) and run with runc.
//!
//! Needs root and `containerd`, `runc`, `ctr` (Debian packages `containerd`, `runc`). Skips with
//! a message when not root or when they are absent; with `CI=true` missing binaries fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use wasmbench_k8s::build;
use wasmbench_k8s::image::{self, ImageSpec};
use wasmbench_k8s::variant::ImageKind;

const NS: &str = "wasmbench";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A private containerd; killed (with its containers) on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    containers: Vec<String>,
}

impl Containerd {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("wbctd")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"{debug}\"\n",
            root = p.join("root").display(),
            state = p.join("state").display(),
            sock = p.join("containerd.sock").display(),
            debug = p.join("debug.sock").display(),
        );
        std::fs::write(p.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(p.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(p.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            child,
            dir,
            containers: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if c.socket().exists() && c.ctr(&["version"]).status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not start within 30s; log:\n{}",
                std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", NS])
            .args(args)
            .output()
            .expect("run ctr")
    }

    fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.containers.clone() {
            let _ = self.ctr(&["task", "kill", "--signal", "SIGKILL", &id]);
            // The task needs a moment to exit before it can be deleted; bounded retries.
            for _ in 0..50 {
                if self.ctr(&["task", "delete", &id]).status.success() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.ctr(&["container", "delete", &id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Snapshots may still be mounted by a failed run; unmount so the temp dir can go.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("state"))
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

/// Whether the test can run here; panics in CI when binaries are missing.
fn environment_ready() -> bool {
    let missing: Vec<&str> = ["containerd", "runc", "ctr"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !is_root() {
        eprintln!("SKIP: not root; containerd needs root to run containers");
        return false;
    }
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {missing:?} not installed: apt-get install containerd runc"
        );
        eprintln!("SKIP: {missing:?} not installed (apt-get install containerd runc)");
        return false;
    }
    true
}

/// Separate target dir: the outer cargo may hold the lock of its own, and static flags must not
/// invalidate its cache.
fn image_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("k8s-images")
}

const TAG: &str = "0.0.0-test";

/// Builds the static echo, imports its image and runs it with host networking on a free
/// loopback port; returns the port once `/healthz` answers.
fn run_echo_container(ctd: &mut Containerd, tmp: &Path) -> u16 {
    let echo =
        build::build_native_echo(&repo_root(), &image_target_dir()).expect("build static echo");
    let echo_ref = image::reference("localhost/wasmbench", ImageKind::Native, TAG);
    let echo_tar = tmp.join("echo.tar");
    let built = image::write_archive(
        &ImageSpec::for_kind(ImageKind::Native, &echo, &echo_ref),
        &echo_tar,
    )
    .unwrap();
    // The native snapshotter works on any filesystem, including overlay-backed /tmp.
    ctd.ctr_ok(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        echo_tar.to_str().unwrap(),
    ]);
    let listed = ctd.ctr_ok(&["images", "list"]);
    assert!(listed.contains(&echo_ref), "{listed}");
    assert!(
        listed.contains(&built.manifest_digest),
        "containerd keeps our manifest digest:\n{listed}"
    );

    let port = free_port();
    let id = format!("echo-{port}");
    ctd.containers.push(id.clone());
    ctd.ctr_ok(&[
        "run",
        "--detach",
        "--net-host",
        "--snapshotter",
        "native",
        "--env",
        &format!("PORT={port}"),
        "--env",
        "ECHO_HOST=127.0.0.1",
        &echo_ref,
        &id,
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(r) = http_get(port, "/healthz") {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "echo in containerd did not answer on 127.0.0.1:{port} within 20s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    // The image's user is non-root.
    let info = ctd.ctr_ok(&["container", "info", &id]);
    assert!(info.contains("\"uid\": 65532"), "{info}");
    port
}

#[test]
fn native_echo_image_serves_http_in_containerd() {
    if !environment_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut ctd = Containerd::start();
    let port = run_echo_container(&mut ctd, tmp.path());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(
        s,
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert!(
        buf.starts_with("HTTP/1.1 200") && buf.ends_with("echo: hello"),
        "{buf}"
    );

    // A wasi/wasm image is accepted too (runc cannot run it; crun/runwasi nodes can).
    let wasm_file = tmp.path().join("echo.wasm");
    std::fs::write(&wasm_file, b"\0asm\x01\0\0\0").unwrap();
    let wasm_ref = image::reference("localhost/wasmbench", ImageKind::Wasm, TAG);
    let wasm_tar = tmp.path().join("wasm.tar");
    image::write_archive(
        &ImageSpec::for_kind(ImageKind::Wasm, &wasm_file, &wasm_ref),
        &wasm_tar,
    )
    .unwrap();
    ctd.ctr_ok(&[
        "images",
        "import",
        "--all-platforms",
        "--snapshotter",
        "native",
        wasm_tar.to_str().unwrap(),
    ]);
    assert!(
        ctd.ctr_ok(&["images", "list", "--quiet"])
            .lines()
            .any(|l| l == wasm_ref)
    );
}

#[test]
fn wasmbench_image_loads_the_echo_in_containerd() {
    if !environment_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let wasmbench =
        build::build_wasmbench(&repo_root(), &image_target_dir()).expect("build static wasmbench");
    let wb_ref = image::reference("localhost/wasmbench", ImageKind::Wasmbench, TAG);
    let wb_tar = tmp.path().join("wasmbench.tar");
    image::write_archive(
        &ImageSpec::for_kind(ImageKind::Wasmbench, &wasmbench, &wb_ref),
        &wb_tar,
    )
    .unwrap();

    let mut ctd = Containerd::start();
    let port = run_echo_container(&mut ctd, tmp.path());
    ctd.ctr_ok(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        wb_tar.to_str().unwrap(),
    ]);

    // `load` against the echo when the CLI has it, else `--version`.
    let has_load = ctd
        .ctr(&[
            "run",
            "--rm",
            "--net-host",
            "--snapshotter",
            "native",
            &wb_ref,
            &format!("wb-help-{port}"),
            "/wasmbench",
            "load",
            "--help",
        ])
        .status
        .success();
    let url = format!("http://127.0.0.1:{port}/");
    let args: Vec<&str> = if has_load {
        vec![
            "/wasmbench",
            "load",
            &url,
            "--vus",
            "2",
            "--duration",
            "2s",
            "--json",
            "/dev/stdout",
        ]
    } else {
        eprintln!(
            "NOTE: this wasmbench build has no `load` subcommand; running `wasmbench --version` from its image instead"
        );
        vec!["/wasmbench", "--version"]
    };
    let run_id = format!("wb-{port}");
    let mut full = vec![
        "run",
        "--rm",
        "--net-host",
        "--snapshotter",
        "native",
        &wb_ref,
        &run_id,
    ];
    full.extend(args);
    let out = ctd.ctr(&full);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wasmbench in containerd failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    if has_load {
        let summary = wasmbench_k8s::driver::extract_summary(&stdout)
            .unwrap_or_else(|| panic!("no JSON summary in wasmbench load output:\n{stdout}"));
        assert!(summary.is_object());
        eprintln!(
            "wasmbench load from its image: {}",
            summary.to_string().chars().take(400).collect::<String>()
        );
    } else {
        assert!(stdout.contains("wasmbench"), "{stdout}");
    }
}
