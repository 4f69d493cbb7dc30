//! Event Hubs / Service Bus shared access signatures: parse, verify, mint.
//!
//! Implements the algorithm of "Authenticate access to Event Hubs resources using shared
//! access signatures" (learn.microsoft.com/azure/event-hubs/authenticate-shared-access-signature):
//!
//! ```text
//! SharedAccessSignature sr=<url-encoded resource URI>&sig=<url-encoded base64 HMAC-SHA256>&se=<unix expiry>&skn=<rule name>
//! sig = base64(HMAC-SHA256(key = UTF-8 bytes of the key text, msg = raw sr + "\n" + raw se))
//! ```
//!
//! Two details make this byte-exact with every Azure SDK (see `../shared/vectors/`):
//!
//! * the key **text** is the HMAC key; it is never base64-decoded;
//! * the signature covers the **raw** `sr` substring exactly as it appears in the token.
//!   The SDKs encode `sr` differently (`+` or `%20` for a space, …), so a decoded `sr`
//!   is never re-encoded for verification. The decoded form is used only for the scope.
//!
//! Verification compares MACs with [`Mac::verify_slice`] (constant time), and tries the
//! rule's primary and secondary key so keys can be rotated without downtime.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Longest `SharedAccessSignature` header accepted, in bytes. Real tokens are a few hundred.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The scheme word that starts every token.
pub const SCHEME: &str = "SharedAccessSignature";

/// Shortest key text accepted (a generated Azure key is 44 base64 characters).
pub const MIN_KEY_LEN: usize = 32;

/// The characters JavaScript's `encodeURIComponent` leaves alone:
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )`. Everything else is percent-encoded as UTF-8.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Encodes like JavaScript's `encodeURIComponent` (what `@azure/core-amqp` does to `sr`).
pub fn encode_uri_component(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

/// The resource URI of a token for `segments` under `namespace` (`https://ns/` for the
/// namespace, `https://ns/hub`, `https://ns/hub/publishers/name`): each segment
/// percent-encoded like `encodeURIComponent`, so [`Scope::parse`], which decodes each
/// segment once, gives the segments back whatever characters they hold (`%`, `?`, `#`,
/// spaces, non-ASCII).
pub fn resource_uri<'a>(namespace: &str, segments: impl IntoIterator<Item = &'a str>) -> String {
    let mut uri = format!("https://{namespace}/");
    for (i, segment) in segments.into_iter().enumerate() {
        if i > 0 {
            uri.push('/');
        }
        uri.push_str(&encode_uri_component(segment));
    }
    uri
}

/// Why a token was rejected. Every variant is an authentication failure (HTTP 401); the
/// `Display` text is safe to show a client: it never contains the token, a key or a MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SasError {
    #[error("MalformedToken: the SharedAccessSignature is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("MalformedToken: the credential is not a SharedAccessSignature")]
    NotSas,
    #[error("MalformedToken: the SharedAccessSignature field '{0}' has no '='")]
    FieldWithoutValue(String),
    #[error("MalformedToken: the SharedAccessSignature has an unknown field")]
    UnknownField,
    #[error("MalformedToken: the SharedAccessSignature field '{0}' is missing")]
    MissingField(&'static str),
    #[error("MalformedToken: the SharedAccessSignature field '{0}' is empty")]
    EmptyField(&'static str),
    #[error("MalformedToken: the SharedAccessSignature field '{0}' appears more than once")]
    DuplicateField(&'static str),
    #[error("MalformedToken: 'se' must be a Unix time in seconds")]
    BadExpiry,
    #[error("MalformedToken: 'sig' is not a base64 HMAC-SHA256")]
    BadSignatureEncoding,
    #[error("MalformedToken: 'skn' is not valid UTF-8")]
    BadKeyName,
    #[error("InvalidAudience: 'sr' is not a valid resource URI")]
    BadResource,
    #[error("InvalidSignature: the token has an invalid signature")]
    InvalidSignature,
    #[error("ExpiredToken: the token is expired")]
    Expired,
}

/// A SAS key: the key **text** (never base64-decoded). Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct SasKey(Zeroizing<String>);

impl TryFrom<String> for SasKey {
    type Error = KeyError;
    fn try_from(text: String) -> Result<Self, KeyError> {
        Self::new(text)
    }
}

impl SasKey {
    /// Wraps key text; rejects keys shorter than [`MIN_KEY_LEN`].
    pub fn new(text: impl Into<String>) -> Result<Self, KeyError> {
        let text = Zeroizing::new(text.into());
        if text.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort);
        }
        Ok(Self(text))
    }

    /// A new random 256-bit key, base64-encoded like the keys Azure generates.
    pub fn generate() -> Result<Self, KeyError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|_| KeyError::Random)?;
        Ok(Self(Zeroizing::new(BASE64.encode(raw.as_ref()))))
    }

    /// The key text, for writing a new key out (operator CLI, rotation). Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        // documented infallible: Hmac::new_from_slice takes any length
        HmacSha256::new_from_slice(self.0.as_bytes()).expect("HMAC takes keys of any length")
    }

    pub(crate) fn sign(&self, string_to_sign: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(string_to_sign);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SasKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasKey([redacted])")
    }
}

