//! Consumer groups over stateless HTTP: group management (Manage on the hub), reads from a
//! partition through a group, checkpoints, and partition runtime information (Listen on the
//! hub or on that consumer group).
//!
//! No consumer instance lives in the gateway: a read names its partition and starts from
//! the group's checkpoint (or an explicit offset), so any instance behind a load balancer,
//! or any Lambda invocation, serves any read. Groups and checkpoints live in Kafka
//! ([`hubgate_server::consumer_groups`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use hubgate_server::access::Grant;
use hubgate_server::http::{ApiJson, ApiQuery, read_body};
use hubgate_server::json::parse_object;
use hubgate_server::{ApiError, KafkaError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ProxyState;

use crate::AppState;
use crate::records::ListenedEvent;

/// Largest consumer-group or checkpoint body.
const BODY_LIMIT: usize = 16 * 1024;

/// Longest `user_metadata` (Event Hubs allows 1024 characters).
const MAX_USER_METADATA: usize = 1024;

/// Partitions looked up at once for `GET …/partitions`.
const PARALLEL_PARTITIONS: usize = 16;

/// Fetch size when looking up a partition's last event (some brokers answer nothing when
/// the batch holding it is larger than the fetch size).
const LAST_EVENT_FETCH_BYTES: i32 = 1024 * 1024;

/// Records a read returns when `count` is not given.
const DEFAULT_COUNT: usize = 100;

/// `PUT /{hub}/consumergroups/{group}` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    #[serde(default)]
    user_metadata: Option<String>,
}

/// `PUT /{hub}/consumergroups/{group}`: 201 with the group, 409 if it exists, 403 past
/// `limits.max_consumer_groups_per_hub`.
pub(crate) async fn create_group(
    State(s): AppState,
    grant: Grant,
    body: Body,
) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let principal = &grant.principal;
    let bytes = read_body(body, BODY_LIMIT).await?;
    let body: CreateGroup = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateGroup::default()
    } else {
        parse_object(
            &bytes,
            r#"consumer group body: expected {"user_metadata": "…"}"#,
        )?
    };
    if body
        .user_metadata
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_USER_METADATA)
    {
        return Err(ApiError::BadRequest(format!(
            "user_metadata must be at most {MAX_USER_METADATA} characters"
        )));
    }
    s.kafka.partition_count(hub).await?;
    let created = s
        .consumer_groups
        .create(hub, group, body.user_metadata, &principal.name())
        .await?;
    tracing::info!(hub, group, by = principal.name(), "consumer group created");
    group_audit(&s, &grant, "consumer_group.create").await?;
    Ok((StatusCode::CREATED, ApiJson(created)).into_response())
}

/// `GET /{hub}/consumergroups/{group}`.
pub(crate) async fn get_group(State(s): AppState, grant: Grant) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    Ok(ApiJson(s.consumer_groups.get(hub, group).await?).into_response())
}

/// `GET /{hub}/consumergroups`: every group, `$Default` first.
pub(crate) async fn list_groups(State(s): AppState, grant: Grant) -> Result<Response, ApiError> {
    let hub = grant.params.hub()?;
    let groups = s.consumer_groups.list(hub).await?;
    Ok(ApiJson(json!({ "hub": hub, "consumer_groups": groups })).into_response())
}

/// `DELETE /{hub}/consumergroups/{group}`: 200; the group's checkpoints are gone with it.
pub(crate) async fn delete_group(State(s): AppState, grant: Grant) -> Result<StatusCode, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let principal = &grant.principal;
    s.consumer_groups.delete(hub, group).await?;
    tracing::info!(hub, group, by = principal.name(), "consumer group deleted");
    group_audit(&s, &grant, "consumer_group.delete").await?;
    Ok(StatusCode::OK)
}

/// Records a consumer-group action in the audit log.
async fn group_audit(s: &ProxyState, grant: &Grant, action: &'static str) -> Result<(), ApiError> {
    Ok(s.audit
        .record(hubgate_server::audit::Event {
            action,
            principal: &grant.principal.name(),
            request_id: &grant.request_id,
            hub: Some(grant.params.hub()?),
            target: Some(grant.params.consumer_group()?),
            details: Vec::new(),
        })
        .await?)
}

/// `?count=N&offset=O&wait_ms=W` of a read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    count: Option<usize>,
    offset: Option<i64>,
    wait_ms: Option<u64>,
}

