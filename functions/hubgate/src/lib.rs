//! The all-in-one hubgate server: every function's router on one port.

use std::sync::Arc;

use hubgate_shared::secrets::SecretError;
use hubgate_shared::{Config, Kafka, KeyStore, Revocations};
use kafka_proxy::ProxyState;
use token_issuer::IssuerState;

/// The process-wide clients every function shares.
#[derive(Debug, Clone)]
pub struct Clients {
    pub keys: Arc<KeyStore>,
    pub kafka: Arc<Kafka>,
    pub revocations: Arc<Revocations>,
}

impl Clients {
    /// Creates the clients and loads the SAS rules (from Secrets Manager when `secret_id`
    /// is set). Kafka connects lazily.
    pub async fn new(config: &Config) -> Result<Self, SecretError> {
        let keys = Arc::new(KeyStore::load(config).await?);
        let kafka = Arc::new(Kafka::new(&config.kafka));
        let revocations = Arc::new(Revocations::new(Arc::clone(&kafka), config));
        Ok(Self {
            keys,
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
            keys: Arc::clone(&self.keys),
            revocations: Arc::clone(&self.revocations),
        })
    }
}

/// Every function's router, sharing one set of clients.
pub fn app(config: Arc<Config>, clients: &Clients) -> axum::Router {
    let proxy = kafka_proxy::app(Arc::new(ProxyState::new(
        Arc::clone(&config),
        Arc::clone(&clients.keys),
        Arc::clone(&clients.kafka),
        Arc::clone(&clients.revocations),
    )));
    proxy.merge(token_issuer::app(clients.issuer(config)))
}
