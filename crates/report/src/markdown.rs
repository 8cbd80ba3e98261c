//! Markdown renderer: the demo's `Metric Name | Description | Rust | Wasm` table (columns named native and Wasm here: both sides are Rust) plus a
//! `Wasm/native` ratio column, then every variant, the environment and the explanation.

use std::fmt::Write as _;

use crate::model::{Comparison, Figure, PHASES, VariantStatus};
use crate::table::{
    cell, compact_ratio_cell, description, kubernetes_rows, median_cell, plan_line, precision_line,
    present, ratio_cell, runtime_line, status_line, table_figures, values_legend,
};
use crate::units::fmt_bytes;

/// Keeps table cells on one row.
fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Rows after the phase rows in the demo-style table.
const EXTRA_ROWS: [Figure; 12] = [
    Figure::ThroughputRps,
    Figure::CapacityRps,
    Figure::HttpReqDurationP50Ms,
    Figure::HttpReqDurationP95Ms,
    Figure::HttpReqDurationP99Ms,
    Figure::HttpReqFailedRate,
    Figure::ColdStartMs,
    Figure::ServerCpuMsPer1kReq,
    Figure::InstructionsPerReq,
    Figure::LoadgenCpuMsPer1kReq,
    Figure::ServerRssPeakBytes,
    Figure::ArtifactSizeBytes,
];

