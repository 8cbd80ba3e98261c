//! What the service answers: the routes, independent of how bytes reach it.
//!
//! | route | answer | exercises |
//! |---|---|---|
//! | `GET /healthz` | `ok` | readiness |
//! | `POST /hash?rounds=N` | hex SHA-256, chained `N` times over the body | compute |
//! | `POST /json` | the body re-serialised with sorted keys | parsing, allocation |
//! | `GET /alloc?kb=N` | checksum of `N` KiB written in 64-byte objects | allocator |
//! | `GET /sleep?ms=N` | `slept N ms`, after `N` ms | timers, event loop |
//! | any other `POST` | `echo: <body>` | I/O path |
//! | any other `GET` | `echo: ` | I/O path |
//!
//! Bad parameters are answered `400` with a one-line reason; the connection stays open.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::http::{Method, Request, write_response, write_response_as};

/// `rounds` of `POST /hash` when the query does not give it.
pub const HASH_DEFAULT_ROUNDS: u64 = 1;
/// Largest accepted `rounds` of `POST /hash`.
pub const HASH_MAX_ROUNDS: u64 = 100_000;
/// Most bytes one `POST /hash` may hash (`rounds × (body + 32)`), so one request cannot stall
/// the single-threaded server for minutes.
pub const HASH_MAX_WORK_BYTES: u64 = 256 << 20;
/// `kb` of `GET /alloc` when the query does not give it.
pub const ALLOC_DEFAULT_KB: u64 = 1024;
/// Largest accepted `kb` of `GET /alloc` (64 MiB).
pub const ALLOC_MAX_KB: u64 = 64 << 10;
/// Size of one object allocated by `GET /alloc`.
pub const ALLOC_OBJECT_BYTES: u64 = 64;
/// `ms` of `GET /sleep` when the query does not give it.
pub const SLEEP_DEFAULT_MS: u64 = 100;
/// Largest accepted `ms` of `GET /sleep`.
pub const SLEEP_MAX_MS: u64 = 60_000;

/// When the response written by [`answer`] may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Reply {
    /// At once.
    Ready,
    /// Not before this delay has passed (`GET /sleep`); the caller waits without blocking.
    Delayed(Duration),
}

/// Appends the response to `req` to `out`. `keep_alive` is what the connection will do after
/// this response; `seed` selects the demo server's reply format.
///
/// For `GET /sleep` this blocks the calling thread for the delay; an event loop that serves
/// other connections meanwhile uses [`answer`] instead.
pub fn respond(req: &Request<'_>, out: &mut Vec<u8>, keep_alive: bool, seed: bool) {
    if let Reply::Delayed(d) = answer(req, out, keep_alive, seed) {
        std::thread::sleep(d);
    }
}

