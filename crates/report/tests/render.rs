//! Model, statistics and renderer tests on fixture comparisons.

mod support;

use std::path::PathBuf;

use wasmbench_report::units::fmt_ratio;
use wasmbench_report::*;

fn all_samples() -> Vec<Comparison> {
    vec![
        support::two_variants(),
        support::many_variants(),
        support::new_connection_per_request(),
        support::mixed(),
    ]
}

#[test]
fn ratios_are_variant_median_over_baseline_median() {
    for c in all_samples() {
        let base = c.baseline_variant().unwrap();
        let mut checked = 0;
        for v in c.variants.iter().filter(|v| v.name != c.baseline) {
            match v.status {
                VariantStatus::Ok => {
                    let ratios = &c.ratios[&v.name];
                    assert!(ratios.contains_key(&Figure::ThroughputRps));
                    assert!(ratios.contains_key(&Figure::HttpReqWaitingP95Ms));
                    for (f, r) in ratios {
                        let want = v.figure_value(*f).unwrap() / base.figure_value(*f).unwrap();
                        assert!((r - want).abs() <= 1e-12 * want.abs(), "{} {f:?}", v.name);
                        checked += 1;
                    }
                }
                _ => assert!(!c.ratios.contains_key(&v.name), "{} did not run", v.name),
            }
        }
        assert!(checked > 10);
        // keep-alive connecting p95 is 0 for the baseline: no ratio can be given
        if c.plan.connection_mode == ConnectionMode::KeepAlive {
            assert!(
                c.ratio("wasmtime-wasip2", Figure::HttpReqConnectingP95Ms)
                    .is_none()
            );
        }
    }
}

#[test]
fn wasm_slower_means_ratio_above_one_for_latency_below_for_throughput() {
    let c = support::two_variants();
    assert!(
        c.ratio("wasmtime-wasip2", Figure::HttpReqWaitingP95Ms)
            .unwrap()
            > 2.0
    );
    assert!(c.ratio("wasmtime-wasip2", Figure::ThroughputRps).unwrap() < 0.5);
    assert!(
        c.ratio("wasmtime-wasip2", Figure::ServerRssPeakBytes)
            .unwrap()
            > 10.0
    );
}

#[test]
fn confidence_intervals_contain_the_median_and_counts_match_repeats() {
    for c in all_samples() {
        for v in c.variants.iter().filter(|v| v.status == VariantStatus::Ok) {
            for f in Figure::ALL {
                if let Some(s) = v.aggregate.get(f) {
                    assert!(
                        s.ci_low <= s.median && s.median <= s.ci_high,
                        "{} {f:?}",
                        v.name
                    );
                    assert!(s.min <= s.median && s.median <= s.max);
                    let want_n = if f == Figure::ColdStartMs { 15 } else { 3 };
                    assert_eq!(s.n, want_n, "{} {f:?}", v.name);
                }
            }
        }
    }
}

#[test]
fn finalize_recomputes_rather_than_trusting_stored_values() {
    let mut c = support::two_variants();
    let good = c.clone();
    c.ratios.clear();
    c.variants[1].aggregate = Aggregate::default();
    c.finalize();
    assert_eq!(
        c, good,
        "finalize is deterministic and derives everything from runs"
    );
}

