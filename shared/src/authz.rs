//! Who may do what: rights, resources, principals, and the one [`authorize`] decision
//! that every route of every function uses.
//!
//! The model is Event Hubs': rights `Send`, `Listen`, `Manage` (Manage implies the other
//! two), granted by SAS rules scoped to the namespace or to one event hub. A token narrows
//! its rule's scope further (e.g. to one publisher); the request's resource must lie inside
//! both.

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bitflags::bitflags;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::config::RuleConfig;
use crate::sas::{SasError, SasKey, SasToken, normalize_host};

/// One right, as named in Event Hubs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Right {
    Send,
    Listen,
    Manage,
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Send => "Send",
            Self::Listen => "Listen",
            Self::Manage => "Manage",
        })
    }
}

bitflags! {
    /// A set of rights. Use [`Rights::grants`]: it applies "Manage implies Send and Listen".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Rights: u8 {
        const SEND = 1;
        const LISTEN = 2;
        const MANAGE = 4;
    }
}

impl From<Right> for Rights {
    fn from(r: Right) -> Self {
        match r {
            Right::Send => Self::SEND,
            Right::Listen => Self::LISTEN,
            Right::Manage => Self::MANAGE,
        }
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Self::empty(), |acc, r| acc | r.into())
    }
}

impl Rights {
    /// Whether this set grants `right` (Manage grants everything).
    pub fn grants(self, right: Right) -> bool {
        self.contains(Self::MANAGE) || self.contains(right.into())
    }

    /// The rights actually granted: Manage implies Send and Listen.
    pub fn effective(self) -> Rights {
        if self.contains(Self::MANAGE) {
            Self::all()
        } else {
            self
        }
    }

    /// Whether this set grants every right in `wanted`.
    pub fn grants_all(self, wanted: Rights) -> bool {
        self.contains(Self::MANAGE) || self.contains(wanted)
    }

    /// The rights as names, for responses and logs.
    pub fn names(self) -> Vec<Right> {
        [Right::Send, Right::Listen, Right::Manage]
            .into_iter()
            .filter(|r| self.contains((*r).into()))
            .collect()
    }
}

/// What a request acts on, as path segments below the namespace (`hub`,
/// `hub/publishers/p`, …). Compared case-insensitively, segment by segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    segments: Vec<String>,
}

/// The path segment under which Event Hubs names publishers.
pub const PUBLISHERS: &str = "publishers";

/// The path segment under which Event Hubs names consumer groups.
pub const CONSUMER_GROUPS: &str = "consumergroups";

impl Resource {
    /// The whole namespace (every hub).
    pub fn namespace() -> Self {
        Self { segments: vec![] }
    }

    /// One event hub (Kafka topic).
    pub fn hub(hub: &str) -> Self {
        Self {
            segments: vec![hub.to_lowercase()],
        }
    }

    /// One consumer group of a hub.
    pub fn consumer_group(hub: &str, consumer_group: &str) -> Self {
        Self {
            segments: vec![
                hub.to_lowercase(),
                CONSUMER_GROUPS.into(),
                consumer_group.to_lowercase(),
            ],
        }
    }

    /// One publisher on a hub.
    pub fn publisher(hub: &str, publisher: &str) -> Self {
        Self {
            segments: vec![
                hub.to_lowercase(),
                PUBLISHERS.into(),
                publisher.to_lowercase(),
            ],
        }
    }

    /// The lower-cased segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether `scope` is a segment prefix of this resource.
    pub(crate) fn is_within(&self, scope: &[String]) -> bool {
        scope.len() <= self.segments.len() && scope.iter().zip(&self.segments).all(|(a, b)| a == b)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            f.write_str("/")
        } else {
            f.write_str(&self.segments.join("/"))
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// A verified shared access signature.
    Sas {
        /// The SAS rule (`skn`) whose key signed the token.
        rule: String,
        /// The rule's rights.
        rights: Rights,
        /// Where the token may act: the narrower of the token's and the rule's scope.
        scope: Resource,
        /// Token expiry, Unix seconds.
        expires_at: u64,
    },
    /// A validated OAuth access token.
    Jwt {
        /// `oid` (or `sub`).
        subject: String,
        /// `tid`, when present.
        tenant: Option<String>,
        /// The group grants in force.
        policy: std::sync::Arc<crate::groups::GroupPolicy>,
        /// Which of the policy's grants the caller's groups hold.
        grants: u64,
        /// Token expiry, Unix seconds.
        expires_at: u64,
    },
}

impl Principal {
    /// A short name for logs and audit: never contains a credential.
    pub fn name(&self) -> String {
        match self {
            Self::Sas { rule, scope, .. } => format!("sas:{rule}@{scope}"),
            Self::Jwt {
                subject, tenant, ..
            } => {
                format!("jwt:{}/{subject}", tenant.as_deref().unwrap_or("-"))
            }
        }
    }

