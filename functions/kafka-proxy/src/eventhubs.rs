//! The Event Hubs REST data plane (learn.microsoft.com/rest/api/eventhub/): send an event or
//! a batch to a hub, a partition or a publisher, and revoke / resume publishers. Path
//! keywords match in any case (the route table's normalizing layer), as the service's do.

use hubgate_server::audit;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hubgate_core::bodies::{BrokerProperties, Event, batch_events};
use hubgate_server::access::Grant;
use hubgate_server::header_case::HeaderCase;
use hubgate_server::http::{ApiJson, read_body};
use hubgate_server::idempotency::{self, RequestId};
use hubgate_server::{ApiError, KafkaError, Principal, Resource};
use rskafka::record::Record;
use serde_json::json;

use crate::{ProxyState, atom};

pub use hubgate_core::bodies::PUBLISHER_HEADER;

/// `Content-Type` of an Event Hubs batch.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.microsoft.servicebus.json";

/// Largest body accepted by the revocation `PUT` (an Atom entry is a few hundred bytes).
const REVOKE_BODY_LIMIT: usize = 64 * 1024;

use crate::AppState;

/// Where an event goes.
#[derive(Debug)]
enum Target {
    /// The hub; the partition comes from the partition key (or round robin).
    Hub,
    /// One partition.
    Partition(i32),
    /// One publisher: its name is the key.
    Publisher(String),
}

impl Target {
    /// The path between the hub and `/messages`, as an idempotency key's request identity.
    fn path(&self) -> String {
        match self {
            Self::Hub => String::new(),
            Self::Partition(p) => format!("partitions/{p}"),
            Self::Publisher(name) => format!("publishers/{}", name.to_ascii_lowercase()),
        }
    }
}

/// `POST /{hub}/messages`.
pub(crate) async fn send_to_hub(
    State(s): AppState,
    grant: Grant,
    case: HeaderCase,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    send(&s, &grant, Target::Hub, case, request).await
}

/// `POST /{hub}/partitions/{p}/messages`.
pub(crate) async fn send_to_partition(
    State(s): AppState,
    grant: Grant,
    case: HeaderCase,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let target = Target::Partition(grant.params.partition()?);
    send(&s, &grant, target, case, request).await
}

/// `POST /{hub}/publishers/{p}/messages` (also `/publisher/`).
pub(crate) async fn send_as_publisher(
    State(s): AppState,
    grant: Grant,
    case: HeaderCase,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let target = Target::Publisher(grant.params.publisher()?.to_owned());
    send(&s, &grant, target, case, request).await
}

/// `PUT /{hub}/revokedpublishers/{publisher}`: Manage on the hub. 201, or 409 if already
/// revoked. The body may be empty or the Atom `RevokedPublisherDescription` entry of the
/// Event Hubs API; it carries nothing hubgate needs. The answer is the Atom entry describing
/// the revoked publisher for Event Hubs REST clients ([`atom::wanted`]), empty otherwise.
pub(crate) async fn revoke(
    State(s): AppState,
    grant: Grant,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let (hub, name) = (grant.params.hub()?, grant.params.publisher()?);
    let by = grant.principal.name();
    read_body(body, REVOKE_BODY_LIMIT).await?;
    let Some(revoked) = s.revocations.revoke(hub, name, &by).await? else {
        return Err(ApiError::AlreadyRevoked(format!(
            "publisher '{name}' is already revoked"
        )));
    };
    tracing::info!(hub, publisher = name, by, "publisher revoked");
    s.audit
        .record(audit::Event {
            action: "publisher.revoke",
            principal: &by,
            request_id: &grant.request_id,
            hub: Some(hub),
            target: Some(name),
            details: Vec::new(),
        })
        .await?;
    if !atom::wanted(&headers, uri.query()) {
        return Ok((StatusCode::CREATED, ApiJson(revoked)).into_response());
    }
    let entry = atom::revoked_entry(&s.config.namespace, &revoked);
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, atom::ENTRY_CONTENT_TYPE)],
        entry,
    )
        .into_response())
}

