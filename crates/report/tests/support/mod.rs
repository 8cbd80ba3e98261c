//! Renderer fixtures: hand-made `Comparison` values shaped like real results, used only to
//! exercise the model and the renderers (they are not measurements).

#![allow(dead_code)]

use std::collections::BTreeMap;

use wasmbench_report::*;

fn env() -> Environment {
    Environment {
        platform: Platform::Local,
        cpu_model: "AMD EPYC 7B13".into(),
        cpu_count: 2,
        kernel: "6.1.0-27-amd64".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        hostname: Some("bench-1".into()),
        rustc_version: "rustc 1.95.0 (fixture)".into(),
        memory_bytes: 8_000_000_000,
        details: BTreeMap::from([("governor".to_string(), "performance".to_string())]),
        kubernetes: None,
    }
}

/// The plan of the demo's default run.
pub fn plan(mode: ConnectionMode) -> PlanRecord {
    PlanRecord {
        workload: "echo".into(),
        request: RequestRecord {
            method: "POST".into(),
            path: "/".into(),
            body_bytes: 5,
        },
        executor: "constant-vus 100 VUs for 30s".into(),
        load_engine: LoadEngine::Wasmbench,
        vus: 100,
        duration_s: 30.0,
        connection_mode: mode,
        checks: vec!["status == 200".into(), "duration < 200ms".into()],
        thresholds: vec!["http_req_duration: p(95)<200".into()],
        repeats: 3,
        design: None,
        server_cpu_limit: None,
        warmup_s: 5.0,
        cold_start_samples: 5,
        cpu_pinning: Some(CpuPinning {
            server_cpus: vec![0],
            load_cpus: vec![1],
        }),
        fairness: vec![
            "same echo source, profile artifact, TCP_NODELAY, backlog 1024 for every variant"
                .into(),
        ],
        readiness: Some("first 200 on GET /healthz".into()),
        mix: Vec::new(),
    }
}

/// Repeat-to-repeat jitter so statistics have a spread.
const JITTER: [f64; 3] = [1.0, 1.04, 0.97];

/// One run: `k` scales server-side latency, `connect_ms` is paid per request when non-zero.
/// A steady 3 s of 100 ms buckets (no stall, fair VUs), with one request over a duration limit.
fn steady_tail(med_ms: f64, p99_ms: f64) -> Tail {
    Tail {
        bucket_ms: 100,
        buckets: (0..30)
            .map(|i| TailBucket {
                requests: 900 + (i % 3) * 40,
                p50_ms: med_ms,
                p99_ms,
                max_ms: p99_ms * 1.3,
            })
            .collect(),
        over_limit: vec![OverLimit {
            check: "duration < 200".into(),
            limit_ms: 200.0,
            buckets: vec![[12, 1]],
        }],
        requests_per_vu: vec![280; 100],
    }
}

