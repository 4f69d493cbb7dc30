//! End-to-end: the Event Hubs data plane (every send path, batches, limits, case variants)
//! and publisher revocation stored in Kafka, with real SDK tokens and two hubgate processes.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hubgate_tests::{
    Env, HubgateProcess, KafkaCluster, NAMESPACE, Sdk, http, kafka_python_read, latest_offsets,
    sdk_token, test_config_toml, token_1h, unique,
};
use serde_json::{Value, json};

const BATCH: &str = "application/vnd.microsoft.servicebus.json";

fn headers_map(h: Vec<(String, Vec<u8>)>) -> BTreeMap<String, String> {
    h.into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect()
}

#[tokio::test]
async fn eventhubs_single_event_properties_and_partition_key_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 4).await;
    let r = env
        .http
        .post(
            env.gateway
                .url(&format!("/{hub}/messages?timeout=60&api-version=2014-01")),
        )
        .header("authorization", env.token("send", hub))
        .header(
            "content-type",
            "application/atom+xml;type=entry;charset=utf-8",
        )
        .header(
            "brokerproperties",
            r#"{"PartitionKey":"pk-1","Label":"ignored","TimeToLive":60}"#,
        )
        .header("sensor-id", "s-17")
        .header("priority", "high")
        .header("x-forwarded-for", "10.0.0.1")
        .body("<entry>payload</entry>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.bytes().await.unwrap().is_empty());
    let py = kafka_python_read(&env.broker.bootstrap(), hub).await;
    assert_eq!(py.len(), 1);
    assert_eq!(py[0].key().unwrap(), b"pk-1");
    assert_eq!(py[0].value().unwrap(), b"<entry>payload</entry>");
    // Custom headers only: no authorization, content-type, host, user-agent, forwarding.
    assert_eq!(
        headers_map(py[0].headers()),
        BTreeMap::from([
            ("priority".into(), "high".into()),
            ("sensor-id".into(), "s-17".into())
        ])
    );
}

/// A single send's property headers reach Kafka named as the client wrote them on HTTP/1.1
/// (reqwest writes names lower-case, so the request is written by hand): `Sensor-ID`,
/// `PRIORITY`, `alert`, and two spellings of one name as two properties.
#[tokio::test]
async fn eventhubs_single_event_property_names_keep_case_ok() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 1).await;
    let token = env.token("send", hub);
    let addr = env.gateway.base.trim_start_matches("http://").to_owned();
    let body = "payload";
    let request = format!(
        "POST /{hub}/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\n\
         Content-Type: text/plain\r\nSensor-ID: s-17\r\nPRIORITY: high\r\nalert: yes\r\n\
         X-Mixed: 1\r\nx-MIXED: 2\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let py = kafka_python_read(&env.broker.bootstrap(), hub).await;
    assert_eq!(py.len(), 1);
    assert_eq!(
        headers_map(py[0].headers()),
        BTreeMap::from([
            ("PRIORITY".into(), "high".into()),
            ("Sensor-ID".into(), "s-17".into()),
            ("X-Mixed".into(), "1".into()),
            ("alert".into(), "yes".into()),
            ("x-MIXED".into(), "2".into()),
        ])
    );
}

#[tokio::test]
async fn eventhubs_batch_base64_and_user_properties_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 3).await;
    let batch = json!([
        {"Body": "aGVsbG8gd29ybGQ=", "IsBodyBase64": true, "UserProperties": {"Sequence": 1, "Kind": "greeting"}, "BrokerProperties": {"PartitionKey": "dev-a"}},
        {"Body": "plain text", "UserProperties": {"Sequence": 2, "Flag": true}, "BrokerProperties": {"PartitionKey": "dev-b"}},
        {"Body": "AAEC/w==", "IsBodyBase64": true},
    ]);
    let r = env
        .http
        .post(env.gateway.url(&format!("/{hub}/messages")))
        .header("authorization", env.token("send", hub))
        .header("content-type", format!("{BATCH}; charset=utf-8"))
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let py = kafka_python_read(&env.broker.bootstrap(), hub).await;
    assert_eq!(py.len(), 3);
    let find = |body: &[u8]| {
        py.iter()
            .find(|r| r.value().unwrap() == body)
            .unwrap()
            .clone()
    };
    let a = find(b"hello world");
    assert_eq!(a.key().unwrap(), b"dev-a");
    assert_eq!(
        headers_map(a.headers()),
        BTreeMap::from([
            ("Kind".into(), "greeting".into()),
            ("Sequence".into(), "1".into())
        ])
    );
    let b = find(b"plain text");
    assert_eq!(b.key().unwrap(), b"dev-b");
    assert_eq!(
        headers_map(b.headers()),
        BTreeMap::from([
            ("Flag".into(), "true".into()),
            ("Sequence".into(), "2".into())
        ])
    );
    let c = find(&[0, 1, 2, 255]);
    assert_eq!(c.key(), None);
    assert!(c.headers().is_empty());
}

