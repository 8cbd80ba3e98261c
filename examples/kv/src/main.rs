//! `kv`: a tiny in-memory key-value HTTP service, used to try wasmbench's bring-your-own-service
//! path on something that is not the wasmbench workload.
//!
//! API (HTTP/1.1, keep-alive, `Content-Length` bodies):
//! - `PUT /kv/<key>` stores the body: `201` when new, `200` when replaced;
//! - `GET /kv/<key>` returns the stored bytes, or `404`;
//! - `DELETE /kv/<key>` removes the key: `204`, or `404`;
//! - `GET /healthz` answers `ok`.
//!
//! Port: `--port N` (or `--port=N`), else the `PORT` environment variable, else 8080; `0` picks
//! a free port. Address: `KV_HOST`, else `HOST` (default `0.0.0.0`). It prints nothing when
//! ready (a harness learns that from its port accepting). One thread, non-blocking sockets and `poll(2)`, so the same source builds natively
//! and for `wasm32-wasip2`.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const DEFAULT_PORT: u16 = 8080;
const MAX_HEAD_BYTES: usize = 16 << 10;
const MAX_VALUE_BYTES: usize = 1 << 20;
const MAX_KEY_BYTES: usize = 256;
const MAX_KEYS: usize = 100_000;
const MAX_STORE_BYTES: usize = 256 << 20;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const READ_CHUNK: usize = 64 << 10;

fn main() -> ExitCode {
    let port = match port_from(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(Some(p)) => p,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv: {e}");
            return ExitCode::from(2);
        }
    };
    let host = std::env::var("KV_HOST")
        .or_else(|_| std::env::var("HOST"))
        .unwrap_or_else(|_| "0.0.0.0".to_string());
    let listener = match TcpListener::bind((host.as_str(), port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kv: cannot listen on {host}:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    match run(listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv: {e}");
            ExitCode::from(1)
        }
    }
}

/// The port from `--port N`, `--port=N` or `PORT`; `None` when `--help` was asked for.
fn port_from(
    mut args: impl Iterator<Item = String>,
    env: Option<String>,
) -> Result<Option<u16>, String> {
    let mut port = None;
    while let Some(a) = args.next() {
        let value = match a.as_str() {
            "--port" | "-p" => args
                .next()
                .ok_or("--port needs a value, e.g. `--port 8080`")?,
            "-h" | "--help" => {
                println!("usage: kv [--port N]   (or PORT=N kv); serves PUT/GET/DELETE /kv/<key>");
                return Ok(None);
            }
            other => match other.strip_prefix("--port=") {
                Some(v) => v.to_string(),
                None => return Err(format!("unknown argument {other:?}: use `--port N`")),
            },
        };
        port = Some(parse_port(&value, "--port")?);
    }
    match (port, env) {
        (Some(p), _) => Ok(Some(p)),
        (None, Some(v)) => parse_port(&v, "PORT").map(Some),
        (None, None) => Ok(Some(DEFAULT_PORT)),
    }
}

fn parse_port(v: &str, what: &str) -> Result<u16, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{what} {v:?} is not a port: use a number from 0 to 65535"))
}

#[derive(Default)]
struct Store {
    map: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    close_after: bool,
    last_active: Instant,
}

fn run(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    let mut store = Store::default();
    let mut conns: Vec<Conn> = Vec::new();
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    loop {
        pfds.clear();
        pfds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for c in &conns {
            pfds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events: if c.out_pos < c.out.len() {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                },
                revents: 0,
            });
        }
        let now = Instant::now();
        let timeout_ms = conns
            .iter()
            .map(|c| (c.last_active + IDLE_TIMEOUT).saturating_duration_since(now))
            .min()
            .map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as i32 + 1);
        // SAFETY: `pfds` is a valid, initialised slice of pollfd for the duration of the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        // Walk connections from the back so removing one keeps the others' poll slots.
        for i in (0..conns.len()).rev() {
            let revents = pfds[i + 1].revents;
            let keep = if revents != 0 {
                step(&mut conns[i], &mut store, &mut scratch, now)
            } else {
                now < conns[i].last_active + IDLE_TIMEOUT
            };
            if !keep {
                conns.swap_remove(i);
            }
        }
        if pfds[0].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        conns.push(Conn {
                            stream,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            out_pos: 0,
                            close_after: false,
                            last_active: now,
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // WouldBlock ends the batch; other errors (aborted handshakes, descriptor
                    // exhaustion) must not stop the service.
                    Err(_) => break,
                }
            }
        }
    }
}

