//! Configuration: namespace, hubs, SAS rules and keys, Kafka connection, limits.
//!
//! Sources, later ones overriding earlier ones:
//! 1. a TOML file (`--config` / `HUBGATE_CONFIG`);
//! 2. environment variables `HUBGATE_<KEY>`, nested keys joined by `__`
//!    (`HUBGATE_KAFKA__BOOTSTRAP_SERVERS=host:9092,host2:9092`). Lists may be given
//!    comma-separated; structured values (`HUBGATE_RULES`) as TOML inline values.
//!
//! `Debug` never prints a key: keys are [`SasKey`]s.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Deserialize;

use crate::names::{NameError, validate_hub, validate_rule};
pub use hubgate_core::authz::{RuleConfig, signing_rule};
use hubgate_core::lists::string_or_list;
use hubgate_core::units::{millis, seconds};
pub use hubgate_kafka::config::{KafkaConfig, ProduceCompression, SaslMechanism};

/// Top-level keys read from `HUBGATE_*` variables. Other `HUBGATE_*` variables (`HUBGATE_CONFIG`,
/// `HUBGATE_LOG_FORMAT`, test tooling) are not configuration; nested typos are still errors.
const ENV_KEYS: [&str; 28] = [
    "traces",
    "audit",
    "metrics",
    "streams",
    "cors",
    "namespace",
    "hubs",
    "rules",
    "kafka",
    "limits",
    "listen",
    "revocation_topic",
    "revocation_refresh_ms",
    "revocation_replication_factor",
    "consumer_group_topic",
    "consumer_group_refresh_ms",
    "consumer_group_replication_factor",
    "secret_id",
    "secret_reload_min_ms",
    "secret_max_age_ms",
    "issuer",
    "oauth",
    "throttle",
    "idempotency_window_secs",
    "authorizer",
    "server",
    "tls",
    "credential_cache",
];

