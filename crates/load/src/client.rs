//! HTTP/1.1 client with k6's per-request tracer timestamps.
//!
//! Each VU owns one [`Client`] (at most one connection, like a k6 VU's transport with one
//! host). Timestamps are raw `Instant`s; phases are derived once per request in
//! [`Trace::phases`] with the same rules as k6's `tracer.Done()`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::LoadError;
use crate::plan::{ConnectionMode, Plan};

/// Largest response head accepted (larger is a protocol error).
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Initial receive buffer per connection.
const RECV_BUF_BYTES: usize = 16 << 10;
/// Body bytes kept for `body contains` checks; the rest is only counted.
const MAX_KEPT_BODY_BYTES: usize = 1 << 20;

/// Why a request failed without a usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connect was refused (nothing listening).
    ConnectRefused,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// The request did not complete within the plan's timeout.
    Timeout,
    /// The response is not valid HTTP/1.x or its framing is broken.
    Protocol,
    /// Anything else (TLS failure, unreachable network, ...).
    Other,
    /// No socket could be opened: the process's or the system's file-descriptor limit
    /// (EMFILE, ENFILE; `ulimit -n`) was reached, so the VU had no connection.
    FdLimit,
}

impl ErrorKind {
    /// All kinds, in summary order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::ConnectRefused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Protocol,
        ErrorKind::Other,
        ErrorKind::FdLimit,
    ];

    /// Snake-case name used in summaries and metric names.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
            ErrorKind::FdLimit => "fd_limit",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_io(e: &io::Error) -> ErrorKind {
        use io::ErrorKind as K;
        if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
            return ErrorKind::FdLimit;
        }
        match e.kind() {
            K::ConnectionRefused => ErrorKind::ConnectRefused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                ErrorKind::Reset
            }
            K::TimedOut => ErrorKind::Timeout,
            K::InvalidData => ErrorKind::Protocol,
            _ => ErrorKind::Other,
        }
    }
}

