//! One request of a plan, sent alone, to say what a service answers when a run fails.

use crate::client::{Client, ErrorKind, Outcome, RequestCtx, Target, Trace};
use crate::error::LoadError;
use crate::plan::{ConnectionMode, Plan};

/// What one request of the plan got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The response's status code.
    pub status: u16,
    /// The body's first non-empty line, trimmed to 120 characters (empty when there is none).
    pub first_line: String,
}

/// Longest body line quoted: a message, not a page.
const LINE_CHARS: usize = 120;

/// A probe follows a run that already failed: it must not hang the report.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends the plan's request once (the first of its mix) and reads the answer.
pub async fn probe(plan: &Plan) -> Result<ProbeAnswer, ProbeError> {
    let (target, mut bytes) = Target::prepare(plan).await.map_err(ProbeError::Plan)?;
    let ctx = RequestCtx {
        target,
        bytes: bytes.swap_remove(0),
        keep_alive: plan.connection_mode == ConnectionMode::KeepAlive,
        is_head: plan.mix.first().map_or(&plan.request.method, |r| &r.method) == "HEAD",
    };
    let mut client = Client::new(true);
    let mut out = Outcome::default();
    let mut trace = Trace::default();
    tokio::time::timeout(PROBE_TIMEOUT, client.request(&ctx, &mut trace, &mut out))
        .await
        .map_err(|_| ProbeError::Request(ErrorKind::Timeout))?
        .map_err(ProbeError::Request)?;
    let body = String::from_utf8_lossy(&client.body);
    let line = body.lines().map(str::trim).find(|l| !l.is_empty());
    Ok(ProbeAnswer {
        status: out.status,
        first_line: line
            .map(|l| l.chars().take(LINE_CHARS).collect())
            .unwrap_or_default(),
    })
}

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The plan's URL or TLS settings cannot be used.
    #[error(transparent)]
    Plan(LoadError),
    /// The request failed (connection refused, reset, timeout…).
    #[error("the request failed: {}", .0.as_str())]
    Request(ErrorKind),
}