/// Keys taken from `HUBGATE_*` variables as text exactly as written. figment parses other
/// values (`12345` becomes a number, `[a, b]` an array), and a user name or password may
/// look like either.
const ENV_TEXT_KEYS: [&str; 27] = [
    "namespace",
    "revocation_topic",
    "consumer_group_topic",
    "secret_id",
    "kafka.client_id",
    "kafka.tls_ca_file",
    "kafka.tls_cert_file",
    "kafka.tls_key_file",
    "kafka.sasl_username",
    "kafka.sasl_password",
    "kafka.sasl_secret_id",
    "kafka.oauth.region",
    "kafka.oauth.token_url",
    "kafka.oauth.client_id",
    "kafka.oauth.client_secret",
    "kafka.oauth.client_secret_file",
    "kafka.oauth.scope",
    "kafka.oauth.resource",
    "tls.cert_file",
    "tls.key_file",
    "tls.client_auth.ca_file",
    "metrics.bearer_token",
    "metrics.emf_namespace",
    "audit.key",
    "audit.topic",
    "traces.endpoint",
    "traces.service_name",
];

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name SAS tokens must be scoped to (`sr=https://<namespace>/…`); any port is ignored.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Hubs (Kafka topics) reachable through the gateway. Empty: every topic except
    /// internal ones (`__…`).
    #[serde(default, deserialize_with = "string_or_list")]
    pub hubs: Vec<String>,
    /// SAS rules.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Kafka connection.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// Address of the standalone server.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Connection limits of the standalone and Azure listeners (`[server]`).
    #[serde(default)]
    pub server: crate::listener::ServerConfig,
    /// Verified credentials remembered (`[credential_cache]`).
    #[serde(default)]
    pub credential_cache: CredentialCacheConfig,
    /// HTTPS on the standalone listener (`[tls]`); unset: plain HTTP.
    #[serde(default)]
    pub tls: Option<crate::listener::tls::TlsConfig>,
    /// Compacted topic holding revoked publishers (created when missing).
    #[serde(default = "default_revocation_topic")]
    pub revocation_topic: String,
    /// Revocations made elsewhere are seen within this many milliseconds.
    #[serde(
        default = "default_revocation_refresh",
        rename = "revocation_refresh_ms",
        deserialize_with = "millis"
    )]
    pub revocation_refresh: Duration,
    /// Replication factor used when creating the revocation topic; unset: min(3, brokers).
    #[serde(default)]
    pub revocation_replication_factor: Option<i16>,
    /// Compacted topic holding consumer groups and their checkpoints (created when missing).
    #[serde(default = "default_consumer_group_topic")]
    pub consumer_group_topic: String,
    /// Consumer groups made or deleted elsewhere are seen within this many milliseconds
    /// (checkpoints are read fresh whenever a read starts from one).
    #[serde(
        default = "default_revocation_refresh",
        rename = "consumer_group_refresh_ms",
        deserialize_with = "millis"
    )]
    pub consumer_group_refresh: Duration,
    /// Replication factor used when creating the consumer-group topic; unset: min(3, brokers).
    #[serde(default)]
    pub consumer_group_replication_factor: Option<i16>,
    /// AWS Secrets Manager secret holding the SAS rules (replaces `rules`).
    #[serde(default)]
    pub secret_id: Option<String>,
    /// Least time between two reloads of the secret triggered by failed signatures (ms).
    #[serde(
        default = "default_secret_reload_min",
        rename = "secret_reload_min_ms",
        deserialize_with = "millis"
    )]
    pub secret_reload_min: Duration,
    /// Rules loaded from the secret are reloaded when older than this (ms).
    #[serde(
        default = "default_secret_max_age",
        rename = "secret_max_age_ms",
        deserialize_with = "millis"
    )]
    pub secret_max_age: Duration,
    /// Token issuer settings.
    #[serde(default)]
    pub issuer: IssuerConfig,
    /// OAuth bearer tokens (absent: only SAS).
    #[serde(default)]
    pub oauth: Option<crate::jwt::OAuthConfig>,
    /// Per-principal rate limits on sending (`[[throttle]]`; absent: none).
    #[serde(default)]
    pub throttle: crate::throttle::ThrottlePolicy,
    /// How long an `Idempotency-Key`'s answer is kept for replays (seconds).
    #[serde(
        default = "default_idempotency_window",
        rename = "idempotency_window_secs",
        deserialize_with = "seconds"
    )]
    pub idempotency_window: Duration,
    /// Authorizer settings.
    #[serde(default)]
    pub authorizer: AuthorizerConfig,
    /// Server-Sent Event streams (`[streams]`).
    #[serde(default)]
    pub streams: StreamsConfig,
    /// Cross-origin requests from browsers (`[cors]`; off unless origins are configured).
    #[serde(default)]
    pub cors: crate::cors::CorsConfig,
    /// Prometheus metrics, or CloudWatch EMF on Lambda (`[metrics]`; off by default).
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// The tamper-evident audit log of management actions (`[audit]`; on when it has a key).
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// OpenTelemetry traces over OTLP/HTTP (`[traces]`; off by default).
    #[serde(default)]
    pub traces: crate::traces::TracesConfig,
}

/// Server-Sent Event streams (`GET …/stream`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Most streams open at once on this instance; more get 429.
    pub max_open: usize,
    /// A comment line is sent on a stream that had nothing else to send for this long, so
    /// that proxies and load balancers keep it open (ms).
    #[serde(rename = "heartbeat_ms", deserialize_with = "millis")]
    pub heartbeat: Duration,
    /// The reconnection delay a stream asks browsers to use (`retry:`, ms).
    #[serde(rename = "retry_ms", deserialize_with = "millis")]
    pub retry: Duration,
    /// A stream is closed after this long (seconds), without a final event: the client
    /// reconnects with `Last-Event-ID` (an `EventSource` does so itself). On AWS Lambda the
    /// invocation's own deadline comes first.
    #[serde(rename = "max_duration_secs", deserialize_with = "seconds")]
    pub max_duration: Duration,
    /// How often an open stream checks that its consumer group still exists (ms).
    #[serde(rename = "group_check_ms", deserialize_with = "millis")]
    pub group_check: Duration,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            max_open: 10_000,
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_secs(1),
            max_duration: Duration::from_secs(3600),
            group_check: Duration::from_secs(5),
        }
    }
}

/// Authorizer settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizerConfig {
    /// Whether `POST /v1/authorize` answers (off: 404). It tells anyone who sends it a
    /// credential that credential's principal, rights and revocation state, so it is for a
    /// gateway on a private network only; API Gateway's authorizer events need no endpoint.
    pub http_endpoint: bool,
}