#[test]
fn markdown_has_the_demo_table_with_a_ratio_column() {
    let mut c = support::two_variants();
    c.meta.command_line = [
        "wasmbench",
        "compare",
        "--threshold",
        "http_req_duration: p(95)<200",
    ]
    .map(String::from)
    .to_vec();
    let md = render(&c, Format::Markdown).unwrap();
    assert!(md.contains("| Metric Name | Description | native | Wasm | Wasm/native |"));
    assert!(md.contains("| http_req_duration p95 | "), "{md}");
    // The command can be pasted back into a shell.
    assert!(
        md.contains("- Command: `wasmbench compare --threshold 'http_req_duration: p(95)<200'`"),
        "{md}"
    );
    for p in PHASES {
        assert!(md.contains(&format!("| {p} | ")), "missing phase row {p}");
    }
    // The ratio cell is the stored ratio with its bootstrap interval.
    let r = c
        .ratio("wasmtime-wasip2", Figure::HttpReqWaitingP95Ms)
        .unwrap();
    let i = c
        .ratio_interval("wasmtime-wasip2", Figure::HttpReqWaitingP95Ms)
        .expect("three repeats a side give an interval");
    assert!(i.low <= r && r <= i.high, "{i:?} around {r}");
    let waiting_ratio = format!(
        "{} [{}–{}]",
        fmt_ratio(r),
        fmt_ratio(i.low).trim_end_matches('x'),
        fmt_ratio(i.high)
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| http_req_waiting |"))
        .unwrap();
    assert!(row.ends_with(&format!("| {waiting_ratio} |")), "{row}");
    for label in [
        "throughput",
        "cold start",
        "server peak RSS",
        "artifact size",
        "errors",
    ] {
        assert!(
            md.lines().any(|l| l.starts_with(&format!("| {label}"))),
            "{label}"
        );
    }
    assert!(md.contains("µs") && md.contains("ms"));
    assert!(md.contains("## Environment") && md.contains("## Explanation"));
    assert!(
        !md.contains("## All variants"),
        "two variants need no per-variant section"
    );

    let many = render(&support::many_variants(), Format::Markdown).unwrap();
    assert!(many.contains("## All variants"));
    assert!(many.contains("| wasmtime-winch |") || many.contains(" wasmtime-winch |"));
    assert!(many.contains("failed") && many.contains("skipped"));
}

#[test]
fn text_table_columns_align() {
    for c in all_samples() {
        let txt = render(&c, Format::Text).unwrap();
        let lines: Vec<&str> = txt.lines().collect();
        let start = lines.iter().position(|l| l.starts_with("metric")).unwrap();
        let end = start + lines[start..].iter().position(|l| l.is_empty()).unwrap();
        let table = &lines[start..end];
        assert!(table.len() > 10);
        let width = table[0].chars().count();
        for l in table {
            assert_eq!(l.chars().count(), width, "misaligned: {l:?}");
        }
        // every value column ends in the same place on every row
        let header_cols: Vec<usize> = col_ends(table[0]);
        for l in &table[2..] {
            assert_eq!(col_ends(l).last(), header_cols.last(), "{l:?}");
        }
        assert!(txt.contains("(range ") || txt.contains(" ["), "{txt}");
    }
}

fn col_ends(line: &str) -> Vec<usize> {
    let chars: Vec<char> = line.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i] != ' ' && (i + 1 == chars.len() || chars[i + 1] == ' '))
        .collect()
}

#[test]
fn json_round_trips_through_write_all_and_read_dir() {
    for c in all_samples() {
        let json = render(&c, Format::Json).unwrap();
        let back: Comparison = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);

        let dir = tempfile::tempdir().unwrap();
        let files = write_all(&c, dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for n in ["comparison.json", "report.md", "report.html", "report.txt"] {
            assert!(names.iter().any(|x| x == n), "{n}");
        }
        assert_eq!(read_dir(dir.path()).unwrap(), c);
        // re-rendering from the file gives the same report
        assert_eq!(
            render(&read_dir(dir.path()).unwrap(), Format::Markdown).unwrap(),
            std::fs::read_to_string(dir.path().join("report.md")).unwrap()
        );
    }
}

#[test]
fn read_dir_names_the_file_on_missing_or_unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::MissingComparison(_)));
    assert!(err.to_string().contains("comparison.json"), "{err}");

    let mut v = serde_json::to_value(support::two_variants()).unwrap();
    v["schema_version"] = 99.into();
    std::fs::write(dir.path().join("comparison.json"), v.to_string()).unwrap();
    let err = read_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("comparison.json") && err.contains("99"),
        "{err}"
    );

    std::fs::write(dir.path().join("comparison.json"), "{ not json").unwrap();
    let err = read_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("comparison.json"), "{err}");
}

#[test]
fn format_parses_names() {
    assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!("MD".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!("html".parse::<Format>().unwrap(), Format::Html);
    assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
    assert_eq!("text".parse::<Format>().unwrap(), Format::Text);
    let err = "pdf".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("pdf") && err.contains("markdown"), "{err}");
}

#[test]
fn explanation_says_where_the_time_went() {
    let c = support::two_variants();
    let e = c.explanation.join("\n");
    assert!(e.contains("keep-alive"), "{e}");
    assert!(e.contains("wasmtime-wasip2 spends"), "{e}");
    assert!(e.contains("in http_req_waiting"), "{e}");
    assert!(e.contains("not connection setup"), "{e}");
    assert!(e.contains("Cranelift"), "{e}");
    assert!(e.contains("pooling instance allocator on"), "{e}");
    assert!(e.contains("AMD EPYC 7B13"), "{e}");

    let n = support::new_connection_per_request();
    let e = n.explanation.join("\n");
    assert!(e.contains("Every request pays a TCP connect"), "{e}");
    assert!(e.contains("`seed`"), "{e}");
    assert!(e.contains("the gap is connection setup"), "{e}");
}

