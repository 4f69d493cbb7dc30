//! The all-in-one hubgate server: every function's router on one port.

use std::sync::Arc;

use hubgate_shared::{Config, Kafka, Revocations};
use kafka_proxy::ProxyState;

/// The process-wide clients every function shares.
#[derive(Debug, Clone)]
pub struct Clients {
    pub kafka: Arc<Kafka>,
    pub revocations: Arc<Revocations>,
}

impl Clients {
    /// Creates the clients (nothing connects yet).
    pub fn new(config: &Config) -> Self {
        let kafka = Arc::new(Kafka::new(&config.kafka));
        let revocations = Arc::new(Revocations::new(Arc::clone(&kafka), config));
        Self { kafka, revocations }
    }

    /// Loads start-up state (the revocation list). A failure is logged, not fatal: requests
    /// that need the state retry, and fail closed while Kafka is unreachable.
    pub async fn warm_up(&self) {
        if let Err(e) = self.revocations.refresh().await {
            tracing::warn!(error = %e, "could not load the revocation list at start-up; will retry on demand");
        }
    }
}

/// Every function's router, sharing one set of clients.
pub fn app(config: Arc<Config>, clients: &Clients) -> axum::Router {
    kafka_proxy::app(Arc::new(ProxyState::new(
        config,
        Arc::clone(&clients.kafka),
        Arc::clone(&clients.revocations),
    )))
}
