//! A [`Launcher`] whose servers are small HTTP/1.1 servers on threads of this process, bound to
//! 127.0.0.1 port 0: the loop's real load engine sends them real requests, and each counts
//! what it answered. Per variant it can refuse to launch, report the runtime unavailable, stop
//! serving after a number of requests (a server that dies) or cancel a token (Ctrl-C).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmbench_runtime::LaunchSpec;

use super::{Launcher, Launching, ServerHandle};
use crate::variants::Resolved;

/// How often the accepting thread looks for a stop request between connections.
const ACCEPT_POLL: Duration = Duration::from_millis(2);
/// Request heads larger than this are refused (the loop sends small requests).
const MAX_HEAD_BYTES: usize = 16 << 10;

/// What one fake server shares with its threads and with the test.
#[derive(Debug, Default)]
pub(crate) struct Served {
    /// Requests answered so far.
    requests: AtomicU64,
    /// Set when the server stopped, by `stop` or by dying.
    stopped: AtomicBool,
    /// Set when it stopped by itself, after `die_after` requests.
    died: AtomicBool,
    /// Serve this many requests, then stop as a crashed process would.
    die_after: Option<u64>,
    /// Cancelled once this many requests were answered.
    cancel_after: Option<(u64, CancellationToken)>,
    /// Serve one request at a time for this long each, across connections: a server whose
    /// capacity is exactly one request per slot.
    slot: Option<Duration>,
    /// End of the last slot handed out.
    next_free: Mutex<Option<Instant>>,
    /// Open connections, shut down when the server stops.
    conns: Mutex<Vec<TcpStream>>,
    /// The threads serving them.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Served {
    /// Requests answered so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Whether the server stopped.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn halt(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for c in lock(&self.conns).iter() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One launch the loop asked for.
#[derive(Debug, Clone)]
pub(crate) struct Launched {
    /// The variant's name.
    pub variant: String,
    /// The server started for it; `None` when the launch was refused.
    pub served: Option<Arc<Served>>,
}

/// Hands out in-process servers and records every launch, in order.
#[derive(Debug, Default)]
pub(crate) struct FakeLauncher {
    unavailable: BTreeMap<String, String>,
    refused: BTreeMap<String, String>,
    die_after: BTreeMap<String, u64>,
    slot: BTreeMap<String, Duration>,
    cancel_after: BTreeMap<String, (u64, CancellationToken)>,
    host_report: BTreeMap<String, String>,
    launches: Arc<Mutex<Vec<Launched>>>,
}

impl FakeLauncher {
    /// `variant`'s runtime is not installed here.
    pub(crate) fn unavailable(mut self, variant: &str, reason: &str) -> Self {
        self.unavailable.insert(variant.into(), reason.into());
        self
    }

    /// Launching `variant` fails with `reason`.
    pub(crate) fn refuse(mut self, variant: &str, reason: &str) -> Self {
        self.refused.insert(variant.into(), reason.into());
        self
    }

    /// Every server of `variant` answers one request per `slot`, in turn, whatever the number
    /// of connections: its capacity is `1 / slot` requests per second.
    pub(crate) fn throttle(mut self, variant: &str, slot: Duration) -> Self {
        self.slot.insert(variant.into(), slot);
        self
    }

    /// Every server of `variant` stops after answering `requests` requests.
    pub(crate) fn die_after(mut self, variant: &str, requests: u64) -> Self {
        self.die_after.insert(variant.into(), requests);
        self
    }

    /// `token` is cancelled once a server of `variant` answered `requests` requests.
    pub(crate) fn cancel_after(
        mut self,
        variant: &str,
        requests: u64,
        token: CancellationToken,
    ) -> Self {
        self.cancel_after.insert(variant.into(), (requests, token));
        self
    }

    /// The servers of `variant` print this host report.
    pub(crate) fn host_report(mut self, variant: &str, json: &str) -> Self {
        self.host_report.insert(variant.into(), json.into());
        self
    }

    /// The launch log, shared: it can be read while the loop runs.
    pub(crate) fn launches(&self) -> Arc<Mutex<Vec<Launched>>> {
        Arc::clone(&self.launches)
    }

    /// The variants launched, in order (refused launches included).
    pub(crate) fn order(&self) -> Vec<String> {
        lock(&self.launches)
            .iter()
            .map(|l| l.variant.clone())
            .collect()
    }

