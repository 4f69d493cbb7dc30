//! Consumer groups and their checkpoints, stored in Kafka itself: a compacted topic
//! (default `__hubgate_consumer_groups`, see [`crate::table`]) keyed
//! `group/<hub>/<group>` and `checkpoint/<hub>/<group>/<partition>` (lower-cased: Event Hubs
//! names are case-insensitive).
//!
//! Readers are stateless HTTP clients: any instance serves any read, and a read that starts
//! from the checkpoint first reads the topic up to date, so a checkpoint written through one
//! instance is where the next read through any other instance begins.
//!
//! A checkpoint belongs to one *generation* of its group (the offset at which the group was
//! created): deleting a group removes its checkpoints, and a checkpoint written by a reader
//! that raced the deletion is never honoured by a group created later under the same name.
//! `$Default` exists on every hub, implicitly, and cannot be deleted.
//!
//! Creates of one group racing through several instances settle by the topic's order (the
//! first create written while the group was absent wins; see `settle_create`), so exactly
//! one answers 201 and the group that exists is that one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::kafka::{Kafka, KafkaError};
use crate::names::{DEFAULT_CONSUMER_GROUP, fold};
use crate::table::{Entry, Table};

/// The generation of `$Default`, which is never written.
const DEFAULT_GENERATION: i64 = -1;

/// One consumer group, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroup {
    pub hub: String,
    pub name: String,
    /// `None` for the implicit `$Default`.
    pub created_at: Option<DateTime<Utc>>,
    /// Who created it (a principal name, never a credential).
    pub created_by: Option<String>,
    /// Free text kept with the group (Event Hubs' `userMetadata`).
    pub user_metadata: Option<String>,
}

/// A reader's progress on one partition: where the group's next read begins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub hub: String,
    pub consumer_group: String,
    pub partition: i32,
    /// The offset of the next event to read (Kafka's committed-offset convention: put the
    /// `next_offset` a read answered).
    pub offset: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// The group generation it belongs to.
    #[serde(default)]
    generation: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Stored {
    Group(ConsumerGroup),
    Checkpoint(Checkpoint),
}

/// Why a consumer-group operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error(
        "consumer group '{group}' does not exist on hub '{hub}'; create it with PUT /{hub}/consumergroups/{group}"
    )]
    NotFound { hub: String, group: String },
    #[error("consumer group '{0}' already exists")]
    Exists(String),
    /// Another create of the same group, through another request, was written first.
    #[error(
        "consumer group '{0}' already exists: it was created at the same time through another request"
    )]
    CreatedConcurrently(String),
    #[error(
        "hub '{hub}' already has {limit} consumer groups, the most allowed (limits.max_consumer_groups_per_hub); delete one first"
    )]
    TooMany { hub: String, limit: usize },
    #[error("the $Default consumer group cannot be deleted")]
    DefaultIsPermanent,
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

fn group_key(hub: &str, group: &str) -> String {
    format!("group/{}/{}", fold(hub), fold(group))
}

fn checkpoint_prefix(hub: &str, group: &str) -> String {
    format!("checkpoint/{}/{}/", fold(hub), fold(group))
}

fn is_default(group: &str) -> bool {
    group.eq_ignore_ascii_case(DEFAULT_CONSUMER_GROUP)
}

/// The consumer groups and checkpoints of every hub, as this process last read them.
#[derive(Debug)]
pub struct ConsumerGroups {
    table: Table<Stored>,
    refresh_every: Duration,
    max_per_hub: usize,
}

impl ConsumerGroups {
    /// The store for `config`'s consumer-group topic; nothing is read until first use.
    pub fn new(kafka: Arc<Kafka>, config: &Config) -> Self {
        Self {
            table: Table::new(
                kafka,
                &config.consumer_group_topic,
                config.consumer_group_replication_factor,
            ),
            refresh_every: config.consumer_group_refresh,
            max_per_hub: config.limits.max_consumer_groups_per_hub,
        }
    }

    /// Reads everything new in the topic now.
    pub async fn refresh(&self) -> Result<(), KafkaError> {
        self.table.refresh().await
    }

    fn default_group(hub: &str) -> ConsumerGroup {
        ConsumerGroup {
            hub: hub.to_owned(),
            name: DEFAULT_CONSUMER_GROUP.to_owned(),
            created_at: None,
            created_by: None,
            user_metadata: None,
        }
    }

    /// The group and its generation, from the map as last read.
    fn lookup(&self, hub: &str, group: &str) -> Option<(i64, ConsumerGroup)> {
        if is_default(group) {
            return Some((DEFAULT_GENERATION, Self::default_group(hub)));
        }
        self.table.view(|m| match m.get(&group_key(hub, group)) {
            Some(Entry {
                offset,
                value: Stored::Group(g),
            }) => Some((*offset, g.clone())),
            _ => None,
        })
    }

