//! A key → JSON value map kept in a compacted Kafka topic (one partition), the store behind
//! revoked publishers and consumer groups with their checkpoints: Kafka is the only
//! database. A record with a value sets its key; a tombstone (no value) removes it.
//!
//! Each process holds the whole map in memory and reads what is new incrementally, one
//! fetch round trip per refresh, one refresh at a time (concurrent callers wait for it
//! instead of starting their own). Writes go to Kafka first and are then read back, so the
//! map only ever changes in topic order and an acknowledged write is in it when the write
//! returns. A refresh reads at least to the end of the process's own acknowledged
//! writes, waiting out a new partition leader's lagging high watermark. Every entry remembers the offset it was written at: an entry's *generation*.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rskafka::record::Record;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Kafka, KafkaError};

const PARTITION: i32 = 0;
const FETCH_BYTES: i32 = 1024 * 1024;
/// Bound on fetch round trips in one refresh (each returns up to `FETCH_BYTES`).
const MAX_FETCHES: usize = 1000;

/// How long a refresh waits for the partition's high watermark to reach this process's own
/// acknowledged writes (right after a leader election the new leader's high watermark can
/// lag what the old one acknowledged until followers fetch from it), and how often it looks.
const CATCH_UP_TIME: Duration = Duration::from_secs(3);
const CATCH_UP_EVERY: Duration = Duration::from_millis(50);

/// A record as read: offset, key, value (`None`: a tombstone).
type Update<V> = (i64, String, Option<V>);

/// One entry: the value and the offset it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<V> {
    pub offset: i64,
    pub value: V,
}

#[derive(Debug)]
struct State<V> {
    entries: HashMap<String, Entry<V>>,
    next_offset: i64,
    /// When the last complete refresh started: it saw every write acknowledged before then.
    refreshed_at: Option<Instant>,
    /// Every write this process had acknowledged lies before this offset: a refresh reads at
    /// least this far (read your own writes, also across a leader change).
    acknowledged_until: i64,
    topic_ready: bool,
}

impl<V> Default for State<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            next_offset: 0,
            refreshed_at: None,
            acknowledged_until: 0,
            topic_ready: false,
        }
    }
}

/// The map of one compacted topic, as this process last read it.
#[derive(Debug)]
pub struct Table<V> {
    kafka: Arc<Kafka>,
    topic: String,
    /// `None`: min(3, brokers).
    replication_factor: Option<i16>,
    state: RwLock<State<V>>,
    refresh_lock: tokio::sync::Mutex<()>,
    _value: PhantomData<fn() -> V>,
}

impl<V: Serialize + DeserializeOwned + Clone> Table<V> {
    /// The table in `topic` (created with `replication_factor` when missing, min(3, brokers)
    /// when that is `None`); nothing is read until first use.
    pub fn new(kafka: Arc<Kafka>, topic: &str, replication_factor: Option<i16>) -> Self {
        Self {
            kafka,
            topic: topic.to_owned(),
            replication_factor,
            state: RwLock::new(State::default()),
            refresh_lock: tokio::sync::Mutex::new(()),
            _value: PhantomData,
        }
    }

