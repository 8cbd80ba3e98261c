//! End-to-end tests of the `wasmbench` binary: real processes, real HTTP on loopback.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Guard, code, processes_tagged, run, stderr, wasmbench};

fn schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/comparison.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn quick_compare_writes_a_consistent_report() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("result");
    let o = run(&[
        "compare",
        "--variants",
        "native,wasmtime-wasip2",
        "--vus",
        "10",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--repeats",
        "2",
        "--cold-starts",
        "2",
        "--count-syscalls",
        "--format",
        "markdown",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "stderr:\n{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("| Metric Name | Description | native | Wasm |"),
        "{md}"
    );
    assert!(md.contains("Wasm/native"), "{md}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("comparison.json")).unwrap())
            .unwrap();
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:?}");

    let c = wasmbench_report::read_dir(&dir).unwrap();
    assert!(!c.meta.partial);
    assert_eq!(c.plan.design, Some(wasmbench_vocab::Design::Duet));
    assert_eq!(c.variants.len(), 2);
    for v in &c.variants {
        assert_eq!(v.status, wasmbench_report::VariantStatus::Ok, "{v:?}");
        // What the instrument cost per request, beside what the server cost.
        let client = v
            .figure_value(wasmbench_report::Figure::LoadgenCpuMsPer1kReq)
            .expect("the load generator's CPU per 1k requests");
        assert!(client > 0.0, "{client}");
        // The default design (duet): two repeats of 2 s per variant, with two variants loaded
        // at once, are four rounds of one 2 s block, every cold start taken before them, on
        // processes of their own.
        assert_eq!(v.runs.len(), 4);
        let cold: Vec<f64> = v
            .runs
            .iter()
            .flat_map(|r| r.cold_start_ms.clone())
            .collect();
        assert_eq!(cold.len(), 4, "{cold:?}");
        assert!(cold.iter().all(|&ms| ms > 0.0));
        for r in &v.runs {
            assert!(r.http_reqs > 0 && r.throughput_rps > 0.0);
            let waiting = &r.phases["http_req_waiting"];
            assert!(waiting.count > 0 && waiting.p95_ms > 0.0);
            let server = r.server.as_ref().unwrap();
            assert!(server.rss_peak_bytes > 0);
            assert!(server.cpu_user_ms + server.cpu_sys_ms > 0.0);
            assert_eq!(r.checks.fails + r.checks.passes, 2 * r.http_reqs);
            assert!(r.raw_summary_file.is_some());
            if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
                // Pinned by default (server on the last CPU): the CPUs' distance was probed.
                let ns = r.cpu_round_trip_ns.expect("pinned runs probe their CPUs");
                assert!(ns > 0.0 && ns < 100_000.0, "{ns} ns");
            }
            let counts = r
                .server_counts
                .as_ref()
                .expect("switches and faults are always counted");
            if std::env::var("CI").as_deref() == Ok("true") {
                // CI runs as root with tracefs mounted: every request is read and answered.
                assert!(counts.syscalls_not_counted.is_none(), "{counts:?}");
                let per_req = |k| counts.syscalls[&k] as f64 / r.http_reqs as f64;
                assert!(
                    per_req(wasmbench_vocab::SyscallKind::Write) >= 0.9,
                    "{counts:?}"
                );
                assert!(
                    per_req(wasmbench_vocab::SyscallKind::Read) >= 0.9,
                    "{counts:?}"
                );
            }
        }
        let t = v.aggregate.throughput_rps.as_ref().unwrap();
        assert!(t.ci_low <= t.median && t.median <= t.ci_high, "{t:?}");
        assert!(v.artifact.as_ref().unwrap().size_bytes > 0);
    }
    let native = &c.variants[0];
    let wasm = &c.variants[1];
    assert_eq!(wasm.runtime.name, "wasmtime");
    for figure in [
        wasmbench_report::Figure::ThroughputRps,
        wasmbench_report::Figure::HttpReqWaitingP95Ms,
    ] {
        let ratio = c.ratio(&wasm.name, figure).unwrap();
        let expect = wasm.figure_value(figure).unwrap() / native.figure_value(figure).unwrap();
        assert!(
            (ratio - expect).abs() < 1e-9,
            "{figure:?}: {ratio} vs {expect}"
        );
    }
    for f in ["report.md", "report.html", "report.txt"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let runs: Vec<String> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        runs.iter().filter(|f| f.ends_with(".json")).count(),
        8,
        "one raw summary per block: {runs:?}"
    );
    // Instructions per request are counted by default where valgrind is installed (setup
    // installs it), for every variant, with their profiles beside the runs.
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok()
        || std::env::var("CI").as_deref() == Ok("true")
    {
        for v in &c.variants {
            let counted = v.callgrind.as_ref().expect("a callgrind count by default");
            assert!(
                counted.requests > 0 && counted.instructions > 0,
                "{counted:?}"
            );
            assert!(
                runs.contains(&format!("{}.callgrind.out", v.name)),
                "{runs:?}"
            );
        }
    }

    // Re-rendering reads the saved result without running anything.
    let again = run(&["report", dir.to_str().unwrap(), "--format", "markdown"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        std::fs::read_to_string(dir.join("report.md")).unwrap()
    );
    // The file itself, as `report --help` offers it.
    let file = dir.join("comparison.json");
    let again = run(&["report", file.to_str().unwrap(), "--format", "markdown"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    // A hand-edited file whose figures contradict each other is refused, naming the field.
    let mut edited = json.clone();
    edited["variants"][0]["aggregate"]["throughput_rps"]["median"] = serde_json::json!(-1.0);
    let bad = out.path().join("edited.json");
    std::fs::write(&bad, serde_json::to_string(&edited).unwrap()).unwrap();
    let o = run(&["report", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 18, "{}", stderr(&o));
    assert!(stderr(&o).contains("throughput_rps"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));

    render_in_browser(&dir.join("report.html"), out.path());
}

/// The report of a run with nothing to report opens calm: every warning kind once, none that
/// its samples cannot support.
#[test]
fn the_default_report_of_a_quick_run_has_at_most_three_warnings() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("result");
    let o = run(&["compare", "--quick", "--out", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "stderr:\n{}", stderr(&o));
    let c = wasmbench_report::read_dir(&dir).unwrap();
    assert_eq!(c.plan.design, Some(wasmbench_vocab::Design::Duet));
    assert!(
        c.warnings.len() <= 3,
        "{} warnings:\n{}",
        c.warnings.len(),
        c.warnings.join("\n")
    );
}

#[test]
fn callgrind_pass_counts_instructions_per_request_and_writes_the_profiles() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("result");
    let o = run(&[
        "compare",
        "--variants",
        "native,wasmtime-wasip1",
        "--vus",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--repeats",
        "1",
        "--cold-starts",
        "1",
        "--callgrind",
        "--format",
        "text",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "stderr:\n{}", stderr(&o));
    let c = wasmbench_report::read_dir(&dir).unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI installs valgrind"
        );
        assert!(text.contains("valgrind cannot be run"), "{text}");
        return;
    }
    for v in &c.variants {
        let cg = v
            .callgrind
            .as_ref()
            .unwrap_or_else(|| panic!("{}: {:?}", v.name, c.warnings));
        assert!(cg.requests > 0, "{cg:?}");
        let per_req = cg.per_req().unwrap();
        // An HTTP request through any server is hundreds of instructions at least, and the echo
        // far below ten million.
        assert!((300.0..10e6).contains(&per_req), "{}: {per_req}", v.name);
        // The split by code accounts for the count, and names what the variant really ran:
        // compiled guest code and WASI host functions under Wasmtime, neither natively.
        let split: u64 = cg.by_code.iter().map(|p| p.instructions).sum();
        assert!(
            (split as f64 - cg.instructions as f64).abs() <= 0.1 * cg.instructions as f64,
            "{}: split {split} vs {}: {:?}",
            v.name,
            cg.instructions,
            cg.by_code
        );
        let ran = |code: wasmbench_report::CodeKind| {
            cg.by_code
                .iter()
                .filter(|p| p.code == code)
                .map(|p| p.instructions)
                .sum::<u64>() as f64
                / split.max(1) as f64
        };
        let (guest, wasi) = (
            ran(wasmbench_report::CodeKind::Guest),
            ran(wasmbench_report::CodeKind::WasiHost),
        );
        if v.name == "native" {
            assert!(guest == 0.0 && wasi == 0.0, "native: {:?}", cg.by_code);
        } else {
            assert!(guest > 0.01 && wasi > 0.01, "{}: {:?}", v.name, cg.by_code);
            assert!(
                cg.by_code
                    .iter()
                    .any(|p| p.interface.as_deref() == Some("wasi_snapshot_preview1")),
                "{}: {:?}",
                v.name,
                cg.by_code
            );
        }
        let profile = dir.join("runs").join(cg.profile_file.as_ref().unwrap());
        assert!(
            std::fs::read_to_string(&profile)
                .unwrap()
                .contains("summary:")
        );
    }
    assert!(text.contains("server instructions"), "{text}");
    assert!(text.contains("counted by callgrind"), "{text}");
    assert!(
        text.contains("where the server's instructions went"),
        "{text}"
    );
    assert!(text.contains("Callgrind's split at 1 VU"), "{text}");
}

/// Renders the HTML report in headless Chromium and checks the screenshot is not blank.
fn render_in_browser(html: &Path, tmp: &Path) {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "chromium is missing in CI: scripts/setup.sh --test installs it"
        );
        eprintln!("skipping the browser check: /usr/bin/chromium is not installed");
        return;
    }
    let shot = tmp.join("shot.png");
    let mut child = Guard(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1200,1600",
            ])
            .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", html.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "chromium did not finish in 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let pixels = px.len() / channels;
    let inked = px
        .chunks_exact(channels)
        .filter(|p| p[..3].iter().any(|&c| c < 200))
        .count();
    assert!(
        inked * 100 > pixels,
        "screenshot is almost blank: {inked} of {pixels} pixels have ink"
    );
}