    fn found(&self, hub: &str, group: &str) -> Result<(i64, ConsumerGroup), GroupError> {
        self.lookup(hub, group).ok_or_else(|| GroupError::NotFound {
            hub: hub.to_owned(),
            group: group.to_owned(),
        })
    }

    /// [`found`](Self::found) in the map read at most `consumer_group_refresh_ms` ago; a miss
    /// reads the topic up to date before it is believed (the group may be seconds old).
    async fn found_fresh(
        &self,
        hub: &str,
        group: &str,
    ) -> Result<(i64, ConsumerGroup), GroupError> {
        self.table.fresh(self.refresh_every).await?;
        if let Some(found) = self.lookup(hub, group) {
            return Ok(found);
        }
        self.table.sync().await?;
        self.found(hub, group)
    }

    /// The groups of `hub`, `$Default` first, then by name.
    fn groups_of(&self, hub: &str) -> Vec<ConsumerGroup> {
        let prefix = format!("group/{}/", fold(hub));
        let mut groups: Vec<ConsumerGroup> = self.table.view(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, e)| match &e.value {
                    Stored::Group(g) => Some(g.clone()),
                    Stored::Checkpoint(_) => None,
                })
                .collect()
        });
        groups.sort_by_key(|g| fold(&g.name));
        groups.insert(0, Self::default_group(hub));
        groups
    }

    /// Creates a group.
    pub async fn create(
        &self,
        hub: &str,
        group: &str,
        user_metadata: Option<String>,
        by: &str,
    ) -> Result<ConsumerGroup, GroupError> {
        self.table.sync().await?;
        // Everything before `seen` is in the map the checks below look at.
        let seen = self.table.next_offset();
        if self.lookup(hub, group).is_some() {
            return Err(GroupError::Exists(group.to_owned()));
        }
        if self.groups_of(hub).len() >= self.max_per_hub {
            return Err(GroupError::TooMany {
                hub: hub.to_owned(),
                limit: self.max_per_hub,
            });
        }
        let created = ConsumerGroup {
            hub: hub.to_owned(),
            name: group.to_owned(),
            created_at: Some(Utc::now()),
            created_by: Some(by.to_owned()),
            user_metadata,
        };
        // Checkpoints of an earlier group of this name are already unusable (another
        // generation); remove any a racing reader left, so compaction can drop them.
        let mut writes = self.checkpoint_tombstones(hub, group);
        let key = group_key(hub, group);
        writes.push((key.clone(), Some(Stored::Group(created.clone()))));
        let offsets = self.table.write(writes).await?;
        match offsets.last() {
            Some(&mine) => self.settle_create(&key, created, seen, mine).await,
            None => Ok(created),
        }
    }

    /// Settles creates of one group racing through several instances (each found no group
    /// and wrote one). The first create written while the group was absent wins, decided by
    /// replaying the key's records from the topic, so every racer reaches the same answer:
    /// the winner answers 201 and every other racer 409. The map keeps a key's last record,
    /// so whoever finds a racer's record after the winner's writes the winner's group again:
    /// the group that exists is the one answered with 201.
    async fn settle_create(
        &self,
        key: &str,
        created: ConsumerGroup,
        seen: i64,
        mine: i64,
    ) -> Result<ConsumerGroup, GroupError> {
        let history = match self.table.history(key, seen).await {
            Ok(h) => h,
            Err(e) => {
                // Written and read back: created, unless a racer won, which cannot be told.
                tracing::warn!(key, error = %e, "could not check for a racing create");
                return Ok(created);
            }
        };
        // Replay: `winner` is the group of the create that found the key absent; later
        // creates while it lives are racers. `last` is what the map holds now.
        let mut winner: Option<&ConsumerGroup> = None;
        let mut i_won = false;
        let mut last: Option<&ConsumerGroup> = None;
        for (offset, value) in &history {
            let group = match value {
                Some(Stored::Group(g)) => Some(g),
                _ => None,
            };
            if winner.is_none() && group.is_some() {
                winner = group;
                i_won = *offset == mine;
            } else if group.is_none() {
                winner = None;
            }
            last = group;
        }
        if let (Some(w), Some(l)) = (winner, last)
            && w != l
        {
            let w = w.clone();
            tracing::info!(
                key,
                "a racing create overwrote the first one; writing the first again"
            );
            self.table
                .write(vec![(key.to_owned(), Some(Stored::Group(w)))])
                .await?;
        } else if history
            .last()
            .is_some_and(|(offset, _)| *offset >= self.table.next_offset())
        {
            // The history went past the map (a racer's records): answer from a map that
            // has them, as a write would.
            self.table.sync().await?;
        }
        if i_won {
            Ok(created)
        } else {
            Err(GroupError::CreatedConcurrently(created.name))
        }
    }

    /// One group (see [`found_fresh`](Self::found_fresh)).
    pub async fn get(&self, hub: &str, group: &str) -> Result<ConsumerGroup, GroupError> {
        Ok(self.found_fresh(hub, group).await?.1)
    }

    /// Every group of `hub`, `$Default` first.
    pub async fn list(&self, hub: &str) -> Result<Vec<ConsumerGroup>, GroupError> {
        self.table.sync().await?;
        Ok(self.groups_of(hub))
    }

    fn checkpoint_tombstones(&self, hub: &str, group: &str) -> Vec<(String, Option<Stored>)> {
        let prefix = checkpoint_prefix(hub, group);
        self.table.view(|m| {
            m.keys()
                .filter(|k| k.starts_with(&prefix))
                .map(|k| (k.clone(), None))
                .collect()
        })
    }

    /// Deletes a group and its checkpoints.
    pub async fn delete(&self, hub: &str, group: &str) -> Result<(), GroupError> {
        if is_default(group) {
            return Err(GroupError::DefaultIsPermanent);
        }
        self.table.sync().await?;
        self.found(hub, group)?;
        let mut writes = self.checkpoint_tombstones(hub, group);
        writes.push((group_key(hub, group), None));
        self.table.write(writes).await?;
        Ok(())
    }

    /// Checks that the group exists (see [`found_fresh`](Self::found_fresh)).
    pub async fn require(&self, hub: &str, group: &str) -> Result<(), GroupError> {
        self.found_fresh(hub, group).await.map(|_| ())
    }

    /// The group's generation (see [`found_fresh`](Self::found_fresh)): the group open
    /// streams read through is gone when this fails with [`GroupError::NotFound`] or
    /// changes (deleted and created again).
    pub async fn generation(&self, hub: &str, group: &str) -> Result<i64, GroupError> {
        self.found_fresh(hub, group).await.map(|(g, _)| g)
    }

    /// The group's generation and its checkpoints (next offsets by partition), read up to
    /// date, at once.
    pub async fn generation_and_checkpoints(
        &self,
        hub: &str,
        group: &str,
    ) -> Result<(i64, Vec<Checkpoint>), GroupError> {
        let checkpoints = self.checkpoints(hub, group).await?;
        let (generation, _) = self.found(hub, group)?;
        Ok((generation, checkpoints))
    }

    /// The group's checkpoints on `hub`, read up to date (see [`Table::sync`]), by partition.
    pub async fn checkpoints(&self, hub: &str, group: &str) -> Result<Vec<Checkpoint>, GroupError> {
        self.table.sync().await?;
        let (generation, _) = self.found(hub, group)?;
        let prefix = checkpoint_prefix(hub, group);
        let mut out: Vec<Checkpoint> = self.table.view(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, e)| match &e.value {
                    Stored::Checkpoint(c) if c.generation == generation => Some(c.clone()),
                    _ => None,
                })
                .collect()
        });
        out.sort_by_key(|c| c.partition);
        Ok(out)
    }

    /// The group's checkpoint on one partition, read up to date.
    pub async fn checkpoint(
        &self,
        hub: &str,
        group: &str,
        partition: i32,
    ) -> Result<Option<Checkpoint>, GroupError> {
        Ok(self
            .checkpoints(hub, group)
            .await?
            .into_iter()
            .find(|c| c.partition == partition))
    }

    /// Stores the group's checkpoint on one partition; answers it once Kafka acknowledged it.
    pub async fn set_checkpoint(
        &self,
        hub: &str,
        group: &str,
        partition: i32,
        offset: i64,
        by: &str,
    ) -> Result<Checkpoint, GroupError> {
        let (generation, _) = self.found_fresh(hub, group).await?;
        let checkpoint = Checkpoint {
            hub: hub.to_owned(),
            consumer_group: group.to_owned(),
            partition,
            offset,
            updated_at: Utc::now(),
            updated_by: by.to_owned(),
            generation,
        };
        let key = format!("{}{partition}", checkpoint_prefix(hub, group));
        self.table
            .write(vec![(key, Some(Stored::Checkpoint(checkpoint.clone())))])
            .await?;
        Ok(checkpoint)
    }
}

impl crate::metrics::StoreStats for ConsumerGroups {
    fn stats(&self) -> (usize, Option<std::time::Duration>) {
        self.table.stats()
    }
}
