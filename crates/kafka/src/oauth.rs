//! SASL/OAUTHBEARER tokens for the broker connections (RFC 7628; Kafka KIP-255, KIP-768): a
//! cache in front of a [`TokenSource`] (MSK IAM, OAuth client credentials, a managed identity;
//! the sources that need HTTP or the AWS SDK live in the server layer). Every connection
//! rskafka or the admin connection opens asks the cache, which fetches at most once at a
//! time and ahead of expiry, the way Kafka's Java client does (`sasl.login.refresh.window.factor`
//! 0.8 plus up to `sasl.login.refresh.window.jitter` 0.05 of the lifetime): a token is
//! replaced after 80-85% of its lifetime, so connections never wait for a fetch while the
//! current token is fresh, and never one fetch per connection. A failed refresh keeps the
//! current token while it is still valid (logged) and asks the source again 10 s later;
//! without a valid token the connection fails with the source's message, which never holds
//! the token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use secrecy::{ExposeSecret as _, SecretString};

/// A bearer token for the brokers and when it expires.
#[derive(Clone)]
pub struct BrokerToken {
    pub value: SecretString,
    pub expires_at: SystemTime,
}

impl fmt::Debug for BrokerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A token source could not give a token. The message says why (an HTTP status, a missing
/// variable, a refused credential) and never holds a token or a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("broker token source {source_name}: {message}")]
pub struct TokenError {
    pub source_name: &'static str,
    pub message: String,
}

/// What [`TokenSource::fetch`] returns.
pub type TokenFuture<'a> = BoxFuture<'a, Result<BrokerToken, TokenError>>;

/// Where broker tokens come from.
pub trait TokenSource: Send + Sync + fmt::Debug + 'static {
    /// The source's name for logs and errors (`aws_msk_iam`, `client_credentials`, …).
    fn name(&self) -> &'static str;
    /// A new token.
    fn fetch(&self) -> TokenFuture<'_>;
}

/// The part of a token's lifetime after which it is replaced (Kafka's
/// `sasl.login.refresh.window.factor`).
const REFRESH_FACTOR: f64 = 0.80;
/// Up to this part of the lifetime is added at random, so that instances started together
/// do not all refresh at once (Kafka's `sasl.login.refresh.window.jitter`).
const REFRESH_JITTER: f64 = 0.05;
/// A token this close to its expiry is not handed to a new connection: its authentication
/// would race the expiry.
const MIN_VALIDITY: Duration = Duration::from_secs(5);
/// After a failed refresh, how long the current (still valid) token is used before the
/// source is asked again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// The current token and when to replace it.
#[derive(Debug, Clone)]
struct Held {
    token: BrokerToken,
    refresh_at: SystemTime,
}

/// A token cache in front of a [`TokenSource`]. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct TokenCache {
    source: Arc<dyn TokenSource>,
    held: Mutex<Option<Held>>,
    /// Held by the one caller fetching; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
    /// Longest wait for one fetch.
    timeout: Duration,
}

impl TokenCache {
    /// A cache over `source`; one fetch may take up to `timeout`.
    pub fn new(source: Arc<dyn TokenSource>, timeout: Duration) -> Self {
        Self {
            source,
            held: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            timeout,
        }
    }

    /// The source's name.
    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    /// A token valid for a new connection: the current one while it is fresh, else a new one.
    pub async fn token(&self) -> Result<SecretString, TokenError> {
        if let Some(value) = self.fresh(SystemTime::now()) {
            return Ok(value);
        }
        let _one = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        let now = SystemTime::now();
        if let Some(value) = self.fresh(now) {
            return Ok(value);
        }
        let fetched = match tokio::time::timeout(self.timeout, self.source.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(TokenError {
                source_name: self.source.name(),
                message: format!("no answer within {} ms", self.timeout.as_millis()),
            }),
        };
        match fetched {
            Ok(token) => {
                let value = token.value.clone();
                let lifetime = token.expires_at.duration_since(now).unwrap_or_default();
                if lifetime < MIN_VALIDITY {
                    return Err(TokenError {
                        source_name: self.source.name(),
                        message: format!("the token it gave expires in {} s", lifetime.as_secs()),
                    });
                }
                let factor = REFRESH_FACTOR + REFRESH_JITTER * jitter();
                *self.held.lock() = Some(Held {
                    refresh_at: now + lifetime.mul_f64(factor),
                    token,
                });
                tracing::info!(
                    source = self.source.name(),
                    lifetime_secs = lifetime.as_secs(),
                    "broker token fetched"
                );
                Ok(value)
            }
            Err(e) => {
                // Keep using the current token while it is valid, and try the source again
                // only after a pause (connections meanwhile do not wait on a failing source).
                let mut held = self.held.lock();
                match held.as_mut() {
                    Some(h) if h.token.expires_at > now + MIN_VALIDITY => {
                        h.refresh_at =
                            (now + RETRY_AFTER_FAILURE).min(h.token.expires_at - MIN_VALIDITY);
                        tracing::warn!(error = %e, "broker token refresh failed; the current token is still valid");
                        Ok(h.token.value.clone())
                    }
                    _ => {
                        tracing::error!(error = %e, "no broker token: connections to Kafka fail");
                        Err(e)
                    }
                }
            }
        }
    }

