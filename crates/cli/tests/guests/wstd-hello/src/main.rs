//! `wstd-hello`: a `wasi:http/proxy` component written with `wstd`, as a user's own Wasm
//! service would be, to test bringing one's own service to `compare`.
//!
//! `GET /` answers `<GREETING> from wstd, <name>`: `GREETING` from its environment (default
//! `hello`), `<name>` read from `/data/name.txt`, so it answers `500` unless the host gave it
//! that directory. `GET /health` answers `ok`, anything else `404`.

#[cfg(target_arch = "wasm32")]
#[wstd::http_server]
async fn main(
    request: wstd::http::Request<wstd::http::body::Body>,
) -> Result<wstd::http::Response<wstd::http::body::Body>, wstd::http::Error> {
    let (status, body) = match request.uri().path() {
        "/" => match std::fs::read_to_string("/data/name.txt") {
            Ok(name) => {
                let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello".into());
                (200, format!("{greeting} from wstd, {}\n", name.trim()))
            }
            Err(e) => (500, format!("cannot read /data/name.txt: {e}\n")),
        },
        "/health" => (200, "ok\n".to_string()),
        _ => (404, "not found\n".to_string()),
    };
    let mut response = wstd::http::Response::new(body.into());
    *response.status_mut() =
        wstd::http::StatusCode::from_u16(status).expect("the statuses above are valid");
    Ok(response)
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("wstd-hello: build it with `--target wasm32-wasip2`");
    std::process::exit(2);
}
