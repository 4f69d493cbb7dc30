//! Why a function could not start, or stopped: one error type for start-up (configuration,
//! credentials, identity provider, Kafka settings) and one for serving.

use std::net::SocketAddr;

/// The server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("FUNCTIONS_CUSTOMHANDLER_PORT is not a port number: {0:?}")]
    BadPort(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("lambda runtime: {0}")]
    Lambda(String),
    #[error(transparent)]
    Tls(#[from] crate::listener::tls::TlsError),
}

/// A function could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("oauth: {0}")]
    OAuth(#[from] crate::jwt::OAuthError),
    #[error(transparent)]
    Groups(#[from] hubgate_core::groups::GroupConfigError),
    #[error("oauth.graph: the HTTP client could not be built: {0}")]
    Graph(#[source] reqwest::Error),
    #[error(transparent)]
    Kafka(#[from] hubgate_kafka::KafkaError),
    #[error(transparent)]
    BrokerToken(#[from] hubgate_kafka::oauth::TokenError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Traces(#[from] crate::traces::TracesError),
}
