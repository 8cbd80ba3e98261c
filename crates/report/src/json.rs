//! JSON renderer and reader.

use std::path::Path;

use crate::{Comparison, ReportError, SCHEMA_VERSION};

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
    serde_json::from_value(value).map_err(|source| ReportError::Parse {
        path: path.to_path_buf(),
        source,
    })
}
