//! The `wasi:http` guest's outbound policy: deny by default, and send a request only when its
//! URI names, literally, an `IP:port` of the allow-list (`--allow-outbound`), so allowing a
//! request never sends a DNS query.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::error::RuntimeError;

/// Parses one `--allow-outbound` value: an IP address and port (`127.0.0.1:8080`,
/// `[::1]:8080`). Host names are refused rather than resolved, so the allow-list means exactly
/// the addresses it names and allowing a request never sends a DNS query.
pub fn parse_outbound_authority(s: &str) -> Result<SocketAddr, RuntimeError> {
    let s = s.trim();
    let bad = |why: &str| {
        RuntimeError::Config(format!(
            "--allow-outbound {s:?}: {why}; give IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
        ))
    };
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() == 0 => Err(bad("port 0 is not an address a request can reach")),
        Ok(a) => Ok(a),
        Err(_) if s.parse::<IpAddr>().is_ok() => Err(bad("the port is missing")),
        Err(_) => match s.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty()
                    && host.parse::<IpAddr>().is_err()
                    && port.parse::<u16>().is_ok() =>
            {
                Err(bad(
                    "host names are not allowed (the host does no DNS lookups for guests)",
                ))
            }
            _ => Err(bad("not an IP address and port")),
        },
    }
}

/// The address an outgoing request's URI names, when it names one literally: `IP` or
/// `IP:port` (the port defaulting to 80, or 443 for `https`, as the default sender does).
/// `None` for host names and for authorities with user information, which the default sender
/// would hand to the resolver.
pub fn outbound_target(uri: &http::Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = authority
        .port_u16()
        .unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        });
    Some(SocketAddr::new(ip, port))
}

/// Whether the host sends an outgoing request to `uri`: only when it names, literally, one of
/// the `allowed` addresses.
pub fn outbound_allowed(allowed: &[SocketAddr], uri: &http::Uri) -> bool {
    outbound_target(uri).is_some_and(|a| allowed.contains(&a))
}

/// The `wasi:http` hooks of every instance: outgoing requests go through wasmtime-wasi-http's
/// default sender only when [`outbound_allowed`]; the others fail with `HTTP-request-denied`
/// before any connection or DNS lookup is attempted.
pub(super) struct OutboundPolicy {
    /// The addresses requests may go to.
    pub(super) allow: Arc<[SocketAddr]>,
}

/// The I/O half of a sent request, as `WasiHttpHooks::send_request` spells it.
type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

/// What `WasiHttpHooks::send_request` returns.
type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
        + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        if outbound_allowed(&self.allow, request.uri()) {
            return wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        }
        Box::new(std::future::ready(Err(
            wasmtime_wasi_http::Error::HttpRequestDenied,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_values_are_ip_and_port_only() {
        assert_eq!(
            parse_outbound_authority(" 10.0.0.1:80 ").unwrap(),
            "10.0.0.1:80".parse().unwrap()
        );
        for (bad, why) in [
            ("localhost:8080", "host names are not allowed"),
            ("example.com:80", "host names are not allowed"),
            ("127.0.0.1", "port is missing"),
            ("::1", "port is missing"),
            ("127.0.0.1:0", "port 0"),
            // An IPv6 address without brackets reads as an address without a port.
            ("::1:8080", "port is missing"),
            ("127.0.0.1:http", "not an IP address and port"),
            ("", "not an IP address and port"),
        ] {
            let e = parse_outbound_authority(bad).unwrap_err();
            assert!(matches!(e, RuntimeError::Config(_)), "{bad}: {e:?}");
            let e = e.to_string();
            assert!(e.contains(why) && !e.contains('\n'), "{bad}: {e}");
        }
        // An address as `SocketAddr` prints it is a value the flag takes back unchanged.
        for a in ["127.0.0.1:9000", "[::1]:9001"] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(parse_outbound_authority(&addr.to_string()).unwrap(), addr);
        }
    }

    #[test]
    fn only_literal_allowed_authorities_pass() {
        let allowed: Vec<SocketAddr> = vec![
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
            "[::1]:443".parse().unwrap(),
        ];
        let ok = |u: &str| outbound_allowed(&allowed, &u.parse().unwrap());
        assert!(ok("http://127.0.0.1:8080/x?y=1"));
        assert!(ok("http://127.0.0.1/"));
        assert!(ok("https://[::1]/"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("https://127.0.0.1/"));
        assert!(!ok("http://localhost:8080/"));
        assert!(!ok("http://user@127.0.0.1:8080/"));
        assert!(!ok("http://127.1:8080/"));
        assert!(!ok("/relative"));
        assert!(!outbound_allowed(
            &[],
            &"http://127.0.0.1:8080/".parse().unwrap()
        ));
    }
}