#[tokio::test]
async fn eventhubs_partition_and_publisher_paths_and_case_variants_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 3).await;
    let hub_send = env.token("send", hub);
    let publisher = env.token("send", &format!("{hub}/publishers/dev-9"));
    let cases = [
        (&format!("/{hub}/partitions/2/messages"), &hub_send, "p2"),
        (&format!("/{hub}/Partitions/1/MESSAGES"), &hub_send, "p1"),
        (&format!("/{hub}/Messages"), &hub_send, "hub-any"),
        (
            &format!("/{hub}/publishers/dev-9/messages"),
            &publisher,
            "pub-plural",
        ),
        (
            &format!("/{hub}/publisher/dev-9/messages"),
            &publisher,
            "pub-singular",
        ),
        (
            &format!("/{hub}/PUBLISHERS/dev-9/Messages"),
            &publisher,
            "pub-upper",
        ),
        (
            &format!("/{}/publishers/DEV-9/messages", hub.to_uppercase()),
            &publisher,
            "pub-case",
        ),
    ];
    for (path, token, body) in cases {
        let r = env
            .http
            .post(env.gateway.url(path))
            .header("authorization", token.as_str())
            .body(body)
            .send()
            .await
            .unwrap();
        // "HUB" is the same hub: the one topic equal to it ignoring case (issue 16 item 8).
        assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap());
    }
    let py = kafka_python_read(&env.broker.bootstrap(), hub).await;
    let by_body = |b: &str| {
        py.iter()
            .find(|r| r.value().unwrap() == b.as_bytes())
            .unwrap()
            .clone()
    };
    assert_eq!(by_body("p2").partition, 2);
    assert_eq!(by_body("p1").partition, 1);
    let plural = by_body("pub-plural");
    for b in ["pub-singular", "pub-upper", "pub-case"] {
        let r = by_body(b);
        assert_eq!(r.key().unwrap(), b"dev-9", "{b}");
        assert_eq!(r.partition, plural.partition, "{b}");
        assert_eq!(headers_map(r.headers())["x-opt-publisher"], "dev-9");
    }
    assert_eq!(py.len(), 7);
    // Unknown keywords are 404, not a send.
    let r = env
        .http
        .post(env.gateway.url(&format!("/{hub}/subscribers/x/messages")))
        .header("authorization", hub_send.as_str())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = env
        .http
        .post(env.gateway.url(&format!("/{hub}/partitions/7/messages")))
        .header("authorization", hub_send.as_str())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        py.len(),
        kafka_python_read(&env.broker.bootstrap(), hub).await.len()
    );
}

