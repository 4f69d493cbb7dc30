//! Per-sender throttling: a token bucket per authenticated sender ([`sender_key`]) and hub, so
//! that one noisy sender cannot take the gateway or the hub from the others, and a sender
//! cannot get fresh buckets by naming other publishers or other hubs. Event Hubs throttles by throughput units and answers
//! `ServerBusy`; hubgate answers 429 with `Retry-After`.
//!
//! The buckets are `governor`'s keyed GCRA limiters (lock-free per key, no timer task). A
//! request costs one token per event (record). Buckets of principals idle long enough to be
//! full again are dropped now and then, so memory follows the active senders.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use crate::authz::{Principal, Resource};

/// `[[throttle]]`: the bucket every principal gets on `hub` (or on every hub without one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// The hub this applies to; absent: the default for hubs without their own entry.
    #[serde(default)]
    pub hub: Option<String>,
    /// Sustained events per second per principal.
    pub events_per_sec: u32,
    /// Events a principal may send at once (the bucket size); a request with more events is
    /// refused outright (413).
    pub burst: u32,
}

/// One bucket's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    per_sec: NonZeroU32,
    burst: NonZeroU32,
}

/// `[[throttle]]`, parsed and checked once, when the configuration is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<ThrottleConfig>")]
pub struct ThrottlePolicy {
    default: Option<Rate>,
    /// By lower-cased hub name.
    hubs: HashMap<String, Rate>,
}

impl TryFrom<Vec<ThrottleConfig>> for ThrottlePolicy {
    type Error = ThrottleConfigError;

    fn try_from(config: Vec<ThrottleConfig>) -> Result<Self, Self::Error> {
        let mut policy = Self::default();
        for c in config {
            let (Some(per_sec), Some(burst)) =
                (NonZeroU32::new(c.events_per_sec), NonZeroU32::new(c.burst))
            else {
                return Err(ThrottleConfigError::Zero);
            };
            let rate = Rate { per_sec, burst };
            let duplicate = match &c.hub {
                None => policy.default.replace(rate).is_some(),
                Some(hub) => {
                    crate::names::validate_hub(hub)?;
                    policy.hubs.insert(hub.to_ascii_lowercase(), rate).is_some()
                }
            };
            if duplicate {
                return Err(ThrottleConfigError::Duplicate(
                    c.hub.unwrap_or_else(|| "the default".into()),
                ));
            }
        }
        Ok(policy)
    }
}

impl ThrottlePolicy {
    /// Whether any bucket is configured.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.hubs.is_empty()
    }
}

/// Why a request was throttled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    #[error(
        "ServerBusy: this sender exceeded its rate on hub '{hub}'; retry after {} ms",
        retry_after.as_millis()
    )]
    Limited { hub: String, retry_after: Duration },
    #[error(
        "a request of {events} events exceeds the burst of {burst} events allowed on hub '{hub}'"
    )]
    TooLarge {
        hub: String,
        events: usize,
        burst: u32,
    },
}

impl ThrottleError {
    /// Whole seconds to wait, for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Self::Limited { retry_after, .. } => retry_after.as_secs_f64().ceil().max(1.0) as u64,
            Self::TooLarge { .. } => 0,
        }
    }
}

struct Bucket {
    limiter: DefaultKeyedRateLimiter<String>,
    burst: NonZeroU32,
}

