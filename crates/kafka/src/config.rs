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
    #[error(
        "kafka.sasl_mechanism needs kafka.sasl_username and kafka.sasl_password, or kafka.sasl_secret_id"
    )]
    SaslWithoutCredentials,
    #[error(
        "kafka.sasl_secret_id replaces kafka.sasl_username and kafka.sasl_password: set one or the other"
    )]
    SecretAndPassword,
    #[error("kafka.sasl_secret_id is set but kafka.sasl_mechanism is not PLAIN or SCRAM")]
    SecretWithoutSasl,
    #[error("kafka.sasl_username / sasl_password are set but kafka.sasl_mechanism is not")]
    CredentialsWithoutSasl,
    #[error("kafka.sasl_mechanism = \"OAUTHBEARER\" needs a [kafka.oauth] token source")]
    OauthbearerWithoutSource,
    #[error("[kafka.oauth] is set but kafka.sasl_mechanism is not \"OAUTHBEARER\"")]
    SourceWithoutOauthbearer,
    #[error(
        "kafka.sasl_username / sasl_password do not go with OAUTHBEARER (the token is the credential)"
    )]
    PasswordWithOauthbearer,
    #[error(
        "kafka.oauth: client_credentials needs exactly one of client_secret and client_secret_file"
    )]
    ClientSecretMissing,
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
    /// An AWS Secrets Manager secret (name or ARN) holding `{"username", "password"}`, the
    /// form of MSK's SCRAM secrets (`AmazonMSK_…`): read once at start-up by the server layer in
    /// place of `sasl_username` / `sasl_password`, so no password sits in the environment.
    pub sasl_secret_id: Option<String>,
    /// `[kafka.oauth]`: where SASL/OAUTHBEARER tokens come from (with
    /// `sasl_mechanism = "OAUTHBEARER"`).
    pub oauth: Option<BrokerTokenConfig>,
}

/// `[kafka.oauth]`: the source of the bearer tokens hubgate presents to the brokers with
/// SASL/OAUTHBEARER, chosen by `source`. The sources themselves live in the server layer
/// (`hubgate_server::broker_tokens`); [`crate::oauth::TokenCache`] caches what they give.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BrokerTokenConfig {
    /// Amazon MSK IAM access control: a SigV4-presigned `kafka-cluster:Connect` request,
    /// signed with the credentials of the default AWS chain (Lambda role, environment,
    /// profile, container or instance metadata), valid 15 minutes.
    AwsMskIam {
        /// The cluster's region; default: `AWS_REGION` / `AWS_DEFAULT_REGION` / the profile's.
        region: Option<String>,
    },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4) from a token endpoint: Confluent Cloud,
    /// Kafka with KIP-768 validation, Microsoft Entra app registrations.
    ClientCredentials {
        token_url: String,
        client_id: String,
        /// The client secret (or the environment: `HUBGATE_KAFKA__OAUTH__CLIENT_SECRET`);
        /// never printed.
        client_secret: Option<secrecy::SecretString>,
        /// A file whose content (trimmed) is the client secret, read at each fetch (a
        /// mounted secret that rotates).
        client_secret_file: Option<std::path::PathBuf>,
        /// `scope` of the token request (Entra: `https://<namespace>.servicebus.windows.net/.default`).
        scope: Option<String>,
    },
    /// An Azure App Service / Functions managed identity (`IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER`, which the platform sets): tokens for the Event Hubs Kafka endpoint.
    AzureManagedIdentity {
        /// The token's audience: `https://<namespace>.servicebus.windows.net`.
        resource: String,
        /// The client id of a user-assigned identity; absent: the system-assigned one.
        client_id: Option<String>,
    },
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
    /// RFC 7628 with a token from `[kafka.oauth]`.
    #[serde(rename = "OAUTHBEARER")]
    Oauthbearer,
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
            sasl_secret_id: None,
            oauth: None,
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
        if self.sasl_secret_id.is_some() {
            return match self.sasl_mechanism {
                None | Some(SaslMechanism::Oauthbearer) => Err(KafkaConfigError::SecretWithoutSasl),
                Some(_) if has_user || has_password => Err(KafkaConfigError::SecretAndPassword),
                Some(_) if self.oauth.is_some() => Err(KafkaConfigError::SourceWithoutOauthbearer),
                Some(_) => Ok(()),
            };
        }
        match (self.sasl_mechanism, &self.oauth) {
            (Some(SaslMechanism::Oauthbearer), None) => {
                Err(KafkaConfigError::OauthbearerWithoutSource)
            }
            (Some(SaslMechanism::Oauthbearer), Some(_)) if has_user || has_password => {
                Err(KafkaConfigError::PasswordWithOauthbearer)
            }
            (Some(SaslMechanism::Oauthbearer), Some(source)) => source.validate(),
            (_, Some(_)) => Err(KafkaConfigError::SourceWithoutOauthbearer),
            (Some(_), None) if !has_user || !has_password => {
                Err(KafkaConfigError::SaslWithoutCredentials)
            }
            (None, None) if has_user || has_password => {
                Err(KafkaConfigError::CredentialsWithoutSasl)
            }
            _ => Ok(()),
        }
    }
}

