//! The process-wide clients every function shares: credentials (SAS keys, OAuth), Kafka, the
//! revocation list and the consumer groups. Created once per process (per Lambda cold start) and reused.

use std::sync::Arc;

use crate::access::Access;
use crate::consumer_groups::ConsumerGroups;
use crate::startup::StartError;
use crate::{Config, Gate, Kafka, Revocations};

/// Credentials, Kafka, revocations and consumer groups, built from one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub gate: Arc<Gate>,
    pub kafka: Arc<Kafka>,
    pub revocations: Arc<Revocations>,
    pub consumer_groups: Arc<ConsumerGroups>,
    /// The authorization decision of every request (routers and authorizer).
    pub access: Arc<Access>,
    /// The audit log of management actions (`None`: `[audit]` has no key).
    pub audit: Arc<crate::audit::Audit>,
}

impl Clients {
    /// Loads the credentials configuration (SAS rules, from Secrets Manager when `secret_id`
    /// is set; the OAuth provider's keys when `[oauth]` is set). Kafka connects lazily.
    /// With `[kafka.oauth]`, prepares its token source (the first token is fetched when the
    /// first connection is made); with `kafka.sasl_secret_id`, reads the SASL user and
    /// password from Secrets Manager.
    pub async fn load(config: &Config) -> Result<Self, StartError> {
        let gate = Arc::new(Gate::load(config).await?);
        let tokens = match &config.kafka.oauth {
            Some(source) => {
                Some(crate::broker_tokens::token_cache(source, config.kafka.request_timeout).await?)
            }
            None => None,
        };
        let mut kafka = config.kafka.clone();
        if let Some(id) = kafka.sasl_secret_id.take() {
            let (username, password) = crate::secrets::SecretStore::from_env(id)
                .await
                .kafka_credentials()
                .await?;
            kafka.sasl_username = Some(username);
            kafka.sasl_password = Some(password);
        }
        Self::assemble(config, &kafka, gate, tokens)
    }

    /// Clients around an existing gate (tests, tools). Fails on Kafka TLS settings that
    /// cannot be used (an unreadable `kafka.tls_ca_file`) and on OAUTHBEARER (which needs
    /// [`Clients::load`]).
    pub fn with_gate(config: &Config, gate: Arc<Gate>) -> Result<Self, StartError> {
        Self::assemble(config, &config.kafka, gate, None)
    }

    /// The clients, with `kafka` (`config.kafka` with its secrets read).
    fn assemble(
        config: &Config,
        kafka: &hubgate_kafka::config::KafkaConfig,
        gate: Arc<Gate>,
        tokens: Option<Arc<hubgate_kafka::oauth::TokenCache>>,
    ) -> Result<Self, StartError> {
        let kafka = Arc::new(Kafka::with_tokens(kafka, tokens)?);
        let revocations = Arc::new(Revocations::new(Arc::clone(&kafka), config));
        let consumer_groups = Arc::new(ConsumerGroups::new(Arc::clone(&kafka), config));
        let access = Arc::new(Access::new(
            config,
            Arc::clone(&gate),
            Arc::clone(&revocations),
            Arc::clone(&kafka),
        ));
        let audit = Arc::new(
            crate::audit::Audit::from_config(Arc::clone(&kafka), &config.audit)
                .map_err(crate::config::ConfigError::Invalid)?,
        );
        gate.keys.audit_into(Arc::clone(&audit));
        Ok(Self {
            access,
            audit,
            gate,
            kafka,
            revocations,
            consumer_groups,
        })
    }

    /// Loads start-up state (the revocation list, the consumer groups); `runtime::start` runs it in the
    /// background. A failure to reach Kafka is logged, not fatal: requests that need the state
    /// load it themselves, and fail closed while Kafka is unreachable. A store topic that
    /// exists but is not compacted is fatal (`Err`): it would lose revocations.
    pub async fn warm_up(&self) -> Result<(), StartError> {
        for (what, result) in [
            ("the revocation list", self.revocations.refresh().await),
            ("the consumer groups", self.consumer_groups.refresh().await),
        ] {
            match result {
                Ok(()) => {}
                Err(e @ hubgate_kafka::KafkaError::StoreNotCompacted { .. }) => {
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not load {what} at start-up; will retry on demand");
                }
            }
        }
        Ok(())
    }
}