/// A key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(
        "a SAS key must be at least {MIN_KEY_LEN} characters (use `hubgate key` to generate one)"
    )]
    TooShort,
    #[error("the operating system's random number generator failed")]
    Random,
}

/// Where a token may be used: a host and the decoded, lower-cased path segments of `sr`.
///
/// Segments, not strings, are compared: a token for `hub/publishers/a` covers
/// `hub/publishers/a` and anything below it, never `hub/publishers/ab`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    host: String,
    segments: Vec<String>,
}

impl Scope {
    /// Parses a (once-decoded) resource URI: `[scheme://]host[:port][/seg/seg…][/]`.
    ///
    /// The scheme, if any, must be `sb`, `amqps`, `https` or `http` and is ignored. Each
    /// path segment is percent-decoded once more (URI path rules, `+` is literal), so
    /// `…/publishers/dev%20ice%2F01` names the one publisher `dev ice/01`.
    pub fn parse(uri: &str) -> Result<Self, SasError> {
        let rest = match uri.split_once("://") {
            Some((scheme, rest)) => {
                const SCHEMES: [&str; 4] = ["sb", "amqps", "https", "http"];
                if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
                    return Err(SasError::BadResource);
                }
                rest
            }
            None => uri,
        };
        if rest.contains(['?', '#']) || rest.chars().any(char::is_control) {
            return Err(SasError::BadResource);
        }
        let mut parts = rest.split('/');
        let host = parts.next().map(normalize_host).unwrap_or_default();
        // One `:port` is dropped; a colon left over (`ns:1:2`, found by the fuzzer) makes
        // no host name, and would change if normalized again.
        if host.is_empty() || host.contains(':') {
            return Err(SasError::BadResource);
        }
        let mut segments: Vec<&str> = parts.collect();
        if segments.last() == Some(&"") {
            segments.pop(); // one trailing slash: `https://ns/` is the namespace
        }
        let segments = segments
            .into_iter()
            .map(|s| {
                if s.is_empty() {
                    return Err(SasError::BadResource);
                }
                let decoded = percent_decode_str(s)
                    .decode_utf8()
                    .map_err(|_| SasError::BadResource)?;
                if decoded.is_empty() || decoded.chars().any(char::is_control) {
                    return Err(SasError::BadResource);
                }
                Ok(crate::names::fold(&decoded))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { host, segments })
    }

