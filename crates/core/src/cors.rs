//! Allowed origins for cross-origin requests (the Fetch standard's CORS protocol): a pattern
//! is `*` (any origin), an exact origin (`https://app.example.com`, `http://localhost:5173`)
//! or a wildcard subdomain (`https://*.example.com`: any host ending in `.example.com`, at any
//! depth, but not `example.com` itself). Origins are compared as browsers serialize them
//! (RFC 6454 §6.1: `scheme://host[:port]`, no path); scheme and host in any ASCII case.

/// A configured origin pattern that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an origin pattern: expected \"*\", \"https://host[:port]\" or \"https://*.domain[:port]\""
)]
pub struct OriginPatternError(pub String);

/// One allowed-origin pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// Any origin.
    Any,
    /// Exactly this origin (ASCII lower-case).
    Exact(String),
    /// `scheme://` + any host ending in `.suffix` + `port` (ASCII lower-case, `port`
    /// including its `:`, or empty).
    Subdomains {
        scheme: String,
        suffix: String,
        port: String,
    },
}

/// Whether `host` is a host name or address an origin may carry (no path, user or query).
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
}

/// `:digits` or empty.
fn plausible_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|d| !d.is_empty() && d.len() <= 5 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Splits `host[:port]` (an IPv6 literal keeps its colons).
fn split_port(authority: &str) -> (&str, &str) {
    let after_v6 = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[after_v6..].rfind(':') {
        Some(i) => authority.split_at(after_v6 + i),
        None => (authority, ""),
    }
}

impl OriginPattern {
    /// Parses a configured pattern.
    pub fn parse(pattern: &str) -> Result<Self, OriginPatternError> {
        let bad = || OriginPatternError(pattern.to_owned());
        if pattern == "*" {
            return Ok(Self::Any);
        }
        let lower = pattern.to_ascii_lowercase();
        let (scheme, authority) = lower.split_once("://").ok_or_else(bad)?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return Err(bad());
        }
        let (host, port) = split_port(authority);
        if !plausible_port(port) {
            return Err(bad());
        }
        match host.strip_prefix("*.") {
            Some(suffix) if plausible_host(suffix) && !suffix.contains('*') => {
                Ok(Self::Subdomains {
                    scheme: scheme.to_owned(),
                    suffix: format!(".{suffix}"),
                    port: port.to_owned(),
                })
            }
            None if plausible_host(host) => Ok(Self::Exact(lower)),
            _ => Err(bad()),
        }
    }

    /// Whether `origin` (an `Origin` header's value) is allowed by this pattern.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(o) => o.eq_ignore_ascii_case(origin),
            Self::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let Some((s, authority)) = origin.split_once("://") else {
                    return false;
                };
                let (host, p) = split_port(authority);
                s.eq_ignore_ascii_case(scheme)
                    && p == port
                    && host.len() > suffix.len()
                    && plausible_host(host)
                    && host
                        .get(host.len() - suffix.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
            }
        }
    }
}

/// Whether any of `patterns` allows `origin`.
pub fn origin_allowed(patterns: &[OriginPattern], origin: &str) -> bool {
    patterns.iter().any(|p| p.allows(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OriginPattern {
        OriginPattern::parse(s).unwrap()
    }

    #[test]
    fn origin_exact_any_case_ok() {
        assert!(p("https://App.Example.com").allows("https://app.example.com"));
        assert!(p("http://localhost:5173").allows("http://localhost:5173"));
        assert!(!p("http://localhost:5173").allows("http://localhost:5174"));
        assert!(!p("https://app.example.com").allows("http://app.example.com"));
        assert!(p("*").allows("null"));
    }

    #[test]
    fn origin_wildcard_subdomains_ok() {
        let w = p("https://*.example.com");
        assert!(w.allows("https://a.example.com"));
        assert!(w.allows("https://a.b.EXAMPLE.com"));
        assert!(!w.allows("https://example.com"));
        assert!(!w.allows("https://evilexample.com"));
        assert!(!w.allows("https://a.example.com.evil.org"));
        assert!(!w.allows("https://a.example.com:8443"));
        assert!(!w.allows("http://a.example.com"));
        assert!(!w.allows("https://a/b.example.com"));
        assert!(p("http://*.local:8080").allows("http://x.local:8080"));
    }

    #[test]
    fn origin_pattern_malformed_fails() {
        for bad in [
            "",
            "example.com",
            "https://",
            "https://*",
            "https://*.",
            "https://a.*.com",
            "https://app.example.com/path",
            "https://app.example.com:",
            "https://app.example.com:abc",
            "https://*.*.com",
            "://x",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn origin_wildcard_equals_suffix_check_ok(
            sub in "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,2}",
            domain in "[a-z0-9-]{1,10}\\.[a-z]{2,5}",
            other in "[a-z0-9.-]{1,30}",
        ) {
            let w = p(&format!("https://*.{domain}"));
            let allowed = format!("https://{sub}.{domain}");
            proptest::prop_assert!(w.allows(&allowed));
            let candidate = format!("https://{other}");
            let expected = other.len() > domain.len() + 1 && other.ends_with(&format!(".{domain}"));
            proptest::prop_assert_eq!(w.allows(&candidate), expected);
        }
    }
}