#[tokio::test]
async fn eventhubs_oversized_and_bad_batches_write_nothing_fails() {
    let hub = &unique("hub");
    // 256 KiB emulates the Event Hubs Basic tier.
    let env = Env::start("[limits]\nmax_publication_bytes = 262144").await;
    env.create_topic(hub, 2).await;
    let bootstrap = env.broker.bootstrap();
    let before = latest_offsets(&bootstrap, hub).await;
    let send = env.token("send", hub);
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        env.http
            .post(env.gateway.url(path))
            .header("authorization", send.as_str())
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = post(
        &format!("/{hub}/messages"),
        "application/octet-stream",
        vec![b'x'; 262_145],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], 41301);
    assert!(v["message"].as_str().unwrap().contains("262144"));
    let big_batch =
        json!([{"Body": "x".repeat(200_000)}, {"Body": "y".repeat(70_000)}]).to_string();
    assert_eq!(
        post(&format!("/{hub}/messages"), BATCH, big_batch.into_bytes())
            .await
            .unwrap()
            .status(),
        413
    );
    // Exactly at the limit is fine (and is written).
    let r = post(
        &format!("/{hub}/partitions/0/messages"),
        "application/octet-stream",
        vec![b'z'; 262_144],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let after_ok = latest_offsets(&bootstrap, hub).await;
    assert_eq!(after_ok[0], before[0] + 1);
    // A batch with one bad event writes none of its events.
    for bad in [
        json!([{"Body": "ok"}, {"Body": "%%%not base64", "IsBodyBase64": true}]),
        json!([{"Body": "ok"}, {"Body": "x", "UserProperties": {"nested": {"a": 1}}}]),
        json!([]),
        json!({"Body": "not an array"}),
    ] {
        let r = post(
            &format!("/{hub}/messages"),
            BATCH,
            bad.to_string().into_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error_code"], 40001);
    }
    let r = env
        .http
        .post(env.gateway.url(&format!("/{hub}/messages")))
        .header("authorization", send.as_str())
        .header("brokerproperties", "{not json")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        latest_offsets(&bootstrap, hub).await,
        after_ok,
        "nothing more written"
    );
}

const ATOM_REVOKE: &str = r#"<entry xmlns="http://www.w3.org/2005/Atom"><content type="application/xml"><RevokedPublisherDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"/></content></entry>"#;

