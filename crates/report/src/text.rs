//! Terminal renderer: an aligned table of medians and their intervals with ratios to the
//! baseline.

use std::fmt::Write as _;

use crate::model::Comparison;
use crate::table::{
    cell, kubernetes_rows, plan_line, precision_line, present, ratio_cell, runtime_line,
    status_line, table_figures, values_legend,
};

/// Pads every column to its widest cell (counted in chars: `µ` and `–` are one column wide).
fn aligned(rows: &[Vec<String>], right: &[bool]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = r.get(i).map_or("", String::as_str);
                let pad = w - c.chars().count();
                if i > 0 {
                    line.push_str("  ");
                }
                if right.get(i).copied().unwrap_or(false) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad));
                }
            }
            line
        })
        .collect()
}

pub(crate) fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wasmbench {} compare: {}",
        c.meta.wasmbench_version,
        plan_line(c)
    );
    let _ = writeln!(out, "{}", values_legend(c));
    if let Some(p) = precision_line(c) {
        let _ = writeln!(out, "{p}");
    }
    if c.meta.partial {
        let _ = writeln!(out, "PARTIAL RESULT: the run was interrupted");
    }
    out.push('\n');

    let mut header = vec!["metric".to_string()];
    let mut right = vec![false];
    for v in &c.variants {
        header.push(v.name.clone());
        right.push(true);
        if v.name != c.baseline {
            header.push(format!("/{}", c.baseline));
            right.push(true);
        }
    }
    let mut rows = vec![header];
    for f in table_figures().filter(|f| present(c, *f)) {
        let mut row = vec![f.label().to_string()];
        for v in &c.variants {
            row.push(cell(v, f));
            if v.name != c.baseline {
                row.push(ratio_cell(c, v, f));
            }
        }
        rows.push(row);
    }
    let lines = aligned(&rows, &right);
    if let Some(first) = lines.first() {
        let _ = writeln!(out, "{first}");
        let _ = writeln!(out, "{}", "-".repeat(first.chars().count()));
    }
    for l in lines.iter().skip(1) {
        let _ = writeln!(out, "{l}");
    }

    let mix = crate::mix::mix_rows(c);
    if !mix.is_empty() {
        out.push_str("\nper request of the mix (median, ratio to the baseline)\n");
        let mut right = vec![false, false];
        right.extend(c.variants.iter().map(|_| true));
        for l in aligned(&mix, &right) {
            let _ = writeln!(out, "  {}", l.trim_end());
        }
    }

    if let Some((heading, rows)) = crate::code_split::rows(c) {
        let _ = writeln!(out, "\n{heading}");
        let mut right = vec![false];
        right.extend(rows[0].iter().skip(1).map(|_| true));
        for l in aligned(&rows, &right) {
            let _ = writeln!(out, "  {}", l.trim_end());
        }
    }

    out.push_str("\nvariants\n");
    let vrows: Vec<Vec<String>> = c
        .variants
        .iter()
        .map(|v| vec![format!("  {}", v.name), runtime_line(v), status_line(v)])
        .collect();
    for l in aligned(&vrows, &[false, false, false]) {
        let _ = writeln!(out, "{}", l.trim_end());
    }

    let cluster = kubernetes_rows(c);
    if !cluster.is_empty() {
        out.push_str("\nkubernetes\n");
        for (k, v) in cluster {
            let _ = writeln!(out, "  {k}: {v}");
        }
    }

    if let Some((heading, rows)) = crate::table::saved_rows(c) {
        let _ = writeln!(out, "\n{heading}");
        let right = [false, false, true, true, true, false];
        for l in aligned(&rows, &right) {
            let _ = writeln!(out, "  {}", l.trim_end());
        }
    }

    if !c.explanation.is_empty() {
        out.push_str("\nexplanation\n");
        for e in &c.explanation {
            let _ = writeln!(out, "  - {e}");
        }
    }
    if !c.warnings.is_empty() {
        out.push_str("\nwarnings\n");
        for w in &c.warnings {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    out
}
