//! Kafka security against Apache Kafka's own listeners, end to end: one node with a
//! SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 users; SCRAM credentials
//! made at format time), a SASL_SSL listener (SCRAM-SHA-512 over TLS with a private CA) and
//! an SSL listener that requires a client certificate (mutual TLS). For each, hubgate creates
//! a topic (the admin connection), sends and reads (rskafka's connections); a wrong
//! password, a missing SASL or TLS setting, or a missing client certificate is refused.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use hubgate_server::config::SaslMechanism;
use hubgate_tests::{ClusterSpec, Gateway, KafkaCluster, http, test_config_toml, token_1h, unique};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::json;

const USER: &str = "hubgate-svc";
const PASSWORD: &str = "correct-horse-battery-staple";

/// PEM files of a test CA, a broker certificate for 127.0.0.1 signed by it (with its key),
/// and a client certificate signed by it (with its key).
struct Pki {
    ca: String,
    broker: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hubgate test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        broker: leaf(
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(
            vec!["hubgate".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        ca: ca.pem(),
    }
}

/// A PEM text as one `server.properties` value (`\n` escapes).
fn inline(pem: &str) -> String {
    pem.trim().replace('\n', "\\n")
}

const LISTENERS: &[(&str, &str)] = &[
    ("SASL_PLAIN", "SASL_PLAINTEXT"),
    ("SASL_TLS", "SASL_SSL"),
    ("MTLS", "SSL"),
];

fn broker_properties(pki: &Pki) -> String {
    let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    let plain = format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}=\"{PASSWORD}\";"
    );
    let mut p = String::from("sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n");
    for listener in ["sasl_plain", "sasl_tls"] {
        p.push_str(&format!(
            "listener.name.{listener}.plain.sasl.jaas.config={plain}\n\
             listener.name.{listener}.scram-sha-256.sasl.jaas.config={scram}\n\
             listener.name.{listener}.scram-sha-512.sasl.jaas.config={scram}\n"
        ));
    }
    p.push_str(&format!(
        "ssl.keystore.type=PEM\nssl.keystore.certificate.chain={}\nssl.keystore.key={}\n\
         ssl.truststore.type=PEM\nssl.truststore.certificates={}\n\
         listener.name.mtls.ssl.client.auth=required\n",
        inline(&pki.broker.0),
        inline(&pki.broker.1),
        inline(&pki.ca),
    ));
    p
}

/// How one gateway reaches the broker.
#[derive(Debug, Clone, Copy)]
struct Way {
    listener: &'static str,
    tls: bool,
    client_cert: bool,
    sasl: Option<SaslMechanism>,
    password: &'static str,
}

const fn way(listener: &'static str, tls: bool, sasl: Option<SaslMechanism>) -> Way {
    Way {
        listener,
        tls,
        client_cert: false,
        sasl,
        password: PASSWORD,
    }
}

fn config(cluster: &KafkaCluster, files: &std::path::Path, w: Way) -> hubgate_server::Config {
    let bootstrap = cluster.listener_bootstrap(w.listener);
    let mut c = hubgate_server::Config::from_toml(&test_config_toml(&bootstrap, "")).unwrap();
    c.kafka.request_timeout = std::time::Duration::from_secs(3);
    if w.tls {
        c.kafka.tls = true;
        c.kafka.tls_ca_file = Some(files.join("ca.pem"));
    }
    if w.client_cert {
        c.kafka.tls_cert_file = Some(files.join("client.pem"));
        c.kafka.tls_key_file = Some(files.join("client.key"));
    }
    if let Some(m) = w.sasl {
        c.kafka.sasl_mechanism = Some(m);
        c.kafka.sasl_username = Some(USER.into());
        c.kafka.sasl_password = Some(w.password.to_owned().into());
    }
    c.validate().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sasl_tls_and_mtls_listeners_ok() {
    let pki = pki();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("ca.pem"), &pki.ca).unwrap();
    std::fs::write(files.path().join("client.pem"), &pki.client.0).unwrap();
    std::fs::write(files.path().join("client.key"), &pki.client.1).unwrap();
    let scram_256 = format!("SCRAM-SHA-256=[name={USER},password={PASSWORD}]");
    let scram_512 = format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]");
    let properties = broker_properties(&pki);
    let cluster = KafkaCluster::start_spec(ClusterSpec {
        nodes: 1,
        listeners: LISTENERS,
        properties: &properties,
        format_args: &["--add-scram", &scram_256, "--add-scram", &scram_512],
        home: None,
    });
    let client = http();

    let mut mtls = way("MTLS", true, None);
    mtls.client_cert = true;
    for (name, w) in [
        (
            "SASL PLAIN",
            way("SASL_PLAIN", false, Some(SaslMechanism::Plain)),
        ),
        (
            "SCRAM-SHA-256",
            way("SASL_PLAIN", false, Some(SaslMechanism::ScramSha256)),
        ),
        (
            "SCRAM-SHA-512",
            way("SASL_PLAIN", false, Some(SaslMechanism::ScramSha512)),
        ),
        (
            "TLS (private CA) + SCRAM-SHA-512",
            way("SASL_TLS", true, Some(SaslMechanism::ScramSha512)),
        ),
        ("mutual TLS", mtls),
    ] {
        let gw = Gateway::start(config(&cluster, files.path(), w)).await;
        let c = &gw.config;
        let topic = unique("secure");
        // Topic creation: the admin connection (metadata, CreateTopics on the controller).
        let r = client
            .put(gw.url(&format!("/v1/topics/{topic}")))
            .header("authorization", token_1h(c, "manage", ""))
            .json(&json!({ "partition_count": 1 }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "{name}: {}\n{}",
            r.text().await.unwrap(),
            cluster.log()
        );
        // Produce and consume: rskafka's connections.
        let r = client
            .post(gw.url(&format!("/{topic}/publishers/dev-1/messages")))
            .header(
                "authorization",
                token_1h(c, "send", &format!("{topic}/publishers/dev-1")),
            )
            .body(format!("over {name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}: {}", r.text().await.unwrap());
        let r = client
            .get(gw.url(&format!(
                "/v1/consumer/topics/{topic}/partitions/0/offsets/0?count=1"
            )))
            .header("authorization", token_1h(c, "listen", ""))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["records"][0]["value"],
            format!("over {name}"),
            "{name}"
        );
        println!("kafka security: {name}: topic created, sent, read");
    }

    // Refusals: the broker really checks each of them (503, nothing acknowledged).
    let mut wrong_password = way("SASL_PLAIN", false, Some(SaslMechanism::ScramSha512));
    wrong_password.password = "wrong-password";
    let mut no_client_cert = way("MTLS", true, None);
    no_client_cert.client_cert = false;
    for (name, w) in [
        ("a wrong SCRAM password", wrong_password),
        ("no SASL on a SASL listener", way("SASL_PLAIN", false, None)),
        (
            "plaintext to a TLS listener",
            way("SASL_TLS", false, Some(SaslMechanism::ScramSha512)),
        ),
        ("no client certificate on the mTLS listener", no_client_cert),
    ] {
        let gw = Gateway::start(config(&cluster, files.path(), w)).await;
        let r = client
            .get(gw.url("/v1/metadata/brokers"))
            .header("authorization", token_1h(&gw.config, "listen", ""))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{name} was accepted");
        println!("kafka security: {name}: refused (503)");
    }
}
