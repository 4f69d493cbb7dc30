//! HTTPS for the standalone listener (`[tls]`): rustls with the aws-lc-rs provider, TLS 1.2
//! and 1.3 only with the provider's default suites (AEAD with forward secrecy only: AES-GCM
//! and ChaCha20-Poly1305), ALPN `h2` and `http/1.1` (RFC 7301). The certificate is served by
//! a resolver that is swapped when the PEM files change (checked every `reload_check_ms`,
//! and at once on SIGHUP): new handshakes get the new certificate, open connections keep
//! theirs. A file pair that does not load (half-written, key not matching) is logged and the
//! current certificate kept. Client certificates (mutual TLS, `[tls.client_auth]`) are
//! verified against a CA bundle at the handshake and mapped to a caller by
//! [`hubgate_core::certs`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use hubgate_core::authz::{AuthError, Principal};
use hubgate_core::certs::{CertMapping, certificate_principal};
use hubgate_core::units::millis;

/// `[tls]`: serve HTTPS on the standalone listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate first, then its intermediates.
    pub cert_file: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key_file: PathBuf,
    /// How often the two files are checked for a new certificate (ms); SIGHUP checks at
    /// once.
    #[serde(
        rename = "reload_check_ms",
        deserialize_with = "millis",
        default = "default_reload_check"
    )]
    pub reload_check: Duration,
    /// `Strict-Transport-Security: max-age=<this>` on every HTTPS answer (s); unset: no
    /// header (RFC 6797).
    #[serde(default)]
    pub hsts_max_age_secs: Option<u64>,
    /// Client certificates (mutual TLS); unset: none are asked for.
    #[serde(default)]
    pub client_auth: Option<ClientAuthConfig>,
}

fn default_reload_check() -> Duration {
    Duration::from_secs(10)
}

/// `[tls.client_auth]`: client certificates as credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// PEM file: the CA certificates client certificates must chain to.
    pub ca_file: PathBuf,
    /// Refuse, at the handshake, clients without a certificate; `false` (default): such
    /// clients use SAS or bearer tokens on the same listener.
    #[serde(default)]
    pub required: bool,
    /// Which certificates stand for whom, tried in order (`[[tls.client_auth.map]]`).
    #[serde(default)]
    pub map: Vec<CertMapping>,
}

impl TlsConfig {
    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.reload_check.is_zero() {
            return Err("tls.reload_check_ms must be at least 1".into());
        }
        if let Some(auth) = &self.client_auth {
            if auth.map.is_empty() {
                return Err("tls.client_auth needs at least one [[tls.client_auth.map]] entry: without one no certificate stands for anyone".into());
            }
            for m in &auth.map {
                m.validate()?;
            }
        }
        Ok(())
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("tls: cannot read {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("tls: {0} is not valid PEM: {1}")]
    Pem(PathBuf, #[source] rustls::pki_types::pem::Error),
    #[error("tls: {0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("tls: the key in {0} does not fit the certificate or is not supported: {1}")]
    Key(PathBuf, #[source] rustls::Error),
    #[error("tls: {0}")]
    Setup(String),
}

/// The SHA-256 of both files, to see whether they changed.
type Fingerprint = [u8; 32];

/// The certificate new handshakes get, swapped when its files change.
#[derive(Debug)]
struct CertStore {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    loaded: Mutex<Fingerprint>,
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| TlsError::Read(path.to_owned(), e))
}

impl CertStore {
    fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let (key, fingerprint) = Self::read_pair(cert_file, key_file, &provider)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
            loaded: Mutex::new(fingerprint),
        })
    }

    fn read_pair(
        cert_file: &Path,
        key_file: &Path,
        provider: &CryptoProvider,
    ) -> Result<(CertifiedKey, Fingerprint), TlsError> {
        let (cert_pem, key_pem) = (read(cert_file)?, read(key_file)?);
        let fingerprint = Sha256::new()
            .chain_update(&*cert_pem)
            .chain_update(&*key_pem)
            .finalize()
            .into();
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem(cert_file.to_owned(), e))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert_file.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::Pem(key_file.to_owned(), e))?;
        let certified = CertifiedKey::from_der(chain, key, provider)
            .map_err(|e| TlsError::Key(key_file.to_owned(), e))?;
        Ok((certified, fingerprint))
    }

    /// Loads the files again if they changed; `Ok(true)` when a new certificate is in use.
    fn reload(&self) -> Result<bool, TlsError> {
        let (key, fingerprint) = Self::read_pair(&self.cert_file, &self.key_file, &self.provider)?;
        let mut loaded = self.loaded.lock();
        if *loaded == fingerprint {
            return Ok(false);
        }
        *self.current.write() = Arc::new(key);
        *loaded = fingerprint;
        Ok(true)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read()))
    }
}

/// The caller a connection's client certificate stands for (or why it stands for no one),
/// worked out once per connection and handed to every request on it as an extension.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Result<Principal, AuthError>>);

