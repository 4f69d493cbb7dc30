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

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::kafka::{Kafka, KafkaError};
use crate::names::fold;
use crate::table::Table;

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

/// The revocation list of this process, kept in step with the Kafka topic.
#[derive(Debug)]
pub struct Revocations {
    table: Table<Revoked>,
    refresh_every: Duration,
}

fn key(hub: &str, publisher: &str) -> String {
    format!("{}/{}", fold(hub), fold(publisher))
}

impl Revocations {
    /// The store for `config`'s revocation topic; nothing is read until first use.
    pub fn new(kafka: Arc<Kafka>, config: &Config) -> Self {
        Self {
            table: Table::new(
                kafka,
                &config.revocation_topic,
                config.revocation_replication_factor,
            ),
            refresh_every: config.revocation_refresh,
        }
    }

    /// Reads everything new in the topic now.
    pub async fn refresh(&self) -> Result<(), KafkaError> {
        self.table.refresh().await
    }

    fn contains(&self, key: &str) -> bool {
        self.table.view(|m| m.contains_key(key))
    }

    /// Whether `publisher` on `hub` is revoked, as of at most `revocation_refresh_ms` ago.
    pub async fn is_revoked(&self, hub: &str, publisher: &str) -> Result<bool, KafkaError> {
        self.table.fresh(self.refresh_every).await?;
        Ok(self.contains(&key(hub, publisher)))
    }

    /// Revokes `publisher`: the entry written (the publisher in its canonical form,
    /// [`crate::names::publisher`]), or `Ok(None)` if it already was revoked.
    pub async fn revoke(
        &self,
        hub: &str,
        publisher: &str,
        by: &str,
    ) -> Result<Option<Revoked>, KafkaError> {
        self.table.sync().await?;
        let k = key(hub, publisher);
        if self.contains(&k) {
            return Ok(None);
        }
        let entry = Revoked {
            hub: hub.to_owned(),
            publisher: fold(publisher),
            revoked_at: Utc::now().timestamp(),
            revoked_by: by.to_owned(),
        };
        self.table.write(vec![(k, Some(entry.clone()))]).await?;
        Ok(Some(entry))
    }

    /// Resumes `publisher`; `Ok(false)` if it was not revoked.
    pub async fn resume(&self, hub: &str, publisher: &str) -> Result<bool, KafkaError> {
        self.table.sync().await?;
        let k = key(hub, publisher);
        if !self.contains(&k) {
            return Ok(false);
        }
        self.table.write(vec![(k, None)]).await?;
        Ok(true)
    }

    /// The revoked publishers of `hub`, sorted by name.
    pub async fn list(&self, hub: &str) -> Result<Vec<Revoked>, KafkaError> {
        self.table.sync().await?;
        let prefix = format!("{}/", fold(hub));
        let mut out: Vec<Revoked> = self.table.view(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, e)| e.value.clone())
                .collect()
        });
        out.sort_by(|a, b| a.publisher.cmp(&b.publisher));
        Ok(out)
    }
}

impl crate::metrics::StoreStats for Revocations {
    fn stats(&self) -> (usize, Option<std::time::Duration>) {
        self.table.stats()
    }
}
