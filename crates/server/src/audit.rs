//! The audit log: every management action appended to a Kafka topic (append-only, one
//! partition, not compacted) as an entry of this process's tamper-evident chain
//! ([`hubgate_core::audit`]), before the action is acknowledged; read back for
//! `GET /v1/audit` and `hubgate audit verify`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use hubgate_core::audit::{Action, AuditKey, Chain, Entry};
use rskafka::record::Record;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::kafka::{Kafka, KafkaError};

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The deployment's audit key, base64 (at least 32 bytes; `hubgate key` prints one).
    /// Set: the audit log is on. The same key on every instance, and for `hubgate audit verify`.
    #[serde(default)]
    pub key: Option<SecretString>,
    /// The audit topic (default `__hubgate_audit`), created on first use.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// The topic's `retention.ms` when hubgate creates it: `-1` (the default) keeps every
    /// entry. With a finite retention the oldest entries go, and `hubgate audit verify` needs
    /// `--allow-truncated` (Kafka cannot tell retention from a delete-records).
    #[serde(default = "default_retention")]
    pub retention_ms: i64,
    /// Replication factor when hubgate creates the topic (default: brokers, at most 3).
    #[serde(default)]
    pub replication_factor: Option<i16>,
}

fn default_topic() -> String {
    "__hubgate_audit".into()
}

fn default_retention() -> i64 {
    -1
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            key: None,
            topic: default_topic(),
            retention_ms: default_retention(),
            replication_factor: None,
        }
    }
}

impl AuditConfig {
    /// The key, when the audit log is on.
    pub fn key(&self) -> Result<Option<AuditKey>, String> {
        let Some(text) = &self.key else {
            return Ok(None);
        };
        let bytes = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.expose_secret().trim())
                .map_err(|_| "audit.key must be base64".to_owned())?,
        );
        AuditKey::new(&bytes)
            .map(Some)
            .map_err(|e| format!("audit.key: {e}"))
    }

    pub fn validate(&self) -> Result<(), String> {
        self.key()?;
        if self.retention_ms == 0 || self.retention_ms < -1 {
            return Err("audit.retention_ms must be -1 (keep) or a positive number".into());
        }
        Ok(())
    }
}

/// Who did what to what, for [`AuditLog::record`].
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// What was done, one of [`hubgate_core::audit::ACTIONS`].
    pub action: &'static str,
    /// A principal's name; never a credential.
    pub principal: &'a str,
    pub request_id: &'a str,
    pub hub: Option<&'a str>,
    /// The publisher, consumer group, rule or secret acted on.
    pub target: Option<&'a str>,
    /// The action's own details (a mint's rule and expiry; never a token or key).
    pub details: Vec<(&'static str, String)>,
}

/// The audit log of this process: its chain and the topic it appends to.
#[derive(Debug)]
pub struct AuditLog {
    kafka: Arc<Kafka>,
    topic: String,
    retention_ms: i64,
    replication_factor: Option<i16>,
    key: AuditKey,
    /// This process's chain; held across the append so that entries reach Kafka in order.
    chain: tokio::sync::Mutex<Chain>,
    ready: tokio::sync::OnceCell<()>,
}

impl AuditLog {
    /// The log, when `[audit]` has a key; `Err` describes a key that is not one.
    pub fn from_config(kafka: Arc<Kafka>, config: &AuditConfig) -> Result<Option<Self>, String> {
        let Some(key) = config.key()? else {
            return Ok(None);
        };
        Ok(Some(Self {
            kafka,
            topic: config.topic.clone(),
            retention_ms: config.retention_ms,
            replication_factor: config.replication_factor,
            key,
            chain: tokio::sync::Mutex::new(Chain::new(writer_id())),
            ready: tokio::sync::OnceCell::new(),
        }))
    }

