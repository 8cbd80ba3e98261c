//! Every route of the real `echo` binary over real HTTP on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use sha2::{Digest, Sha256};

const DOC_4K: &[u8] = include_bytes!("../data/doc-4k.json");

#[test]
fn demo_routes_are_unchanged() {
    let server = Server::start(&[]);
    let mut c = server.client();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.text().as_str()), (200, "echo: "));
    assert_eq!(
        r.headers,
        vec![
            ("content-type".into(), "text/plain; charset=utf-8".into()),
            ("content-length".into(), "6".into()),
        ]
    );
    let r = c.request("POST", "/", b"hello");
    assert_eq!((r.status, r.text().as_str()), (200, "echo: hello"));
    let r = c.request("POST", "/any/path?x=1", b"p");
    assert_eq!((r.status, r.text().as_str()), (200, "echo: p"));
    let r = c.request("GET", "/healthz", b"");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

fn chain(body: &[u8], rounds: u64) -> String {
    let mut d = Sha256::digest(body);
    for _ in 1..rounds {
        let mut h = Sha256::new();
        h.update(d);
        h.update(body);
        d = h.finalize();
    }
    hex::encode(d)
}

#[test]
fn hash_answers_the_chained_digest() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let r = c.request("POST", "/hash", b"abc");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    for rounds in [1u64, 2, 100, 1000] {
        let r = c.request("POST", &format!("/hash?rounds={rounds}"), &body);
        assert_eq!(
            (r.status, r.text()),
            (200, chain(&body, rounds)),
            "rounds={rounds}"
        );
    }
    let r = c.request("POST", "/hash?rounds=100000", b"");
    assert_eq!((r.status, r.text()), (200, chain(b"", 100_000)));
}

#[test]
fn json_is_re_serialised_sorted() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let r = c.request(
        "POST",
        "/json",
        br#"{"b": 1, "a": [{"d": 2, "c": "x"}], "e": null}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"a":[{"c":"x","d":2}],"b":1,"e":null}"#);

    assert_eq!(DOC_4K.len(), 4096);
    let r = c.request("POST", "/json", DOC_4K);
    assert_eq!(r.status, 200);
    let sent: serde_json::Value = serde_json::from_slice(DOC_4K).unwrap();
    let got: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(got, sent);
    // Sorted: every object's keys come out in order.
    let text = r.text();
    let zone = text.find(r#""zone""#).unwrap();
    let id = text.find(r#""id""#).unwrap();
    assert!(id < zone, "keys not sorted: {text}");
    assert!(text.starts_with(r#"{"generated":"#), "{text}");
}

#[test]
fn alloc_returns_the_checksum_of_what_it_wrote() {
    let server = Server::start(&[]);
    let mut c = server.client();
    for kb in [0u64, 1, 1024, 65536] {
        let r = c.request("GET", &format!("/alloc?kb={kb}"), b"");
        let w = kb * 128;
        let sum = w * w.saturating_sub(1) / 2;
        assert_eq!(
            (r.status, r.text()),
            (
                200,
                format!("alloc kb={kb} objects={} checksum={sum}", kb * 16)
            )
        );
    }
    let r = c.request("GET", "/alloc", b"");
    assert!(r.text().starts_with("alloc kb=1024 "), "{}", r.text());
}

#[test]
fn sleep_answers_after_the_delay() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let start = Instant::now();
    let r = c.request("GET", "/sleep?ms=150", b"");
    assert_eq!((r.status, r.text().as_str()), (200, "slept 150 ms"));
    assert!(start.elapsed() >= Duration::from_millis(150));
    let r = c.request("GET", "/sleep?ms=0", b"");
    assert_eq!((r.status, r.text().as_str()), (200, "slept 0 ms"));
    // The connection stays usable after a delayed answer.
    let r = c.request("GET", "/healthz", b"");
    assert_eq!(r.text(), "ok");
}

#[test]
fn sleep_blocks_neither_other_connections_nor_a_cpu() {
    let server = Server::start(&[]);
    let mut sleeper = server.client();
    let cpu_before = server.cpu_time();
    let start = Instant::now();
    sleeper.send(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut other = server.client();
    for _ in 0..20 {
        let r = other.request("POST", "/hash?rounds=10", b"x");
        assert_eq!(r.status, 200);
    }
    if start.elapsed() < Duration::from_millis(1500) {
        assert!(!sleeper.has_data(), "the sleep answered early");
    }
    let r = sleeper.response();
    assert_eq!(r.text(), "slept 1500 ms");
    assert!(start.elapsed() >= Duration::from_millis(1500));
    // A busy wait would burn about the whole delay; waiting on poll costs next to nothing.
    let cpu = server.cpu_time() - cpu_before;
    assert!(
        cpu < Duration::from_millis(500),
        "server used {cpu:?} of CPU"
    );
}

#[test]
fn bad_parameters_get_400_with_a_reason() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let cases: &[(&str, &str, &[u8], &str)] = &[
        ("POST", "/hash?rounds=0", b"x", "rounds=\"0\" is not valid"),
        ("POST", "/hash?rounds=100001", b"x", "from 1 to 100000"),
        ("POST", "/hash?rounds=ten", b"x", "rounds=\"ten\""),
        (
            "POST",
            "/hash?round=5",
            b"x",
            "unknown query parameter \"round\"",
        ),
        ("POST", "/hash?rounds=1&rounds=2", b"x", "given twice"),
        (
            "POST",
            "/json",
            b"{\"a\":",
            "invalid JSON: EOF while parsing",
        ),
        ("POST", "/json", b"", "invalid JSON"),
        (
            "POST",
            "/json",
            b"[1,2]x",
            "invalid JSON: trailing characters",
        ),
        ("POST", "/json?pretty=1", b"{}", "takes no parameters"),
        ("GET", "/alloc?kb=65537", b"", "from 0 to 65536"),
        ("GET", "/alloc?kb=-1", b"", "kb=\"-1\""),
        ("GET", "/sleep?ms=60001", b"", "from 0 to 60000"),
        ("GET", "/sleep?seconds=1", b"", "takes only `ms`"),
    ];
    for (method, target, body, want) in cases {
        let r = c.request(method, target, body);
        assert_eq!(r.status, 400, "{method} {target}: {}", r.text());
        assert!(r.text().contains(want), "{method} {target}: {}", r.text());
        assert!(!r.text().contains('\n'), "one line: {}", r.text());
    }
    // rounds × body over the work limit.
    let big = vec![b'a'; 1 << 20];
    let r = c.request("POST", "/hash?rounds=1000", &big);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("use fewer rounds"), "{}", r.text());
    // Wrong method on a workload route.
    let r = c.request("GET", "/hash", b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = c.request("POST", "/sleep", b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    // The connection survived every refusal.
    assert_eq!(c.request("GET", "/healthz", b"").text(), "ok");
}