impl BrokerTokenConfig {
    fn validate(&self) -> Result<(), KafkaConfigError> {
        match self {
            Self::ClientCredentials {
                client_secret,
                client_secret_file,
                ..
            } if client_secret.is_some() == client_secret_file.is_some() => {
                Err(KafkaConfigError::ClientSecretMissing)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<KafkaConfig, String> {
        let c: KafkaConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn oauthbearer_sources_parse_ok() {
        for source in [
            json!({"source": "aws_msk_iam", "region": "eu-west-1"}),
            json!({"source": "aws_msk_iam"}),
            json!({"source": "client_credentials", "token_url": "https://idp/token",
                   "client_id": "c", "client_secret": "s"}),
            json!({"source": "client_credentials", "token_url": "https://idp/token",
                   "client_id": "c", "client_secret_file": "/run/s", "scope": "x"}),
            json!({"source": "azure_managed_identity",
                   "resource": "https://ns.servicebus.windows.net"}),
        ] {
            let c = parse(json!({"sasl_mechanism": "OAUTHBEARER", "oauth": source}))
                .unwrap_or_else(|e| panic!("{source}: {e}"));
            assert!(c.oauth.is_some());
        }
    }

    #[test]
    fn sasl_secret_id_instead_of_a_password_ok() {
        let c = parse(json!({"sasl_mechanism": "SCRAM-SHA-512", "sasl_secret_id": "AmazonMSK_x"}))
            .unwrap();
        assert_eq!(c.sasl_secret_id.as_deref(), Some("AmazonMSK_x"));
    }

    #[test]
    fn oauthbearer_settings_that_do_not_go_together_fails() {
        let cc = |extra: serde_json::Value| {
            let mut v = json!({"source": "client_credentials", "token_url": "u", "client_id": "c"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        for (v, why) in [
            (
                json!({"sasl_mechanism": "OAUTHBEARER"}),
                "needs a [kafka.oauth]",
            ),
            (
                json!({"oauth": {"source": "aws_msk_iam"}}),
                "is not \"OAUTHBEARER\"",
            ),
            (
                json!({"sasl_mechanism": "OAUTHBEARER", "sasl_username": "u",
                       "sasl_password": "p", "oauth": {"source": "aws_msk_iam"}}),
                "do not go with OAUTHBEARER",
            ),
            (
                json!({"sasl_mechanism": "OAUTHBEARER", "oauth": cc(json!({}))}),
                "exactly one of client_secret",
            ),
            (
                json!({"sasl_mechanism": "OAUTHBEARER",
                       "oauth": cc(json!({"client_secret": "s", "client_secret_file": "f"}))}),
                "exactly one of client_secret",
            ),
            (
                json!({"sasl_mechanism": "OAUTHBEARER", "oauth": {"source": "kerberos"}}),
                "unknown variant",
            ),
            (
                json!({"sasl_mechanism": "SCRAM-SHA-512", "sasl_secret_id": "AmazonMSK_x",
                       "sasl_username": "u", "sasl_password": "p"}),
                "set one or the other",
            ),
            (
                json!({"sasl_secret_id": "AmazonMSK_x"}),
                "not PLAIN or SCRAM",
            ),
            (
                json!({"sasl_mechanism": "OAUTHBEARER", "sasl_secret_id": "AmazonMSK_x",
                       "oauth": {"source": "aws_msk_iam"}}),
                "not PLAIN or SCRAM",
            ),
            (
                json!({"sasl_mechanism": "OAUTHBEARER",
                       "oauth": {"source": "aws_msk_iam", "resource": "x"}}),
                "unknown field",
            ),
        ] {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
    }
}
