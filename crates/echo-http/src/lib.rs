//! The wasmbench workload as a `wasi:http/proxy` component.
//!
//! Same behaviour as the socket build (`wasmbench-echo`): `POST` to any path answers
//! `echo: <body>`, `GET` answers `echo: ` (plus any body sent), `GET /healthz` answers `ok`,
//! other methods get `400`, a body over [`MAX_BODY_BYTES`] gets `413`. The host owns the
//! connection (keep-alive, framing, timeouts), so only the routes live here.
//!
//! Build: `cargo build -p wasmbench-echo-http --profile artifact --target wasm32-wasip2` →
//! `target/wasm32-wasip2/artifact/wasmbench_echo_http.wasm`. Besides `wasi:http` and `wasi:io`
//! it imports what the Rust standard library pulls in, including `wasi:cli/environment`, which is
//! outside the proxy world: `wasmtime serve` needs `-S cli=y` for it. On other targets the crate
//! only exports the constants below.
#![deny(missing_docs)]

/// Largest accepted request body, as in the socket build's default (`ECHO_MAX_BODY`).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Body of the `400` answer to a method other than GET or POST (same text as the socket build).
pub const BAD_METHOD: &str = "unsupported method: use GET or POST";

/// Body of the `413` answer.
pub const TOO_LARGE: &str = "request body too large";

#[cfg(target_arch = "wasm32")]
mod component {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{
        Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };
    use wasi::io::streams::StreamError;

    use super::{BAD_METHOD, MAX_BODY_BYTES, TOO_LARGE};

    struct Echo;

    wasi::http::proxy::export!(Echo);

    /// Why the body could not be read.
    enum BodyError {
        TooLarge,
        Broken,
    }

    impl Guest for Echo {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let (status, parts): (u16, [&[u8]; 2]) = match request.method() {
                Method::Get | Method::Post => {
                    let path = request.path_with_query().unwrap_or_default();
                    let path = path.split('?').next().unwrap_or("/");
                    if matches!(request.method(), Method::Get) && path == "/healthz" {
                        send(out, 200, &[b"ok", b""]);
                        return;
                    }
                    match read_body(&request) {
                        Ok(body) => {
                            send(out, 200, &[b"echo: ", &body]);
                            return;
                        }
                        Err(BodyError::TooLarge) => (413, [TOO_LARGE.as_bytes(), b""]),
                        Err(BodyError::Broken) => (400, [b"malformed request".as_slice(), b""]),
                    }
                }
                _ => (400, [BAD_METHOD.as_bytes(), b""]),
            };
            send(out, status, &parts);
        }
    }

    fn declared_length(request: &IncomingRequest) -> Option<usize> {
        let values = request.headers().get("content-length");
        let v = values.first()?;
        std::str::from_utf8(v).ok()?.trim().parse().ok()
    }

    fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, BodyError> {
        let declared = declared_length(request);
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            // Refuse before reading, as the socket build does.
            return Err(BodyError::TooLarge);
        }
        let body = request.consume().map_err(|()| BodyError::Broken)?;
        let stream = body.stream().map_err(|()| BodyError::Broken)?;
        let mut buf = Vec::with_capacity(declared.unwrap_or(0));
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => {
                    if buf.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(BodyError::TooLarge);
                    }
                    buf.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => return Err(BodyError::Broken),
            }
        }
        drop(stream);
        let _trailers = IncomingBody::finish(body);
        Ok(buf)
    }

    fn send(out: ResponseOutparam, status: u16, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let headers = Fields::from_list(&[
            (
                "content-type".to_string(),
                b"text/plain; charset=utf-8".to_vec(),
            ),
            ("content-length".to_string(), len.to_string().into_bytes()),
        ])
        .unwrap_or_else(|_| Fields::new());
        let response = OutgoingResponse::new(headers);
        // Every status used here is valid, so this cannot fail.
        let _ = response.set_status_code(status);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            for part in parts {
                // `blocking_write_and_flush` takes at most 4096 bytes per call.
                for chunk in part.chunks(4096) {
                    if stream.blocking_write_and_flush(chunk).is_err() {
                        return;
                    }
                }
            }
            drop(stream);
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
