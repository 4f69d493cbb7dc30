//! OAuth2 access tokens: JWTs (RFC 7519, signed per RFC 7515) from an OpenID provider such as
//! Microsoft Entra ID, validated strictly.
//!
//! * The token is capped at 16 KiB before anything parses it.
//! * The algorithm is pinned before any cryptography: only the configured ones (RS256 by
//!   default, ES256 if asked) and only with a key of that type from the provider's JWKS.
//!   `alg: none` and HMAC algorithms can never verify (no symmetric key is ever loaded).
//! * Keys come only from the provider's JWKS, parsed here ([`parse_jwks`]) and looked up by
//!   `kid`; the server fetches and caches it. `jku`, `x5u` and `jwk` headers are never
//!   followed; `oct` keys are ignored.
//! * `exp`, `nbf`, `iss` and `aud` are required; `iss` must be one of the pinned issuers,
//!   `aud` one of the configured audiences, `nbf`/`exp` hold within `leeway_secs`, and a `tid`
//!   claim must be the issuer's tenant: its first path segment, as in both Entra issuer forms
//!   (`https://login.microsoftonline.com/{tid}/v2.0`, `https://sts.windows.net/{tid}/`).
//! * A `crit` header (RFC 7515 §4.1.11: extensions the recipient must understand) is refused:
//!   hubgate implements none.

mod provider;

use std::collections::HashMap;

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
    #[error(
        "the access token names critical header extensions (crit) this gateway does not implement"
    )]
    UnsupportedCritical,
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

/// One verification key of the provider, with the algorithm it is for.
#[derive(Clone)]
pub struct Key {
    key: DecodingKey,
    alg: JwtAlgorithm,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The provider's keys by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Keys from a JWKS document: public RSA / P-256 keys for allowed algorithms, by `kid`.
pub fn parse_jwks(body: &[u8], allowed: &[JwtAlgorithm]) -> Result<KeySet, JwksError> {
    #[derive(Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| JwksError(e.to_string()))?;
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

/// A JWKS document that is not JSON of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JWKS is not a JSON key set: {0}")]
pub struct JwksError(pub String);

/// `[oauth]` rules that cannot verify anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    #[error("oauth.issuers and oauth.audiences must not be empty")]
    NoIssuersOrAudiences,
    #[error("oauth.algorithms must not be empty")]
    NoAlgorithms,
}

/// The pinned rules a token must meet: issuers, audiences, algorithms, clock leeway.
pub struct Verifier {
    algorithms: Vec<JwtAlgorithm>,
    validations: HashMap<JwtAlgorithm, Validation>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Rules for tokens from `issuers` for `audiences`, signed with one of `algorithms`;
    /// `exp`, `nbf`, `iss` and `aud` are required.
    pub fn new(
        issuers: &[String],
        audiences: &[String],
        algorithms: &[JwtAlgorithm],
        leeway_secs: u64,
    ) -> Result<Self, JwtConfigError> {
        if issuers.is_empty() || audiences.is_empty() {
            return Err(JwtConfigError::NoIssuersOrAudiences);
        }
        if algorithms.is_empty() {
            return Err(JwtConfigError::NoAlgorithms);
        }
        let validations = algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(alg.jsonwebtoken());
                v.set_issuer(issuers);
                v.set_audience(audiences);
                v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                v.leeway = leeway_secs;
                (*alg, v)
            })
            .collect();
        Ok(Self {
            algorithms: algorithms.to_vec(),
            validations,
        })
    }

    /// The algorithm and key id of `token`: its size, form and algorithm are checked before
    /// any cryptography.
    pub fn header(&self, token: &str) -> Result<(JwtAlgorithm, String), JwtError> {
        if token.len() > MAX_JWT_LEN {
            return Err(JwtError::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.crit.is_some() {
            return Err(JwtError::UnsupportedCritical);
        }
        let alg = JwtAlgorithm::from_header(header.alg)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        Ok((alg, kid))
    }

    /// Verifies `token` (whose [`header`](Self::header) named `alg`) with `key`, and its
    /// claims: a `tid` claim must be the issuer's tenant ([`issuer_tenant`]).
    pub fn verify(&self, token: &str, alg: JwtAlgorithm, key: &Key) -> Result<Claims, JwtError> {
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
            && !issuer_tenant(&claims.iss).is_some_and(|t| t.eq_ignore_ascii_case(tid))
        {
            return Err(JwtError::TenantMismatch);
        }
        Ok(claims)
    }

    /// [`header`](Self::header), the key from `keys`, then [`verify`](Self::verify).
    pub fn verify_with(&self, token: &str, keys: &KeySet) -> Result<Claims, JwtError> {
        let (alg, kid) = self.header(token)?;
        let key = keys.get(&kid).ok_or(JwtError::UnknownKey)?;
        self.verify(token, alg, key)
    }
}

/// The tenant an issuer names: the first path segment of its URL
/// (`https://login.microsoftonline.com/{tenant}/v2.0`, `https://sts.windows.net/{tenant}/`).
pub fn issuer_tenant(iss: &str) -> Option<&str> {
    let (_scheme, rest) = iss.split_once("://")?;
    let mut segments = rest.split('/');
    segments.next()?; // the host
    segments.next().filter(|t| !t.is_empty())
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
    fn issuer_tenant_is_the_first_path_segment_ok() {
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(
            issuer_tenant(&format!("https://login.microsoftonline.com/{tid}/v2.0")),
            Some(tid)
        );
        assert_eq!(
            issuer_tenant(&format!("https://sts.windows.net/{tid}/")),
            Some(tid)
        );
        assert_eq!(issuer_tenant("https://sts.windows.net/"), None);
        assert_eq!(issuer_tenant("sts.windows.net/x/"), None);
        assert_eq!(issuer_tenant("http://127.0.0.1:9/t/v2.0"), Some("t"));
        // "v2.0" is a segment of the issuer, but not its tenant.
        assert_ne!(
            issuer_tenant(&format!("https://login.microsoftonline.com/{tid}/v2.0")),
            Some("v2.0")
        );
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
