//! The HDInsight Kafka REST proxy API (`/v1/...`): status, metadata, topic creation,
//! produce and consume.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hubgate_server::access::Grant;
use hubgate_server::http::{ApiJson, ApiQuery, read_body, require_json};
use hubgate_server::idempotency::{self, RequestId};
use hubgate_server::json::parse_object;
use hubgate_server::kafka::{BrokerInfo, PartitionInfo};
use hubgate_server::{ApiError, KafkaError, Principal, Resource, Right, authorize};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ProxyState;
use crate::records::{ConsumeResponse, ConsumedRecord, ProduceResponse};

use crate::AppState;

/// How long `/v1/status` waits for Kafka before reporting it unavailable.
const STATUS_KAFKA_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /v1/status`: any valid credential; reports whether Kafka answers (within 1 s).
pub(crate) async fn status(State(s): AppState) -> Result<impl IntoResponse, ApiError> {
    let kafka = match tokio::time::timeout(STATUS_KAFKA_PROBE, s.kafka.topics()).await {
        Ok(Ok(_)) => "ok",
        _ => "unavailable",
    };
    Ok(ApiJson(json!({"status": "ok", "kafka": kafka})))
}

/// A broker as the HDInsight reference shows it, in the broker list and in a partition's
/// `leader`, `replicas` and `isr`. A replica on a broker missing from the cluster's
/// metadata (offline) has only its `id`; the other fields are null.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Broker {
    host_name: Option<String>,
    port: Option<i32>,
    id: i32,
    rack: Option<String>,
}

impl From<&BrokerInfo> for Broker {
    fn from(b: &BrokerInfo) -> Self {
        Self {
            host_name: Some(b.host.clone()),
            port: Some(b.port),
            id: b.id,
            rack: b.rack.clone(),
        }
    }
}

/// Broker `id` of `brokers`, or one known by its id alone.
fn broker(brokers: &[BrokerInfo], id: i32) -> Broker {
    brokers.iter().find(|b| b.id == id).map_or(
        Broker {
            host_name: None,
            port: None,
            id,
            rack: None,
        },
        Broker::from,
    )
}

/// `GET /v1/metadata/brokers`: Listen on the namespace.
pub(crate) async fn brokers(State(s): AppState) -> Result<impl IntoResponse, ApiError> {
    let cluster = s.kafka.cluster().await?;
    let brokers: Vec<Broker> = cluster.brokers.iter().map(Broker::from).collect();
    Ok(ApiJson(json!({ "brokers": brokers })))
}

/// `GET /v1/metadata/topics`: the topics this credential may Listen to.
pub(crate) async fn topics(
    State(s): AppState,
    Grant { principal, .. }: Grant,
) -> Result<impl IntoResponse, ApiError> {
    let all = s.kafka.topics().await?;
    let mut topics: Vec<&String> = all
        .keys()
        .filter(|t| s.config.hub_allowed(t))
        .filter(|t| authorize(&principal, Right::Listen, &Resource::hub(t)).is_ok())
        .collect();
    topics.sort();
    Ok(ApiJson(json!({ "topics": topics })))
}

/// How many partitions' offsets are asked for at once when listing a topic's partitions.
const OFFSET_LOOKUPS_AT_ONCE: usize = 16;

/// One partition as the HDInsight reference shows it: placement with broker objects, and
/// the earliest and latest (next) offsets.
#[derive(Debug, Serialize)]
struct PartitionMetadata {
    partition_id: i32,
    /// Null while the partition has no leader (an election).
    leader: Option<Broker>,
    replicas: Vec<Broker>,
    isr: Vec<Broker>,
    earliest_offset: i64,
    latest_offset: i64,
}

/// The metadata of `topic`'s partitions `wanted` (all when `None`), offsets included.
async fn partition_metadata(
    s: &ProxyState,
    topic: &str,
    wanted: Option<i32>,
) -> Result<Vec<PartitionMetadata>, ApiError> {
    use futures::{StreamExt, TryStreamExt};
    let mut cluster = s.kafka.cluster().await?;
    let parts = cluster
        .topics
        .remove(topic)
        .ok_or_else(|| KafkaError::UnknownTopic(topic.to_owned()))?;
    let parts: Vec<PartitionInfo> = match wanted {
        None => parts,
        Some(p) => vec![
            parts
                .into_iter()
                .find(|i| i.partition == p)
                .ok_or_else(|| KafkaError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition: p,
                })?,
        ],
    };
    let brokers = &cluster.brokers;
    futures::stream::iter(parts)
        .map(|p| async move {
            let (earliest, latest) = s.kafka.offsets(topic, p.partition).await?;
            Ok::<_, ApiError>(PartitionMetadata {
                partition_id: p.partition,
                leader: (p.leader >= 0).then(|| broker(brokers, p.leader)),
                replicas: p.replicas.iter().map(|id| broker(brokers, *id)).collect(),
                isr: p.isr.iter().map(|id| broker(brokers, *id)).collect(),
                earliest_offset: earliest,
                latest_offset: latest,
            })
        })
        .buffered(OFFSET_LOOKUPS_AT_ONCE)
        .try_collect()
        .await
}

/// `GET /v1/metadata/topics/{topic}/partitions`: every partition's placement and offsets.
pub(crate) async fn partitions(
    State(s): AppState,
    grant: Grant,
) -> Result<impl IntoResponse, ApiError> {
    let topic = grant.params.hub()?;
    let partitions = partition_metadata(&s, topic, None).await?;
    Ok(ApiJson(json!({ "topic": topic, "partitions": partitions })))
}

/// `GET /v1/metadata/topics/{topic}/partitions/{partition}`: placement and offsets.
pub(crate) async fn partition(
    State(s): AppState,
    grant: Grant,
) -> Result<impl IntoResponse, ApiError> {
    let (topic, p) = (grant.params.hub()?, grant.params.partition()?);
    let mut one = partition_metadata(&s, topic, Some(p)).await?;
    Ok(ApiJson(one.pop()))
}

/// `PUT /v1/topics/{topic}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTopic {
    #[serde(default = "one")]
    partition_count: i32,
    #[serde(default = "one_i16")]
    replication_factor: i16,
    #[serde(default)]
    topic_properties: BTreeMap<String, Value>,
}

