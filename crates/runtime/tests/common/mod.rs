//! Shared test helpers: built artifacts (once per test binary), an in-process embedded host
//! that stops in `Drop`, and a tiny HTTP/1.1 client that keeps raw response bytes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmbench_runtime::process::wait_ready;
use wasmbench_runtime::{
    Artifact, BuildOptions, EmbeddedConfig, EmbeddedHost, RuntimeError, Target, build_echo,
};

/// Generous per-operation timeout: the machine is shared and may be busy.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The workload built for `target` (built once per test binary).
pub fn artifact(target: Target) -> Artifact {
    static CELLS: [OnceLock<Artifact>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Target::ALL.iter().position(|t| *t == target).unwrap();
    CELLS[i]
        .get_or_init(|| {
            build_echo(target, &BuildOptions::default())
                .unwrap_or_else(|e| panic!("building echo for {target}: {e}"))
        })
        .clone()
}

/// `.cwasm` cache shared by the tests (inside the artifacts target directory).
pub fn test_cache_dir() -> PathBuf {
    BuildOptions::default().target_dir().join("cwasm-test")
}

/// An embedded host serving on a background thread of this process; stopped in `Drop`.
pub struct InProcess {
    pub host: Arc<EmbeddedHost>,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), RuntimeError>>>,
}

impl InProcess {
    /// Starts `cfg` and waits until `/healthz` answers.
    pub fn start(cfg: EmbeddedConfig) -> InProcess {
        Self::try_start(cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `cfg`; `Err` carries the host's error when it stops before listening.
    pub fn try_start(cfg: EmbeddedConfig) -> Result<InProcess, String> {
        let host = Arc::new(EmbeddedHost::new(cfg).map_err(|e| e.to_string())?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let host = Arc::clone(&host);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || host.serve(&stop))
        };
        let mut this = InProcess {
            addr: "127.0.0.1:0".parse().unwrap(),
            host,
            stop,
            thread: Some(thread),
        };
        // Bounded: wait for the address, but give up early when the host thread ended.
        for _ in 0..600 {
            if let Some(a) = this.host.wait_listening(Duration::from_millis(50)) {
                this.addr = wasmbench_runtime::process::connectable(a);
                wait_ready(this.addr, "/healthz", Duration::from_secs(30))?;
                return Ok(this);
            }
            if this.thread.as_ref().is_some_and(|t| t.is_finished()) {
                let r = this.thread.take().unwrap().join().unwrap();
                return Err(match r {
                    Ok(()) => "the guest exited before listening".into(),
                    Err(e) => e.to_string(),
                });
            }
        }
        Err("the guest did not listen within 30 s".into())
    }

    /// Stops the host and returns what `serve` returned.
    pub fn finish(mut self) -> Result<(), RuntimeError> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }

    /// Waits (bounded) until `serve` returns by itself and gives its result.
    pub fn wait_exit(mut self, timeout: Duration) -> Option<Result<(), RuntimeError>> {
        let t = self.thread.as_ref()?;
        let deadline = std::time::Instant::now() + timeout;
        while !t.is_finished() {
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.thread.take().map(|t| t.join().unwrap())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Embedded config for a built artifact with the shared test cache.
pub fn embedded(target: Target) -> EmbeddedConfig {
    let mut cfg = EmbeddedConfig::new(target, artifact(target).path);
    cfg.cache_dir = Some(test_cache_dir());
    cfg
}

/// One client connection that reads whole responses and keeps any bytes beyond them.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one response (head + `content-length` body) and returns its raw bytes.
    pub fn read_response(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 64 << 10];
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self.stream.read(&mut chunk).expect("read head");
            assert!(
                n > 0,
                "connection closed mid-head after {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("content-length"))
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            let n = self.stream.read(&mut chunk).expect("read body");
            assert!(n > 0, "connection closed mid-body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.buf.drain(..head_end + len).collect()
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub fn expect_eof(&mut self) {
        assert!(self.buf.is_empty(), "unexpected bytes {:?}", self.buf);
        let mut b = [0u8; 1024];
        match self.stream.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&b[..n])),
            // A reset after the full response also means the server closed it.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }
}

/// A POST request with `body`.
pub fn post(path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The exact bytes the workload answers for an echo of `body` (the workload's own writer is
/// the reference).
pub fn expected_echo(body: &[u8], keep_alive: bool, seed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    wasmbench_echo::http::write_response(&mut out, 200, &[b"echo: ", body], keep_alive, seed);
    out
}

/// Deterministic, non-repeating-looking body bytes.
pub fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i * 7 + i / 251) % 26) as u8)
        .collect()
}