    /// The host, lower-cased, without a port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The decoded, lower-cased path segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

/// Lower-cases a host and drops a `:port` suffix.
pub(crate) fn normalize_host(host: &str) -> String {
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    host.to_ascii_lowercase()
}

/// A parsed, not yet verified, `SharedAccessSignature` token.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken {
    /// `raw sr + "\n" + raw se`: exactly the bytes the signer signed.
    string_to_sign: String,
    sig: [u8; 32],
    key_name: String,
    expiry: u64,
    scope: Scope,
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasToken")
            .field("key_name", &self.key_name)
            .field("expiry", &self.expiry)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl SasToken {
    /// Parses the value of an `Authorization` header.
    ///
    /// Field names are case-insensitive and may come in any order; values are trimmed.
    /// Missing, empty, duplicate and unknown fields are rejected.
    pub fn parse(header: &str) -> Result<Self, SasError> {
        if header.len() > MAX_TOKEN_LEN {
            return Err(SasError::TooLong);
        }
        let header = header.trim();
        let body = match header.split_once(char::is_whitespace) {
            Some((scheme, body)) if scheme.eq_ignore_ascii_case(SCHEME) => body.trim(),
            _ => return Err(SasError::NotSas),
        };

        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for field in body.split('&') {
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| SasError::FieldWithoutValue(truncate_for_message(field.trim())))?;
            let name = name.trim();
            let is = |known: &str| name.eq_ignore_ascii_case(known);
            let (slot, name) = if is("sr") {
                (&mut sr, "sr")
            } else if is("sig") {
                (&mut sig, "sig")
            } else if is("se") {
                (&mut se, "se")
            } else if is("skn") {
                (&mut skn, "skn")
            } else {
                return Err(SasError::UnknownField);
            };
            if slot.is_some() {
                return Err(SasError::DuplicateField(name));
            }
            let value = value.trim();
            if value.is_empty() {
                return Err(SasError::EmptyField(name));
            }
            *slot = Some(value);
        }
        let sr = sr.ok_or(SasError::MissingField("sr"))?;
        let sig = sig.ok_or(SasError::MissingField("sig"))?;
        let se = se.ok_or(SasError::MissingField("se"))?;
        let skn = skn.ok_or(SasError::MissingField("skn"))?;

        if se.len() > 20 || !se.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SasError::BadExpiry);
        }
        let expiry: u64 = se.parse().map_err(|_| SasError::BadExpiry)?;

        // `sig` is base64 (`+ / =`), percent-encoded by the SDKs; a literal `+` stays `+`.
        let sig_b64 = percent_decode_str(sig)
            .decode_utf8()
            .map_err(|_| SasError::BadSignatureEncoding)?;
        let sig: [u8; 32] = BASE64
            .decode(sig_b64.as_bytes())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(SasError::BadSignatureEncoding)?;

        let key_name = form_decode(skn).ok_or(SasError::BadKeyName)?;
        let scope = Scope::parse(&form_decode(sr).ok_or(SasError::BadResource)?)?;

        let mut string_to_sign = String::with_capacity(sr.len() + 1 + se.len());
        string_to_sign.push_str(sr);
        string_to_sign.push('\n');
        string_to_sign.push_str(se);

        Ok(Self {
            string_to_sign,
            sig,
            key_name,
            expiry,
            scope,
        })
    }

    /// The name of the rule (`skn`) whose key signed the token.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// Expiry (`se`), Unix seconds.
    pub fn expiry(&self) -> u64 {
        self.expiry
    }

    /// The resource the token is scoped to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Checks the signature against each key (constant-time compare), then the expiry.
    ///
    /// The token is expired from the second `se` on: valid while `now < se`.
    pub fn verify<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k SasKey>,
        now_unix: u64,
    ) -> Result<(), SasError> {
        let signed = keys.into_iter().any(|key| {
            let mut mac = key.mac();
            mac.update(self.string_to_sign.as_bytes());
            mac.verify_slice(&self.sig).is_ok()
        });
        if !signed {
            return Err(SasError::InvalidSignature);
        }
        if now_unix >= self.expiry {
            return Err(SasError::Expired);
        }
        Ok(())
    }
}

/// Form-decodes (`+` is a space, then percent-decoding), as every SDK's `sr` needs.
fn form_decode(s: &str) -> Option<String> {
    let spaced: std::borrow::Cow<'_, str> = if s.contains('+') {
        s.replace('+', " ").into()
    } else {
        s.into()
    };
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn truncate_for_message(s: &str) -> String {
    s.chars().take(16).collect()
}