/// Reads, answers and writes what a connection is ready for; `false` when it is finished.
fn step(c: &mut Conn, store: &mut Store, scratch: &mut [u8], now: Instant) -> bool {
    let mut eof = false;
    if c.out_pos >= c.out.len() {
        loop {
            match c.stream.read(scratch) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    c.last_active = now;
                    c.inbuf.extend_from_slice(&scratch[..n]);
                    if c.inbuf.len() > MAX_HEAD_BYTES + MAX_VALUE_BYTES {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        let mut used = 0;
        while !c.close_after {
            match handle(&c.inbuf[used..], store, &mut c.out) {
                Step::Done(n, close) => {
                    used += n;
                    c.close_after = close;
                }
                Step::NeedMore => break,
            }
        }
        c.inbuf.drain(..used);
    }
    while c.out_pos < c.out.len() {
        match c.stream.write(&c.out[c.out_pos..]) {
            Ok(0) => return false,
            Ok(n) => c.out_pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    c.out.clear();
    c.out_pos = 0;
    !(eof || c.close_after)
}

enum Step {
    /// A request was answered: bytes used, and whether the connection closes after it.
    Done(usize, bool),
    NeedMore,
}

/// Answers the request at the start of `buf`, if it is complete.
fn handle(buf: &[u8], store: &mut Store, out: &mut Vec<u8>) -> Step {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Step::NeedMore,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            reply(out, 431, "request head too large", true);
            return Step::Done(buf.len(), true);
        }
        Err(_) => {
            reply(out, 400, "malformed request", true);
            return Step::Done(buf.len(), true);
        }
    };
    let mut len = 0usize;
    let mut close = req.version != Some(1);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) => len = n,
                None => {
                    reply(out, 400, "invalid Content-Length", true);
                    return Step::Done(buf.len(), true);
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            reply(
                out,
                501,
                "chunked bodies are not supported: send Content-Length",
                true,
            );
            return Step::Done(buf.len(), true);
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value.to_ascii_lowercase();
            if v == b"close" {
                close = true;
            } else if v == b"keep-alive" {
                close = false;
            }
        }
    }
    if len > MAX_VALUE_BYTES {
        reply(out, 413, "value too large: at most 1 MiB", true);
        return Step::Done(buf.len(), true);
    }
    if buf.len() < head + len {
        return Step::NeedMore;
    }
    let body = &buf[head..head + len];
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    match (method, path.strip_prefix("/kv/")) {
        ("GET", _) if path == "/healthz" => reply(out, 200, "ok", close),
        (_, Some(key)) if key.is_empty() || key.len() > MAX_KEY_BYTES => {
            reply(out, 400, "key must be 1 to 256 bytes: use /kv/<key>", close);
        }
        ("GET", Some(key)) => match store.map.get(key.as_bytes()) {
            Some(v) => write(out, 200, "application/octet-stream", v, close),
            None => reply(out, 404, "no such key", close),
        },
        ("PUT", Some(key)) => {
            let old = store
                .map
                .get(key.as_bytes())
                .map_or(0, |v| key.len() + v.len());
            let new_bytes = store.bytes - old + key.len() + body.len();
            if old == 0 && store.map.len() >= MAX_KEYS || new_bytes > MAX_STORE_BYTES {
                reply(out, 507, "store full: delete keys first", close);
            } else {
                store.bytes = new_bytes;
                match store.map.insert(key.as_bytes().to_vec(), body.to_vec()) {
                    Some(_) => reply(out, 200, "updated", close),
                    None => reply(out, 201, "created", close),
                }
            }
        }
        ("DELETE", Some(key)) => match store.map.remove(key.as_bytes()) {
            Some(v) => {
                store.bytes -= key.len() + v.len();
                write(out, 204, "text/plain", b"", close);
            }
            None => reply(out, 404, "no such key", close),
        },
        (_, Some(_)) => reply(out, 405, "use GET, PUT or DELETE on /kv/<key>", close),
        _ => reply(out, 404, "unknown path: use /kv/<key> or /healthz", close),
    }
    Step::Done(head + len, close)
}

fn reply(out: &mut Vec<u8>, status: u16, text: &str, close: bool) {
    write(
        out,
        status,
        "text/plain; charset=utf-8",
        text.as_bytes(),
        close,
    );
}

fn write(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8], close: bool) {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        507 => "Insufficient Storage",
        _ => "Unknown",
    };
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    if status != 204 {
        let _ = write!(
            out,
            "content-type: {content_type}\r\ncontent-length: {}\r\n",
            body.len()
        );
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(args: &[&str], env: Option<&str>) -> Result<Option<u16>, String> {
        port_from(args.iter().map(|s| s.to_string()), env.map(str::to_string))
    }

    #[test]
    fn port_comes_from_flag_then_env_then_default() {
        assert_eq!(port(&["--port", "9000"], Some("1")), Ok(Some(9000)));
        assert_eq!(port(&["--port=9001"], None), Ok(Some(9001)));
        assert_eq!(port(&[], Some("7000")), Ok(Some(7000)));
        assert_eq!(port(&[], None), Ok(Some(DEFAULT_PORT)));
        assert!(
            port(&["--port"], None)
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            port(&["--prot", "1"], None)
                .unwrap_err()
                .contains("unknown argument")
        );
        assert!(port(&[], Some("http")).unwrap_err().contains("PORT"));
    }
}
