//! Reading a partition for an HTTP request: up to `count` records and about `max_bytes` of
//! them from an offset, optionally waiting (long poll) until at least one arrives.
//!
//! A waiting read holds no records and no buffer while it waits, and no fetch open on the
//! shared Kafka connection: it waits on the partition's watch (`Kafka::wait_for_records`),
//! woken at once by appends of this process and within 100 ms by appends of others. Readers
//! woken together at the same offset share one fetch (`Kafka::fetch`).

use std::time::Duration;

use hubgate_server::{Kafka, KafkaError};
use rskafka::record::RecordAndOffset;
use tokio::time::Instant;

/// Most fetch round trips one read makes once it has records.
const MAX_FETCHES: usize = 64;

/// Pause before reading again past offsets that held no records.
const PAUSE: Duration = Duration::from_millis(100);

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
    let mut woken = false;
    loop {
        let max_fetch = i32::try_from(bytes_left).unwrap_or(i32::MAX);
        let (batch, high_watermark) = kafka.fetch(topic, partition, next, max_fetch, 0).await?;
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
        if Instant::now() >= deadline {
            break;
        }
        if next < high_watermark || woken {
            // Offsets without records for us (e.g. transaction markers), or woken for
            // nothing (the watch's end offset was stale): look again after a pause, never in
            // a busy loop.
            tokio::time::sleep(PAUSE.min(deadline - Instant::now())).await;
            woken = false;
        } else {
            kafka
                .wait_for_records(topic, partition, next, deadline)
                .await?;
            woken = true;
        }
    }
    Ok(Read { records, next })
}