/// Appends the response to `req` to `out` and says when it may be sent.
pub fn answer(req: &Request<'_>, out: &mut Vec<u8>, keep_alive: bool, seed: bool) -> Reply {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.target, None),
    };
    let body = req.body.as_bytes();
    let text = |out: &mut Vec<u8>, status: u16, parts: &[&[u8]]| {
        write_response(out, status, parts, keep_alive, seed);
    };
    match (req.method, path) {
        (Method::Get, "/healthz") => text(out, 200, &[b"ok"]),
        (Method::Post, "/hash") => {
            match param(
                query,
                "/hash",
                "rounds",
                HASH_DEFAULT_ROUNDS,
                1,
                HASH_MAX_ROUNDS,
            ) {
                Err(reason) => text(out, 400, &[reason.as_bytes()]),
                Ok(rounds) => {
                    let work = rounds.saturating_mul(body.len() as u64 + 32);
                    if work > HASH_MAX_WORK_BYTES {
                        let reason = format!(
                            "rounds={rounds} over a {}-byte body hashes {work} bytes, more than \
                             the limit of {HASH_MAX_WORK_BYTES}: use fewer rounds or a smaller body",
                            body.len()
                        );
                        text(out, 400, &[reason.as_bytes()]);
                    } else {
                        let mut hex = [0u8; 64];
                        // Cannot fail: 32 bytes always fit 64 hex digits.
                        let _ = hex::encode_to_slice(hash_chain(body, rounds), &mut hex);
                        text(out, 200, &[&hex]);
                    }
                }
            }
        }
        (Method::Post, "/json") => match no_params(query, "/json") {
            Err(reason) => text(out, 400, &[reason.as_bytes()]),
            Ok(()) => match canonical_json(body) {
                Ok(json) => write_response_as(
                    out,
                    200,
                    "application/json",
                    &[],
                    &[&json],
                    keep_alive,
                    seed,
                ),
                Err(reason) => text(out, 400, &[reason.as_bytes()]),
            },
        },
        (Method::Get, "/alloc") => {
            match param(query, "/alloc", "kb", ALLOC_DEFAULT_KB, 0, ALLOC_MAX_KB) {
                Err(reason) => text(out, 400, &[reason.as_bytes()]),
                Ok(kb) => {
                    let (objects, sum) = alloc_touch(kb);
                    let line = format!("alloc kb={kb} objects={objects} checksum={sum}");
                    text(out, 200, &[line.as_bytes()]);
                }
            }
        }
        (Method::Get, "/sleep") => {
            match param(query, "/sleep", "ms", SLEEP_DEFAULT_MS, 0, SLEEP_MAX_MS) {
                Err(reason) => text(out, 400, &[reason.as_bytes()]),
                Ok(ms) => {
                    let line = format!("slept {ms} ms");
                    text(out, 200, &[line.as_bytes()]);
                    return Reply::Delayed(Duration::from_millis(ms));
                }
            }
        }
        (Method::Get, "/hash" | "/json") | (Method::Post, "/alloc" | "/sleep") => {
            let allow = if req.method == Method::Get {
                "POST"
            } else {
                "GET"
            };
            let reason = format!("{path} takes {allow}");
            write_response_as(
                out,
                405,
                crate::http::TEXT_PLAIN,
                &[("allow", allow)],
                &[reason.as_bytes()],
                keep_alive,
                seed,
            );
        }
        // The demo's server echoed whatever arrived, whatever the path: keep that.
        (_, _) => text(out, 200, &[b"echo: ", body]),
    }
    Reply::Ready
}

/// SHA-256 chained `rounds` times: `d1 = H(body)`, `dk = H(d(k-1) ‖ body)`. Every round hashes
/// the whole body, so the cost is `rounds × body` and no round can be skipped.
pub fn hash_chain(body: &[u8], rounds: u64) -> [u8; 32] {
    let mut digest: [u8; 32] = Sha256::digest(body).into();
    for _ in 1..rounds {
        let mut h = Sha256::new();
        h.update(digest);
        h.update(body);
        digest = h.finalize().into();
    }
    digest
}

/// Parses `body` as JSON and serialises it compactly with every object's keys sorted.
pub fn canonical_json(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    // A no-op unless some crate in the build enables serde_json's `preserve_order`; then it
    // keeps the answer identical anyway.
    value.sort_all_objects();
    serde_json::to_vec(&value).map_err(|e| format!("cannot serialise JSON: {e}"))
}

/// Allocates `kb` KiB as separate 64-byte objects, writes every word, reads them all back and
/// returns `(objects, wrapping sum of the words)`. Word `i` holds `i`, so the sum is
/// `W·(W−1)/2` for `W = kb·128` words: callers can check it.
pub fn alloc_touch(kb: u64) -> (u64, u64) {
    let objects = kb * 1024 / ALLOC_OBJECT_BYTES;
    let mut boxes: Vec<Box<[u64; 8]>> = Vec::with_capacity(objects as usize);
    for i in 0..objects {
        let base = i * 8;
        boxes.push(Box::new(std::array::from_fn(|j| base + j as u64)));
    }
    // Keeps the optimiser from folding the allocations into the closed-form sum.
    std::hint::black_box(&mut boxes);
    let sum = boxes
        .iter()
        .flat_map(|b| b.iter())
        .fold(0u64, |acc, &w| acc.wrapping_add(w));
    (objects, sum)
}

