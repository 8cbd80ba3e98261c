//! JSON renderer and reader.

use std::path::Path;

use crate::{Comparison, Figure, ReportError, SCHEMA_VERSION};

/// Pretty JSON of the model.
pub(crate) fn render(c: &Comparison) -> Result<String, ReportError> {
    let mut s = serde_json::to_string_pretty(c).map_err(ReportError::Serialize)?;
    s.push('\n');
    Ok(s)
}

/// Parses a comparison, checking `schema_version` before the shape so an old or future file
/// gets a version error instead of a confusing field error.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Comparison, ReportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        other => {
            return Err(ReportError::UnsupportedSchema {
                path: path.to_path_buf(),
                found: other.map_or_else(|| "missing".to_string(), |v| v.to_string()),
                expected: SCHEMA_VERSION,
            });
        }
    }
    let c: Comparison = serde_json::from_value(value).map_err(|source| ReportError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    impossible_figure(&c).map_or(Ok(c), |what| {
        Err(ReportError::Impossible {
            path: path.to_path_buf(),
            what,
        })
    })
}

/// Two stored ratios that differ by more than this share from the ratio of the stored medians
/// were not computed from them.
const RATIO_TOLERANCE: f64 = 1e-6;

/// The first figure a comparison could not have measured: a negative or non-finite value, a
/// baseline that names no variant, or a stored ratio that its medians do not give (a file
/// edited by hand renders numbers that contradict each other otherwise).
fn impossible_figure(c: &Comparison) -> Option<String> {
    if !c.variants.iter().any(|v| v.name == c.baseline) {
        return Some(format!(
            "baseline `{}` is not one of the variants",
            c.baseline
        ));
    }
    for v in &c.variants {
        for f in Figure::ALL {
            if let Some(x) = v.figure_value(f)
                && (!x.is_finite() || x < 0.0)
            {
                return Some(format!("variants[{}].{} is {x}", v.name, f.key()));
            }
        }
        for r in &v.runs {
            if !r.throughput_rps.is_finite() || r.throughput_rps < 0.0 {
                return Some(format!(
                    "variants[{}].runs[{}].throughput_rps is {}",
                    v.name, r.repeat, r.throughput_rps
                ));
            }
        }
    }
    let mut recomputed = c.clone();
    recomputed.compute_ratios();
    for (variant, stored) in &c.ratios {
        for (figure, &ratio) in stored {
            let expected = recomputed.ratios.get(variant).and_then(|m| m.get(figure));
            let agrees = expected.is_some_and(|&e| {
                (e - ratio).abs() <= RATIO_TOLERANCE * e.abs().max(ratio.abs()).max(1e-12)
            });
            if !agrees {
                let medians = expected.map_or_else(|| "no ratio".to_string(), |e| format!("{e}"));
                return Some(format!(
                    "ratios[{variant}].{} is {ratio}, but the stored medians give {medians}",
                    figure.key()
                ));
            }
        }
    }
    None
}