fn default_idempotency_window() -> Duration {
    Duration::from_secs(300)
}

/// Token issuer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Longest lifetime of a minted token (seconds).
    #[serde(rename = "max_ttl_secs", deserialize_with = "seconds")]
    pub max_ttl: Duration,
    /// Whether `POST /v1/tokens` may mint tokens with the Manage right.
    pub allow_manage_tokens: bool,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            max_ttl: Duration::from_secs(7 * 24 * 3600),
            allow_manage_tokens: false,
        }
    }
}

/// Size limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest produce request body (Event Hubs: 1 MB per publication; 262144 emulates Basic).
    pub max_publication_bytes: usize,
    /// Most record bytes one consume request returns (HDInsight: 6 MB).
    pub max_consume_bytes: usize,
    /// Most records one consume request returns.
    pub max_consume_count: usize,
    /// Most consumer groups per hub, `$Default` included (Event Hubs Standard: 20).
    pub max_consumer_groups_per_hub: usize,
    /// Longest long poll a read may ask for with `wait_ms` (milliseconds).
    #[serde(rename = "max_wait_ms", deserialize_with = "millis")]
    pub max_wait: Duration,
    /// Most reads of this process waiting for events at once; more get 429.
    pub max_waiting_reads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_publication_bytes: 1024 * 1024,
            max_consume_bytes: 6 * 1024 * 1024,
            max_consume_count: 10_000,
            max_consumer_groups_per_hub: 20,
            max_wait: Duration::from_secs(30),
            max_waiting_reads: 1_000,
        }
    }
}

fn default_namespace() -> String {
    "localhost".into()
}

fn default_revocation_topic() -> String {
    "__hubgate_revocations".into()
}

fn default_consumer_group_topic() -> String {
    "__hubgate_consumer_groups".into()
}

fn default_revocation_refresh() -> Duration {
    Duration::from_secs(1)
}

fn default_secret_reload_min() -> Duration {
    Duration::from_secs(5)
}

