//! Server-Sent Events (WHATWG HTML §9.2) from a consumer group: one partition
//! (`…/partitions/{p}/stream`) or every partition of the hub (`…/stream`).
//!
//! Streams are stateless like reads: each event's `id` says where the stream stands
//! ([`hubgate_core::streams`]), so a reconnect with `Last-Event-ID` resumes on any instance
//! with nothing lost or repeated. The start is `Last-Event-ID` (header, or the
//! `last_event_id` parameter for a new `EventSource`), else `offset` / `start`, else the
//! group's checkpoint, else the earliest event. Checkpoints stay explicit (the checkpoint
//! route takes an event id).
//!
//! Bounded: at most `streams.max_open` streams per instance (429 beyond); the body is
//! pulled, so a stream reads the next batch only once the connection took the last one (a
//! slow reader is paced, nothing piles up); a waiting stream holds no fetch and no buffer,
//! it waits on the partitions' watches like a long poll (one end-offset poller per
//! partition for the whole process, fetches shared by readers woken together).
//!
//! A stream ends with a final `end` event when its credential expires (reconnect with a new
//! one and `Last-Event-ID`), its consumer group is deleted, or its hub disappears; it closes
//! without one after `streams.max_duration_secs` (or before a Lambda invocation's deadline)
//! and when Kafka fails, and the client reconnects (an `EventSource` does so by itself).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hubgate_core::streams::{EventId, write_positions};
use hubgate_server::access::Grant;
use hubgate_server::consumer_groups::GroupError;
use hubgate_server::http::ApiQuery;
use hubgate_server::{ApiError, KafkaError};
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::ProxyState;
use crate::records::ListenedEvent;

/// Most events one chunk carries (one partition's batch).
const BATCH_EVENTS: usize = 256;

/// Bytes asked for per fetch: the same for every stream, so streams woken together at one
/// offset share the fetch.
const FETCH_BYTES: usize = 1024 * 1024;

/// Pause before looking again at partitions whose end was past the stream's position but
/// that gave no records (transaction markers, a stale end).
const PAUSE: Duration = Duration::from_millis(100);

/// A stream ends this long before a Lambda invocation's deadline.
const LAMBDA_MARGIN: Duration = Duration::from_secs(2);

/// `?offset=O&start=earliest|latest&last_event_id=ID&access_token=T`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// The next offset to read (one-partition streams).
    offset: Option<i64>,
    start: Option<Start>,
    /// For a new `EventSource`, which cannot send `Last-Event-ID` itself.
    last_event_id: Option<String>,
    /// The credential (taken by the route's authorization, `http::ACCESS_TOKEN_PARAM`).
    #[allow(dead_code)] // read by the guard before the handler; accepted here
    access_token: Option<String>,
}

/// Where a stream starts when nothing else says.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Start {
    Earliest,
    Latest,
}

/// `GET /{hub}/consumergroups/{group}/partitions/{p}/stream`.
pub(crate) async fn partition(
    State(s): State<Arc<ProxyState>>,
    grant: Grant,
    ApiQuery(query): ApiQuery<StreamQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let p = grant.params.partition()?;
    s.kafka.partition(grant.params.hub()?, p).await?;
    open(s, grant, query, request, vec![p], false).await
}

/// `GET /{hub}/consumergroups/{group}/stream`: every partition of the hub.
pub(crate) async fn hub(
    State(s): State<Arc<ProxyState>>,
    grant: Grant,
    ApiQuery(query): ApiQuery<StreamQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    if query.offset.is_some() {
        return Err(ApiError::BadRequest(
            "offset applies to one partition's stream; a hub stream starts at start=earliest|latest, the checkpoints, or an event id".into(),
        ));
    }
    let count = s.kafka.partition_count(grant.params.hub()?).await?;
    open(s, grant, query, request, (0..count).collect(), true).await
}

