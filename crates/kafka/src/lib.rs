//! Kafka access: one rskafka client per process, partition clients cached, topic
//! metadata cached with a short TTL, every operation bounded by a timeout.
//!
//! The client connects lazily: the gateway starts (and answers 503) while Kafka is down,
//! and connects on the first request after it is back.

mod admin;
mod coalesce;
pub mod config;
mod fetches;
pub mod metrics;
mod nodelay;
pub mod oauth;
mod security;
pub mod table;
mod watch;

/// The target of spans only OpenTelemetry traces want (DEBUG level; `hubgate_server::traces`).
pub const TRACE_TARGET: &str = "hubgate::trace";

use parking_lot::Mutex;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rskafka::BackoffConfig;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::{Record, RecordAndOffset};
use tokio::sync::OnceCell;

pub use admin::{BrokerInfo, ClusterInfo, PartitionInfo};
pub use nodelay::NoDelay;

use crate::config::KafkaConfig;

/// A Kafka operation failed. `Display` is for logs; clients get [`KafkaError::client_message`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    #[error("kafka did not answer in time")]
    Timeout,
    #[error("kafka client: {0}")]
    Client(Box<ClientError>),
    #[error("kafka admin: {0}")]
    Admin(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// A case-insensitive name (a hub) matches several topics, which Kafka tells apart by
    /// case alone: no one of them is the one meant.
    #[error("'{name}' matches the Kafka topics {topics:?}, which differ only in letter case")]
    CaseTwins { name: String, topics: Vec<String> },
    #[error("partition {partition} of topic '{topic}' does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("offset {offset} is out of range: the partition holds offsets {earliest} to {latest}")]
    OffsetOutOfRange {
        offset: i64,
        earliest: i64,
        latest: i64,
    },
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The broker does not know a partition the cluster's metadata lists: a topic just
    /// created, or deleted and created again, whose partition is not ready yet. Retriable.
    #[error("partition {partition} of topic '{topic}' is not ready on its broker yet")]
    PartitionNotReady { topic: String, partition: i32 },
    /// A topic the last metadata answers lack although earlier ones listed it, or that a
    /// broker holding one of its replicas no longer knows: deleted, or a broker not caught up
    /// yet (after a restart). Retriable until hubgate believes it is gone (then
    /// `UnknownTopic`).
    #[error("topic '{0}' is missing from the cluster's latest metadata")]
    TopicUnconfirmed(String),
    #[error("kafka refused the topic: {0}")]
    InvalidTopic(String),
    #[error("kafka refused the record as too large")]
    RecordTooLarge,
    #[error("kafka connection settings: {0}")]
    Config(String),
    #[error("too many records are waiting for this partition")]
    Busy,
    #[error("kafka refused a combined produce request as too large")]
    CombinedTooLarge,
    /// One failure of a produce request shared by several HTTP requests.
    #[error(transparent)]
    Shared(Arc<KafkaError>),
    /// A value for a compacted-topic table could not be serialised (a defect; nothing was
    /// written).
    #[error("a table value could not be serialised: {0}")]
    Encode(String),
    /// Kafka answered a fetch with records this client cannot decode (a codec it lacks, a
    /// corrupt batch). Retrying reads the same bytes again: this is not Kafka being away.
    #[error(
        "the records of topic '{topic}' partition {partition} from offset {offset} cannot be decoded: {detail}"
    )]
    Undecodable {
        topic: String,
        partition: i32,
        offset: i64,
        detail: String,
    },
    /// A store topic (revocations, consumer groups) exists without `cleanup.policy=compact`:
    /// Kafka would delete its entries by retention, and with them revocations.
    #[error(
        "store topic '{topic}' has cleanup.policy={policy}; it must be compact (alter the topic, or set another topic name)"
    )]
    StoreNotCompacted { topic: String, policy: String },
}

impl From<ClientError> for KafkaError {
    fn from(e: ClientError) -> Self {
        Self::Client(Box::new(e))
    }
}

impl KafkaError {
    /// The broker's error code, when the broker answered with one.
    fn protocol(&self) -> Option<&ProtocolError> {
        match self {
            Self::Shared(e) => e.protocol(),
            Self::Client(c) => match c.as_ref() {
                ClientError::ServerError { protocol_error, .. } => Some(protocol_error),
                _ => None,
            },
            _ => None,
        }
    }