    fn start(&self, name: &str) -> std::io::Result<FakeServer> {
        let started = Instant::now();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let served = Arc::new(Served {
            die_after: self.die_after.get(name).copied(),
            slot: self.slot.get(name).copied(),
            cancel_after: self.cancel_after.get(name).cloned(),
            ..Served::default()
        });
        let shared = Arc::clone(&served);
        let acceptor = std::thread::spawn(move || accept(&listener, &shared));
        lock(&self.launches).push(Launched {
            variant: name.into(),
            served: Some(Arc::clone(&served)),
        });
        Ok(FakeServer {
            addr,
            served,
            acceptor: Some(acceptor),
            host_report: self.host_report.get(name).cloned(),
            spawn_to_ready: started.elapsed(),
        })
    }
}

impl Launcher for FakeLauncher {
    fn available(&self, variant: &Resolved) -> Result<(), String> {
        match self.unavailable.get(&variant.name) {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    fn launch<'a>(&'a self, variant: &'a Resolved, _spec: LaunchSpec) -> Launching<'a> {
        let result = match self.refused.get(&variant.name) {
            Some(reason) => {
                lock(&self.launches).push(Launched {
                    variant: variant.name.clone(),
                    served: None,
                });
                Err(reason.clone())
            }
            None => self
                .start(&variant.name)
                .map(|s| Box::new(s) as Box<dyn ServerHandle>)
                .map_err(|e| format!("fake server: {e}")),
        };
        Box::pin(std::future::ready(result))
    }
}

/// A running fake server.
#[derive(Debug)]
pub(crate) struct FakeServer {
    addr: SocketAddr,
    served: Arc<Served>,
    acceptor: Option<JoinHandle<()>>,
    host_report: Option<String>,
    spawn_to_ready: Duration,
}

impl FakeServer {
    fn shut(&mut self) {
        self.served.halt();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let workers: Vec<_> = lock(&self.served.workers).drain(..).collect();
        for w in workers {
            let _ = w.join();
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shut();
    }
}

impl ServerHandle for FakeServer {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn spawn_to_ready(&self) -> Duration {
        self.spawn_to_ready
    }

    fn host_report_json(&self, _wait: Duration) -> Option<String> {
        self.host_report.clone()
    }

    fn launch_details(&self) -> std::collections::BTreeMap<String, String> {
        [("command".to_string(), format!("fake {}", self.url()))].into()
    }

    fn stderr_tail(&self) -> String {
        match self.served.die_after {
            Some(limit) if self.served.died.load(Ordering::SeqCst) => {
                format!("fake server died after {limit} requests")
            }
            _ => String::new(),
        }
    }

    fn exited(&mut self) -> Option<String> {
        self.served
            .died
            .load(Ordering::SeqCst)
            .then(|| "exit status: 101".to_string())
    }

    fn stop(mut self: Box<Self>) -> Result<(), String> {
        self.shut();
        Ok(())
    }
}

/// Accepts connections until the server stops; the listener closes with this thread, so a
/// stopped server refuses connections like an exited process.
fn accept(listener: &TcpListener, served: &Arc<Served>) {
    while !served.stopped.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let Ok(copy) = stream.try_clone() else {
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                lock(&served.conns).push(copy);
                let shared = Arc::clone(served);
                let worker = std::thread::spawn(move || serve_connection(stream, &shared));
                lock(&served.workers).push(worker);
                // A connection accepted while stopping would otherwise stay open.
                if served.stopped.load(Ordering::SeqCst) {
                    served.halt();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(_) => return,
        }
    }
}

/// Answers the requests of one connection with `200 ok`, keep-alive unless the client asked
/// to close.
fn serve_connection(stream: TcpStream, served: &Served) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !served.stopped.load(Ordering::SeqCst) {
        let Some((body_len, close)) = read_head(&mut reader) else {
            return;
        };
        let mut body = vec![0u8; body_len];
        if reader.read_exact(&mut body).is_err() || served.stopped.load(Ordering::SeqCst) {
            return;
        }
        if let Some(slot) = served.slot {
            // The next free slot after the previous one's end, so sleep overshoot never
            // accumulates; answered at the slot's end.
            let end = {
                let mut next = lock(&served.next_free);
                let now = Instant::now();
                let end = next.map_or(now, |n| n.max(now)) + slot;
                *next = Some(end);
                end
            };
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        let n = served.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let reply: &[u8] = if close {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        };
        if out.write_all(reply).is_err() {
            return;
        }
        if let Some((after, token)) = &served.cancel_after
            && n >= *after
        {
            token.cancel();
        }
        if served.die_after.is_some_and(|limit| n >= limit) {
            served.died.store(true, Ordering::SeqCst);
            served.halt();
            return;
        }
        if close {
            return;
        }
    }
}

/// Reads one request head; `Some((content length, connection: close))`, `None` at the end of
/// the connection or on a malformed head.
fn read_head(reader: &mut impl BufRead) -> Option<(usize, bool)> {
    let mut body_len = 0;
    let mut close = false;
    let mut read = 0;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).ok()?;
        read += n;
        if n == 0 || read > MAX_HEAD_BYTES {
            return None;
        }
        let text = line.trim_end();
        if first {
            first = false;
            continue;
        }
        if text.is_empty() {
            return Some((body_len, close));
        }
        let (name, value) = text.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
}
