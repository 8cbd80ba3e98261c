//! The explanation cites only figures the run measured: each kernel-counter sentence is there
//! with its numbers when they were counted, and gone when they were not.

mod support;

use wasmbench_report::*;

fn joined(c: &Comparison) -> String {
    c.explanation.join("\n")
}

#[test]
fn syscalls_per_request_are_cited_with_their_figures() {
    let c = support::two_variants();
    let e = joined(&c);
    // The fixture: native 5 syscalls per request (1 poll), wasip2 6 (2 polls).
    assert!(
        e.contains("wasmtime-wasip2 made 6 syscalls per request vs 5 for native"),
        "{e}"
    );
    assert!(e.contains("poll 2 vs 1"), "{e}");
    assert!(e.contains("read 1 vs 1, write 1 vs 1"), "{e}");
    assert!(
        e.contains("the largest difference is +1 poll calls per request"),
        "{e}"
    );
    assert!(
        e.contains("Not measured in this run: instructions per request (no hardware counters)."),
        "{e}"
    );
    // The figures are table rows with a ratio, like every other figure.
    assert_eq!(
        c.ratio("wasmtime-wasip2", Figure::PollCallsPerReq),
        Some(2.0)
    );
    let text = render(&c, Format::Text).unwrap();
    assert!(text.contains("server poll calls"), "{text}");
}

#[test]
fn no_sentence_rests_on_a_figure_that_was_not_measured() {
    let mut c = support::two_variants();
    for r in &mut c.variants[1].runs {
        r.server_counts = None;
    }
    c.finalize();
    let e = joined(&c);
    assert!(!e.contains("syscalls per request vs"), "{e}");
    assert!(!e.contains("context switches"), "{e}");
    assert_eq!(c.ratio("wasmtime-wasip2", Figure::SyscallsPerReq), None);

    // Syscalls not counted at all (no tracefs): the switches alone make no syscall claim.
    let mut c = support::two_variants();
    for v in &mut c.variants {
        for r in &mut v.runs {
            let counts = r.server_counts.as_mut().unwrap();
            counts.syscalls.clear();
            counts.syscalls_not_counted = Some("no tracefs".into());
        }
    }
    c.finalize();
    let e = joined(&c);
    assert!(!e.contains("syscalls per request vs"), "{e}");
    assert!(
        e.contains("Not measured in this run: syscalls per request (no tracefs)."),
        "{e}"
    );
    let text = render(&c, Format::Text).unwrap();
    assert!(!text.contains("server poll calls"), "{text}");
    assert!(text.contains("server context switches"), "{text}");
}

#[test]
fn a_server_that_closes_keep_alive_connections_is_named_with_its_figure() {
    let mut c = support::two_variants();
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.contains("TCP connections were opened")),
        "{:?}",
        c.warnings
    );
    // wasip2's server closes every connection: one connection per request.
    for r in &mut c.variants[1].runs {
        r.connections_opened = Some(r.http_reqs);
    }
    c.finalize();
    let w = c.warnings.join("\n");
    assert!(
        w.contains("wasmtime-wasip2: ")
            && w.contains("TCP connections were opened for")
            && w.contains("under keep-alive (100% of requests): the server closed connections"),
        "{w}"
    );
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.starts_with("native:") && w.contains("TCP connections")),
        "{w}"
    );
    let e = joined(&c);
    assert!(e.contains("TCP connections opened: native 300 for"), "{e}");
    // Never the claim that connections were reused.
    assert!(!e.contains("opened once and reused"), "{e}");
    println!("{}", render(&c, Format::Text).unwrap());
}