impl Default for CreateTopic {
    fn default() -> Self {
        Self {
            partition_count: one(),
            replication_factor: one_i16(),
            topic_properties: BTreeMap::new(),
        }
    }
}

fn one() -> i32 {
    1
}

fn one_i16() -> i16 {
    1
}

/// Most partitions a topic may be created with through the gateway.
const MAX_PARTITIONS: i32 = 10_000;

/// `PUT /v1/topics/{topic}`: Manage on the hub. Topic properties are Kafka topic configs
/// (`retention.ms`, `cleanup.policy`, …), passed to the broker, which validates them.
pub(crate) async fn create_topic(
    State(s): AppState,
    grant: Grant,
    body: Body,
) -> Result<Response, ApiError> {
    let topic = grant.params.hub()?;
    // The reference marks the body optional: none (or only whitespace) is every default.
    let bytes = read_body(body, crate::SMALL_BODY_LIMIT).await?;
    let body: CreateTopic = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateTopic::default()
    } else {
        parse_object(&bytes, "topic body")?
    };
    if !(1..=MAX_PARTITIONS).contains(&body.partition_count) {
        return Err(ApiError::BadRequest(format!(
            "partition_count must be from 1 to {MAX_PARTITIONS}"
        )));
    }
    if body.replication_factor < 1 {
        return Err(ApiError::BadRequest(
            "replication_factor must be at least 1".into(),
        ));
    }
    let mut configs = Vec::with_capacity(body.topic_properties.len());
    for (k, v) in &body.topic_properties {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "topic property '{k}' must be a string, number or boolean"
                )));
            }
        };
        configs.push((k.clone(), value));
    }
    // Event Hubs names are case-insensitive and so are SAS scopes: two topics differing only
    // in case would share every token's scope.
    let existing = s.kafka.refresh_topics().await?;
    if let Some(other) = existing.keys().find(|t| t.eq_ignore_ascii_case(topic)) {
        return Err(ApiError::Conflict(if *other == topic {
            format!("topic '{topic}' already exists")
        } else {
            format!("topic '{other}' already exists; hub names are case-insensitive")
        }));
    }
    s.kafka
        .create_topic(
            topic,
            body.partition_count,
            body.replication_factor,
            &configs,
        )
        .await?;
    tracing::info!(topic, partitions = body.partition_count, "topic created");
    s.audit
        .record(hubgate_server::audit::Event {
            action: "topic.create",
            principal: &grant.principal.name(),
            request_id: &grant.request_id,
            hub: Some(topic),
            target: None,
            details: vec![
                ("partition_count", body.partition_count.to_string()),
                ("replication_factor", body.replication_factor.to_string()),
            ],
        })
        .await?;
    let out = json!({
        "topic": topic,
        "partition_count": body.partition_count,
        "replication_factor": body.replication_factor,
        "topic_properties": body.topic_properties,
    });
    Ok((StatusCode::CREATED, ApiJson(out)).into_response())
}

