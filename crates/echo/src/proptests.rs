//! Property tests of the request parser and of a whole connection's byte stream.
//!
//! The default case count keeps CI fast; a benchmark-length run sets `PROPTEST_CASES`, e.g.
//! `PROPTEST_CASES=1000000 cargo test -p wasmbench-echo --release proptests`.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::config::Config;
use crate::http::{Limits, Parsed, chunked_framing_limit, parse};
use crate::session::Session;

const LIMITS: Limits = Limits {
    max_body_bytes: 2048,
    max_header_bytes: 512,
};

/// Checks what `parse` promises for any input.
fn check_parse(buf: &[u8], limits: Limits) {
    match parse(buf, limits) {
        Parsed::Complete(req, used) => {
            assert!(
                used > 0 && used <= buf.len(),
                "used {used} of {}",
                buf.len()
            );
            assert!(req.body.as_bytes().len() <= limits.max_body_bytes);
        }
        Parsed::Incomplete {
            head_done,
            need_total,
            ..
        } => {
            if let Some(total) = need_total {
                assert!(head_done);
                assert!(total > buf.len(), "need {total}, have {}", buf.len());
                assert!(total <= limits.max_header_bytes + limits.max_body_bytes);
            }
            if !head_done {
                assert!(buf.len() <= limits.max_header_bytes);
            } else {
                assert!(buf.len() <= limits.max_header_bytes + chunked_framing_limit(limits));
            }
        }
        Parsed::Rejected(r) => {
            assert!(
                matches!(r.status, 400 | 413 | 417 | 431),
                "status {}",
                r.status
            );
            assert!(!r.reason.is_empty());
        }
    }
}

/// Feeds `pieces` to one session as a connection would receive them and returns everything
/// it answered. Held (`/sleep`) responses are released by moving the clock to their deadline.
/// Checks after every piece that the buffered input stays bounded.
fn run_stream<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let cfg = Config {
        max_body_bytes: LIMITS.max_body_bytes,
        max_header_bytes: LIMITS.max_header_bytes,
        // Far beyond any clock the test reaches: timeouts are not under test here.
        header_timeout: Duration::from_secs(1 << 30),
        idle_timeout: Duration::from_secs(1 << 30),
        ..Config::default()
    };
    let mut now = Instant::now();
    let mut s = Session::new(&cfg, now);
    let mut out = Vec::new();
    for piece in pieces {
        if s.closing() {
            break;
        }
        s.receive(piece, now);
        // Each round answers at least one request or stops; the bound only guards the test.
        for _ in 0..=s.buffered() {
            assert!(s.advance(now, false));
            out.extend_from_slice(s.pending());
            s.sent(s.pending().len());
            match s.wake_at() {
                Some(at) => now = at,
                None => break,
            }
        }
        assert!(s.wake_at().is_none());
        if !s.closing() {
            let bound = LIMITS.max_header_bytes + chunked_framing_limit(LIMITS);
            assert!(s.buffered() <= bound, "{} bytes buffered", s.buffered());
        }
    }
    out
}

/// Splits a byte stream of responses into (status, body) pairs; panics if it is not a
/// sequence of well-formed responses.
fn responses(mut out: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut all = Vec::new();
    while !out.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "malformed response {other:?}: {:?}",
                String::from_utf8_lossy(out)
            ),
        };
        let status = resp.code.unwrap();
        let len = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| {
                std::str::from_utf8(h.value)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .unwrap_or(0);
        assert!(out.len() >= head + len, "truncated response");
        if status != 100 {
            all.push((status, out[head..head + len].to_vec()));
        }
        out = &out[head + len..];
    }
    all
}

/// One valid request, as bytes, with the number of responses it produces (always 1).
fn request() -> impl Strategy<Value = Vec<u8>> {
    let target = prop::sample::select(vec![
        "/",
        "/healthz",
        "/some/path?x=1",
        "/hash",
        "/hash?rounds=3",
        "/hash?rounds=0",
        "/json",
        "/alloc?kb=2",
        "/alloc?kb=x",
        "/sleep?ms=5",
        "/sleep?ms=0",
    ]);
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        Just(br#"{"b":[1,2,{"z":null,"a":"x"}],"a":1.5}"#.to_vec()),
        "[a-z]{0,40}".prop_map(String::into_bytes),
    ];
    (
        any::<bool>(),
        target,
        body,
        any::<bool>(),
        prop::collection::vec(1usize..64, 0..6),
        prop::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,30}"), 0..4),
    )
        .prop_map(|(post, target, body, chunked, chunk_sizes, headers)| {
            let mut r = Vec::new();
            let method = if post { "POST" } else { "GET" };
            r.extend_from_slice(format!("{method} {target} HTTP/1.1\r\nHost: t\r\n").as_bytes());
            for (name, value) in headers {
                let lower = name.to_ascii_lowercase();
                if [
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "expect",
                    "host",
                ]
                .contains(&lower.as_str())
                {
                    continue;
                }
                r.extend_from_slice(format!("X-{name}: {}\r\n", value.trim()).as_bytes());
            }
            if !post {
                r.extend_from_slice(b"\r\n");
            } else if chunked {
                r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut sizes = chunk_sizes.into_iter().cycle();
                while !rest.is_empty() {
                    let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
                    r.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    r.extend_from_slice(&rest[..n]);
                    r.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                r.extend_from_slice(b"0\r\n\r\n");
            } else {
                r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                r.extend_from_slice(&body);
            }
            r
        })
}

