//! Who may do what: rights, resources, principals, and the one [`authorize`] decision
//! that every route of every function uses.
//!
//! The model is Event Hubs': rights `Send`, `Listen`, `Manage` (Manage implies the other
//! two), granted by SAS rules scoped to the namespace or to one event hub. A token narrows
//! its rule's scope further (e.g. to one publisher); the request's resource must lie inside
//! both.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

pub use crate::rights::{CONSUMER_GROUPS, PUBLISHERS, Resource, Right, Rights};
use crate::sas::{SasError, SasKey, SasToken, normalize_host};

/// A named SAS rule: rights, scope, two keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The key name (`skn`).
    pub name: String,
    /// `Send`, `Listen`, `Manage` (Manage implies the others).
    pub rights: Vec<Right>,
    /// Restricts the rule to one hub; absent: the whole namespace.
    #[serde(default)]
    pub hub: Option<String>,
    /// Tokens are minted with this key.
    pub primary_key: SasKey,
    /// Also accepted for verification (key rotation without downtime).
    #[serde(default)]
    pub secondary_key: Option<SasKey>,
}

impl RuleConfig {
    /// The rule's rights as a set.
    pub fn rights(&self) -> Rights {
        self.rights.iter().copied().collect()
    }

    /// Whether the rule applies to `hub` (`None`: the whole namespace).
    pub fn covers(&self, hub: Option<&str>) -> bool {
        match (&self.hub, hub) {
            (None, _) => true,
            (Some(rh), Some(h)) => rh.eq_ignore_ascii_case(h),
            (Some(_), None) => false,
        }
    }
}

/// The rule to sign a token for `wanted` on `hub` (or the namespace) with: the one with the
/// fewest rights that grants them there, hub rules before namespace rules (least privilege).
pub fn signing_rule<'a>(
    rules: &'a [RuleConfig],
    hub: Option<&str>,
    wanted: Rights,
) -> Option<&'a RuleConfig> {
    rules
        .iter()
        .filter(|r| r.covers(hub) && r.rights().grants_all(wanted))
        .min_by_key(|r| (r.rights().effective().bits().count_ones(), r.hub.is_none()))
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
    /// A client certificate verified at the TLS handshake and mapped by
    /// [`crate::certs::certificate_principal`].
    Certificate {
        /// The mapped field's value, ASCII lower-case.
        identity: String,
        /// The rights the mapping grants (Send for a device).
        rights: Rights,
        /// The publisher (a device) or the hub (a service).
        scope: Resource,
        /// The certificate's `notAfter`, Unix seconds.
        expires_at: u64,
    },
}

/// The principal's name ([`Principal::name`]): written on demand, e.g. into a log line
/// only when it is written.
impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sas { rule, scope, .. } => write!(f, "sas:{rule}@{scope}"),
            Self::Certificate {
                identity, scope, ..
            } => write!(f, "cert:{identity}@{scope}"),
            Self::Jwt {
                subject, tenant, ..
            } => write!(f, "jwt:{}/{subject}", tenant.as_deref().unwrap_or("-")),
        }
    }
}

impl Principal {
    /// A short name for logs and audit: never contains a credential.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// When the credential stops being valid, Unix seconds (token expiry, certificate
    /// `notAfter`).
    pub fn expires_at(&self) -> u64 {
        match self {
            Self::Sas { expires_at, .. }
            | Self::Jwt { expires_at, .. }
            | Self::Certificate { expires_at, .. } => *expires_at,
        }
    }

    /// The rights this principal holds (before scope is considered).
    pub fn rights(&self) -> Rights {
        match self {
            Self::Sas { rights, .. } | Self::Certificate { rights, .. } => *rights,
            Self::Jwt { policy, grants, .. } => policy.rights(*grants),
        }
    }