    /// The audit topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Appends `event`; returns once Kafka acknowledged it. A caller acknowledges its action
    /// only after this succeeded (on failure it answers 503, and the action stands
    /// unacknowledged: a retry finds it done).
    pub async fn record(&self, event: Event<'_>) -> Result<(), KafkaError> {
        self.ready
            .get_or_try_init(|| ensure_topic(&self.kafka, self))
            .await?;
        let time_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
        let action = Action {
            time_ms,
            action: event.action.to_owned(),
            principal: event.principal.to_owned(),
            request_id: event.request_id.to_owned(),
            hub: event.hub.map(str::to_owned),
            target: event.target.map(str::to_owned),
            details: event
                .details
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<BTreeMap<_, _>>(),
        };
        let mut chain = self.chain.lock().await;
        let entry = chain.append(&self.key, action);
        let value = serde_json::to_vec(&entry).map_err(|e| KafkaError::Encode(e.to_string()))?;
        let record = Record {
            key: Some(entry.writer.clone().into_bytes()),
            value: Some(value),
            headers: BTreeMap::new(),
            timestamp: chrono::DateTime::from_timestamp_millis(
                i64::try_from(time_ms).unwrap_or_default(),
            )
            .unwrap_or_else(chrono::Utc::now),
        };
        match self.kafka.produce(&self.topic, 0, vec![record]).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // The entry may or may not be in Kafka: a new chain from here, so that a
                // verifier sees either a whole chain or a chain that stops (never a gap).
                *chain = Chain::new(writer_id());
                Err(e)
            }
        }
    }
}

/// The audit log, or none (`[audit]` without a key): [`Audit::record`] is then a no-op.
#[derive(Debug, Default)]
pub struct Audit(Option<AuditLog>);

impl Audit {
    /// From `[audit]`; `kafka` is the process's Kafka handle. `Err` describes a key that is
    /// not one (the configuration's validation refuses it first).
    pub fn from_config(kafka: Arc<Kafka>, config: &AuditConfig) -> Result<Self, String> {
        AuditLog::from_config(kafka, config).map(Self)
    }

    /// The log, when on.
    pub fn log(&self) -> Option<&AuditLog> {
        self.0.as_ref()
    }

    /// [`AuditLog::record`] when the log is on.
    pub async fn record(&self, event: Event<'_>) -> Result<(), KafkaError> {
        match &self.0 {
            Some(log) => log.record(event).await,
            None => Ok(()),
        }
    }
}

/// A chain's writer: the instance (host or Lambda log stream) and a random id per process.
fn writer_id() -> String {
    let instance = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .or_else(|_| std::env::var("WEBSITE_INSTANCE_ID"))
        .unwrap_or_else(|_| "hubgate".into());
    format!("{instance}/{}", uuid::Uuid::new_v4())
}