    /// The rights this principal holds (before scope is considered).
    pub fn rights(&self) -> Rights {
        match self {
            Self::Sas { rights, .. } => *rights,
            Self::Jwt { policy, grants, .. } => policy.rights(*grants),
        }
    }

    /// The publisher this principal is bound to, if its scope is one publisher.
    pub fn publisher(&self) -> Option<(&str, &str)> {
        match self {
            Self::Sas { scope, .. } => match scope.segments() {
                [hub, p, publisher] if p == PUBLISHERS => Some((hub, publisher)),
                _ => None,
            },
            Self::Jwt { .. } => None,
        }
    }
}

/// Why a request was refused; the text is safe to show a client. The HTTP layer maps a
/// credential problem to 401 (Event Hubs answers every authorization failure with 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("MissingToken: send 'Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…'")]
    Missing,
    #[error("MalformedToken: the Authorization header is not valid text")]
    NotText,
    #[error("UnsupportedScheme: bearer tokens are not configured on this gateway")]
    BearerNotConfigured,
    #[error("MalformedToken: use 'SharedAccessSignature …' or 'Bearer …'")]
    UnknownScheme,
    #[error(transparent)]
    Sas(#[from] SasError),
    #[error("InvalidSignature: the token's key name (skn) is not a rule of this namespace")]
    UnknownRule,
    #[error("InvalidAudience: the token is for another namespace")]
    WrongNamespace,
    #[error("InvalidAudience: the token's resource is outside its rule's scope")]
    OutsideRuleScope,
    #[error("InvalidAudience: the token does not cover '{0}'")]
    OutOfScope(String),
    #[error("Unauthorized access. '{0}' claim(s) are required")]
    MissingRight(Right),
    #[error("PublisherRevoked: publisher '{0}' is revoked")]
    Revoked(String),
    #[error("InvalidToken: {0}")]
    Jwt(#[from] crate::jwt::JwtError),
    #[error("Forbidden: the token's groups grant no '{0}' on '{1}'")]
    NotPermitted(Right, String),
    #[error("GroupsUnavailable: group membership could not be checked; try again")]
    GroupsUnavailable,
}

impl AuthError {
    /// Whether the request's credential itself is the problem (missing, invalid, expired,
    /// out of scope, lacking the right, revoked), as opposed to a valid bearer token whose
    /// groups refuse the request, or membership that could not be checked.
    pub fn is_credential_problem(&self) -> bool {
        !matches!(self, Self::NotPermitted(..) | Self::GroupsUnavailable)
    }

    /// Whether the client should be told `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn is_invalid_bearer(&self) -> bool {
        matches!(self, Self::Jwt(_))
    }
}

/// The one authorization decision: may `principal` exercise `right` on `resource`?
pub fn authorize(
    principal: &Principal,
    right: Right,
    resource: &Resource,
) -> Result<(), AuthError> {
    match principal {
        Principal::Sas { rights, scope, .. } => {
            if !resource.is_within(scope.segments()) {
                return Err(AuthError::OutOfScope(resource.to_string()));
            }
            if !rights.grants(right) {
                return Err(AuthError::MissingRight(right));
            }
            Ok(())
        }
        Principal::Jwt { policy, grants, .. } => {
            if policy.permits(*grants, right, resource) {
                Ok(())
            } else {
                Err(AuthError::NotPermitted(right, resource.to_string()))
            }
        }
    }
}

/// A SAS rule ready for verification.
#[derive(Debug, Clone)]
struct Rule {
    rights: Rights,
    scope: Vec<String>,
    keys: Vec<SasKey>,
}

/// Turns request credentials into a [`Principal`] using the configured rules.
#[derive(Debug, Clone)]
pub struct Authenticator {
    namespace: String,
    rules: HashMap<String, Rule>,
}

/// Header names that may carry a credential, in order of preference.
/// `ServiceBusAuthorization` is the Service Bus REST alternative to `Authorization`.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "servicebusauthorization"];

impl Authenticator {
    /// Builds the rule table for `namespace` from `rules`.
    pub fn new(namespace: &str, rules: &[RuleConfig]) -> Self {
        let rules = rules
            .iter()
            .map(|r| {
                let keys = std::iter::once(r.primary_key.clone())
                    .chain(r.secondary_key.clone())
                    .collect();
                let scope = r.hub.iter().map(|h| h.to_lowercase()).collect();
                (
                    r.name.clone(),
                    Rule {
                        rights: r.rights.iter().copied().collect(),
                        scope,
                        keys,
                    },
                )
            })
            .collect();
        Self {
            namespace: normalize_host(namespace),
            rules,
        }
    }