/// Reads the one numeric query parameter `name` of `path`, within `min..=max`.
fn param(
    query: Option<&str>,
    path: &str,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, String> {
    let mut found: Option<u64> = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            return Err(format!(
                "unknown query parameter {key:?}: {path} takes only `{name}`"
            ));
        }
        if found.is_some() {
            return Err(format!("`{name}` is given twice: give it once"));
        }
        let n = value
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                format!("{name}={value:?} is not valid: use a whole number from {min} to {max}")
            })?;
        found = Some(n);
    }
    Ok(found.unwrap_or(default))
}

fn no_params(query: Option<&str>, path: &str) -> Result<(), String> {
    match query.filter(|q| !q.is_empty()) {
        None => Ok(()),
        Some(q) => Err(format!(
            "unexpected query {q:?}: {path} takes no parameters"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;

    fn get(target: &str) -> (Vec<u8>, Reply) {
        let req = Request {
            method: Method::Get,
            target,
            http11: true,
            keep_alive: true,
            body: Body::Borrowed(b""),
        };
        let mut out = Vec::new();
        let r = answer(&req, &mut out, true, false);
        (out, r)
    }

    fn body_of(resp: &[u8]) -> &str {
        let at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        std::str::from_utf8(&resp[at + 4..]).unwrap()
    }

    #[test]
    fn hash_chain_matches_known_vectors() {
        assert_eq!(
            hex::encode(hash_chain(b"abc", 1)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Sha256::new();
        h.update(hash_chain(b"abc", 1));
        h.update(b"abc");
        let two: [u8; 32] = h.finalize().into();
        assert_eq!(hash_chain(b"abc", 2), two);
    }

    #[test]
    fn alloc_checksum_is_closed_form() {
        for kb in [0u64, 1, 3, 64] {
            let w = kb * 128;
            assert_eq!(alloc_touch(kb), (kb * 16, w * w.saturating_sub(1) / 2));
        }
    }

    #[test]
    fn params_are_checked() {
        assert_eq!(param(None, "/x", "n", 7, 0, 9), Ok(7));
        assert_eq!(param(Some("n=3"), "/x", "n", 7, 0, 9), Ok(3));
        assert_eq!(param(Some("&n=3&"), "/x", "n", 7, 0, 9), Ok(3));
        for bad in ["n=10", "n=", "n=-1", "m=1", "n=1&n=2", "n=0x1", "n"] {
            let e = param(Some(bad), "/x", "n", 7, 0, 9).unwrap_err();
            assert!(e.contains('n'), "{bad}: {e}");
        }
    }

    #[test]
    fn sleep_is_deferred_and_alloc_answers() {
        let (out, r) = get("/sleep?ms=25");
        assert_eq!(r, Reply::Delayed(Duration::from_millis(25)));
        assert_eq!(body_of(&out), "slept 25 ms");
        let (out, r) = get("/alloc?kb=1");
        assert_eq!(r, Reply::Ready);
        assert_eq!(body_of(&out), "alloc kb=1 objects=16 checksum=8128");
        let (out, _) = get("/sleep?ms=60001");
        assert!(out.starts_with(b"HTTP/1.1 400 "), "{}", body_of(&out));
        let (out, _) = get("/hash");
        assert!(out.starts_with(b"HTTP/1.1 405 "));
        assert!(out.windows(11).any(|w| w == b"allow: POST"));
    }

    #[test]
    fn json_is_sorted_and_errors_name_the_position() {
        assert_eq!(
            canonical_json(br#"{"b":1,"a":[{"d":2,"c":3}]}"#).unwrap(),
            br#"{"a":[{"c":3,"d":2}],"b":1}"#
        );
        let e = canonical_json(b"{\"a\":").unwrap_err();
        assert!(
            e.starts_with("invalid JSON: ") && e.contains("line 1"),
            "{e}"
        );
    }
}