    /// What a client may see: no broker addresses, no protocol internals.
    pub fn client_message(&self) -> String {
        match self {
            Self::Timeout
            | Self::Client(_)
            | Self::Admin(_)
            | Self::Config(_)
            | Self::PartitionNotReady { .. }
            | Self::TopicUnconfirmed(_) => {
                "Kafka is unavailable; nothing was acknowledged. Retry later.".into()
            }
            Self::Busy => {
                "Too many records are waiting for Kafka; nothing was acknowledged. Retry later."
                    .into()
            }
            Self::CombinedTooLarge => {
                "Kafka refused a combined produce request; nothing was acknowledged. Retry.".into()
            }
            Self::Shared(e) => e.client_message(),
            Self::Encode(_) => "internal error".into(),
            Self::Undecodable {
                topic,
                partition,
                offset,
                ..
            } => format!(
                "The records of topic '{topic}' partition {partition} from offset {offset} cannot be decoded by hubgate (see its log); retrying reads the same records."
            ),
            Self::StoreNotCompacted { .. } => {
                "hubgate's store topic is misconfigured (see its log).".into()
            }
            Self::CaseTwins { name, topics } => format!(
                "hub '{name}' matches the Kafka topics {}, which differ only in letter case; \
                 hub names are case-insensitive, so hubgate serves none of them: rename or \
                 delete all but one",
                topics
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        }
    }

    /// Maps a broker error code for a topic-level operation.
    fn from_protocol(e: ProtocolError, message: Option<String>, topic: &str) -> Self {
        match e {
            ProtocolError::TopicAlreadyExists => Self::TopicExists(topic.to_owned()),
            ProtocolError::UnknownTopicOrPartition => Self::UnknownTopic(topic.to_owned()),
            ProtocolError::InvalidPartitions
            | ProtocolError::InvalidReplicationFactor
            | ProtocolError::InvalidConfig
            | ProtocolError::InvalidTopicException
            | ProtocolError::PolicyViolation => {
                // The broker's text describes the user's own request; keep it short.
                let text = message.unwrap_or_else(|| format!("{e:?}"));
                Self::InvalidTopic(text.chars().take(200).collect())
            }
            other => Self::Admin(format!("{other:?}: {}", message.unwrap_or_default())),
        }
    }
}

fn case_twins(name: &str, topics: &[String]) -> KafkaError {
    KafkaError::CaseTwins {
        name: name.to_owned(),
        topics: topics.to_vec(),
    }
}

/// Topic name → partition count.
pub type TopicMap = HashMap<String, i32>;

/// The topic list as last read, and what the reads before it said.
#[derive(Debug, Clone)]
struct TopicCache {
    map: Arc<TopicMap>,
    /// The topics of `map` by their case-insensitive name ([`hubgate_core::names::fold`]).
    by_fold: HashMap<String, Vec<String>>,
    /// When it was read; `None`: to be read again before use ([`Kafka::forget`]).
    read_at: Option<Instant>,
    /// Topics known before but missing from the answers since, with when they first went
    /// missing: a broker that has just restarted answers metadata before it has caught up
    /// with the cluster's, without topics that exist (seen during failover on Kafka 4.4,
    /// several answers in a row). Such a topic stays in `map` for [`TOPIC_GONE_AFTER`].
    missing: HashMap<String, Instant>,
}

/// What a handle knows of the cluster's topics: the topic list, and the partition clients
/// made for them. Shared with the long-poll pollers, which must drop a partition client the
/// moment it answers "unknown topic".
///
/// rskafka 0.6 looks a partition's leader up (when its client is made, and again after any
/// error that invalidates the leader) with a Metadata request that names the topic and
/// leaves `allow_auto_topic_creation` at its default, true (`rskafka::connection`,
/// `MetadataRequest`). A broker with `auto.create.topics.enable=true` (Kafka's default)
/// then creates the topic, even one an operator has just deleted. So a partition client is
/// made only for a topic an all-topics metadata request sent from that moment on lists (such
/// a request names no topic, so it cannot create one), and one that said "unknown topic" is
/// never used again. Brokers learn of a deletion one after the other, so for a while after a
/// broker said "unknown topic" (or a list lacked it) the list may come from one that has not
/// caught up: then the partition's replicas are asked first, by name but without
/// auto-creation ([`admin::known_to_replicas`]).
#[derive(Debug, Default)]
struct Known {
    /// By topic, then partition (looked up by `&str`: no copy of the name per request).
    partitions: Mutex<HashMap<String, HashMap<i32, Arc<Partition>>>>,
    topics: Mutex<Option<TopicCache>>,
    /// Topics a broker said it does not know, or a topic list lacked, with when it last
    /// happened; forgotten [`TOPIC_GONE_AFTER`] later, or when hubgate creates the topic.
    doubted: Mutex<HashMap<String, Instant>>,
}

impl Known {
    /// Drops `topic`'s partition clients and marks the topic list stale.
    fn forget(&self, topic: &str) {
        self.partitions.lock().remove(topic);
        if let Some(cache) = self.topics.lock().as_mut() {
            cache.read_at = None;
        }
    }

    /// [`Known::forget`], after a broker said it does not know `topic`: deleted, perhaps.
    fn said_unknown(&self, topic: &str) {
        self.forget(topic);
        self.doubt([topic]);
    }

    /// Doubts `topics` from now on (one pass over the map however many: a restarted broker's
    /// listing can lack every topic at once).
    fn doubt<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut doubted = self.doubted.lock();
        // Only the last TOPIC_GONE_AFTER's are kept: a few, however many topics come and go.
        doubted.retain(|_, at| at.elapsed() < TOPIC_GONE_AFTER);
        let now = Instant::now();
        for topic in topics {
            doubted.insert(topic.to_owned(), now);
        }
    }

    /// Whether `topic` was doubted in the last [`TOPIC_GONE_AFTER`].
    fn doubted(&self, topic: &str) -> bool {
        let mut doubted = self.doubted.lock();
        match doubted.get(topic) {
            Some(at) if at.elapsed() < TOPIC_GONE_AFTER => true,
            Some(_) => {
                doubted.remove(topic);
                false
            }
            None => false,
        }
    }

