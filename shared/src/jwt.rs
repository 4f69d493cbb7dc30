//! OAuth2 access tokens: JWTs (RFC 7519, signed per RFC 7515) from an OpenID provider such as
//! Microsoft Entra ID, validated strictly.
//!
//! * The token is capped at 16 KiB before anything parses it.
//! * The algorithm is pinned before any cryptography: only the configured ones (RS256 by
//!   default, ES256 if asked) and only with a key of that type from the provider's JWKS.
//!   `alg: none` and HMAC algorithms can never verify (no symmetric key is ever loaded).
//! * Keys come only from the configured issuer's JWKS (OIDC discovery, RFC 8414 / OpenID
//!   Connect Discovery 1.0), fetched over HTTPS (plain HTTP only on loopback, for tests) and
//!   cached by `kid`. `jku`, `x5u` and `jwk` headers are never followed; `oct` keys are ignored.
//! * An unknown `kid` refreshes the key set at most once per `jwks_unknown_kid_refresh_secs`
//!   (default 300, Microsoft's guidance); a background task refreshes every
//!   `jwks_refresh_secs`; a failed fetch keeps the last good set.
//! * `exp`, `nbf`, `iss` and `aud` are required; `iss` must be one of the pinned issuers,
//!   `aud` one of the configured audiences, `nbf`/`exp` hold within `leeway_secs`, and a `tid`
//!   claim must be a path segment of the issuer (Entra issuers name their tenant).

mod provider;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Longest access token accepted, in bytes.
pub const MAX_JWT_LEN: usize = 16 * 1024;

/// Algorithms that may be enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlgorithm {
    RS256,
    ES256,
}

impl JwtAlgorithm {
    fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::ES256 => Algorithm::ES256,
        }
    }

    fn from_header(a: Algorithm) -> Option<Self> {
        match a {
            Algorithm::RS256 => Some(Self::RS256),
            Algorithm::ES256 => Some(Self::ES256),
            _ => None,
        }
    }
}

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
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Least time between two JWKS fetches caused by an unknown `kid` (seconds).
    #[serde(default = "default_unknown_kid_refresh")]
    pub jwks_unknown_kid_refresh_secs: u64,
    /// Background JWKS refresh interval (seconds).
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_secs: u64,
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
fn default_leeway() -> u64 {
    60
}
fn default_unknown_kid_refresh() -> u64 {
    300
}
fn default_jwks_refresh() -> u64 {
    3600
}

/// Why an access token was refused (HTTP 401 with `WWW-Authenticate: Bearer
/// error="invalid_token"`). Texts are safe for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    #[error("the access token is larger than {MAX_JWT_LEN} bytes")]
    TooLarge,
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    #[error("the access token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the access token has no key id (kid)")]
    MissingKid,
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    #[error("the access token has an invalid signature")]
    InvalidSignature,
    #[error("the access token is expired")]
    Expired,
    #[error("the access token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the access token's issuer is not accepted")]
    InvalidIssuer,
    #[error("the access token's audience is not accepted")]
    InvalidAudience,
    #[error("the access token lacks the required claim '{0}'")]
    MissingClaim(String),
    #[error("the access token's tenant (tid) does not match its issuer")]
    TenantMismatch,
    #[error("the identity provider's signing keys are unavailable")]
    KeysUnavailable,
}

fn map_error(e: &jsonwebtoken::errors::Error) -> JwtError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => JwtError::Expired,
        K::ImmatureSignature => JwtError::NotYetValid,
        K::InvalidIssuer => JwtError::InvalidIssuer,
        K::InvalidAudience => JwtError::InvalidAudience,
        K::MissingRequiredClaim(c) => JwtError::MissingClaim(c.clone()),
        K::InvalidSignature => JwtError::InvalidSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => JwtError::AlgorithmNotAllowed,
        _ => JwtError::Malformed,
    }
}

