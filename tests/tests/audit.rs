//! The audit log end to end on Apache Kafka: every management action appears once with its
//! principal and request id (never a token), `GET /v1/audit` filters, and `hubgate audit
//! verify` passes on the untouched log and fails on each tampering: entries deleted with a
//! Kafka delete-records, an altered entry, an entry produced again out of order, and an
//! entry written with a wrong key.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use base64::Engine;
use hubgate_core::audit::{Action, AuditKey, Chain, Entry};
use hubgate_server::Config;
use hubgate_tests::{
    HubgateProcess, SharedKafka, http, hubgate_bin, kafka_client, test_config_toml, token_1h,
    unique,
};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use serde_json::{Value, json};

/// Runs `hubgate audit verify` with `config` (and `args`); its exit success and output.
fn verify(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(hubgate_bin())
        .args(["audit", "verify", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .env("HUBGATE_LOG_FORMAT", "text")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The audit topic's records, as values.
async fn values(bootstrap: &str, topic: &str) -> Vec<Vec<u8>> {
    let client = kafka_client(bootstrap).await;
    let pc = client
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let (records, _) = pc.fetch_records(0, 1..10_000_000, 1000).await.unwrap();
    records
        .into_iter()
        .map(|r| r.record.value.unwrap())
        .collect()
}

/// Writes `values` to a new one-partition topic; returns its name.
async fn copy(bootstrap: &str, values: &[Vec<u8>]) -> String {
    let topic = unique("audit-copy");
    let client = kafka_client(bootstrap).await;
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5_000)
        .await
        .unwrap();
    let pc = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    for v in values {
        let record = Record {
            key: None,
            value: Some(v.clone()),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        pc.produce(vec![record], Compression::NoCompression)
            .await
            .unwrap();
    }
    topic
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_actions_listed_and_tampering_detected_ok() {
    let bootstrap = SharedKafka::get().bootstrap();
    let (hub, audit_topic) = (unique("audited"), unique("audit"));
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let toml = test_config_toml(
        &bootstrap,
        &format!("[audit]\nkey = \"{key}\"\ntopic = \"{audit_topic}\"\n"),
    );
    let config = Config::from_toml(&toml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("hubgate.toml");
    std::fs::write(&config_file, &toml).unwrap();
    let gateway = HubgateProcess::start(&toml);
    let client = http();
    let manage = token_1h(&config, "manage", "");
    let call =
        |method: reqwest::Method, path: String, request_id: &'static str, body: Option<Value>| {
            let mut r = client
                .request(method, gateway.url(&path))
                .header("authorization", &manage)
                .header("x-request-id", request_id);
            if let Some(b) = body {
                r = r.json(&b);
            }
            async move {
                let r = r.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.text().await.unwrap())
            }
        };
    use reqwest::Method;
    let steps = [
        (
            Method::PUT,
            format!("/v1/topics/{hub}"),
            "req-topic",
            Some(json!({"partition_count": 1})),
            201,
        ),
        (
            Method::POST,
            "/v1/tokens".to_owned(),
            "req-mint",
            Some(json!({"hub": hub, "publisher": "dev-1", "ttl_secs": 600})),
            200,
        ),
        (
            Method::PUT,
            format!("/{hub}/revokedpublishers/dev-1"),
            "req-revoke",
            None,
            201,
        ),
        (
            Method::DELETE,
            format!("/{hub}/revokedpublishers/dev-1"),
            "req-resume",
            None,
            200,
        ),
        (
            Method::PUT,
            format!("/{hub}/consumergroups/dashboard"),
            "req-group",
            None,
            201,
        ),
        (
            Method::DELETE,
            format!("/{hub}/consumergroups/dashboard"),
            "req-ungroup",
            None,
            200,
        ),
    ];
    let mut minted = String::new();
    for (method, path, id, body, want) in steps {
        let (status, text) = call(method, path.clone(), id, body).await;
        assert_eq!(status, want, "{path}: {text}");
        if id == "req-mint" {
            minted = serde_json::from_str::<Value>(&text).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned();
        }
    }
    // A refused action is not an action: nothing recorded.
    let (status, _) = call(
        Method::DELETE,
        format!("/{hub}/revokedpublishers/dev-1"),
        "req-none",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Each action once, with its principal and request id, and never the token.
    let (status, text) = call(Method::GET, "/v1/audit".into(), "req-list", None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        !text.contains(&minted) && !text.contains("sig="),
        "a token in the log: {text}"
    );
    let page: Value = serde_json::from_str(&text).unwrap();
    let entries = page["entries"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["request_id"].as_str().unwrap(),
                e["principal"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("topic.create", "req-topic", "sas:manage@/"),
            ("token.mint", "req-mint", "sas:manage@/"),
            ("publisher.revoke", "req-revoke", "sas:manage@/"),
            ("publisher.resume", "req-resume", "sas:manage@/"),
            ("consumer_group.create", "req-group", "sas:manage@/"),
            ("consumer_group.delete", "req-ungroup", "sas:manage@/"),
        ]
    );
    assert_eq!(entries[1]["target"], "dev-1");
    assert_eq!(entries[1]["details"]["rule"], "send");
    assert_eq!(page["next_offset"], 6);
    // Filters.
    let count = |query: String| {
        let r = client
            .get(gateway.url(&format!("/v1/audit?{query}")))
            .header("authorization", &manage)
            .send();
        async move {
            let page: Value = r.await.unwrap().json().await.unwrap();
            page["entries"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("action=publisher.revoke".into()).await, 1);
    assert_eq!(count(format!("hub={hub}")).await, 6);
    assert_eq!(count("hub=elsewhere".into()).await, 0);
    assert_eq!(count("principal=sas:manage@/".into()).await, 6);
    let later = entries[3]["time_ms"].as_i64().unwrap();
    assert_eq!(count(format!("since_ms={later}")).await, 3);
    assert_eq!(count(format!("until_ms={later}")).await, 3);
    assert_eq!(count("limit=2&from_offset=4".into()).await, 2);
    // Manage on the namespace only.
    let hub_manage = token_1h(&config, "manage", &hub);
    let r = client
        .get(gateway.url("/v1/audit"))
        .header("authorization", hub_manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The untouched log verifies.
    let (ok, text) = verify(&config_file, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("6 entries in 1 chains"), "{text}");
    drop(gateway);

    let original = values(&bootstrap, &audit_topic).await;
    assert_eq!(original.len(), 6);
    let entry = |v: &[u8]| serde_json::from_slice::<Entry>(v).unwrap();

    // 1. Entries deleted with a Kafka delete-records (the log's first two).
    let deleted = copy(&bootstrap, &original).await;
    let kafka = kafka_client(&bootstrap).await;
    kafka
        .partition_client(&deleted, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap()
        .delete_records(2, 5_000)
        .await
        .unwrap();
    let (ok, text) = verify(&config_file, &["--topic", &deleted]);
    assert!(!ok && text.contains("expected entry 0"), "{text}");
    // As after a retention: accepted when asked to.
    let (ok, text) = verify(&config_file, &["--topic", &deleted, "--allow-truncated"]);
    assert!(ok, "{text}");

    // 2. An altered entry: another principal for the revoke.
    let mut altered = original.clone();
    let mut e = entry(&altered[2]);
    e.action.principal = "sas:someone-else@/".into();
    altered[2] = serde_json::to_vec(&e).unwrap();
    let topic = copy(&bootstrap, &altered).await;
    let (ok, text) = verify(&config_file, &["--topic", &topic]);
    assert!(
        !ok && text.contains("entry 2") && text.contains("MAC does not match"),
        "{text}"
    );

    // 3. An entry produced again, out of order.
    let mut replayed = original.clone();
    replayed.push(original[1].clone());
    let topic = copy(&bootstrap, &replayed).await;
    let (ok, text) = verify(&config_file, &["--topic", &topic]);
    assert!(
        !ok && text.contains("entry 1") && text.contains("expected entry 6"),
        "{text}"
    );

    // 4. An entry written with a wrong key (a forged chain).
    let mut forged = original.clone();
    let wrong = AuditKey::new(&[7u8; 32]).unwrap();
    let fake = Chain::new("forger").append(
        &wrong,
        Action {
            time_ms: 1,
            action: "publisher.resume".into(),
            principal: "sas:manage@/".into(),
            request_id: "forged".into(),
            hub: Some(hub.clone()),
            target: Some("dev-1".into()),
            details: BTreeMap::new(),
        },
    );
    forged.push(serde_json::to_vec(&fake).unwrap());
    let topic = copy(&bootstrap, &forged).await;
    let (ok, text) = verify(&config_file, &["--topic", &topic]);
    assert!(
        !ok && text.contains("writer forger") && text.contains("MAC does not match"),
        "{text}"
    );

    // And a record that is no entry at all.
    let mut junk = original.clone();
    junk.push(b"not json".to_vec());
    let topic = copy(&bootstrap, &junk).await;
    let (ok, text) = verify(&config_file, &["--topic", &topic]);
    assert!(
        !ok && text.contains("offset 6 is not an audit entry"),
        "{text}"
    );
}
