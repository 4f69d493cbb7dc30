//! `Idempotency-Key` on produce, end to end: retries are answered from memory and written once.
#![allow(clippy::unwrap_used)]

use futures::future::join_all;
use hubgate_tests::{Env, latest_offsets, unique};
use serde_json::json;

async fn written(env: &Env, hub: &str) -> i64 {
    latest_offsets(&env.broker.bootstrap(), hub)
        .await
        .iter()
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_retries_write_once_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 2).await;
    let dev1 = env.token("send", &format!("{hub}/publishers/dev-1"));
    let dev2 = env.token("send", &format!("{hub}/publishers/dev-2"));
    let post = |path: &str, token: &str, key: &str, body: &str| {
        env.http
            .post(env.gateway.url(path))
            .header("authorization", token)
            .header("idempotency-key", key)
            .body(body.to_owned())
            .send()
    };

    // Event Hubs send: the retry is replayed, not written.
    let first = post(
        &format!("/{hub}/publishers/dev-1/messages"),
        &dev1,
        "k1",
        "a",
    )
    .await
    .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let again = post(
        &format!("/{hub}/publishers/dev-1/messages"),
        &dev1,
        "k1",
        "a",
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(written(&env, hub).await, 1);

    // Same key, different body: 422, nothing written. Another publisher: its own keys.
    let other = post(
        &format!("/{hub}/publishers/dev-1/messages"),
        &dev1,
        "k1",
        "b",
    )
    .await
    .unwrap();
    assert_eq!(other.status(), 422);
    let e: serde_json::Value = other.json().await.unwrap();
    assert_eq!(e["error_code"], 42201);
    let dev2_first = post(
        &format!("/{hub}/publishers/dev-2/messages"),
        &dev2,
        "k1",
        "a",
    )
    .await
    .unwrap();
    assert_eq!(dev2_first.status(), 201);
    assert_eq!(written(&env, hub).await, 2);

    // HDInsight produce: the replay carries the original offsets.
    let send = env.token("send", hub);
    let body = json!({"records": [{"value": 1}, {"value": 2}]}).to_string();
    let produce = || {
        env.http
            .post(env.gateway.url(&format!("/v1/producer/topics/{hub}")))
            .header("authorization", &send)
            .header("content-type", "application/json")
            .header("idempotency-key", "order-7")
            .body(body.clone())
            .send()
    };
    let a = produce().await.unwrap();
    assert_eq!(a.status(), 200);
    let a: serde_json::Value = a.json().await.unwrap();
    let b = produce().await.unwrap();
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    let b: serde_json::Value = b.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(written(&env, hub).await, 4);

    // Ten concurrent retries of one new request: written once; the others replay or 409.
    let results = join_all((0..10).map(|_| {
        post(
            &format!("/{hub}/publishers/dev-1/messages"),
            &dev1,
            "k-conc",
            "c",
        )
    }))
    .await;
    let statuses: Vec<u16> = results
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(written(&env, hub).await, 5, "{statuses:?}");

    // Without the header nothing changes: each request writes.
    for _ in 0..2 {
        let r = env
            .http
            .post(
                env.gateway
                    .url(&format!("/{hub}/publishers/dev-1/messages")),
            )
            .header("authorization", &dev1)
            .body("n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_eq!(written(&env, hub).await, 7);
}

/// A throttled answer is not final: the retry the README prescribes (after `Retry-After`)
/// runs and writes. The same key and body with other properties, `BrokerProperties` or as a
/// batch is another request: 422, nothing dropped in silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_throttled_retry_and_other_properties_ok() {
    let hub = &unique("hub");
    let env = Env::start("[[throttle]]\nevents_per_sec = 1\nburst = 1\n").await;
    env.create_topic(hub, 1).await;
    let token = env.token("send", &format!("{hub}/publishers/dev-1"));
    let url = env
        .gateway
        .url(&format!("/{hub}/publishers/dev-1/messages"));
    let post = |key: &str, extra: &[(&str, &str)]| {
        let mut r = env
            .http
            .post(&url)
            .header("authorization", &token)
            .header("idempotency-key", key);
        for (n, v) in extra {
            r = r.header(*n, *v);
        }
        r.body("[{\"Body\":\"x\"}]").send()
    };

    assert_eq!(post("other", &[]).await.unwrap().status(), 201); // spends the burst
    let throttled = post("k", &[]).await.unwrap();
    assert_eq!(throttled.status(), 429);
    let wait: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    let retried = post("k", &[]).await.unwrap();
    assert_eq!(retried.status(), 201);
    assert!(retried.headers().get("idempotent-replayed").is_none());
    assert_eq!(written(&env, hub).await, 2);

    for extra in [
        &[("alert", "high")][..],
        &[("brokerproperties", "{\"PartitionKey\":\"p\"}")][..],
        &[("content-type", "application/vnd.microsoft.servicebus.json")][..],
    ] {
        let r = post("k", extra).await.unwrap();
        assert_eq!(r.status(), 422, "{extra:?}");
    }
    let replay = post("k", &[]).await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(written(&env, hub).await, 2);
}