/// The claims hubgate reads. Unknown claims are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub exp: u64,
    #[serde(default)]
    pub sub: Option<String>,
    /// Object id of the user or service principal (Entra).
    #[serde(default)]
    pub oid: Option<String>,
    /// Tenant id (Entra).
    #[serde(default)]
    pub tid: Option<String>,
    /// `app` for app-only tokens (optional claim in Entra).
    #[serde(default)]
    pub idtyp: Option<String>,
    /// Delegated scopes; absent in app-only tokens.
    #[serde(default)]
    pub scp: Option<String>,
    /// Group object ids (absent for app-only tokens and on overage).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Overage signal in implicit-flow tokens.
    #[serde(default)]
    pub hasgroups: Option<bool>,
    /// Overage signal: `{"groups": "src1"}` (the source URL is never called).
    #[serde(default, rename = "_claim_names")]
    pub claim_names: Option<HashMap<String, String>>,
    /// Client id of the calling application.
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub appid: Option<String>,
}

impl Claims {
    /// Whether this is an app-only (client-credentials) token.
    pub fn is_app_only(&self) -> bool {
        self.idtyp.as_deref() == Some("app") || self.scp.is_none()
    }

    /// Whether group membership must be asked of Graph: no `groups` claim, or overage.
    pub fn needs_group_lookup(&self) -> bool {
        self.groups.is_none()
            || self.hasgroups == Some(true)
            || self
                .claim_names
                .as_ref()
                .is_some_and(|c| c.contains_key("groups"))
    }

    /// The subject for logs and caches: `oid`, else `sub`.
    pub fn subject(&self) -> &str {
        self.oid.as_deref().or(self.sub.as_deref()).unwrap_or("-")
    }
}

#[derive(Clone)]
struct Key {
    key: DecodingKey,
    alg: JwtAlgorithm,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Key>,
}

/// Keys from a JWKS document: public RSA / P-256 keys for allowed algorithms, by `kid`.
fn parse_jwks(body: &[u8], allowed: &[JwtAlgorithm]) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        // One key of a type this crate does not know must not hide the others.
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => JwtAlgorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                JwtAlgorithm::ES256
            }
            // Symmetric (`oct`) and other keys are never used.
            _ => continue,
        };
        if !allowed.contains(&alg) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, Key { key, alg });
        }
    }
    Ok(KeySet { keys })
}

/// Only HTTPS, or plain HTTP to a loopback address (local providers in tests).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(format!("{url}: identity provider URLs must use https"))
    }
}

