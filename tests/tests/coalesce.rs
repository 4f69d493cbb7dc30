//! Coalesced produce against a real broker (TCP_NODELAY: `nodelay.rs`, its own process).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use futures::future::join_all;
use hubgate_server::{Kafka, KafkaError};
use hubgate_tests::{SharedKafka, kafka_with as kafka, text_record as record, unique};

/// `requests` concurrent produce calls of 3 records each; returns each call's result.
async fn produce_concurrently(
    k: &Kafka,
    topic: &str,
    requests: usize,
) -> Vec<Result<Vec<i64>, KafkaError>> {
    join_all((0..requests).map(|i| {
        let records = (0..3).map(|j| record(&format!("r{i}-{j}"))).collect();
        k.produce(topic, 0, records)
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesce_concurrent_requests_share_produce_requests_ok() {
    let k = kafka(&SharedKafka::get().bootstrap(), |_| {});
    let topic = &unique("co");
    k.create_topic(topic, 1, 1, &[]).await.unwrap();
    let results = produce_concurrently(&k, topic, 200).await;

    let mut seen = HashSet::new();
    for (i, r) in results.iter().enumerate() {
        let offsets = r.as_ref().unwrap();
        assert_eq!(offsets.len(), 3, "request {i}: its own three offsets");
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "request {i}: its records stay together and in order: {offsets:?}"
        );
        for o in offsets {
            assert!(seen.insert(*o), "offset {o} given to two requests");
        }
    }
    assert_eq!(seen.len(), 600);
    let sent = k.produce_requests();
    println!("200 concurrent requests -> {sent} Kafka produce requests");
    assert!(
        sent < 200,
        "no coalescing happened: {sent} produce requests"
    );

    // Each request's offsets hold exactly its records.
    let (records, _) = k.fetch(topic, 0, 0, 1 << 20, 1000).await.unwrap();
    let by_offset: BTreeMap<i64, Vec<u8>> = records
        .into_iter()
        .map(|r| (r.offset, r.record.value.unwrap()))
        .collect();
    assert_eq!(by_offset.len(), 600);
    for (i, r) in results.iter().enumerate() {
        for (j, o) in r.as_ref().unwrap().iter().enumerate() {
            assert_eq!(by_offset[o], format!("r{i}-{j}").into_bytes());
        }
    }
}

#[tokio::test]
async fn coalesce_off_one_produce_request_each_ok() {
    let k = kafka(&SharedKafka::get().bootstrap(), |c| c.coalesce = false);
    let topic = &unique("plain");
    k.create_topic(topic, 1, 1, &[]).await.unwrap();
    let results = produce_concurrently(&k, topic, 20).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(k.produce_requests(), 20);
}

/// On a current-thread runtime the queue cannot drain while the requests are submitted: the
/// first request is in flight (sent from its own task), the second waits (one request may
/// always wait), and everything after exceeds a one-byte pending limit.
#[tokio::test]
async fn coalesce_pending_limit_answers_busy_fails() {
    let k = kafka(&SharedKafka::get().bootstrap(), |c| c.max_pending_bytes = 1);
    let topic = &unique("busy");
    k.create_topic(topic, 1, 1, &[]).await.unwrap();
    k.produce(topic, 0, vec![record("warm")]).await.unwrap(); // partition client cached
    let results = produce_concurrently(&k, topic, 5).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(results[1].is_ok(), "{:?}", results[1]);
    for r in &results[2..] {
        let e = r.as_ref().unwrap_err();
        assert!(matches!(e, KafkaError::Busy), "{e:?}");
        assert_eq!(hubgate_server::http::kafka_status(e).0, 503);
    }
}

/// A request that sends its own records (its partition's queue was idle) and is dropped
/// mid-flight, as when its HTTP client goes away, hands the queue on: requests queued behind
/// it are sent, and later ones too. Regression: without the hand-off in `Lead`'s drop the
/// queue stayed "running" with nobody sending, and every later request timed out.
/// On a current-thread runtime, so that the broker's answer cannot be read (by rskafka's
/// reader task) during the lead's first poll: the lead is always still in flight there.
#[tokio::test]
async fn coalesce_lead_dropped_in_flight_hands_queue_on_ok() {
    let k = std::sync::Arc::new(kafka(&SharedKafka::get().bootstrap(), |c| {
        c.request_timeout = std::time::Duration::from_secs(5);
    }));
    let topic = &unique("lead");
    k.create_topic(topic, 1, 1, &[]).await.unwrap();
    k.produce(topic, 0, vec![record("warm")]).await.unwrap(); // partition client cached
    for round in 0..20 {
        // The lead, polled until it is in flight, then dropped.
        let mut lead = Box::pin(k.produce(topic, 0, vec![record(&format!("dropped-{round}"))]));
        let first = futures::poll!(lead.as_mut());
        assert!(first.is_pending(), "round {round}: {first:?}");
        // One queued behind it, submitted before the lead goes.
        let k2 = std::sync::Arc::clone(&k);
        let t = topic.clone();
        let queued = tokio::spawn(async move {
            k2.produce(&t, 0, vec![record(&format!("queued-{round}"))])
                .await
        });
        tokio::task::yield_now().await;
        drop(lead);
        // Stuck, these would fail with a timeout.
        queued.await.unwrap().unwrap();
        k.produce(topic, 0, vec![record(&format!("after-{round}"))])
            .await
            .unwrap();
    }
}

/// Readers at the same offset at the same time (long polls woken by one append) share one
/// fetch request, and each gets all the records.
#[tokio::test]
async fn fetch_concurrent_same_offset_shares_one_request_ok() {
    let k = kafka(&SharedKafka::get().bootstrap(), |_| {});
    let topic = &unique("tail");
    k.create_topic(topic, 1, 1, &[]).await.unwrap();
    let records = (0..5).map(|i| record(&format!("e{i}"))).collect();
    k.produce(topic, 0, records).await.unwrap();
    // The partition client exists, so every fetch below is in flight at once.
    k.fetch(topic, 0, 0, 1 << 20, 0).await.unwrap();
    let before = k.fetch_requests();
    let answers = join_all((0..100).map(|_| k.fetch(topic, 0, 0, 1 << 20, 0))).await;
    for a in answers {
        let (records, high_watermark) = a.unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(high_watermark, 5);
    }
    let sent = k.fetch_requests() - before;
    println!("100 concurrent reads at one offset -> {sent} Kafka fetch request(s)");
    assert_eq!(sent, 1);
    // Another offset, or the same one later, is a new request.
    k.fetch(topic, 0, 1, 1 << 20, 0).await.unwrap();
    k.fetch(topic, 0, 0, 1 << 20, 0).await.unwrap();
    assert_eq!(k.fetch_requests() - before, 3);
}
