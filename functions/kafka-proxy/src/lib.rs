//! kafka-proxy: the HDInsight-compatible `/v1` REST API, the Event Hubs-compatible send
//! paths and consumer groups over HTTP, forwarded to Kafka. Its router is built from the route
//! table (`hubgate_server::routes`), whose layer authorizes each request before its handler.

mod atom;
mod audit;
mod consumer;
mod eventhubs;
mod hdinsight;
mod produce;
mod read;
mod records;
mod stream;

pub use eventhubs::{BATCH_CONTENT_TYPE, PUBLISHER_HEADER};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use http::HeaderMap;
use hubgate_server::access::Access;
use hubgate_server::consumer_groups::ConsumerGroups;
use hubgate_server::http::table_router;
use hubgate_server::idempotency::{Begin, Idempotency, RequestId};
use hubgate_server::routes::ProxyRoute;
use hubgate_server::throttle::{Throttle, sender_key};
use hubgate_server::{ApiError, Clients, Config, Kafka, Principal, Resource, Revocations};

/// Body limit for small JSON requests (topic creation); produce routes use
/// `limits.max_publication_bytes` instead.
pub(crate) const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// The state every kafka-proxy handler takes.
pub(crate) type AppState = axum::extract::State<Arc<ProxyState>>;

/// Everything a request needs, shared by all requests of the process.
#[derive(Debug)]
pub struct ProxyState {
    pub config: Arc<Config>,
    /// The authorization decision (the route table's layer).
    pub access: Arc<Access>,
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
    /// Permits for open event streams (`streams.max_open`).
    pub open_streams: Arc<tokio::sync::Semaphore>,
    /// The audit log of management actions.
    pub audit: Arc<hubgate_server::audit::Audit>,
}

impl ProxyState {
    /// Builds the state from the process's shared clients.
    pub fn new(config: Arc<Config>, clients: &Clients) -> Self {
        // `[[throttle]]` was parsed and checked with the configuration.
        let throttle = Arc::new(Throttle::new(&config.throttle));
        let idempotency = Idempotency::new(config.idempotency_window);
        Self {
            access: Arc::clone(&clients.access),
            kafka: Arc::clone(&clients.kafka),
            revocations: Arc::clone(&clients.revocations),
            throttle,
            idempotency,
            consumer_groups: Arc::clone(&clients.consumer_groups),
            waiting_reads: Arc::new(tokio::sync::Semaphore::new(config.limits.max_waiting_reads)),
            audit: Arc::clone(&clients.audit),
            open_streams: Arc::new(tokio::sync::Semaphore::new(config.streams.max_open)),
            config,
        }
    }

    /// Runs a produce request of `principal` to `resource` under its `Idempotency-Key`, if
    /// it has one: a retry gets the kept answer instead of running again. `request` is the
    /// request's identity (what it writes), computed only when the header is there
    /// ([`idempotency::wanted`]).
    pub(crate) async fn idempotent(
        &self,
        headers: &HeaderMap,
        principal: &Principal,
        resource: &Resource,
        request: Option<RequestId>,
        run: impl Future<Output = Response>,
    ) -> Result<Response, ApiError> {
        let Some(request) = request else {
            return Ok(run.await);
        };
        let scope = format!("{}|{resource}", sender_key(principal, resource));
        Ok(match self.idempotency.begin(headers, &scope, request)? {
            Begin::Untracked => run.await,
            Begin::Fresh(guard) => guard.finish(run.await).await,
            Begin::Replay(kept) => kept,
        })
    }
}

/// The kafka-proxy routes, from the route table (without the serving layers; see [`app`]).
pub fn routes(state: Arc<ProxyState>) -> Router {
    use ProxyRoute as R;
    let access = Arc::clone(&state.access);
    table_router(&access, |id: ProxyRoute, m| match id {
        R::OpenApi => on(m, openapi),
        R::Status => on(m, hdinsight::status),
        R::Brokers => on(m, hdinsight::brokers),
        R::Topics => on(m, hdinsight::topics),
        R::TopicPartitions => on(m, hdinsight::partitions),
        R::TopicPartition => on(m, hdinsight::partition),
        R::CreateTopic => on(m, hdinsight::create_topic),
        R::Produce => on(m, hdinsight::produce),
        R::Consume => on(m, hdinsight::consume),
        R::SendToHub => on(m, eventhubs::send_to_hub),
        R::SendToPartition => on(m, eventhubs::send_to_partition),
        R::SendAsPublisher | R::SendAsPublisherSingular => on(m, eventhubs::send_as_publisher),
        R::RevokePublisher => on(m, eventhubs::revoke),
        R::ResumePublisher => on(m, eventhubs::resume),
        R::ListRevokedPublishers => on(m, eventhubs::list_revoked),
        R::ListConsumerGroups => on(m, consumer::list_groups),
        R::CreateConsumerGroup => on(m, consumer::create_group),
        R::GetConsumerGroup => on(m, consumer::get_group),
        R::DeleteConsumerGroup => on(m, consumer::delete_group),
        R::GroupPartitions => on(m, consumer::partitions_info),
        R::GroupPartition => on(m, consumer::partition_info),
        R::ReadEvents => on(m, consumer::read_messages),
        R::GetCheckpoint => on(m, consumer::get_checkpoint),
        R::PutCheckpoint => on(m, consumer::put_checkpoint),
        R::StreamPartition => on(m, stream::partition),
        R::StreamHub => on(m, stream::hub),
        R::ListAudit => on(m, audit::list),
    })
    .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
    .with_state(state)
}

/// The kafka-proxy app: [`routes`] behind the serving layers.
pub fn app(state: Arc<ProxyState>) -> Router {
    let cors = state.config.cors.layer();
    hubgate_server::http::serve(routes(state), cors)
}

/// `GET /openapi.json`: the OpenAPI 3.1 description of every function's routes (no
/// credential needed), built once per process.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::LazyLock<bytes::Bytes> = std::sync::LazyLock::new(|| {
        bytes::Bytes::from(hubgate_server::openapi::document().to_string())
    });
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
