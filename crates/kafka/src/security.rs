//! TLS and SASL for every Kafka connection: rskafka's client and the admin connection of
//! [`crate::admin`]. TLS is rustls with the aws-lc-rs provider named explicitly (ring is in
//! the build too), verified against the system's roots (rustls-platform-verifier) or the
//! CA file of `kafka.tls_ca_file`, presenting the client certificate of `kafka.tls_cert_file`
//! and `kafka.tls_key_file` when set (mutual TLS). SASL PLAIN (RFC 4616), SCRAM-SHA-256/512 (RFC 7677)
//! and OAUTHBEARER (RFC 7628) are rskafka's own implementations; OAUTHBEARER's tokens come
//! from [`crate::oauth::TokenCache`].

use std::fmt;
use std::sync::Arc;

use rskafka::client::{Credentials, SaslConfig};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use secrecy::ExposeSecret as _;

use crate::KafkaError;
use crate::config::{KafkaConfig, SaslMechanism};
use crate::oauth::TokenCache;

/// How connections to the brokers are secured.
#[derive(Clone, Default)]
pub(super) struct Security {
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// The mechanism (for `Debug`: rskafka's config prints the password) and rskafka's config.
    pub(super) sasl: Option<(SaslMechanism, SaslConfig)>,
}

impl fmt::Debug for Security {
    // rskafka's `Credentials` prints its password: only the mechanism is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|(m, _)| m))
            .finish()
    }
}

impl Security {
    /// `builder` with these TLS and SASL settings.
    pub(super) fn apply(
        &self,
        mut builder: rskafka::client::ClientBuilder,
    ) -> rskafka::client::ClientBuilder {
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(Arc::clone(tls));
        }
        if let Some((_, sasl)) = &self.sasl {
            builder = builder.sasl_config(sasl.clone());
        }
        builder
    }

    /// Reads the configuration; fails on an unreadable or empty CA file, and on
    /// OAUTHBEARER without `tokens`.
    pub(super) fn from_config(
        c: &KafkaConfig,
        tokens: Option<&Arc<TokenCache>>,
    ) -> Result<Self, KafkaError> {
        let tls = if c.tls {
            let client_cert = match (&c.tls_cert_file, &c.tls_key_file) {
                (Some(cert), Some(key)) => Some(client_certificate(cert, key)?),
                _ => None,
            };
            Some(Arc::new(tls_config(c.tls_ca_file.as_deref(), client_cert)?))
        } else {
            None
        };
        if c.sasl_secret_id.is_some() {
            // The server layer reads the secret and fills in the user and password.
            return Err(KafkaError::Config(
                "kafka.sasl_secret_id was not read (the server layer reads it at start-up)".into(),
            ));
        }
        let credentials = || {
            Credentials::new(
                c.sasl_username.clone().unwrap_or_default(),
                c.sasl_password
                    .as_ref()
                    .map(|p| p.expose_secret().to_owned())
                    .unwrap_or_default(),
            )
        };
        let sasl = match c.sasl_mechanism {
            None => None,
            Some(m) => Some((
                m,
                match m {
                    SaslMechanism::Plain => SaslConfig::Plain(credentials()),
                    SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials()),
                    SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials()),
                    SaslMechanism::Oauthbearer => tokens
                        .ok_or_else(|| {
                            KafkaError::Config(
                                "kafka.sasl_mechanism OAUTHBEARER needs a token source".into(),
                            )
                        })?
                        .sasl(),
                },
            )),
        };
        Ok(Self { tls, sasl })
    }

    /// The name a broker's certificate must carry: the host of `host:port`.
    pub(super) fn server_name(addr: &str) -> Result<ServerName<'static>, KafkaError> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned())
            .map_err(|_| KafkaError::Config(format!("'{addr}' has no valid TLS server name")))
    }
}

/// A client certificate chain and its key.
type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Reads `kafka.tls_cert_file` (the chain, leaf first) and `kafka.tls_key_file`.
fn client_certificate(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<ClientCert, KafkaError> {
    let err = |what: String| KafkaError::Config(what);
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| err(format!("kafka.tls_cert_file {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(err(format!(
            "kafka.tls_cert_file {} holds no certificate",
            cert.display()
        )));
    }
    // The error text says what is wrong with the file, never what is in it.
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| err(format!("kafka.tls_key_file {}: {e}", key.display())))?;
    Ok((chain, key))
}

fn tls_config(
    ca_file: Option<&std::path::Path>,
    client_cert: Option<ClientCert>,
) -> Result<rustls::ClientConfig, KafkaError> {
    let err = |what: String| KafkaError::Config(what);
    let finish =
        |builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>| {
            match client_cert {
                None => Ok(builder.with_no_client_auth()),
                Some((chain, key)) => builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| err(format!("kafka.tls_cert_file / tls_key_file: {e}"))),
            }
        };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(format!("TLS: {e}")))?;
    let Some(path) = ca_file else {
        use rustls_platform_verifier::BuilderVerifierExt as _;
        return finish(
            builder
                .with_platform_verifier()
                .map_err(|e| err(format!("TLS: the system's root certificates: {e}")))?,
        );
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("kafka.tls_ca_file {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| err(format!("kafka.tls_ca_file {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("kafka.tls_ca_file {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(err(format!(
            "kafka.tls_ca_file {} holds no certificate",
            path.display()
        )));
    }
    finish(builder.with_root_certificates(roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_server_name_ok_and_fails() {
        for (addr, name) in [
            (
                "broker-1.kafka.eu-west-1.amazonaws.com:9096",
                "broker-1.kafka.eu-west-1.amazonaws.com",
            ),
            ("127.0.0.1:9093", "127.0.0.1"),
            ("[::1]:9093", "::1"),
        ] {
            assert_eq!(Security::server_name(addr).unwrap().to_str(), name);
        }
        assert!(Security::server_name("bad name:9093").is_err());
    }

    #[test]
    fn security_ca_file_missing_or_empty_fails() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        for path in [dir.path().join("missing.pem"), empty] {
            let c = KafkaConfig {
                tls: true,
                tls_ca_file: Some(path.clone()),
                ..KafkaConfig::default()
            };
            let e = Security::from_config(&c, None).unwrap_err();
            assert!(e.to_string().contains("tls_ca_file"), "{e}");
        }
    }

    #[test]
    fn security_debug_hides_the_password_ok() {
        let c = KafkaConfig {
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("alice".into()),
            sasl_password: Some("hunter2-secret".to_owned().into()),
            ..KafkaConfig::default()
        };
        let s = Security::from_config(&c, None).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("ScramSha512"),
            "{shown}"
        );
    }
}