fn run(repeat: u32, k: f64, cold_ms: f64, connect_ms: f64, rss: u64) -> RunResult {
    let j = JITTER[repeat as usize % JITTER.len()];
    let waiting_p95 = 4.2 * k * j;
    let trend = |p95: f64| TrendStats {
        avg_ms: p95 * 0.55,
        min_ms: p95 * 0.05,
        med_ms: p95 * 0.5,
        max_ms: p95 * 4.0,
        p90_ms: p95 * 0.9,
        p95_ms: p95,
        p99_ms: p95 * 1.6,
        count: 0,
    };
    let throughput = 21_000.0 / (k * j);
    let reqs = (throughput * 30.0) as u64;
    let mut phases = BTreeMap::new();
    let blocked = if connect_ms > 0.0 {
        connect_ms * 1.3
    } else {
        0.0042
    };
    for (name, p95) in [
        ("http_req_blocked", blocked),
        ("http_req_connecting", connect_ms),
        ("http_req_tls_handshaking", 0.0),
        ("http_req_sending", 0.011 * j),
        ("http_req_waiting", waiting_p95),
        ("http_req_receiving", 0.019 * j),
        ("http_req_duration", 0.011 * j + waiting_p95 + 0.019 * j),
        ("iteration_duration", blocked + waiting_p95 + 0.05),
    ] {
        let mut t = trend(p95);
        t.count = reqs;
        phases.insert(name.to_string(), t);
    }
    let d = phases["http_req_duration"];
    let latency_curve = [
        (0.0, d.min_ms),
        (25.0, d.med_ms * 0.7),
        (50.0, d.med_ms),
        (75.0, d.med_ms * 1.4),
        (90.0, d.p90_ms),
        (95.0, d.p95_ms),
        (99.0, d.p99_ms),
        (99.9, d.p99_ms * 1.5),
        (99.99, d.max_ms * 0.9),
        (100.0, d.max_ms),
    ]
    .into_iter()
    .map(|(percentile, value_ms)| CurvePoint {
        percentile,
        value_ms,
    })
    .collect();
    let fails = if k > 2.0 { 37 } else { 0 };
    RunResult {
        repeat,
        duration_s: 30.0,
        cold_start_ms: vec![
            cold_ms * j,
            cold_ms * 1.02,
            cold_ms * 0.99,
            cold_ms * 1.01,
            cold_ms,
        ],
        throughput_rps: throughput,
        http_reqs: reqs,
        // Keep-alive: one connection per VU; a connect cost per request means one each.
        connections_opened: Some(if connect_ms > 0.0 { reqs } else { 100 }),
        planned: Some(PlannedRun {
            duration_s: 30.0,
            vus: Some(100),
            interrupted_iterations: 0,
        }),
        http_req_failed_rate: 0.0,
        errors: BTreeMap::new(),
        checks: Checks {
            passes: 2 * reqs - fails,
            fails,
            by_check: [
                (
                    "status == 200".to_string(),
                    CheckCounts {
                        passes: reqs,
                        fails: 0,
                    },
                ),
                (
                    "duration < 200ms".to_string(),
                    CheckCounts {
                        passes: reqs - fails,
                        fails,
                    },
                ),
            ]
            .into(),
        },
        thresholds: vec![ThresholdOutcome {
            expression: "http_req_duration: p(95)<200".into(),
            passed: true,
        }],
        data_sent_bytes: reqs * 120,
        data_received_bytes: reqs * 80,
        phases,
        latency_curve,
        server: Some(ServerUsage::new(
            9_000.0 * k * j,
            6_000.0 * j,
            reqs,
            rss + u64::from(repeat) * 4096,
            rss * 9 / 10,
        )),
        loadgen: Some(LoadgenUsage {
            cpu_ms: 25_000.0,
            rss_peak_bytes: 30_000_000,
        }),
        // A known shape: per request one read, one write and `k` polls, plus 2 other calls.
        server_counts: Some(ServerCounts {
            syscalls: [
                (SyscallKind::All, (k + 4.0) as u64 * reqs),
                (SyscallKind::Poll, k as u64 * reqs),
                (SyscallKind::Read, reqs),
                (SyscallKind::Write, reqs),
                (SyscallKind::Accept, if connect_ms > 0.0 { reqs } else { 0 }),
            ]
            .into_iter()
            .collect(),
            voluntary_switches: reqs / 2,
            involuntary_switches: reqs / 10,
            minor_faults: 12,
            major_faults: 0,
            instructions: None,
            threads: 1,
            syscalls_not_counted: None,
            instructions_not_counted: Some("no hardware counters".into()),
            notes: Vec::new(),
        }),
        by_request: BTreeMap::new(),
        capacity: None,
        // The same placement of the CPUs in every run, within a probe's own spread.
        cpu_round_trip_ns: Some(130.0 + repeat as f64),
        tail: Some(steady_tail(d.med_ms, d.p99_ms)),
        raw_summary_file: Some(format!("raw/run-{repeat}.json")),
    }
}

fn variant(
    name: &str,
    runtime: RuntimeInfo,
    artifact: Option<ArtifactInfo>,
    status: VariantStatus,
    runs: Vec<RunResult>,
) -> VariantResult {
    VariantResult {
        name: name.into(),
        runtime,
        workload_mode: Some("concurrent".into()),
        not_started: false,
        artifact,
        reason: match status {
            VariantStatus::Ok => None,
            VariantStatus::Failed => {
                // Quoted child output may hold newlines.
                Some("server exited with status 1 before /healthz answered:\n  Error: bind\n    address in use\n".into())
            }
            VariantStatus::Skipped => Some("wasmedge is not installed".into()),
        },
        status,
        runs,
        callgrind: None,
        aggregate: Aggregate::default(),
    }
}

fn artifact(path: &str, size: u64, compile_ms: Option<f64>) -> ArtifactInfo {
    ArtifactInfo {
        path: path.into(),
        size_bytes: size,
        build_ms: 21_000.0,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        compile_ms,
        cwasm_size_bytes: compile_ms.map(|_| size * 3),
    }
}

fn native() -> VariantResult {
    variant(
        "native",
        RuntimeInfo {
            name: "native".into(),
            version: "rustc 1.95.0".into(),
            mode: ExecMode::Native,
            target: Target::Native,
            pooling: None,
            details: BTreeMap::new(),
        },
        Some(artifact("target/artifact/echo", 420_000, None)),
        VariantStatus::Ok,
        (0..3).map(|r| run(r, 1.0, 1.8, 0.0, 2_100_000)).collect(),
    )
}

fn wasmtime(name: &str, mode: ExecMode, k: f64, cold: f64) -> VariantResult {
    variant(
        name,
        RuntimeInfo {
            name: "wasmtime".into(),
            version: "48.0.8".into(),
            mode,
            target: Target::Wasip2,
            pooling: Some(true),
            details: BTreeMap::from([("embedding".to_string(), "wasmbench host".to_string())]),
        },
        Some(artifact(
            "target/wasm32-wasip2/artifact/echo.wasm",
            310_000,
            Some(132.0),
        )),
        VariantStatus::Ok,
        // The Wasm side's own run-to-run spread, apart from what it shares with the baseline's
        // run of the same round.
        (0..3)
            .map(|r| run(r, k * [1.0, 1.01, 0.995][r as usize], cold, 0.0, 38_000_000))
            .collect(),
    )
}

