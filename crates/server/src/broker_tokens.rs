//! Where hubgate's SASL/OAUTHBEARER tokens for the brokers come from (`[kafka.oauth]`), so
//! that a function reaches Kafka with its own cloud identity instead of a password:
//!
//! - `aws_msk_iam`: Amazon MSK IAM access control. The token is a SigV4-presigned
//!   `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect` (service
//!   `kafka-cluster`, `X-Amz-Expires=900`, the empty payload's hash, a `User-Agent`
//!   parameter added after signing), base64url-encoded without padding: what Amazon's
//!   reference signers (`aws-msk-iam-sasl-signer-python`, `-js`, `-go`) produce. Signed with
//!   `aws-sigv4` and the default AWS credential chain of `aws-config` (both already in the
//!   build for Secrets Manager), not the `aws-msk-iam-sasl-signer` crate, which brings
//!   `aws-config` with its default features (aws-lc-sys and a second HTTPS stack).
//! - `client_credentials`: RFC 6749 §4.4 against a token endpoint, the client
//!   authenticated with HTTP Basic as Kafka's own client does (KIP-768's
//!   `HttpAccessTokenRetriever`); the lifetime from `expires_in`, else the JWT's `exp`.
//! - `azure_managed_identity`: the App Service / Functions identity endpoint
//!   (`IDENTITY_ENDPOINT`, `X-IDENTITY-HEADER: $IDENTITY_HEADER`, api-version 2019-08-01).
//!
//! [`hubgate_kafka::oauth::TokenCache`] caches the tokens and refreshes them ahead of
//! expiry. Errors say what failed (a status, an OAuth `error` code, a missing variable) and
//! never carry a token, a secret or a response body that could hold one.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials as _;
use base64::Engine as _;
use hubgate_kafka::config::BrokerTokenConfig;
use hubgate_kafka::oauth::{BrokerToken, TokenCache, TokenError, TokenFuture, TokenSource};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// How long an MSK IAM token is valid (what MSK expects, and the reference signers use).
pub const MSK_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The cache over the source `config` names; `timeout` bounds one fetch.
pub async fn token_cache(
    config: &BrokerTokenConfig,
    timeout: Duration,
) -> Result<Arc<TokenCache>, TokenError> {
    let source: Arc<dyn TokenSource> = match config {
        BrokerTokenConfig::AwsMskIam { region } => {
            Arc::new(MskIam::from_env(region.as_deref()).await?)
        }
        BrokerTokenConfig::ClientCredentials {
            token_url,
            client_id,
            client_secret,
            client_secret_file,
            scope,
        } => Arc::new(ClientCredentials {
            http: http_client(timeout, "client_credentials")?,
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            secret: match (client_secret, client_secret_file) {
                (Some(s), _) => Secret::Value(s.clone()),
                (None, Some(path)) => Secret::File(path.clone()),
                (None, None) => {
                    return Err(err(
                        "client_credentials",
                        "needs client_secret or client_secret_file",
                    ));
                }
            },
            scope: scope.clone(),
        }),
        BrokerTokenConfig::AzureManagedIdentity {
            resource,
            client_id,
        } => Arc::new(ManagedIdentity::from_env(
            http_client(timeout, "azure_managed_identity")?,
            resource,
            client_id.as_deref(),
        )?),
        _ => return Err(err("kafka.oauth", "unknown token source")),
    };
    Ok(Arc::new(TokenCache::new(source, timeout)))
}

fn err(source_name: &'static str, message: impl Into<String>) -> TokenError {
    TokenError {
        source_name,
        message: message.into(),
    }
}

fn http_client(timeout: Duration, source: &'static str) -> Result<reqwest::Client, TokenError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| err(source, format!("HTTP client: {e}")))
}

/// Amazon MSK IAM tokens from the default AWS credential chain.
#[derive(Debug)]
pub struct MskIam {
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
}