/// The answer to a read.
#[derive(Debug, Serialize)]
struct ReadResponse<'a> {
    hub: &'a str,
    consumer_group: &'a str,
    partition: i32,
    events: Vec<ListenedEvent>,
    /// Where the next read continues; checkpoint it once the events are processed.
    next_offset: i64,
}

/// The partition's existence and offsets: `(earliest, latest)`.
async fn offsets(s: &ProxyState, hub: &str, partition: i32) -> Result<(i64, i64), ApiError> {
    Ok(s.kafka.offsets(hub, partition).await?)
}

/// `GET /{hub}/consumergroups/{group}/partitions/{p}/messages`: up to `count` events (default
/// 100) from `offset`, or from the group's checkpoint, or from the earliest event; waits up
/// to `wait_ms` (at most `limits.max_wait_ms`) for the first one.
pub(crate) async fn read_messages(
    State(s): AppState,
    grant: Grant,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let partition = grant.params.partition()?;
    let limits = &s.config.limits;
    // The default never exceeds a lower configured limit.
    let count = query
        .count
        .unwrap_or(DEFAULT_COUNT.min(limits.max_consume_count));
    if !(1..=limits.max_consume_count).contains(&count) {
        return Err(ApiError::BadRequest(format!(
            "count must be from 1 to {}",
            limits.max_consume_count
        )));
    }
    if query.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::BadRequest(
            "offset must be a non-negative integer".into(),
        ));
    }
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0));
    if wait > limits.max_wait {
        return Err(ApiError::BadRequest(format!(
            "wait_ms must be from 0 to {}",
            limits.max_wait.as_millis()
        )));
    }
    let (start, explicit) = match query.offset {
        Some(offset) => {
            s.consumer_groups.require(hub, group).await?;
            (offset, true)
        }
        None => {
            let checkpoint = s.consumer_groups.checkpoint(hub, group, partition).await?;
            (checkpoint.map_or(0, |c| c.offset), false)
        }
    };
    // Held while waiting, so waiting reads stay bounded (and counted by the metrics).
    let _permit = if !wait.is_zero() {
        Some((
            hubgate_server::metrics::long_poll_waiting(),
            Arc::clone(&s.waiting_reads)
                .try_acquire_owned()
                .map_err(|_| {
                    ApiError::Busy(
                        "too many reads are waiting for events on this instance; retry".into(),
                    )
                })?,
        ))
    } else {
        None
    };
    let read = |from: i64| {
        crate::read::read(
            &s.kafka,
            hub,
            partition,
            from,
            count,
            limits.max_consume_bytes,
            wait,
        )
    };
    let read = match read(start).await {
        // Like Kafka's auto.offset.reset=earliest: no checkpoint, or one retention already
        // passed (or a recreated topic never reached), starts at the beginning. Found out by
        // reading, not asked up front: most reads start at a checkpoint that is fine.
        Err(KafkaError::OffsetOutOfRange { earliest, .. }) if !explicit => read(earliest).await?,
        other => other?,
    };
    let next = read.next;
    let body = ReadResponse {
        hub,
        consumer_group: group,
        partition,
        events: read.records.into_iter().map(ListenedEvent::new).collect(),
        next_offset: next,
    };
    let mut response = ApiJson(body).into_response();
    response
        .headers_mut()
        .insert("NextOffset", HeaderValue::from(next));
    Ok(response)
}

/// `PUT …/checkpoint` body: `offset` or `last_event_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCheckpoint {
    offset: Option<i64>,
    /// The id of the last event processed from a stream (`hubgate_core::streams`).
    last_event_id: Option<String>,
}

const CHECKPOINT_BODY: &str = r#"checkpoint body: expected {"offset": <next offset to read>} or {"last_event_id": "<id of the last event processed>"}"#;

