//! kafka-proxy: the HDInsight-compatible `/v1` REST API and the Event Hubs-compatible send
//! paths, forwarded to Kafka. Every route authenticates, then asks the one
//! [`authorize`](hubgate_shared::authorize) decision for the right it needs.

mod eventhubs;
pub use eventhubs::PUBLISHER_HEADER;
mod hdinsight;
mod records;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use http::HeaderMap;
use hubgate_shared::{ApiError, Authenticator, Config, Kafka, Principal, Resource, Right};

/// Body limit for small JSON requests (topic creation); produce routes use
/// `limits.max_publication_bytes` instead.
const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// Everything a request needs, shared by all requests of the process.
#[derive(Debug)]
pub struct ProxyState {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub kafka: Arc<Kafka>,
}

impl ProxyState {
    /// Builds the state; Kafka connects lazily on first use.
    pub fn new(config: Arc<Config>, kafka: Arc<Kafka>) -> Self {
        Self {
            auth: Authenticator::new(&config),
            config,
            kafka,
        }
    }

    /// Authenticates and authorizes one request.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        right: Right,
        resource: &Resource,
    ) -> Result<Principal, ApiError> {
        Ok(self.auth.check(headers, right, resource)?)
    }

    /// A hub the gateway does not expose is, to the client, a topic that does not exist.
    pub(crate) fn require_hub(&self, hub: &str) -> Result<(), ApiError> {
        if self.config.hub_allowed(hub) {
            Ok(())
        } else {
            Err(ApiError::UnknownTopic(format!(
                "topic '{hub}' does not exist"
            )))
        }
    }
}

/// The kafka-proxy router.
pub fn app(state: Arc<ProxyState>) -> Router {
    let router = Router::new()
        .route("/v1/status", get(hdinsight::status))
        .route("/v1/metadata/brokers", get(hdinsight::brokers))
        .route("/v1/metadata/topics", get(hdinsight::topics))
        .route(
            "/v1/metadata/topics/{topic}/partitions",
            get(hdinsight::partitions),
        )
        .route(
            "/v1/metadata/topics/{topic}/partitions/{partition}",
            get(hdinsight::partition),
        )
        .route("/v1/topics/{topic}", put(hdinsight::create_topic))
        .route("/v1/producer/topics/{topic}", post(hdinsight::produce))
        .route(
            "/v1/consumer/topics/{topic}/partitions/{partition}/offsets/{offset}",
            get(hdinsight::consume),
        )
        .route(
            "/{hub}/publishers/{publisher}/messages",
            post(eventhubs::send_publisher),
        )
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .with_state(state);
    hubgate_shared::http::with_request_layers(router)
}

#[cfg(test)]
mod tests;