    /// The held token if it need not be replaced yet at `now`.
    fn fresh(&self, now: SystemTime) -> Option<SecretString> {
        self.held
            .lock()
            .as_ref()
            .filter(|h| now < h.refresh_at && h.token.expires_at > now + MIN_VALIDITY)
            .map(|h| h.token.value.clone())
    }

    /// rskafka's SASL/OAUTHBEARER settings that take their tokens from this cache.
    pub(crate) fn sasl(self: &Arc<Self>) -> rskafka::client::SaslConfig {
        let cache = Arc::clone(self);
        let callback: rskafka::client::OauthCallback = Arc::new(move || {
            let cache = Arc::clone(&cache);
            Box::pin(async move {
                cache
                    .token()
                    .await
                    .map(|t| t.expose_secret().to_owned())
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            })
        });
        rskafka::client::SaslConfig::Oauthbearer(rskafka::client::OauthBearerCredentials {
            callback,
            authz_id: None,
            bearer_kvs: Vec::new(),
        })
    }
}

/// A number in [0, 1) that differs between processes and calls (no cryptographic use).
fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hands out `token-N` valid for `lifetime`, or fails when `fail` is set.
    #[derive(Debug)]
    struct Counting {
        fetches: AtomicUsize,
        failures: AtomicUsize,
        lifetime: Duration,
        fail: parking_lot::Mutex<bool>,
        delay: Duration,
    }

    impl Counting {
        fn new(lifetime: Duration) -> Arc<Self> {
            Arc::new(Self {
                fetches: AtomicUsize::new(0),
                failures: AtomicUsize::new(0),
                lifetime,
                fail: parking_lot::Mutex::new(false),
                delay: Duration::from_millis(20),
            })
        }
    }

    impl TokenSource for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn fetch(&self) -> TokenFuture<'_> {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                if *self.fail.lock() {
                    self.failures.fetch_add(1, Ordering::SeqCst);
                    return Err(TokenError {
                        source_name: "counting",
                        message: "HTTP 500 from the token endpoint".into(),
                    });
                }
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(BrokerToken {
                    value: format!("token-{n}").into(),
                    expires_at: SystemTime::now() + self.lifetime,
                })
            })
        }
    }

    #[tokio::test]
    async fn token_cache_concurrent_callers_share_one_fetch_ok() {
        let source = Counting::new(Duration::from_secs(3600));
        let cache = Arc::new(TokenCache::new(source.clone(), Duration::from_secs(5)));
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.token().await.unwrap() })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap().expose_secret(), "token-1");
        }
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
        // Fresh: no new fetch.
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn token_cache_refreshes_ahead_of_expiry_ok() {
        // 10 s tokens are replaced after 8-8.5 s, before they expire.
        let source = Counting::new(Duration::from_secs(10));
        let cache = TokenCache::new(source.clone(), Duration::from_secs(5));
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        let refresh_at = cache.held.lock().as_ref().unwrap().refresh_at;
        let ahead = refresh_at
            .duration_since(SystemTime::now())
            .unwrap()
            .as_secs_f64();
        assert!((7.5..=8.6).contains(&ahead), "{ahead}");
        // Past the refresh point (moved for the test): a new token.
        cache.held.lock().as_mut().unwrap().refresh_at = SystemTime::now();
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-2");
    }

    #[tokio::test]
    async fn token_cache_failed_refresh_keeps_a_valid_token_ok() {
        let source = Counting::new(Duration::from_secs(3600));
        let cache = TokenCache::new(source.clone(), Duration::from_secs(5));
        cache.token().await.unwrap();
        *source.fail.lock() = true;
        cache.held.lock().as_mut().unwrap().refresh_at = SystemTime::now();
        let fails = || source.failures.load(Ordering::SeqCst);
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(fails(), 1);
        // The next connections do not ask the failing source again at once.
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(fails(), 1);
    }

    #[tokio::test]
    async fn token_cache_failed_source_without_token_fails() {
        let source = Counting::new(Duration::from_secs(3600));
        *source.fail.lock() = true;
        let cache = TokenCache::new(source, Duration::from_secs(5));
        let e = cache.token().await.unwrap_err();
        assert!(e.to_string().contains("HTTP 500"), "{e}");
    }

    #[tokio::test]
    async fn token_cache_slow_source_times_out_fails() {
        let source = Arc::new(Counting {
            fetches: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            lifetime: Duration::from_secs(60),
            fail: parking_lot::Mutex::new(false),
            delay: Duration::from_secs(30),
        });
        let cache = TokenCache::new(source, Duration::from_millis(50));
        let e = cache.token().await.unwrap_err();
        assert!(e.to_string().contains("no answer within 50 ms"), "{e}");
    }

    #[tokio::test]
    async fn token_cache_nearly_expired_token_fails() {
        let source = Counting::new(Duration::from_secs(2));
        let cache = TokenCache::new(source, Duration::from_secs(5));
        let e = cache.token().await.unwrap_err();
        assert!(e.to_string().contains("expires in"), "{e}");
    }
}
