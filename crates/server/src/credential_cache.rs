//! Verified credentials, remembered: a device sends the same SAS header, a service the same
//! bearer token, on every request for hours, and verifying it again (parsing, an HMAC, or an
//! RSA signature and JSON) each time is most of an authenticated request's CPU. An entry is
//! found by the request's exact credential headers (names and values; a different byte is a
//! different credential), hashed with the standard library's randomly keyed SipHash (no
//! attacker can aim two credentials at one bucket) and compared in constant time (aws-lc's
//! `CRYPTO_memcmp`).
//! The credential is kept in this process's memory only, zeroized when its entry goes: no more
//! exposed than the SAS keys the process holds anyway. An entry is used only while:
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
use zeroize::Zeroizing;

use crate::authz::Principal;
pub use crate::config::CredentialCacheConfig;

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
    principal: Arc<Principal>,
    verifier: Verifier,
    /// The earlier of `max_age_ms` after it was stored and the credential's expiry (one
    /// clock read per hit).
    until: Instant,
}

/// The cache. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CredentialCache {
    config: CredentialCacheConfig,
    entries: Mutex<HashMap<CredentialKey, Entry>>,
}

/// A request's exact credential headers: each present one's name and value, length-prefixed.
/// Zeroized when dropped; equal only to the same bytes, compared in constant time.
pub struct CredentialKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(..)")
    }
}

impl PartialEq for CredentialKey {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for CredentialKey {}

impl std::hash::Hash for CredentialKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// The key of a request's credential; `None` without any credential header.
pub fn credential_key(headers: &HeaderMap) -> Option<CredentialKey> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(512));
    for name in [&http::header::AUTHORIZATION, &SERVICEBUS_AUTHORIZATION] {
        for value in headers.get_all(name) {
            bytes.extend_from_slice(&(name.as_str().len() as u32).to_be_bytes());
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    (!bytes.is_empty()).then(|| CredentialKey(bytes))
}

/// The second of [`crate::authz::CREDENTIAL_HEADERS`] as a header name (no parsing per
/// request).
static SERVICEBUS_AUTHORIZATION: http::HeaderName =
    http::HeaderName::from_static("servicebusauthorization");

impl CredentialCache {
    /// A cache as `config` says; `None` when it is off.
    pub fn new(config: CredentialCacheConfig) -> Option<Self> {
        (config.entries > 0).then(|| Self {
            config,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The principal verified for `key` by `verifier`, if still usable.
    pub fn get(&self, key: &CredentialKey, verifier: &Verifier) -> Option<Arc<Principal>> {
        let mut entries = self.entries.lock();
        let entry = entries.get(key)?;
        if entry.verifier.same(verifier) && Instant::now() < entry.until {
            return Some(Arc::clone(&entry.principal));
        }
        entries.remove(key);
        None
    }

    /// Remembers `principal`, verified by `verifier`, for `key`. When full, expired and stale
    /// entries go first; if none is, everything goes (a burst of new credentials costs
    /// verifications again, never memory).
    pub fn put(&self, key: CredentialKey, principal: &Arc<Principal>, verifier: Verifier) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.config.entries {
            let now = Instant::now();
            entries.retain(|_, e| {
                now < e.until
                    && match &e.verifier {
                        Verifier::Sas(w) => w.strong_count() > 0,
                        Verifier::Jwt(w) => w.strong_count() > 0,
                    }
            });
            if entries.len() >= self.config.entries {
                entries.clear();
            }
        }
        let now = Instant::now();
        let left = Duration::from_secs(
            principal
                .expires_at()
                .saturating_sub(crate::authz::unix_now()),
        );
        let until = now + left.min(self.config.max_age);
        entries.insert(
            key,
            Entry {
                principal: Arc::clone(principal),
                verifier,
                until,
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

    fn principal(expires_at: u64) -> Arc<Principal> {
        Arc::new(Principal::Sas {
            rule: "send".into(),
            rights: Rights::SEND,
            scope: Resource::namespace(),
            expires_at,
        })
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
    fn credential_headers_are_the_core_list_ok() {
        assert_eq!(
            crate::authz::CREDENTIAL_HEADERS,
            [
                http::header::AUTHORIZATION.as_str(),
                SERVICEBUS_AUTHORIZATION.as_str()
            ]
        );
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
        assert!(credential_key(&HeaderMap::new()).is_none());
    }

    /// The key of the credential `t`.
    fn t() -> CredentialKey {
        credential_key(&headers("t")).unwrap()
    }

    #[test]
    fn credential_cache_hit_until_expiry_or_new_keys_ok() {
        let keys = rule_set();
        let c = cache(10, Duration::from_secs(60));
        let far = crate::authz::unix_now() + 3600;
        c.put(t(), &principal(far), sas_verifier(&keys));
        assert!(c.get(&t(), &sas_verifier(&keys)).is_some());
        // Another credential: no hit.
        let other = credential_key(&headers("u")).unwrap();
        assert!(c.get(&other, &sas_verifier(&keys)).is_none());
        // Another rule set in force (a reload, a rotation): stale.
        let reloaded = rule_set();
        assert!(c.get(&t(), &sas_verifier(&reloaded)).is_none());
        assert!(c.is_empty(), "a stale entry is dropped");
        // Expired credential: never a hit.
        let expired = principal(crate::authz::unix_now() - 1);
        c.put(t(), &expired, sas_verifier(&keys));
        assert!(c.get(&t(), &sas_verifier(&keys)).is_none());
    }

    #[test]
    fn credential_cache_max_age_fails() {
        let keys = rule_set();
        let c = cache(10, Duration::from_millis(20));
        let far = crate::authz::unix_now() + 3600;
        c.put(t(), &principal(far), sas_verifier(&keys));
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get(&t(), &sas_verifier(&keys)).is_none());
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
