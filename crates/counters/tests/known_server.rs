//! The counters read a server's known number of syscalls per request.
//!
//! The server is this test binary run again as a child process (`COUNTERS_TEST_SERVER`): one
//! connection, and per request exactly one `recv`, `EXTRA` `getppid` calls and one `send`.
//! Counting needs root (tracepoints); without it the test checks that the result says why,
//! and under `CI=true` it fails instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use wasmbench_counters::{SyscallKind, attach};

const REQUEST: &[u8; 16] = b"GET / HTTP/1.1\r\n";
const RESPONSE: &[u8; 8] = b"200 OK\r\n";
const REQUESTS: u64 = 2_000;
const EXTRA: u64 = 3;

/// The child's job: serve one connection until the peer closes it.
fn serve() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("{}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = [0u8; 16];
    loop {
        // One recv per request: the client sends the next request only after the response.
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => assert_eq!(n, buf.len(), "a request arrived split"),
        }
        for _ in 0..EXTRA {
            // SAFETY: getppid has no preconditions.
            unsafe { libc::getppid() };
        }
        conn.write_all(RESPONSE).unwrap();
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn counters_read_a_known_number_of_syscalls_per_request() {
    if std::env::var_os("COUNTERS_TEST_SERVER").is_some() {
        return serve();
    }
    let mut child = Server(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "counters_read_a_known_number_of_syscalls_per_request",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("COUNTERS_TEST_SERVER", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = child.0.stdout.take().unwrap();
    // The harness prints "running 1 test" and "test <name> ... " first; the address is the
    // first line whose last word parses.
    let mut text = String::new();
    let mut byte = [0u8; 1];
    let addr: std::net::SocketAddr = loop {
        assert_eq!(
            out.read(&mut byte).unwrap(),
            1,
            "server ended early: {text}"
        );
        text.push(byte[0] as char);
        if text.ends_with('\n')
            && let Some(a) = text
                .lines()
                .find_map(|l| l.split_whitespace().last()?.parse().ok())
        {
            break a;
        }
        assert!(text.len() < 4096, "no address in {text}");
    };
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    // One exchange before counting, so the accept is behind us.
    let mut resp = [0u8; 8];
    conn.write_all(REQUEST).unwrap();
    conn.read_exact(&mut resp).unwrap();

    let counting = attach(child.0.id(), true);
    for _ in 0..REQUESTS {
        conn.write_all(REQUEST).unwrap();
        conn.read_exact(&mut resp).unwrap();
    }
    let counts = counting.finish();
    eprintln!("over {REQUESTS} requests: {counts:?}");
    drop(conn);

    if counts.syscalls.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root with tracefs mounted (scripts/setup.sh), yet: {:?}",
            counts.syscalls_not_counted
        );
        assert!(counts.syscalls_not_counted.is_some(), "{counts:?}");
        return;
    }
    let per_req = |k: SyscallKind| counts.syscalls[&k] as f64 / REQUESTS as f64;
    let within = |got: f64, want: f64| (got - want).abs() <= want * 0.10;
    assert!(within(per_req(SyscallKind::Read), 1.0), "{counts:?}");
    assert!(within(per_req(SyscallKind::Write), 1.0), "{counts:?}");
    assert!(
        within(per_req(SyscallKind::All), 2.0 + EXTRA as f64),
        "{counts:?}"
    );
    assert_eq!(counts.syscalls[&SyscallKind::Accept], 0, "{counts:?}");
    assert!(per_req(SyscallKind::Poll) < 0.1, "{counts:?}");
    // The blocking recv waits for the next request, so the server's thread leaves the CPU about
    // once per request (blocked, or preempted while the client runs on the same CPU).
    let switches =
        (counts.voluntary_switches + counts.involuntary_switches) as f64 / REQUESTS as f64;
    assert!((0.2..=3.0).contains(&switches), "{counts:?}");
}