/// `PUT /{hub}/consumergroups/{group}/partitions/{p}/checkpoint` `{"offset": O}`: O is the
/// next offset to read (a read's `next_offset`), from 0 to the partition's end offset; or
/// `{"last_event_id": ID}`, a stream event's id: the partition's next offset after it.
pub(crate) async fn put_checkpoint(
    State(s): AppState,
    grant: Grant,
    body: Body,
) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let (partition, principal) = (grant.params.partition()?, &grant.principal);
    let body: SetCheckpoint = parse_object(&read_body(body, BODY_LIMIT).await?, CHECKPOINT_BODY)?;
    let offset = match (body.offset, body.last_event_id) {
        (Some(offset), None) => offset,
        (None, Some(id)) => hubgate_core::streams::EventId::parse(&id)
            .and_then(|id| id.next_offset(partition))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        _ => return Err(ApiError::BadRequest(CHECKPOINT_BODY.into())),
    };
    let latest = s.kafka.end_offset(hub, partition).await?;
    if !(0..=latest).contains(&offset) {
        return Err(ApiError::BadRequest(format!(
            "offset must be from 0 to the partition's end offset {latest}"
        )));
    }
    let checkpoint = s
        .consumer_groups
        .set_checkpoint(hub, group, partition, offset, &principal.name())
        .await?;
    Ok(ApiJson(checkpoint).into_response())
}

/// `GET /{hub}/consumergroups/{group}/partitions/{p}/checkpoint`: 404 when there is none.
pub(crate) async fn get_checkpoint(State(s): AppState, grant: Grant) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let partition = grant.params.partition()?;
    s.kafka.partition(hub, partition).await?;
    match s.consumer_groups.checkpoint(hub, group, partition).await? {
        Some(c) => Ok(ApiJson(c).into_response()),
        None => Err(ApiError::NotFound(format!(
            "consumer group '{group}' has no checkpoint on partition {partition}; reads start at the earliest event"
        ))),
    }
}

/// One partition's runtime information for a group (Event Hubs' `PartitionProperties`).
#[derive(Debug, Serialize)]
struct PartitionRuntime {
    hub: String,
    consumer_group: String,
    partition: i32,
    /// The earliest offset still held.
    begin_offset: i64,
    /// The offset the next event will get (Kafka's high watermark).
    end_offset: i64,
    last_enqueued_offset: Option<i64>,
    last_enqueued_time_utc: Option<String>,
    is_empty: bool,
    /// The group's checkpoint, if any.
    checkpoint_offset: Option<i64>,
    /// Events from where the group's next read begins to the end.
    lag: i64,
}

async fn runtime(
    s: &ProxyState,
    hub: &str,
    group: &str,
    partition: i32,
    checkpoint: Option<i64>,
) -> Result<PartitionRuntime, ApiError> {
    let (begin, end) = offsets(s, hub, partition).await?;
    let last: Option<(i64, DateTime<Utc>)> = if end > begin {
        let (records, _) = s
            .kafka
            .fetch(hub, partition, end - 1, LAST_EVENT_FETCH_BYTES, 0)
            .await?;
        records
            .into_iter()
            .rfind(|r| r.offset < end)
            .map(|r| (r.offset, r.record.timestamp))
    } else {
        None
    };
    let from = checkpoint
        .filter(|c| (begin..=end).contains(c))
        .unwrap_or(begin);
    Ok(PartitionRuntime {
        hub: hub.to_owned(),
        consumer_group: group.to_owned(),
        partition,
        begin_offset: begin,
        end_offset: end,
        last_enqueued_offset: last.map(|(o, _)| o),
        last_enqueued_time_utc: last.map(|(_, t)| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        is_empty: end <= begin,
        checkpoint_offset: checkpoint,
        lag: end - from,
    })
}

/// `GET /{hub}/consumergroups/{group}/partitions/{p}`.
pub(crate) async fn partition_info(State(s): AppState, grant: Grant) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let partition = grant.params.partition()?;
    let checkpoint = s
        .consumer_groups
        .checkpoint(hub, group, partition)
        .await?
        .map(|c| c.offset);
    Ok(ApiJson(runtime(&s, hub, group, partition, checkpoint).await?).into_response())
}

/// `GET /{hub}/consumergroups/{group}/partitions`: every partition, in order.
pub(crate) async fn partitions_info(
    State(s): AppState,
    grant: Grant,
) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    let count = s.kafka.partition_count(hub).await?;
    let checkpoints = s.consumer_groups.checkpoints(hub, group).await?;
    let of = |p: i32| {
        checkpoints
            .iter()
            .find(|c| c.partition == p)
            .map(|c| c.offset)
    };
    let partitions: Vec<PartitionRuntime> = futures::stream::iter(0..count)
        .map(|p| runtime(&s, hub, group, p, of(p)))
        .buffered(PARALLEL_PARTITIONS)
        .try_collect()
        .await?;
    Ok(ApiJson(json!({
        "hub": hub,
        "consumer_group": group,
        "partitions": partitions,
    }))
    .into_response())
}