fn default_secret_max_age() -> Duration {
    Duration::from_secs(300)
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Configuration could not be loaded. Messages name the key, never a key's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(String),
    #[error("invalid configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: {0}")]
    Name(#[from] NameError),
    #[error("invalid configuration: {0}")]
    Kafka(#[from] hubgate_kafka::config::KafkaConfigError),
}

impl Config {
    /// Loads the TOML file (if given) and `HUBGATE_*` environment variables, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.display().to_string()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed("HUBGATE_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            ENV_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
                && !ENV_TEXT_KEYS
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(key.as_str()))
        });
        figment = figment.merge(env);
        for (key, value) in Env::prefixed("HUBGATE_")
            .split("__")
            .only(&ENV_TEXT_KEYS)
            .iter()
        {
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
        let config: Self = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (tests, embedded configs), then validates.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = Figment::from(Toml::string(text))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: names, uniqueness, non-empty lists.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.namespace.trim().is_empty() {
            return Err(ConfigError::Invalid("namespace must not be empty".into()));
        }
        if self.kafka.bootstrap_servers.is_empty() {
            return Err(ConfigError::Invalid(
                "kafka.bootstrap_servers is empty".into(),
            ));
        }
        self.kafka.validate()?;
        self.server.validate().map_err(ConfigError::Invalid)?;
        if let Some(tls) = &self.tls {
            tls.validate().map_err(ConfigError::Invalid)?;
        }
        if self.kafka.request_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "kafka.request_timeout_ms must be > 0".into(),
            ));
        }
        for hub in &self.hubs {
            validate_hub(hub)?;
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            validate_rule(&rule.name)?;
            if !seen.insert(rule.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "rule '{}' is defined twice",
                    rule.name
                )));
            }
            if rule.rights.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "rule '{}' has no rights",
                    rule.name
                )));
            }
            if let Some(hub) = &rule.hub {
                validate_hub(hub)?;
            }
        }
        for (key, topic, replication_factor) in [
            (
                "revocation_topic",
                &self.revocation_topic,
                self.revocation_replication_factor,
            ),
            (
                "consumer_group_topic",
                &self.consumer_group_topic,
                self.consumer_group_replication_factor,
            ),
            (
                "audit.topic",
                &self.audit.topic,
                self.audit.replication_factor,
            ),
        ] {
            if topic.is_empty()
                || topic.len() > crate::names::MAX_HUB_LEN
                || !topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be a Kafka topic name ([A-Za-z0-9._-], 1-249 characters)"
                )));
            }
            if replication_factor.is_some_and(|f| f < 1) {
                return Err(ConfigError::Invalid(format!(
                    "the replication factor of {key} must be at least 1"
                )));
            }
        }
        if self.revocation_topic == self.consumer_group_topic
            || self.audit.topic == self.revocation_topic
            || self.audit.topic == self.consumer_group_topic
        {
            return Err(ConfigError::Invalid(
                "revocation_topic, consumer_group_topic and audit.topic must differ".into(),
            ));
        }
        if self.limits.max_publication_bytes == 0
            || self.limits.max_consume_bytes == 0
            || self.limits.max_consume_count == 0
            || self.limits.max_consumer_groups_per_hub == 0
            || self.limits.max_waiting_reads == 0
        {
            return Err(ConfigError::Invalid("limits must be greater than 0".into()));
        }
        let st = &self.streams;
        if st.max_open == 0
            || st.heartbeat.is_zero()
            || st.max_duration.is_zero()
            || st.group_check.is_zero()
        {
            return Err(ConfigError::Invalid(
                "streams.max_open, heartbeat_ms, max_duration_secs and group_check_ms must be greater than 0".into(),
            ));
        }
        if st.heartbeat >= self.server.idle_timeout {
            // Streams write nothing else while idle: the listener would close them.
            return Err(ConfigError::Invalid(
                "streams.heartbeat_ms must be below server.idle_timeout_ms".into(),
            ));
        }
        self.cors.validate().map_err(ConfigError::Invalid)?;
        self.metrics.validate().map_err(ConfigError::Invalid)?;
        self.audit.validate().map_err(ConfigError::Invalid)?;
        self.traces.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Whether `hub` may be used through the gateway (see [`Config::hubs`]).
    pub fn hub_allowed(&self, hub: &str) -> bool {
        hub_exposed(&self.hubs, hub)
    }

    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Option<&RuleConfig> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// Whether `hub` is a valid hub name that `hubs` (the configured list; empty: every hub)
/// exposes. Hub names compare ignoring ASCII case, as everywhere.
pub fn hub_exposed(hubs: &[String], hub: &str) -> bool {
    validate_hub(hub).is_ok()
        && (hubs.is_empty() || hubs.iter().any(|h| h.eq_ignore_ascii_case(hub)))
}

/// `[credential_cache]`: verified credentials remembered ([`crate::credential_cache`]).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialCacheConfig {
    /// Verified credentials kept; 0 turns the cache off.
    pub entries: usize,
    /// Longest an entry is used, whatever the credential's own expiry (ms).
    #[serde(rename = "max_age_ms", deserialize_with = "millis")]
    pub max_age: Duration,
}

