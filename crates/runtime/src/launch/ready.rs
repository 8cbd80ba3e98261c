//! Telling when a server is ready: the `listening on <ip:port>` line it prints, and `GET`
//! probes over fresh TCP connections.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Gap between two readiness probes.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// connect_timeout rejects a zero timeout.
pub(super) const MIN_PROBE_WAIT: Duration = Duration::from_millis(1);

/// Parses `listening on <ip:port>` (the line the echo service and `wasmbench serve` print).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim()
        .strip_prefix("listening on ")?
        .trim()
        .trim_start_matches("http://")
        .parse()
        .ok()
}

/// Replaces an unspecified address (`0.0.0.0`, `::`) by the loopback address of its family.
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// One `GET` over a fresh TCP connection (`Connection: close`); returns the status code and
/// the body. Used for readiness probes.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let timeout = timeout.max(Duration::from_millis(1));
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = Vec::new();
    // Bounded: the server closes after the response; the read timeout ends a stuck one.
    s.take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete response from {addr} ({} bytes)", buf.len()))?;
    let status_line = String::from_utf8_lossy(
        &buf[..buf[..head_end]
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(head_end)],
    )
    .into_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    Ok((status, buf[head_end + 4..].to_vec()))
}

/// Whether a readiness probe's answer is final: a client error (the path does not exist, the
/// method is refused) or a server error other than `503 Service Unavailable`, which servers
/// answer while they warm up.
pub fn rejects_readiness(status: u16) -> bool {
    (400..600).contains(&status) && status != 503
}

/// Waits until `GET path` on `addr` answers `200`, or the deadline passes or the answer
/// [rejects readiness](rejects_readiness) (then returns the last error).
pub fn wait_ready(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match http_get(addr, path, left.min(Duration::from_secs(1))) {
            Ok((200, _)) => return Ok(started.elapsed()),
            Ok((s, _)) if rejects_readiness(s) => return Err(format!("GET {path} answered {s}")),
            Ok((s, _)) => format!("GET {path} answered {s}"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        assert_eq!(
            parse_listening("listening on 0.0.0.0:1234"),
            Some("0.0.0.0:1234".parse().unwrap())
        );
        assert_eq!(
            parse_listening("listening on [::1]:80\n"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_listening("listening on fd 3"), None);
        assert_eq!(
            connectable("0.0.0.0:9".parse().unwrap()),
            "127.0.0.1:9".parse().unwrap()
        );
    }

    #[test]
    fn only_answers_waiting_cannot_change_reject_readiness() {
        for s in [400, 404, 405, 500, 502, 504] {
            assert!(rejects_readiness(s), "{s}");
        }
        for s in [200, 204, 301, 503] {
            assert!(!rejects_readiness(s), "{s}");
        }
    }

    #[test]
    fn probes_read_the_status_and_body_of_a_real_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for answer in ["HTTP/1.1 503 Busy\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nready"] {
                let (mut s, _) = listener.accept().unwrap();
                // The request may arrive in pieces; read up to the end of its head.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0 && head.len() < 4096, "{head:?}");
                    head.extend_from_slice(&buf[..n]);
                }
                assert!(head.starts_with(b"GET /healthz HTTP/1.1\r\n"), "{head:?}");
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        let timeout = Duration::from_secs(10);
        assert_eq!(
            http_get(addr, "/healthz", timeout).unwrap(),
            (503, Vec::new())
        );
        assert_eq!(
            http_get(addr, "/healthz", timeout).unwrap(),
            (200, b"ready".to_vec())
        );
        server.join().unwrap();
        // Nothing listens any more: the wait ends at its deadline with the last error.
        let e = wait_ready(addr, "/healthz", Duration::from_millis(50)).unwrap_err();
        assert!(e.contains(&addr.to_string()), "{e}");
    }
}
