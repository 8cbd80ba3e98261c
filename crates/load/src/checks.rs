//! Checks evaluated on every response, counted like k6's `check()`.

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// One check; written and serialized as its expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Check {
    /// The expression as written, used as the check's name in summaries.
    pub name: String,
    /// What it tests.
    pub kind: CheckKind,
}

/// The supported check conditions.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `status == N`: the response status is N (a transport error fails it).
    Status(u16),
    /// `duration < X`: `http_req_duration` below X milliseconds.
    DurationBelowMs(f64),
    /// `body contains S`: the response body contains the bytes of S.
    BodyContains(String),
}

impl Check {
    /// Parses `status == 200`, `duration < 200` (ms, a `ms` suffix is allowed) or
    /// `body contains TEXT` (TEXT may be quoted).
    pub fn parse(expr: &str) -> Result<Check, LoadError> {
        let err = |reason: &str| LoadError::Check {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        let e = expr.trim();
        let kind = if let Some(rest) = e.strip_prefix("status") {
            let v = rest
                .trim_start()
                .strip_prefix("==")
                .ok_or_else(|| err("write `status == 200`"))?;
            let code: u16 = v
                .trim()
                .parse()
                .map_err(|_| err("the status must be a number, e.g. `status == 200`"))?;
            CheckKind::Status(code)
        } else if let Some(rest) = e.strip_prefix("duration") {
            let v = rest
                .trim_start()
                .strip_prefix('<')
                .ok_or_else(|| err("write `duration < 200` (milliseconds)"))?;
            let v = v.trim();
            let v = v.strip_suffix("ms").unwrap_or(v).trim();
            let ms: f64 = v
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x > 0.0)
                .ok_or_else(|| err("the limit must be a positive number of milliseconds"))?;
            CheckKind::DurationBelowMs(ms)
        } else if let Some(rest) = e.strip_prefix("body contains") {
            let v = rest.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            if v.is_empty() {
                return Err(err("give the text to look for, e.g. `body contains echo`"));
            }
            CheckKind::BodyContains(v.to_string())
        } else {
            return Err(err(
                "use `status == N`, `duration < MS` or `body contains TEXT`",
            ));
        };
        Ok(Check {
            name: e.to_string(),
            kind,
        })
    }

    /// True when the check needs the response body.
    pub fn needs_body(&self) -> bool {
        matches!(self.kind, CheckKind::BodyContains(_))
    }

    /// Evaluates the check; `status` is 0 after a transport error.
    pub fn eval(&self, status: u16, duration_ms: f64, body: &[u8]) -> bool {
        match &self.kind {
            CheckKind::Status(s) => status == *s,
            CheckKind::DurationBelowMs(ms) => status != 0 && duration_ms < *ms,
            CheckKind::BodyContains(text) => {
                let needle = text.as_bytes();
                body.windows(needle.len()).any(|w| w == needle)
            }
        }
    }
}

impl TryFrom<String> for Check {
    type Error = LoadError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Check::parse(&s)
    }
}

impl From<Check> for String {
    fn from(c: Check) -> String {
        c.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let c = Check::parse("status == 200").unwrap();
        assert!(c.eval(200, 1.0, b""));
        assert!(!c.eval(500, 1.0, b""));
        let c = Check::parse("duration<200ms").unwrap();
        assert!(c.eval(200, 199.0, b""));
        assert!(!c.eval(200, 200.0, b""));
        assert!(!c.eval(0, 1.0, b""));
        let c = Check::parse("body contains \"echo: hi\"").unwrap();
        assert!(c.eval(200, 1.0, b"xx echo: hi yy"));
        assert!(!c.eval(200, 1.0, b"echo: h"));
        for bad in [
            "status = 200",
            "status == abc",
            "duration > 3",
            "size < 3",
            "body contains",
        ] {
            let e = Check::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