    /// Whether `topic` is listed only because it was before: the latest metadata lacks it.
    fn unconfirmed(&self, topic: &str) -> bool {
        self.topics
            .lock()
            .as_ref()
            .is_some_and(|c| c.missing.contains_key(topic))
    }

    /// The partition client made for `topic`/`partition`, if any.
    fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .lock()
            .get(topic)
            .and_then(|p| p.get(&partition))
            .cloned()
    }
}

/// rskafka's client for one partition, never used again once it answered "unknown topic"
/// (`Known`: using it would look the topic up by name). A request that raced that answer
/// with the same client can still reach rskafka's lookup: the window is the few
/// microseconds between the broker's answer and this flag.
#[derive(Debug)]
pub struct Partition {
    pc: PartitionClient,
    gone: AtomicBool,
}

impl Partition {
    async fn call<'a, T, F>(
        &'a self,
        f: impl FnOnce(&'a PartitionClient) -> F,
    ) -> Result<T, ClientError>
    where
        F: Future<Output = Result<T, ClientError>> + 'a,
    {
        if self.gone.load(Ordering::Acquire) {
            return Err(ClientError::ServerError {
                protocol_error: ProtocolError::UnknownTopicOrPartition,
                error_message: Some("this partition client said unknown topic before".into()),
                request: rskafka::client::error::RequestContext::Partition(
                    self.pc.topic().to_owned(),
                    self.pc.partition(),
                ),
                response: None,
                is_virtual: true,
            });
        }
        let result = f(&self.pc).await;
        if let Err(ClientError::ServerError {
            protocol_error: ProtocolError::UnknownTopicOrPartition,
            ..
        }) = &result
        {
            self.gone.store(true, Ordering::Release);
        }
        result
    }

    /// [`PartitionClient::produce`].
    pub(crate) async fn produce(
        &self,
        records: Vec<Record>,
        compression: rskafka::client::partition::Compression,
    ) -> Result<Vec<i64>, ClientError> {
        self.call(|pc| pc.produce(records, compression)).await
    }

    /// [`PartitionClient::fetch_records`].
    pub(crate) async fn fetch_records(
        &self,
        offset: i64,
        bytes: std::ops::Range<i32>,
        max_wait_ms: i32,
    ) -> Result<(Vec<RecordAndOffset>, i64), ClientError> {
        self.call(|pc| pc.fetch_records(offset, bytes, max_wait_ms))
            .await
    }

    /// [`PartitionClient::get_offset`].
    pub(crate) async fn get_offset(&self, at: OffsetAt) -> Result<i64, ClientError> {
        self.call(|pc| pc.get_offset(at)).await
    }
}

/// How long a topic must be missing from every metadata answer before hubgate believes it
/// is gone (meanwhile requests for it answer 503, retry, rather than 404).
const TOPIC_GONE_AFTER: Duration = Duration::from_secs(15);

/// The bytes of a record's data: key, value, and each header's name and value (what
/// `limits.max_publication_bytes` bounds; the batch framing around it is not counted).
pub fn record_data_bytes(r: &Record) -> usize {
    r.key.as_ref().map_or(0, Vec::len)
        + r.value.as_ref().map_or(0, Vec::len)
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// An rskafka client builder for the brokers of `config` with its TLS and SASL settings, as
/// hubgate's own client connects (the tests build their own clients of a secured cluster
/// with it). Fails on an unreadable CA, certificate or key file.
pub fn client_builder(config: &KafkaConfig) -> Result<ClientBuilder, KafkaError> {
    let security = security::Security::from_config(config, None)?;
    Ok(security.apply(ClientBuilder::new(config.bootstrap_servers.clone())))
}

/// The process-wide Kafka handle. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Kafka {
    config: KafkaConfig,
    client_id: Arc<str>,
    client: OnceCell<Client>,
    /// The topic list and the partition clients (shared with long-poll pollers).
    known: Arc<Known>,
    /// Held by the one request refreshing a stale topic list (see [`Kafka::topics`]).
    refreshing_topics: tokio::sync::Mutex<()>,
    round_robin: AtomicU32,
    /// `None` when produce requests are not combined (`kafka.coalesce = false`, Lambda).
    coalescer: Option<coalesce::Coalescer>,
    nodelay: Option<Arc<nodelay::NoDelay>>,
    produce_requests: Arc<AtomicU64>,
    fetch_requests: Arc<AtomicU64>,
    security: security::Security,
    /// Partitions that long-polling reads wait on.
    watches: watch::Watches,
    /// The kept connection for cluster metadata.
    admin: admin::AdminConnection,
    /// Fetches in flight, shared by identical reads.
    fetches: fetches::Fetches,
}

