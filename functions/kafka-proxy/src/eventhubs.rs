//! The Event Hubs REST send paths: an HTTP body becomes one Kafka record on the hub's topic.
//! (learn.microsoft.com/rest/api/eventhub/send-event)

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use hubgate_shared::http::{ApiPath, read_body};
use hubgate_shared::names::{validate_hub, validate_publisher};
use hubgate_shared::{ApiError, Resource, Right};
use rskafka::record::Record;

use crate::ProxyState;

/// Record header carrying the publisher name (the Event Hubs AMQP annotation's name).
pub const PUBLISHER_HEADER: &str = "x-opt-publisher";

/// `POST /{hub}/publishers/{publisher}/messages`: Send on that publisher. The event is keyed
/// by the publisher name (so one publisher's events stay in order on one partition) and
/// carries it as the `x-opt-publisher` header. 201 with an empty body once Kafka acknowledged.
pub(crate) async fn send_publisher(
    State(s): State<Arc<ProxyState>>,
    ApiPath((hub, publisher)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    validate_hub(&hub)?;
    validate_publisher(&publisher)?;
    s.check(
        &headers,
        Right::Send,
        &Resource::publisher(&hub, &publisher),
    )?;
    s.require_hub(&hub)?;
    let event = read_body(body, s.config.limits.max_publication_bytes).await?;
    let record = Record {
        key: Some(publisher.as_bytes().to_vec()),
        value: Some(event.to_vec()),
        headers: [(PUBLISHER_HEADER.to_owned(), publisher.as_bytes().to_vec())].into(),
        timestamp: Utc::now(),
    };
    let count = s.kafka.partition_count(&hub).await?;
    let partition = s.kafka.choose_partition(record.key.as_deref(), count);
    s.kafka.produce(&hub, partition, vec![record]).await?;
    Ok(StatusCode::CREATED)
}