/// TLS as set up from `[tls]`.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    store: Arc<CertStore>,
    reload_check: Duration,
    hsts: Option<HeaderValue>,
    mappings: Arc<[CertMapping]>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.store.cert_file)
            .field("reload_check", &self.reload_check)
            .field("hsts", &self.hsts)
            .field("mappings", &self.mappings.len())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate, key and client CA bundle.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let store = Arc::new(CertStore::load(
            &config.cert_file,
            &config.key_file,
            Arc::clone(&provider),
        )?);
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let (builder, mappings) = match &config.client_auth {
            None => (builder.with_no_client_auth(), Arc::from([])),
            Some(auth) => {
                let pem = read(&auth.ca_file)?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| TlsError::Pem(auth.ca_file.clone(), e))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::Setup(format!("{}: {e}", auth.ca_file.display())))?;
                }
                if roots.is_empty() {
                    return Err(TlsError::NoCertificate(auth.ca_file.clone()));
                }
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if !auth.required {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Setup(e.to_string()))?;
                (
                    builder.with_client_cert_verifier(verifier),
                    Arc::from(auth.map.as_slice()),
                )
            }
        };
        let mut server = builder.with_cert_resolver(Arc::clone(&store) as _);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Digits only: always a valid header value.
        let hsts = config
            .hsts_max_age_secs
            .and_then(|age| HeaderValue::from_str(&format!("max-age={age}")).ok());
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            store,
            reload_check: config.reload_check,
            hsts,
            mappings,
        })
    }

    pub(super) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// The `Strict-Transport-Security` value, when configured.
    pub(super) fn hsts(&self) -> Option<&HeaderValue> {
        self.hsts.as_ref()
    }

    /// What a verified client certificate chain stands for; `None` without one.
    pub(super) fn client_certificate(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
    ) -> Option<ClientCertificate> {
        let leaf = chain?.first()?;
        let principal = certificate_principal(leaf, &self.mappings);
        if let Err(e) = &principal {
            tracing::debug!(error = %e, "client certificate without a caller");
        }
        Some(ClientCertificate(Arc::new(principal)))
    }

    /// Checks the files now; logs what happened.
    fn reload_now(&self) {
        match self.store.reload() {
            Ok(true) => tracing::info!(
                cert_file = %self.store.cert_file.display(),
                "TLS certificate reloaded; new connections use it"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "TLS certificate not reloaded; the current one stays in use"
            ),
        }
    }

    /// Checks the files every `reload_check_ms` and on SIGHUP, for as long as the process
    /// runs.
    pub fn spawn_reload(self: &Arc<Self>) {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(tls.reload_check);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                tokio::select! {
                    _ = tick.tick() => {}
                    () = hangup => tracing::info!("SIGHUP: checking the TLS certificate files"),
                }
                tls.reload_now();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test

    use super::*;

    fn write_pair(dir: &Path, name: &str) -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        cert
    }

    fn config(dir: &Path) -> TlsConfig {
        TlsConfig {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            reload_check: Duration::from_secs(1),
            hsts_max_age_secs: Some(31_536_000),
            client_auth: None,
        }
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.store.current.read().cert[0].to_vec()
    }

    #[test]
    fn tls_reload_new_files_swap_bad_files_keep_ok() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_pair(dir.path(), "one.example");
        let tls = Tls::load(&config(dir.path())).unwrap();
        assert_eq!(served(&tls), first.der().to_vec());
        assert_eq!(tls.hsts().unwrap(), "max-age=31536000");
        // Unchanged files: nothing to do.
        assert!(!tls.store.reload().unwrap());
        let second = write_pair(dir.path(), "two.example");
        assert!(tls.store.reload().unwrap());
        assert_eq!(served(&tls), second.der().to_vec());
        // A key that is not the certificate's (a rotation caught half-way) keeps the old one.
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("key.pem"), other.serialize_pem()).unwrap();
        assert!(matches!(tls.store.reload(), Err(TlsError::Key(..))));
        std::fs::write(dir.path().join("cert.pem"), "garbage").unwrap();
        assert!(tls.store.reload().is_err());
        assert_eq!(served(&tls), second.der().to_vec());
    }

    #[test]
    fn tls_load_missing_or_empty_files_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Tls::load(&config(dir.path())),
            Err(TlsError::Read(..))
        ));
        write_pair(dir.path(), "x.example");
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        assert!(matches!(
            Tls::load(&config(dir.path())),
            Err(TlsError::NoCertificate(..))
        ));
    }

    #[test]
    fn tls_config_client_auth_without_map_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.client_auth = Some(ClientAuthConfig {
            ca_file: dir.path().join("ca.pem"),
            required: false,
            map: vec![],
        });
        assert!(c.validate().is_err());
        c.client_auth = None;
        c.reload_check = Duration::ZERO;
        assert!(c.validate().is_err());
    }
}
