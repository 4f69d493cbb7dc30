//! kafka-proxy: the HDInsight-compatible `/v1` REST API, the Event Hubs-compatible send
//! paths and consumer groups over HTTP, forwarded to Kafka. Every route authenticates, then asks the one
//! [`authorize`](hubgate_shared::authorize) decision for the right it needs.

mod consumer;
mod eventhubs;
/// Fuzz target bodies; public only with the `fuzzing` feature (used by `fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod hdinsight;
mod produce;
mod read;
mod records;

pub use eventhubs::{BATCH_CONTENT_TYPE, PUBLISHER_HEADER};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::HeaderMap;
use hubgate_shared::consumer_groups::ConsumerGroups;
use hubgate_shared::idempotency::{self, Begin, Idempotency};
use hubgate_shared::throttle::{Throttle, sender_key};
use hubgate_shared::{
    ApiError, Clients, Config, Gate, Kafka, Principal, Resource, Revocations, Right,
};

/// Body limit for small JSON requests (topic creation); produce routes use
/// `limits.max_publication_bytes` instead.
pub(crate) const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// Everything a request needs, shared by all requests of the process.
#[derive(Debug)]
pub struct ProxyState {
    pub config: Arc<Config>,
    pub gate: Arc<Gate>,
    pub kafka: Arc<Kafka>,
    pub revocations: Arc<Revocations>,
    /// Per-principal send rates (`[[throttle]]`).
    pub throttle: Arc<Throttle>,
    /// Answers kept for `Idempotency-Key` retries.
    pub idempotency: Arc<Idempotency>,
    /// Consumer groups and checkpoints.
    pub consumer_groups: Arc<ConsumerGroups>,
    /// Permits for reads waiting for events (`limits.max_waiting_reads`).
    pub waiting_reads: Arc<tokio::sync::Semaphore>,
}

impl ProxyState {
    /// Builds the state from the process's shared clients.
    pub fn new(config: Arc<Config>, clients: &Clients) -> Self {
        // `Config::validate` has checked the entries; an invalid list throttles nothing.
        let throttle = Arc::new(Throttle::new(&config.throttle).unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid throttle configuration; not throttling");
            Throttle::default()
        }));
        let idempotency = Idempotency::new(std::time::Duration::from_secs(
            config.idempotency_window_secs,
        ));
        Self {
            gate: Arc::clone(&clients.gate),
            kafka: Arc::clone(&clients.kafka),
            revocations: Arc::clone(&clients.revocations),
            throttle,
            idempotency,
            consumer_groups: Arc::clone(&clients.consumer_groups),
            waiting_reads: Arc::new(tokio::sync::Semaphore::new(config.limits.max_waiting_reads)),
            config,
        }
    }

    /// Authenticates and authorizes one request (no I/O, unless the SAS keys must be
    /// reloaded from Secrets Manager).
    pub(crate) async fn check(
        &self,
        headers: &HeaderMap,
        right: Right,
        resource: &Resource,
    ) -> Result<Principal, ApiError> {
        Ok(self.gate.check(headers, right, resource).await?)
    }

    /// Runs a produce request of `principal` to `resource` under its `Idempotency-Key`, if
    /// it has one: a retry gets the kept answer instead of running again. `path` names the
    /// request together with `body`; nothing is computed for requests without the header.
    pub(crate) async fn idempotent(
        &self,
        headers: &HeaderMap,
        principal: &Principal,
        resource: &Resource,
        path: impl FnOnce() -> String,
        body: &[u8],
        run: impl Future<Output = Response>,
    ) -> Result<Response, ApiError> {
        if !headers.contains_key(idempotency::HEADER) {
            return Ok(run.await);
        }
        let scope = format!("{}|{resource}", sender_key(principal, resource));
        Ok(
            match self
                .idempotency
                .begin(headers, &scope, "POST", &path(), body)?
            {
                Begin::Untracked => run.await,
                Begin::Fresh(guard) => guard.finish(run.await).await,
                Begin::Replay(kept) => kept,
            },
        )
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
        .route("/openapi.json", get(openapi))
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
        // Event Hubs paths: keywords are matched case-insensitively by the handlers.
        .route(
            "/{hub}/{kind}",
            post(eventhubs::post_hub).get(eventhubs::get_collection),
        )
        .route(
            "/{hub}/{kind}/{name}",
            put(eventhubs::put_entity)
                .delete(eventhubs::delete_entity)
                .get(eventhubs::get_entity),
        )
        .route(
            "/{hub}/{kind}/{name}/{tail}",
            post(eventhubs::post_entity).get(eventhubs::get_group_partitions),
        )
        .route(
            "/{hub}/{kind}/{name}/{tail}/{partition}",
            get(eventhubs::get_group_partition),
        )
        .route(
            "/{hub}/{kind}/{name}/{tail}/{partition}/{leaf}",
            get(eventhubs::get_partition_leaf).put(eventhubs::put_partition_leaf),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .with_state(state);
    hubgate_shared::http::with_request_layers(router)
}

/// `GET /openapi.json`: the OpenAPI 3.1 description of every function's routes (no
/// credential needed), built once per process.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::LazyLock<bytes::Bytes> = std::sync::LazyLock::new(|| {
        bytes::Bytes::from(hubgate_shared::openapi::document().to_string())
    });
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.clone(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see the README for the API".into())
}

#[cfg(test)]
mod tests;
