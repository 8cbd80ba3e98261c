//! What the service answers: the routes, independent of how bytes reach it.

use crate::http::{Method, Request, write_response};

/// Appends the response to `req` to `out`. `keep_alive` is what the connection will do after
/// this response; `seed` selects the demo server's reply format.
pub fn respond(req: &Request<'_>, out: &mut Vec<u8>, keep_alive: bool, seed: bool) {
    let path = req.target.split('?').next().unwrap_or("/");
    match (req.method, path) {
        (Method::Get, "/healthz") => write_response(out, 200, &[b"ok"], keep_alive, seed),
        // The demo's server echoed whatever arrived, whatever the path: keep that.
        (_, _) => write_response(
            out,
            200,
            &[b"echo: ", req.body.as_bytes()],
            keep_alive,
            seed,
        ),
    }
}