pub(crate) fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# wasmbench comparison\n");
    let _ = writeln!(out, "{}\n", esc(&plan_line(c)));
    if c.meta.partial {
        let _ = writeln!(out, "> **Partial result:** the run was interrupted.\n");
    }

    let base = c.baseline_variant();
    let wasm = c.primary_wasm_variant();
    let _ = writeln!(
        out,
        "native = `{}`, Wasm = `{}`. Phase rows are p95, as in k6's summary; {}.\n",
        base.map_or(c.baseline.as_str(), |b| b.name.as_str()),
        wasm.map_or("none", |w| w.name.as_str()),
        values_legend(c)
    );
    if let Some(p) = precision_line(c) {
        let _ = writeln!(out, "**{}**\n", esc(&upper_first(&p)));
    }
    let _ = writeln!(
        out,
        "| Metric Name | Description | native | Wasm | Wasm/native |\n|---|---|---|---|---|"
    );
    let phase_rows = PHASES.iter().filter_map(|p| Figure::phase_p95(p));
    // Capacity only when a search ran, instructions only when counted; every other row
    // always, as in the demo's table.
    for f in phase_rows.chain(EXTRA_ROWS).filter(|f| {
        !matches!(f, Figure::CapacityRps | Figure::InstructionsPerReq) || present(c, *f)
    }) {
        let name = match PHASES.iter().find(|p| Figure::phase_p95(p) == Some(f)) {
            Some(p) => (*p).to_string(),
            None => f.label().to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            esc(&name),
            esc(&description(c, f)),
            base.map_or_else(|| "–".into(), |b| cell(b, f)),
            wasm.map_or_else(|| "–".into(), |w| cell(w, f)),
            wasm.map_or_else(|| "–".into(), |w| ratio_cell(c, w, f)),
        );
    }

    if c.variants.len() > 2 {
        let _ = writeln!(out, "\n## All variants\n");
        let _ = writeln!(
            out,
            "Each cell: median (ratio to `{}`).\n",
            esc(&c.baseline)
        );
        let mut head = String::from("| Metric |");
        let mut rule = String::from("|---|");
        for v in &c.variants {
            let _ = write!(head, " {} |", esc(&v.name));
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for f in table_figures().filter(|f| present(c, *f)) {
            let mut row = format!("| {} |", f.label());
            for v in &c.variants {
                let value = match v.status {
                    VariantStatus::Ok => median_cell(v, f),
                    _ => cell(v, f),
                };
                if v.name == c.baseline || c.ratio(&v.name, f).is_none() {
                    let _ = write!(row, " {value} |");
                } else {
                    let _ = write!(row, " {value} ({}) |", compact_ratio_cell(c, v, f));
                }
            }
            let _ = writeln!(out, "{row}");
        }
    }

    let mix = crate::mix::mix_rows(c);
    if let Some((head, rows)) = mix.split_first() {
        let _ = writeln!(out, "\n## Per request of the mix\n");
        let _ = writeln!(
            out,
            "Each iteration sends one request of the mix, in proportion to its weight. Each cell: median over repeats (ratio to `{}`).\n",
            esc(&c.baseline)
        );
        let cells: Vec<String> = head.iter().map(|h| esc(h)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for r in rows {
            let cells: Vec<String> = r.iter().map(|h| esc(h)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }

    let _ = writeln!(out, "\n## Variants\n");
    let _ = writeln!(
        out,
        "| Variant | Runtime | Artifact | Status |\n|---|---|---|---|"
    );
    for v in &c.variants {
        let artifact = v.artifact.as_ref().map_or_else(
            || "–".to_string(),
            |a| {
                let mut s = format!("{} ({})", a.path, fmt_bytes(a.size_bytes as f64));
                if let Some(ms) = a.compile_ms {
                    let _ = write!(s, ", compile {}", crate::units::fmt_ms(ms));
                }
                s
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            esc(&v.name),
            esc(&runtime_line(v)),
            esc(&artifact),
            esc(&status_line(v))
        );
    }

    let env = &c.meta.environment;
    let _ = writeln!(out, "\n## Environment\n");
    let _ = writeln!(
        out,
        "- CPU: {} ({} logical CPUs)",
        env.cpu_model, env.cpu_count
    );
    let _ = writeln!(out, "- Memory: {}", fmt_bytes(env.memory_bytes as f64));
    let _ = writeln!(out, "- OS: {}, kernel {}", env.os, env.kernel);
    if let Some(rustc) = c.built_with() {
        let _ = writeln!(out, "- rustc: {rustc}");
    }
    if let Some(h) = &env.hostname {
        let _ = writeln!(out, "- Host: {h}");
    }
    for (k, v) in &env.details {
        let _ = writeln!(out, "- {k}: {v}");
    }
    for (k, v) in kubernetes_rows(c) {
        let _ = writeln!(out, "- {k}: {}", esc(&v));
    }
    let _ = writeln!(
        out,
        "- wasmbench {}, {} → {}",
        c.meta.wasmbench_version, c.meta.started_at, c.meta.ended_at
    );
    let _ = writeln!(out, "- Command: `{}`", crate::table::command_text(c));
    let p = &c.plan;
    let _ = writeln!(
        out,
        "- Checks: {}; thresholds: {}",
        if p.checks.is_empty() {
            "none".into()
        } else {
            p.checks.join(", ")
        },
        if p.thresholds.is_empty() {
            "none".into()
        } else {
            p.thresholds.join(", ")
        }
    );
    match &p.cpu_pinning {
        Some(pin) => {
            let _ = writeln!(
                out,
                "- CPU pinning: server {:?}, load generator {:?}",
                pin.server_cpus, pin.load_cpus
            );
        }
        None => {
            let _ = writeln!(out, "- CPU pinning: none");
        }
    }
    if let Some(r) = &p.readiness {
        let _ = writeln!(out, "- Ready when: {r} (cold starts end there)");
    }
    for f in &p.fairness {
        let _ = writeln!(out, "- Fairness: {f}");
    }

    if let Some((heading, rows)) = crate::code_split::rows(c) {
        titled_table(&mut out, "Where the instructions went", &heading, &rows);
    }
    if let Some((heading, rows)) = crate::table::saved_rows(c) {
        titled_table(&mut out, "Against the saved run", &heading, &rows);
    }

    if !c.explanation.is_empty() {
        let _ = writeln!(out, "\n## Explanation\n");
        for e in &c.explanation {
            let _ = writeln!(out, "- {e}");
        }
    }
    if !c.warnings.is_empty() {
        let _ = writeln!(out, "\n## Warnings\n");
        for w in &c.warnings {
            let _ = writeln!(out, "- ⚠ {w}");
        }
    }
    out
}

/// `precision: …` as a sentence start.
/// A section: a title, its heading sentence, and `rows` as a table (the first row is the
/// header; cells lose the indentation the text table uses for sub-rows).
fn titled_table(out: &mut String, title: &str, heading: &str, rows: &[Vec<String>]) {
    let _ = writeln!(out, "\n## {title}\n\n{}\n", esc(&upper_first(heading)));
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r.iter().map(|x| esc(x.trim_start())).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(r.len()));
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut ch = s.chars();
    ch.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(ch).collect())
}
