//! End-to-end against a real broker: create a topic, produce over HTTP, read back over HTTP
//! and with kafka-python; every rejection is 401 and writes nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::collections::BTreeMap;

use hubgate_tests::{Env, NAMESPACE, kafka_python_read, latest_offsets, now, token, unique};
use serde_json::{Value, json};

/// `GET path` on the gateway with `token`: the status and the JSON body.
async fn get_json(env: &Env, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
    let r = env
        .http
        .get(env.gateway.url(path))
        .header("authorization", token)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn hdinsight_produce_consume_roundtrip_ok() {
    let orders = &unique("orders");
    let env = Env::start("").await;
    env.create_topic(orders, 3).await;
    let manage = env.token("manage", "");

    // Produce: keyed, explicit partition, JSON value, null key, headers.
    let body = json!({"records": [
        {"key": "customer-1", "value": "first", "headers": {"source": "web", "trace": "t1"}},
        {"key": "customer-2", "value": {"amount": 12.5, "items": [1, 2]}},
        {"value": "to partition 2", "partition": 2},
        {"key": "customer-1", "value": "second"},
        {"value": "keyless"},
    ]});
    let r = env
        .http
        .post(env.gateway.url(&format!("/v1/producer/topics/{orders}")))
        .header("authorization", env.token("send", orders))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let offsets: Value = r.json().await.unwrap();
    let offsets = offsets["offsets"].as_array().unwrap().clone();
    assert_eq!(offsets.len(), 5);
    assert_eq!(offsets[2]["partition"], 2);
    // Same key, same partition, increasing offsets.
    assert_eq!(offsets[0]["partition"], offsets[3]["partition"]);
    assert!(offsets[3]["offset"].as_i64() > offsets[0]["offset"].as_i64());
    for o in &offsets {
        assert!(o["error_code"].is_null() && o["offset"].is_i64(), "{o}");
    }

    // Read back over HTTP, partition by partition.
    let mut http_records = vec![];
    for p in 0..3 {
        let r = env
            .http
            .get(env.gateway.url(&format!(
                "/v1/consumer/topics/{orders}/partitions/{p}/offsets/0?count=100"
            )))
            .header("authorization", env.token("listen", orders))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let next: i64 = r.headers()["nextoffset"].to_str().unwrap().parse().unwrap();
        let v: Value = r.json().await.unwrap();
        let recs = v["records"].as_array().unwrap().clone();
        assert_eq!(
            next,
            recs.last().map_or(0, |r| r["offset"].as_i64().unwrap() + 1)
        );
        http_records.extend(recs);
    }
    assert_eq!(http_records.len(), 5);

    // Read back with kafka-python: values, keys, headers and partitions equal.
    let py = kafka_python_read(&env.broker.bootstrap(), orders).await;
    assert_eq!(py.len(), 5);
    for (i, o) in offsets.iter().enumerate() {
        let (p, off) = (
            o["partition"].as_i64().unwrap(),
            o["offset"].as_i64().unwrap(),
        );
        let k = py
            .iter()
            .find(|r| i64::from(r.partition) == p && r.offset == off)
            .unwrap();
        let h = http_records
            .iter()
            .find(|r| r["partition"] == p && r["offset"] == off)
            .unwrap();
        let sent = &body["records"][i];
        let want_value = match &sent["value"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(k.value().unwrap(), want_value.as_bytes(), "record {i}");
        assert_eq!(h["value"], want_value, "record {i}");
        let want_key = sent["key"].as_str().map(|s| s.as_bytes().to_vec());
        assert_eq!(k.key(), want_key, "record {i}");
        assert_eq!(h["key"].as_str().map(|s| s.as_bytes().to_vec()), want_key);
        let want_headers: BTreeMap<String, Vec<u8>> = sent["headers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            k.headers().into_iter().collect::<BTreeMap<_, _>>(),
            want_headers,
            "record {i}"
        );
        let http_headers: BTreeMap<String, Vec<u8>> = h["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
            .collect();
        assert_eq!(http_headers, want_headers);
    }

    // Metadata.
    let get = |path: &str| {
        let (env, manage, path) = (&env, &manage, path.to_owned());
        async move {
            let (status, v) = get_json(env, &path, manage).await;
            assert_eq!(status, 200, "{path}: {v}");
            v
        }
    };
    // The shared cluster holds other tests' topics too.
    let topics = get("/v1/metadata/topics").await;
    assert!(
        topics["topics"]
            .as_array()
            .unwrap()
            .contains(&json!(orders)),
        "{topics}"
    );
    // Every broker of the cluster, as it advertises itself.
    let brokers = get("/v1/metadata/brokers").await;
    let listed: std::collections::BTreeSet<String> = brokers["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| format!("{}:{}", b["hostName"].as_str().unwrap(), b["port"]))
        .collect();
    let bootstrap = env.broker.bootstrap();
    let want: std::collections::BTreeSet<String> =
        bootstrap.split(',').map(str::to_owned).collect();
    assert_eq!(listed, want, "{brokers}");
    // Issue 16 item 14: the HDInsight reference's shape. Leader, replicas and isr are broker
    // objects `{hostName, port, id, rack}` (as in the broker list), and the partition list
    // carries each partition's earliest and latest offsets too.
    let is_broker = |b: &Value| {
        listed.contains(&format!(
            "{}:{}",
            b["hostName"].as_str().unwrap_or("?"),
            b["port"]
        )) && b["id"].is_i64()
            && b.as_object().unwrap().contains_key("rack")
    };
    let parts = get(&format!("/v1/metadata/topics/{orders}/partitions")).await;
    let list = parts["partitions"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for p in list {
        assert!(is_broker(&p["leader"]), "{p}");
        for field in ["replicas", "isr"] {
            let brokers = p[field].as_array().unwrap();
            assert!(!brokers.is_empty() && brokers.iter().all(is_broker), "{p}");
        }
        let n = offsets
            .iter()
            .filter(|o| o["partition"] == p["partition_id"])
            .count();
        assert_eq!(p["earliest_offset"], 0, "{p}");
        assert_eq!(p["latest_offset"].as_u64().unwrap(), n as u64, "{p}");
    }
    let p2 = get(&format!("/v1/metadata/topics/{orders}/partitions/2")).await;
    assert_eq!(p2["partition_id"], 2);
    assert!(is_broker(&p2["leader"]), "{p2}");
    assert_eq!(&p2, list.iter().find(|p| p["partition_id"] == 2).unwrap());

    // The reference marks the create body optional: none is every default.
    let bodiless = unique("bodiless");
    let r = env
        .http
        .put(env.gateway.url(&format!("/v1/topics/{bodiless}")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            v["partition_count"].as_i64(),
            v["replication_factor"].as_i64()
        ),
        (Some(1), Some(1)),
        "{v}"
    );
}

#[tokio::test]
async fn eventhubs_publisher_send_ok() {
    let telemetry = &unique("telemetry");
    let env = Env::start("").await;
    env.create_topic(telemetry, 4).await;
    let t = env.token("send", &format!("{telemetry}/publishers/device-7"));
    for i in 0..3 {
        let r = env
            .http
            .post(env.gateway.url(&format!(
                "/{telemetry}/publishers/device-7/messages?api-version=2014-01&timeout=60"
            )))
            .header("authorization", &t)
            .header(
                "content-type",
                "application/atom+xml;type=entry;charset=utf-8",
            )
            .body(format!("reading {i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(
            r.bytes().await.unwrap().is_empty(),
            "201 with an empty body"
        );
    }
    let py = kafka_python_read(&env.broker.bootstrap(), telemetry).await;
    assert_eq!(py.len(), 3);
    let partition = py[0].partition;
    for (i, r) in py.iter().enumerate() {
        assert_eq!(r.partition, partition, "one publisher, one partition");
        assert_eq!(r.key().unwrap(), b"device-7");
        assert_eq!(r.value().unwrap(), format!("reading {i}").as_bytes());
        assert_eq!(
            r.headers(),
            vec![("x-opt-publisher".to_owned(), b"device-7".to_vec())]
        );
    }
}

#[tokio::test]
async fn rejections_are_401_and_write_nothing_fails() {
    let hub = &unique("hub");
    let newtopic = &unique("newtopic");
    let env = Env::start("").await;
    env.create_topic(hub, 2).await;
    let c = &env.gateway.config;
    let bootstrap = env.broker.bootstrap();
    let before = latest_offsets(&bootstrap, hub).await;

    let wrong_key = {
        let other = &c.rule("manage").unwrap().primary_key;
        hubgate_server::sas::mint(
            &format!("https://{NAMESPACE}/{hub}"),
            "send",
            other,
            now() + 3600,
        )
    };
    let one_record = json!({"records": [{"value": "x"}]}).to_string();
    let cases: Vec<(&str, &str, String, String, String)> = vec![
        (
            "publisher A's token on B's path",
            "POST",
            format!("/{hub}/publishers/b/messages"),
            env.token("send", &format!("{hub}/publishers/a")),
            "x".into(),
        ),
        (
            "publisher token on the hub-wide produce route",
            "POST",
            format!("/v1/producer/topics/{hub}"),
            env.token("send", &format!("{hub}/publishers/a")),
            one_record.clone(),
        ),
        (
            "expired token",
            "POST",
            format!("/{hub}/publishers/a/messages"),
            token(c, "send", hub, now() - 1),
            "x".into(),
        ),
        (
            "expired at exactly now",
            "POST",
            format!("/{hub}/publishers/a/messages"),
            token(c, "send", hub, now()),
            "x".into(),
        ),
        (
            "wrong key",
            "POST",
            format!("/{hub}/publishers/a/messages"),
            wrong_key,
            "x".into(),
        ),
        (
            "Listen-only token producing",
            "POST",
            format!("/v1/producer/topics/{hub}"),
            env.token("listen", hub),
            one_record.clone(),
        ),
        (
            "Listen-only token on the publisher path",
            "POST",
            format!("/{hub}/publishers/a/messages"),
            env.token("listen", hub),
            "x".into(),
        ),
        (
            "Send-only token creating a topic",
            "PUT",
            format!("/v1/topics/{newtopic}"),
            env.token("send", ""),
            r#"{"partition_count":1}"#.into(),
        ),
        (
            "token for another hub",
            "POST",
            format!("/v1/producer/topics/{hub}"),
            env.token("send", "other"),
            one_record.clone(),
        ),
        (
            "no credential",
            "POST",
            format!("/v1/producer/topics/{hub}"),
            String::new(),
            one_record,
        ),
    ];
    for (name, method, path, auth, body) in cases {
        let mut req = env
            .http
            .request(method.parse().unwrap(), env.gateway.url(&path))
            .header("content-type", "application/json")
            .body(body);
        if !auth.is_empty() {
            req = req.header("authorization", auth);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error_code"], 40101, "{name}: {v}");
        assert!(!v["message"].as_str().unwrap().is_empty(), "{name}");
    }
    assert_eq!(
        latest_offsets(&bootstrap, hub).await,
        before,
        "nothing written"
    );
    assert!(
        latest_offsets(&bootstrap, newtopic).await.is_empty(),
        "no topic created"
    );
}

#[tokio::test]
async fn consume_offsets_and_limits_ok() {
    let log = &unique("log");
    let env = Env::start("").await;
    env.create_topic(log, 1).await;
    let records: Vec<Value> = (0..10)
        .map(|i| json!({"value": format!("v{i}"), "partition": 0}))
        .collect();
    let r = env
        .http
        .post(env.gateway.url(&format!("/v1/producer/topics/{log}")))
        .header("authorization", env.token("send", log))
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listen = env.token("listen", log);
    let read = |offset: i64, query: &'static str| {
        let req = env
            .http
            .get(env.gateway.url(&format!(
                "/v1/consumer/topics/{log}/partitions/0/offsets/{offset}{query}"
            )))
            .header("authorization", &listen);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let next = r
                .headers()
                .get("nextoffset")
                .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
            (status, next, r.json::<Value>().await.unwrap())
        }
    };
    // Default count is 1.
    let (s, next, v) = read(3, "").await;
    assert_eq!((s, next), (200, Some(4)));
    assert_eq!(v["records"][0]["value"], "v3");
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    // count=4 from 5.
    let (_, next, v) = read(5, "?count=4").await;
    assert_eq!(next, Some(9));
    let values: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["v5", "v6", "v7", "v8"]);
    // At the end: nothing, NextOffset stays.
    let (s, next, v) = read(10, "?count=5").await;
    assert_eq!((s, next), (200, Some(10)));
    assert!(v["records"].as_array().unwrap().is_empty());
    // Past the end: 404 with the range.
    let (s, _, v) = read(11, "").await;
    assert_eq!(s, 404);
    assert_eq!(v["error_code"], 40403);
    assert!(v["message"].as_str().unwrap().contains("0 to 10"), "{v}");
    // Unknown partition and topic.
    let r = env
        .http
        .get(
            env.gateway
                .url(&format!("/v1/consumer/topics/{log}/partitions/5/offsets/0")),
        )
        .header("authorization", &listen)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = env
        .http
        .get(
            env.gateway
                .url("/v1/consumer/topics/nope/partitions/0/offsets/0"),
        )
        .header("authorization", env.token("listen", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error_code"], 40401);
}

#[tokio::test]
async fn create_topic_conflicts_and_properties_ok() {
    let events = &unique("events");
    let env = Env::start("").await;
    let manage = env.token("manage", "");
    let put = |topic: &str, body: Value| {
        let req = env
            .http
            .put(env.gateway.url(&format!("/v1/topics/{topic}")))
            .header("authorization", &manage)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = put(events, json!({"partition_count": 2, "replication_factor": 1, "topic_properties": {"retention.ms": 86_400_000, "cleanup.policy": "delete"}})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["topic_properties"]["retention.ms"], 86_400_000);
    let (s, v) = put(events, json!({})).await;
    assert_eq!((s, v["error_code"].as_u64()), (409, Some(40901)));
    let (s, v) = put(&events.to_uppercase(), json!({})).await;
    // The hub is the existing topic whatever its case (issue 16 item 8): it exists.
    assert_eq!(s, 409, "case-only difference: {v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(&format!("'{events}'")),
        "{v}"
    );
}

#[tokio::test]
async fn broker_restart_keeps_records_and_gateway_recovers_ok() {
    let durable = &unique("durable");
    let mut env = Env::start_own(1, "").await;
    env.create_topic(durable, 1).await;
    let send = env.token("send", &format!("{durable}/publishers/p1"));
    let post = |body: &'static str| {
        env.http
            .post(
                env.gateway
                    .url(&format!("/{durable}/publishers/p1/messages")),
            )
            .header("authorization", &send)
            .body(body)
            .send()
    };
    assert_eq!(post("before").await.unwrap().status(), 201);
    env.broker.stop();
    let down = post("during").await.unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["retry-after"], "1");
    env.broker.restart();
    let mut status = 0;
    for _ in 0..50 {
        status = post("after").await.unwrap().status().as_u16();
        if status == 201 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201, "gateway works again after the broker restart");
    let values: Vec<Vec<u8>> = kafka_python_read(&env.broker.bootstrap(), durable)
        .await
        .iter()
        .map(|r| r.value().unwrap())
        .collect();
    assert_eq!(
        values.first().map(Vec::as_slice),
        Some(&b"before"[..]),
        "record survived the restart"
    );
    assert_eq!(values.last().map(Vec::as_slice), Some(&b"after"[..]));
}

/// The gateway keeps its metadata connection; when the broker restarts, that connection is
/// dead, and the next metadata request connects again instead of failing.
#[tokio::test]
async fn metadata_after_broker_restart_ok() {
    let orders = &unique("orders");
    let mut env = Env::start_own(1, "").await;
    env.create_topic(orders, 2).await;
    let manage = env.token("manage", "");
    for _ in 0..3 {
        let (status, v) = get_json(
            &env,
            &format!("/v1/metadata/topics/{orders}/partitions"),
            &manage,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["partitions"].as_array().unwrap().len(), 2);
    }
    env.broker.restart();
    let (status, v) = get_json(&env, "/v1/metadata/brokers", &manage).await;
    assert_eq!(status, 200, "after the restart: {v}");
    let (status, v) = get_json(
        &env,
        &format!("/v1/metadata/topics/{orders}/partitions/1"),
        &manage,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["partition_id"], 1);
}