    /// Authenticates the request's credential.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = CREDENTIAL_HEADERS
            .iter()
            .find_map(|h| headers.get(*h))
            .ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotText)?.trim();
        let scheme = value.split(char::is_whitespace).next().unwrap_or_default();
        if scheme.eq_ignore_ascii_case(crate::sas::SCHEME) {
            self.authenticate_sas(value, unix_now())
        } else if scheme.eq_ignore_ascii_case("Bearer") {
            Err(AuthError::BearerNotConfigured)
        } else if value.is_empty() {
            Err(AuthError::Missing)
        } else {
            Err(AuthError::UnknownScheme)
        }
    }

    /// Verifies a `SharedAccessSignature …` token at time `now` (Unix seconds).
    pub fn authenticate_sas(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        let token = SasToken::parse(token)?;
        let rule = self
            .rules
            .get(token.key_name())
            .ok_or(AuthError::UnknownRule)?;
        token.verify(&rule.keys, now)?;
        if token.scope().host() != self.namespace {
            return Err(AuthError::WrongNamespace);
        }
        let token_scope = token.scope().segments();
        // The effective scope is the narrower of the two; they must nest.
        let scope = if starts_with(token_scope, &rule.scope) {
            token_scope.to_vec()
        } else if starts_with(&rule.scope, token_scope) {
            rule.scope.clone()
        } else {
            return Err(AuthError::OutsideRuleScope);
        };
        Ok(Principal::Sas {
            rule: token.key_name().to_owned(),
            rights: rule.rights,
            scope: Resource { segments: scope },
            expires_at: token.expiry(),
        })
    }
}

