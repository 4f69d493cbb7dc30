//! The one entry point for credentials: `SharedAccessSignature …` goes to the SAS key store,
//! `Bearer …` to the OAuth validator and the group policy, and a request without a token on
//! a connection with a client certificate is that certificate's caller. What the principal may do is
//! decided by [`crate::access`].

use std::sync::Arc;

use http::HeaderMap;

use crate::authz::{AuthError, CREDENTIAL_HEADERS, Principal};
use crate::credential_cache::{CredentialCache, Verifier, credential_key, sas_verifier};
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

/// SAS keys and, when configured, OAuth; verified credentials remembered
/// ([`crate::credential_cache`]).
#[derive(Debug)]
pub struct Gate {
    pub keys: Arc<KeyStore>,
    pub oauth: Option<Arc<OAuth>>,
    pub cache: Option<CredentialCache>,
}

impl Gate {
    /// SAS rules as configured (file or Secrets Manager) and OAuth when `[oauth]` is set.
    pub async fn load(config: &crate::Config) -> Result<Self, StartError> {
        let keys = Arc::new(KeyStore::load(config).await?);
        let oauth = match &config.oauth {
            Some(o) => Some(Arc::new(OAuth::start(o).await?)),
            None => None,
        };
        Ok(Self {
            keys,
            oauth,
            cache: CredentialCache::new(config.credential_cache),
        })
    }

    /// SAS only, fixed rules from the configuration (tests, tools).
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            keys: Arc::new(KeyStore::from_config(config)),
            oauth: None,
            cache: CredentialCache::new(config.credential_cache),
        }
    }

    /// Authenticates the request's credential, whichever kind it is. A token in the request
    /// wins over the connection's client `certificate` (a gateway in front that holds one
    /// connection for many callers passes their tokens).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Arc<Principal>, AuthError> {
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
            return Ok(Arc::new(principal));
        }
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| {
                let (scheme, rest) = v.split_once(char::is_whitespace)?;
                scheme.eq_ignore_ascii_case("Bearer").then(|| rest.trim())
            });
        // The verifier in force for this kind of credential (a SAS rule set reloads first
        // when due, as an uncached check would).
        let verifier = match (bearer, &self.oauth) {
            (Some(_), Some(oauth)) => Verifier::Jwt(Arc::downgrade(&oauth.validator.key_set())),
            (Some(_), None) => return Err(AuthError::BearerNotConfigured),
            (None, _) => {
                self.keys.refresh_if_due().await;
                sas_verifier(&self.keys.current())
            }
        };
        let cached = self.cache.as_ref().zip(credential_key(headers));
        if let Some((cache, key)) = &cached
            && let Some(principal) = cache.get(key, &verifier)
        {
            return Ok(principal);
        }
        let principal = Arc::new(match (bearer, &self.oauth) {
            (Some(token), Some(oauth)) => oauth.authenticate(token).await?,
            _ => self.keys.authenticate(headers).await?,
        });
        if let Some((cache, key)) = cached {
            // What verified it: the set in force now (a reload during the check makes the
            // entry stale at once, never wrongly fresh).
            cache.put(key, &principal, verifier);
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{KEY_B, test_config};

    fn sas(key: &str, expiry: u64) -> HeaderMap {
        let token = hubgate_core::sas::mint(
            "https://ns.test/hub",
            "send",
            &hubgate_core::sas::SasKey::new(key).unwrap(),
            expiry,
        );
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, token.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn gate_repeat_credential_from_the_cache_ok() {
        let gate = Gate::from_config(&test_config());
        let cache = gate.cache.as_ref().unwrap();
        let headers = sas(KEY_B, crate::authz::unix_now() + 3600);
        let first = gate.authenticate(&headers, None).await.unwrap();
        assert_eq!(cache.len(), 1);
        let again = gate.authenticate(&headers, None).await.unwrap();
        assert_eq!(first.name(), again.name());
        assert_eq!(cache.len(), 1);
        // A bad signature is verified (and refused) every time, never cached.
        let forged = sas(crate::config::tests::KEY_A, crate::authz::unix_now() + 3600);
        for _ in 0..2 {
            assert!(gate.authenticate(&forged, None).await.is_err());
        }
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn gate_cache_off_verifies_every_time_ok() {
        let mut config = test_config();
        config.credential_cache.entries = 0;
        let gate = Gate::from_config(&config);
        assert!(gate.cache.is_none());
        let headers = sas(KEY_B, crate::authz::unix_now() + 3600);
        assert!(gate.authenticate(&headers, None).await.is_ok());
    }
}