/// The start of each partition: `(partition, next offset)`.
async fn starts(
    s: &ProxyState,
    hub: &str,
    partitions: &[i32],
    query: &StreamQuery,
    resume: Option<&EventId>,
    checkpoints: &[hubgate_server::consumer_groups::Checkpoint],
) -> Result<Vec<(i32, i64)>, ApiError> {
    let mut out = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let from_id = match resume.map(|id| id.next_offset(p)) {
            Some(Ok(next)) => Some(next),
            // A partition added since the id was written starts as a fresh stream would.
            Some(Err(hubgate_core::streams::EventIdError::NoPartition(_))) | None => None,
            Some(Err(e)) => return Err(ApiError::BadRequest(e.to_string())),
        };
        let next = match (from_id, query.offset, query.start) {
            (Some(next), ..) => next,
            (None, Some(offset), _) => {
                let (earliest, end) = s.kafka.offsets(hub, p).await?;
                if !(earliest..=end).contains(&offset) {
                    return Err(KafkaError::OffsetOutOfRange {
                        offset,
                        earliest,
                        latest: end,
                    }
                    .into());
                }
                offset
            }
            (None, None, Some(Start::Earliest)) => s.kafka.offsets(hub, p).await?.0,
            (None, None, Some(Start::Latest)) => s.kafka.end_offset(hub, p).await?,
            (None, None, None) => checkpoints
                .iter()
                .find(|c| c.partition == p)
                .map_or(0, |c| c.offset),
        };
        out.push((p, next));
    }
    Ok(out)
}

async fn open(
    s: Arc<ProxyState>,
    grant: Grant,
    query: StreamQuery,
    request: Request,
    partitions: Vec<i32>,
    hub_stream: bool,
) -> Result<Response, ApiError> {
    let (hub, group) = (grant.params.hub()?, grant.params.consumer_group()?);
    if query.offset.is_some() && query.start.is_some() {
        return Err(ApiError::BadRequest(
            "give offset or start, not both".into(),
        ));
    }
    if query.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::BadRequest(
            "offset must be a non-negative integer".into(),
        ));
    }
    // The browser's reconnect sends the header; it wins over the parameter the page's URL
    // may still carry from an earlier start.
    let resume = match request
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().map(str::trim))
    {
        Some(Ok(id)) if !id.is_empty() => Some(id.to_owned()),
        Some(Err(_)) => {
            return Err(ApiError::BadRequest(
                "Last-Event-ID is not an event id".into(),
            ));
        }
        _ => match &query.last_event_id {
            Some(id) if id.chars().count() > hubgate_core::streams::MAX_QUERY_ID_LEN => {
                return Err(ApiError::BadRequest(format!(
                    "last_event_id is longer than {} characters; send the id in Last-Event-ID",
                    hubgate_core::streams::MAX_QUERY_ID_LEN
                )));
            }
            other => other.clone().filter(|i| !i.is_empty()),
        },
    };
    let resume = resume
        .map(|id| EventId::parse(&id))
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if hub_stream && matches!(resume, Some(EventId::Offset(_))) {
        return Err(ApiError::BadRequest(
            "a hub stream resumes from a hub stream's event id (partition:offset pairs)".into(),
        ));
    }
    // Before any Kafka work: a flood of opens past the cap costs nothing.
    let permit = Arc::clone(&s.open_streams)
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::Busy("too many event streams are open on this instance; retry".into())
        })?;
    let (generation, checkpoints) = s
        .consumer_groups
        .generation_and_checkpoints(hub, group)
        .await?;
    let next = starts(&s, hub, &partitions, &query, resume.as_ref(), &checkpoints).await?;
    let config = &s.config.streams;
    let now = Instant::now();
    let mut closes = now + config.max_duration;
    if let Some(deadline) = hubgate_server::runtime::invocation_deadline(request.extensions()) {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        closes = closes.min(now + left.saturating_sub(LAMBDA_MARGIN).min(config.max_duration));
    }
    // A credential valid for longer than the stream can last changes nothing; clamped so
    // that an expiry centuries away (a SAS `se` is any number) cannot overflow a clock.
    let credential_left = Duration::from_secs(
        grant
            .principal
            .expires_at()
            .saturating_sub(hubgate_server::authz::unix_now()),
    );
    let credential_ends = now + credential_left.min(config.max_duration + Duration::from_secs(1));
    tracing::info!(
        hub,
        group,
        partitions = next.len(),
        closes_in_ms = closes.saturating_duration_since(now).as_millis(),
        "event stream opened"
    );
    let streamer = Streamer {
        hub: hub.to_owned(),
        group: group.to_owned(),
        generation,
        next,
        hub_stream,
        credential_ends,
        closes,
        heartbeat_due: now + config.heartbeat,
        group_check_due: now + config.group_check,
        turn: 0,
        looked: false,
        state: Phase::Opening,
        _permit: permit,
        _counted: hubgate_server::metrics::stream_open(),
        s,
    };
    let body = Body::from_stream(futures::stream::unfold(streamer, |mut st| async move {
        let chunk = st.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), st))
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    // A credential may be in the URL: nothing along the way keeps the answer (RFC 6750 §2.3).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx and others buffer answers unless told not to.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Opening,
    Open,
    Ended,
}