#[test]
fn bad_input_gives_one_line_and_a_documented_code() {
    let tmp = tempfile::tempdir().unwrap();
    // Unknown flag: clap usage error.
    assert_eq!(code(&run(&["compare", "--bogus"])), 2);
    // Unknown variant → invalid configuration.
    let o = run(&["compare", "--variants", "native,v8"]);
    assert_eq!(code(&o), 104, "{}", stderr(&o));
    assert!(stderr(&o).contains("v8"), "{}", stderr(&o));
    // Malformed config file.
    let cfg = tmp.path().join("wasmbench.toml");
    std::fs::write(&cfg, "repeats = \"many\"\n").unwrap();
    let o = run(&["compare", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code(&o), 104, "{}", stderr(&o));
    assert!(stderr(&o).contains("wasmbench.toml"), "{}", stderr(&o));
    // Invalid threshold expression.
    let o = run(&["compare", "--threshold", "http_req_duration: p(95)<<200"]);
    assert_eq!(code(&o), 104, "{}", stderr(&o));
    // Not a wasm file.
    let bad = tmp.path().join("bad.wasm");
    std::fs::write(&bad, b"this is not wasm").unwrap();
    let o = run(&["compare", "--wasm", bad.to_str().unwrap(), "--quick"]);
    assert_eq!(code(&o), 10, "{}", stderr(&o));
    // Unwritable output directory.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let o = run(&[
        "compare",
        "--quick",
        "--out",
        file.join("x").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 13, "{}", stderr(&o));
    // k6 runs the demo's script in one load pod: a split or another load flag is refused
    // before anything is deployed.
    let manifests = tmp.path().join("manifests");
    for extra in [["--parallelism", "2"], ["--connection", "close"]] {
        let mut args = vec!["k8s", "manifests", "--load-engine", "k6", "--out"];
        args.push(manifests.to_str().unwrap());
        args.extend(extra);
        let o = run(&args);
        assert_eq!(code(&o), 104, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--load-engine k6"), "{}", stderr(&o));
    }
    // The k6 image runs FROM scratch: a file that is not an executable is refused.
    let o = run(&[
        "image",
        "build",
        "--which",
        "k6",
        "--k6-bin",
        bad.to_str().unwrap(),
        "--out",
        tmp.path().join("images").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 104, "{}", stderr(&o));
    assert!(stderr(&o).contains("--k6-bin"), "{}", stderr(&o));
    // Re-rendering a directory without a result, or a file that is not one: an input error.
    let o = run(&["report", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&o), 18, "{}", stderr(&o));
    assert!(stderr(&o).contains("comparison.json"), "{}", stderr(&o));
    let o = run(&["report", cfg.to_str().unwrap()]);
    assert_eq!(code(&o), 18, "{}", stderr(&o));
    // Unreachable load target: a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run(&[
        "load",
        &format!("http://127.0.0.1:{port}/"),
        "--vus",
        "1",
        "--duration",
        "1s",
        "--quiet",
    ]);
    assert_eq!(code(&o), 12, "{}", stderr(&o));
    assert!(
        !stderr(&o).trim().is_empty(),
        "an unreachable URL must be explained"
    );
}

