//! HTTP/1.1 request framing: turns the bytes a connection has received into complete requests.
//!
//! The head is parsed by `httparse`; this module adds what a server needs around it: body
//! framing (`Content-Length` and chunked), size limits, keep-alive rules and `Expect: 100-continue`.
//! It never panics on input: every malformed request maps to a status code and a reason.

/// Most headers accepted in one request; more is answered with `431`.
pub const MAX_HEADERS: usize = 64;

/// Largest accepted request body, as in the socket build's default (`ECHO_MAX_BODY`).
///
/// The `wasi:http` components (`wasmbench-echo-http`, `wasmbench-echo-http-p3`) have no
/// configuration and always use this limit.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Body of the `400` answer to a method other than GET or POST (same text in every build).
pub const BAD_METHOD: &str = "unsupported method: use GET or POST";

/// Body of the `413` answer to a request body over the limit.
pub const TOO_LARGE: &str = "request body too large";

/// Request methods the service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
}

/// A complete request, borrowed from the connection's receive buffer where possible.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The request target as sent (path and query).
    pub target: &'a str,
    /// `true` for `HTTP/1.1`, `false` for `HTTP/1.0`.
    pub http11: bool,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// The body, de-chunked when it was sent chunked.
    pub body: Body<'a>,
}

/// A request body.
#[derive(Debug)]
pub enum Body<'a> {
    /// Bytes straight from the receive buffer (`Content-Length` framing).
    Borrowed(&'a [u8]),
    /// Bytes reassembled from a chunked body.
    Owned(Vec<u8>),
}

impl Body<'_> {
    /// The body bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Borrowed(b) => b,
            Body::Owned(v) => v,
        }
    }
}

/// A request the service refuses, with the status to answer and a short reason for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// HTTP status code.
    pub status: u16,
    /// Reason, sent as the response body.
    pub reason: &'static str,
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// Not a whole request yet. `head_done` tells whether the head is complete (so the body is
    /// still arriving); `expect_continue` whether the client waits for `100 Continue`;
    /// `need_total` is the buffer length at which the request will be complete, when known.
    Incomplete {
        /// The head has been received completely.
        head_done: bool,
        /// The client sent `Expect: 100-continue` and waits before sending its body.
        expect_continue: bool,
        /// Total bytes needed for the request, when the body length is known.
        need_total: Option<usize>,
    },
    /// A complete request and the number of buffer bytes it used.
    Complete(Request<'a>, usize),
    /// The request is refused; the connection must be closed after answering.
    Rejected(Reject),
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// Largest head.
    pub max_header_bytes: usize,
}

const fn reject(status: u16, reason: &'static str) -> Parsed<'static> {
    Parsed::Rejected(Reject { status, reason })
}

/// Parses the request at the start of `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: Limits) -> Parsed<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return reject(431, "request head too large");
            }
            return Parsed::Incomplete {
                head_done: false,
                expect_continue: false,
                need_total: None,
            };
        }
        Err(httparse::Error::TooManyHeaders) => return reject(431, "too many headers"),
        Err(_) => return reject(400, "malformed request"),
    };
    if head_len > limits.max_header_bytes {
        return reject(431, "request head too large");
    }
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        _ => return reject(400, BAD_METHOD),
    };
    let http11 = req.version == Some(1);
    let target = req.path.unwrap_or("/");

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
            else {
                return reject(400, "invalid Content-Length");
            };
            if content_length.is_some_and(|prev| prev != n) {
                return reject(400, "conflicting Content-Length headers");
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if has_token(h.value, b"chunked") {
                chunked = true;
            } else {
                return reject(400, "unsupported Transfer-Encoding");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            conn_close |= has_token(h.value, b"close");
            conn_keep_alive |= has_token(h.value, b"keep-alive");
        } else if name.eq_ignore_ascii_case("expect") {
            if h.value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = http11;
            } else {
                return reject(417, "unsupported Expect");
            }
        }
    }
    if chunked && content_length.is_some() {
        // RFC 9112 §6.3: a request with both is a smuggling vector; refuse it.
        return reject(400, "both Content-Length and Transfer-Encoding");
    }
    let keep_alive = if http11 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };

    let (body, used) = if chunked {
        let framed_max = chunked_framing_limit(limits);
        match dechunk(&buf[head_len..], limits.max_body_bytes, framed_max) {
            Dechunk::Done(body, n) => (Body::Owned(body), head_len + n),
            Dechunk::Partial if buf.len() - head_len > framed_max => {
                // Endless chunk extensions or trailers never complete the body; without this
                // bound the receive buffer would grow without limit.
                return reject(413, "chunked body framing too large");
            }
            Dechunk::Partial => {
                return Parsed::Incomplete {
                    head_done: true,
                    expect_continue,
                    need_total: None,
                };
            }
            Dechunk::Bad(r) => return Parsed::Rejected(r),
        }
    } else {
        let len = content_length.unwrap_or(0);
        if len > limits.max_body_bytes {
            return reject(413, TOO_LARGE);
        }
        let total = head_len + len;
        if buf.len() < total {
            return Parsed::Incomplete {
                head_done: true,
                expect_continue,
                need_total: Some(total),
            };
        }
        (Body::Borrowed(&buf[head_len..total]), total)
    };
    Parsed::Complete(
        Request {
            method,
            target,
            http11,
            keep_alive,
            body,
        },
        used,
    )
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