/// Where requests go, resolved once before the run.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// Resolves the host and prepares TLS; returns the target and the bytes of each request an
    /// iteration may send (the mix's, in order, or the plan's one request).
    pub(crate) async fn prepare(plan: &Plan) -> Result<(Target, Vec<Vec<u8>>), LoadError> {
        let u = crate::url::parse(&plan.request.url)?;
        let addr = tokio::net::lookup_host((u.host.as_str(), u.port))
            .await
            .map_err(|source| LoadError::Resolve {
                host: u.host.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| LoadError::Resolve {
                host: u.host.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no address"),
            })?;
        let tls = if u.https {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = &plan.tls.ca_file {
                use rustls_pki_types::pem::PemObject;
                let pem = std::fs::read(path).map_err(|source| LoadError::Io {
                    path: path.clone(),
                    source,
                })?;
                let mut n = 0;
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| {
                        LoadError::Tls(format!("{}: not a PEM certificate: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        LoadError::Tls(format!("{}: unusable CA certificate: {e}", path.display()))
                    })?;
                    n += 1;
                }
                if n == 0 {
                    return Err(LoadError::Tls(format!(
                        "{} holds no PEM certificate",
                        path.display()
                    )));
                }
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| LoadError::Tls(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(u.host.clone())
                .map_err(|e| LoadError::Tls(format!("server name `{}`: {e}", u.host)))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let default_port = if u.https { 443 } else { 80 };
        let host_header = match (u.host.contains(':'), u.port == default_port) {
            (true, true) => format!("[{}]", u.host),
            (true, false) => format!("[{}]:{}", u.host, u.port),
            (false, true) => u.host.clone(),
            (false, false) => format!("{}:{}", u.host, u.port),
        };
        let close = plan.connection_mode == ConnectionMode::NewConnectionPerRequest;
        let req = &plan.request;
        let bytes = if plan.mix.is_empty() {
            vec![request_bytes(
                &host_header,
                &req.method,
                &u.path,
                &req.headers,
                &req.body,
                close,
            )]
        } else {
            plan.mix
                .iter()
                .map(|r| {
                    request_bytes(&host_header, &r.method, &r.path, &r.headers, &r.body, close)
                })
                .collect()
        };
        Ok((Target { addr, tls }, bytes))
    }
}

/// The bytes of one request: head (with `Host`, `User-Agent` unless given, `Content-Length`
/// and, for new-connection-per-request, `Connection: close`) and body.
fn request_bytes(
    host_header: &str,
    method: &str,
    path: &str,
    headers: &std::collections::BTreeMap<String, String>,
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host_header}\r\n");
    let has = |name: &str| headers.keys().any(|k| k.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        head.push_str(concat!(
            "User-Agent: wasmbench/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    for (k, v) in headers {
        if ["host", "content-length", "connection", "transfer-encoding"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        // What Go's transport sends with DisableKeepAlives (k6 noConnectionReuse).
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Receive buffer: `data[start..end]` is unread.
pub(crate) struct RecvBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    pub(crate) fn new() -> RecvBuf {
        RecvBuf {
            data: vec![0; RECV_BUF_BYTES],
            start: 0,
            end: 0,
        }
    }
    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    fn len(&self) -> usize {
        self.end - self.start
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
    /// Makes room after the unread bytes and returns it (where the next read goes).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // Only a head or chunk-size line larger than the buffer gets here.
                let n = self.data.len() * 2;
                self.data.resize(n, 0);
            }
        }
        &mut self.data[self.end..]
    }
    /// `n` bytes were read into [`RecvBuf::spare`].
    pub(crate) fn commit(&mut self, n: usize) {
        self.end += n;
    }
    /// Reads once more from `s`; returns the byte count (0 = EOF).
    async fn fill(&mut self, s: &mut Stream) -> io::Result<usize> {
        let n = s.read(self.spare()).await?;
        self.commit(n);
        Ok(n)
    }
}

struct Conn {
    stream: Stream,
    buf: RecvBuf,
}

/// k6's tracer timestamps for one request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Trace {
    pub(crate) get_conn: Option<Instant>,
    pub(crate) connect_start: Option<Instant>,
    pub(crate) connect_done: Option<Instant>,
    pub(crate) tls_start: Option<Instant>,
    pub(crate) tls_done: Option<Instant>,
    pub(crate) got_conn: Option<Instant>,
    pub(crate) wrote_request: Option<Instant>,
    pub(crate) first_byte: Option<Instant>,
    pub(crate) done: Option<Instant>,
}

/// Phase durations of one request, k6's `Trail`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Phases {
    pub(crate) blocked: Duration,
    pub(crate) connecting: Duration,
    pub(crate) tls_handshaking: Duration,
    pub(crate) sending: Duration,
    pub(crate) waiting: Duration,
    pub(crate) receiving: Duration,
    pub(crate) duration: Duration,
}

fn since(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

impl Trace {
    /// The same derivation as k6's `Tracer.Done()`.
    pub(crate) fn phases(&self, done: Instant) -> Phases {
        let mut p = Phases::default();
        if let (Some(get), Some(got)) = (self.get_conn, self.got_conn) {
            p.blocked = since(got, get);
        }
        if let (Some(a), Some(b)) = (self.connect_start, self.connect_done) {
            p.connecting = since(b, a);
        }
        if let (Some(a), Some(b)) = (self.tls_start, self.tls_done) {
            p.tls_handshaking = since(b, a);
        }
        if let Some(wrote) = self.wrote_request {
            let from = self.tls_done.or(self.connect_done).or(self.got_conn);
            if let Some(from) = from {
                p.sending = since(wrote, from);
            }
            p.waiting = match self.first_byte {
                Some(fb) => since(fb, wrote),
                None => since(done, wrote),
            };
        }
        if let Some(fb) = self.first_byte {
            p.receiving = since(done, fb);
        }
        p.duration = p.sending + p.waiting + p.receiving;
        p
    }
}

/// What came back (filled in as the request progresses, so a timeout still reports bytes).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) status: u16,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    pub(crate) new_connection: bool,
    /// No connection could be opened for this request.
    pub(crate) connect_failed: bool,
}

/// One VU's HTTP client.
pub(crate) struct Client {
    conn: Option<Conn>,
    /// Body of the last response, kept only when a check needs it.
    pub(crate) body: Vec<u8>,
    keep_body: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// Everything one kind of request needs (the plan's request, or one request of its mix).
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    pub(crate) target: Target,
    pub(crate) bytes: Vec<u8>,
    pub(crate) keep_alive: bool,
    pub(crate) is_head: bool,
}

impl Client {
    pub(crate) fn new(keep_body: bool) -> Client {
        Client {
            conn: None,
            body: Vec::new(),
            keep_body,
        }
    }

    /// Forgets the connection (after an error or timeout its state is unknown).
    pub(crate) fn drop_connection(&mut self) {
        self.conn = None;
    }

    async fn connect(
        &mut self,
        ctx: &RequestCtx,
        trace: &mut Trace,
        out: &mut Outcome,
    ) -> Result<(), ErrorKind> {
        trace.connect_start = Some(Instant::now());
        let tcp = TcpStream::connect(ctx.target.addr).await.map_err(|e| {
            out.connect_failed = true;
            ErrorKind::from_io(&e)
        })?;
        trace.connect_done = Some(Instant::now());
        out.new_connection = true;
        // Small requests would otherwise wait for Nagle; k6 (Go) sets TCP_NODELAY too.
        let _ = tcp.set_nodelay(true);
        let stream = match &ctx.target.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                trace.tls_start = Some(Instant::now());
                let s =
                    connector.connect(name.clone(), tcp).await.map_err(
                        |e| match ErrorKind::from_io(&e) {
                            ErrorKind::Protocol => ErrorKind::Other,
                            k => k,
                        },
                    )?;
                trace.tls_done = Some(Instant::now());
                Stream::Tls(Box::new(s))
            }
        };
        self.conn = Some(Conn {
            stream,
            buf: RecvBuf::new(),
        });
        Ok(())
    }

    /// Sends the request and reads the whole response, filling `trace` and `out`.
    pub(crate) async fn request(
        &mut self,
        ctx: &RequestCtx,
        trace: &mut Trace,
        out: &mut Outcome,
    ) -> Result<(), ErrorKind> {
        trace.get_conn = Some(Instant::now());
        self.body.clear();
        // A reused connection the server already closed fails before any response byte; like
        // Go's transport, retry such a request once on a fresh connection.
        for attempt in 0..2 {
            let reused = self.conn.is_some() && ctx.keep_alive;
            if !reused {
                self.conn = None;
                self.connect(ctx, trace, out).await?;
            }
            trace.got_conn = Some(Instant::now());
            let conn = self.conn.as_mut().ok_or(ErrorKind::Other)?;
            let wrote = async {
                conn.stream.write_all(&ctx.bytes).await?;
                conn.stream.flush().await
            }
            .await;
            if let Err(e) = wrote {
                self.conn = None;
                if reused && attempt == 0 {
                    continue;
                }
                return Err(ErrorKind::from_io(&e));
            }
            out.bytes_sent += ctx.bytes.len() as u64;
            trace.wrote_request = Some(Instant::now());
            match read_response(conn, ctx, trace, out, &mut self.body, self.keep_body).await {
                Ok(keep) => {
                    trace.done = Some(Instant::now());
                    if !(keep && ctx.keep_alive) {
                        self.conn = None;
                    }
                    return Ok(());
                }
                Err(Stale) if reused && attempt == 0 => {
                    self.conn = None;
                    trace.wrote_request = None;
                    continue;
                }
                Err(e) => {
                    self.conn = None;
                    return Err(e.kind());
                }
            }
        }
        Err(ErrorKind::Reset)
    }
}

