//! The listener's limits, over real TCP connections to [`serve`]: half-sent heads, slow
//! bodies and idle keep-alive connections are closed; a request in flight is not idle; at the
//! cap, connections wait.

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const SHORT: Duration = Duration::from_millis(300);

fn config(max_connections: Option<usize>) -> ServerConfig {
    ServerConfig {
        header_read_timeout: SHORT,
        body_read_timeout: SHORT,
        idle_timeout: SHORT,
        max_connections,
        shutdown_timeout: SHORT * 10,
        h2c: false,
    }
}

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SHORT * 4).await;
                "done"
            }),
        )
        // Answers without reading the body, as a refusal does.
        .route("/refuse", post(|| async { http::StatusCode::UNAUTHORIZED }))
        .route(
            "/echo",
            // The HTTP layer maps a `BodyTimeout` to 408 (`ApiError::BodyTimeout`); this
            // module sits below it, so the test handler finds it the same way.
            post(|body: axum::body::Body| async move {
                match axum::body::to_bytes(body, 1024).await {
                    Ok(b) => b.len().to_string().into_response(),
                    Err(e) => {
                        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                        while let Some(s) = source {
                            if s.is::<BodyTimeout>() {
                                return (http::StatusCode::REQUEST_TIMEOUT, "40801")
                                    .into_response();
                            }
                            source = s.source();
                        }
                        http::StatusCode::BAD_REQUEST.into_response()
                    }
                }
            }),
        )
}

/// Starts [`serve`] on a free port; returns its address.
async fn start(config: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { serve(listener, router(), &config, None, std::future::pending()).await },
    );
    addr
}

/// Reads until the peer closes (or `within` passes: `None`).
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&out).into_owned()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Some(String::from_utf8_lossy(&out).into_owned())
        }
        Ok(Err(e)) => panic!("read: {e}"),
        Err(_) => None,
    }
}

/// Reads one answer (up to its blank line and a short body) without waiting for a close.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn listener_half_sent_head_closed_after_header_timeout_ok() {
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let closed = read_to_close(&mut s, SHORT * 10).await;
    assert!(
        closed.is_some(),
        "a half-sent head must not hold the connection"
    );
}

#[tokio::test]
async fn listener_silent_connection_closed_ok() {
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(read_to_close(&mut s, SHORT * 10).await.is_some());
}

#[tokio::test]
async fn listener_slow_body_answered_408_and_closed_ok() {
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        .await
        .unwrap();
    let answer = read_to_close(&mut s, SHORT * 10).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("40801"), "{answer}");
}

#[tokio::test]
async fn listener_idle_keep_alive_closed_ok() {
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
    // Nothing more: closed after the idle timeout.
    assert!(read_to_close(&mut s, SHORT * 10).await.is_some());
}

#[tokio::test]
async fn listener_request_in_flight_not_idle_ok() {
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The answer takes 4 idle timeouts: the connection stays.
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    // A keep-alive connection in use is not idle either.
    for _ in 0..3 {
        tokio::time::sleep(SHORT / 3).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn listener_connection_cap_waits_ok() {
    let mut long = config(Some(2));
    long.header_read_timeout = Duration::from_secs(30);
    long.idle_timeout = Duration::from_secs(30);
    let addr = start(long).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // The third waits in the backlog: no answer while two connections are held.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0; 64];
    assert!(
        tokio::time::timeout(SHORT * 2, third.read(&mut buf))
            .await
            .is_err(),
        "answered beyond the cap"
    );
    drop(held.pop());
    assert!(read_answer(&mut third).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn listener_shutdown_finishes_requests_in_flight_ok() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(listener, router(), &config(None), None, async {
            let _ = stopped.await;
        })
        .await;
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(SHORT).await;
    stop.send(()).unwrap();
    let answer = read_to_close(&mut s, Duration::from_secs(5))
        .await
        .expect("closed after the answer");
    assert!(answer.ends_with("done"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn listener_shutdown_bounded_by_timeout_ok() {
    // A request that outlives server.shutdown_timeout_ms: serve returns anyway, and the
    // client gets no answer (never a 2xx for work that did not finish).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = Router::new().route("/forever", get(std::future::pending::<&'static str>));
    let server = tokio::spawn(async move {
        let config = ServerConfig {
            shutdown_timeout: SHORT,
            ..config(None)
        };
        serve(listener, router, &config, None, async {
            let _ = stopped.await;
        })
        .await;
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(SHORT).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns after the shutdown timeout")
        .unwrap();
}

#[test]
fn server_config_default_cap_from_open_file_limit_ok() {
    assert_eq!(default_cap(Some(128)), 96);
    assert_eq!(default_cap(Some(1024)), 768);
    assert_eq!(default_cap(Some(8)), 16);
    assert_eq!(default_cap(None), 750_000);
    let c = ServerConfig::default();
    assert!(c.validate().is_ok());
    assert!(
        ServerConfig {
            idle_timeout: Duration::ZERO,
            ..c
        }
        .validate()
        .is_err()
    );
    assert!(
        ServerConfig {
            max_connections: Some(0),
            ..c
        }
        .validate()
        .is_err()
    );
    assert!(
        ServerConfig {
            shutdown_timeout: Duration::ZERO,
            ..c
        }
        .validate()
        .is_err()
    );
}

#[tokio::test]
async fn listener_keep_alive_outlives_header_timeout_ok() {
    // hyper's own header timeout also runs while a keep-alive connection waits for its next
    // request, which would cut every idle connection at the header timeout (10 s) instead of
    // `idle_timeout_ms`, under a load balancer that keeps connections for 60 s.
    let mut c = config(None);
    c.idle_timeout = Duration::from_secs(30);
    let addr = start(c).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(SHORT * 3).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
    // A second head that stops half-way is still cut at the header timeout.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(read_to_close(&mut s, SHORT * 10).await.is_some());
}

#[tokio::test]
async fn listener_answer_before_small_body_keeps_connection_ok() {
    // The answer is ready before the body arrives: the listener reads the small body before
    // sending it, so the client gets its answer whole and the connection carries on (hyper
    // would otherwise close an HTTP/1.1 connection, and reset an HTTP/2 stream mid-upload).
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"hello").await.unwrap();
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 401"));
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn listener_answer_before_large_body_not_waited_for_ok() {
    // A body above the drain limit is not read: the answer goes out at once.
    let addr = start(config(None)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 401"));
}

/// A self-signed certificate for `localhost` in `dir`, and TLS on it with HSTS.
fn tls_in(dir: &std::path::Path) -> (Arc<Tls>, rcgen::Certificate) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let config = tls::TlsConfig {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
        reload_check: Duration::from_secs(60),
        hsts_max_age_secs: Some(600),
        client_auth: None,
    };
    (Arc::new(Tls::load(&config).unwrap()), cert)
}

#[tokio::test]
async fn listener_tls_http1_with_hsts_and_silent_handshake_closed_ok() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, cert) = tls_in(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = config(None);
    tokio::spawn(async move {
        serve(
            listener,
            router(),
            &server,
            Some(tls),
            std::future::pending(),
        )
        .await;
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=600"),
        "{answer}"
    );

    // A client that connects and never starts the handshake is closed at the head clock.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(read_to_close(&mut silent, SHORT * 10).await.is_some());
}