#[test]
fn warnings_cover_failures_skips_noise_and_checks() {
    let c = support::many_variants();
    let w = c.warnings.join("\n");
    assert!(
        c.warnings.iter().any(|w| w
            == "wasmtime-winch failed: server exited with status 1 before /healthz answered: \
                Error: bind address in use"),
        "a failure's quoted output stays on one line: {w}"
    );
    assert!(
        w.contains("wasmedge-wasip1 skipped: wasmedge is not installed"),
        "{w}"
    );
    assert!(w.contains("checks failed"), "{w}");
    let two = support::two_variants();
    assert!(
        !two.warnings.iter().any(|w| w.contains("CV")),
        "{:?}",
        two.warnings
    );

    let mut noisy = support::two_variants();
    noisy.variants[0].runs[1].throughput_rps *= 1.6;
    noisy.finalize();
    assert!(
        noisy
            .warnings
            .iter()
            .any(|w| w.contains("vary between samples") && w.contains("native throughput (CV")),
        "{:?}",
        noisy.warnings
    );

    // 25 s of CPU in a 30 s run on one load CPU is 83%: fine; 29 s is 97%: the client may be
    // what limits throughput.
    assert!(!two.warnings.iter().any(|w| w.contains("load generator")));
    let mut busy = support::two_variants();
    busy.variants[0].runs[2].loadgen = Some(LoadgenUsage {
        cpu_ms: 29_000.0,
        rss_peak_bytes: 30_000_000,
    });
    busy.finalize();
    let w = busy.warnings.join("\n");
    assert!(
        w.contains("native: the load generator used 97% of its 1 CPU(s)"),
        "{w}"
    );
    assert!(!w.contains("wasmtime-wasip2: the load generator"), "{w}");
}

#[test]
fn html_is_one_self_contained_document() {
    for c in all_samples() {
        let html = render(&c, Format::Html).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<html").count(), 1);
        assert!(
            html.matches("<svg").count() >= 5,
            "latency, phases, throughput, cold start, CPU, RSS"
        );
        for forbidden in ["<script", "<link", "@import", "url(", "src=", "href="] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
        // The only URLs allowed are XML namespace names, which browsers never fetch.
        let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!stripped.contains("http://") && !stripped.contains("https://"));
        assert!(html.contains("Explanation") && html.contains("wasmtime-wasip2"));
    }
}