async fn ensure_topic(kafka: &Kafka, log: &AuditLog) -> Result<(), KafkaError> {
    match kafka.partition_count(&log.topic).await {
        Ok(_) => Ok(()),
        Err(KafkaError::UnknownTopic(_)) => {
            let factor = match log.replication_factor {
                Some(f) => f,
                None => {
                    let brokers = kafka.cluster().await?.brokers.len();
                    i16::try_from(brokers.clamp(1, 3)).unwrap_or(1)
                }
            };
            let mut configs = vec![
                ("cleanup.policy".to_owned(), "delete".to_owned()),
                ("retention.ms".to_owned(), log.retention_ms.to_string()),
                // Record times are the entries' own.
                ("message.timestamp.type".to_owned(), "CreateTime".to_owned()),
            ];
            if factor >= 3 {
                configs.push(("min.insync.replicas".to_owned(), "2".to_owned()));
            }
            match kafka.create_topic(&log.topic, 1, factor, &configs).await {
                Ok(()) | Err(KafkaError::TopicExists(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// One record of the audit topic: its offset, and its entry or why it is not one.
pub type Read = (i64, Result<Entry, String>);

/// Reads the audit topic from `from` (an offset; earlier than the log start means the start)
/// to its end as of now, at most `limit` records.
pub async fn read(
    kafka: &Kafka,
    topic: &str,
    from: i64,
    limit: usize,
) -> Result<Vec<Read>, KafkaError> {
    let (earliest, end) = match kafka.offsets(topic, 0).await {
        Ok(o) => o,
        Err(KafkaError::UnknownTopic(_) | KafkaError::UnknownPartition { .. }) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut offset = from.max(earliest);
    let mut out = Vec::new();
    while offset < end && out.len() < limit {
        let (records, _) = kafka.fetch(topic, 0, offset, 1024 * 1024, 0).await?;
        if records.is_empty() {
            break;
        }
        for r in records {
            if r.offset < offset || r.offset >= end || out.len() >= limit {
                continue;
            }
            offset = r.offset + 1;
            let entry = r
                .record
                .value
                .as_deref()
                .ok_or_else(|| "no value".to_owned())
                .and_then(|v| serde_json::from_slice::<Entry>(v).map_err(|e| e.to_string()));
            out.push((r.offset, entry));
        }
    }
    Ok(out)
}

/// The first offset of the audit topic holding an entry written at `time_ms` or later.
pub async fn offset_at(kafka: &Kafka, topic: &str, time_ms: i64) -> Result<i64, KafkaError> {
    kafka.offset_for_time(topic, 0, time_ms).await
}

/// What `hubgate audit verify` found in a topic.
#[derive(Debug)]
pub struct Verdict {
    /// The first offset the topic still holds, and its end.
    pub earliest: i64,
    pub end: i64,
    /// The chains' check ([`hubgate_core::audit::verify`]).
    pub report: hubgate_core::audit::Report,
    /// Records that are not audit entries: their offsets and why.
    pub not_entries: Vec<(i64, String)>,
    /// Chains that begin after their first entry while the log no longer starts at 0
    /// (retention or a delete-records), accepted with `allow_truncated`.
    pub truncated: Vec<String>,
}

impl Verdict {
    /// Whether the log is whole.
    pub fn ok(&self) -> bool {
        self.report.ok() && self.not_entries.is_empty()
    }
}

/// Reads the whole audit topic and checks every chain with `key`. With `allow_truncated`,
/// a chain whose first entries are gone from the start of the log is accepted (Kafka cannot
/// tell a retention from a delete-records); every other break still fails.
pub async fn verify_topic(
    kafka: &Kafka,
    topic: &str,
    key: &AuditKey,
    allow_truncated: bool,
) -> Result<Verdict, KafkaError> {
    let (earliest, end) = kafka.offsets(topic, 0).await?;
    let records = read(kafka, topic, earliest, usize::MAX).await?;
    let mut not_entries = Vec::new();
    let mut entries = Vec::with_capacity(records.len());
    for (offset, entry) in records {
        match entry {
            Ok(e) => entries.push(e),
            Err(why) => not_entries.push((offset, why)),
        }
    }
    let mut report = hubgate_core::audit::verify(key, &entries);
    let mut truncated = Vec::new();
    if allow_truncated && earliest > 0 {
        report.broken.retain(|b| match b {
            hubgate_core::audit::Broken::OutOfSequence {
                writer,
                expected: 0,
                ..
            } => {
                truncated.push(writer.clone());
                false
            }
            _ => true,
        });
    }
    Ok(Verdict {
        earliest,
        end,
        report,
        not_entries,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_config_key_checked_ok() {
        let ok = AuditConfig {
            key: Some(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
            )),
            ..Default::default()
        };
        assert!(ok.validate().is_ok() && ok.key().unwrap().is_some());
        let short = AuditConfig {
            key: Some(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([1u8; 16]),
            )),
            ..Default::default()
        };
        assert!(short.validate().unwrap_err().contains("32"));
        let zero = AuditConfig {
            retention_ms: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
        assert!(AuditConfig::default().key().unwrap().is_none());
    }
}
