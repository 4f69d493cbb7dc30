//! The SAS rules a process verifies and mints with, swappable at run time.
//!
//! With `secret_id` configured, the rules come from AWS Secrets Manager: loaded once at
//! start (cold start), reloaded when a signature fails to verify (at most every
//! `secret_reload_min_ms`), and reloaded when older than `secret_max_age_ms` so a key that
//! rotation dropped stops verifying everywhere, even on an instance that never saw a failure.
//! Without it, the rules are the configuration's, fixed.

use parking_lot::RwLock;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::authz::{AuthError, Authenticator, CREDENTIAL_HEADERS, Principal};
use crate::config::{Config, RuleConfig};
use crate::sas::SasError;
use crate::secrets::{SecretError, SecretStore};

/// Rules and the authenticator built from them.
#[derive(Debug)]
pub struct Keys {
    pub rules: Vec<RuleConfig>,
    pub auth: Authenticator,
}

#[derive(Debug)]
struct Reload {
    store: SecretStore,
    min_interval: Duration,
    max_age: Duration,
    /// When the rules were last (re)loaded or a reload was last attempted. Read on every
    /// request: a std mutex held for one `Instant` read.
    last: parking_lot::Mutex<Instant>,
    /// Single-flight for the reload itself.
    gate: tokio::sync::Mutex<()>,
}

impl Reload {
    fn older_than(&self, age: Duration) -> bool {
        self.last.lock().elapsed() >= age
    }
}

/// The current rules of this process.
#[derive(Debug)]
pub struct KeyStore {
    namespace: String,
    current: RwLock<Arc<Keys>>,
    reload: Option<Reload>,
    /// Where a reload that changed the rules is recorded ([`KeyStore::audit_into`]).
    audit: std::sync::OnceLock<Arc<crate::audit::Audit>>,
}

impl KeyStore {
    /// Fixed rules from the configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            namespace: config.namespace.clone(),
            current: RwLock::new(Arc::new(Self::keys(
                &config.namespace,
                config.rules.clone(),
            ))),
            reload: None,
            audit: std::sync::OnceLock::new(),
        }
    }

    /// Rules from `store` (loaded now), reloaded as the module documents.
    pub async fn from_secret(config: &Config, store: SecretStore) -> Result<Self, SecretError> {
        let rules = store.load().await?;
        tracing::info!(
            secret = store.secret_id(),
            rules = rules.len(),
            "SAS rules loaded from Secrets Manager"
        );
        Ok(Self {
            namespace: config.namespace.clone(),
            current: RwLock::new(Arc::new(Self::keys(&config.namespace, rules))),
            reload: Some(Reload {
                store,
                min_interval: config.secret_reload_min,
                max_age: config.secret_max_age,
                last: parking_lot::Mutex::new(Instant::now()),
                gate: tokio::sync::Mutex::new(()),
            }),
            audit: std::sync::OnceLock::new(),
        })
    }

    /// Builds the store the configuration asks for: from `secret_id` if set, else fixed.
    pub async fn load(config: &Config) -> Result<Self, SecretError> {
        match &config.secret_id {
            Some(id) => Self::from_secret(config, SecretStore::from_env(id.clone()).await).await,
            None => Ok(Self::from_config(config)),
        }
    }

    fn keys(namespace: &str, rules: Vec<RuleConfig>) -> Keys {
        Keys {
            auth: Authenticator::new(namespace, &rules),
            rules,
        }
    }

    /// Records each reload that changes the rules in `audit` (`config.reload`).
    pub fn audit_into(&self, audit: Arc<crate::audit::Audit>) {
        let _ = self.audit.set(audit);
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<Keys> {
        Arc::clone(&self.current.read())
    }

    /// The secret store, when rules come from Secrets Manager.
    pub fn secret_store(&self) -> Option<&SecretStore> {
        self.reload.as_ref().map(|r| &r.store)
    }

    /// Reloads from the secret if the last load is at least `min_age` old (single-flight).
    /// Returns whether the rules were replaced.
    async fn reload_if_older(&self, min_age: Duration) -> bool {
        let Some(reload) = &self.reload else {
            return false;
        };
        if !reload.older_than(min_age) {
            return false;
        }
        let _gate = reload.gate.lock().await;
        if !reload.older_than(min_age) {
            return false; // another request reloaded while this one waited
        }
        *reload.last.lock() = Instant::now();
        match reload.store.load().await {
            Ok(rules) => {
                let changed = self.current.read().rules != rules;
                let count = rules.len();
                let keys = Arc::new(Self::keys(&self.namespace, rules));
                *self.current.write() = keys;
                tracing::info!(
                    secret = reload.store.secret_id(),
                    changed,
                    "SAS rules reloaded"
                );
                if changed && let Some(audit) = self.audit.get() {
                    // Not an action a client waits for: recorded beside the requests.
                    let (audit, secret) = (Arc::clone(audit), reload.store.secret_id().to_owned());
                    tokio::spawn(async move {
                        let event = crate::audit::Event {
                            action: "config.reload",
                            principal: "hubgate",
                            request_id: "",
                            hub: None,
                            target: Some(&secret),
                            details: vec![("rules", count.to_string())],
                        };
                        if let Err(e) = audit.record(event).await {
                            tracing::warn!(error = %e, "could not record the SAS rules reload in the audit log");
                        }
                    });
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reload SAS rules; keeping the current ones");
                false
            }
        }
    }

    /// Reloads now (after this process rotated the keys itself).
    pub async fn reload_now(&self) -> bool {
        self.reload_if_older(Duration::ZERO).await
    }

    /// Reloads if the rules are older than `secret_reload_min_ms` (before minting, so new
    /// tokens are signed with the newest key even if another process rotated).
    pub async fn reload_if_stale(&self) -> bool {
        match &self.reload {
            Some(r) => self.reload_if_older(r.min_interval).await,
            None => false,
        }
    }

    /// Authenticates the request's credential, reloading the rules once if its signature
    /// does not verify (keys may have been rotated) or if they are older than the max age.
    /// Reloads the rules if they are older than `secret_max_age_ms` (every authentication
    /// does this first, cached or not).
    pub async fn refresh_if_due(&self) {
        if let Some(r) = &self.reload {
            self.reload_if_older(r.max_age).await;
        }
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.refresh_if_due().await;
        let value = CREDENTIAL_HEADERS
            .iter()
            .find_map(|h| headers.get(*h))
            .map(http::HeaderValue::as_bytes);
        let result = self.current().auth.authenticate(value);
        match (&result, &self.reload) {
            (Err(AuthError::Sas(SasError::InvalidSignature) | AuthError::UnknownRule), Some(r))
                if self.reload_if_older(r.min_interval).await =>
            {
                self.current().auth.authenticate(value)
            }
            _ => result,
        }
    }
}