impl Kafka {
    /// Creates the handle; nothing connects until the first operation. Fails only on TLS
    /// settings that cannot be used (an unreadable or empty `kafka.tls_ca_file`), and on
    /// `sasl_mechanism = "OAUTHBEARER"` (which needs [`Kafka::with_tokens`]).
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Self::with_tokens(config, None)
    }

    /// [`Kafka::new`] whose connections authenticate with SASL/OAUTHBEARER tokens from
    /// `tokens` when `config` says so.
    pub fn with_tokens(
        config: &KafkaConfig,
        tokens: Option<Arc<oauth::TokenCache>>,
    ) -> Result<Self, KafkaError> {
        Ok(Self {
            client_id: Arc::from(config.client_id.as_str()),
            config: config.clone(),
            client: OnceCell::new(),
            known: Arc::default(),
            refreshing_topics: tokio::sync::Mutex::new(()),
            round_robin: AtomicU32::new(0),
            coalescer: config.coalesce.then(|| coalesce::Coalescer::new(config)),
            nodelay: config.tcp_nodelay.then(Arc::default),
            produce_requests: Arc::default(),
            fetch_requests: Arc::default(),
            security: security::Security::from_config(config, tokens.as_ref())?,
            watches: watch::Watches::default(),
            admin: admin::AdminConnection::default(),
            fetches: fetches::Fetches::default(),
        })
    }

    /// Sets `TCP_NODELAY` on connections rskafka opened since the last sweep.
    fn sweep_nodelay(&self) {
        if let Some(nd) = &self.nodelay {
            nd.sweep();
        }
    }

    /// Sweeps once a second for connections rskafka re-opened on its own; ends with `self`.
    fn spawn_nodelay_sweeper(&self) {
        let Some(nd) = &self.nodelay else { return };
        let nd = Arc::downgrade(nd);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(nd) = nd.upgrade() else { return };
                nd.sweep();
            }
        });
    }

    fn timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// Runs `fut` within the request timeout.
    ///
    /// Boxed before the async block: rskafka's futures nest deeply, and a box here keeps
    /// every caller's future small (and within the compiler's layout depth limit).
    fn timed<'a, T, E>(
        &self,
        fut: impl Future<Output = Result<T, E>> + Send + 'a,
    ) -> impl Future<Output = Result<T, KafkaError>> + Send + 'a
    where
        T: 'a,
        E: Into<KafkaError> + 'a,
    {
        self.timed_longer(Duration::ZERO, fut)
    }

    /// [`timed`](Self::timed) with `extra` time (a fetch the broker may hold that long).
    fn timed_longer<'a, T, E>(
        &self,
        extra: Duration,
        fut: impl Future<Output = Result<T, E>> + Send + 'a,
    ) -> impl Future<Output = Result<T, KafkaError>> + Send + 'a
    where
        T: 'a,
        E: Into<KafkaError> + 'a,
    {
        let fut: Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>> = Box::pin(fut);
        let timeout = self.timeout() + extra;
        async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err(KafkaError::Timeout),
            }
        }
    }

    async fn client(&self) -> Result<&Client, KafkaError> {
        self.client
            .get_or_try_init(|| async {
                let backoff = BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                    deadline: Some(self.timeout()),
                };
                let builder = ClientBuilder::new(self.config.bootstrap_servers.clone())
                    .client_id(Arc::clone(&self.client_id))
                    .backoff_config(backoff);
                let builder = self.security.apply(builder);
                let client = self.timed(builder.build()).await?;
                self.sweep_nodelay();
                self.spawn_nodelay_sweeper();
                Ok(client)
            })
            .await
    }

    /// Topics and their partition counts, from a cache refreshed when older than
    /// `metadata_ttl_ms` (by one request at a time; a failed refresh keeps the old list).
    pub async fn topics(&self) -> Result<Arc<TopicMap>, KafkaError> {
        let ttl = self.config.metadata_ttl;
        // The map and when it was read, not the whole cache (this is on every request's path).
        let cached = self
            .known
            .topics
            .lock()
            .as_ref()
            .map(|c| (Arc::clone(&c.map), c.read_at));
        let Some((map, read_at)) = cached else {
            return self.refresh_topics().await;
        };
        if read_at.is_some_and(|at| at.elapsed() < ttl) {
            return Ok(map);
        }
        // Stale: one request refreshes; the others go on with the list they have instead of
        // waiting for it. When the refresh fails (a broker just died, and the metadata
        // request went to it), the last known list is used too, as Kafka's own clients do:
        // otherwise every request would wait for metadata while the cluster elects leaders.
        let Ok(_refreshing) = self.refreshing_topics.try_lock() else {
            return Ok(map);
        };
        match self.refresh_topics().await {
            Ok(map) => Ok(map),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the topic list; using the last known one");
                Ok(map)
            }
        }
    }

    /// Reloads the topic list now.
    pub async fn refresh_topics(&self) -> Result<Arc<TopicMap>, KafkaError> {
        let client = self.client().await?;
        // When the request left, not when its answer came: `topics_read_after` must not take
        // a list asked for before the moment it names.
        let sent = Instant::now();
        let list = self.timed(client.list_topics()).await?;
        let mut map: TopicMap = list
            .into_iter()
            .map(|t| {
                (
                    t.name,
                    i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                )
            })
            .collect();
        let mut cache = self.known.topics.lock();
        let mut missing = HashMap::new();
        let mut newly_missing = Vec::new();
        if let Some(previous) = cache.as_ref() {
            for (topic, partitions) in previous.map.iter() {
                if map.contains_key(topic) {
                    continue;
                }
                let since = previous.missing.get(topic).copied().unwrap_or_else(|| {
                    newly_missing.push(topic.clone());
                    Instant::now()
                });
                if since.elapsed() < TOPIC_GONE_AFTER {
                    missing.insert(topic.clone(), since);
                    map.insert(topic.clone(), *partitions);
                }
            }
        }
        let mut by_fold: HashMap<String, Vec<String>> = HashMap::with_capacity(map.len());
        for topic in map.keys() {
            by_fold
                .entry(hubgate_core::names::fold(topic))
                .or_default()
                .push(topic.clone());
        }
        for twins in by_fold.values_mut() {
            twins.sort();
        }
        let map = Arc::new(map);
        *cache = Some(TopicCache {
            map: Arc::clone(&map),
            by_fold,
            read_at: Some(sent),
            missing,
        });
        drop(cache);
        self.known.doubt(newly_missing.iter().map(String::as_str));
        Ok(map)
    }

    /// The one topic a hub name stands for. Hub names are case-insensitive (as Event Hubs
    /// entities and SAS scopes are) and Kafka topic names are not, so the topic is the one
    /// whose name equals `name` ignoring ASCII case; `name` itself when the list has none
    /// (the route then answers for a missing topic, or creates it). Several such topics
    /// (`RT-A` and `rt-a`, made outside hubgate) are [`KafkaError::CaseTwins`]: a credential
    /// for the hub would otherwise reach whichever one the client's spelling picked.
    ///
    /// Answers from the topic list this process has (refreshed first when older than
    /// `metadata_ttl_ms`), without waiting for Kafka when it has none yet: a request's bad
    /// input is still refused while Kafka is away. Then `name` is used as typed, and the
    /// first partition lookup, which reads a fresh list, refuses case twins itself
    /// ([`Kafka::partition`]).
    pub async fn resolve_topic(&self, name: &str) -> Result<String, KafkaError> {
        if self.known.topics.lock().is_none() {
            return Ok(name.to_owned());
        }
        // A failed refresh keeps the list there was (`topics`).
        let _ = self.topics().await;
        self.same_but_case(name, |topics| match topics {
            [one] => Ok(one.clone()),
            twins => Err(case_twins(name, twins)),
        })
        .unwrap_or_else(|| Ok(name.to_owned()))
    }

    /// `f` of the cached list's topics whose names equal `name` ignoring ASCII case (under
    /// the cache's lock, nothing copied); `None` when there are none, or no list yet.
    fn same_but_case<R>(&self, name: &str, f: impl FnOnce(&[String]) -> R) -> Option<R> {
        let folded = hubgate_core::names::fold(name);
        self.known
            .topics
            .lock()
            .as_ref()
            .and_then(|c| c.by_fold.get(&folded))
            .map(|topics| f(topics))
    }

    /// [`KafkaError::CaseTwins`] when the cached list has topics differing from `topic`
    /// only in case.
    fn refuse_case_twins(&self, topic: &str) -> Result<(), KafkaError> {
        self.same_but_case(topic, |topics| match topics {
            [] | [_] => Ok(()),
            twins => Err(case_twins(topic, twins)),
        })
        .unwrap_or(Ok(()))
    }

    /// The topic list as read at `since` or later: a refresh, or the one another request
    /// read meanwhile (one refresh at a time; a failed one is an error, not the old list).
    async fn topics_read_after(&self, since: Instant) -> Result<Arc<TopicMap>, KafkaError> {
        let _refreshing = self.refreshing_topics.lock().await;
        let fresh = self.known.topics.lock().as_ref().and_then(|c| {
            c.read_at
                .is_some_and(|at| at >= since)
                .then(|| Arc::clone(&c.map))
        });
        match fresh {
            Some(map) => Ok(map),
            None => self.refresh_topics().await,
        }
    }

    /// The partition count of `topic`; refreshes once before saying it does not exist.
    pub async fn partition_count(&self, topic: &str) -> Result<i32, KafkaError> {
        if let Some(n) = self.topics().await?.get(topic) {
            return Ok(*n);
        }
        self.refresh_topics()
            .await?
            .get(topic)
            .copied()
            .ok_or_else(|| KafkaError::UnknownTopic(topic.to_owned()))
    }

    /// A cached client for one partition; checks the partition exists.
    pub async fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, KafkaError> {
        if let Some(pc) = self.known.partition(topic, partition) {
            return Ok(pc);
        }
        // A new client asks the brokers for the topic by name, which would create it again
        // if it was deleted since (`Known`): only on a topic list read from now on, not on a
        // cached one (a client is made once per partition, so this costs little).
        let count = self
            .topics_read_after(Instant::now())
            .await?
            .get(topic)
            .copied()
            .ok_or_else(|| KafkaError::UnknownTopic(topic.to_owned()))?;
        // A request that found no topic list to resolve its hub with (`resolve_topic`) must
        // not reach one of several case twins either.
        self.refuse_case_twins(topic)?;
        if partition >= count {
            return Err(KafkaError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            });
        }
        // Listed only because it was before (see `TopicCache::missing`): making a partition
        // client would ask the brokers for it by name, which creates it again (`Known`).
        if self.known.unconfirmed(topic) {
            return Err(KafkaError::TopicUnconfirmed(topic.to_owned()));
        }
        // Doubted lately: the list may be from a broker that has not learnt of a deletion yet
        // while the leader, asked by name below, would create the topic again (`Known`).
        if self.known.doubted(topic)
            && !self
                .timed(admin::known_to_replicas(
                    &self.admin,
                    self.connector(),
                    topic,
                    partition,
                    // A replica that does not answer by then does not hold the request up.
                    self.timeout() / 2,
                ))
                .await?
        {
            return Err(KafkaError::TopicUnconfirmed(topic.to_owned()));
        }
        let client = self.client().await?;
        let pc = Arc::new(Partition {
            pc: self
                .timed(client.partition_client(topic, partition, UnknownTopicHandling::Error))
                .await?,
            gone: AtomicBool::new(false),
        });
        self.sweep_nodelay();
        self.known
            .partitions
            .lock()
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, Arc::clone(&pc));
        Ok(pc)
    }

    /// Forgets cached knowledge of `topic` after a broker said it does not know it.
    fn said_unknown(&self, topic: &str) {
        self.known.said_unknown(topic);
    }

    /// Maps client errors of a partition operation, forgetting stale metadata.
    fn partition_error(&self, e: KafkaError, topic: &str, partition: i32) -> KafkaError {
        match e.protocol() {
            Some(ProtocolError::UnknownTopicOrPartition) => {
                self.said_unknown(topic);
                KafkaError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition,
                }
            }
            Some(ProtocolError::MessageTooLarge | ProtocolError::RecordListTooLarge) => {
                KafkaError::RecordTooLarge
            }
            _ => e,
        }
    }

    /// The partition for a record: Kafka's default partitioner for keyed records
    /// (murmur2, as the Java client), round robin otherwise.
    pub fn choose_partition(&self, key: Option<&[u8]>, partitions: i32) -> i32 {
        let n = u32::try_from(partitions.max(1)).unwrap_or(1);
        let h = match key {
            Some(k) => murmur2::murmur2(k, murmur2::KAFKA_SEED) & 0x7fff_ffff,
            None => self.round_robin.fetch_add(1, Ordering::Relaxed),
        };
        i32::try_from(h % n).unwrap_or(0)
    }

    /// Writes records to one partition; returns their offsets once Kafka acknowledged them.
    /// Combined with concurrent requests for the same partition unless coalescing is off
    /// (see `kafka/coalesce.rs`).
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<Record>,
    ) -> Result<Vec<i64>, KafkaError> {
        let span = tracing::debug_span!(
            target: TRACE_TARGET,
            "kafka.produce",
            topic,
            partition,
            records = records.len(),
            kafka.produce_request = tracing::field::Empty,
        );
        tracing::Instrument::instrument(self.produce_traced(topic, partition, records), span).await
    }

    async fn produce_traced(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<Record>,
    ) -> Result<Vec<i64>, KafkaError> {
        let pc = self.partition(topic, partition).await?;
        let result = match &self.coalescer {
            None => {
                let number = self.produce_requests.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::Span::current().record("kafka.produce_request", number);
                metrics::batch(
                    records.len(),
                    || records.iter().map(coalesce::record_bytes).sum(),
                    1,
                );
                let started = Instant::now();
                let result = self
                    .timed(pc.produce(records, self.config.compression.rskafka()))
                    .await;
                metrics::request(metrics::Operation::produce, started.elapsed(), &result);
                result
            }
            Some(c) => match c.submit(topic, partition, pc, records, &self.produce_requests)? {
                // Bounded by the request timeout inside (`Sender::write`).
                coalesce::Submitted::Lead(lead) => lead.send().await,
                coalesce::Submitted::Queued(rx) => {
                    match self.timed(async { Ok::<_, KafkaError>(rx.await) }).await {
                        Ok(Ok(Ok((offsets, number)))) => {
                            tracing::Span::current().record("kafka.produce_request", number);
                            Ok(offsets)
                        }
                        Ok(Ok(Err(shared))) => Err(KafkaError::Shared(shared)),
                        // The sender task ended without an answer (runtime shutting down).
                        Ok(Err(_)) => Err(KafkaError::Timeout),
                        Err(e) => Err(e),
                    }
                }
            },
        };
        if let (Ok(offsets), Some(w)) = (&result, self.watches.existing(topic, partition))
            && let Some(last) = offsets.last()
        {
            w.saw(last + 1);
        }
        match result {
            Ok(offsets) => Ok(offsets),
            Err(e) if matches!(e.protocol(), Some(ProtocolError::UnknownTopicOrPartition)) => {
                // Nothing was written. Deleted, or not ready yet? Fresh metadata tells.
                self.said_unknown(topic);
                match self.partition_count(topic).await {
                    Ok(count) if partition < count => Err(KafkaError::PartitionNotReady {
                        topic: topic.to_owned(),
                        partition,
                    }),
                    Ok(_) | Err(KafkaError::UnknownTopic(_)) => Err(KafkaError::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    }),
                    Err(other) => Err(other),
                }
            }
            Err(e) => Err(self.partition_error(e, topic, partition)),
        }
    }

    /// Waits until the partition holds a record at `offset` or later, or until `deadline`,
    /// without holding a fetch open on the shared connection (see `kafka/watch.rs`).
    pub async fn wait_for_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(), KafkaError> {
        // Made (or refused) here, so a deleted topic answers as for any read.
        self.partition(topic, partition).await?;
        let w = self.watches.get(topic, partition);
        let timeout = self.timeout();
        watch::wait(&w, offset, deadline, |weak| {
            let (known, topic) = (Arc::clone(&self.known), topic.to_owned());
            tokio::spawn(watch::poll(weak, move || {
                let (known, topic) = (Arc::clone(&known), topic.clone());
                async move {
                    // The handle's current client, never one dropped since (see `Known`):
                    // none left means the topic said unknown; the waiters time out.
                    let Some(pc) = known.partition(&topic, partition) else {
                        return watch::Polled::Stop;
                    };
                    match tokio::time::timeout(timeout, pc.get_offset(OffsetAt::Latest)).await {
                        Ok(Ok(end)) => watch::Polled::End(end),
                        Ok(Err(ClientError::ServerError {
                            protocol_error: ProtocolError::UnknownTopicOrPartition,
                            ..
                        })) => {
                            known.said_unknown(&topic);
                            watch::Polled::Stop
                        }
                        Ok(Err(_)) | Err(_) => watch::Polled::Failed,
                    }
                }
            }));
        })
        .await;
        Ok(())
    }

    /// The partition's end offset as its watch last saw it, without asking Kafka: `None`
    /// when no one waited on the partition yet (or not seen yet). A stream that reads many
    /// partitions fetches only those whose end is past its position.
    pub fn known_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.watches
            .existing(topic, partition)
            .map(|w| w.end())
            .filter(|e| *e >= 0)
    }

    /// How many Kafka produce requests this handle has sent (tests, benchmarks).
    pub fn produce_requests(&self) -> u64 {
        self.produce_requests.load(Ordering::Relaxed)
    }

    /// How many Kafka fetch requests this handle has sent (tests, benchmarks).
    pub fn fetch_requests(&self) -> u64 {
        self.fetch_requests.load(Ordering::Relaxed)
    }

    /// Earliest and latest (next) offset of a partition.
    pub async fn offsets(&self, topic: &str, partition: i32) -> Result<(i64, i64), KafkaError> {
        let pc = self.partition(topic, partition).await?;
        let (earliest, latest) = self
            .timed(async {
                let e = pc.get_offset(OffsetAt::Earliest).await?;
                let l = pc.get_offset(OffsetAt::Latest).await?;
                Ok::<_, ClientError>((e, l))
            })
            .await
            .map_err(|e| self.partition_error(e, topic, partition))?;
        Ok((earliest, latest))
    }

    /// The first offset of a partition whose record's timestamp is `time_ms` or later (the
    /// end when there is none), by Kafka's ListOffsets.
    pub async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        time_ms: i64,
    ) -> Result<i64, KafkaError> {
        let pc = self.partition(topic, partition).await?;
        let at = chrono::DateTime::from_timestamp_millis(time_ms).unwrap_or_default();
        self.timed(pc.get_offset(OffsetAt::Timestamp(at)))
            .await
            .map_err(|e| self.partition_error(e, topic, partition))
    }

    /// The offset the next record of a partition will get (its high watermark).
    pub async fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, KafkaError> {
        let pc = self.partition(topic, partition).await?;
        self.timed(pc.get_offset(OffsetAt::Latest))
            .await
            .map_err(|e| self.partition_error(e, topic, partition))
    }

    /// Reads records from `offset` on, at most about `max_bytes` of them; returns them and
    /// the high watermark. An offset past the end is `OffsetOutOfRange`. With `max_wait_ms`
    /// the broker may hold the answer that long while there is nothing to read, and with it
    /// every later request on the shared connection (brokers answer a connection's requests
    /// in order): long polls use [`wait_for_records`](Self::wait_for_records) instead.
    /// Without a wait, identical fetches asked for at the same moment (readers woken by one
    /// append) share one request (`fetches.rs`).
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<(Vec<RecordAndOffset>, i64), KafkaError> {
        let span =
            tracing::debug_span!(target: TRACE_TARGET, "kafka.fetch", topic, partition, offset);
        let fetch = self.fetch_traced(topic, partition, offset, max_bytes, max_wait_ms);
        tracing::Instrument::instrument(fetch, span).await
    }

    async fn fetch_traced(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<(Vec<RecordAndOffset>, i64), KafkaError> {
        let pc = self.partition(topic, partition).await?;
        let out_of_range =
            |e: &KafkaError| matches!(e.protocol(), Some(ProtocolError::OffsetOutOfRange));
        let bytes = 1..max_bytes.max(2);
        if max_wait_ms == 0 {
            // Readers woken together at the same offset share one request. A timeout is
            // shared too; any other failure is left to the unshared fetch below, which
            // reports it.
            let (pc, bytes) = (Arc::clone(&pc), bytes.clone());
            let counted = Arc::clone(&self.fetch_requests);
            let fetch = self.timed(async move {
                counted.fetch_add(1, Ordering::Relaxed);
                pc.fetch_records(offset, bytes, 0).await
            });
            let fetch = async move {
                let started = Instant::now();
                let result = fetch.await;
                metrics::request(metrics::Operation::fetch, started.elapsed(), &result);
                result
            };
            let shared = self
                .fetches
                .share(topic, partition, offset, max_bytes, async move {
                    match fetch.await {
                        Ok(answer) => Ok(Arc::new(answer)),
                        Err(KafkaError::Timeout) => Err(fetches::Failed::TimedOut),
                        Err(e)
                            if matches!(
                                e.protocol(),
                                Some(ProtocolError::UnknownTopicOrPartition)
                            ) =>
                        {
                            Err(fetches::Failed::UnknownTopic)
                        }
                        Err(_) => Err(fetches::Failed::Other),
                    }
                })
                .await;
            match shared {
                Ok(answer) if !(answer.0.is_empty() && offset > answer.1) => {
                    // A reader that fetched alone owns the answer: no copy.
                    return Ok(Arc::try_unwrap(answer).unwrap_or_else(|shared| (*shared).clone()));
                }
                Err(fetches::Failed::TimedOut) => return Err(KafkaError::Timeout),
                // Not again with this client: it would look the topic up by name (`Known`).
                Err(fetches::Failed::UnknownTopic) => {
                    self.said_unknown(topic);
                    return Err(KafkaError::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    });
                }
                Ok(_) | Err(fetches::Failed::Other) => {}
            }
        }
        self.fetch_requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let fetched = self
            .timed_longer(
                Duration::from_millis(u64::try_from(max_wait_ms).unwrap_or_default()),
                pc.fetch_records(offset, bytes, max_wait_ms),
            )
            .await;
        metrics::request(metrics::Operation::fetch, started.elapsed(), &fetched);
        match fetched {
            // Kafka answers OFFSET_OUT_OF_RANGE past the high watermark; some brokers
            // (tansu) answer with nothing. Treat both alike.
            Ok((records, high_watermark)) if !(records.is_empty() && offset > high_watermark) => {
                Ok((records, high_watermark))
            }
            Ok(_) => {
                let (earliest, latest) = self.offsets(topic, partition).await?;
                Err(KafkaError::OffsetOutOfRange {
                    offset,
                    earliest,
                    latest,
                })
            }
            Err(e) if out_of_range(&e) => {
                let (earliest, latest) = self.offsets(topic, partition).await?;
                Err(KafkaError::OffsetOutOfRange {
                    offset,
                    earliest,
                    latest,
                })
            }
            Err(KafkaError::Client(c)) if admin::is_undecodable(&c) => {
                Err(KafkaError::Undecodable {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    detail: c.to_string(),
                })
            }
            Err(e) => Err(self.partition_error(e, topic, partition)),
        }
    }

    fn connector(&self) -> admin::Connector<'_> {
        admin::Connector {
            bootstrap: &self.config.bootstrap_servers,
            client_id: &self.client_id,
            security: &self.security,
        }
    }

    /// Brokers, controller and partition placement.
    pub async fn cluster(&self) -> Result<ClusterInfo, KafkaError> {
        self.timed(admin::cluster(&self.admin, self.connector()))
            .await
    }

    /// Creates a topic with the given configs (e.g. `cleanup.policy=compact`).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<(), KafkaError> {
        let result = self
            .timed(admin::create_topic(
                self.connector(),
                name,
                partitions,
                replication_factor,
                configs,
                self.timeout(),
            ))
            .await;
        self.known.forget(name);
        if result.is_ok() {
            // Created here: whatever was said of an earlier topic of that name is past.
            self.known.doubted.lock().remove(name);
            // Boxed: its future (partition clients, metadata) would otherwise sit inside every
            // caller's future type.
            Box::pin(self.wait_ready(name, partitions)).await;
        }
        result
    }

    /// Waits (up to the request timeout) until every partition of a topic just created
    /// answers on its leader, so that "created" means usable: for a moment after CreateTopics
    /// returns, Kafka answers UNKNOWN_TOPIC_OR_PARTITION to a produce.
    async fn wait_ready(&self, topic: &str, partitions: i32) {
        let deadline = Instant::now() + self.timeout();
        for p in 0..partitions {
            loop {
                let ready = async {
                    let pc = self.partition(topic, p).await?;
                    tokio::time::timeout(self.timeout(), pc.get_offset(OffsetAt::Latest))
                        .await
                        .map_err(|_| KafkaError::Timeout)?
                        .map_err(KafkaError::from)
                }
                .await;
                match ready {
                    Ok(_) => break,
                    Err(_) if Instant::now() < deadline => {
                        self.known.forget(topic);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => {
                        tracing::warn!(topic, partition = p, error = %e, "a topic just created is not ready yet");
                        return;
                    }
                }
            }
        }
    }

    /// The configs `keys` (every config when `None`) of `topic` as the cluster applies them.
    pub async fn topic_configs(
        &self,
        topic: &str,
        keys: Option<&[&str]>,
    ) -> Result<HashMap<String, Option<String>>, KafkaError> {
        self.timed(admin::topic_configs(self.connector(), topic, keys))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_partition_matches_java_murmur2_ok() {
        // Kafka's UtilsTest: murmur2 of these keys, then toPositive(h) % n.
        let k = Kafka::new(&KafkaConfig::default()).unwrap();
        let cases: [(&[u8], i32); 4] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"abc", 479_470_107),
        ];
        for (key, java) in cases {
            #[allow(clippy::cast_sign_loss)] // reinterpreting Java's signed int bits
            let positive = (java as u32) & 0x7fff_ffff;
            for n in [1, 3, 7, 100] {
                let want = i32::try_from(positive % n as u32).unwrap();
                assert_eq!(k.choose_partition(Some(key), n), want, "{key:?} % {n}");
            }
        }
    }

    #[test]
    fn choose_partition_round_robin_without_key_ok() {
        let k = Kafka::new(&KafkaConfig::default()).unwrap();
        let picks: Vec<i32> = (0..6).map(|_| k.choose_partition(None, 3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }
}