/// The configured buckets.
pub struct Throttle {
    default: Option<Bucket>,
    hubs: HashMap<String, Bucket>,
    checks: AtomicU64,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("default", &self.default.as_ref().map(|b| b.burst))
            .field("hubs", &self.hubs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Throttle {
    /// No limits.
    fn default() -> Self {
        Self {
            default: None,
            hubs: HashMap::new(),
            checks: AtomicU64::new(0),
        }
    }
}

/// `[[throttle]]` entries that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleConfigError {
    #[error("throttle: events_per_sec and burst must be greater than 0")]
    Zero,
    #[error("throttle: {0}")]
    Hub(#[from] crate::names::NameError),
    #[error("throttle: two entries for {0}")]
    Duplicate(String),
}

/// How often (in checks) idle buckets are dropped.
const SHRINK_EVERY: u64 = 4096;

impl Throttle {
    /// Buckets for `policy` (an empty policy throttles nothing).
    pub fn new(policy: &ThrottlePolicy) -> Self {
        let bucket = |r: &Rate| Bucket {
            limiter: RateLimiter::keyed(Quota::per_second(r.per_sec).allow_burst(r.burst)),
            burst: r.burst,
        };
        Self {
            default: policy.default.as_ref().map(bucket),
            hubs: policy
                .hubs
                .iter()
                .map(|(hub, r)| (hub.clone(), bucket(r)))
                .collect(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes `events` tokens from the bucket of the sender of a request to `resource`.
    pub fn check(
        &self,
        principal: &Principal,
        resource: &Resource,
        events: usize,
    ) -> Result<(), ThrottleError> {
        // Resource segments are lower-cased: `hub[/publishers/name]`.
        let Some(hub) = resource.segments().first() else {
            return Ok(());
        };
        let Some(bucket) = self.hubs.get(hub).or(self.default.as_ref()) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SHRINK_EVERY == SHRINK_EVERY - 1 {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
        let too_large = || ThrottleError::TooLarge {
            hub: hub.clone(),
            events,
            burst: bucket.burst.get(),
        };
        let n = u32::try_from(events.max(1))
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(too_large)?;
        match bucket
            .limiter
            .check_key_n(&sender_key(principal, resource), n)
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(ThrottleError::Limited {
                hub: hub.clone(),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
            Err(_insufficient) => Err(too_large()),
        }
    }
}

/// Who sends, on which hub: names throttle buckets and scopes idempotency keys. The sender is
/// the authenticated credential, never a name the request chose: a publisher-bound SAS token
/// is its publisher; any other SAS token is its rule *and* scope (two hub tokens minted from
/// one namespace rule for different hubs are different senders); an OAuth token is its
/// tenant and subject. The hub is the request's (lower-cased, as resources are), so every
/// hub has buckets of its own also under the default `[[throttle]]`.
pub fn sender_key(principal: &Principal, resource: &Resource) -> String {
    let hub = resource.segments().first().map_or("", String::as_str);
    let sender = match (principal, principal.publisher()) {
        (_, Some((hub, publisher))) => format!("publisher:{hub}/{publisher}"),
        (Principal::Sas { rule, scope, .. }, None) => format!("rule:{rule}@{scope}"),
        (
            Principal::Jwt {
                subject, tenant, ..
            },
            None,
        ) => format!("oauth:{}/{subject}", tenant.as_deref().unwrap_or("-")),
        // A credential kind added later: its name is what identifies it.
        (other, None) => other.name(),
    };
    format!("{hub}|{sender}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Rights;

    fn sas(rule: &str) -> Principal {
        Principal::Sas {
            rule: rule.into(),
            rights: Rights::SEND,
            scope: Resource::namespace(),
            expires_at: u64::MAX,
        }
    }

    fn throttle(entries: &[(Option<&str>, u32, u32)]) -> Throttle {
        let config = entries
            .iter()
            .map(|(hub, rate, burst)| ThrottleConfig {
                hub: hub.map(str::to_owned),
                events_per_sec: *rate,
                burst: *burst,
            })
            .collect::<Vec<_>>();
        Throttle::new(&ThrottlePolicy::try_from(config).unwrap())
    }

    fn sas_scoped(rule: &str, scope: Resource) -> Principal {
        Principal::Sas {
            rule: rule.into(),
            rights: Rights::SEND,
            scope,
            expires_at: u64::MAX,
        }
    }

    #[test]
    fn throttle_burst_then_limited_per_publisher_ok() {
        let t = throttle(&[(None, 1, 10)]);
        let a = Resource::publisher("hub", "dev-a");
        let b = Resource::publisher("hub", "dev-b");
        let (pa, pb) = (sas_scoped("send", a.clone()), sas_scoped("send", b.clone()));
        assert!(t.check(&pa, &a, 10).is_ok());
        let e = t.check(&pa, &a, 1).unwrap_err();
        assert!(matches!(e, ThrottleError::Limited { .. }), "{e:?}");
        assert!(e.retry_after_secs() >= 1);
        assert!(
            t.check(&pb, &b, 10).is_ok(),
            "another publisher's token has its own bucket"
        );
        assert!(matches!(
            t.check(&pb, &b, 11).unwrap_err(),
            ThrottleError::TooLarge { burst: 10, .. }
        ));
    }

    #[test]
    fn throttle_publisher_name_rotation_fails() {
        // A hub-wide token throttled on the hub path gets no fresh bucket from made-up
        // publisher names: its bucket is the credential's.
        let t = throttle(&[(None, 1, 10)]);
        let hub_token = sas_scoped("send", Resource::hub("hub"));
        assert!(t.check(&hub_token, &Resource::hub("hub"), 10).is_ok());
        for fresh in ["a", "b", "c"] {
            let e = t.check(&hub_token, &Resource::publisher("hub", fresh), 1);
            assert!(
                matches!(e, Err(ThrottleError::Limited { .. })),
                "{fresh}: {e:?}"
            );
        }
    }

    #[test]
    fn throttle_one_hub_does_not_throttle_another_ok() {
        // Under the default entry each hub has its own buckets, for a publisher name used on
        // two hubs and for two hub tokens minted from one namespace rule.
        let t = throttle(&[(None, 1, 5)]);
        let on_a = sas_scoped("send", Resource::publisher("a", "dev"));
        let on_b = sas_scoped("send", Resource::publisher("b", "dev"));
        assert!(t.check(&on_a, &Resource::publisher("a", "dev"), 5).is_ok());
        assert!(t.check(&on_a, &Resource::publisher("a", "dev"), 1).is_err());
        assert!(t.check(&on_b, &Resource::publisher("b", "dev"), 5).is_ok());
        let (hub_a, hub_b) = (
            sas_scoped("send", Resource::hub("a")),
            sas_scoped("send", Resource::hub("b")),
        );
        assert!(t.check(&hub_a, &Resource::hub("a"), 5).is_ok());
        assert!(t.check(&hub_b, &Resource::hub("b"), 5).is_ok());
        // The same namespace-wide token on two hubs: a bucket per hub.
        let ns = sas("send");
        assert!(t.check(&ns, &Resource::hub("a"), 5).is_ok());
        assert!(t.check(&ns, &Resource::hub("b"), 5).is_ok());
        assert!(t.check(&ns, &Resource::hub("b"), 1).is_err());
    }

    #[test]
    fn throttle_per_hub_default_and_unthrottled_ok() {
        let t = throttle(&[(Some("slow"), 1, 1)]);
        let p = sas("send");
        assert!(t.check(&p, &Resource::hub("slow"), 1).is_ok());
        assert!(
            t.check(&p, &Resource::hub("SLOW"), 1).is_err(),
            "hub names are case-insensitive"
        );
        for _ in 0..100 {
            assert!(
                t.check(&p, &Resource::hub("fast"), 1000).is_ok(),
                "no default: unthrottled"
            );
        }
        // Rule-scoped tokens share the rule's bucket; another rule has its own.
        assert!(t.check(&sas("other"), &Resource::hub("slow"), 1).is_ok());
    }

    #[test]
    fn throttle_bad_config_fails() {
        let bad = |c: ThrottleConfig| ThrottlePolicy::try_from(vec![c]).unwrap_err().to_string();
        assert!(
            bad(ThrottleConfig {
                hub: None,
                events_per_sec: 0,
                burst: 1
            })
            .contains("greater than 0")
        );
        assert!(
            bad(ThrottleConfig {
                hub: Some("bad/hub".into()),
                events_per_sec: 1,
                burst: 1
            })
            .contains("throttle")
        );
        let twice = ThrottleConfig {
            hub: Some("h".into()),
            events_per_sec: 1,
            burst: 1,
        };
        assert!(
            ThrottlePolicy::try_from(vec![twice.clone(), twice])
                .unwrap_err()
                .to_string()
                .contains("two entries")
        );
    }
}
