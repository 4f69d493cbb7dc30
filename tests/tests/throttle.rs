//! Per-publisher throttling end to end: a noisy publisher gets 429 with `Retry-After`, a
//! quiet one on the same hub is not affected, and nothing refused is written.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::future::join_all;
use hubgate_tests::{Env, latest_offsets, unique};
use serde_json::json;

const BATCH: &str = "application/vnd.microsoft.servicebus.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_noisy_publisher_does_not_slow_others_ok() {
    let hub = &unique("hub");
    // 20 events/s per publisher, bursts of 20, on every hub.
    let env = Env::start("[[throttle]]\nevents_per_sec = 20\nburst = 20\n").await;
    env.create_topic(hub, 1).await;
    let send = |publisher: &'static str, events: usize| {
        let url = env
            .gateway
            .url(&format!("/{hub}/publishers/{publisher}/messages"));
        let token = env.token("send", &format!("{hub}/publishers/{publisher}"));
        let body = json!(
            (0..events)
                .map(|i| json!({"Body": format!("{publisher}-{i}")}))
                .collect::<Vec<_>>()
        );
        let http = env.http.clone();
        async move {
            let started = Instant::now();
            let r = http
                .post(url)
                .header("authorization", token)
                .header("content-type", BATCH)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = if status == 201 {
                json!(null)
            } else {
                r.json().await.unwrap()
            };
            (status, retry_after, body, started.elapsed())
        }
    };

    // The quiet publisher alone: 10 single events, 100 ms apart (half its rate).
    let quiet = |n| async move {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(send("quiet", 1).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out
    };
    let alone = quiet(10).await;
    assert!(alone.iter().all(|r| r.0 == 201));

    // Now with a noisy publisher hammering the same hub: 400 requests of 5 events, 16 at a time.
    let noisy = async {
        let mut results = Vec::new();
        for _ in 0..25 {
            results.extend(join_all((0..16).map(|_| send("noisy", 5))).await);
        }
        results
    };
    let (noisy, beside) = tokio::join!(noisy, quiet(10));
    let accepted = noisy.iter().filter(|r| r.0 == 201).count();
    let throttled: Vec<_> = noisy.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(
        accepted + throttled.len(),
        noisy.len(),
        "only 201 or 429: {:?}",
        noisy.iter().find(|r| r.0 != 201 && r.0 != 429)
    );
    assert!(
        !throttled.is_empty(),
        "the noisy publisher was never throttled"
    );
    for (_, retry_after, body, _) in &throttled {
        let secs: u64 = retry_after.as_deref().unwrap().parse().unwrap();
        assert!(secs >= 1);
        assert_eq!(body["error_code"], 42901);
        assert!(body["message"].as_str().unwrap().contains("ServerBusy"));
    }
    assert!(
        beside.iter().all(|r| r.0 == 201),
        "the quiet publisher was throttled: {beside:?}"
    );

    // A batch larger than the burst can never pass: 413, not 429.
    let (status, retry_after, body, _) = send("big", 21).await;
    assert_eq!((status, body["error_code"].as_u64()), (413, Some(41303)));
    assert!(retry_after.is_none());

    // Kafka holds exactly what was accepted.
    let written: i64 = latest_offsets(&env.broker.bootstrap(), hub)
        .await
        .iter()
        .sum();
    let expected = 10 + 10 + 5 * accepted;
    assert_eq!(written, i64::try_from(expected).unwrap());

    let ms = |rs: &[(u16, Option<String>, serde_json::Value, Duration)]| {
        let mut v: Vec<f64> = rs.iter().map(|r| r.3.as_secs_f64() * 1000.0).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (a50, amax) = ms(&alone);
    let (b50, bmax) = ms(&beside);
    println!(
        "throttle: noisy publisher {} requests, {accepted} accepted, {} answered 429; \
         quiet publisher alone p50 {a50:.1} ms max {amax:.1} ms, beside the noisy one p50 \
         {b50:.1} ms max {bmax:.1} ms, never throttled",
        noisy.len(),
        throttled.len()
    );
}
