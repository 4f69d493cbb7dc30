//! Kafka over TLS with SASL/SCRAM-SHA-512, end to end: tansu requires SCRAM authentication
//! (`--authentication`, a user created with `tansu user create`) and is reached only through
//! a TLS terminator with a test CA (tansu 0.6 cannot serve TLS itself: its CLI declares
//! `--cert` and `--key` as conflicting). Every hubgate connection, rskafka's and the admin
//! connection's, goes through TLS and SASL; a wrong password or a missing TLS setting fails.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hubgate_server::config::SaslMechanism;
use hubgate_tests::{Broker, Gateway, free_port, http, test_config_toml, token_1h};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

const USER: &str = "hubgate-svc";
const PASSWORD: &str = "correct horse battery staple";

/// A test CA (PEM) and a broker certificate for 127.0.0.1 and localhost signed by it.
fn certificates() -> (String, rustls::ServerConfig) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hubgate test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    (ca.pem(), server)
}

/// Terminates TLS on `listener` and forwards each connection to `broker`; counts handshakes.
fn tls_terminator(
    listener: TcpListener,
    server: rustls::ServerConfig,
    broker: String,
) -> Arc<AtomicUsize> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handshakes);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, broker, counted) =
                (acceptor.clone(), broker.clone(), Arc::clone(&counted));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut upstream) = TcpStream::connect(&broker).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    handshakes
}

fn secure_config(
    bootstrap: &str,
    ca_file: &std::path::Path,
    password: &str,
) -> hubgate_server::Config {
    let mut c = hubgate_server::Config::from_toml(&test_config_toml(bootstrap, "")).unwrap();
    c.kafka.tls = true;
    c.kafka.tls_ca_file = Some(ca_file.to_owned());
    c.kafka.sasl_mechanism = Some(SaslMechanism::ScramSha512);
    c.kafka.sasl_username = Some(USER.into());
    c.kafka.sasl_password = Some(password.to_owned().into());
    c.kafka.request_timeout = std::time::Duration::from_secs(3);
    c.validate().unwrap();
    c
}

#[tokio::test]
async fn kafka_tls_and_scram_ok() {
    // The user exists before authentication is switched on.
    let mut broker = Broker::start();
    broker.tansu(&[
        "user",
        "create",
        "--broker",
        &format!("tcp://{}", broker.bootstrap()),
        "--mechanism",
        "scram512",
        USER,
        PASSWORD,
    ]);
    let tls_port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", tls_port)).await.unwrap();
    broker.restart_with(Some(tls_port), &["--authentication"]);
    let (ca_pem, server) = certificates();
    let handshakes = tls_terminator(listener, server, broker.bootstrap());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let bootstrap = format!("127.0.0.1:{tls_port}");

    let gw = Gateway::start(secure_config(&bootstrap, &ca_file, PASSWORD)).await;
    let c = &gw.config;
    let client = http();
    // Topic creation: the admin connection (metadata, CreateTopics on the controller).
    let r = client
        .put(gw.url("/v1/topics/secure"))
        .header("authorization", token_1h(c, "manage", ""))
        .json(&json!({ "partition_count": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "{}\n{}",
        r.text().await.unwrap(),
        broker.log()
    );
    // Produce and consume: rskafka's connections.
    let r = client
        .post(gw.url("/secure/publishers/dev-1/messages"))
        .header(
            "authorization",
            token_1h(c, "send", "secure/publishers/dev-1"),
        )
        .body("over TLS and SCRAM")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = client
        .get(gw.url("/v1/consumer/topics/secure/partitions/0/offsets/0?count=1"))
        .header("authorization", token_1h(c, "listen", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["records"][0]["value"], "over TLS and SCRAM");
    let r = client
        .get(gw.url("/v1/metadata/brokers"))
        .header("authorization", token_1h(c, "listen", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tls = handshakes.load(Ordering::SeqCst);
    assert!(
        tls >= 2,
        "{tls} TLS handshakes: the admin and the client connections"
    );
    println!(
        "kafka security: TLS + SCRAM-SHA-512: topic created, produced, consumed; {tls} TLS handshakes"
    );

    // A wrong password is refused by the broker: 503, nothing written.
    let wrong = Gateway::start(secure_config(&bootstrap, &ca_file, "wrong password")).await;
    let r = client
        .post(wrong.url("/secure/publishers/dev-1/messages"))
        .header(
            "authorization",
            token_1h(&wrong.config, "send", "secure/publishers/dev-1"),
        )
        .body("must not arrive")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Without SASL the broker refuses the connection (its authentication is really on).
    let mut anonymous = secure_config(&bootstrap, &ca_file, PASSWORD);
    anonymous.kafka.sasl_mechanism = None;
    anonymous.kafka.sasl_username = None;
    anonymous.kafka.sasl_password = None;
    let anonymous = Gateway::start(anonymous).await;
    let r = client
        .post(anonymous.url("/secure/publishers/dev-1/messages"))
        .header(
            "authorization",
            token_1h(&anonymous.config, "send", "secure/publishers/dev-1"),
        )
        .body("must not arrive either")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "a produce without SASL was accepted");
    // Without TLS the terminator sees no handshake it can complete: 503 as well.
    let mut plain = secure_config(&bootstrap, &ca_file, PASSWORD);
    plain.kafka.tls = false;
    plain.kafka.tls_ca_file = None;
    let plain = Gateway::start(plain).await;
    let r = client
        .get(plain.url("/v1/metadata/brokers"))
        .header("authorization", token_1h(&plain.config, "listen", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Still exactly one record.
    let r = client
        .get(gw.url("/v1/metadata/topics/secure/partitions/0"))
        .header("authorization", token_1h(c, "listen", ""))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["latest_offset"], 1, "{body}");
}