/// Read failures: `Stale` = the connection closed before any response byte.
pub(crate) enum ReadErr {
    Stale,
    Kind(ErrorKind),
}
use ReadErr::Stale;

impl ReadErr {
    pub(crate) fn kind(self) -> ErrorKind {
        match self {
            ReadErr::Stale => ErrorKind::Reset,
            ReadErr::Kind(k) => k,
        }
    }
}

impl From<io::Error> for ReadErr {
    fn from(e: io::Error) -> Self {
        ReadErr::Kind(ErrorKind::from_io(&e))
    }
}

fn keep(body: &mut Vec<u8>, keep_body: bool, bytes: &[u8]) {
    if keep_body && body.len() < MAX_KEPT_BODY_BYTES {
        let room = MAX_KEPT_BODY_BYTES - body.len();
        body.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Where [`ResponseParser`] is in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseState {
    /// Status line and headers (interim 1xx responses are skipped here).
    Head,
    /// A body of known length: bytes still to come.
    Length(u64),
    /// A body that ends when the server closes the connection.
    UntilClose,
    /// A chunk-size line.
    ChunkSize,
    /// Chunk data: bytes still to come.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk, until an empty line.
    Trailer,
}

/// What [`ResponseParser::advance`] needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes from the connection.
    More,
    /// The response is complete; whether the connection may be reused.
    Done(bool),
}

/// HTTP/1.x response framing as a resumable state machine, so the tokio client and the
/// io_uring engine parse by the very same rules: they only differ in how bytes arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseParser {
    state: ParseState,
    is_head: bool,
    reusable: bool,
}

