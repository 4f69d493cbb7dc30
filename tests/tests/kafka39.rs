//! A smoke subset on Apache Kafka 3.9.1 (one KRaft node), since many managed clusters still
//! run 3.x: topic creation, a multi-record produce, reads to the end, a consumer group read
//! and a checkpoint at the end, and a publisher revoked and resumed.
#![allow(clippy::unwrap_used)]

use hubgate_tests::{
    ClusterSpec, Gateway, KafkaCluster, http, kafka39_home, test_config, token_1h,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka39_produce_consume_groups_revocation_ok() {
    let home = kafka39_home();
    let kafka = KafkaCluster::start_spec(ClusterSpec {
        nodes: 1,
        home: Some(&home),
        ..ClusterSpec::default()
    });
    let gateway = Gateway::start(test_config(&kafka.bootstrap(), "")).await;
    let c = &gateway.config;
    let client = http();
    let (manage, send, listen) = (
        token_1h(c, "manage", ""),
        token_1h(c, "send", ""),
        token_1h(c, "listen", ""),
    );
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut req = client
            .request(method, gateway.url(path))
            .header("authorization", token);
        req = match body {
            Some(b) => req.json(&b),
            None => req.body("event"),
        };
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let next = r
                .headers()
                .get("nextoffset")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, r.json::<Value>().await.unwrap_or(Value::Null), next)
        }
    };
    use reqwest::Method as M;

    let (s, v, _) = call(
        M::PUT,
        "/v1/topics/hub",
        &manage,
        Some(json!({"partition_count": 1})),
    )
    .await;
    assert_eq!(s, 201, "{v}\n{}", kafka.log());
    let records: Vec<Value> = (0..10).map(|i| json!({"value": format!("r{i}")})).collect();
    let (s, v, _) = call(
        M::POST,
        "/v1/producer/topics/hub",
        &send,
        Some(json!({"records": records})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["offsets"][9]["offset"], 9, "{v}");

    let (s, v, next) = call(
        M::GET,
        "/v1/consumer/topics/hub/partitions/0/offsets/0?count=100",
        &listen,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 10);
    assert_eq!(next.as_deref(), Some("10"));
    let (s, v, _) = call(
        M::GET,
        "/v1/metadata/topics/hub/partitions/0",
        &listen,
        None,
    )
    .await;
    assert_eq!((s, v["latest_offset"].as_i64()), (200, Some(10)), "{v}");

    let (s, v, _) = call(
        M::GET,
        "/hub/consumergroups/$Default/partitions/0/messages?count=100",
        &listen,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 10);
    assert_eq!(v["next_offset"], 10);
    let (s, v, _) = call(
        M::PUT,
        "/hub/consumergroups/$Default/partitions/0/checkpoint",
        &listen,
        Some(json!({"offset": 10})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v, _) = call(
        M::GET,
        "/hub/consumergroups/$Default/partitions/0",
        &listen,
        None,
    )
    .await;
    assert_eq!((s, v["lag"].as_i64()), (200, Some(0)), "{v}");

    let device = token_1h(c, "send", "hub/publishers/dev-1");
    let (s, _, _) = call(M::POST, "/hub/publishers/dev-1/messages", &device, None).await;
    assert_eq!(s, 201);
    let (s, v, _) = call(M::PUT, "/hub/revokedpublishers/DEV-1", &manage, None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["publisher"], "dev-1",
        "the JSON entry written, canonical: {v}"
    );
    let (s, _, _) = call(M::POST, "/hub/publishers/dev-1/messages", &device, None).await;
    assert_eq!(s, 401, "revoked");
    let (s, v, _) = call(M::DELETE, "/hub/revokedpublishers/dev-1", &manage, None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _, _) = call(M::POST, "/hub/publishers/dev-1/messages", &device, None).await;
    assert_eq!(s, 201, "resumed");
}
