//! Verified credentials, remembered: a device sends the same SAS header, a service the same
//! bearer token, on every request for hours, and verifying it again (parsing, an HMAC, or an
//! RSA signature and JSON) each time is most of an authenticated request's CPU. An entry is
//! found by the SHA-256 of the request's exact credential headers (so two credentials never
//! share one, and the token itself is never stored), and it is used only while:
//!
//! - the credential has not expired (the SAS `se`, the JWT `exp`, checked on every hit);
//! - the keys that verified it are still the ones in force: a SAS rule set reloaded or rotated,
//!   or a new key set from the identity provider, makes every older entry stale;
//! - it is younger than `credential_cache.max_age_ms` (bounds how long a group membership
//!   answered by Microsoft Graph, or any other input to the grants, is reused).
//!
//! Failures are never cached, and revocation is not decided here: [`crate::access`] checks
//! the revocation list on every request, cached principal or not.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::HeaderMap;
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::authz::{CREDENTIAL_HEADERS, Principal};
use hubgate_core::units::millis;

/// `[credential_cache]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialCacheConfig {
    /// Verified credentials kept; 0 turns the cache off.
    pub entries: usize,
    /// Longest an entry is used, whatever the credential's own expiry (ms).
    #[serde(rename = "max_age_ms", deserialize_with = "millis")]
    pub max_age: Duration,
}

impl Default for CredentialCacheConfig {
    fn default() -> Self {
        Self {
            entries: 10_000,
            max_age: Duration::from_secs(60),
        }
    }
}

/// What verified a credential: the SAS rule set or the identity provider's key set in force
/// then. An entry is stale once that set was replaced (weak: a replaced set is freed, never
/// mistaken for a new one at the same address).
#[derive(Debug, Clone)]
pub enum Verifier {
    Sas(Weak<crate::keys::Keys>),
    Jwt(Weak<hubgate_core::jwt::KeySet>),
}

impl Verifier {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sas(a), Self::Sas(b)) => a.ptr_eq(b),
            (Self::Jwt(a), Self::Jwt(b)) => a.ptr_eq(b),
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Entry {
    principal: Principal,
    verifier: Verifier,
    stored: Instant,
}

/// The cache. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CredentialCache {
    config: CredentialCacheConfig,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// The key of a request's credential: SHA-256 over each credential header present, name and
/// value; `None` without any.
pub fn credential_key(headers: &HeaderMap) -> Option<[u8; 32]> {
    let mut hash = Sha256::new();
    let mut any = false;
    for name in CREDENTIAL_HEADERS {
        for value in headers.get_all(name) {
            any = true;
            hash.update((name.len() as u64).to_be_bytes());
            hash.update(name.as_bytes());
            hash.update((value.len() as u64).to_be_bytes());
            hash.update(value.as_bytes());
        }
    }
    any.then(|| hash.finalize().into())
}

