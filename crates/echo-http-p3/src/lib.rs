//! The wasmbench workload as a `wasi:http@0.3.0` service component (WASI 0.3, async).
//!
//! The same service as `wasmbench-echo-http` (a `wasi:http@0.2` proxy component), exported
//! through the async `wasi:http/handler@0.3.0` `handle` function instead. Every answer comes from
//! the same code ([`wasmbench_echo::app::route`]) and the same limits and texts
//! ([`wasmbench_echo::http::MAX_BODY_BYTES`], [`wasmbench_echo::http::BAD_METHOD`],
//! [`wasmbench_echo::http::TOO_LARGE`]), so both components answer byte for byte alike: same
//! status, `content-type`, `content-length` and `allow` headers and body for every route, `400`
//! for a method other than GET or POST, `413` for a body over the limit (refused before reading
//! when `content-length` says so). `GET /sleep?ms=N` waits with the 0.3 monotonic clock's
//! `wait-for` inside the handler: only this request's task is suspended, and since a WASI 0.3
//! host may run several requests concurrently in one instance, the others keep being served.
//!
//! Build: `cargo build -p wasmbench-echo-http-p3 --profile artifact --target wasm32-wasip2` →
//! `target/wasm32-wasip2/artifact/wasmbench_echo_http_p3.wasm`. It targets the `wasi:http/service`
//! world of `wasi:http@0.3.0` as Wasmtime 48 serves it (`wasmtime serve -S p3=y`, the default
//! there). Like the 0.2 component it also imports what the Rust standard library pulls in
//! (`wasi:cli/environment@0.2` and friends), so `wasmtime serve` needs `-S cli=y`. On other
//! targets the crate is empty.
//!
//! The component exports only `wasi:http/handler@0.3.0`: it depends on `wasmbench-echo`, not on
//! the 0.2 component, whose `#[no_mangle]` export a cdylib would otherwise link in as well.
#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod component {
    use wasip3::clocks::monotonic_clock;
    use wasip3::exports::http::handler::Guest;
    use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response};
    use wasip3::wit_bindgen::StreamResult;
    use wasip3::{wit_future, wit_stream};
    use wasmbench_echo::app::route;
    use wasmbench_echo::http::{
        BAD_METHOD, MAX_BODY_BYTES, Method as EchoMethod, TEXT_PLAIN, TOO_LARGE,
    };

    struct Echo;

    wasip3::http::service::export!(Echo);

    /// Why the body could not be read.
    enum BodyError {
        TooLarge,
        Broken,
    }

    impl Guest for Echo {
        async fn handle(request: Request) -> Result<Response, ErrorCode> {
            let method = match request.get_method() {
                Method::Get => EchoMethod::Get,
                Method::Post => EchoMethod::Post,
                _ => return Ok(respond(400, TEXT_PLAIN, None, BAD_METHOD.into())),
            };
            let target = request.get_path_with_query().unwrap_or_else(|| "/".into());
            let body = match read_body(request).await {
                Ok(body) => body,
                Err(BodyError::TooLarge) => {
                    return Ok(respond(413, TEXT_PLAIN, None, TOO_LARGE.into()));
                }
                Err(BodyError::Broken) => {
                    return Ok(respond(
                        400,
                        TEXT_PLAIN,
                        None,
                        b"malformed request".to_vec(),
                    ));
                }
            };
            let answer = route(method, &target, &body);
            if let Some(delay) = answer.delay.filter(|d| !d.is_zero()) {
                // Suspends this request's task only; the instance keeps serving other requests.
                let ns = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
                monotonic_clock::wait_for(ns).await;
            }
            Ok(respond(
                answer.status,
                answer.content_type,
                answer.allow,
                answer.body.to_vec(),
            ))
        }
    }

    fn declared_length(request: &Request) -> Option<usize> {
        let values = request.get_headers().get("content-length");
        let v = values.first()?;
        std::str::from_utf8(v).ok()?.trim().parse().ok()
    }

    async fn read_body(request: Request) -> Result<Vec<u8>, BodyError> {
        let declared = declared_length(&request);
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            // Refuse before reading, as the socket build does.
            return Err(BodyError::TooLarge);
        }
        // Nothing to report to the host about the body: the writer, dropped here, sends `Ok(())`.
        let (_, result) = wit_future::new(|| Ok(()));
        let (mut contents, trailers) = Request::consume_body(request, result);
        let mut buf = Vec::with_capacity(declared.unwrap_or(0));
        loop {
            // A read fills the spare capacity: keep it to one chunk and stop one byte past the
            // limit, so an undeclared body over the limit is never buffered whole.
            let room = (MAX_BODY_BYTES + 1 - buf.len()).min(64 << 10);
            if buf.capacity() == buf.len() {
                buf.reserve_exact(room);
            }
            let (status, filled) = contents.read(buf).await;
            buf = filled;
            if buf.len() > MAX_BODY_BYTES {
                return Err(BodyError::TooLarge);
            }
            match status {
                StreamResult::Complete(_) => {}
                StreamResult::Dropped => break,
                StreamResult::Cancelled => return Err(BodyError::Broken),
            }
        }
        drop(contents);
        // The stream only ends; whether the whole body arrived is told by the trailers' future.
        match trailers.await {
            Ok(_trailers) => Ok(buf),
            Err(_) => Err(BodyError::Broken),
        }
    }

    fn respond(status: u16, content_type: &str, allow: Option<&str>, body: Vec<u8>) -> Response {
        let mut headers = vec![
            ("content-type".to_string(), content_type.as_bytes().to_vec()),
            (
                "content-length".to_string(),
                body.len().to_string().into_bytes(),
            ),
        ];
        if let Some(methods) = allow {
            headers.push(("allow".to_string(), methods.as_bytes().to_vec()));
        }
        let headers = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
        let contents = if body.is_empty() {
            // `none` is a zero-length body.
            None
        } else {
            let (mut tx, rx) = wit_stream::new();
            // The host reads the body only once `handle` has returned the response, so the write
            // runs in a task of its own that outlives the call. If the client is gone, the rest
            // of the body is dropped.
            wasip3::spawn_local(async move {
                let _unsent = tx.write_all(body).await;
            });
            Some(rx)
        };
        // No trailers: the writer's default, `Ok(None)`, is sent when it is dropped.
        let (trailers_tx, trailers) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, contents, trailers);
        drop(trailers_tx);
        // Every status used here is valid, so this cannot fail.
        let _ = response.set_status_code(status);
        response
    }
}
