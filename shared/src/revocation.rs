//! Revoked publishers, stored in Kafka itself: a compacted topic (default
//! `__hubgate_revocations`, one partition) keyed `<hub>/<publisher>` (lower-cased), a JSON
//! value while revoked, a tombstone once resumed.
//!
//! Every instance reads the topic at start-up and then incrementally, at most every
//! `revocation_refresh_ms`, on the request path: the first request after the interval reads
//! what is new (one fetch round trip) while concurrent requests wait for that one read
//! instead of starting their own. A revocation made through any instance therefore reaches
//! every instance within the interval. If the topic cannot be read, publisher requests fail
//! closed (503): a revoked publisher is never let in because Kafka was slow.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use rskafka::record::Record;
use serde::{Deserialize, Serialize};

use crate::authz::{AuthError, PUBLISHERS, Principal, Resource};
use crate::config::Config;
use crate::http::ApiError;
use crate::kafka::{Kafka, KafkaError};

/// One revoked publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub hub: String,
    pub publisher: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// Who revoked it (a principal name, never a credential).
    pub revoked_by: String,
}

#[derive(Debug, Default)]
struct State {
    revoked: HashMap<String, Revoked>,
    next_offset: i64,
    refreshed_at: Option<Instant>,
    topic_ready: bool,
}

/// The revocation list of this process, kept in step with the Kafka topic.
#[derive(Debug)]
pub struct Revocations {
    kafka: Arc<Kafka>,
    topic: String,
    refresh_every: Duration,
    replication_factor: i16,
    state: RwLock<State>,
    refresh_lock: tokio::sync::Mutex<()>,
}

const PARTITION: i32 = 0;
const FETCH_BYTES: i32 = 1024 * 1024;
/// Bound on fetch round trips in one refresh (each returns up to `FETCH_BYTES`).
const MAX_FETCHES: usize = 1000;

fn key(hub: &str, publisher: &str) -> String {
    format!("{}/{}", hub.to_lowercase(), publisher.to_lowercase())
}