impl Default for CredentialCacheConfig {
    fn default() -> Self {
        Self {
            entries: 10_000,
            max_age: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    pub(crate) const KEY_B: &str = "r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo=";

    pub(crate) fn test_config() -> Config {
        Config::from_toml(&format!(
            r#"
            namespace = "ns.test"
            [[rules]]
            name = "manage"
            rights = ["Manage"]
            primary_key = "{KEY_A}"
            secondary_key = "{KEY_B}"
            [[rules]]
            name = "send"
            rights = ["Send"]
            primary_key = "{KEY_B}"
            [[rules]]
            name = "listen"
            rights = ["Listen"]
            primary_key = "{KEY_A}"
            [[rules]]
            name = "only-hub"
            rights = ["Send"]
            hub = "only"
            primary_key = "{KEY_B}"
            "#
        ))
        .unwrap()
    }

    #[test]
    fn config_toml_defaults_ok() {
        let c = test_config();
        assert_eq!(c.namespace, "ns.test");
        assert_eq!(c.kafka.bootstrap_servers, ["127.0.0.1:9092"]);
        assert_eq!(c.limits.max_publication_bytes, 1_048_576);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.rules.len(), 4);
    }

    #[test]
    fn config_streams_bad_values_fails() {
        for bad in [
            "[streams]\nmax_open = 0",
            "[streams]\nheartbeat_ms = 0",
            "[streams]\nheartbeat_ms = 80000",
            "[streams]\nheartbeat_ms = 5000\n[server]\nidle_timeout_ms = 5000",
            "[cors]\nallowed_origins = [\"nope\"]",
        ] {
            let e = Config::from_toml(bad).unwrap_err();
            assert!(matches!(e, ConfigError::Invalid(_)), "{bad}: {e}");
        }
        let ok = Config::from_toml("[streams]\nheartbeat_ms = 5000\nmax_open = 5").unwrap();
        assert_eq!(ok.streams.max_open, 5);
    }

    #[test]
    fn config_debug_never_prints_keys_ok() {
        let text = format!("{:?}", test_config());
        assert!(!text.contains(KEY_A) && !text.contains(KEY_B), "{text}");
        assert!(!text.contains("AAECAwQF") && !text.contains("r9rdIglX"));
    }

    #[test]
    fn config_bad_values_fail() {
        for bad in [
            "unknown_key = 1",
            "namespace = ''",
            "[[rules]]\nname='a b'\nrights=['Send']\nprimary_key='AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='",
            "[[rules]]\nname='a'\nrights=[]\nprimary_key='AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='",
            "[[rules]]\nname='a'\nrights=['Send']\nprimary_key='short'",
            "[[rules]]\nname='a'\nrights=['Write']\nprimary_key='AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='",
            "hubs = ['__internal']",
            "[limits]\nmax_publication_bytes = 0",
            "[[throttle]]\nevents_per_sec = 0\nburst = 1",
            "[[throttle]]\nevents_per_sec = 1\nburst = 1\n[[throttle]]\nevents_per_sec = 2\nburst = 2",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
        let e = Config::from_toml("[[throttle]]\nhub = 'a/b'\nevents_per_sec = 1\nburst = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("throttle: hub name"), "{e}");
    }

    #[test]
    fn config_short_key_error_hides_value_ok() {
        let err =
            Config::from_toml("[[rules]]\nname='a'\nrights=['Send']\nprimary_key='tiny-secret'")
                .unwrap_err()
                .to_string();
        assert!(!err.contains("tiny-secret"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn config_kafka_security_from_env_ok() {
        use secrecy::ExposeSecret as _;
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hubgate.toml",
                &format!("[[rules]]\nname='r'\nrights=['Send']\nprimary_key='{KEY_A}'"),
            )?;
            jail.set_env("HUBGATE_KAFKA__TLS", "true");
            jail.set_env("HUBGATE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512");
            // Values that look like numbers, booleans or arrays stay text.
            jail.set_env("HUBGATE_KAFKA__SASL_USERNAME", "007");
            jail.set_env("HUBGATE_KAFKA__SASL_PASSWORD", "12345");
            let c = Config::load(Some(Path::new("hubgate.toml"))).unwrap();
            assert!(c.kafka.tls);
            assert_eq!(c.kafka.sasl_mechanism, Some(SaslMechanism::ScramSha512));
            assert_eq!(c.kafka.sasl_username.as_deref(), Some("007"));
            assert_eq!(
                c.kafka.sasl_password.as_ref().unwrap().expose_secret(),
                "12345"
            );
            // Names are text too: a namespace, topic or client id may be all digits.
            jail.set_env("HUBGATE_NAMESPACE", "12345");
            jail.set_env("HUBGATE_CONSUMER_GROUP_TOPIC", "2024");
            jail.set_env("HUBGATE_KAFKA__CLIENT_ID", "42");
            let c = Config::load(Some(Path::new("hubgate.toml"))).unwrap();
            assert_eq!(c.namespace, "12345");
            assert_eq!(c.consumer_group_topic, "2024");
            assert_eq!(c.kafka.client_id, "42");
            jail.set_env("HUBGATE_KAFKA__SASL_PASSWORD", "[not, an, array]");
            let c = Config::load(Some(Path::new("hubgate.toml"))).unwrap();
            assert_eq!(
                c.kafka.sasl_password.as_ref().unwrap().expose_secret(),
                "[not, an, array]"
            );
            Ok(())
        });
    }

    #[test]
    fn config_kafka_security_incomplete_fails() {
        for (extra, why) in [
            ("tls_ca_file = 'ca.pem'", "tls_ca_file"),
            ("sasl_mechanism = 'PLAIN'", "needs kafka.sasl_username"),
            (
                "sasl_username = 'u'\nsasl_password = 'p'",
                "sasl_mechanism is not",
            ),
            ("sasl_mechanism = 'GSSAPI'", "unknown variant"),
            (
                "tls = true\ntls_cert_file = 'client.pem'",
                "tls_cert_file and kafka.tls_key_file go together",
            ),
            (
                "tls_cert_file = 'client.pem'\ntls_key_file = 'client.key'",
                "tls_cert_file / tls_key_file are set but kafka.tls is false",
            ),
        ] {
            let toml = format!(
                "[kafka]\n{extra}\n[[rules]]\nname='r'\nrights=['Send']\nprimary_key='{KEY_A}'"
            );
            let e = Config::from_toml(&toml).unwrap_err().to_string();
            assert!(e.contains(why), "{extra}: {e}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn config_env_broker_credentials_ok() {
        // What infra/aws and infra/azure set: a token source, or a secret holding the password.
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hubgate.toml",
                &format!(
                    "namespace = 'n'\n[[rules]]\nname='r'\nrights=['Send']\nprimary_key='{KEY_A}'"
                ),
            )?;
            jail.set_env("HUBGATE_KAFKA__SASL_MECHANISM", "OAUTHBEARER");
            jail.set_env("HUBGATE_KAFKA__OAUTH__SOURCE", "aws_msk_iam");
            jail.set_env("HUBGATE_KAFKA__OAUTH__REGION", "eu-west-1");
            let c = Config::load(Some(Path::new("hubgate.toml"))).unwrap();
            assert!(matches!(
                c.kafka.oauth,
                Some(hubgate_kafka::config::BrokerTokenConfig::AwsMskIam { region: Some(ref r) }) if r == "eu-west-1"
            ));
            jail.set_env("HUBGATE_KAFKA__OAUTH__SOURCE", "azure_managed_identity");
            jail.set_env(
                "HUBGATE_KAFKA__OAUTH__RESOURCE",
                "https://ns.servicebus.windows.net",
            );
            let e = Config::load(Some(Path::new("hubgate.toml"))).unwrap_err();
            assert!(
                e.to_string().contains("region"),
                "region is not a managed-identity key: {e}"
            );
            jail.clear_env();
            jail.set_env("HUBGATE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512");
            jail.set_env("HUBGATE_KAFKA__SASL_SECRET_ID", "12345");
            let c = Config::load(Some(Path::new("hubgate.toml"))).unwrap();
            assert_eq!(
                c.kafka.sasl_secret_id.as_deref(),
                Some("12345"),
                "text, not a number"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's own error type
    fn config_env_overrides_file_ok() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hubgate.toml",
                &format!("namespace = 'file.test'\n[[rules]]\nname='r'\nrights=['Send']\nprimary_key='{KEY_A}'"),
            )?;
            jail.set_env("HUBGATE_NAMESPACE", "env.test");
            jail.set_env("HUBGATE_KAFKA__BOOTSTRAP_SERVERS", "a:1, b:2");
            jail.set_env("HUBGATE_HUBS", "x,y");
            jail.set_env("HUBGATE_LIMITS__MAX_PUBLICATION_BYTES", "262144");
            jail.set_env("HUBGATE_CONFIG", "ignored-here");
            jail.set_env("HUBGATE_PYTHON", "not configuration");
            let c = Config::load(Some(Path::new("hubgate.toml"))).unwrap();
            assert_eq!(c.namespace, "env.test");
            assert_eq!(c.kafka.bootstrap_servers, ["a:1", "b:2"]);
            assert_eq!(c.hubs, ["x", "y"]);
            assert_eq!(c.limits.max_publication_bytes, 262_144);
            assert_eq!(c.rules[0].name, "r");
            // A typo inside a known section is an error, not silently ignored.
            jail.set_env("HUBGATE_KAFKA__BOOTSTRAP_SERVER", "x:1");
            assert!(Config::load(Some(Path::new("hubgate.toml"))).is_err());
            Ok(())
        });
    }
}