#[test]
fn serve_reports_a_port_in_use() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let o = run(&["serve", "--runtime", "native", "--port", &port]);
    assert_eq!(code(&o), 11, "{}", stderr(&o));
    let o = run(&[
        "serve",
        "--runtime",
        "wasmtime",
        "--target",
        "wasip2",
        "--port",
        &port,
    ]);
    assert_eq!(code(&o), 11, "{}", stderr(&o));
}

/// The address `wasmbench serve` printed (`listening on ADDR`) on its stdout. The pipe is
/// handed back to the child, so that later output does not meet a closed pipe.
fn listening_addr(child: &mut Child) -> std::net::SocketAddr {
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "serve printed nothing");
        if let Some(a) = line.strip_prefix("listening on ")
            && let Ok(addr) = a.trim().parse::<std::net::SocketAddr>()
        {
            break addr;
        }
    };
    child.stdout = Some(reader.into_inner());
    addr
}

fn serve_and_echo(target: &str) {
    let tag = format!("WASMBENCH_TEST_TAG=serve-{target}-{}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    let mut child = Guard(
        wasmbench()
            .args([
                "serve",
                "--runtime",
                "wasmtime",
                "--target",
                target,
                "--port",
                "0",
            ])
            .env(k, v)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = listening_addr(&mut child.0);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\necho: hello"), "{reply}");

    // SIGINT stops the server and leaves nothing behind.
    let pid = child.0.id();
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(processes_tagged(&tag, 0).is_empty());
}

/// A loopback listener the `fetch-probe` guest is pointed at; `answer_one` serves it.
fn upstream() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// Waits up to `within` for one connection; answers `200 upstream says hi` and returns the
/// request line. `None`: nobody connected.
fn answer_one(listener: &TcpListener, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let s = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(s);
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let _ = reader.get_mut().write_all(
        b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\r\nupstream says hi",
    );
    Some(request_line)
}

/// `GET <path>` on `addr`; status and body (the probe answers with a `content-length` and the
/// request asks it to close).
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

#[test]
fn serve_wasi_http_lets_guests_reach_only_the_allowed_outbound_addresses() {
    // The runtime crate's wasi:http test guest, built the way its own sandbox test builds it.
    let probe = wasmbench_runtime::build::build_workload(
        "wasmbench-fetch-probe",
        None,
        "wasmbench_fetch_probe.wasm",
        wasmbench_runtime::Target::Wasip2,
        &wasmbench_runtime::BuildOptions::default(),
    )
    .unwrap_or_else(|e| panic!("building the fetch probe: {e}"));
    let allowed = upstream();
    let other = upstream();
    let allowed_addr = allowed.local_addr().unwrap();
    let other_addr = other.local_addr().unwrap();
    let mut child = Guard(
        wasmbench()
            .args(["serve", "--runtime", "wasmtime", "--target", "wasi-http"])
            .arg("--wasm")
            .arg(&probe.path)
            .args(["--port", "0", "--threads", "1"])
            .args(["--allow-outbound", &allowed_addr.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = listening_addr(&mut child.0);

    let (request_line, (status, body)) = std::thread::scope(|scope| {
        let upstream = scope.spawn(|| answer_one(&allowed, Duration::from_secs(60)));
        let answer = get(addr, &format!("/fetch?url=http://{allowed_addr}/allowed"));
        (upstream.join().unwrap(), answer)
    });
    assert_eq!((status, body.as_str()), (200, "upstream says hi"));
    assert_eq!(
        request_line.as_deref(),
        Some("GET /allowed HTTP/1.1\r\n"),
        "the allowed listener saw another request"
    );

    // A port the flag did not name: refused by the host, and nothing reaches it.
    let (status, body) = get(addr, &format!("/fetch?url=http://{other_addr}/"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert!(
        answer_one(&other, Duration::from_secs(2)).is_none(),
        "a request to an address off the list got through"
    );
}

#[test]
fn allow_outbound_takes_addresses_only_and_only_where_it_applies() {
    for args in [
        &["serve", "--runtime", "wasmtime", "--target", "wasi-http"][..],
        &["compare", "--quick"][..],
    ] {
        let o = wasmbench()
            .args(args)
            .args(["--allow-outbound", "localhost:8080"])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(code(&o), 104, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("localhost:8080") && err.contains("host names"),
            "{args:?}: {err}"
        );
    }
    for target in [
        &["--runtime", "native"][..],
        &["--runtime", "wasmtime", "--target", "wasip2"],
    ] {
        let o = wasmbench()
            .arg("serve")
            .args(target)
            .args(["--allow-outbound", "127.0.0.1:8080"])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(code(&o), 104, "{target:?}: {err}");
        assert!(err.contains("wasi-http"), "{target:?}: {err}");
    }
}

#[test]
fn serve_wasip2_and_wasip1_answer_and_stop_on_sigint() {
    serve_and_echo("wasip2");
    serve_and_echo("wasip1");
}

#[test]
fn sigint_during_compare_writes_partial_results_and_leaves_no_process() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("partial");
    let tag = format!("WASMBENCH_TEST_TAG=interrupt-{}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    let mut child = Guard(
        wasmbench()
            .args([
                "compare",
                "--variants",
                "native,wasmtime-wasip2",
                "--vus",
                "5",
                "--duration",
                "60s",
                "--warmup",
                "0s",
                "--repeats",
                "1",
                "--cold-starts",
                "1",
                "--out",
                dir.to_str().unwrap(),
            ])
            .env(k, v)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait until the first measured load has started, then interrupt.
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let started = Instant::now();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "compare ended early");
        // The restart design announces each run's load; the interleaved one its rounds.
        if line.contains(": load") || line.contains("measuring") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no load phase"
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.0.id();
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "compare did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(105));
    let c = wasmbench_report::read_dir(&dir).unwrap();
    assert!(c.meta.partial);
    assert!(
        c.variants
            .iter()
            .flat_map(|v| &v.runs)
            .any(|r| r.http_reqs > 0),
        "the interrupted run's requests are kept"
    );
    assert!(
        processes_tagged(&tag, 0).is_empty(),
        "processes left behind after SIGINT"
    );
}

#[test]
fn runtimes_lists_every_variant_with_availability() {
    let o = run(&["runtimes", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let native = list.iter().find(|v| v["variant"] == "native").unwrap();
    assert_eq!(native["available"], true);
    assert!(list.iter().any(|v| v["variant"] == "wasmtime-wasip2"));
    let accepts = |name: &str| {
        list.iter().find(|v| v["variant"] == name).unwrap()["accepts"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(accepts("native"), "native executable");
    assert_eq!(accepts("wasi-http"), "wasi:http/proxy component (WASI 0.2)");
    assert_eq!(
        accepts("wasi-http-p3"),
        "wasi:http/service component (WASI 0.3)"
    );
    assert_eq!(accepts("wasmedge"), "wasip1 module, WasmEdge sockets");
    // The text table's columns line up: every row's `mode` starts where the header's does.
    let o = run(&["runtimes"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    let column = lines.next().unwrap().find("mode").unwrap();
    for line in lines {
        let before: String = line.chars().take(column).collect();
        assert!(before.ends_with("  "), "misaligned: {line}");
    }
}

/// Builds the example key-value service (not our echo) for `target` with the artifact profile.
fn build_kv(target: Option<&str>) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = root.join("target/artifacts");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args([
            "build",
            "-q",
            "-p",
            "wasmbench-example-kv",
            "--profile",
            "artifact",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS");
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    assert!(cmd.status().unwrap().success(), "building kv failed");
    match target {
        Some(t) => target_dir.join(t).join("artifact/kv.wasm"),
        None => target_dir.join("artifact/kv"),
    }
}

#[test]
fn bring_your_own_service_runs_through_the_same_pipeline() {
    let native = build_kv(None);
    let wasm = build_kv(Some("wasm32-wasip2"));
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("byo");
    let o = run(&[
        "compare",
        "--native-cmd",
        &format!("{} --port {{port}}", native.display()),
        "--wasm",
        wasm.to_str().unwrap(),
        // No --ready-path: the user's service is ready once its port accepts a connection.
        "--method",
        "PUT",
        "--path",
        "/kv/answer",
        "--body",
        "42",
        "--check",
        "status == 200",
        "--vus",
        "5",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--repeats",
        "1",
        "--cold-starts",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let c = wasmbench_report::read_dir(&dir).unwrap();
    assert_eq!(c.plan.request.method, "PUT");
    let names: Vec<&str> = c.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["native-cmd", "wasm-wasmtime-wasip2"]);
    for v in &c.variants {
        assert_eq!(v.status, wasmbench_report::VariantStatus::Ok, "{v:?}");
        let r = &v.runs[0];
        assert!(r.http_reqs > 0);
        assert_eq!(
            r.cold_start_ms.len(),
            1,
            "cold start measured by TCP readiness"
        );
        // The first PUT creates the key (201), every later one replaces it (200).
        assert!(r.checks.passes > 0 && r.checks.fails <= 1, "{:?}", r.checks);
    }
    assert!(
        c.ratio(
            "wasm-wasmtime-wasip2",
            wasmbench_report::Figure::ThroughputRps
        )
        .is_some()
    );
}

/// `wasmbench load --capacity` with one VU at most: the first step asks for the rate that VU
/// reached in a closed loop, so arrivals find it busy and are dropped while the server keeps
/// its latency. The search must call that client-bound and state no capacity. Flags the search
/// decides itself are refused.
#[test]
fn load_capacity_marks_a_client_limit_and_refuses_fixed_load_flags() {
    let o = run(&["load", "http://127.0.0.1:9/", "--capacity", "--rate", "100"]);
    assert_eq!(code(&o), 104, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--rate does not apply with --capacity"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "load",
        "http://127.0.0.1:9/",
        "--slo",
        "http_req_waiting=p(99)<5",
    ]);
    assert_eq!(code(&o), 2, "--slo without --capacity is a usage error");

    let mut server = Guard(
        wasmbench()
            .args(["serve", "--runtime", "native", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The native server is announced on stderr: `wasmbench: serving http://ADDR (…)`.
    let mut reader = BufReader::new(server.0.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "serve printed nothing"
        );
        if let Some(rest) = line.split("serving http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("capacity.json");
    let o = wasmbench()
        .args([
            "load",
            &format!("http://{addr}/"),
            "--capacity",
            "--max-vus",
            "1",
        ])
        .args([
            "--slo",
            "http_req_waiting=p(99)<1000",
            "--step-duration",
            "1s",
        ])
        .args(["--max-steps", "4", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(c["limit"], "client", "{out}");
    let last = c["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["verdict"], "client-bound", "{out}");
    assert!(last["dropped_iterations"].as_u64().unwrap() > 0, "{out}");
    assert!(
        last["reason"].as_str().unwrap().contains("VUs were busy"),
        "{out}"
    );
    assert!(out.contains("client-bound"), "{out}");
    assert!(
        c.get("passed")
            .is_some_and(|p| p.is_null() || p.as_u64().is_some())
    );
}