#[tokio::test]
async fn revocation_lifecycle_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 2).await;
    let manage = env.token("manage", hub);
    let device = env.token("send", &format!("{hub}/publishers/dev-1"));
    let hub_send = env.token("send", hub);
    let send_as = |token: String, publisher: &'static str| {
        env.http
            .post(
                env.gateway
                    .url(&format!("/{hub}/publishers/{publisher}/messages")),
            )
            .header("authorization", token)
            .body("e")
            .send()
    };
    let call = |method: &str, path: &str, token: &str, body: &'static str| {
        env.http
            .request(method.parse().unwrap(), env.gateway.url(path))
            .header("authorization", token)
            .header(
                "content-type",
                "application/atom+xml;type=entry;charset=utf-8",
            )
            .body(body)
            .send()
    };
    assert_eq!(
        send_as(device.clone(), "dev-1").await.unwrap().status(),
        201
    );

    // Only Manage may revoke.
    assert_eq!(
        call(
            "PUT",
            &format!("/{hub}/revokedpublishers/dev-1"),
            &hub_send,
            ""
        )
        .await
        .unwrap()
        .status(),
        401
    );
    let r = call(
        "PUT",
        &format!("/{hub}/RevokedPublishers/dev-1?timeout=60&api-version=2014-05"),
        &manage,
        ATOM_REVOKE,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    // An Event Hubs REST client (Atom body, api-version) gets the documented Atom entry.
    assert_eq!(
        r.headers()["content-type"],
        "application/atom+xml;type=entry;charset=utf-8"
    );
    let entry = r.text().await.unwrap();
    assert!(
        entry.starts_with(r#"<entry xmlns="http://www.w3.org/2005/Atom">"#)
            && entry.contains("<RevokedPublisherDescription")
            && entry.contains("<Name>dev-1</Name>"),
        "{entry}"
    );
    let r = call(
        "PUT",
        &format!("/{hub}/revokedpublishers/DEV-1"),
        &manage,
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        409,
        "already revoked (names are case-insensitive)"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], 40902, "the code README documents: {v}");

    // The device's own token and a hub-wide Send token are both refused for that publisher.
    let r = send_as(device.clone(), "dev-1").await.unwrap();
    assert_eq!(r.status(), 401);
    let msg = r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("revoked"), "{msg}");
    assert_eq!(
        send_as(hub_send.clone(), "dev-1").await.unwrap().status(),
        401
    );
    assert_eq!(
        send_as(hub_send.clone(), "dev-2").await.unwrap().status(),
        201,
        "others unaffected"
    );

    // The list: an Atom feed to an Atom client, JSON to one that asks for it.
    let r = call("GET", &format!("/{hub}/revokedpublishers"), &manage, "")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/atom+xml;type=feed;charset=utf-8"
    );
    let feed = r.text().await.unwrap();
    assert!(
        feed.starts_with(r#"<feed xmlns="http://www.w3.org/2005/Atom">"#)
            && feed.matches("<entry>").count() == 1
            && feed.contains("<Name>dev-1</Name>"),
        "{feed}"
    );
    let list = revoked_json(&env, hub, &manage).await;
    assert_eq!(list["revoked_publishers"].as_array().unwrap().len(), 1);
    assert_eq!(list["revoked_publishers"][0]["publisher"], "dev-1");
    assert_eq!(
        list["revoked_publishers"][0]["revoked_by"],
        format!("sas:manage@{hub}")
    );

    assert_eq!(
        call(
            "DELETE",
            &format!("/{hub}/revokedpublishers/dev-1"),
            &manage,
            ""
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        call(
            "DELETE",
            &format!("/{hub}/revokedpublishers/dev-1"),
            &manage,
            ""
        )
        .await
        .unwrap()
        .status(),
        404
    );
    assert_eq!(
        send_as(device, "dev-1").await.unwrap().status(),
        201,
        "resumed"
    );
    let list: Value = env
        .http
        .get(env.gateway.url(&format!("/{hub}/revokedPublishers")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["revoked_publishers"].as_array().unwrap().is_empty());
}

/// Revokes through one process and measures how long until the other refuses.
/// `GET /{hub}/revokedpublishers` as JSON (asked for with `Accept`), answered 200.
async fn revoked_json(env: &Env, hub: &str, manage: &str) -> Value {
    let r = env
        .http
        .get(env.gateway.url(&format!("/{hub}/revokedpublishers")))
        .header("authorization", manage)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn time_until_status(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    want: u16,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = client
            .post(url)
            .header("authorization", token)
            .body("e")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {status} after 5 s, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn revocation_two_processes_and_restarts_ok() {
    let hub = &unique("hub");
    // A broker of its own: it restarts.
    let mut broker = KafkaCluster::start(1);
    let toml = test_config_toml(&broker.bootstrap(), "");
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let mut a = HubgateProcess::start(&toml);
    let b = HubgateProcess::start(&toml);
    let client = http();
    let manage = token_1h(&config, "manage", "");
    let device = token_1h(&config, "send", &format!("{hub}/publishers/dev-1"));
    let r = client
        .put(a.url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let send_b = b.url(&format!("/{hub}/publishers/dev-1/messages"));
    let send_a = a.url(&format!("/{hub}/publishers/dev-1/messages"));
    for url in [&send_a, &send_b] {
        assert_eq!(
            client
                .post(url)
                .header("authorization", &device)
                .body("e")
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
    }

    // Revoke through A; B refuses within revocation_refresh_ms (1 s).
    let r = client
        .put(a.url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let delay = time_until_status(&client, &send_b, &device, 401).await;
    println!("revocation through A refused by B after {delay:?}");
    assert!(
        delay <= Duration::from_millis(1500),
        "B refused only after {delay:?}"
    );

    // Resume through B; A accepts again.
    let r = client
        .delete(b.url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let delay = time_until_status(&client, &send_a, &device, 201).await;
    println!("resume through B accepted by A after {delay:?}");
    assert!(
        delay <= Duration::from_millis(1500),
        "A accepted only after {delay:?}"
    );

    // Revoke again; the revocation survives a restart of hubgate and of the broker.
    let r = client
        .put(b.url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    a.restart();
    let client = http(); // the old pooled connections died with the process
    assert_eq!(
        client
            .post(&send_a)
            .header("authorization", &device)
            .body("e")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    broker.restart();
    let delay = time_until_status(&client, &send_a, &device, 401).await;
    println!("after the broker restart A refuses the revoked publisher ({delay:?})");
    let other = token_1h(&config, "send", &format!("{hub}/publishers/dev-2"));
    let url = a.url(&format!("/{hub}/publishers/dev-2/messages"));
    time_until_status(&client, &url, &other, 201).await;
}

#[tokio::test]
async fn revocation_sdk_tokens_send_then_fail_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 2).await;
    let key = env.primary_key("send");
    let manage = env.token("manage", hub);
    for (sdk, publisher) in [
        (Sdk::Python, "py-device"),
        (Sdk::JavaScript, "js-device"),
        (Sdk::Java, "java-device"),
    ] {
        let audience = format!("https://{NAMESPACE}/{hub}/publishers/{publisher}");
        let token = sdk_token(sdk, "send", &key, &audience).await;
        let url = env
            .gateway
            .url(&format!("/{hub}/publishers/{publisher}/messages"));
        let r = env
            .http
            .post(&url)
            .header("authorization", &token)
            .body(format!("from {sdk:?}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "{sdk:?} token: {}",
            r.text().await.unwrap()
        );
        // The same token on another publisher's path is refused.
        let other = env
            .gateway
            .url(&format!("/{hub}/publishers/someone-else/messages"));
        assert_eq!(
            env.http
                .post(&other)
                .header("authorization", &token)
                .body("x")
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let r = env
            .http
            .put(
                env.gateway
                    .url(&format!("/{hub}/revokedpublishers/{publisher}")),
            )
            .header("authorization", &manage)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = env
            .http
            .post(&url)
            .header("authorization", &token)
            .body("after revoke")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{sdk:?} token after revocation");
    }
    let py = kafka_python_read(&env.broker.bootstrap(), hub).await;
    let bodies: Vec<Vec<u8>> = py.iter().map(|r| r.value().unwrap()).collect();
    for sdk in ["Python", "JavaScript", "Java"] {
        assert!(
            bodies.contains(&format!("from {sdk}").into_bytes()),
            "{sdk}"
        );
    }
    assert_eq!(py.len(), 3, "nothing written after the revocations");
}

/// Issue 16 items 12 and 13: one publisher, one name. The same publisher typed in three
/// cases is one key, one `x-opt-publisher` and one partition; names only an SDK's encoding
/// can carry (a space, `'()*!~`, non-ASCII) send with SDK-minted tokens, and revoking the
/// name in another case locks the token out.
#[tokio::test]
async fn publisher_names_any_case_and_sdk_minted_one_name_ok() {
    use hubgate_server::sas::encode_uri_component as enc;
    let hub = &unique("names");
    let env = Env::start("").await;
    env.create_topic(hub, 8).await;
    let send_hub = env.token("send", hub);
    let post = |path: String, token: String, body: String| {
        let req = env
            .http
            .post(env.gateway.url(&path))
            .header("authorization", token)
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for typed in ["Device-Upper", "device-upper", "DEVICE-UPPER"] {
        let path = format!("/{hub}/publishers/{typed}/messages");
        let (status, text) = post(path, send_hub.clone(), format!("as {typed}")).await;
        assert_eq!(status, 201, "{typed}: {text}");
    }
    let key = env.primary_key("send");
    let manage = env.token("manage", hub);
    let names = ["dev ice", "it's(1)*!~", "Zürich-東京"];
    for (sdk, name) in [
        (Sdk::Python, names[0]),
        (Sdk::JavaScript, names[1]),
        (Sdk::Java, names[2]),
        (Sdk::Python, names[2]),
        (Sdk::JavaScript, names[0]),
    ] {
        // The audience as a user writes it, the name as typed: the SDK encodes it.
        let audience = format!("https://{NAMESPACE}/{hub}/publishers/{name}");
        let token = sdk_token(sdk, "send", &key, &audience).await;
        let path = format!("/{hub}/publishers/{}/messages", enc(name));
        let (status, text) = post(path.clone(), token.clone(), format!("{sdk:?} {name}")).await;
        assert_eq!(status, 201, "{sdk:?} token for {name:?}: {text}");
        // Revoked in upper case (the path as another client types it): locked out.
        let revoke = format!(
            "/{hub}/revokedpublishers/{}",
            enc(&name.to_ascii_uppercase())
        );
        let r = env
            .http
            .put(env.gateway.url(&revoke))
            .header("authorization", &manage)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "revoke {name:?}");
        let (status, _) = post(path, token, "after revoke".into()).await;
        assert_eq!(status, 401, "{sdk:?} token for revoked {name:?}");
        // The list names it in its canonical form, as revoked in upper case.
        let list = revoked_json(&env, hub, &manage).await;
        assert_eq!(
            list["revoked_publishers"][0]["publisher"],
            name.to_ascii_lowercase(),
            "{list}"
        );
        let r = env
            .http
            .delete(env.gateway.url(&revoke))
            .header("authorization", &manage)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "resume {name:?}");
    }
    // A `/` (encoded) or a control character is refused, nothing written.
    for bad in ["a%2Fb", "a%0Ab", "%FF"] {
        let (status, text) = post(
            format!("/{hub}/publishers/{bad}/messages"),
            send_hub.clone(),
            "bad".into(),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {text}");
    }

    let records = kafka_python_read(&env.broker.bootstrap(), hub).await;
    let publisher_of = |r: &hubgate_tests::PyRecord| {
        r.headers()
            .into_iter()
            .find(|(k, _)| k == "x-opt-publisher")
            .map(|(_, v)| String::from_utf8(v).unwrap())
    };
    let upper: Vec<_> = records
        .iter()
        .filter(|r| r.value().unwrap().starts_with(b"as "))
        .collect();
    assert_eq!(upper.len(), 3);
    for r in &upper {
        assert_eq!(r.key().as_deref(), Some(&b"device-upper"[..]));
        assert_eq!(publisher_of(r).as_deref(), Some("device-upper"));
        assert_eq!(
            r.partition, upper[0].partition,
            "one publisher, one partition"
        );
    }
    for name in names {
        let canonical = name.to_ascii_lowercase();
        let sent: Vec<_> = records
            .iter()
            .filter(|r| r.key().as_deref() == Some(canonical.as_bytes()))
            .collect();
        assert!(
            !sent.is_empty(),
            "{name:?} was written under its canonical name"
        );
        for r in sent {
            assert_eq!(publisher_of(r).as_deref(), Some(canonical.as_str()));
        }
    }
    assert_eq!(
        records.len(),
        3 + 5,
        "nothing written after a revocation or a refusal"
    );
}

/// Issue 16 item 8: topics `X-A` and `x-a` made outside hubgate are one hub to every
/// credential (hub names are case-insensitive), so hubgate serves neither: 409 on every
/// spelling and route, nothing written, both before and after this process read the topic
/// list. A topic with one spelling is reached by any spelling.
#[tokio::test]
async fn hub_case_twin_topics_refused_and_single_topic_any_case_ok() {
    let lower = unique("twin");
    let upper = lower.to_ascii_uppercase();
    let solo = unique("Solo");
    let env = Env::start("").await;
    let admin = hubgate_tests::kafka_with(&env.broker.bootstrap(), |_| {});
    for topic in [&upper, &lower, &solo] {
        admin.create_topic(topic, 1, 1, &[]).await.unwrap();
    }
    let send = env.token("send", &lower);
    let listen = env.token("listen", &lower);
    let post = |path: String, token: String| {
        let req = env
            .http
            .post(env.gateway.url(&path))
            .header("authorization", token)
            .body("e");
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The first request of this process (no topic list yet), then the others.
    for hub in [&upper, &lower, &upper] {
        let (status, text) = post(format!("/{hub}/messages"), send.clone()).await;
        assert_eq!(status, 409, "/{hub}/messages: {text}");
        assert!(text.contains("40904") && text.contains(&upper), "{text}");
        let (status, text) = post(format!("/{hub}/partitions/0/messages"), send.clone()).await;
        assert_eq!(status, 409, "{text}");
        let r = env
            .http
            .get(
                env.gateway
                    .url(&format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0")),
            )
            .header("authorization", &listen)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409, "read {hub}");
    }
    for topic in [&upper, &lower] {
        assert_eq!(
            latest_offsets(&env.broker.bootstrap(), topic).await,
            [0],
            "nothing written to {topic}"
        );
    }
    // One topic, any spelling: the token for its lower-case name sends to it.
    let send_solo = env.token("send", &solo.to_ascii_lowercase());
    for hub in [
        solo.to_ascii_lowercase(),
        solo.to_ascii_uppercase(),
        solo.clone(),
    ] {
        let (status, text) = post(format!("/{hub}/messages"), send_solo.clone()).await;
        assert_eq!(status, 201, "/{hub}/messages: {text}");
    }
    assert_eq!(latest_offsets(&env.broker.bootstrap(), &solo).await, [3]);
}