/// `DELETE /{hub}/revokedpublishers/{publisher}`: Manage on the hub. 200 (resumed), or 404
/// if it was not revoked.
pub(crate) async fn resume(State(s): AppState, grant: Grant) -> Result<StatusCode, ApiError> {
    let (hub, name) = (grant.params.hub()?, grant.params.publisher()?);
    if s.revocations.resume(hub, name).await? {
        tracing::info!(
            hub,
            publisher = name,
            by = grant.principal.name(),
            "publisher resumed"
        );
        s.audit
            .record(audit::Event {
                action: "publisher.resume",
                principal: &grant.principal.name(),
                request_id: &grant.request_id,
                hub: Some(hub),
                target: Some(name),
                details: Vec::new(),
            })
            .await?;
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::NotFound(format!(
            "publisher '{name}' is not revoked"
        )))
    }
}

/// `GET /{hub}/revokedpublishers`: Manage on the hub. An Atom feed for Event Hubs REST
/// clients ([`atom::wanted`]), JSON otherwise.
pub(crate) async fn list_revoked(
    State(s): AppState,
    grant: Grant,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let hub = grant.params.hub()?;
    let list = s.revocations.list(hub).await?;
    if atom::wanted(&headers, uri.query()) {
        let feed = atom::revoked_feed(&s.config.namespace, hub, &list);
        return Ok(([(header::CONTENT_TYPE, atom::FEED_CONTENT_TYPE)], feed).into_response());
    }
    Ok(ApiJson(json!({ "hub": hub, "revoked_publishers": list })).into_response())
}

/// Request headers that are HTTP machinery, not event properties.
const NOT_PROPERTIES: [&str; 30] = [
    "authorization",
    "servicebusauthorization",
    "brokerproperties",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "user-agent",
    "accept",
    "expect",
    "date",
    "cookie",
    "cache-control",
    "pragma",
    "origin",
    "referer",
    "via",
    "forwarded",
    "x-request-id",
    "traceparent",
    "max-forwards",
    // Added by Azure App Service / Functions front ends.
    "client-ip",
    "disguised-host",
    "was-default-hostname",
];

/// Header-name prefixes added by clients, proxies and cloud front ends.
const NOT_PROPERTY_PREFIXES: [&str; 15] = [
    "accept-",
    "if-",
    "proxy-",
    "sec-",
    "x-forwarded-",
    "x-amz",
    "x-azure-",
    "x-arr-",
    "x-ms-",
    "x-real-ip",
    "tracestate",
    "x-original-",
    "x-waws-",
    "x-site-",
    "x-appservice-",
];

/// A custom header (Event Hubs "user property") that should travel with the event.
fn is_property(name: &str) -> bool {
    !NOT_PROPERTIES.contains(&name) && !NOT_PROPERTY_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn is_batch(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(BATCH_CONTENT_TYPE))
}

