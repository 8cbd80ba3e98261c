//! Protocol robustness of the real `echo` binary: timeouts, limits, `Expect`, pipelining,
//! chunked bodies and bounded memory.

mod common;

use std::time::{Duration, Instant};

use common::{Client, STEP, Server};

#[test]
fn slowloris_gets_408_and_is_closed_after_the_header_timeout() {
    let server = Server::start(&[("ECHO_HEADER_TIMEOUT_MS", "300")]);
    let mut c = server.client();
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    // Trickle one header byte every 20 ms: always active, never finishing the head. The
    // pauses are the client behaviour under test, not synchronisation; the loop ends as soon
    // as the server answers.
    for _ in 0..250 {
        if c.has_data() {
            break;
        }
        c.send(b"x");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = c.response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (408, "request head not received in time")
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    c.closed_within(STEP)
        .expect("connection left open after 408");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = Server::start(&[("ECHO_IDLE_TIMEOUT_MS", "300")]);
    let mut c = server.client();
    let start = Instant::now();
    assert_eq!(c.request("GET", "/healthz", b"").text(), "ok");
    let after = c.closed_within(STEP).expect("idle connection left open");
    assert!(start.elapsed() >= Duration::from_millis(300), "{after:?}");
    // A connection that never sends anything is closed too, without a response.
    let mut silent = server.client();
    silent
        .closed_within(STEP)
        .expect("silent connection left open");
    assert!(!silent.has_data());
}

#[test]
fn header_count_and_size_limits() {
    let server = Server::start(&[]);
    let head = |n: usize| {
        let mut h = String::from("GET / HTTP/1.1\r\n");
        for i in 1..n {
            h.push_str(&format!("X-H{i}: v\r\n"));
        }
        h.push_str("Host: t\r\n\r\n");
        h
    };
    let mut c = server.client();
    c.send(head(64).as_bytes());
    assert_eq!(c.response().status, 200);
    c.send(head(65).as_bytes());
    let r = c.response();
    assert_eq!((r.status, r.text().as_str()), (431, "too many headers"));
    c.closed_within(STEP).expect("closed after 431");

    let mut c = server.client();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 << 10)
    );
    c.send(big.as_bytes());
    let r = c.response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (431, "request head too large")
    );
    c.closed_within(STEP).expect("closed after 431");

    // An unfinished head that passes the limit is refused without waiting for its end.
    let mut c = server.client();
    c.send(format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(20 << 10)).as_bytes());
    assert_eq!(c.response().status, 431);
}

#[test]
fn expect_continue_with_a_1mib_body() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let body: Vec<u8> = (0..1u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    c.send(
        format!(
            "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.response().status, 100);
    c.send(&body);
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len() + 6);
    assert!(r.body.starts_with(b"echo: ") && r.body[6..] == body[..]);
    // One byte more than the limit is refused before the client sends it.
    c.send(
        format!(
            "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len() + 1
        )
        .as_bytes(),
    );
    assert_eq!(c.response().status, 413);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut c = server.client();
    c.send(
        b"GET /sleep?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /hash HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\
          GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\n{\"b\":1,\"a\":2}\
          GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlast",
    );
    let want = [
        "slept 200 ms",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "ok",
        r#"{"a":2,"b":1}"#,
        "slept 1 ms",
        "echo: last",
    ];
    for w in want {
        let r = c.response();
        assert_eq!((r.status, r.text().as_str()), (200, w));
    }
    c.closed_within(STEP)
        .expect("closed after Connection: close");
}

#[test]
fn chunked_bodies() {
    let server = Server::start(&[]);
    let mut c = server.client();
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(c.response().text(), "echo: hello world");
    // Chunk by chunk, each in its own write.
    c.send(b"POST /hash HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for part in [&b"1\r\na\r\n"[..], b"2\r\nbc\r\n", b"0\r\n", b"\r\n"] {
        c.send(part);
    }
    assert_eq!(
        c.response().text(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Malformed chunk size.
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    let r = c.response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "malformed chunked body")
    );
    // Both framings at once is a smuggling attempt.
    let mut c = server.client();
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(c.response().status, 400);
}

#[test]
fn memory_stays_bounded_with_many_connections() {
    let server = Server::start(&[]);
    let body = vec![b'z'; 1 << 20];
    let big_round = |server: &Server| {
        // 40 connections each send a maximum-size body at once, then go away.
        let mut clients: Vec<Client> = (0..40).map(|_| server.client()).collect();
        for c in &mut clients {
            c.send(
                format!(
                    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        for c in &mut clients {
            c.send(&body);
        }
        for c in &mut clients {
            assert_eq!(c.response().body.len(), body.len() + 6);
        }
    };
    big_round(&server);
    let after_first = server.rss_kib();
    for _ in 0..4 {
        big_round(&server);
    }
    let after_five = server.rss_kib();
    // Leaked per-connection buffers would add about 80 MiB per round.
    assert!(
        after_five < after_first + 16 * 1024,
        "RSS grew from {after_first} KiB to {after_five} KiB over four rounds"
    );

    // Many idle keep-alive connections that each had a large exchange hold little memory.
    let before_idle = server.rss_kib();
    let mut idle: Vec<Client> = (0..400).map(|_| server.client()).collect();
    for c in &mut idle {
        assert_eq!(c.request("POST", "/", &body[..300 << 10]).status, 200);
    }
    let with_idle = server.rss_kib();
    assert!(
        with_idle < before_idle + 400 * 64,
        "400 idle connections took {} KiB",
        with_idle.saturating_sub(before_idle)
    );
    drop(idle);
    // The server still answers.
    assert_eq!(server.client().request("GET", "/healthz", b"").text(), "ok");
}