/// Cuts `bytes` at the given fractions into consecutive pieces.
fn split<'a>(bytes: &'a [u8], cuts: &[f64]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| ((bytes.len() as f64) * c) as usize)
        .collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Overwrite(f64, u8),
    Insert(f64, u8),
    Delete(f64),
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let at = |f: f64, len: usize| ((len as f64) * f) as usize;
        match *m {
            Mutation::Overwrite(f, b) if !bytes.is_empty() => {
                let i = at(f, bytes.len()).min(bytes.len() - 1);
                bytes[i] = b;
            }
            Mutation::Insert(f, b) => {
                let i = at(f, bytes.len() + 1).min(bytes.len());
                bytes.insert(i, b);
            }
            Mutation::Delete(f) if !bytes.is_empty() => {
                let i = at(f, bytes.len()).min(bytes.len() - 1);
                bytes.remove(i);
            }
            _ => {}
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to HTTP framing, so mutations hit the interesting paths often.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\r\n:; 0123456789abcdefABCDEF\t\x00".to_vec()),
    ];
    prop_oneof![
        (0.0..1.0f64, byte.clone()).prop_map(|(f, b)| Mutation::Overwrite(f, b)),
        (0.0..1.0f64, byte).prop_map(|(f, b)| Mutation::Insert(f, b)),
        (0.0..1.0f64).prop_map(Mutation::Delete),
    ]
}

proptest! {
    #[test]
    fn parse_survives_random_bytes(
        buf in prop::collection::vec(any::<u8>(), 0..1024),
        max_body in 0usize..4096,
        max_header in 0usize..1024,
    ) {
        check_parse(&buf, Limits { max_body_bytes: max_body, max_header_bytes: max_header });
    }

    #[test]
    fn parse_survives_mutated_requests(
        req in request(),
        muts in prop::collection::vec(mutation(), 1..8),
        cut in 0.0..1.0f64,
    ) {
        let bytes = mutate(req, &muts);
        check_parse(&bytes, LIMITS);
        // Every prefix is a state a connection can be in.
        check_parse(&bytes[..((bytes.len() as f64) * cut) as usize], LIMITS);
    }

    #[test]
    fn stream_answers_every_request_in_order_however_split(
        reqs in prop::collection::vec(request(), 1..6),
        cuts in prop::collection::vec(0.0..1.0f64, 0..12),
    ) {
        let stream = reqs.concat();
        let whole = run_stream([&stream[..]]);
        let pieces = split(&stream, &cuts);
        let split_out = run_stream(pieces.iter().copied());
        let expected = responses(&whole);
        prop_assert_eq!(expected.len(), reqs.len());
        prop_assert_eq!(responses(&split_out), expected);
        // Each request alone gets the same answer as inside the pipeline.
        for (req, want) in reqs.iter().zip(responses(&whole)) {
            prop_assert_eq!(&responses(&run_stream([&req[..]]))[0], &want);
        }
    }

    #[test]
    fn stream_survives_mutated_and_random_input(
        reqs in prop::collection::vec(request(), 1..4),
        muts in prop::collection::vec(mutation(), 0..8),
        noise in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(0.0..1.0f64, 0..12),
    ) {
        let mut stream = mutate(reqs.concat(), &muts);
        stream.extend_from_slice(&noise);
        let out = run_stream(split(&stream, &cuts));
        // Well-formed responses only, never more than one per request plus a final refusal.
        let answered = responses(&out);
        prop_assert!(answered.len() <= stream.len() / 16 + 1);
    }

    #[test]
    fn stream_of_random_bytes_is_bounded(
        noise in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(0.0..1.0f64, 0..8),
    ) {
        let out = run_stream(split(&noise, &cuts));
        let answered = responses(&out);
        prop_assert!(answered.len() <= 1 + noise.len() / 16);
    }
}

#[test]
fn endless_chunk_extension_and_trailers_are_refused() {
    let mut req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    req.extend(std::iter::repeat_n(
        b'x',
        3 * LIMITS.max_body_bytes + LIMITS.max_header_bytes,
    ));
    let out = run_stream(req.chunks(100));
    assert_eq!(responses(&out)[0].0, 413);

    let mut req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    for _ in 0..2000 {
        req.extend_from_slice(b"X-Trailer: y\r\n");
    }
    let out = run_stream(req.chunks(100));
    assert_eq!(responses(&out)[0].0, 413);
}
