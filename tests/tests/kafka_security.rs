//! Kafka security against Apache Kafka's own listeners, end to end: one node with a
//! SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 users; SCRAM credentials
//! made at format time), a SASL_SSL listener (SCRAM-SHA-512 over TLS with a private CA) and
//! an SSL listener that requires a client certificate (mutual TLS). For each, hubgate creates
//! a topic (the admin connection), sends and reads (rskafka's connections), and the tests'
//! own clients of a secured shared cluster (`tests/src/secured.rs`: rskafka, kafka-python,
//! Kafka's console consumer) read it with the same settings; a wrong password, a missing SASL
//! or TLS setting, or a missing client certificate is refused. The SCRAM credentials can also
//! come from a Secrets Manager secret in MSK's form (`kafka.sasl_secret_id`, moto).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use hubgate_tests::{
    ClientSecurity, ClusterSpec, Gateway, HubgateProcess, KafkaCluster, Moto, SECURED_LISTENERS,
    TEST_PASSWORD, TEST_USER, TestPki, console_consume_secured, http, kafka_client_secured,
    kafka_python_read_secured, test_config_toml, test_config_toml_secured, token_1h, unique,
};
use serde_json::json;

const USER: &str = TEST_USER;
const PASSWORD: &str = TEST_PASSWORD;

/// How one gateway reaches the broker.
#[derive(Debug, Clone, Copy)]
struct Way {
    listener: &'static str,
    tls: bool,
    client_cert: bool,
    /// hubgate's `kafka.sasl_mechanism`.
    sasl: Option<&'static str>,
    password: &'static str,
}

const fn way(listener: &'static str, tls: bool, sasl: Option<&'static str>) -> Way {
    Way {
        listener,
        tls,
        client_cert: false,
        sasl,
        password: PASSWORD,
    }
}

/// hubgate's `[kafka]` security lines for `w` (what `HUBGATE_TEST_KAFKA_CONFIG` holds for a
/// secured shared cluster), with the PEM files in `files`.
fn security(files: &std::path::Path, w: Way) -> ClientSecurity {
    let mut lines = String::new();
    let file = |name: &str| format!("{:?}", files.join(name).display().to_string());
    if w.tls {
        lines.push_str(&format!("tls = true\ntls_ca_file = {}\n", file("ca.pem")));
    }
    if w.client_cert {
        lines.push_str(&format!(
            "tls_cert_file = {}\ntls_key_file = {}\n",
            file("client.pem"),
            file("client.key")
        ));
    }
    if let Some(m) = w.sasl {
        lines.push_str(&format!(
            "sasl_mechanism = {m:?}\nsasl_username = {USER:?}\nsasl_password = {:?}\n",
            w.password
        ));
    }
    ClientSecurity::from_toml(&lines)
}

fn config(cluster: &KafkaCluster, files: &std::path::Path, w: Way) -> hubgate_server::Config {
    let bootstrap = cluster.listener_bootstrap(w.listener);
    let toml = test_config_toml_secured(&bootstrap, Some(&security(files, w)), "");
    let mut c = hubgate_server::Config::from_toml(&toml).unwrap();
    c.kafka.request_timeout = std::time::Duration::from_secs(3);
    c.validate().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sasl_tls_and_mtls_listeners_ok() {
    let pki = TestPki::generate();
    let files = tempfile::tempdir().unwrap();
    pki.write_client_files(files.path());
    let properties = pki.broker_properties();
    let format_args = TestPki::format_args();
    let format_args: Vec<&str> = format_args.iter().map(String::as_str).collect();
    let cluster = KafkaCluster::start_spec(ClusterSpec {
        nodes: 1,
        listeners: SECURED_LISTENERS,
        properties: &properties,
        format_args: &format_args,
        ..ClusterSpec::default()
    });
    let client = http();

    let mut mtls = way("MTLS", true, None);
    mtls.client_cert = true;
    for (name, w) in [
        ("SASL PLAIN", way("SASL_PLAIN", false, Some("PLAIN"))),
        (
            "SCRAM-SHA-256",
            way("SASL_PLAIN", false, Some("SCRAM-SHA-256")),
        ),
        (
            "SCRAM-SHA-512",
            way("SASL_PLAIN", false, Some("SCRAM-SHA-512")),
        ),
        (
            "TLS (private CA) + SCRAM-SHA-512",
            way("SASL_TLS", true, Some("SCRAM-SHA-512")),
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
        // The tests' own clients of a secured shared cluster, from the same settings
        // (HUBGATE_TEST_KAFKA_CONFIG): rskafka, kafka-python and Kafka's console consumer.
        let bootstrap = cluster.listener_bootstrap(w.listener);
        let security = security(files.path(), w);
        let own = kafka_client_secured(&bootstrap, Some(&security)).await;
        assert!(
            own.list_topics()
                .await
                .unwrap()
                .iter()
                .any(|t| t.name == topic),
            "{name}: the tests' rskafka client"
        );
        let py = kafka_python_read_secured(&bootstrap, Some(&security), &topic).await;
        assert_eq!(
            py.iter().map(|r| r.value().unwrap()).collect::<Vec<_>>(),
            [format!("over {name}").into_bytes()],
            "{name}: kafka-python"
        );
        let (b, t) = (bootstrap.clone(), topic.clone());
        let java = tokio::task::spawn_blocking(move || {
            console_consume_secured(&b, Some(&security), &t, 1)
        })
        .await
        .unwrap();
        assert!(
            java.len() == 1 && java[0].ends_with(&format!("over {name}")),
            "{name}: Kafka's console consumer: {java:?}"
        );
        println!(
            "kafka security: {name}: topic created, sent, read; the same settings read it \
             with rskafka, kafka-python and Kafka's console consumer"
        );
    }

    // Refusals: the broker really checks each of them (503, nothing acknowledged).
    let mut wrong_password = way("SASL_PLAIN", false, Some("SCRAM-SHA-512"));
    wrong_password.password = "wrong-password";
    let mut no_client_cert = way("MTLS", true, None);
    no_client_cert.client_cert = false;
    for (name, w) in [
        ("a wrong SCRAM password", wrong_password),
        ("no SASL on a SASL listener", way("SASL_PLAIN", false, None)),
        (
            "plaintext to a TLS listener",
            way("SASL_TLS", false, Some("SCRAM-SHA-512")),
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

    // The SCRAM user and password from a Secrets Manager secret in MSK's form
    // (`kafka.sasl_secret_id`), not from the configuration or the environment.
    let moto = Moto::start();
    for (secret, password, status) in [
        ("AmazonMSK_hubgate", PASSWORD, 201),
        ("AmazonMSK_wrong", "not-the-password", 503),
    ] {
        moto.secretsmanager(
            "CreateSecret",
            json!({"Name": secret,
                   "SecretString": json!({"username": USER, "password": password}).to_string()}),
        )
        .await;
        let toml = test_config_toml(&cluster.listener_bootstrap("SASL_PLAIN"), "").replace(
            "[kafka]\n",
            &format!(
                "[kafka]\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_secret_id = \"{secret}\"\n"
            ),
        );
        let config = hubgate_server::Config::from_toml(&toml).unwrap();
        let hg = HubgateProcess::start_with_env(&toml, &moto.env());
        let r = client
            .put(format!("{}/v1/topics/{}", hg.base, unique("from-secret")))
            .header("authorization", token_1h(&config, "manage", ""))
            .json(&json!({ "partition_count": 1 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{secret}: {}", hg.log());
        assert!(!hg.log().contains(password), "the password is never logged");
        println!("kafka security: SCRAM credentials from the secret {secret}: {status}");
    }
}
