//! Microsoft Graph's `checkMemberGroups`, for callers whose token carries no `groups` claim.
//!
//! Entra tokens carry no `groups` claim for app-only (client-credentials) callers, and user
//! tokens signal overage instead of listing too many groups. Then Microsoft Graph's
//! `checkMemberGroups` is asked (`/v1.0/servicePrincipals/{oid}/…` or `/v1.0/users/{oid}/…`)
//! with the gateway's own client-credentials token; answers are cached per (tenant, object)
//! no longer than the caller's token lives; if Graph fails, the request fails closed (503).
//! The group policy itself is I/O-free: [`hubgate_core::groups`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use hubgate_core::units::{millis, seconds};

use hubgate_core::groups::guid;
pub use hubgate_core::groups::{GroupGrantConfig, GroupPolicy, MAX_GRANTS};

/// `[oauth.graph]`: how to ask Microsoft Graph about membership.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// Graph's base URL.
    #[serde(default = "default_graph_url")]
    pub base_url: String,
    /// Token endpoint for the gateway's own client-credentials token, e.g.
    /// `https://login.microsoftonline.com/{tid}/oauth2/v2.0/token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    #[serde(default = "default_graph_scope")]
    pub scope: String,
    #[serde(
        default = "default_graph_timeout",
        rename = "timeout_ms",
        deserialize_with = "millis"
    )]
    pub timeout: Duration,
    /// Upper bound on how long an answer is cached (it never outlives the caller's token).
    #[serde(
        default = "default_graph_cache",
        rename = "cache_secs",
        deserialize_with = "seconds"
    )]
    pub cache: Duration,
}

fn default_graph_url() -> String {
    "https://graph.microsoft.com".into()
}
fn default_graph_scope() -> String {
    "https://graph.microsoft.com/.default".into()
}
fn default_graph_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_graph_cache() -> Duration {
    Duration::from_secs(3_600)
}

/// Graph could not answer; the request must fail closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("group membership could not be checked: {0}")]
pub struct GraphError(String);

/// Asks Microsoft Graph about group membership, with caching.
pub struct GraphClient {
    config: GraphConfig,
    http: reqwest::Client,
    app_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    cache: parking_lot::Mutex<HashMap<(u128, u128), (u64, Instant)>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.config.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct CheckMemberGroups {
    value: Vec<String>,
}

/// Most ids one `checkMemberGroups` call takes.
const GRAPH_BATCH: usize = 20;

impl GraphClient {
    pub fn new(config: GraphConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            config,
            http,
            app_token: tokio::sync::Mutex::new(None),
            cache: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// The gateway's own client-credentials token for Graph (cached until shortly before expiry).
    async fn app_token(&self) -> Result<String, GraphError> {
        let mut cached = self.app_token.lock().await;
        if let Some((t, until)) = &*cached
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.expose_secret()),
            ("scope", self.config.scope.as_str()),
        ];
        let r: TokenResponse = self
            .http
            .post(&self.config.token_url)
            .form(&form)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| GraphError(format!("token endpoint: {}", e.without_url())))?
            .json()
            .await
            .map_err(|e| GraphError(format!("token endpoint: {e}")))?;
        let until = Instant::now() + Duration::from_secs(r.expires_in.saturating_sub(60));
        *cached = Some((r.access_token.clone(), until));
        Ok(r.access_token)
    }

    /// The grants `policy` gives the caller `oid` of tenant `tid`, per Graph. `app_only`
    /// selects `servicePrincipals` over `users`; `token_exp` bounds the cache entry.
    pub async fn mask(
        &self,
        policy: &GroupPolicy,
        tid: &str,
        oid: &str,
        app_only: bool,
        token_exp: u64,
    ) -> Result<u64, GraphError> {
        let (t, o) = match (guid(tid), guid(oid)) {
            (Some(t), Some(o)) => (t, o),
            _ => return Err(GraphError("the token's tid/oid are not GUIDs".into())),
        };
        if let Some((mask, until)) = self.cache.lock().get(&(t, o))
            && Instant::now() < *until
        {
            return Ok(*mask);
        }
        let token = self.app_token().await?;
        let kind = if app_only {
            "servicePrincipals"
        } else {
            "users"
        };
        let url = format!(
            "{}/v1.0/{kind}/{}/checkMemberGroups",
            self.config.base_url.trim_end_matches('/'),
            uuid::Uuid::from_u128(o)
        );
        let mut member = Vec::new();
        for chunk in policy.group_ids().chunks(GRAPH_BATCH) {
            let r: CheckMemberGroups = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .json(&serde_json::json!({ "groupIds": chunk }))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| GraphError(format!("checkMemberGroups: {}", e.without_url())))?
                .json()
                .await
                .map_err(|e| GraphError(format!("checkMemberGroups: {e}")))?;
            member.extend(r.value);
        }
        let mask = policy.mask(member.iter().map(String::as_str));
        let token_left = token_exp.saturating_sub(crate::authz::unix_now());
        let ttl = Duration::from_secs(token_left).min(self.config.cache);
        self.cache
            .lock()
            .insert((t, o), (mask, Instant::now() + ttl));
        Ok(mask)
    }
}

/// Shared handle.
pub type SharedGraph = Arc<GraphClient>;