/// Why a stream ended (the final `end` event's `reason`).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum EndReason {
    CredentialExpired,
    ConsumerGroupDeleted,
    HubDeleted,
}

impl EndReason {
    fn message(self) -> &'static str {
        match self {
            Self::CredentialExpired => {
                "the credential expired: reconnect with a new one and the last event id"
            }
            Self::ConsumerGroupDeleted => "the consumer group was deleted",
            Self::HubDeleted => "the hub no longer exists",
        }
    }
}

/// One event on the wire: the read's event shape, with its partition.
#[derive(Serialize)]
struct StreamEvent {
    partition: i32,
    #[serde(flatten)]
    event: ListenedEvent,
}

/// One open stream; its body pulls [`next_chunk`](Self::next_chunk).
struct Streamer {
    s: Arc<ProxyState>,
    hub: String,
    group: String,
    generation: i64,
    /// `(partition, next offset to read)`, sorted by partition.
    next: Vec<(i32, i64)>,
    hub_stream: bool,
    credential_ends: Instant,
    closes: Instant,
    heartbeat_due: Instant,
    group_check_due: Instant,
    /// The partition looked at first next time (round robin, so no partition starves).
    turn: usize,
    /// Whether every partition was fetched once (before that, ends may be unknown).
    looked: bool,
    state: Phase,
    _permit: OwnedSemaphorePermit,
    /// Counts the stream in `hubgate_streams_open` while it lives.
    _counted: Option<hubgate_server::metrics::Open>,
}

impl Streamer {
    fn end(&mut self, reason: EndReason) -> Option<Bytes> {
        self.state = Phase::Ended;
        tracing::info!(hub = %self.hub, group = %self.group, ?reason, "event stream ended");
        let data = serde_json::json!({ "reason": reason, "message": reason.message() });
        Some(Bytes::from(format!("event: end\ndata: {data}\n\n")))
    }

