//! The one entry point for credentials: `SharedAccessSignature …` goes to the SAS key store,
//! `Bearer …` to the OAuth validator and the group policy, and a request without a token on
//! a connection with a client certificate is that certificate's caller. What the principal may do is
//! decided by [`crate::access`].

use std::sync::Arc;

use http::HeaderMap;

use crate::authz::{AuthError, CREDENTIAL_HEADERS, Principal};
use crate::groups::{GraphClient, GroupPolicy};
use crate::jwt::{JwtValidator, OAuthConfig};
use crate::keys::KeyStore;
use crate::listener::tls::ClientCertificate;
use crate::startup::StartError;

/// OAuth bearer tokens: validation plus group membership.
#[derive(Debug)]
pub struct OAuth {
    pub validator: Arc<JwtValidator>,
    pub policy: Arc<GroupPolicy>,
    pub graph: Option<GraphClient>,
}

impl OAuth {
    /// Builds from `[oauth]`, loads the provider's keys (a failure is logged; keys are fetched
    /// again on demand) and starts the background refresh.
    pub async fn start(config: &OAuthConfig) -> Result<Self, StartError> {
        crate::jwt::install_crypto_provider();
        let policy = Arc::new(GroupPolicy::new(&config.groups)?);
        let graph = config
            .graph
            .clone()
            .map(GraphClient::new)
            .transpose()
            .map_err(StartError::Graph)?;
        let validator = Arc::new(JwtValidator::new(config.clone())?);
        if let Err(e) = validator.refresh().await {
            tracing::warn!(error = %e, "could not load the identity provider keys at start-up; will retry on demand");
        }
        validator.spawn_refresh();
        Ok(Self {
            validator,
            policy,
            graph,
        })
    }

    /// Validates a bearer token and resolves its group grants.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.validator.validate(token).await?;
        let grants = match (&self.graph, claims.needs_group_lookup()) {
            (Some(graph), true) => {
                let tid = claims.tid.as_deref().unwrap_or_default();
                graph
                    .mask(
                        &self.policy,
                        tid,
                        claims.subject(),
                        claims.is_app_only(),
                        claims.exp,
                    )
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "group membership lookup failed; refusing");
                        AuthError::GroupsUnavailable
                    })?
            }
            _ => self
                .policy
                .mask(claims.groups.iter().flatten().map(String::as_str)),
        };
        Ok(Principal::Jwt {
            subject: claims.subject().to_owned(),
            tenant: claims.tid.clone(),
            policy: Arc::clone(&self.policy),
            grants,
            expires_at: claims.exp,
        })
    }
}

/// SAS keys and, when configured, OAuth.
#[derive(Debug)]
pub struct Gate {
    pub keys: Arc<KeyStore>,
    pub oauth: Option<Arc<OAuth>>,
}

impl Gate {
    /// SAS rules as configured (file or Secrets Manager) and OAuth when `[oauth]` is set.
    pub async fn load(config: &crate::Config) -> Result<Self, StartError> {
        let keys = Arc::new(KeyStore::load(config).await?);
        let oauth = match &config.oauth {
            Some(o) => Some(Arc::new(OAuth::start(o).await?)),
            None => None,
        };
        Ok(Self { keys, oauth })
    }

    /// SAS only, fixed rules from the configuration (tests, tools).
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            keys: Arc::new(KeyStore::from_config(config)),
            oauth: None,
        }
    }

    /// Authenticates the request's credential, whichever kind it is. A token in the request
    /// wins over the connection's client `certificate` (a gateway in front that holds one
    /// connection for many callers passes their tokens).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Principal, AuthError> {
        if let Some(ClientCertificate(mapped)) = certificate
            && !CREDENTIAL_HEADERS.iter().any(|h| headers.contains_key(*h))
        {
            let principal = mapped.as_ref().clone()?;
            // The handshake checked the validity period; a connection may outlive it.
            if let Principal::Certificate { expires_at, .. } = &principal
                && crate::authz::unix_now() >= *expires_at
            {
                return Err(AuthError::CertificateExpired);
            }
            return Ok(principal);
        }
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| {
                let (scheme, rest) = v.split_once(char::is_whitespace)?;
                scheme.eq_ignore_ascii_case("Bearer").then(|| rest.trim())
            });
        match (bearer, &self.oauth) {
            (Some(token), Some(oauth)) => oauth.authenticate(token).await,
            (Some(_), None) => Err(AuthError::BearerNotConfigured),
            (None, _) => self.keys.authenticate(headers).await,
        }
    }
}