/// One event from a single send: the body, `BrokerProperties`' partition key, and the custom
/// headers as properties, named as the client wrote them where that is known ([`HeaderCase`]).
async fn single_event(
    case: HeaderCase,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Event, ApiError> {
    let broker = match headers.get("brokerproperties") {
        None => BrokerProperties::default(),
        Some(v) => BrokerProperties::parse(v.as_bytes())?,
    };
    let custom: HeaderMap = headers
        .iter()
        .filter(|(n, _)| is_property(n.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let properties: std::collections::BTreeMap<String, Vec<u8>> =
        case.pairs(custom).await.into_iter().collect();
    if let Some(name) = properties
        .keys()
        .find(|n| hubgate_core::bodies::is_reserved_header(n))
    {
        return Err(ApiError::BadRequest(
            hubgate_core::bodies::reserved_header_error("header", name).0,
        ));
    }
    Ok(Event {
        body: body.to_vec(),
        partition_key: broker.partition_key,
        properties,
    })
}

/// Sends one event or a batch. Everything is validated before anything is written; 201
/// means Kafka acknowledged every event of the request.
async fn send(
    s: &ProxyState,
    grant: &Grant,
    target: Target,
    case: HeaderCase,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // The request's own headers: a `HeaderMap` extractor would copy every one of them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let hub = grant.params.hub()?;
    let (principal, resource) = (&grant.principal, grant.resource()?);
    let bytes = read_body(body, s.config.limits.max_publication_bytes).await?;
    let events = if is_batch(headers) {
        batch_events(&bytes)?
    } else {
        vec![single_event(case, headers, &bytes).await?]
    };
    let request = idempotency::wanted(headers).then(|| events_identity(hub, &target, &events));
    let run = async {
        write_events(s, hub, &target, principal, resource, events)
            .await
            .map(|()| StatusCode::CREATED)
            .into_response()
    };
    s.idempotent(headers, principal, resource, request, run)
        .await
}

/// An idempotency key's request identity: the target and everything of each event that
/// becomes its record (body, partition key, properties), so that the same body sent with
/// other properties, `BrokerProperties` or as a batch instead of one event is another request.
fn events_identity(hub: &str, target: &Target, events: &[Event]) -> RequestId {
    let mut id = RequestId::new(&format!("POST /{hub}/{}/messages", target.path()));
    for e in events {
        id = id
            .part(&e.body)
            .optional(e.partition_key.as_deref().map(str::as_bytes))
            .part(&(e.properties.len() as u64).to_be_bytes());
        for (name, value) in &e.properties {
            id = id.part(name.as_bytes()).part(value);
        }
    }
    id
}

/// Throttles and writes the events of one authorized request.
async fn write_events(
    s: &ProxyState,
    hub: &str,
    target: &Target,
    principal: &Principal,
    resource: &Resource,
    events: Vec<Event>,
) -> Result<(), ApiError> {
    let now = Utc::now();
    let trace = hubgate_server::traces::record_headers();
    let records: Vec<Record> = events
        .into_iter()
        .map(|e| {
            let mut headers = e.properties;
            headers.extend(trace.iter().cloned());
            let key = match target {
                Target::Publisher(p) => {
                    headers.insert(PUBLISHER_HEADER.to_owned(), p.as_bytes().to_vec());
                    Some(p.as_bytes().to_vec())
                }
                _ => e.partition_key.map(String::into_bytes),
            };
            Record {
                key,
                value: Some(e.body),
                headers,
                timestamp: now,
            }
        })
        .collect();
    crate::produce::check_size(&records, s.config.limits.max_publication_bytes)?;
    {
        let _span =
            tracing::debug_span!(target: hubgate_server::traces::TARGET, "throttle").entered();
        s.throttle.check(principal, resource, records.len())?;
    }

    let count = s.kafka.partition_count(hub).await?;
    if let Target::Partition(p) = *target
        && p >= count
    {
        return Err(KafkaError::UnknownPartition {
            topic: hub.to_owned(),
            partition: p,
        }
        .into());
    }
    // Keyless events of one request share one partition: one Kafka request, all or nothing.
    let keyless_partition = s.kafka.choose_partition(None, count);
    let records = records
        .into_iter()
        .map(|record| {
            let partition = match (target, &record.key) {
                (Target::Partition(p), _) => *p,
                (_, Some(k)) => s.kafka.choose_partition(Some(k), count),
                (_, None) => keyless_partition,
            };
            (partition, record)
        })
        .collect();
    crate::produce::produce(&s.kafka, hub, records).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_property_filters_http_machinery_ok() {
        for h in [
            "authorization",
            "content-type",
            "x-forwarded-for",
            "x-ms-client-request-id",
            "accept-encoding",
            "brokerproperties",
            "host",
            "x-original-url",
            "x-waws-unencoded-url",
            "client-ip",
            "disguised-host",
            "x-site-deployment-id",
        ] {
            assert!(!is_property(h), "{h}");
        }
        for h in ["sensor-id", "x-custom", "priority", "messageid"] {
            assert!(is_property(h), "{h}");
        }
    }
}
