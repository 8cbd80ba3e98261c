//! https against a local rustls server with a self-signed certificate (trusted through the
//! plan's CA file): TLS handshake time is measured on new connections only.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmbench_load::{ConnectionMode, RunOptions, run};

/// Starts a keep-alive HTTPS server answering `ok`; returns its address and the CA PEM file.
fn tls_server() -> (SocketAddr, tempfile::NamedTempFile) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let mut pem = tempfile::NamedTempFile::new().expect("temp file");
    pem.write_all(ck.cert.pem().as_bytes()).expect("write pem");
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = std_listener.local_addr().expect("address");
    std_listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            // Bounded: far more connections than any test opens.
            for _ in 0..100_000 {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let close = String::from_utf8_lossy(&buf[..pos])
                            .to_ascii_lowercase()
                            .contains("connection: close");
                        buf.drain(..pos + 4);
                        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if s.write_all(r).await.is_err() || s.flush().await.is_err() || close {
                            let _ = s.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
    });
    (addr, pem)
}

fn tls_plan(
    addr: SocketAddr,
    ca: &tempfile::NamedTempFile,
    mode: ConnectionMode,
) -> wasmbench_load::Plan {
    let mut p = plan(format!("https://{addr}/"), 2, 0.7);
    p.connection_mode = mode;
    p.tls.ca_file = Some(ca.path().to_path_buf());
    p.checks = vec![wasmbench_load::Check::parse("body contains ok").unwrap()];
    p
}

#[test]
fn tls_handshake_is_timed_on_new_connections_only() {
    let (addr, ca) = tls_server();
    let s = rt()
        .block_on(run(
            &tls_plan(addr, &ca, ConnectionMode::KeepAlive),
            RunOptions::default(),
        ))
        .expect("run");
    let c = &s.counters;
    assert!(c.http_reqs > 10, "{c:?}");
    assert_eq!(c.http_req_failed, 0, "{c:?}");
    assert_eq!(c.connections_opened, 2);
    assert_eq!(s.checks_total(), (c.http_reqs, 0));
    let tls = s.trend("http_req_tls_handshaking").unwrap();
    assert!(tls.max_ms > 0.0 && tls.med_ms == 0.0, "{tls:?}");
    // blocked covers connect + handshake on the first request of each VU.
    assert!(s.trend("http_req_blocked").unwrap().max_ms >= tls.max_ms);

    let s = rt()
        .block_on(run(
            &tls_plan(addr, &ca, ConnectionMode::NewConnectionPerRequest),
            RunOptions::default(),
        ))
        .expect("run");
    assert_eq!(s.counters.http_req_failed, 0, "{:?}", s.counters);
    assert_eq!(s.counters.connections_opened, s.counters.http_reqs);
    let tls = s.trend("http_req_tls_handshaking").unwrap();
    assert!(tls.min_ms > 0.0, "{tls:?}");
}

#[test]
fn untrusted_certificate_fails_the_requests() {
    let (addr, _ca) = tls_server();
    let mut p = plan(format!("https://{addr}/"), 1, 0.3);
    p.timeout = std::time::Duration::from_secs(2);
    let s = rt().block_on(run(&p, RunOptions::default())).expect("run");
    assert!(s.counters.http_reqs > 0);
    assert_eq!(s.counters.http_req_failed, s.counters.http_reqs);
    assert_eq!(
        s.counters.errors["other"], s.counters.http_reqs,
        "{:?}",
        s.counters
    );
}