/// Validates access tokens against one provider.
pub struct JwtValidator {
    config: OAuthConfig,
    http: reqwest::Client,
    jwks_uri: tokio::sync::OnceCell<String>,
    keys: RwLock<Arc<KeySet>>,
    fetch_gate: tokio::sync::Mutex<()>,
    last_unknown_kid_fetch: std::sync::Mutex<Option<Instant>>,
    validations: HashMap<JwtAlgorithm, Validation>,
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
    pub fn new(config: OAuthConfig) -> Result<Self, String> {
        if config.issuers.is_empty() || config.audiences.is_empty() {
            return Err("oauth.issuers and oauth.audiences must not be empty".into());
        }
        if config.algorithms.is_empty() {
            return Err("oauth.algorithms must not be empty".into());
        }
        if let Some(u) = &config.jwks_uri {
            check_url(u)?;
        }
        let validations = config
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(alg.jsonwebtoken());
                v.set_issuer(&config.issuers);
                v.set_audience(&config.audiences);
                v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                v.leeway = config.leeway_secs;
                (*alg, v)
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            http,
            jwks_uri: tokio::sync::OnceCell::new(),
            keys: RwLock::new(Arc::new(KeySet::default())),
            fetch_gate: tokio::sync::Mutex::new(()),
            last_unknown_kid_fetch: std::sync::Mutex::new(None),
            validations,
        })
    }

    /// The settings.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    async fn jwks_uri(&self) -> Result<&String, String> {
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
                    .map_err(|e| format!("discovery {url}: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("discovery {url}: {e}"))?;
                check_url(&d.jwks_uri)?;
                Ok(d.jwks_uri)
            })
            .await
    }

    /// Fetches the key set now; on failure the last good set stays.
    pub async fn refresh(&self) -> Result<usize, String> {
        let _gate = self.fetch_gate.lock().await;
        let uri = self.jwks_uri().await?;
        let body = self
            .http
            .get(uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("JWKS {uri}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("JWKS {uri}: {e}"))?;
        let set = parse_jwks(&body, &self.config.algorithms)?;
        let n = set.keys.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        tracing::info!(keys = n, "identity provider keys loaded");
        Ok(n)
    }

    /// Refreshes every `jwks_refresh_secs` in the background (failures keep the last set).
    pub fn spawn_refresh(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let every = Duration::from_secs(self.config.jwks_refresh_secs.max(1));
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

    fn key(&self, kid: &str) -> Option<Key> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .get(kid)
            .cloned()
    }

    /// An unknown `kid` may mean the provider rotated: refetch, rate-limited.
    async fn refresh_for_unknown_kid(&self) {
        let min = Duration::from_secs(self.config.jwks_unknown_kid_refresh_secs);
        {
            let mut last = self
                .last_unknown_kid_fetch
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
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
        if token.len() > MAX_JWT_LEN {
            return Err(JwtError::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let alg = JwtAlgorithm::from_header(header.alg)
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.refresh_for_unknown_kid().await;
                self.key(&kid).ok_or(JwtError::UnknownKey)?
            }
        };
        if key.alg != alg {
            return Err(JwtError::AlgorithmNotAllowed);
        }
        let validation = self
            .validations
            .get(&alg)
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| map_error(&e))?;
        let claims = data.claims;
        if let Some(tid) = &claims.tid
            && !claims
                .iss
                .split('/')
                .any(|segment| segment.eq_ignore_ascii_case(tid))
        {
            return Err(JwtError::TenantMismatch);
        }
        Ok(claims)
    }
}

/// Installs aws-lc-rs as jsonwebtoken's crypto provider, with RSA keys parsed once (see
/// `jwt/provider.rs`). Once per process; later calls are no-ops. Without it the first
/// verification would panic.
pub fn install_crypto_provider() {
    let _ = std::sync::LazyLock::force(&provider::PROVIDER).install_default();
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

    #[test]
    fn parse_jwks_skips_oct_enc_and_unknown_keys_ok() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "rsa1", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB", "use": "sig"},
            {"kty": "RSA", "kid": "rsa-enc", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB", "use": "enc"},
            {"kty": "weird", "kid": "w"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
        ]});
        let set = parse_jwks(body.to_string().as_bytes(), &[JwtAlgorithm::RS256]).unwrap();
        let kids: Vec<&String> = set.keys.keys().collect();
        assert_eq!(kids, ["rsa1"]);
        let none = parse_jwks(body.to_string().as_bytes(), &[JwtAlgorithm::ES256]).unwrap();
        assert!(
            none.keys.is_empty(),
            "RSA keys are not loaded when only ES256 is allowed"
        );
    }

    #[test]
    fn claims_group_lookup_signals_ok() {
        let c = |v: serde_json::Value| serde_json::from_value::<Claims>(v).unwrap();
        let base = serde_json::json!({"iss": "i", "exp": 1});
        assert!(c(base.clone()).needs_group_lookup());
        assert!(c(base.clone()).is_app_only());
        let user = serde_json::json!({"iss": "i", "exp": 1, "scp": "read", "groups": ["g"]});
        assert!(!c(user.clone()).needs_group_lookup());
        assert!(!c(user).is_app_only());
        let overage = serde_json::json!({"iss": "i", "exp": 1, "scp": "r", "groups": [], "_claim_names": {"groups": "src1"}});
        assert!(c(overage).needs_group_lookup());
        let app = serde_json::json!({"iss": "i", "exp": 1, "scp": "r", "idtyp": "app"});
        assert!(c(app).is_app_only());
    }
}
