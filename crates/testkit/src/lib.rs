//! Test helpers shared by hubgate's crates (dev-dependency only): SAS tokens from a
//! configuration's rules, an OAuth issuer with its own RSA key and a JWKS endpoint on a free
//! loopback port, and one-request calls through a router with `tower::ServiceExt::oneshot`.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use hubgate_server::Config;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Far in the future (Unix seconds), for tokens that must not expire during a test.
pub const FAR: u64 = 4_000_000_000;

/// Fixed test keys (base64 of 32 bytes, as Azure writes them).
pub const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_B: &str = "r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo=";
pub const KEY_C: &str = "c2Vjb25kLXRlc3Qta2V5LWZvci1odWJnYXRlLXRlc3RzIQ==";

/// The three namespace rules the tests use: `manage` (Manage, [`KEY_A`]), `send` (Send,
/// [`KEY_B`]), `listen` (Listen, [`KEY_C`]).
pub const RULES_TOML: &str = "\n[[rules]]\nname = 'manage'\nrights = ['Manage']\nprimary_key = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='\n\
[[rules]]\nname = 'send'\nrights = ['Send']\nprimary_key = 'r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo='\n\
[[rules]]\nname = 'listen'\nrights = ['Listen']\nprimary_key = 'c2Vjb25kLXRlc3Qta2V5LWZvci1odWJnYXRlLXRlc3RzIQ=='\n";

/// A configuration for router tests: namespace `ns.test`, `top` (top-level keys), Kafka at a
/// closed port (so anything that needs it answers 503 after `request_timeout_ms`), the
/// [`RULES_TOML`] rules unless `tables` brings its own, then `tables` (TOML tables).
pub fn offline_config(top: &str, request_timeout_ms: u64, tables: &str) -> Config {
    let rules = if tables.contains("[[rules]]") {
        ""
    } else {
        RULES_TOML
    };
    Config::from_toml(&format!(
        "namespace = 'ns.test'\n{top}\n[kafka]\nbootstrap_servers = ['127.0.0.1:1']\n\
         request_timeout_ms = {request_timeout_ms}\n{rules}{tables}"
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A SAS token (`SharedAccessSignature …`) for `https://<namespace>/<scope>`, signed with the
/// primary key of `rule` from `config`.
pub fn sas(config: &Config, rule: &str, scope: &str, expiry: u64) -> String {
    let key = &config
        .rule(rule)
        .unwrap_or_else(|| panic!("no rule {rule}"))
        .primary_key;
    hubgate_server::sas::mint(
        &format!("https://{}/{scope}", config.namespace),
        rule,
        key,
        expiry,
    )
}

/// An OAuth issuer for tests: an RSA-2048 key (`kid` `k1`) whose JWKS is served on a free
/// loopback port for as long as the tokio runtime runs.
#[derive(Debug)]
pub struct Issuer {
    key: KeyPair,
    /// The issuer (`iss`) its tokens carry.
    pub issuer: String,
    /// The audience (`aud`) its tokens carry.
    pub audience: String,
    /// Where its JWKS is served.
    pub jwks_uri: String,
}

impl Issuer {
    /// Generates the key and starts serving the JWKS.
    pub async fn start() -> Self {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = key.public_key();
        let jwks = json!({"keys": [{
            "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
            "n": B64URL.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64URL.encode(public.exponent().big_endian_without_leading_zero()),
        }]})
        .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            axum::Router::new().route("/jwks", axum::routing::get(move || async move { jwks }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            key,
            issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
                .into(),
            audience: "api://hubgate".into(),
            jwks_uri: format!("http://{addr}/jwks"),
        }
    }

    /// The `[oauth]` TOML section for this issuer, with these `[[oauth.groups]]` entries
    /// (TOML text).
    pub fn config_toml(&self, groups: &str) -> String {
        format!(
            "[oauth]\nissuers = ['{}']\naudiences = ['{}']\njwks_uri = '{}'\n{groups}",
            self.issuer, self.audience, self.jwks_uri
        )
    }

    /// A signed access token for an app in `groups`, valid until [`FAR`].
    pub fn token(&self, groups: &[&str]) -> String {
        let claims = json!({
            "aud": self.audience, "iss": self.issuer, "nbf": 1_700_000_000u64,
            "exp": FAR, "idtyp": "app", "oid": "11111111-2222-3333-4444-555555555555",
            "sub": "11111111-2222-3333-4444-555555555555",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "groups": groups,
        });
        hubgate_core::jwt::sign_rs256(&self.key, "k1", &claims)
    }
}

/// One answer of [`call`].
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON: `Value::Null` when it is empty, a JSON string of the text when it is
    /// not JSON.
    pub json: Value,
}

/// Sends one request through `app`; `authorization` is the header's value, if any.
pub async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
    content_type: &str,
    body: impl Into<Body>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    send(app, request.body(body.into()).unwrap()).await
}

/// Sends a request built by the caller (any headers) through `app`.
pub async fn send(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Answer {
        status,
        headers,
        json,
    }
}