impl ResponseParser {
    pub(crate) fn new(is_head: bool) -> ResponseParser {
        ResponseParser {
            state: ParseState::Head,
            is_head,
            reusable: false,
        }
    }

    /// True for the response to a HEAD request (no body whatever the headers say).
    pub(crate) fn is_head(&self) -> bool {
        self.is_head
    }

    /// True while the status line and headers are being read (the first byte read then is
    /// the response's first byte).
    pub(crate) fn in_head(&self) -> bool {
        self.state == ParseState::Head
    }

    /// Consumes what it can of `buf`.
    pub(crate) fn advance(
        &mut self,
        buf: &mut RecvBuf,
        out: &mut Outcome,
        body: &mut Vec<u8>,
        keep_body: bool,
    ) -> Result<Parsed, ErrorKind> {
        // Bounded: every pass consumes bytes or changes state towards `Done`, or returns.
        loop {
            match self.state {
                ParseState::Head => {
                    if buf.len() == 0 {
                        return Ok(Parsed::More);
                    }
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut resp = httparse::Response::new(&mut headers);
                    match resp.parse(buf.filled()) {
                        Ok(httparse::Status::Complete(head_len)) => {
                            let status = resp.code.unwrap_or(0);
                            let http11 = resp.version == Some(1);
                            let mut length = None;
                            let mut chunked = false;
                            let (mut close, mut keepalive) = (false, false);
                            for h in resp.headers.iter() {
                                if h.name.eq_ignore_ascii_case("content-length") {
                                    let v = std::str::from_utf8(h.value)
                                        .ok()
                                        .and_then(|v| v.trim().parse::<u64>().ok())
                                        .ok_or(ErrorKind::Protocol)?;
                                    length = Some(v);
                                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                    chunked =
                                        h.value.rsplit(|b| *b == b',').next().is_some_and(|v| {
                                            v.trim_ascii().eq_ignore_ascii_case(b"chunked")
                                        });
                                } else if h.name.eq_ignore_ascii_case("connection") {
                                    for t in h.value.split(|b| *b == b',') {
                                        let t = t.trim_ascii();
                                        close |= t.eq_ignore_ascii_case(b"close");
                                        keepalive |= t.eq_ignore_ascii_case(b"keep-alive");
                                    }
                                }
                            }
                            buf.consume(head_len);
                            if (100..200).contains(&status) && status != 101 {
                                continue;
                            }
                            out.status = status;
                            self.reusable = if http11 { !close } else { keepalive && !close };
                            self.state = if self.is_head || status == 204 || status == 304 {
                                return Ok(Parsed::Done(self.reusable));
                            } else if chunked {
                                ParseState::ChunkSize
                            } else if let Some(n) = length {
                                ParseState::Length(n)
                            } else {
                                ParseState::UntilClose
                            };
                        }
                        Ok(httparse::Status::Partial) => {
                            if buf.len() > MAX_HEAD_BYTES {
                                return Err(ErrorKind::Protocol);
                            }
                            return Ok(Parsed::More);
                        }
                        Err(_) => return Err(ErrorKind::Protocol),
                    }
                }
                ParseState::Length(remaining) => {
                    let take = (buf.len() as u64).min(remaining) as usize;
                    keep(body, keep_body, &buf.filled()[..take]);
                    buf.consume(take);
                    let remaining = remaining - take as u64;
                    self.state = ParseState::Length(remaining);
                    return Ok(if remaining == 0 {
                        Parsed::Done(self.reusable)
                    } else {
                        Parsed::More
                    });
                }
                ParseState::UntilClose => {
                    let n = buf.len();
                    keep(body, keep_body, buf.filled());
                    buf.consume(n);
                    return Ok(Parsed::More);
                }
                ParseState::ChunkSize => match httparse::parse_chunk_size(buf.filled()) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.consume(used);
                        self.state = if size == 0 {
                            ParseState::Trailer
                        } else {
                            ParseState::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => {
                        if buf.len() > MAX_HEAD_BYTES {
                            return Err(ErrorKind::Protocol);
                        }
                        return Ok(Parsed::More);
                    }
                    Err(_) => return Err(ErrorKind::Protocol),
                },
                ParseState::ChunkData(remaining) => {
                    if buf.len() == 0 {
                        return Ok(Parsed::More);
                    }
                    let take = (buf.len() as u64).min(remaining) as usize;
                    keep(body, keep_body, &buf.filled()[..take]);
                    buf.consume(take);
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        ParseState::ChunkEnd
                    } else {
                        ParseState::ChunkData(remaining)
                    };
                }
                ParseState::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Parsed::More);
                    }
                    if &buf.filled()[..2] != b"\r\n" {
                        return Err(ErrorKind::Protocol);
                    }
                    buf.consume(2);
                    self.state = ParseState::ChunkSize;
                }
                ParseState::Trailer => match buf.filled().windows(2).position(|w| w == b"\r\n") {
                    Some(pos) => {
                        buf.consume(pos + 2);
                        if pos == 0 {
                            return Ok(Parsed::Done(self.reusable));
                        }
                    }
                    None => {
                        if buf.len() > MAX_HEAD_BYTES {
                            return Err(ErrorKind::Protocol);
                        }
                        return Ok(Parsed::More);
                    }
                },
            }
        }
    }

    /// The connection reached EOF: the end of an until-close body, or a failure (`Stale` when
    /// not a byte of the response came, so a reused connection may be retried).
    pub(crate) fn eof(&self, got_first_byte: bool) -> Result<bool, ReadErr> {
        match self.state {
            ParseState::UntilClose => Ok(false),
            ParseState::Head if !got_first_byte => Err(ReadErr::Stale),
            _ => Err(ReadErr::Kind(ErrorKind::Reset)),
        }
    }
}