    fn read_state(&self) -> parking_lot::RwLockReadGuard<'_, State<V>> {
        self.state.read()
    }

    fn write_state(&self) -> parking_lot::RwLockWriteGuard<'_, State<V>> {
        self.state.write()
    }

    /// Looks at the map as last read (no I/O).
    pub fn view<R>(&self, f: impl FnOnce(&HashMap<String, Entry<V>>) -> R) -> R {
        f(&self.read_state().entries)
    }

    /// Entries as last read, and how long ago the last complete refresh began (`None`
    /// before the first): for metrics.
    pub fn stats(&self) -> (usize, Option<Duration>) {
        let state = self.read_state();
        (state.entries.len(), state.refreshed_at.map(|t| t.elapsed()))
    }

    /// Creates the compacted topic when it is missing; refuses an existing one that is not
    /// compacted (retention would delete its entries: revoked publishers would come back).
    async fn ensure_topic(&self) -> Result<(), KafkaError> {
        if self.read_state().topic_ready {
            return Ok(());
        }
        match self.kafka.partition_count(&self.topic).await {
            Ok(_) => self.check_compacted().await?,
            Err(KafkaError::UnknownTopic(_)) => {
                let factor = match self.replication_factor {
                    Some(f) => f,
                    None => {
                        let brokers = self.kafka.cluster().await?.brokers.len();
                        i16::try_from(brokers.clamp(1, 3)).unwrap_or(1)
                    }
                };
                let mut configs = vec![("cleanup.policy".to_owned(), "compact".to_owned())];
                if factor >= 3 {
                    // An acknowledged write survives the loss of one broker, and writes go
                    // on while one broker is down.
                    configs.push(("min.insync.replicas".to_owned(), "2".to_owned()));
                }
                match self
                    .kafka
                    .create_topic(&self.topic, 1, factor, &configs)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(topic = %self.topic, replication_factor = factor, "created a compacted store topic");
                    }
                    // Another instance created it first.
                    Err(KafkaError::TopicExists(_)) => self.check_compacted().await?,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        self.write_state().topic_ready = true;
        Ok(())
    }

    /// Fails with [`KafkaError::StoreNotCompacted`] unless the topic's `cleanup.policy` is
    /// exactly `compact` (`compact,delete` deletes entries past `retention.ms` too).
    async fn check_compacted(&self) -> Result<(), KafkaError> {
        let configs = self
            .kafka
            .topic_configs(&self.topic, Some(&["cleanup.policy"]))
            .await?;
        let policy = configs
            .get("cleanup.policy")
            .cloned()
            .flatten()
            .unwrap_or_default();
        if policy.split(',').map(str::trim).eq(["compact"]) {
            Ok(())
        } else {
            Err(KafkaError::StoreNotCompacted {
                topic: self.topic.clone(),
                policy,
            })
        }
    }

    /// Reads everything new in the topic now.
    pub async fn refresh(&self) -> Result<(), KafkaError> {
        let _guard = self.refresh_lock.lock().await;
        self.refresh_locked().await
    }

    /// Refreshes unless a refresh started after this call did: afterwards the map holds
    /// every write any process had acknowledged when this was called. Concurrent callers
    /// share one refresh.
    pub async fn sync(&self) -> Result<(), KafkaError> {
        let asked = Instant::now();
        let _guard = self.refresh_lock.lock().await;
        let done = {
            let state = self.read_state();
            state.refreshed_at.is_some_and(|t| t >= asked)
                && state.next_offset >= state.acknowledged_until
        };
        if done {
            return Ok(());
        }
        self.refresh_locked().await
    }

    /// Refreshes if the last refresh is older than `max_age` (single-flight).
    pub async fn fresh(&self, max_age: Duration) -> Result<(), KafkaError> {
        let stale = |s: &State<V>| s.refreshed_at.is_none_or(|t| t.elapsed() >= max_age);
        if !stale(&self.read_state()) {
            return Ok(());
        }
        let _guard = self.refresh_lock.lock().await;
        if !stale(&self.read_state()) {
            return Ok(()); // another request refreshed while we waited
        }
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<(), KafkaError> {
        self.ensure_topic().await.map_err(|e| self.unavailable(e))?;
        let started = Instant::now();
        let (from, until) = {
            let state = self.read_state();
            (state.next_offset, state.acknowledged_until)
        };
        let (updates, next, reload) = match self.read_from(from, until).await {
            Ok((updates, next)) => (updates, next, false),
            Err(KafkaError::OffsetOutOfRange { earliest, .. }) if from != earliest => {
                // Before the start: retention removed what this process had not read. Past
                // the end: the topic was recreated. Either way the map no longer matches the
                // topic: read it all again.
                tracing::warn!(topic = %self.topic, next = from, earliest, "store topic offsets moved; reloading it");
                let (updates, next) = self.read_from(earliest, until).await?;
                (updates, next, true)
            }
            Err(e) => return Err(e),
        };
        let mut state = self.write_state();
        if reload {
            state.entries.clear();
        }
        for (offset, k, v) in updates {
            match v {
                Some(value) => state.entries.insert(k, Entry { offset, value }),
                None => state.entries.remove(&k),
            };
        }
        state.next_offset = next;
        state.refreshed_at = Some(started);
        Ok(())
    }

    /// Reads the topic from `from` to its end, and at least to `until` (at most
    /// [`MAX_FETCHES`] round trips; a high watermark below `until` is waited for up to
    /// [`CATCH_UP_TIME`], then the store is unavailable): the `(offset, key, value)` records in
    /// topic order, and the offset to read next.
    async fn read_from(&self, from: i64, until: i64) -> Result<(Vec<Update<V>>, i64), KafkaError> {
        let mut next = from;
        let mut updates = Vec::new();
        let started = Instant::now();
        for _ in 0..MAX_FETCHES {
            let (records, high_watermark) = match self
                .kafka
                .fetch(&self.topic, PARTITION, next, FETCH_BYTES, 0)
                .await
            {
                Ok(r) => r,
                Err(e @ (KafkaError::UnknownTopic(_) | KafkaError::UnknownPartition { .. })) => {
                    // The topic was deleted (the next refresh recreates it), or its partition
                    // is between leaders.
                    self.write_state().topic_ready = false;
                    return Err(self.unavailable(e));
                }
                Err(e) => return Err(e),
            };
            let start = next;
            for r in records.into_iter().filter(|r| r.offset >= start) {
                next = r.offset + 1;
                let Some(k) = r.record.key.and_then(|k| String::from_utf8(k).ok()) else {
                    continue;
                };
                let value = match r.record.value {
                    None => None,
                    Some(v) => match serde_json::from_slice(&v) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            // Written by something else (or a newer hubgate): not ours to use.
                            tracing::warn!(topic = %self.topic, offset = r.offset, error = %e, "ignoring an unreadable store record");
                            continue;
                        }
                    },
                };
                updates.push((r.offset, k, value));
            }
            if next >= high_watermark && next >= until {
                break;
            }
            if next >= high_watermark {
                if started.elapsed() >= CATCH_UP_TIME {
                    tracing::warn!(topic = %self.topic, high_watermark, acknowledged_until = until, "store partition's high watermark is behind this process's acknowledged writes");
                    return Err(KafkaError::PartitionNotReady {
                        topic: self.topic.clone(),
                        partition: PARTITION,
                    });
                }
                tokio::time::sleep(CATCH_UP_EVERY).await;
            }
        }
        Ok((updates, next))
    }

    /// Where the map ends: it holds every record before this offset (no I/O).
    pub fn next_offset(&self) -> i64 {
        self.read_state().next_offset
    }

    /// The records of `key` from offset `from` to the topic's end, read from Kafka now:
    /// `(offset, value)` in topic order (`None`: removed). A writer uses it to learn what
    /// other processes wrote to the key around its own write.
    pub async fn history(&self, key: &str, from: i64) -> Result<Vec<(i64, Option<V>)>, KafkaError> {
        let until = self.read_state().acknowledged_until;
        let (updates, _) = self.read_from(from, until).await?;
        Ok(updates
            .into_iter()
            .filter(|(_, k, _)| k == key)
            .map(|(offset, _, value)| (offset, value))
            .collect())
    }

    /// Writes `(key, value)` pairs (`None`: remove) as one produce request, then reads them
    /// back. Returns the offsets they were written at.
    pub async fn write(&self, writes: Vec<(String, Option<V>)>) -> Result<Vec<i64>, KafkaError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        // A value that cannot be serialised fails the write: nothing is written (an empty
        // value would read back as a record that does not parse).
        let records = writes
            .into_iter()
            .map(|(key, value)| {
                let value = value
                    .map(|v| serde_json::to_vec(&v))
                    .transpose()
                    .map_err(|e| KafkaError::Encode(e.to_string()))?;
                Ok(Record {
                    key: Some(key.into_bytes()),
                    value,
                    headers: Default::default(),
                    timestamp: Utc::now(),
                })
            })
            .collect::<Result<Vec<_>, KafkaError>>()?;
        let offsets = self
            .kafka
            .produce(&self.topic, PARTITION, records)
            .await
            .map_err(|e| self.unavailable(e))?;
        if let Some(last) = offsets.iter().max() {
            let mut state = self.write_state();
            state.acknowledged_until = state.acknowledged_until.max(last + 1);
        }
        self.sync().await?;
        Ok(offsets)
    }

    /// The store is unavailable (retry), whatever Kafka said of its topic: a request that
    /// needs it must never answer that the store topic does not exist (404) to a client that
    /// did not name it (seen while the store's partition changed leaders).
    fn unavailable(&self, e: KafkaError) -> KafkaError {
        match e {
            KafkaError::UnknownTopic(_) | KafkaError::UnknownPartition { .. } => {
                KafkaError::PartitionNotReady {
                    topic: self.topic.clone(),
                    partition: PARTITION,
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn table_write_unserialisable_value_fails() {
        // Nothing listens there: the write must fail before it is sent.
        let config = crate::config::KafkaConfig {
            bootstrap_servers: vec!["127.0.0.1:1".into()],
            request_timeout: Duration::from_millis(100),
            ..Default::default()
        };
        let kafka = Arc::new(Kafka::new(&config).unwrap_or_else(|e| panic!("{e}")));
        // JSON object keys must be strings: a map keyed by numbers pairs does not serialise.
        let table: Table<std::collections::BTreeMap<(i32, i32), i32>> =
            Table::new(kafka, "t", Some(1));
        let value = std::collections::BTreeMap::from([((1, 2), 3)]);
        let result = table.write(vec![("k".into(), Some(value))]).await;
        assert!(matches!(result, Err(KafkaError::Encode(_))), "{result:?}");
    }
}