#[test]
fn instructions_from_the_callgrind_pass_are_cited_with_how_they_were_counted() {
    let mut c = support::two_variants();
    for (v, instructions) in c.variants.iter_mut().zip([2_218_000u64, 9_870_000]) {
        v.callgrind = Some(CallgrindCount {
            instructions,
            requests: 1_000,
            idle_instructions_per_s: 1_500,
            vus: 1,
            rate_per_s: None,
            valgrind: "valgrind-3.19.0".into(),
            profile_file: None,
            by_code: Vec::new(),
        });
    }
    c.finalize();
    let e = joined(&c);
    assert!(
        e.contains(
            "wasmtime-wasip2 executed 9.87k instructions per request vs 2.22k for native (4.45x native); both counted by callgrind (valgrind-3.19.0) over 1000 requests at 1 VU in a pass of its own, less its idle 1.5k instructions/s."
        ),
        "{e}"
    );
    // The figure came from another method: the missing hardware counter needs no note.
    assert!(
        !e.contains("instructions per request (no hardware counters)"),
        "{e}"
    );
    let text = render(&c, Format::Text).unwrap();
    assert!(text.contains("server instructions"), "{text}");
    // The Markdown report's main table has the row too, its ratio and how it was counted.
    let md = render(&c, Format::Markdown).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| server instructions |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains("counted by callgrind at 1 VU"), "{row}");
    assert!(row.contains("| 4.45x"), "{row}");

    // One variant without its count: no instruction sentence at all.
    c.variants[1].callgrind = None;
    c.finalize();
    assert!(
        !joined(&c).contains("instructions per request vs"),
        "{}",
        joined(&c)
    );
}

#[test]
fn a_service_without_a_declared_mode_gets_its_measured_threads_and_no_model() {
    let mut c = support::two_variants();
    for v in &mut c.variants {
        v.workload_mode = None;
    }
    c.variants[1].runs[0]
        .server_counts
        .as_mut()
        .unwrap()
        .threads = 9;
    c.finalize();
    let e = joined(&c);
    assert!(
        e.contains(
            "Concurrency model of native: not declared (a service wasmbench did not build); \
             its server process (runtime included) had at most 1 thread at once in each measured \
             run."
        ),
        "{e}"
    );
    assert!(
        e.contains("Concurrency model of wasmtime-wasip2: not declared")
            && e.contains("had at most 1 to 9 threads at once"),
        "{e}"
    );
    assert!(
        !e.contains("poll(2) event loop") && !e.contains("`concurrent`"),
        "{e}"
    );
    let text = render(&c, Format::Markdown).unwrap();
    assert!(!text.contains("concurrent mode"), "{text}");
    assert!(
        text.contains("Process spawn → first 200 on GET /healthz"),
        "the cold-start row names the plan's readiness rule: {text}"
    );
}