    /// The publisher this principal is bound to, if its scope is one publisher.
    pub fn publisher(&self) -> Option<(&str, &str)> {
        match self {
            Self::Sas { scope, .. } | Self::Certificate { scope, .. } => match scope.segments() {
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
    /// The log's words; a client is told what a bad signature gets ([`AuthError::client_text`]),
    /// so a caller without a valid credential cannot learn which rule names exist.
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
    /// A client certificate that chains to the configured CA but stands for no caller.
    #[error("UnmappedCertificate: the client certificate is not accepted here: {0}")]
    CertificateNotMapped(String),
    /// The connection's client certificate expired while the connection stayed open.
    #[error("ExpiredCertificate: the client certificate has expired; reconnect with a valid one")]
    CertificateExpired,
}

impl AuthError {
    /// What a client is told. The same as [`Display`](std::fmt::Display) except for an
    /// unknown rule name, which reads as a bad signature.
    pub fn client_text(&self) -> String {
        match self {
            Self::UnknownRule => SasError::InvalidSignature.to_string(),
            other => other.to_string(),
        }
    }

    /// Whether the request's credential itself is the problem (missing, invalid, expired,
    /// out of scope, lacking the right, revoked), as opposed to a valid bearer token whose
    /// groups refuse the request, or membership that could not be checked.
    pub fn is_credential_problem(&self) -> bool {
        !matches!(self, Self::NotPermitted(..) | Self::GroupsUnavailable)
    }

    /// Why, as one of [`AuthError::REASONS`]: a bounded label for metrics (never a name
    /// from the request).
    pub fn reason(&self) -> &'static str {
        use crate::jwt::JwtError as J;
        match self {
            Self::Missing => "missing_token",
            Self::NotText | Self::UnknownScheme => "malformed_token",
            Self::BearerNotConfigured => "unsupported_scheme",
            Self::Sas(SasError::InvalidSignature) | Self::UnknownRule => "invalid_signature",
            Self::Sas(SasError::Expired) => "expired_token",
            Self::Sas(SasError::BadResource)
            | Self::WrongNamespace
            | Self::OutsideRuleScope
            | Self::OutOfScope(_) => "invalid_audience",
            Self::Sas(_) => "malformed_token",
            Self::MissingRight(_) => "missing_right",
            Self::Revoked(_) => "revoked",
            Self::Jwt(J::Expired) => "expired_token",
            Self::Jwt(J::KeysUnavailable) => "keys_unavailable",
            Self::Jwt(_) => "invalid_token",
            Self::NotPermitted(..) => "not_permitted",
            Self::GroupsUnavailable => "groups_unavailable",
            Self::CertificateNotMapped(_) => "unmapped_certificate",
            Self::CertificateExpired => "expired_certificate",
        }
    }

    /// Every value [`AuthError::reason`] returns.
    pub const REASONS: [&str; 14] = [
        "missing_token",
        "malformed_token",
        "unsupported_scheme",
        "invalid_signature",
        "expired_token",
        "invalid_audience",
        "missing_right",
        "revoked",
        "keys_unavailable",
        "invalid_token",
        "not_permitted",
        "groups_unavailable",
        "unmapped_certificate",
        "expired_certificate",
    ];

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
        Principal::Sas { rights, scope, .. } | Principal::Certificate { rights, scope, .. } => {
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
pub const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "servicebusauthorization"];

impl Authenticator {
    /// Builds the rule table for `namespace` from `rules`.
    pub fn new(namespace: &str, rules: &[RuleConfig]) -> Self {
        let rules = rules
            .iter()
            .map(|r| {
                let keys = std::iter::once(r.primary_key.clone())
                    .chain(r.secondary_key.clone())
                    .collect();
                let scope = r.hub.iter().map(|h| crate::names::fold(h)).collect();
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

    /// Authenticates the request's credential: the value of the first of
    /// [`CREDENTIAL_HEADERS`] the request has, if any.
    pub fn authenticate(&self, value: Option<&[u8]>) -> Result<Principal, AuthError> {
        let value = value.ok_or(AuthError::Missing)?;
        let value = std::str::from_utf8(value)
            .ok()
            .filter(|v| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
            .ok_or(AuthError::NotText)?
            .trim();
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
        let Some(rule) = self.rules.get(token.key_name()) else {
            // The same work as for a known rule, so that the answer's timing does not tell
            // either (its result is a bad signature whatever the token says).
            let _ = token.verify(std::iter::once(unknown_rule_key()), now);
            return Err(AuthError::UnknownRule);
        };
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
            scope: Resource::from_segments(scope),
            expires_at: token.expiry(),
        })
    }
}

/// A key no rule has, checked against tokens that name an unknown rule.
fn unknown_rule_key() -> &'static SasKey {
    static KEY: std::sync::OnceLock<SasKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        SasKey::new("hubgate: a key for token key names that are no rule of this namespace")
            .unwrap_or_else(|_| unreachable!("the text is longer than MIN_KEY_LEN"))
    })
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
    use crate::sas::mint;
    use crate::testing::{Config, test_config};

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
    fn scope_case_folding_is_ascii_only_fails() {
        // U+212A KELVIN SIGN lower-cases to ASCII 'k' under Unicode rules: a token signed for
        // "\u{212A}afka" must not act on hub "kafka" (nor a publisher on its ASCII twin).
        let (a, c) = auth();
        for (uri, resource) in [
            ("https://ns.test/%E2%84%AAAFKA", Resource::hub("kafka")),
            (
                "https://ns.test/hub/publishers/%E2%84%AAelvin",
                Resource::publisher("hub", "kelvin"),
            ),
        ] {
            let p = a
                .authenticate_sas(&token(&c, "manage", uri, 100), 1)
                .unwrap();
            assert_eq!(
                authorize(&p, Right::Send, &resource),
                Err(AuthError::OutOfScope(resource.to_string())),
                "{uri}"
            );
        }
        assert_eq!(crate::names::fold("\u{212A}AFKA"), "\u{212A}afka");
        assert_eq!(Resource::hub("\u{212A}AFKA").segments(), ["\u{212A}afka"]);
    }

    /// The ways a publisher name reaches hubgate in a path: `encodeURIComponent`, and the
    /// minimal encoding of a URL library (only what a path segment cannot hold as is).
    fn path_encodings(name: &str) -> [String; 2] {
        use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
        const PATH_SEGMENT: &AsciiSet = &CONTROLS
            .add(b' ')
            .add(b'"')
            .add(b'#')
            .add(b'%')
            .add(b'/')
            .add(b'<')
            .add(b'>')
            .add(b'?')
            .add(b'`')
            .add(b'{')
            .add(b'}');
        [
            crate::sas::encode_uri_component(name),
            utf8_percent_encode(name, PATH_SEGMENT).to_string(),
        ]
    }

    /// The tokens the SDKs mint for publisher `name`: `@azure/core-amqp` and the CLI
    /// (`encodeURIComponent` of the resource URI) and `azure-eventhub` (`quote_plus`, a
    /// space is `+`), for the URI with the segment encoded, and, when the name holds no `%`
    /// (which a raw URI would make an escape), for the URI with the name as typed.
    fn sdk_tokens(c: &Config, hub: &str, name: &str) -> Vec<String> {
        let r = c.rules.iter().find(|r| r.name == "send").unwrap();
        let mut uris = vec![crate::sas::resource_uri(
            &c.namespace,
            [hub, PUBLISHERS, name],
        )];
        if !name.contains(['%', '?', '#']) {
            uris.push(format!("https://{}/{hub}/{PUBLISHERS}/{name}", c.namespace));
        }
        let mut tokens = Vec::new();
        for uri in uris {
            tokens.push(mint(&uri, "send", &r.primary_key, 100));
            let core_amqp = mint(&uri, "send", &r.primary_key, 100);
            let (sr, rest) = core_amqp
                .strip_prefix("SharedAccessSignature sr=")
                .unwrap()
                .split_once('&')
                .unwrap();
            // Python's quote_plus differs from encodeURIComponent in `+` for a space and in
            // what it leaves alone; the signature covers the `sr` as sent, so sign again.
            let plus = sr.replace("%20", "+");
            let sig = r.primary_key.sign(format!("{plus}\n100").as_bytes());
            let sig = crate::sas::encode_uri_component(&base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                sig,
            ));
            let se_skn = rest.split_once("&se=").unwrap().1;
            tokens.push(format!(
                "SharedAccessSignature sr={plus}&sig={sig}&se={se_skn}"
            ));
        }
        tokens
    }

    proptest::proptest! {
        /// One publisher, one name: every name the SDKs can mint, sent in any case and
        /// either path encoding, is the same canonical name in the path's parameters (which
        /// the proxy writes as record key and `x-opt-publisher`, and the revocation list
        /// keys), the route's resource and the token's scope.
        #[test]
        fn publisher_path_scope_and_key_agree_ok(
            name in "[^/\\p{Cc}]{1,40}",
            upper in proptest::bool::ANY,
        ) {
            proptest::prop_assume!(name != "." && name != "..");
            let (a, c) = auth();
            let canonical = crate::names::publisher(&name).unwrap();
            let typed = if upper { name.to_ascii_uppercase() } else { name.clone() };
            for encoded in path_encodings(&typed) {
                let path = format!("/hub/publishers/{encoded}/messages");
                let crate::routes::Lookup::Found(route, raw) = crate::routes::lookup("POST", &path) else {
                    panic!("{path} not found");
                };
                let params = raw.parse().unwrap();
                proptest::prop_assert_eq!(params.publisher.as_deref(), Some(canonical.as_str()));
                let resource = route.resource(&params).unwrap();
                proptest::prop_assert_eq!(&resource.segments()[2], &canonical);
                for token in sdk_tokens(&c, "hub", &name) {
                    let p = a.authenticate_sas(&token, 1).unwrap();
                    proptest::prop_assert_eq!(p.publisher(), Some(("hub", canonical.as_str())), "{}", token);
                    proptest::prop_assert_eq!(authorize(&p, Right::Send, &resource), Ok(()));
                }
            }
        }
    }

    #[test]
    fn unknown_rule_tells_a_client_what_a_bad_signature_does_ok() {
        let (a, c) = auth();
        let good = token(&c, "manage", "https://ns.test/hub", 100);
        let unknown_rule = good.replace("skn=manage", "skn=nope");
        let sig_at = good.find("sig=").unwrap() + 4;
        let mut bad_sig = good.clone();
        bad_sig.replace_range(sig_at..sig_at + 4, "AAAA");
        let unknown = a.authenticate_sas(&unknown_rule, 1).unwrap_err();
        let forged = a.authenticate_sas(&bad_sig, 1).unwrap_err();
        assert_eq!(forged, AuthError::Sas(SasError::InvalidSignature));
        assert_eq!(unknown.client_text(), forged.client_text());
        // The log still says which.
        assert_ne!(unknown.to_string(), forged.to_string());
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
        assert_eq!(a.authenticate(None), Err(AuthError::Missing));
        assert_eq!(a.authenticate(Some(b"")), Err(AuthError::Missing));
        assert_eq!(
            a.authenticate(Some(b"Bearer x")),
            Err(AuthError::BearerNotConfigured)
        );
        assert_eq!(
            a.authenticate(Some(b"Basic x")),
            Err(AuthError::UnknownScheme)
        );
        assert_eq!(a.authenticate(Some(b"\xff")), Err(AuthError::NotText));
        let t = token(&c, "manage", "https://ns.test/", u64::MAX / 2);
        assert!(a.authenticate(Some(t.as_bytes())).is_ok());
    }
}