impl MskIam {
    /// The default chain (environment, profile, web identity, ECS/EKS container and EC2
    /// instance metadata; on Lambda the function role's variables), for `region` or the
    /// chain's region.
    pub async fn from_env(region: Option<&str>) -> Result<Self, TokenError> {
        let sdk = crate::secrets::aws_sdk_config().await;
        let region = region
            .map(str::to_owned)
            .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
            .ok_or_else(|| {
                err(
                    "aws_msk_iam",
                    "no region: set kafka.oauth.region or AWS_REGION",
                )
            })?;
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| err("aws_msk_iam", "no AWS credential provider"))?;
        Ok(Self {
            region,
            credentials,
        })
    }

    /// The token for `credentials` at `now` (separate for the tests against Amazon's
    /// reference signer).
    pub fn sign(
        region: &str,
        credentials: aws_credential_types::Credentials,
        now: SystemTime,
    ) -> Result<String, TokenError> {
        use aws_sigv4::http_request::{
            SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
        };
        let fail =
            |what: &str, e: &dyn std::fmt::Display| err("aws_msk_iam", format!("{what}: {e}"));
        let url = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(MSK_TOKEN_LIFETIME);
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("kafka-cluster")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| fail("signing parameters", &e))?
            .into();
        let request =
            SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
                .map_err(|e| fail("request", &e))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| fail("signing", &e))?
            .into_parts();
        let mut signed = url;
        for (name, value) in instructions.params() {
            signed.push('&');
            signed.push_str(name);
            signed.push('=');
            signed.extend(percent_encoding::utf8_percent_encode(value, QUERY_VALUE));
        }
        signed.push_str(concat!("&User-Agent=hubgate%2F", env!("CARGO_PKG_VERSION")));
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed))
    }
}

/// What SigV4 leaves unencoded in a query value (RFC 3986 unreserved).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl TokenSource for MskIam {
    fn name(&self) -> &'static str {
        "aws_msk_iam"
    }

    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let credentials = self.credentials.provide_credentials().await.map_err(|e| {
                err(
                    "aws_msk_iam",
                    format!(
                        "AWS credentials: {}",
                        aws_credential_types::provider::error::CredentialsError::to_string(&e)
                    ),
                )
            })?;
            let now = SystemTime::now();
            // Temporary credentials that end sooner bound the token too.
            let expires_at = credentials.expiry().map_or(now + MSK_TOKEN_LIFETIME, |e| {
                e.min(now + MSK_TOKEN_LIFETIME)
            });
            let value = Self::sign(&self.region, credentials, now)?;
            Ok(BrokerToken {
                value: value.into(),
                expires_at,
            })
        })
    }
}

/// Where a client secret is.
#[derive(Debug)]
enum Secret {
    Value(SecretString),
    /// Read at each fetch: a mounted secret may rotate.
    File(std::path::PathBuf),
}

/// OAuth 2.0 client credentials.
#[derive(Debug)]
struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    secret: Secret,
    scope: Option<String>,
}

/// A token endpoint's answer (RFC 6749 §5.1), or its error (§5.2).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<SecretString>,
    expires_in: Option<serde_json::Value>,
    /// Azure's identity endpoint: seconds since the epoch, as a string.
    expires_on: Option<serde_json::Value>,
    error: Option<String>,
}