enum Dechunk {
    Done(Vec<u8>, usize),
    Partial,
    Bad(Reject),
}

/// Most bytes a chunked body may occupy on the wire (data plus chunk sizes, extensions and
/// trailers): twice the body limit plus one head's worth, generous for any real client.
pub fn chunked_framing_limit(limits: Limits) -> usize {
    limits
        .max_body_bytes
        .saturating_mul(2)
        .saturating_add(limits.max_header_bytes)
}

fn dechunk(mut buf: &[u8], max: usize, framed_max: usize) -> Dechunk {
    let start_len = buf.len();
    let mut body = Vec::new();
    loop {
        if start_len - buf.len() > framed_max {
            return Dechunk::Bad(Reject {
                status: 413,
                reason: "chunked body framing too large",
            });
        }
        let (skip, size) = match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Dechunk::Partial,
            Err(_) => {
                return Dechunk::Bad(Reject {
                    status: 400,
                    reason: "malformed chunked body",
                });
            }
        };
        buf = &buf[skip..];
        let Ok(size) = usize::try_from(size) else {
            return Dechunk::Bad(Reject {
                status: 413,
                reason: TOO_LARGE,
            });
        };
        if size > max.saturating_sub(body.len()) {
            return Dechunk::Bad(Reject {
                status: 413,
                reason: TOO_LARGE,
            });
        }
        if size == 0 {
            // Trailer section: zero or more header lines, then an empty line.
            loop {
                let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                    return Dechunk::Partial;
                };
                let line_empty = eol == 0;
                buf = &buf[eol + 2..];
                if line_empty {
                    return Dechunk::Done(body, start_len - buf.len());
                }
                if start_len - buf.len() > framed_max {
                    return Dechunk::Bad(Reject {
                        status: 413,
                        reason: "chunked body framing too large",
                    });
                }
            }
        }
        if buf.len() < size + 2 {
            return Dechunk::Partial;
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Dechunk::Bad(Reject {
                status: 400,
                reason: "malformed chunked body",
            });
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

/// The content type of plain-text answers.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Appends a complete plain-text response to `out`.
///
/// `http10_style` writes the demo server's reply line (`HTTP/1.0 200 ` with an empty reason).
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    body_parts: &[&[u8]],
    keep_alive: bool,
    http10_style: bool,
) {
    write_response_as(
        out,
        status,
        TEXT_PLAIN,
        &[],
        body_parts,
        keep_alive,
        http10_style,
    );
}

/// Appends a complete response to `out` with the given content type and extra header lines
/// (`(name, value)`, written as given).
///
/// `http10_style` writes the demo server's reply line (`HTTP/1.0 200 ` with an empty reason)
/// and, like the demo, no content type.
pub fn write_response_as(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body_parts: &[&[u8]],
    keep_alive: bool,
    http10_style: bool,
) {
    let len: usize = body_parts.iter().map(|p| p.len()).sum();
    if http10_style {
        out.extend_from_slice(b"HTTP/1.0 ");
        push_num(out, status as usize);
        out.extend_from_slice(b" \r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_num(out, status as usize);
        out.push(b' ');
        out.extend_from_slice(reason_phrase(status).as_bytes());
        out.extend_from_slice(b"\r\ncontent-type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra_headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    push_num(out, len);
    out.extend_from_slice(b"\r\n");
    if !keep_alive && !http10_style {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    for p in body_parts {
        out.extend_from_slice(p);
    }
}

fn push_num(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The standard reason phrase for the statuses this service sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_body_bytes: 1024,
        max_header_bytes: 256,
    };

    fn complete(buf: &[u8]) -> (Vec<u8>, usize, bool, Method) {
        match parse(buf, L) {
            Parsed::Complete(r, n) => (r.body.as_bytes().to_vec(), n, r.keep_alive, r.method),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn content_length_body() {
        let buf = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloNEXT";
        let (body, n, ka, m) = complete(buf);
        assert_eq!(body, b"hello");
        assert_eq!(n, buf.len() - 4);
        assert!(ka);
        assert_eq!(m, Method::Post);
    }

    #[test]
    fn partial_and_limits() {
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe", L),
            Parsed::Incomplete {
                head_done: true,
                need_total: Some(43),
                ..
            }
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", L),
            Parsed::Rejected(Reject { status: 413, .. })
        ));
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(300));
        assert!(matches!(
            parse(long.as_bytes(), L),
            Parsed::Rejected(Reject { status: 431, .. })
        ));
        assert!(matches!(
            parse(b"BREW / HTTP/1.1\r\n\r\n", L),
            Parsed::Rejected(Reject { status: 400, .. })
        ));
        assert!(matches!(
            parse(b"\x00\x01garbage\r\n\r\n", L),
            Parsed::Rejected(Reject { status: 400, .. })
        ));
    }

    #[test]
    fn chunked_and_keep_alive_rules() {
        let buf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (body, n, _, _) = complete(buf);
        assert_eq!(body, b"abcde");
        assert_eq!(n, buf.len());
        let (_, _, ka, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!ka);
        let (_, _, ka, _) = complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(ka);
        let (_, _, ka, _) = complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!ka);
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        write_response(&mut out, 200, &[b"echo: ", b"hi"], true, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 8\r\n\r\necho: hi"
        );
        out.clear();
        write_response(&mut out, 200, &[b"echo: "], false, true);
        assert_eq!(out, b"HTTP/1.0 200 \r\ncontent-length: 6\r\n\r\necho: ");
    }
}