impl CredentialCache {
    /// A cache as `config` says; `None` when it is off.
    pub fn new(config: CredentialCacheConfig) -> Option<Self> {
        (config.entries > 0).then(|| Self {
            config,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The principal verified for `key` by `verifier`, if still usable.
    pub fn get(&self, key: &[u8; 32], verifier: &Verifier) -> Option<Principal> {
        let mut entries = self.entries.lock();
        let entry = entries.get(key)?;
        if entry.verifier.same(verifier)
            && entry.stored.elapsed() < self.config.max_age
            && crate::authz::unix_now() < entry.principal.expires_at()
        {
            return Some(entry.principal.clone());
        }
        entries.remove(key);
        None
    }

    /// Remembers `principal`, verified by `verifier`, for `key`. When full, expired and stale
    /// entries go first; if none is, everything goes (a burst of new credentials costs
    /// verifications again, never memory).
    pub fn put(&self, key: [u8; 32], principal: &Principal, verifier: Verifier) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.config.entries {
            let now = crate::authz::unix_now();
            entries.retain(|_, e| {
                e.stored.elapsed() < self.config.max_age
                    && now < e.principal.expires_at()
                    && match &e.verifier {
                        Verifier::Sas(w) => w.strong_count() > 0,
                        Verifier::Jwt(w) => w.strong_count() > 0,
                    }
            });
            if entries.len() >= self.config.entries {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                principal: principal.clone(),
                verifier,
                stored: Instant::now(),
            },
        );
    }

    /// Entries held (tests, metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The verifier of a SAS credential now: the rule set in force.
pub fn sas_verifier(keys: &Arc<crate::keys::Keys>) -> Verifier {
    Verifier::Sas(Arc::downgrade(keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubgate_core::authz::{Resource, Rights};

    fn principal(expires_at: u64) -> Principal {
        Principal::Sas {
            rule: "send".into(),
            rights: Rights::SEND,
            scope: Resource::namespace(),
            expires_at,
        }
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    /// A rule set (empty: what matters is which one is in force).
    fn rule_set() -> Arc<crate::keys::Keys> {
        Arc::new(crate::keys::Keys {
            rules: Vec::new(),
            auth: crate::authz::Authenticator::new("ns.test", &[]),
        })
    }

    fn cache(entries: usize, max_age: Duration) -> CredentialCache {
        CredentialCache::new(CredentialCacheConfig { entries, max_age }).unwrap()
    }

    #[test]
    fn credential_key_distinct_credentials_ok() {
        let a = credential_key(&headers("SharedAccessSignature sr=a&sig=x")).unwrap();
        let b = credential_key(&headers("SharedAccessSignature sr=a&sig=y")).unwrap();
        assert_ne!(a, b);
        // The same value in the other credential header is another credential.
        let mut other = HeaderMap::new();
        other.insert(
            "servicebusauthorization",
            "SharedAccessSignature sr=a&sig=x".parse().unwrap(),
        );
        assert_ne!(credential_key(&other).unwrap(), a);
        assert_eq!(credential_key(&HeaderMap::new()), None);
    }

    #[test]
    fn credential_cache_hit_until_expiry_or_new_keys_ok() {
        let keys = rule_set();
        let c = cache(10, Duration::from_secs(60));
        let key = credential_key(&headers("t")).unwrap();
        let far = crate::authz::unix_now() + 3600;
        c.put(key, &principal(far), sas_verifier(&keys));
        assert!(c.get(&key, &sas_verifier(&keys)).is_some());
        // Another rule set in force (a reload, a rotation): stale.
        let reloaded = rule_set();
        assert!(c.get(&key, &sas_verifier(&reloaded)).is_none());
        assert!(c.is_empty(), "a stale entry is dropped");
        // Expired credential: never a hit.
        c.put(
            key,
            &principal(crate::authz::unix_now() - 1),
            sas_verifier(&keys),
        );
        assert!(c.get(&key, &sas_verifier(&keys)).is_none());
    }

    #[test]
    fn credential_cache_max_age_fails() {
        let keys = rule_set();
        let c = cache(10, Duration::from_millis(20));
        let key = credential_key(&headers("t")).unwrap();
        c.put(
            key,
            &principal(crate::authz::unix_now() + 3600),
            sas_verifier(&keys),
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get(&key, &sas_verifier(&keys)).is_none());
    }

    #[test]
    fn credential_cache_bounded_ok() {
        let keys = rule_set();
        let c = cache(100, Duration::from_secs(60));
        let far = crate::authz::unix_now() + 3600;
        for i in 0..1000 {
            let key = credential_key(&headers(&format!("t{i}"))).unwrap();
            c.put(key, &principal(far), sas_verifier(&keys));
            assert!(c.len() <= 100);
        }
    }

    #[test]
    fn credential_cache_off_ok() {
        assert!(
            CredentialCache::new(CredentialCacheConfig {
                entries: 0,
                max_age: Duration::from_secs(1)
            })
            .is_none()
        );
    }
}
