//! Bad input and faults given to the real `wasmbench` binary: each ends with one line and the
//! code README's exit table gives it, no earlier result file is destroyed, an interrupted run
//! still writes what it measured, and no server outlives the process that started it.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Guard, code, processes_tagged, run, stderr, wait_until_gone, wasmbench};

/// Exactly one non-empty line on stderr: what is wrong and how to fix it.
fn one_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

/// Waits for `child` to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(Instant::now() < deadline, "did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `child`'s stderr until a line contains `needle` (at most `limit`).
fn wait_line(err: &mut impl BufRead, needle: &str, limit: Duration) {
    let started = Instant::now();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "stderr ended before {needle:?}"
        );
        if line.contains(needle) {
            return;
        }
        assert!(started.elapsed() < limit, "no {needle:?} within {limit:?}");
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads one request head; false when the peer closed.
fn read_head(s: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// A keep-alive server answering `200 ok` to every request, one thread per connection.
fn ok_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                while read_head(&mut s) {
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if s.write_all(reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A server that accepts connections and never answers.
fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A server that closes its first connection on its first request, and then stops listening.
fn dies_on_first_request() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            read_head(&mut s);
        }
    });
    addr
}

fn load_schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/load-summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn durations_too_long_for_the_clock_are_refused_in_flags_and_plan_files() {
    let url = "http://127.0.0.1:1/";
    for args in [
        vec!["load", url, "--duration", "1e20"],
        vec!["load", url, "-d", "1.8e19", "-u", "1"],
        vec!["compare", "--duration", "1e20"],
        vec!["compare", "--warmup", "99999999999"],
        vec!["k8s", "manifests", "--duration", "1e20"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[request]\nurl = \"http://127.0.0.1:1/\"\n[executor]\ntype = \"constant-vus\"\nvus = 1\nduration = 1e20\n",
    )
    .unwrap();
    let o = run(&["load", "--config", plan.to_str().unwrap(), "-q"]);
    assert_eq!(code(&o), 104, "{}", stderr(&o));
    assert!(one_line(&o).contains("longest duration"), "{}", stderr(&o));
    // A bare number means seconds for every duration flag alike.
    let o = run(&[
        "compare",
        "--warmup",
        "30",
        "--precision",
        "5%",
        "--max-time",
        "30",
        "--bogus",
    ]);
    assert!(
        stderr(&o).contains("--bogus"),
        "only the unknown flag is refused: {}",
        stderr(&o)
    );
}

#[test]
fn a_load_that_ends_early_keeps_the_earlier_result_file() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", free_port());
    let files: Vec<_> = ["old.json", "old-export.json", "old.ndjson"]
        .iter()
        .map(|f| tmp.path().join(f))
        .collect();
    for f in &files {
        std::fs::write(f, "earlier result").unwrap();
    }
    let o = run(&[
        "load",
        &url,
        "--wait-ready",
        "1s",
        "-q",
        "--json",
        files[0].to_str().unwrap(),
        "--summary-export",
        files[1].to_str().unwrap(),
        "--ndjson",
        files[2].to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 12, "{}", stderr(&o));
    one_line(&o);
    for f in &files {
        assert_eq!(
            std::fs::read_to_string(f).unwrap(),
            "earlier result",
            "{f:?}"
        );
    }
    // The capacity search against a server that never answers: no result, the file intact.
    let silent = silent_server();
    let o = run(&[
        "load",
        &format!("http://{silent}/"),
        "--capacity",
        "-q",
        "--json",
        files[0].to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 12, "{}", stderr(&o));
    assert!(one_line(&o).contains("no answer"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&files[0]).unwrap(),
        "earlier result"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        3,
        "no temporary file is left beside the results"
    );
}

#[test]
fn sigterm_ends_a_load_with_partial_results_and_exit_105() {
    let addr = ok_server();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("partial.json");
    let mut child = Guard(
        wasmbench()
            .args([
                "load",
                &format!("http://{addr}/"),
                "--vus",
                "2",
                "--duration",
                "60s",
                "--json",
                json.to_str().unwrap(),
                "-q",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child.0, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child.0, Duration::from_secs(15)), Some(105));
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("partial"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["partial"], true);
    assert!(v["counters"]["http_reqs"].as_u64().unwrap() > 0, "{v}");
    let schema = load_schema();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema errors: {errors:?}");
}

#[test]
fn a_load_where_nothing_succeeded_says_so_with_its_own_code() {
    let silent = silent_server();
    let started = Instant::now();
    let o = run(&[
        "load",
        &format!("http://{silent}/"),
        "-d",
        "1s",
        "-u",
        "2",
        "--graceful-stop",
        "500ms",
        "-q",
    ]);
    assert_eq!(code(&o), 17, "{}", stderr(&o));
    assert!(one_line(&o).contains("no response"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(20));

    let dying = dies_on_first_request();
    let o = run(&[
        "load",
        &format!("http://{dying}/"),
        "-d",
        "1s",
        "-u",
        "1",
        "-q",
    ]);
    assert_eq!(code(&o), 17, "{}", stderr(&o));
    assert!(one_line(&o).contains("succeeded"), "{}", stderr(&o));
}

#[test]
fn flags_given_the_same_way_mean_the_same_in_every_command() {
    // A bad --env is a usage error in both commands that take it.
    for cmd in ["compare", "serve"] {
        let o = run(&[cmd, "--env", "FOO"]);
        assert_eq!(code(&o), 2, "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).contains("KEY=VALUE"), "{cmd}: {}", stderr(&o));
    }
}

#[test]
fn ctrl_c_while_waiting_for_a_server_stops_at_once() {
    let tag = format!("WASMBENCH_TEST_TAG=wait-{}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    let mut child = Guard(
        wasmbench()
            .args(["compare", "--native-cmd", "sleep 301", "--quick"])
            .env(k, v)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    wait_line(&mut err, "cold-start", Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    signal(&child.0, libc::SIGINT);
    assert_eq!(wait_exit(&mut child.0, Duration::from_secs(10)), Some(105));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    wait_until_gone(
        &tag,
        Duration::from_secs(5),
        "the waited-for server was left running",
    );
}

#[test]
fn sigkill_of_compare_leaves_no_server_running() {
    let tag = format!("WASMBENCH_TEST_TAG=sigkill-{}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    let mut child = Guard(
        wasmbench()
            .args([
                "compare",
                "--variants",
                "native,wasmtime-wasip2",
                "--vus",
                "2",
                "--duration",
                "60s",
                "--warmup",
                "0s",
                "--repeats",
                "1",
                "--cold-starts",
                "1",
            ])
            .env(k, v)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    // Both servers are up once the interleaved rounds start.
    wait_line(&mut err, "measuring", Duration::from_secs(300));
    let wasmbench_pid = child.0.id();
    let servers: Vec<u32> = processes_tagged(&tag, wasmbench_pid);
    assert!(!servers.is_empty(), "a server runs during the load");
    signal(&child.0, libc::SIGKILL);
    wait_exit(&mut child.0, Duration::from_secs(10));
    wait_until_gone(
        &tag,
        Duration::from_secs(5),
        "servers outlived the killed compare",
    );
}

#[test]
fn a_guest_that_traps_at_start_is_a_server_that_did_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("trap.rs");
    std::fs::write(&src, "fn main() { std::process::abort(); }\n").unwrap();
    let wasm = tmp.path().join("trap.wasm");
    let built = Command::new("rustc")
        .args(["--target", "wasm32-wasip2", "-O", "-o"])
        .arg(&wasm)
        .arg(&src)
        .output()
        .expect("rustc");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let o = run(&["compare", "--wasm", wasm.to_str().unwrap(), "--quick"]);
    assert_eq!(code(&o), 11, "{}", stderr(&o));
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("wasmbench: no variant produced results") && last.contains("trapped"),
        "the last line says why, on one line: {last}"
    );
}

#[test]
fn vus_beyond_the_file_descriptor_limit_are_a_warning_not_a_silent_smaller_load() {
    let addr = ok_server();
    // A shell lowers the limit for wasmbench alone; 300 VUs need more than 64 descriptors.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} load http://{addr}/ --vus 300 -d 1s -q",
            env!("CARGO_BIN_EXE_wasmbench")
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("the planned load was not generated") && err.contains("ulimit -n"),
        "{err}"
    );
}