/// Reads one response; returns whether the connection may be reused.
async fn read_response(
    conn: &mut Conn,
    ctx: &RequestCtx,
    trace: &mut Trace,
    out: &mut Outcome,
    body: &mut Vec<u8>,
    keep_body: bool,
) -> Result<bool, ReadErr> {
    let mut parser = ResponseParser::new(ctx.is_head);
    // Bounded: every pass reads at least one byte or returns (EOF, error, complete response).
    loop {
        match parser.advance(&mut conn.buf, out, body, keep_body) {
            Ok(Parsed::Done(reusable)) => return Ok(reusable),
            Ok(Parsed::More) => {}
            Err(k) => return Err(ReadErr::Kind(k)),
        }
        let n = conn.buf.fill(&mut conn.stream).await?;
        if n == 0 {
            return parser.eof(trace.first_byte.is_some());
        }
        if parser.in_head() && trace.first_byte.is_none() {
            trace.first_byte = Some(Instant::now());
        }
        out.bytes_received += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_k6_on_new_and_reused_connections() {
        let t0 = Instant::now();
        let at = |us: u64| Some(t0 + Duration::from_micros(us));
        // New plain connection: blocked includes connect, sending starts at connectDone.
        let tr = Trace {
            get_conn: at(0),
            connect_start: at(10),
            connect_done: at(110),
            got_conn: at(115),
            wrote_request: at(130),
            first_byte: at(1130),
            ..Trace::default()
        };
        let p = tr.phases(t0 + Duration::from_micros(1200));
        assert_eq!(p.blocked, Duration::from_micros(115));
        assert_eq!(p.connecting, Duration::from_micros(100));
        assert_eq!(p.sending, Duration::from_micros(20));
        assert_eq!(p.waiting, Duration::from_micros(1000));
        assert_eq!(p.receiving, Duration::from_micros(70));
        assert_eq!(p.duration, Duration::from_micros(1090));
        // Reused: no connect, sending from gotConn.
        let tr = Trace {
            get_conn: at(0),
            got_conn: at(1),
            wrote_request: at(11),
            first_byte: at(50),
            ..Trace::default()
        };
        let p = tr.phases(t0 + Duration::from_micros(60));
        assert_eq!(p.connecting, Duration::ZERO);
        assert_eq!(p.blocked, Duration::from_micros(1));
        assert_eq!(p.sending, Duration::from_micros(10));
        // No response byte before the end: waiting runs to `done`.
        let tr = Trace {
            get_conn: at(0),
            got_conn: at(1),
            wrote_request: at(11),
            ..Trace::default()
        };
        let p = tr.phases(t0 + Duration::from_micros(511));
        assert_eq!(p.waiting, Duration::from_micros(500));
        assert_eq!(p.receiving, Duration::ZERO);
    }
}
