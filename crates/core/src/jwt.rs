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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
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

/// A signature check that could not run: a signature that is not base64url, or a key the
/// algorithm cannot use.
fn map_error(e: &jsonwebtoken::errors::Error) -> JwtError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => JwtError::InvalidSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
            JwtError::AlgorithmNotAllowed
        }
        _ => JwtError::Malformed,
    }
}

/// The claims hubgate reads. Unknown claims are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub exp: u64,
    /// Not before (required by [`Verifier`]).
    #[serde(default)]
    pub nbf: Option<u64>,
    /// The audiences (required by [`Verifier`]): one string or an array (RFC 7519 §4.1.3).
    #[serde(default)]
    pub aud: Option<Audiences>,
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

/// The `aud` claim: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audiences {
    One(String),
    Many(Vec<String>),
}

impl Audiences {
    /// Whether one of the audiences is in `accepted`.
    pub fn any_in(&self, accepted: &[String]) -> bool {
        match self {
            Self::One(a) => accepted.contains(a),
            Self::Many(all) => all.iter().any(|a| accepted.contains(a)),
        }
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
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway_secs: u64,
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
        Ok(Self {
            algorithms: algorithms.to_vec(),
            issuers: issuers.to_vec(),
            audiences: audiences.to_vec(),
            leeway_secs,
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
        self.verify_at(token, alg, key, jsonwebtoken::get_current_timestamp())
    }

    /// [`verify`](Self::verify) at `now` (seconds since the epoch).
    ///
    /// One pass over the token: the signature is checked over `header.payload` (RFC 7515
    /// §5.2) with the pinned algorithm before anything reads the claims, then the payload is
    /// base64url-decoded and parsed once, into [`Claims`], and the registered claims are
    /// checked as `jsonwebtoken::decode` checks them (RFC 7519 §4.1: `exp` and `nbf` within
    /// the leeway, `iss` one of the issuers, `aud` naming one of the audiences).
    /// `jsonwebtoken::decode` decodes the header again and the claims twice (once for its
    /// checks, once into the caller's type): a fifth of a verification on top of the RSA
    /// signature.
    pub fn verify_at(
        &self,
        token: &str,
        alg: JwtAlgorithm,
        key: &Key,
        now: u64,
    ) -> Result<Claims, JwtError> {
        if key.alg != alg || !self.algorithms.contains(&alg) {
            return Err(JwtError::AlgorithmNotAllowed);
        }
        let (message, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (_header, payload) = message.split_once('.').ok_or(JwtError::Malformed)?;
        if payload.contains('.') {
            return Err(JwtError::Malformed);
        }
        match jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key.key,
            alg.jsonwebtoken(),
        ) {
            Ok(true) => {}
            Ok(false) => return Err(JwtError::InvalidSignature),
            Err(e) => return Err(map_error(&e)),
        }
        let json = B64URL.decode(payload).map_err(|_| JwtError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| JwtError::Malformed)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// The registered claims of a token whose signature holds (RFC 7519 §4.1), then `tid`.
    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), JwtError> {
        let nbf = claims
            .nbf
            .ok_or_else(|| JwtError::MissingClaim("nbf".into()))?;
        let aud = claims
            .aud
            .as_ref()
            .ok_or_else(|| JwtError::MissingClaim("aud".into()))?;
        if claims.exp < now.saturating_sub(self.leeway_secs) {
            return Err(JwtError::Expired);
        }
        if nbf > now.saturating_add(self.leeway_secs) {
            return Err(JwtError::NotYetValid);
        }
        if !self.issuers.contains(&claims.iss) {
            return Err(JwtError::InvalidIssuer);
        }
        if !aud.any_in(&self.audiences) {
            return Err(JwtError::InvalidAudience);
        }
        if let Some(tid) = &claims.tid
            && !issuer_tenant(&claims.iss).is_some_and(|t| t.eq_ignore_ascii_case(tid))
        {
            return Err(JwtError::TenantMismatch);
        }
        Ok(())
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

/// An RS256 JWT over `claims` with header `{"typ":"JWT","alg":"RS256","kid":kid}`, signed
/// with `key`: test tokens only.
#[cfg(any(test, feature = "test-support"))]
pub fn sign_rs256(key: &aws_lc_rs::rsa::KeyPair, kid: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": kid});
    let input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    #[allow(clippy::expect_used)] // test support: a key that cannot sign is a broken test
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("RSA signing");
    format!("{input}.{}", B64URL.encode(sig))
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

    /// A fresh RSA-2048 key as a one-key set (`kid` "k1"), and a signer of claims.
    struct Signer {
        pair: aws_lc_rs::rsa::KeyPair,
        keys: KeySet,
    }

    const ISS: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
    const NOW: u64 = 1_800_000_000;

    impl Signer {
        fn new() -> Self {
            use aws_lc_rs::signature::KeyPair as _;
            install_crypto_provider();
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let public = pair.public_key();
            let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1",
                "n": B64URL.encode(public.modulus().big_endian_without_leading_zero()),
                "e": B64URL.encode(public.exponent().big_endian_without_leading_zero())}]});
            let keys = parse_jwks(jwks.to_string().as_bytes(), &[JwtAlgorithm::RS256]).unwrap();
            Self { pair, keys }
        }

        fn token(&self, claims: &serde_json::Value) -> String {
            sign_rs256(&self.pair, "k1", claims)
        }
    }