fn finish(variants: Vec<VariantResult>, mode: ConnectionMode) -> Comparison {
    let meta = Meta {
        wasmbench_version: "0.1.0".into(),
        started_at: "2026-11-29T09:00:00Z".into(),
        ended_at: "2026-11-29T09:04:10Z".into(),
        command_line: vec!["wasmbench".into(), "compare".into()],
        partial: false,
        environment: env(),
    };
    let mut c = Comparison::new(meta, plan(mode), "native");
    c.variants = variants;
    c.finalize();
    c
}

/// native vs embedded wasmtime (wasip2, Cranelift JIT), keep-alive.
pub fn two_variants() -> Comparison {
    finish(
        vec![
            native(),
            wasmtime("wasmtime-wasip2", ExecMode::CraneliftJit, 2.1, 12.4),
        ],
        ConnectionMode::KeepAlive,
    )
}

/// Five variants: three ran, one failed, one skipped.
pub fn many_variants() -> Comparison {
    let failed = variant(
        "wasmtime-winch",
        RuntimeInfo {
            name: "wasmtime".into(),
            version: "48.0.8".into(),
            mode: ExecMode::Winch,
            target: Target::Wasip2,
            pooling: Some(false),
            details: BTreeMap::new(),
        },
        Some(artifact(
            "target/wasm32-wasip2/artifact/echo.wasm",
            310_000,
            None,
        )),
        VariantStatus::Failed,
        Vec::new(),
    );
    let skipped = variant(
        "wasmedge-wasip1",
        RuntimeInfo {
            name: "wasmedge".into(),
            version: "unknown".into(),
            mode: ExecMode::Aot,
            target: Target::Wasip1,
            pooling: None,
            details: BTreeMap::new(),
        },
        None,
        VariantStatus::Skipped,
        Vec::new(),
    );
    finish(
        vec![
            native(),
            wasmtime("wasmtime-wasip2", ExecMode::CraneliftJit, 2.1, 12.4),
            wasmtime("wasmtime-precompiled", ExecMode::Precompiled, 1.9, 8.4),
            failed,
            skipped,
        ],
        ConnectionMode::KeepAlive,
    )
}

/// The demo's setup: one connection per request, so every request pays connect.
pub fn new_connection_per_request() -> Comparison {
    let mut n = native();
    n.runs = (0..3).map(|r| run(r, 1.0, 1.8, 0.35, 2_100_000)).collect();
    n.workload_mode = Some("seed".into());
    let mut w = wasmtime("wasmtime-wasip2", ExecMode::CraneliftJit, 1.05, 12.4);
    w.runs = (0..3)
        .map(|r| run(r, 1.05, 12.4, 1.4, 38_000_000))
        .collect();
    w.workload_mode = Some("seed".into());
    finish(vec![n, w], ConnectionMode::NewConnectionPerRequest)
}

/// native vs wasip2 on a mix of two requests: `echo` (weight 3) and `hash` (weight 1), whose
/// server time is 10x echo's on native and 30x on Wasm.
pub fn mixed() -> Comparison {
    let mut c = two_variants();
    c.plan.workload = "mix".into();
    c.plan.mix = vec![
        MixEntry {
            name: "echo".into(),
            weight: 3,
            method: "GET".into(),
            path: "/".into(),
            body_bytes: 0,
        },
        MixEntry {
            name: "hash".into(),
            weight: 1,
            method: "POST".into(),
            path: "/hash?rounds=100".into(),
            body_bytes: 1024,
        },
    ];
    for v in &mut c.variants {
        let hash_factor = if v.name == "native" { 10.0 } else { 30.0 };
        for r in &mut v.runs {
            let waiting = r.phases["http_req_waiting"];
            let duration = r.phases["http_req_duration"];
            let scaled = |t: &TrendStats, k: f64| TrendStats {
                avg_ms: t.avg_ms * k,
                min_ms: t.min_ms * k,
                med_ms: t.med_ms * k,
                max_ms: t.max_ms * k,
                p90_ms: t.p90_ms * k,
                p95_ms: t.p95_ms * k,
                p99_ms: t.p99_ms * k,
                count: t.count / 4,
            };
            let echo_reqs = r.http_reqs * 3 / 4;
            r.by_request.insert(
                "echo".into(),
                RequestBreakdown {
                    http_reqs: echo_reqs,
                    throughput_rps: r.throughput_rps * 0.75,
                    http_req_failed_rate: 0.0,
                    waiting,
                    duration,
                },
            );
            r.by_request.insert(
                "hash".into(),
                RequestBreakdown {
                    http_reqs: r.http_reqs - echo_reqs,
                    throughput_rps: r.throughput_rps * 0.25,
                    http_req_failed_rate: 0.0,
                    waiting: scaled(&waiting, hash_factor),
                    duration: scaled(&duration, hash_factor),
                },
            );
        }
    }
    c.finalize();
    c
}
