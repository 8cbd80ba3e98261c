//! `fetch-probe`: a `wasi:http/proxy` guest that tries to reach another server.
//!
//! `GET /fetch?url=http://IP:PORT/PATH` makes one outgoing `GET` to that URL through
//! `wasi:http/outgoing-handler` and answers `200` with the fetched body, or `502` with the
//! error (`ErrorCode::HttpRequestDenied` when the host refuses the request). `GET /healthz`
//! answers `200 ok`; anything else `404`.
//!
//! Build: `cargo build -p wasmbench-fetch-probe --target wasm32-wasip2` →
//! `wasmbench_fetch_probe.wasm`. On other targets the crate is empty.
#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod component {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        Fields, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
        OutgoingResponse, ResponseOutparam, Scheme,
    };
    use wasi::io::streams::StreamError;

    /// Largest upstream body kept; the tests fetch a few bytes.
    const MAX_BODY: usize = 1 << 20;

    struct Probe;

    wasi::http::proxy::export!(Probe);

    impl Guest for Probe {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let target = request.path_with_query().unwrap_or_else(|| "/".into());
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let (status, body) = match (request.method(), path) {
                (Method::Get, "/healthz") => (200, b"ok".to_vec()),
                (Method::Get, "/fetch") => match query_param(query, "url") {
                    Some(url) => match fetch(&url) {
                        Ok(body) => (200, body),
                        Err(e) => (502, e.into_bytes()),
                    },
                    None => (400, b"missing url parameter".to_vec()),
                },
                _ => (404, b"not found".to_vec()),
            };
            send(out, status, &body);
        }
    }

    /// The value of `name` in a query string, percent-decoded.
    fn query_param(query: &str, name: &str) -> Option<String> {
        let raw = query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?;
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }

    /// One `GET` to `url` (`http://authority/path` or `https://…`); the body, or why not.
    fn fetch(url: &str) -> Result<Vec<u8>, String> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(format!("not an http(s) URL: {url}"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let req = OutgoingRequest::new(Fields::new());
        let set = req
            .set_method(&Method::Get)
            .and(req.set_scheme(Some(&scheme)))
            .and(req.set_authority(Some(authority)))
            .and(req.set_path_with_query(Some(path)));
        if set.is_err() {
            return Err(format!("the host refused the URL {url}"));
        }
        let pending = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(format!("{e:?}")),
            Some(Err(())) => return Err("the response was already taken".into()),
            None => return Err("no response after the pollable was ready".into()),
        };
        read_body(response)
    }

    fn read_body(response: IncomingResponse) -> Result<Vec<u8>, String> {
        let body = response
            .consume()
            .map_err(|()| "the response has no body".to_string())?;
        let stream = body
            .stream()
            .map_err(|()| "the response body has no stream".to_string())?;
        let mut buf = Vec::new();
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) if buf.len() + chunk.len() > MAX_BODY => {
                    return Err("the response body is too large".into());
                }
                Ok(chunk) => buf.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!(
                        "reading the response body: {}",
                        e.to_debug_string()
                    ));
                }
            }
        }
        Ok(buf)
    }

    fn send(out: ResponseOutparam, status: u16, body: &[u8]) {
        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"text/plain".to_vec()),
            (
                "content-length".to_string(),
                body.len().to_string().into_bytes(),
            ),
        ])
        .unwrap_or_else(|_| Fields::new());
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(status);
        let Ok(out_body) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = out_body.write() {
            // `blocking_write_and_flush` takes at most 4096 bytes per call.
            for chunk in body.chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    return;
                }
            }
            drop(stream);
        }
        let _ = OutgoingBody::finish(out_body, None);
    }
}