fn schema_validator() -> jsonschema::Validator {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/comparison.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

fn errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn rendered_json_validates_against_the_checked_in_schema() {
    let v = schema_validator();
    for c in all_samples() {
        let doc: serde_json::Value =
            serde_json::from_str(&render(&c, Format::Json).unwrap()).unwrap();
        let errs = errors(&v, &doc);
        assert!(errs.is_empty(), "{errs:#?}");
    }
}

#[test]
fn schema_rejects_broken_documents_and_unknown_fields() {
    let v = schema_validator();
    let good = serde_json::to_value(support::many_variants()).unwrap();
    let good_mix = serde_json::to_value(support::mixed()).unwrap();

    let mut missing = good.clone();
    missing["meta"]
        .as_object_mut()
        .unwrap()
        .remove("environment");
    assert!(!errors(&v, &missing).is_empty());

    let mut wrong_enum = good.clone();
    wrong_enum["variants"][1]["runtime"]["mode"] = "jit".into();
    assert!(!errors(&v, &wrong_enum).is_empty());

    let mut wrong_type = good.clone();
    wrong_type["variants"][0]["runs"][0]["http_reqs"] = "many".into();
    assert!(!errors(&v, &wrong_type).is_empty());

    let mut bad_ratio_key = good.clone();
    bad_ratio_key["ratios"]["wasmtime-wasip2"]["speed"] = 1.0.into();
    assert!(!errors(&v, &bad_ratio_key).is_empty());

    // A field added to the model but not to the schema makes every document invalid: each
    // object in the schema forbids properties it does not list.
    for (path, good) in [
        "/meta",
        "/meta/environment",
        "/plan",
        "/plan/request",
        "/plan/cpu_pinning",
        "/variants/1",
        "/variants/1/runtime",
        "/variants/1/artifact",
        "/variants/1/aggregate",
        "/variants/1/aggregate/throughput_rps",
        "/variants/1/runs/0",
        "/variants/1/runs/0/server",
        "/variants/1/runs/0/loadgen",
        "/variants/1/runs/0/checks",
        "/variants/1/runs/0/latency_curve/0",
        "/variants/1/runs/0/phases/http_req_waiting",
        "/variants/1/runs/0/thresholds/0",
        "",
    ]
    .into_iter()
    .map(|p| (p, &good))
    .chain(
        ["/plan/mix/0", "/variants/1/runs/0/by_request/hash"]
            .into_iter()
            .map(|p| (p, &good_mix)),
    ) {
        let mut extra = good.clone();
        extra
            .pointer_mut(path)
            .unwrap_or_else(|| panic!("fixture lacks {path}"))
            .as_object_mut()
            .unwrap()
            .insert("new_field_ms".into(), 1.0.into());
        assert!(
            !errors(&v, &extra).is_empty(),
            "schema accepts unknown field at {path:?}"
        );
        // and the model refuses it too, so the two cannot drift apart silently
        assert!(
            serde_json::from_value::<Comparison>(extra).is_err(),
            "{path}"
        );
    }
}

#[test]
fn every_figure_key_is_in_the_schema_and_the_aggregate() {
    let schema = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/comparison.schema.json"),
    )
    .unwrap();
    let agg = serde_json::to_value(&support::two_variants().variants[0].aggregate).unwrap();
    for f in Figure::ALL {
        assert!(schema.contains(&format!("\"{}\"", f.key())), "{}", f.key());
        assert_eq!(serde_json::to_value(f).unwrap(), f.key());
        // Not measured by the fixture: no TLS, no hardware counters, no capacity search.
        if ![
            Figure::ArtifactSizeBytes,
            Figure::CapacityRps,
            Figure::HttpReqTlsHandshakingP95Ms,
            Figure::InstructionsPerReq,
        ]
        .contains(&f)
        {
            assert!(agg.get(f.key()).is_some(), "aggregate lacks {}", f.key());
        }
    }
}

#[test]
fn a_mix_gets_a_per_request_table_in_every_format() {
    let c = support::mixed();
    let native = c.variant("native").unwrap();
    let wasm = c.variant("wasmtime-wasip2").unwrap();
    // The hash request's server time is 10x echo's natively and 30x on Wasm, so its waiting
    // ratio is 3x the echo request's.
    let echo_r = mix_ratio(&c, wasm, "echo", MixFigure::WaitingP95Ms).unwrap();
    let hash_r = mix_ratio(&c, wasm, "hash", MixFigure::WaitingP95Ms).unwrap();
    assert!((hash_r / echo_r - 3.0).abs() < 1e-9, "{echo_r} {hash_r}");
    assert_eq!(
        mix_ratio(&c, native, "hash", MixFigure::WaitingP95Ms),
        Some(1.0)
    );
    let rps = mix_stat(native, "hash", MixFigure::ThroughputRps).unwrap();
    let all = native.aggregate.throughput_rps.clone().unwrap();
    assert!(
        (rps.median / all.median - 0.25).abs() < 0.01,
        "{rps:?} {all:?}"
    );
    assert!(mix_stat(native, "nope", MixFigure::ThroughputRps).is_none());

    let md = render(&c, Format::Markdown).unwrap();
    assert!(md.contains("## Per request of the mix"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| hash: POST /hash?rounds=100 (weight 1) | p95 waiting |"))
        .unwrap_or_else(|| panic!("no hash waiting row in\n{md}"));
    assert!(row.contains(&format!("({})", fmt_ratio(hash_r))), "{row}");
    assert!(md.contains("mix [echo×3 hash×1]"), "{md}");
    let text = render(&c, Format::Text).unwrap();
    assert!(text.contains("per request of the mix"), "{text}");
    assert!(text.contains(&fmt_ratio(hash_r)), "{text}");
    let html = render(&c, Format::Html).unwrap();
    assert!(html.contains("<h2>Per request of the mix</h2>"));
    // Without a mix there is no such section.
    let plain = render(&support::two_variants(), Format::Markdown).unwrap();
    assert!(!plain.contains("Per request of the mix"));
}