impl Revocations {
    /// The store for `config`'s revocation topic; nothing is read until first use.
    pub fn new(kafka: Arc<Kafka>, config: &Config) -> Self {
        Self {
            kafka,
            topic: config.revocation_topic.clone(),
            refresh_every: Duration::from_millis(config.revocation_refresh_ms),
            replication_factor: config.revocation_replication_factor,
            state: RwLock::new(State::default()),
            refresh_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the compacted topic when it is missing.
    async fn ensure_topic(&self) -> Result<(), KafkaError> {
        if self.read_state().topic_ready {
            return Ok(());
        }
        match self.kafka.partition_count(&self.topic).await {
            Ok(_) => {}
            Err(KafkaError::UnknownTopic(_)) => {
                let configs = [("cleanup.policy".to_owned(), "compact".to_owned())];
                match self
                    .kafka
                    .create_topic(&self.topic, 1, self.replication_factor, &configs)
                    .await
                {
                    Ok(()) => tracing::info!(topic = %self.topic, "created the revocation topic"),
                    Err(KafkaError::TopicExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        self.write_state().topic_ready = true;
        Ok(())
    }

    /// Reads everything new in the topic now.
    pub async fn refresh(&self) -> Result<(), KafkaError> {
        let _guard = self.refresh_lock.lock().await;
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<(), KafkaError> {
        self.ensure_topic().await?;
        let started = Instant::now();
        let mut next = self.read_state().next_offset;
        let mut updates: Vec<(i64, String, Option<Revoked>)> = Vec::new();
        for _ in 0..MAX_FETCHES {
            let (records, high_watermark) = match self
                .kafka
                .fetch(&self.topic, PARTITION, next, FETCH_BYTES, 0)
                .await
            {
                Ok(r) => r,
                Err(KafkaError::OffsetOutOfRange { earliest, .. }) if next != earliest => {
                    // Before the start: compaction or retention removed what this instance
                    // had not read. Past the end: the topic was recreated. Either way the
                    // cache no longer matches the topic: reload it all.
                    tracing::warn!(
                        next,
                        earliest,
                        "revocation topic offsets moved; reloading it"
                    );
                    self.write_state().revoked.clear();
                    updates.clear();
                    next = earliest;
                    continue;
                }
                Err(e @ (KafkaError::UnknownTopic(_) | KafkaError::UnknownPartition { .. })) => {
                    // The topic was deleted: the next refresh recreates it.
                    self.write_state().topic_ready = false;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let from = next;
            for r in records.into_iter().filter(|r| r.offset >= from) {
                next = r.offset + 1;
                let Some(k) = r.record.key.and_then(|k| String::from_utf8(k).ok()) else {
                    continue;
                };
                let value = r.record.value.and_then(|v| serde_json::from_slice(&v).ok());
                updates.push((r.offset, k, value));
            }
            if next >= high_watermark {
                break;
            }
        }
        let mut state = self.write_state();
        for (_, k, v) in updates {
            match v {
                Some(entry) => state.revoked.insert(k, entry),
                None => state.revoked.remove(&k),
            };
        }
        state.next_offset = next;
        state.refreshed_at = Some(started);
        Ok(())
    }

    /// Refreshes if the last refresh is older than the interval (single-flight).
    async fn fresh(&self) -> Result<(), KafkaError> {
        let stale = |s: &State| {
            s.refreshed_at
                .is_none_or(|t| t.elapsed() >= self.refresh_every)
        };
        if !stale(&self.read_state()) {
            return Ok(());
        }
        let _guard = self.refresh_lock.lock().await;
        if !stale(&self.read_state()) {
            return Ok(()); // another request refreshed while we waited
        }
        self.refresh_locked().await
    }

    /// Whether `publisher` on `hub` is revoked, as of at most `revocation_refresh_ms` ago.
    pub async fn is_revoked(&self, hub: &str, publisher: &str) -> Result<bool, KafkaError> {
        self.fresh().await?;
        Ok(self.read_state().revoked.contains_key(&key(hub, publisher)))
    }

    /// Revokes `publisher`; `Ok(false)` if it already was.
    pub async fn revoke(&self, hub: &str, publisher: &str, by: &str) -> Result<bool, KafkaError> {
        self.refresh().await?;
        let k = key(hub, publisher);
        if self.read_state().revoked.contains_key(&k) {
            return Ok(false);
        }
        let entry = Revoked {
            hub: hub.to_owned(),
            publisher: publisher.to_owned(),
            revoked_at: Utc::now().timestamp(),
            revoked_by: by.to_owned(),
        };
        let value = serde_json::to_vec(&entry).unwrap_or_default();
        self.write(&k, Some(value)).await?;
        self.write_state().revoked.insert(k, entry);
        Ok(true)
    }

    /// Resumes `publisher`; `Ok(false)` if it was not revoked.
    pub async fn resume(&self, hub: &str, publisher: &str) -> Result<bool, KafkaError> {
        self.refresh().await?;
        let k = key(hub, publisher);
        if !self.read_state().revoked.contains_key(&k) {
            return Ok(false);
        }
        self.write(&k, None).await?;
        self.write_state().revoked.remove(&k);
        Ok(true)
    }

    /// The revoked publishers of `hub`, sorted by name.
    pub async fn list(&self, hub: &str) -> Result<Vec<Revoked>, KafkaError> {
        self.refresh().await?;
        let prefix = format!("{}/", hub.to_lowercase());
        let mut out: Vec<Revoked> = self
            .read_state()
            .revoked
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect();
        out.sort_by(|a, b| a.publisher.cmp(&b.publisher));
        Ok(out)
    }

    /// Refuses a revoked publisher: the one whose path is `resource`, or the one `principal`
    /// is bound to. Reads the topic when the cached list is older than
    /// `revocation_refresh_ms`, so callers validate their input first and call this just
    /// before they act. Fails closed (the Kafka error) when the list cannot be read.
    pub async fn refuse_revoked(
        &self,
        principal: &Principal,
        resource: &Resource,
    ) -> Result<(), ApiError> {
        let publisher = match resource.segments() {
            [hub, p, publisher] if p == PUBLISHERS => Some((hub.as_str(), publisher.as_str())),
            _ => principal.publisher(),
        };
        if let Some((hub, publisher)) = publisher
            && self.is_revoked(hub, publisher).await?
        {
            return Err(AuthError::Revoked(publisher.to_owned()).into());
        }
        Ok(())
    }

    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), KafkaError> {
        let record = Record {
            key: Some(key.as_bytes().to_vec()),
            value,
            headers: Default::default(),
            timestamp: Utc::now(),
        };
        self.kafka
            .produce(&self.topic, PARTITION, vec![record])
            .await?;
        Ok(())
    }
}
