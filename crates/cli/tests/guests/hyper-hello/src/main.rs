//! `hyper-hello`: a small HTTP service on hyper and a multi-threaded tokio runtime, written
//! the way a user's own service would be, to test bringing one's own service to `compare`.
//!
//! `GET /` answers `<GREETING> from hyper` (`GREETING` from the environment, default `hello`),
//! `GET /health` answers `ok`, anything else `404`. Port: `--port N`, else `PORT`. With
//! `CLOSE=1` every response carries `Connection: close`, so hyper closes each connection after
//! one request. It prints nothing when it is ready.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

fn port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let text = match (args.next().as_deref(), args.next()) {
        (Some("--port"), Some(p)) => p,
        (None, _) => std::env::var("PORT").map_err(|_| "give --port N or PORT".to_string())?,
        _ => return Err("usage: hyper-hello [--port N]".into()),
    };
    text.parse().map_err(|e| format!("bad port {text:?}: {e}"))
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    greeting: &str,
    close: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/" => (StatusCode::OK, format!("{greeting} from hyper\n")),
        "/health" => (StatusCode::OK, "ok\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    let mut r = Response::builder().status(status);
    if close {
        r = r.header("connection", "close");
    }
    Ok(r.body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid"))
}

fn main() -> std::process::ExitCode {
    let port = match port() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hyper-hello: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let greeting: &'static str = std::env::var("GREETING")
        .unwrap_or_else(|_| "hello".into())
        .leak();
    let close = std::env::var("CLOSE").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    rt.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hyper-hello: cannot listen on {addr}: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, greeting, close));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
