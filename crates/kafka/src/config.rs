//! `[kafka]`: how to reach the brokers (addresses, timeouts, coalescing, TLS, SASL).

use std::time::Duration;

use serde::Deserialize;

use hubgate_core::lists::string_or_list;
use hubgate_core::units::millis;

/// `[kafka]` settings that do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaConfigError {
    #[error(
        "kafka.tls_cert_file and kafka.tls_key_file go together (a client certificate and its key)"
    )]
    ClientCertIncomplete,
    #[error("kafka.tls_cert_file / tls_key_file are set but kafka.tls is false")]
    ClientCertWithoutTls,
    #[error("kafka.tls_ca_file is set but kafka.tls is false")]
    CaFileWithoutTls,
    #[error("kafka.sasl_mechanism needs kafka.sasl_username and kafka.sasl_password")]
    SaslWithoutCredentials,
    #[error("kafka.sasl_username / sasl_password are set but kafka.sasl_mechanism is not")]
    CredentialsWithoutSasl,
}

/// How hubgate compresses the record batches it produces (`kafka.compression`). Reading
/// always understands every codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProduceCompression {
    /// No compression (the default: every consumer reads it, whatever codec libraries it
    /// has; README `kafka.compression` has the measured trade-off).
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl ProduceCompression {
    /// rskafka's name for it.
    pub fn rskafka(self) -> rskafka::client::partition::Compression {
        use rskafka::client::partition::Compression as C;
        match self {
            Self::None => C::NoCompression,
            Self::Gzip => C::Gzip,
            Self::Snappy => C::Snappy,
            Self::Lz4 => C::Lz4,
            Self::Zstd => C::Zstd,
        }
    }
}

/// How to reach Kafka.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port` of one or more brokers.
    #[serde(deserialize_with = "string_or_list")]
    pub bootstrap_servers: Vec<String>,
    /// Kafka client id.
    pub client_id: String,
    /// Upper bound for any one Kafka operation, including retries (ms).
    #[serde(rename = "request_timeout_ms", deserialize_with = "millis")]
    pub request_timeout: Duration,
    /// How long topic metadata (partition counts) is cached (ms).
    #[serde(rename = "metadata_ttl_ms", deserialize_with = "millis")]
    pub metadata_ttl: Duration,
    /// Set `TCP_NODELAY` on the Kafka connections (see `crates/kafka/src/nodelay.rs`).
    /// Without it, produce requests of about 8-64 KB wait ~40 ms for a delayed ACK.
    pub tcp_nodelay: bool,
    /// Combine records of concurrent HTTP requests for the same partition into shared
    /// produce requests. Ignored (always off) on AWS Lambda, where an instance serves one
    /// request at a time.
    pub coalesce: bool,
    /// How long a shared produce request waits for more records before it is sent (ms).
    /// 0: send as soon as the previous request for that partition was acknowledged.
    #[serde(rename = "linger_ms", deserialize_with = "millis")]
    pub linger: Duration,
    /// Codec of the batches hubgate produces: `none` (default), `gzip`, `snappy`, `lz4`,
    /// `zstd`.
    pub compression: ProduceCompression,
    /// Largest shared produce request, in record bytes (key + value + headers). A single
    /// HTTP request larger than this is still sent, alone.
    pub max_batch_bytes: usize,
    /// Record bytes waiting for a partition beyond which new produce requests get 503
    /// (bounded memory when Kafka is slow or away).
    pub max_pending_bytes: usize,
    /// Connect to the brokers over TLS, verified against the system's root certificates
    /// (or `tls_ca_file`). MSK (port 9094/9096), Confluent Cloud and the Event Hubs Kafka
    /// endpoint need it.
    pub tls: bool,
    /// PEM file of the CA certificates to trust instead of the system's (a private CA).
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// PEM file of the client certificate chain presented to the brokers (mutual TLS, as
    /// MSK's and Confluent's mTLS listeners ask for), with `tls_key_file`.
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM file of the private key of `tls_cert_file` (PKCS#8, PKCS#1 or SEC1); never printed.
    pub tls_key_file: Option<std::path::PathBuf>,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`. Absent: no SASL.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name (with `sasl_mechanism`).
    pub sasl_username: Option<String>,
    /// SASL password (with `sasl_mechanism`); never printed.
    pub sasl_password: Option<secrecy::SecretString>,
}

/// A SASL mechanism rskafka speaks (RFC 4616 PLAIN, RFC 7677 SCRAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            client_id: "hubgate".into(),
            request_timeout: Duration::from_secs(10),
            metadata_ttl: Duration::from_secs(5),
            tcp_nodelay: true,
            coalesce: true,
            linger: Duration::ZERO,
            compression: ProduceCompression::None,
            max_batch_bytes: 512 * 1024,
            max_pending_bytes: 64 * 1024 * 1024,
            tls: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
        }
    }
}

impl KafkaConfig {
    /// TLS and SASL settings that belong together are set together (the message names the
    /// keys as `kafka.*`).
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        use secrecy::ExposeSecret as _;
        if self.tls_ca_file.is_some() && !self.tls {
            return Err(KafkaConfigError::CaFileWithoutTls);
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => {}
            (Some(_), Some(_)) if !self.tls => return Err(KafkaConfigError::ClientCertWithoutTls),
            (Some(_), Some(_)) => {}
            _ => return Err(KafkaConfigError::ClientCertIncomplete),
        }
        let has_user = self.sasl_username.as_ref().is_some_and(|u| !u.is_empty());
        let has_password = self
            .sasl_password
            .as_ref()
            .is_some_and(|p| !p.expose_secret().is_empty());
        match self.sasl_mechanism {
            Some(_) if !has_user || !has_password => Err(KafkaConfigError::SaslWithoutCredentials),
            None if has_user || has_password => Err(KafkaConfigError::CredentialsWithoutSasl),
            _ => Ok(()),
        }
    }
}
