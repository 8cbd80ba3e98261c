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
//!
//! [`route`] computes the answer without any I/O; the socket build frames it with [`answer`],
//! the `wasi:http` build (`wasmbench-echo-http`) hands it to its host.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::http::{Method, Request, TEXT_PLAIN, write_response_as};

/// The content type of `POST /json` answers.
pub const JSON: &str = "application/json";
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

/// The body of an [`Answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    /// Fixed text.
    Static(&'static [u8]),
    /// Computed bytes (digests, JSON, reasons).
    Owned(Vec<u8>),
    /// `echo: ` followed by the request body, which is not copied.
    Echo(&'a [u8]),
}

impl Content<'_> {
    /// The body as the parts to write one after the other.
    pub fn parts(&self) -> [&[u8]; 2] {
        match self {
            Content::Static(b) => [b, b""],
            Content::Owned(v) => [v, b""],
            Content::Echo(body) => [b"echo: ", body],
        }
    }

    /// The whole body in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// What a route answers, independent of how the response is framed: the socket build writes it
/// with [`crate::http::write_response_as`], the `wasi:http` build hands it to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    /// HTTP status code.
    pub status: u16,
    /// Value of the `content-type` header.
    pub content_type: &'static str,
    /// Value of the `allow` header (`405` answers only).
    pub allow: Option<&'static str>,
    /// The body.
    pub body: Content<'a>,
    /// How long to hold the answer before sending it (`GET /sleep`, `Some` even for `ms=0`).
    pub delay: Option<Duration>,
}

impl<'a> Answer<'a> {
    fn text(status: u16, body: Content<'a>) -> Answer<'a> {
        Answer {
            status,
            content_type: TEXT_PLAIN,
            allow: None,
            body,
            delay: None,
        }
    }

    fn bad(reason: String) -> Answer<'a> {
        Answer::text(400, Content::Owned(reason.into_bytes()))
    }
}

/// Appends the response to `req` to `out` and says when it may be sent. `keep_alive` is what
/// the connection will do after this response; `seed` selects the demo server's reply format.
pub fn answer(req: &Request<'_>, out: &mut Vec<u8>, keep_alive: bool, seed: bool) -> Reply {
    let a = route(req.method, req.target, req.body.as_bytes());
    let allow;
    let extra: &[(&str, &str)] = match a.allow {
        Some(methods) => {
            allow = [("allow", methods)];
            &allow
        }
        None => &[],
    };
    write_response_as(
        out,
        a.status,
        a.content_type,
        extra,
        &a.body.parts(),
        keep_alive,
        seed,
    );
    match a.delay {
        Some(d) => Reply::Delayed(d),
        None => Reply::Ready,
    }
}

/// The answer to `method target` with `body`: every route of the service, free of I/O so every
/// build (socket event loop, `wasi:http` handler) answers the same bytes.
pub fn route<'a>(method: Method, target: &str, body: &'a [u8]) -> Answer<'a> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    match (method, path) {
        (Method::Get, "/healthz") => Answer::text(200, Content::Static(b"ok")),
        (Method::Post, "/hash") => {
            match param(
                query,
                "/hash",
                "rounds",
                HASH_DEFAULT_ROUNDS,
                1,
                HASH_MAX_ROUNDS,
            ) {
                Err(reason) => Answer::bad(reason),
                Ok(rounds) => {
                    let work = rounds.saturating_mul(body.len() as u64 + 32);
                    if work > HASH_MAX_WORK_BYTES {
                        Answer::bad(format!(
                            "rounds={rounds} over a {}-byte body hashes {work} bytes, more than \
                             the limit of {HASH_MAX_WORK_BYTES}: use fewer rounds or a smaller body",
                            body.len()
                        ))
                    } else {
                        let hex = hex::encode(hash_chain(body, rounds));
                        Answer::text(200, Content::Owned(hex.into_bytes()))
                    }
                }
            }
        }
        (Method::Post, "/json") => {
            match no_params(query, "/json").and_then(|()| canonical_json(body)) {
                Err(reason) => Answer::bad(reason),
                Ok(json) => Answer {
                    content_type: JSON,
                    ..Answer::text(200, Content::Owned(json))
                },
            }
        }
        (Method::Get, "/alloc") => {
            match param(query, "/alloc", "kb", ALLOC_DEFAULT_KB, 0, ALLOC_MAX_KB) {
                Err(reason) => Answer::bad(reason),
                Ok(kb) => {
                    let (objects, sum) = alloc_touch(kb);
                    let line = format!("alloc kb={kb} objects={objects} checksum={sum}");
                    Answer::text(200, Content::Owned(line.into_bytes()))
                }
            }
        }
        (Method::Get, "/sleep") => {
            match param(query, "/sleep", "ms", SLEEP_DEFAULT_MS, 0, SLEEP_MAX_MS) {
                Err(reason) => Answer::bad(reason),
                Ok(ms) => Answer {
                    delay: Some(Duration::from_millis(ms)),
                    ..Answer::text(200, Content::Owned(format!("slept {ms} ms").into_bytes()))
                },
            }
        }
        (Method::Get, "/hash" | "/json") | (Method::Post, "/alloc" | "/sleep") => {
            let allow = if method == Method::Get { "POST" } else { "GET" };
            Answer {
                allow: Some(allow),
                ..Answer::text(
                    405,
                    Content::Owned(format!("{path} takes {allow}").into_bytes()),
                )
            }
        }
        // The demo's server echoed whatever arrived, whatever the path: keep that.
        (_, _) => Answer::text(200, Content::Echo(body)),
    }
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
    fn route_is_what_answer_writes() {
        let cases: [(Method, &str, &[u8]); 7] = [
            (Method::Post, "/hash?rounds=3", b"abc"),
            (Method::Post, "/json", b"{\"b\":[1.50],\"a\":null}"),
            (Method::Get, "/alloc?kb=2", b""),
            (Method::Get, "/sleep?ms=0", b""),
            (Method::Post, "/sleep", b""),
            (Method::Get, "/alloc?kb=x", b""),
            (Method::Post, "/x", b"hello"),
        ];
        for (method, target, body) in cases {
            let a = route(method, target, body);
            let req = Request {
                method,
                target,
                http11: true,
                keep_alive: true,
                body: Body::Borrowed(body),
            };
            let mut out = Vec::new();
            let reply = answer(&req, &mut out, true, false);
            let mut want = Vec::new();
            let allow = a.allow.map(|m| [("allow", m)]);
            write_response_as(
                &mut want,
                a.status,
                a.content_type,
                allow.as_ref().map_or(&[][..], |h| &h[..]),
                &[&a.body.to_vec()],
                true,
                false,
            );
            assert_eq!(out, want, "{target}");
            assert_eq!(
                reply,
                a.delay.map_or(Reply::Ready, Reply::Delayed),
                "{target}"
            );
        }
        assert_eq!(
            route(Method::Post, "/json", b"{\"b\":[1.50],\"a\":null}").body,
            Content::Owned(b"{\"a\":null,\"b\":[1.5]}".to_vec())
        );
        assert_eq!(
            route(Method::Post, "/x", b"hi").body.to_vec(),
            b"echo: hi".to_vec()
        );
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