fn starts_with(long: &[String], prefix: &[String]) -> bool {
    long.len() >= prefix.len() && long.iter().zip(prefix).all(|(a, b)| a == b)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::test_config;
    use crate::sas::mint;

    fn auth() -> (Authenticator, Config) {
        let c = test_config();
        (Authenticator::new(&c.namespace, &c.rules), c)
    }

    fn token(c: &Config, rule: &str, uri: &str, expiry: u64) -> String {
        let r = c.rules.iter().find(|r| r.name == rule).unwrap();
        mint(uri, rule, &r.primary_key, expiry)
    }

    #[test]
    fn rights_effective_counts_implied_rights_ok() {
        assert_eq!(Rights::MANAGE.effective(), Rights::all());
        assert_eq!(Rights::LISTEN.effective(), Rights::LISTEN);
        assert!(Rights::MANAGE.grants_all(Rights::SEND | Rights::LISTEN));
        assert!(!Rights::SEND.grants_all(Rights::SEND | Rights::LISTEN));
    }

    #[test]
    fn rights_manage_implies_send_listen_ok() {
        let m = Rights::MANAGE;
        assert!(m.grants(Right::Send) && m.grants(Right::Listen) && m.grants(Right::Manage));
        let s = Rights::SEND;
        assert!(s.grants(Right::Send) && !s.grants(Right::Listen) && !s.grants(Right::Manage));
        let l = Rights::LISTEN;
        assert!(!l.grants(Right::Send) && l.grants(Right::Listen));
    }

    #[test]
    fn authorize_scope_prefix_by_segment_ok() {
        let (a, c) = auth();
        let t = token(&c, "send", "https://ns.test/hub/publishers/dev", 100);
        let p = a.authenticate_sas(&t, 1).unwrap();
        assert_eq!(
            authorize(&p, Right::Send, &Resource::publisher("hub", "dev")),
            Ok(())
        );
        assert_eq!(
            authorize(&p, Right::Send, &Resource::publisher("HUB", "DEV")),
            Ok(())
        );
        assert!(matches!(
            authorize(&p, Right::Send, &Resource::publisher("hub", "devx")),
            Err(AuthError::OutOfScope(_))
        ));
        assert!(matches!(
            authorize(&p, Right::Send, &Resource::hub("hub")),
            Err(AuthError::OutOfScope(_))
        ));
        assert!(matches!(
            authorize(&p, Right::Send, &Resource::publisher("hub2", "dev")),
            Err(AuthError::OutOfScope(_))
        ));
        assert_eq!(p.publisher(), Some(("hub", "dev")));
    }

    #[test]
    fn authorize_missing_right_fails() {
        let (a, c) = auth();
        let t = token(&c, "listen", "https://ns.test/hub", 100);
        let p = a.authenticate_sas(&t, 1).unwrap();
        assert_eq!(authorize(&p, Right::Listen, &Resource::hub("hub")), Ok(()));
        assert_eq!(
            authorize(&p, Right::Send, &Resource::hub("hub")),
            Err(AuthError::MissingRight(Right::Send))
        );
        assert_eq!(
            authorize(&p, Right::Manage, &Resource::hub("hub")),
            Err(AuthError::MissingRight(Right::Manage))
        );
    }

    #[test]
    fn authenticate_scheme_and_host_variants_ok() {
        let (a, c) = auth();
        for uri in [
            "sb://NS.TEST/hub",
            "amqps://ns.test:5671/hub",
            "ns.test/hub",
            "http://ns.test/Hub/",
        ] {
            let p = a
                .authenticate_sas(&token(&c, "manage", uri, 100), 1)
                .unwrap();
            assert_eq!(
                authorize(&p, Right::Manage, &Resource::hub("hub")),
                Ok(()),
                "{uri}"
            );
        }
    }

    #[test]
    fn authenticate_wrong_namespace_or_rule_fails() {
        let (a, c) = auth();
        let t = token(&c, "manage", "https://other.test/hub", 100);
        assert_eq!(a.authenticate_sas(&t, 1), Err(AuthError::WrongNamespace));
        let t = token(&c, "manage", "https://ns.test/hub", 100).replace("skn=manage", "skn=nope");
        assert_eq!(a.authenticate_sas(&t, 1), Err(AuthError::UnknownRule));
    }

    #[test]
    fn authenticate_hub_rule_limits_token_scope_ok() {
        let (a, c) = auth();
        // The rule is scoped to hub "only"; a namespace-wide token narrows to it.
        let t = token(&c, "only-hub", "https://ns.test/", 100);
        let p = a.authenticate_sas(&t, 1).unwrap();
        assert_eq!(authorize(&p, Right::Send, &Resource::hub("only")), Ok(()));
        assert!(authorize(&p, Right::Send, &Resource::hub("other")).is_err());
        // A token for another hub signed with that rule's key is refused outright.
        let t = token(&c, "only-hub", "https://ns.test/other", 100);
        assert_eq!(a.authenticate_sas(&t, 1), Err(AuthError::OutsideRuleScope));
    }

    #[test]
    fn authenticate_headers_ok_and_fails() {
        let (a, c) = auth();
        let mut h = HeaderMap::new();
        assert_eq!(a.authenticate(&h), Err(AuthError::Missing));
        h.insert("authorization", "Bearer x".parse().unwrap());
        assert_eq!(a.authenticate(&h), Err(AuthError::BearerNotConfigured));
        h.insert("authorization", "Basic x".parse().unwrap());
        assert_eq!(a.authenticate(&h), Err(AuthError::UnknownScheme));
        let t = token(&c, "manage", "https://ns.test/", u64::MAX / 2);
        h.remove("authorization");
        h.insert("servicebusauthorization", t.parse().unwrap());
        assert!(a.authenticate(&h).is_ok());
    }
}