/// `POST /v1/producer/topics/{topic}`: Send on the hub. Records for several partitions are
/// written concurrently; the answer lists each record's partition and offset, in order.
/// 200 only when Kafka acknowledged every record.
pub(crate) async fn produce(
    State(s): AppState,
    grant: Grant,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // The request's own headers: a `HeaderMap` extractor would copy them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let topic = grant.params.hub()?;
    let (principal, resource) = (&grant.principal, grant.resource()?);
    require_json(headers)?;
    let bytes = read_body(body, s.config.limits.max_publication_bytes).await?;
    let run = async {
        produce_body(&s, topic, principal, resource, &bytes)
            .await
            .into_response()
    };
    // The JSON body decides every record (`require_json` fixed its media type).
    let request = idempotency::wanted(headers)
        .then(|| RequestId::new(&format!("POST /v1/producer/topics/{topic}")).part(&bytes));
    s.idempotent(headers, principal, resource, request, run)
        .await
}

/// The produce request after authentication: parse, throttle, write.
async fn produce_body(
    s: &ProxyState,
    topic: &str,
    principal: &Principal,
    resource: &Resource,
    bytes: &[u8],
) -> Result<ApiJson<ProduceResponse>, ApiError> {
    let parsed = crate::records::produce_records(bytes, Utc::now())?;
    let limit = s.config.limits.max_publication_bytes;
    crate::produce::check_size(parsed.iter().map(|(_, r)| r), limit)?;
    {
        let _span =
            tracing::debug_span!(target: hubgate_server::traces::TARGET, "throttle").entered();
        s.throttle.check(principal, resource, parsed.len())?;
    }
    let count = s.kafka.partition_count(topic).await?;
    let mut records = Vec::with_capacity(parsed.len());
    for (requested, record) in parsed {
        let partition = match requested {
            Some(p) if p >= count => {
                return Err(KafkaError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition: p,
                }
                .into());
            }
            Some(p) => p,
            None => s.kafka.choose_partition(record.key.as_deref(), count),
        };
        records.push((partition, record));
    }
    let offsets = crate::produce::produce(&s.kafka, topic, records).await?;
    Ok(ApiJson(ProduceResponse { offsets }))
}

/// `?count=N` of the consume route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsumeQuery {
    count: Option<usize>,
}

/// `GET /v1/consumer/topics/{topic}/partitions/{p}/offsets/{offset}?count=N`: Listen on the
/// hub. Returns up to `count` records (default 1) and at most `max_consume_bytes` of record
/// data; the `NextOffset` header says where to continue.
pub(crate) async fn consume(
    State(s): AppState,
    grant: Grant,
    ApiQuery(q): ApiQuery<ConsumeQuery>,
) -> Result<Response, ApiError> {
    let topic = grant.params.hub()?;
    let (partition, offset) = (grant.params.partition()?, grant.params.offset()?);
    let limits = &s.config.limits;
    let count = q.count.unwrap_or(1);
    if !(1..=limits.max_consume_count).contains(&count) {
        return Err(ApiError::BadRequest(format!(
            "count must be from 1 to {}",
            limits.max_consume_count
        )));
    }
    let read = crate::read::read(
        &s.kafka,
        topic,
        partition,
        offset,
        count,
        limits.max_consume_bytes,
        std::time::Duration::ZERO,
    )
    .await?;
    let next = read.next;
    let records = read
        .records
        .into_iter()
        .map(|r| ConsumedRecord::new(partition, r))
        .collect();
    let mut response = ApiJson(ConsumeResponse { records }).into_response();
    response
        .headers_mut()
        .insert("NextOffset", HeaderValue::from(next));
    Ok(response)
}
