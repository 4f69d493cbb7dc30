//! OAuth2 access tokens from an OpenID provider such as Microsoft Entra ID: `[oauth]`, the
//! provider's keys (OIDC discovery, RFC 8414 / OpenID Connect Discovery 1.0), fetched over
//! HTTPS (plain HTTP only on loopback, for tests) and cached by `kid`. An unknown `kid`
//! refreshes the key set at most once per `jwks_unknown_kid_refresh_secs` (default 300,
//! Microsoft's guidance); a background task refreshes every `jwks_refresh_secs`; a failed
//! fetch keeps the last good set. The token checks themselves are I/O-free:
//! [`hubgate_core::jwt`].

use parking_lot::RwLock;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubgate_core::jwt::{Key, KeySet, Verifier, parse_jwks};
use hubgate_core::units::seconds;
use serde::Deserialize;

pub use hubgate_core::jwt::{Claims, JwtAlgorithm, JwtError, MAX_JWT_LEN, install_crypto_provider};

/// `[oauth]` settings: which provider, which tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Accepted issuers, e.g. both Entra forms for one tenant:
    /// `https://sts.windows.net/{tid}/` and `https://login.microsoftonline.com/{tid}/v2.0`.
    pub issuers: Vec<String>,
    /// Accepted audiences (`aud`), e.g. the API's application ID URI or client id.
    pub audiences: Vec<String>,
    /// The JWKS URL; default: from the first issuer's OpenID discovery document.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Allowed algorithms.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock leeway for `exp` and `nbf` (seconds).
    #[serde(
        default = "default_leeway",
        rename = "leeway_secs",
        deserialize_with = "seconds"
    )]
    pub leeway: Duration,
    /// Least time between two JWKS fetches caused by an unknown `kid` (seconds).
    #[serde(
        default = "default_unknown_kid_refresh",
        rename = "jwks_unknown_kid_refresh_secs",
        deserialize_with = "seconds"
    )]
    pub jwks_unknown_kid_refresh: Duration,
    /// Background JWKS refresh interval (seconds).
    #[serde(
        default = "default_jwks_refresh",
        rename = "jwks_refresh_secs",
        deserialize_with = "seconds"
    )]
    pub jwks_refresh: Duration,
    /// Security groups and the rights their members get.
    #[serde(default)]
    pub groups: Vec<crate::groups::GroupGrantConfig>,
    /// Microsoft Graph, to check membership when a token carries no `groups` claim.
    #[serde(default)]
    pub graph: Option<crate::groups::GraphConfig>,
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm::RS256]
}
fn default_leeway() -> Duration {
    Duration::from_secs(60)
}
fn default_unknown_kid_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_jwks_refresh() -> Duration {
    Duration::from_secs(3600)
}

/// The identity provider could not be used: settings, URLs, or its answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    #[error(transparent)]
    Config(#[from] hubgate_core::jwt::JwtConfigError),
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{0}: identity provider URLs must use https")]
    NotHttps(String),
    #[error("{what} {url}: {reason}")]
    Fetch {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error(transparent)]
    Jwks(#[from] hubgate_core::jwt::JwksError),
    #[error("the HTTP client could not be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// Only HTTPS, or plain HTTP to a loopback address (local providers in tests).
fn check_url(url: &str) -> Result<(), OAuthError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| OAuthError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(OAuthError::NotHttps(url.to_owned()))
    }
}

