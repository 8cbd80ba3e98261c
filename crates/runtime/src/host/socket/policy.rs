//! The wasip2 socket guest's network policy.

use std::net::{IpAddr, SocketAddr};

use wasmtime_wasi::sockets::SocketAddrUse;

/// The wasip2 guest's network policy: it may bind and listen on the configured address only
/// (any port when the configured port is 0) and accept clients; it may not connect anywhere
/// nor use UDP.
pub fn socket_allowed(host: IpAddr, port: u16, addr: SocketAddr, use_: SocketAddrUse) -> bool {
    match use_ {
        SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => {
            addr.ip() == host && (port == 0 || addr.port() == port)
        }
        SocketAddrUse::TcpAccept => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_bind_only_the_listen_address() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(socket_allowed(
            lo,
            8080,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpBind
        ));
        assert!(socket_allowed(
            lo,
            8080,
            at("127.0.0.1:8080"),
            SocketAddrUse::TcpListen
        ));
        assert!(!socket_allowed(
            lo,
            8080,
            at("127.0.0.1:8081"),
            SocketAddrUse::TcpBind
        ));
        assert!(!socket_allowed(
            lo,
            8080,
            at("0.0.0.0:8080"),
            SocketAddrUse::TcpBind
        ));
        assert!(socket_allowed(
            lo,
            0,
            at("127.0.0.1:40000"),
            SocketAddrUse::TcpListen
        ));
        assert!(socket_allowed(
            lo,
            0,
            at("127.0.0.1:5"),
            SocketAddrUse::TcpAccept
        ));
        for use_ in [
            SocketAddrUse::TcpConnect,
            SocketAddrUse::UdpBind,
            SocketAddrUse::UdpSend,
            SocketAddrUse::UdpReceive,
        ] {
            assert!(!socket_allowed(lo, 0, at("127.0.0.1:8080"), use_));
        }
    }
}
