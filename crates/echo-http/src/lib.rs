//! The wasmbench workload as a `wasi:http/proxy` component.
//!
//! Same answers as the socket build (`wasmbench-echo`), computed by the same code
//! ([`wasmbench_echo::app::route`]): `POST` to any path answers `echo: <body>`, `GET` answers
//! `echo: ` (plus any body sent), `GET /healthz` answers `ok`, and the workload endpoints
//! `POST /hash?rounds=N`, `POST /json`, `GET /alloc?kb=N`, `GET /sleep?ms=N` answer with the
//! same status, content type and body, including the `400` reasons for bad parameters and the
//! `405` with `allow` for the wrong method. Other methods get `400`, a body over
//! [`MAX_BODY_BYTES`] gets `413`. The host owns the connection (keep-alive, framing, timeouts),
//! so only the routes live here. `GET /sleep` waits on a `wasi:clocks` pollable inside the
//! handler: the instance is held for the delay, other requests get instances of their own.
//!
//! Build: `cargo build -p wasmbench-echo-http --profile artifact --target wasm32-wasip2` →
//! `target/wasm32-wasip2/artifact/wasmbench_echo_http.wasm`. Besides `wasi:http` and `wasi:io`
//! it imports what the Rust standard library pulls in, including `wasi:cli/environment`, which is
//! outside the proxy world: `wasmtime serve` needs `-S cli=y` for it. On other targets the crate
//! only re-exports the body limit and refusal texts, which live in [`wasmbench_echo::http`].
#![deny(missing_docs)]

// The body limit and the 400/413 texts, shared with the socket build and the 0.3 component;
// re-exported for the tests that check this component's answers against them.
pub use wasmbench_echo::http::{BAD_METHOD, MAX_BODY_BYTES, TOO_LARGE};

#[cfg(target_arch = "wasm32")]
mod component {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{
        Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };
    use wasi::io::streams::StreamError;
    use wasmbench_echo::app::route;
    use wasmbench_echo::http::{
        BAD_METHOD, MAX_BODY_BYTES, Method as EchoMethod, TEXT_PLAIN, TOO_LARGE,
    };

    struct Echo;

    wasi::http::proxy::export!(Echo);

    /// Why the body could not be read.
    enum BodyError {
        TooLarge,
        Broken,
    }

    impl Guest for Echo {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let method = match request.method() {
                Method::Get => EchoMethod::Get,
                Method::Post => EchoMethod::Post,
                _ => return send(out, 400, TEXT_PLAIN, None, &[BAD_METHOD.as_bytes()]),
            };
            let target = request.path_with_query().unwrap_or_else(|| "/".into());
            let body = match read_body(&request) {
                Ok(body) => body,
                Err(BodyError::TooLarge) => {
                    return send(out, 413, TEXT_PLAIN, None, &[TOO_LARGE.as_bytes()]);
                }
                Err(BodyError::Broken) => {
                    return send(out, 400, TEXT_PLAIN, None, &[b"malformed request"]);
                }
            };
            let answer = route(method, &target, &body);
            if let Some(delay) = answer.delay.filter(|d| !d.is_zero()) {
                // Blocks this handler only: the host runs other requests in other instances.
                let ns = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
                wasi::clocks::monotonic_clock::subscribe_duration(ns).block();
            }
            send(
                out,
                answer.status,
                answer.content_type,
                answer.allow,
                &answer.body.parts(),
            );
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

    fn send(
        out: ResponseOutparam,
        status: u16,
        content_type: &str,
        allow: Option<&str>,
        parts: &[&[u8]],
    ) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut headers = vec![
            ("content-type".to_string(), content_type.as_bytes().to_vec()),
            ("content-length".to_string(), len.to_string().into_bytes()),
        ];
        if let Some(methods) = allow {
            headers.push(("allow".to_string(), methods.as_bytes().to_vec()));
        }
        let headers = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
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