fn fetch(what: &'static str, url: &str, e: &reqwest::Error) -> OAuthError {
    OAuthError::Fetch {
        what,
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

/// Validates access tokens against one provider.
pub struct JwtValidator {
    config: OAuthConfig,
    http: reqwest::Client,
    jwks_uri: tokio::sync::OnceCell<String>,
    keys: RwLock<Arc<KeySet>>,
    fetch_gate: tokio::sync::Mutex<()>,
    last_unknown_kid_fetch: parking_lot::Mutex<Option<Instant>>,
    verifier: Verifier,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuers", &self.config.issuers)
            .field("audiences", &self.config.audiences)
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// A validator for `config`; keys are fetched by [`refresh`](Self::refresh) or on demand.
    pub fn new(config: OAuthConfig) -> Result<Self, OAuthError> {
        let verifier = Verifier::new(
            &config.issuers,
            &config.audiences,
            &config.algorithms,
            config.leeway.as_secs(),
        )?;
        if let Some(u) = &config.jwks_uri {
            check_url(u)?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(OAuthError::Client)?;
        Ok(Self {
            config,
            http,
            jwks_uri: tokio::sync::OnceCell::new(),
            keys: RwLock::new(Arc::new(KeySet::default())),
            fetch_gate: tokio::sync::Mutex::new(()),
            last_unknown_kid_fetch: parking_lot::Mutex::new(None),
            verifier,
        })
    }

    /// The settings.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    async fn jwks_uri(&self) -> Result<&String, OAuthError> {
        self.jwks_uri
            .get_or_try_init(|| async {
                if let Some(u) = &self.config.jwks_uri {
                    return Ok(u.clone());
                }
                #[derive(Deserialize)]
                struct Discovery {
                    jwks_uri: String,
                }
                let issuer = self.config.issuers[0].trim_end_matches('/');
                let url = format!("{issuer}/.well-known/openid-configuration");
                check_url(&url)?;
                let d: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| fetch("discovery", &url, &e))?
                    .json()
                    .await
                    .map_err(|e| fetch("discovery", &url, &e))?;
                check_url(&d.jwks_uri)?;
                Ok(d.jwks_uri)
            })
            .await
    }

    /// Fetches the key set now; on failure the last good set stays.
    pub async fn refresh(&self) -> Result<usize, OAuthError> {
        let _gate = self.fetch_gate.lock().await;
        let uri = self.jwks_uri().await?;
        let body = self
            .http
            .get(uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fetch("JWKS", uri, &e))?
            .bytes()
            .await
            .map_err(|e| fetch("JWKS", uri, &e))?;
        let set = parse_jwks(&body, &self.config.algorithms)?;
        let n = set.len();
        *self.keys.write() = Arc::new(set);
        tracing::info!(keys = n, "identity provider keys loaded");
        Ok(n)
    }

    /// Refreshes every `jwks_refresh_secs` in the background (failures keep the last set).
    pub fn spawn_refresh(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let every = self.config.jwks_refresh.max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(v) = me.upgrade() else { break };
                if let Err(e) = v.refresh().await {
                    tracing::warn!(error = %e, "could not refresh the identity provider keys; keeping the last ones");
                }
            }
        });
    }

    /// The key set in force (replaced, never changed in place, when the provider's keys are
    /// fetched again).
    pub fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read())
    }

    fn key(&self, kid: &str) -> Option<Key> {
        self.keys.read().get(kid).cloned()
    }

    /// An unknown `kid` may mean the provider rotated: refetch, rate-limited.
    async fn refresh_for_unknown_kid(&self) {
        let min = self.config.jwks_unknown_kid_refresh;
        {
            let mut last = self.last_unknown_kid_fetch.lock();
            if last.is_some_and(|t| t.elapsed() < min) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "could not refresh the identity provider keys");
        }
    }

    /// Validates `token` (the text after `Bearer `) and returns its claims.
    pub async fn validate(&self, token: &str) -> Result<Claims, JwtError> {
        let (alg, kid) = self.verifier.header(token)?;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.refresh_for_unknown_kid().await;
                self.key(&kid).ok_or(JwtError::UnknownKey)?
            }
        };
        self.verifier.verify(token, alg, &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_url_https_or_loopback_ok_and_fails() {
        assert!(check_url("https://login.microsoftonline.com/t/v2.0").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://example.com/x").is_err());
        assert!(check_url("ftp://127.0.0.1/x").is_err());
    }
}