    fn verifier() -> Verifier {
        let audiences = ["api://hubgate".to_owned(), "api://other".to_owned()];
        Verifier::new(&[ISS.to_owned()], &audiences, &[JwtAlgorithm::RS256], 60).unwrap()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({"iss": ISS, "aud": "api://hubgate", "exp": NOW + 600, "nbf": NOW - 5,
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "oid": "o", "groups": ["g"]})
    }

    fn check(signer: &Signer, claims: &serde_json::Value) -> Result<Claims, JwtError> {
        let token = signer.token(claims);
        let key = signer.keys.get("k1").unwrap();
        verifier().verify_at(&token, JwtAlgorithm::RS256, key, NOW)
    }

    fn with(
        change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> serde_json::Value {
        let mut c = good();
        change(c.as_object_mut().unwrap());
        c
    }

    #[test]
    fn verify_at_registered_claims_ok_and_fails() {
        use serde_json::json;
        let signer = Signer::new();
        let claims = check(&signer, &good()).unwrap();
        assert_eq!(claims.subject(), "o");
        assert_eq!(claims.aud, Some(Audiences::One("api://hubgate".into())));
        let cases: Vec<(serde_json::Value, Result<(), JwtError>)> = vec![
            (
                with(|c| drop(c.insert("aud".into(), json!(["x", "api://other"])))),
                Ok(()),
            ),
            (
                with(|c| drop(c.insert("exp".into(), json!(NOW - 60)))),
                Ok(()),
            ),
            (
                with(|c| drop(c.insert("exp".into(), json!(NOW - 61)))),
                Err(JwtError::Expired),
            ),
            (
                with(|c| drop(c.insert("nbf".into(), json!(NOW + 60)))),
                Ok(()),
            ),
            (
                with(|c| drop(c.insert("nbf".into(), json!(NOW + 61)))),
                Err(JwtError::NotYetValid),
            ),
            (
                with(|c| drop(c.remove("nbf"))),
                Err(JwtError::MissingClaim("nbf".into())),
            ),
            (
                with(|c| drop(c.remove("aud"))),
                Err(JwtError::MissingClaim("aud".into())),
            ),
            (
                with(|c| drop(c.insert("aud".into(), json!(null)))),
                Err(JwtError::MissingClaim("aud".into())),
            ),
            (with(|c| drop(c.remove("exp"))), Err(JwtError::Malformed)),
            (
                with(|c| drop(c.insert("exp".into(), json!(1.5e9)))),
                Err(JwtError::Malformed),
            ),
            (
                with(|c| drop(c.insert("aud".into(), json!("api://else")))),
                Err(JwtError::InvalidAudience),
            ),
            (
                with(|c| drop(c.insert("aud".into(), json!([])))),
                Err(JwtError::InvalidAudience),
            ),
            (
                with(|c| drop(c.insert("aud".into(), json!(7)))),
                Err(JwtError::Malformed),
            ),
            (
                with(|c| {
                    drop(c.insert(
                        "iss".into(),
                        json!("https://evil/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"),
                    ))
                }),
                Err(JwtError::InvalidIssuer),
            ),
            (
                with(|c| drop(c.insert("tid".into(), json!("other")))),
                Err(JwtError::TenantMismatch),
            ),
        ];
        for (claims, want) in cases {
            assert_eq!(check(&signer, &claims).map(|_| ()), want, "{claims}");
        }
    }

    #[test]
    fn verify_at_tampered_or_misshapen_token_fails() {
        let signer = Signer::new();
        let key = signer.keys.get("k1").unwrap();
        let token = signer.token(&good());
        let v = verifier();
        let (message, sig) = token.rsplit_once('.').unwrap();
        let (header, _) = message.split_once('.').unwrap();
        let other =
            B64URL.encode(with(|c| drop(c.insert("oid".into(), "admin".into()))).to_string());
        let cases = [
            (
                format!("{header}.{other}.{sig}"),
                JwtError::InvalidSignature,
            ),
            (
                format!(
                    "{message}.{}{}",
                    if sig.starts_with('A') { 'B' } else { 'A' },
                    &sig[1..]
                ),
                JwtError::InvalidSignature,
            ),
            (format!("{message}.!!{sig}"), JwtError::Malformed),
            (
                format!("{header}.{other}.{message}.{sig}"),
                JwtError::Malformed,
            ),
            (message.to_owned(), JwtError::Malformed),
            ("nodots".to_owned(), JwtError::Malformed),
        ];
        for (bad, want) in cases {
            assert_eq!(
                v.verify_at(&bad, JwtAlgorithm::RS256, key, NOW).map(|_| ()),
                Err(want),
                "{bad}"
            );
        }
        assert_eq!(
            v.verify_at(&token, JwtAlgorithm::ES256, key, NOW)
                .map(|_| ()),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// The one-pass check decides as `jsonwebtoken::decode` with the same rules.
        #[test]
        fn verify_at_matches_jsonwebtoken_decode_ok(
            exp in proptest::option::of(-200i64..200),
            nbf in proptest::option::of(-200i64..200),
            aud in proptest::option::of(proptest::collection::vec(
                proptest::sample::select(vec!["api://hubgate", "api://other", "x"]), 0..3)),
            aud_string in proptest::bool::ANY,
            iss_good in proptest::bool::ANY,
        ) {
            static SIGNER: std::sync::LazyLock<Signer> = std::sync::LazyLock::new(Signer::new);
            let mut c = serde_json::json!({"iss": if iss_good { ISS } else { "https://x/t/" }});
            let now = jsonwebtoken::get_current_timestamp();
            if let Some(e) = exp { c["exp"] = (now as i64 + e).into(); }
            if let Some(n) = nbf { c["nbf"] = (now as i64 + n).into(); }
            if let Some(a) = &aud {
                c["aud"] = match (aud_string, a.first()) {
                    (true, Some(first)) => (*first).into(),
                    _ => a.clone().into(),
                };
            }
            let token = SIGNER.token(&c);
            let key = SIGNER.keys.get("k1").unwrap();
            let ours = verifier().verify(&token, JwtAlgorithm::RS256, key).map(|_| ());
            let mut rules = jsonwebtoken::Validation::new(Algorithm::RS256);
            rules.set_issuer(&[ISS]);
            rules.set_audience(&["api://hubgate", "api://other"]);
            rules.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
            rules.validate_nbf = true;
            rules.leeway = 60;
            let theirs = jsonwebtoken::decode::<Claims>(&token, &key.key, &rules).map(|_| ());
            proptest::prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{} {:?} {:?}", c, ours, theirs);
        }
    }
}