    /// The next bytes of the stream; `None` closes it.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        match self.state {
            Phase::Ended => return None,
            Phase::Opening => {
                self.state = Phase::Open;
                let retry = self.s.config.streams.retry.as_millis();
                // Sent at once: the browser's `open` fires, proxies see bytes.
                return Some(Bytes::from(format!("retry: {retry}\n: stream open\n\n")));
            }
            Phase::Open => {}
        }
        let config = Arc::clone(&self.s.config);
        let config = &config.streams;
        loop {
            let now = Instant::now();
            if now >= self.credential_ends {
                return self.end(EndReason::CredentialExpired);
            }
            if now >= self.closes {
                return None;
            }
            if now >= self.group_check_due {
                self.group_check_due = now + config.group_check;
                match self
                    .s
                    .consumer_groups
                    .generation(&self.hub, &self.group)
                    .await
                {
                    Ok(g) if g == self.generation => {}
                    Ok(_) | Err(GroupError::NotFound { .. }) => {
                        return self.end(EndReason::ConsumerGroupDeleted);
                    }
                    // Kafka unavailable: checked again next time.
                    Err(_) => {}
                }
            }
            match self.read_some().await {
                Ok(Some(chunk)) => {
                    self.heartbeat_due = Instant::now() + config.heartbeat;
                    return Some(chunk);
                }
                Ok(None) => {}
                Err(KafkaError::UnknownTopic(_) | KafkaError::UnknownPartition { .. }) => {
                    return self.end(EndReason::HubDeleted);
                }
                Err(e) => {
                    tracing::warn!(hub = %self.hub, error = %e, "event stream closed: kafka failed");
                    return None;
                }
            }
            let now = Instant::now();
            if now >= self.heartbeat_due {
                self.heartbeat_due = now + config.heartbeat;
                return Some(Bytes::from_static(b": heartbeat\n\n"));
            }
            let until = self
                .heartbeat_due
                .min(self.group_check_due)
                .min(self.credential_ends)
                .min(self.closes);
            self.wait(until).await;
        }
    }

    /// The next batch of one partition that has events, round robin; `None` when none has.
    async fn read_some(&mut self) -> Result<Option<Bytes>, KafkaError> {
        let kafka = &self.s.kafka;
        let n = self.next.len();
        for i in 0..n {
            let idx = (self.turn + i) % n;
            let (p, next) = self.next[idx];
            let may_have =
                !self.looked || kafka.known_end(&self.hub, p).is_none_or(|end| end > next);
            if !may_have {
                continue;
            }
            let read = match crate::read::read(
                kafka,
                &self.hub,
                p,
                next,
                BATCH_EVENTS,
                FETCH_BYTES,
                Duration::ZERO,
            )
            .await
            {
                // Past retention (or a topic created again): on from the earliest event,
                // as a read from a checkpoint does.
                Err(KafkaError::OffsetOutOfRange { earliest, .. }) => {
                    tracing::info!(hub = %self.hub, partition = p, from = next, earliest, "event stream skipped to the earliest event");
                    self.next[idx].1 = earliest;
                    continue;
                }
                other => other?,
            };
            if read.records.is_empty() {
                continue;
            }
            self.turn = (idx + 1) % n;
            let mut out = String::with_capacity(256 * read.records.len());
            for r in read.records {
                let offset = r.offset;
                self.next[idx].1 = offset + 1;
                out.push_str("id: ");
                if self.hub_stream {
                    write_positions(&mut out, &self.next);
                } else {
                    let _ = write!(out, "{offset}");
                }
                out.push_str("\ndata: ");
                let event = StreamEvent {
                    partition: p,
                    event: ListenedEvent::new(r),
                };
                // Compact JSON has no newline: one `data:` line.
                let json =
                    serde_json::to_string(&event).map_err(|e| KafkaError::Encode(e.to_string()))?;
                out.push_str(&json);
                out.push_str("\n\n");
            }
            self.next[idx].1 = read.next;
            self.looked = true;
            return Ok(Some(Bytes::from(out)));
        }
        self.looked = true;
        Ok(None)
    }

    /// Waits until a partition grows past the stream's position, or `until`.
    async fn wait(&self, until: Instant) {
        let kafka = &self.s.kafka;
        // An end already past the position gave no records (markers, a stale end): pause.
        if self
            .next
            .iter()
            .any(|&(p, next)| kafka.known_end(&self.hub, p).is_some_and(|e| e > next))
        {
            tokio::time::sleep_until(until.min(Instant::now() + PAUSE)).await;
            return;
        }
        let waits = self
            .next
            .iter()
            .map(|&(p, next)| Box::pin(kafka.wait_for_records(&self.hub, p, next, until)));
        // Any partition's growth (or failure: the read reports it) ends the wait.
        let _ = futures::future::select_all(waits).await;
    }
}
