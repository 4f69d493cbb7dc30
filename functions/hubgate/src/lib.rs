//! The all-in-one hubgate server: every function's router on one port.

use std::sync::Arc;

use hubgate_shared::{Config, Gate, Kafka, Revocations};
use kafka_proxy::ProxyState;
use token_issuer::IssuerState;

/// The process-wide clients every function shares.
#[derive(Debug, Clone)]
pub struct Clients {
    pub gate: Arc<Gate>,
    pub kafka: Arc<Kafka>,
    pub revocations: Arc<Revocations>,
}

impl Clients {
    /// Creates the clients and loads the credentials configuration (SAS rules, from Secrets
    /// Manager when `secret_id` is set; the OAuth provider's keys when `[oauth]` is set).
    /// Kafka connects lazily.
    pub async fn new(config: &Config) -> Result<Self, String> {
        let gate = Arc::new(Gate::load(config).await?);
        let kafka = Arc::new(Kafka::new(&config.kafka));
        let revocations = Arc::new(Revocations::new(Arc::clone(&kafka), config));
        Ok(Self {
            gate,
            kafka,
            revocations,
        })
    }

    /// Loads start-up state (the revocation list). A failure is logged, not fatal: requests
    /// that need the state retry, and fail closed while Kafka is unreachable.
    pub async fn warm_up(&self) {
        if let Err(e) = self.revocations.refresh().await {
            tracing::warn!(error = %e, "could not load the revocation list at start-up; will retry on demand");
        }
    }

    /// The token issuer's state (also used for its non-HTTP events).
    pub fn issuer(&self, config: Arc<Config>) -> Arc<IssuerState> {
        Arc::new(IssuerState {
            config,
            gate: Arc::clone(&self.gate),
            revocations: Arc::clone(&self.revocations),
        })
    }
}

/// Every function's router, sharing one set of clients.
pub fn app(config: Arc<Config>, clients: &Clients) -> axum::Router {
    let proxy = kafka_proxy::app(Arc::new(ProxyState::new(
        Arc::clone(&config),
        Arc::clone(&clients.gate),
        Arc::clone(&clients.kafka),
        Arc::clone(&clients.revocations),
    )));
    proxy.merge(token_issuer::app(clients.issuer(config)))
}