#[test]
fn transport_errors_are_a_warning_with_their_kinds() {
    let mut c = support::two_variants();
    let r = &mut c.variants[1].runs[0];
    r.errors.insert("reset".into(), 9);
    r.errors.insert("timeout".into(), 2);
    c.finalize();
    assert!(
        c.warnings.iter().any(|w| w
            == "wasmtime-wasip2: 11 request(s) failed without an HTTP answer (reset 9, timeout 2), counted in http_req_failed."),
        "{:?}",
        c.warnings
    );
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.starts_with("native:") && w.contains("without an HTTP answer")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn runs_with_the_cpus_placed_apart_are_named_and_one_placement_is_not() {
    let mut c = support::two_variants();
    c.finalize();
    assert!(
        !c.warnings.iter().any(|w| w.contains("cache line")),
        "probes within 2% of each other are one placement: {:?}",
        c.warnings
    );
    c.variants[0].runs[1].cpu_round_trip_ns = Some(410.0);
    c.finalize();
    let w = c
        .warnings
        .iter()
        .find(|w| w.contains("cache line"))
        .unwrap_or_else(|| panic!("no placement warning: {:?}", c.warnings));
    assert!(w.contains("130–410 ns"), "{w}");
    assert!(w.contains("1 of 6 runs"), "{w}");
    assert!(w.contains("native #2 410 ns"), "{w}");
}

fn cost(code: CodeKind, interface: Option<&str>, instructions: u64) -> CodeCost {
    CodeCost {
        code,
        interface: interface.map(String::from),
        instructions,
    }
}

#[test]
fn the_split_by_code_is_cited_only_where_it_was_measured() {
    let mut c = support::two_variants();
    let splits = [
        vec![
            cost(CodeKind::Program, None, 1_200_000),
            cost(CodeKind::Libc, None, 1_018_000),
        ],
        vec![
            cost(CodeKind::WasiHost, Some("wasi:io/streams"), 4_000_000),
            cost(CodeKind::Runtime, None, 3_000_000),
            cost(CodeKind::WasiHost, Some("wasi:sockets"), 1_000_000),
            cost(CodeKind::Guest, None, 1_000_000),
            cost(CodeKind::Libc, None, 770_000),
            // 1% of the whole: counted in its kind, not named.
            cost(CodeKind::WasiHost, Some("wasi:io/poll"), 100_000),
        ],
    ];
    for (v, by_code) in c.variants.iter_mut().zip(splits) {
        v.callgrind = Some(CallgrindCount {
            instructions: by_code.iter().map(|p| p.instructions).sum(),
            requests: 1_000,
            idle_instructions_per_s: 1_500,
            vus: 1,
            rate_per_s: None,
            valgrind: "valgrind-3.19.0".into(),
            profile_file: None,
            by_code,
        });
    }
    c.finalize();
    let e = joined(&c);
    assert!(
        e.contains(
            "Callgrind's split at 1 VU: of wasmtime-wasip2's 9.87k instructions per request, \
             52% in WASI host functions (wasi:io/streams 41%, wasi:sockets 10%), \
             30% in Wasm runtime (Wasmtime, WasmEdge), 10% in guest code (compiled Wasm), \
             8% in libc and Rust std (no other caller); of native's 2.22k instructions per request, \
             54% in program and other libraries, 46% in libc and Rust std (no other caller)"
        ),
        "{e}"
    );
    assert!(!e.contains("wasi:io/poll 1%"), "{e}");
    // The fixture's runs measured the server's CPU, so the kernel share is cited too.
    assert!(e.contains("in the measured runs the kernel took"), "{e}");

    let text = render(&c, Format::Text).unwrap();
    assert!(
        text.contains("where the server's instructions went"),
        "{text}"
    );
    assert!(text.contains("of which wasi:io/streams"), "{text}");
    assert!(text.contains("4k/req (41%)"), "{text}");
    let md = render(&c, Format::Markdown).unwrap();
    assert!(md.contains("## Where the instructions went"), "{md}");
    let html = render(&c, Format::Html).unwrap();
    assert!(
        html.contains("server CPU per 1000 requests by code"),
        "stacked bar missing"
    );
    assert!(html.contains("Where the instructions went"));

    // Without the baseline's split there is nothing to set beside it: no sentence, and the
    // table has one column.
    c.variants[0].callgrind.as_mut().unwrap().by_code.clear();
    c.finalize();
    assert!(!joined(&c).contains("Callgrind's split"), "{}", joined(&c));
    let text = render(&c, Format::Text).unwrap();
    assert!(!text.contains("program and other libraries"), "{text}");
}

#[test]
fn a_largest_phase_difference_within_the_noise_band_is_not_called_a_gap() {
    let mut c = support::two_variants();
    let native_runs = c.variants[0].runs.clone();
    for (r, n) in c.variants[1].runs.iter_mut().zip(&native_runs) {
        r.phases = n.phases.clone();
        r.phases.get_mut("http_req_waiting").unwrap().p95_ms *= 1.05;
    }
    c.finalize();
    let e = joined(&c);
    assert!(
        e.contains(
            "wasmtime-wasip2 and native spend about the same time in each phase: the largest \
             difference, in http_req_waiting, is 1.05x"
        ),
        "{e}"
    );
    assert!(!e.contains("the gap is"), "{e}");
}

/// `--baseline … --fail-on-regression`: the callgrind count is compared like every other
/// figure, and being one count that does not drift, a 2% rise is a regression at a 1%
/// threshold where an equal count is unchanged.
#[test]
fn a_gate_on_instructions_per_request_catches_a_two_percent_rise() {
    let with = |wasm: u64| {
        let mut c = support::two_variants();
        for (v, instructions) in c.variants.iter_mut().zip([2_218_000u64, wasm]) {
            v.callgrind = Some(CallgrindCount {
                instructions,
                requests: 1_000,
                idle_instructions_per_s: 1_500,
                vus: 1,
                rate_per_s: Some(200),
                valgrind: "valgrind-3.19.0".into(),
                profile_file: None,
                by_code: Vec::new(),
            });
        }
        c.finalize();
        c
    };
    let saved = with(9_870_000);
    let verdict = |now: &Comparison, variant: &str| {
        let s = wasmbench_report::against_saved(now, &saved, "saved", 0.01).unwrap();
        s.changes
            .iter()
            .find(|c| c.variant == variant && c.figure == Figure::InstructionsPerReq)
            .map(|c| c.verdict)
            .unwrap_or_else(|| panic!("no instructions change for {variant}: {:?}", s.changes))
    };
    let worse = with(10_067_400);
    assert_eq!(verdict(&worse, "wasmtime-wasip2"), Verdict::Regressed);
    assert_eq!(verdict(&worse, "native"), Verdict::Unchanged);
    assert_eq!(
        verdict(&with(9_870_000), "wasmtime-wasip2"),
        Verdict::Unchanged
    );
}

/// Dozens of short blocks vary one by one by design: the interleaved design's report gives no
/// per-figure noise or outlier verdicts (its paired intervals and the precision line say how
/// far to trust the ratios), where the same spread over whole runs still gets them.
#[test]
fn interleaved_blocks_get_no_noise_or_outlier_verdicts() {
    let spread = |design: Design| {
        let mut c = support::two_variants();
        c.plan.design = Some(design);
        for v in &mut c.variants {
            let first = v.runs[0].clone();
            v.runs = (0..12u32)
                .map(|i| {
                    let mut r = first.clone();
                    r.repeat = i;
                    // Every fourth block at half speed, one block at a tenth.
                    let f = if i == 5 {
                        0.1
                    } else if i % 4 == 0 {
                        0.5
                    } else {
                        1.0
                    };
                    r.throughput_rps *= f;
                    r
                })
                .collect();
        }
        c.warnings.clear();
        c.finalize();
        c.warnings
    };
    let doubt = |w: &String| w.contains("vary between samples") || w.starts_with("Outliers");
    let blocks = spread(Design::Interleaved);
    assert!(!blocks.iter().any(doubt), "{blocks:#?}");
    let runs = spread(Design::Restart);
    assert!(runs.iter().any(doubt), "{runs:#?}");
    let c = support::two_variants();
    let md = render(&c, Format::Markdown).unwrap();
    assert!(
        md.contains("Precision: every headline ratio within ±"),
        "the precision line names the widest interval without a target: {md}"
    );
}

/// A failed check is named with its own share, and a check that held is not.
#[test]
fn a_failed_check_is_named_with_its_own_share() {
    let c = support::two_variants();
    let w = c.warnings.join("\n");
    let line = w
        .lines()
        .find(|l| l.contains("checks failed"))
        .unwrap_or_else(|| panic!("the fixture fails some checks: {w}"));
    assert!(line.contains(": `duration < 200ms` "), "{line}");
    assert!(!line.contains("`status == 200`"), "{line}");
}

/// The phase that differs most is named with what it means, and when the baseline spends its
/// own time elsewhere (a native server whose response arrives in two writes), that is said too.
#[test]
fn each_side_s_largest_phase_is_named_whichever_it_is() {
    let mut c = support::two_variants();
    let set = |c: &mut Comparison, variant: usize, phase: &str, ms: f64| {
        for r in &mut c.variants[variant].runs {
            r.phases.get_mut(phase).unwrap().p95_ms = ms;
        }
    };
    set(&mut c, 0, "http_req_receiving", 90.0);
    set(&mut c, 0, "http_req_waiting", 2.0);
    set(&mut c, 1, "http_req_waiting", 300.0);
    c.finalize();
    let e = joined(&c);
    assert!(
        e.contains("spends 150x native in http_req_waiting (p95 300ms vs 2ms)")
            && e.contains("the gap is server processing")
            && e.contains("; native's own largest phase is http_req_receiving (p95 90ms)."),
        "{e}"
    );

    // The response's delivery as the largest difference: said as such.
    set(&mut c, 1, "http_req_waiting", 2.0);
    set(&mut c, 1, "http_req_receiving", 400.0);
    c.finalize();
    let e = joined(&c);
    assert!(
        e.contains("in http_req_receiving (p95 400ms vs 90ms)")
            && e.contains("the gap is in the response's delivery after its first byte")
            && !e.contains("own largest phase"),
        "{e}"
    );
}