/// Mints a token for `resource_uri` exactly as `@azure/core-amqp` 4.5.1 does:
/// `sr` encoded like `encodeURIComponent`, fields in the order `sr, sig, se, skn`.
pub fn mint(resource_uri: &str, key_name: &str, key: &SasKey, expiry_unix: u64) -> String {
    let sr = encode_uri_component(resource_uri);
    let se = expiry_unix.to_string();
    let mut string_to_sign = String::with_capacity(sr.len() + 1 + se.len());
    string_to_sign.push_str(&sr);
    string_to_sign.push('\n');
    string_to_sign.push_str(&se);
    let sig = BASE64.encode(key.sign(string_to_sign.as_bytes()));
    format!(
        "{SCHEME} sr={sr}&sig={}&se={se}&skn={}",
        encode_uri_component(&sig),
        encode_uri_component(key_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const OTHER_KEY: &str = "r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo=";

    fn key(k: &str) -> SasKey {
        SasKey::new(k).unwrap()
    }

    #[test]
    fn parse_fields_any_order_and_case_ok() {
        let t = mint("https://ns/hub", "Rule", &key(KEY), 100);
        let body = t.strip_prefix("SharedAccessSignature ").unwrap();
        let mut fields: Vec<&str> = body.split('&').collect();
        fields.reverse();
        let shuffled = format!(
            "sharedaccesssignature   {}",
            fields
                .iter()
                .map(|f| {
                    let (n, v) = f.split_once('=').unwrap();
                    format!(" {}= {} ", n.to_uppercase(), v)
                })
                .collect::<Vec<_>>()
                .join("&")
        );
        let parsed = SasToken::parse(&shuffled).unwrap();
        assert_eq!(parsed.key_name(), "Rule");
        parsed.verify([&key(KEY)], 99).unwrap();
    }

    #[test]
    fn parse_missing_empty_duplicate_unknown_fails() {
        let ok = "SharedAccessSignature sr=a&sig=AAAA&se=1&skn=k";
        assert!(matches!(
            SasToken::parse(ok),
            Err(SasError::BadSignatureEncoding)
        ));
        let cases = [
            (
                "SharedAccessSignature sig=x&se=1&skn=k",
                SasError::MissingField("sr"),
            ),
            (
                "SharedAccessSignature sr=a&se=1&skn=k",
                SasError::MissingField("sig"),
            ),
            (
                "SharedAccessSignature sr=a&sig=x&skn=k",
                SasError::MissingField("se"),
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=1",
                SasError::MissingField("skn"),
            ),
            (
                "SharedAccessSignature sr=&sig=x&se=1&skn=k",
                SasError::EmptyField("sr"),
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=1&skn= ",
                SasError::EmptyField("skn"),
            ),
            (
                "SharedAccessSignature sr=a&SR=b&sig=x&se=1&skn=k",
                SasError::DuplicateField("sr"),
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=1&skn=k&x=1",
                SasError::UnknownField,
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=1&skn",
                SasError::FieldWithoutValue("skn".into()),
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=-1&skn=k",
                SasError::BadExpiry,
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=1e9&skn=k",
                SasError::BadExpiry,
            ),
            (
                "SharedAccessSignature sr=a&sig=x&se=99999999999999999999999&skn=k",
                SasError::BadExpiry,
            ),
            ("Bearer abc", SasError::NotSas),
            ("SharedAccessSignaturesr=a", SasError::NotSas),
            ("", SasError::NotSas),
        ];
        for (token, want) in cases {
            assert_eq!(SasToken::parse(token).unwrap_err(), want, "{token}");
        }
    }

    #[test]
    fn parse_oversized_fails() {
        let long = format!("SharedAccessSignature sr={}", "a".repeat(MAX_TOKEN_LEN));
        assert_eq!(SasToken::parse(&long).unwrap_err(), SasError::TooLong);
    }

    #[test]
    fn parse_bad_sig_length_or_base64_fails() {
        for sig in [
            "AAAA",
            "!!!!",
            "%ZZ",
            &BASE64.encode([0u8; 31]),
            &BASE64.encode([0u8; 33]),
        ] {
            let t = format!("SharedAccessSignature sr=a&sig={sig}&se=1&skn=k");
            assert_eq!(
                SasToken::parse(&t).unwrap_err(),
                SasError::BadSignatureEncoding,
                "{sig}"
            );
        }
    }

    #[test]
    fn verify_expiry_exactly_at_se_fails() {
        let k = key(KEY);
        let t = SasToken::parse(&mint("https://ns/hub", "r", &k, 1000)).unwrap();
        assert_eq!(t.verify([&k], 999), Ok(()));
        assert_eq!(t.verify([&k], 1000), Err(SasError::Expired));
        assert_eq!(t.verify([&k], 1001), Err(SasError::Expired));
    }

    #[test]
    fn verify_secondary_key_ok() {
        let (primary, secondary) = (key(OTHER_KEY), key(KEY));
        let t = SasToken::parse(&mint("https://ns/hub", "r", &secondary, 10)).unwrap();
        assert_eq!(t.verify([&primary, &secondary], 1), Ok(()));
        assert_eq!(t.verify([&primary], 1), Err(SasError::InvalidSignature));
    }

    #[test]
    fn verify_bad_signature_before_expiry_fails() {
        // An expired token with a bad signature says "invalid signature": nothing about
        // an unsigned token is trusted, not even its expiry.
        let t = SasToken::parse(&mint("https://ns/hub", "r", &key(KEY), 10)).unwrap();
        assert_eq!(
            t.verify([&key(OTHER_KEY)], 20),
            Err(SasError::InvalidSignature)
        );
    }

    #[test]
    fn key_short_fails() {
        assert_eq!(SasKey::new("short"), Err(KeyError::TooShort));
    }

    #[test]
    fn key_generate_is_44_char_base64_ok() {
        let a = SasKey::generate().unwrap();
        let b = SasKey::generate().unwrap();
        assert_eq!(a.expose().len(), 44);
        assert_eq!(BASE64.decode(a.expose()).unwrap().len(), 32);
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "SasKey([redacted])");
    }

    #[test]
    fn scope_schemes_hosts_and_segments_ok() {
        for uri in [
            "sb://NS.example.com/Hub/",
            "amqps://ns.example.com/hub",
            "HTTPS://ns.example.com:443/hub",
            "http://ns.example.com/hub",
            "ns.example.com/hub",
        ] {
            let s = Scope::parse(uri).unwrap();
            assert_eq!(s.host(), "ns.example.com", "{uri}");
            assert_eq!(s.segments(), ["hub"], "{uri}");
        }
        let s = Scope::parse("https://ns/hub/publishers/dev%20ice%2F01").unwrap();
        assert_eq!(s.segments(), ["hub", "publishers", "dev ice/01"]);
        let s = Scope::parse("https://ns/").unwrap();
        assert!(s.segments().is_empty());
    }

    #[test]
    fn scope_bad_uris_fail() {
        for uri in [
            "ftp://ns/hub",
            "https://",
            "https:///hub",
            "https://ns/hub//publishers",
            "https://ns/hub?x=1",
            "https://ns/hub#f",
            "https://ns/%FF",
            "https://ns/a%00b",
            "sb://ns:1:2/hub",
            "https://ns:/hub",
            "https://[::1]/hub",
        ] {
            assert_eq!(Scope::parse(uri), Err(SasError::BadResource), "{uri}");
        }
    }

    #[test]
    fn encode_uri_component_matches_javascript_ok() {
        assert_eq!(
            encode_uri_component("https://a.b/c d/é!~*'()+&="),
            "https%3A%2F%2Fa.b%2Fc%20d%2F%C3%A9!~*'()%2B%26%3D"
        );
    }

    proptest! {
        #[test]
        fn mint_verify_round_trip_ok(
            hub in "[A-Za-z0-9][A-Za-z0-9._-]{0,40}",
            publisher in "\\PC{1,40}",
            rule in "[A-Za-z0-9._-]{1,40}",
            expiry in 1u64..u64::MAX / 2,
        ) {
            let k = key(KEY);
            let uri = format!("https://ns.example.com/{hub}/publishers/{}", encode_uri_component(&publisher));
            let parsed = SasToken::parse(&mint(&uri, &rule, &k, expiry)).unwrap();
            prop_assert_eq!(parsed.key_name(), rule.as_str());
            prop_assert_eq!(parsed.expiry(), expiry);
            prop_assert_eq!(parsed.verify([&k], expiry - 1), Ok(()));
            prop_assert_eq!(parsed.verify([&key(OTHER_KEY)], expiry - 1), Err(SasError::InvalidSignature));
            let segments = parsed.scope().segments();
            prop_assert_eq!(segments.len(), 3);
            prop_assert_eq!(&segments[2], &crate::names::fold(&publisher));
        }

        #[test]
        fn parse_arbitrary_input_never_panics_ok(s in "\\PC{0,300}") {
            let _ = SasToken::parse(&s);
            let _ = SasToken::parse(&format!("SharedAccessSignature {s}"));
        }
    }
}