/// A JSON number or a string holding one (identity endpoints send strings).
fn seconds(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The `exp` claim of a JWT, without verifying it (the broker verifies; this only schedules
/// the refresh).
fn jwt_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

/// Reads a token endpoint's answer: the token and when it expires.
async fn read_answer(
    source: &'static str,
    response: Result<reqwest::Response, reqwest::Error>,
    now: SystemTime,
) -> Result<BrokerToken, TokenError> {
    // reqwest's errors name the URL, never a body.
    let response = response.map_err(|e| err(source, format!("request failed: {e}")))?;
    let status = response.status();
    let answer: Option<TokenAnswer> = response.json().await.ok();
    let Some(TokenAnswer {
        access_token: Some(token),
        expires_in,
        expires_on,
        ..
    }) = answer.as_ref().filter(|_| status.is_success())
    else {
        let code = answer.and_then(|a| a.error).unwrap_or_default();
        let code: String = code.chars().take(80).collect();
        return Err(err(
            source,
            format!("the token endpoint answered {status} {code}")
                .trim_end()
                .to_owned(),
        ));
    };
    let epoch = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let expires_at = expires_in
        .as_ref()
        .and_then(seconds)
        .map(|s| now + Duration::from_secs(s))
        .or_else(|| expires_on.as_ref().and_then(seconds).map(epoch))
        .or_else(|| jwt_exp(token.expose_secret()).map(epoch))
        .ok_or_else(|| err(source, "the answer says nowhere when the token expires"))?;
    Ok(BrokerToken {
        value: token.clone(),
        expires_at,
    })
}

impl TokenSource for ClientCredentials {
    fn name(&self) -> &'static str {
        "client_credentials"
    }

    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let secret = match &self.secret {
                Secret::Value(s) => s.clone(),
                Secret::File(path) => std::fs::read_to_string(path)
                    .map(|s| SecretString::from(s.trim().to_owned()))
                    .map_err(|e| {
                        err(
                            "client_credentials",
                            format!("client_secret_file {}: {e}", path.display()),
                        )
                    })?,
            };
            let mut form = vec![("grant_type", "client_credentials")];
            if let Some(scope) = &self.scope {
                form.push(("scope", scope));
            }
            // RFC 6749 §2.3.1: the id and secret form-encoded, then HTTP Basic.
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let now = SystemTime::now();
            let response = self
                .http
                .post(&self.token_url)
                .basic_auth(
                    encode(&self.client_id),
                    Some(encode(secret.expose_secret())),
                )
                .form(&form)
                .send()
                .await;
            read_answer("client_credentials", response, now).await
        })
    }
}

/// An Azure App Service / Functions managed identity.
#[derive(Debug)]
struct ManagedIdentity {
    http: reqwest::Client,
    endpoint: String,
    header: SecretString,
    resource: String,
    client_id: Option<String>,
}

impl ManagedIdentity {
    fn from_env(
        http: reqwest::Client,
        resource: &str,
        client_id: Option<&str>,
    ) -> Result<Self, TokenError> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                err(
                    "azure_managed_identity",
                    format!("{name} is not set (no managed identity on this App Service / Function App?)"),
                )
            })
        };
        Ok(Self {
            http,
            endpoint: var("IDENTITY_ENDPOINT")?,
            header: var("IDENTITY_HEADER")?.into(),
            resource: resource.to_owned(),
            client_id: client_id.map(str::to_owned),
        })
    }
}

impl TokenSource for ManagedIdentity {
    fn name(&self) -> &'static str {
        "azure_managed_identity"
    }

    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let mut query = vec![
                ("api-version", "2019-08-01"),
                ("resource", self.resource.as_str()),
            ];
            if let Some(id) = &self.client_id {
                query.push(("client_id", id));
            }
            let now = SystemTime::now();
            let response = self
                .http
                .get(&self.endpoint)
                .header("X-IDENTITY-HEADER", self.header.expose_secret())
                .query(&query)
                .send()
                .await;
            read_answer("azure_managed_identity", response, now).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msk_iam_token_is_a_presigned_connect_url_ok() {
        let credentials = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session/token+=".into()),
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        let token = MskIam::sign("us-east-1", credentials, now).unwrap();
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&token)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with(
                "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Date=20260101T000000Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=session%2Ftoken%2B%3D",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        assert!(url.ends_with(concat!("&User-Agent=hubgate%2F", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn token_answer_lifetimes_ok() {
        assert_eq!(seconds(&serde_json::json!(3600)), Some(3600));
        assert_eq!(
            seconds(&serde_json::json!("1586984735")),
            Some(1_586_984_735)
        );
        assert_eq!(seconds(&serde_json::json!("soon")), None);
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000}"#);
        assert_eq!(jwt_exp(&format!("h.{payload}.s")), Some(1_700_000_000));
        assert_eq!(jwt_exp("not-a-jwt"), None);
    }
}
