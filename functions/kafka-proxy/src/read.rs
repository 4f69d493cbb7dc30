//! Reading a partition for an HTTP request: up to `count` records and about `max_bytes` of
//! them from an offset, optionally waiting (long poll) until at least one arrives.
//!
//! A waiting read holds no records and no buffer while it waits: it sits in the broker's
//! fetch wait (`max_wait_ms`) or on this process's append notification, and re-checks at
//! most every [`POLL_EVERY`] for brokers that answer a fetch at once (tansu does).

use std::time::Duration;

use hubgate_shared::{Kafka, KafkaError};
use rskafka::record::RecordAndOffset;
use tokio::time::Instant;

/// Most fetch round trips one read makes once it has records.
const MAX_FETCHES: usize = 64;

/// Longest broker-side wait asked for in one fetch.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

/// How often a waiting read looks again when the broker answered an empty fetch early.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// What a read found.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) records: Vec<RecordAndOffset>,
    /// Where the next read continues.
    pub(crate) next: i64,
}

/// Reads from `offset`: at most `count` records and about `max_bytes` of record data (at
/// least one record, however large). With `wait`, an empty partition is watched that long.
pub(crate) async fn read(
    kafka: &Kafka,
    topic: &str,
    partition: i32,
    offset: i64,
    count: usize,
    max_bytes: usize,
    wait: Duration,
) -> Result<Read, KafkaError> {
    let deadline = Instant::now() + wait;
    let mut records = Vec::new();
    let mut next = offset;
    let mut bytes_left = max_bytes;
    let mut fetches = 0;
    loop {
        // Registered before the fetch, so an append during the fetch still wakes us.
        let appended = kafka.appended(topic, partition);
        let notified = appended.notified();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let broker_wait = if records.is_empty() {
            remaining.min(MAX_FETCH_WAIT)
        } else {
            Duration::ZERO
        };
        let max_fetch = i32::try_from(bytes_left).unwrap_or(i32::MAX);
        let wait_ms = i32::try_from(broker_wait.as_millis()).unwrap_or(i32::MAX);
        let (batch, high_watermark) = kafka
            .fetch(topic, partition, next, max_fetch, wait_ms)
            .await?;
        fetches += 1;
        let mut progressed = false;
        for r in batch {
            if r.offset < next {
                continue;
            }
            let size = r.record.approximate_size();
            if records.len() == count || (size > bytes_left && !records.is_empty()) {
                bytes_left = 0;
                break;
            }
            bytes_left = bytes_left.saturating_sub(size);
            next = r.offset + 1;
            progressed = true;
            records.push(r);
        }
        if !records.is_empty() {
            let done = !progressed
                || records.len() == count
                || bytes_left == 0
                || next >= high_watermark
                || fetches >= MAX_FETCHES;
            if done {
                break;
            }
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Nothing yet: wait for an append here, or look again shortly.
        let pause = POLL_EVERY.min(deadline - now);
        let _ = tokio::time::timeout(pause, notified).await;
    }
    Ok(Read { records, next })
}
