//! Runs the native `kv` binary on 127.0.0.1 and checks its HTTP API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const STEP: Duration = Duration::from_secs(15);

struct Kv {
    child: Child,
    addr: SocketAddr,
}

impl Kv {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Kv {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kv"))
            .args(args)
            .env_remove("PORT")
            .env("KV_HOST", "127.0.0.1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn kv");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut kv = Kv {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let line = rx.recv_timeout(STEP).expect("kv did not print its address");
        kv.addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        kv
    }
}

impl Drop for Kv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(STEP)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, path: &str, body: &[u8]) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).unwrap();
    }

    fn call(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.send(method, path, body);
        self.response()
    }

    fn response(&mut self) -> (u16, Vec<u8>) {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp.parse(&self.buf).unwrap() {
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| {
                        std::str::from_utf8(h.value).unwrap().parse().unwrap()
                    });
                if self.buf.len() >= head + len {
                    let out = (resp.code.unwrap(), self.buf[head..head + len].to_vec());
                    self.buf.drain(..head + len);
                    return out;
                }
            }
            let mut chunk = [0u8; 16 << 10];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed mid-response");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn put_get_delete_round_trip() {
    let kv = Kv::start(&["--port", "0"], &[]);
    let mut c = Conn::new(kv.addr);
    assert_eq!(c.call("GET", "/healthz", b""), (200, b"ok".to_vec()));
    assert_eq!(c.call("GET", "/kv/a", b""), (404, b"no such key".to_vec()));
    assert_eq!(c.call("PUT", "/kv/a", b"one"), (201, b"created".to_vec()));
    assert_eq!(c.call("GET", "/kv/a", b""), (200, b"one".to_vec()));
    assert_eq!(c.call("PUT", "/kv/a", b"two"), (200, b"updated".to_vec()));
    let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    assert_eq!(c.call("PUT", "/kv/bin", &binary).0, 201);
    // A second connection sees the same store.
    let mut other = Conn::new(kv.addr);
    assert_eq!(other.call("GET", "/kv/a", b""), (200, b"two".to_vec()));
    assert_eq!(other.call("GET", "/kv/bin", b""), (200, binary));
    assert_eq!(c.call("DELETE", "/kv/a", b""), (204, Vec::new()));
    assert_eq!(c.call("DELETE", "/kv/a", b"").0, 404);
    assert_eq!(c.call("GET", "/kv/a", b"").0, 404);
    assert_eq!(c.call("POST", "/kv/a", b"x").0, 405);
    assert_eq!(c.call("GET", "/kv/", b"").0, 400);
    assert_eq!(c.call("GET", "/other", b"").0, 404);
    // Pipelined requests are answered in order.
    c.send("PUT", "/kv/p", b"1");
    c.send("GET", "/kv/p", b"");
    c.send("DELETE", "/kv/p", b"");
    assert_eq!(c.response().0, 201);
    assert_eq!(c.response(), (200, b"1".to_vec()));
    assert_eq!(c.response().0, 204);
}

#[test]
fn port_comes_from_the_environment_and_bad_arguments_fail() {
    let kv = Kv::start(&[], &[("PORT", "0")]);
    assert_eq!(Conn::new(kv.addr).call("GET", "/healthz", b"").0, 200);
    let out = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown argument") && err.lines().count() == 1,
        "{err}"
    );
}
