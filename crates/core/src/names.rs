//! Validation of the names that reach Kafka or a SAS scope: hubs (topics), publishers, rules.
//!
//! Hub, consumer group and rule names are strict on purpose: a name that passes is safe as a
//! Kafka topic, a URL path segment and a SAS scope segment without any encoding. Publisher
//! names are what the Event Hubs SDKs can mint a token for: any text without control
//! characters or `/`, sent percent-encoded (each path or scope segment is percent-decoded
//! once, as UTF-8) and compared in one canonical form, [`publisher`].

/// The one case-insensitive form of a name (hub, publisher, consumer group, SAS scope
/// segment), used wherever names are compared or stored: ASCII letters lower-cased, every
/// other character left as it is. Unicode case rules are never used: they fold characters
/// hubgate refuses onto ASCII ones (U+212A KELVIN SIGN becomes `k`), so a token signed for a
/// name the gateway refuses would act as the ASCII name.
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Longest hub (topic) name: Kafka's limit.
pub const MAX_HUB_LEN: usize = 249;
/// Longest publisher name.
pub const MAX_PUBLISHER_LEN: usize = 128;
/// Longest SAS rule name (Event Hubs allows 256).
pub const MAX_RULE_LEN: usize = 256;

/// A name was refused. The message is safe for clients (it echoes at most a bounded name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("{kind} name must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} name may only contain {allowed}")]
    BadChar {
        kind: &'static str,
        allowed: &'static str,
    },
    #[error("{kind} name must not be '.' or '..'")]
    Dots { kind: &'static str },
    #[error("hub names starting with '__' are reserved for internal topics")]
    Internal,
    #[error("'{0}' is reserved and cannot be used as a hub name")]
    Reserved(&'static str),
}

fn check(
    name: &str,
    kind: &'static str,
    max: usize,
    allowed: &'static str,
    ok: fn(u8) -> bool,
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > max {
        return Err(NameError::TooLong { kind, max });
    }
    if !name.bytes().all(ok) {
        return Err(NameError::BadChar { kind, allowed });
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots { kind });
    }
    Ok(())
}

/// Path segments the gateway's own routes use at the top level.
const RESERVED_HUBS: [&str; 2] = ["v1", "openapi.json"];

/// A hub is a Kafka topic: `[A-Za-z0-9._-]`, 1–249 characters, not `__…` (internal).
pub fn validate_hub(name: &str) -> Result<(), NameError> {
    check(
        name,
        "hub",
        MAX_HUB_LEN,
        "letters, digits, '.', '_' and '-'",
        |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'),
    )?;
    if name.starts_with("__") {
        return Err(NameError::Internal);
    }
    if let Some(r) = RESERVED_HUBS.iter().find(|r| r.eq_ignore_ascii_case(name)) {
        return Err(NameError::Reserved(r));
    }
    Ok(())
}

/// A publisher: any text of 1–128 characters (Unicode scalar values) without control
/// characters (C0, DEL, C1) or `/`, and not `.` or `..`: every name the Event Hubs SDKs can
/// mint a token for that is safe as one path segment, record key and header value.
pub fn validate_publisher(name: &str) -> Result<(), NameError> {
    const KIND: &str = "publisher";
    if name.is_empty() {
        return Err(NameError::Empty { kind: KIND });
    }
    if name.chars().nth(MAX_PUBLISHER_LEN).is_some() {
        return Err(NameError::TooLong {
            kind: KIND,
            max: MAX_PUBLISHER_LEN,
        });
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(NameError::BadChar {
            kind: KIND,
            allowed: "characters other than control characters and '/'",
        });
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots { kind: KIND });
    }
    Ok(())
}

/// The canonical form of a publisher name, validated: [`fold`]ed. It is the one form of
/// the name everywhere hubgate uses it: the Kafka record key and `x-opt-publisher` header,
/// the revocation list, throttle buckets, idempotency scopes, and the comparison with a
/// token's scope, so `Device-1`, `device-1` and `DEVICE-1` are one publisher on one
/// partition.
pub fn publisher(name: &str) -> Result<String, NameError> {
    validate_publisher(name)?;
    Ok(fold(name))
}

/// Longest consumer group name (Event Hubs allows 50).
pub const MAX_CONSUMER_GROUP_LEN: usize = 50;

/// The consumer group every hub has.
pub const DEFAULT_CONSUMER_GROUP: &str = "$Default";

/// A consumer group: `$Default`, or `[A-Za-z0-9._-]`, 1–50 characters.
pub fn validate_consumer_group(name: &str) -> Result<(), NameError> {
    if name == DEFAULT_CONSUMER_GROUP {
        return Ok(());
    }
    check(
        name,
        "consumer group",
        MAX_CONSUMER_GROUP_LEN,
        "letters, digits, '.', '_' and '-' (or exactly '$Default')",
        |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'),
    )
}

/// A SAS rule name: `[A-Za-z0-9._-]`, 1–256 characters (as Event Hubs allows).
pub fn validate_rule(name: &str) -> Result<(), NameError> {
    check(
        name,
        "rule",
        MAX_RULE_LEN,
        "letters, digits, '.', '_' and '-'",
        |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hub_names_ok() {
        for n in ["a", "telemetry", "Tele.metry_1-2", &"x".repeat(249)] {
            assert_eq!(validate_hub(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn hub_names_fail() {
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "ä",
            "__hubgate",
            "v1",
            "V1",
            "a%2F",
            "a\0",
            &"x".repeat(250),
        ] {
            assert!(validate_hub(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn publisher_names_ok_and_fail() {
        for n in [
            "dev-01",
            "a@b.c",
            "urn:dev:1",
            "x~y_z",
            "dev ice",
            "it's(1)*!~",
            "Zürich-東京",
            "a+b",
            "a%20",
            "100%",
            "a?b#c",
            "...",
            &"é".repeat(128),
        ] {
            assert_eq!(validate_publisher(n), Ok(()), "{n}");
        }
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "/",
            "a\nb",
            "a\0",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            &"x".repeat(129),
            &"é".repeat(129),
        ] {
            assert!(validate_publisher(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn publisher_canonical_form_folds_ascii_only_ok() {
        assert_eq!(publisher("DEVICE-Upper").unwrap(), "device-upper");
        assert_eq!(publisher("Zürich-東京").unwrap(), "zürich-東京");
        // Unicode case is not folded: Ü stays Ü, KELVIN SIGN stays itself.
        assert_eq!(publisher("ÜBER").unwrap(), "Über");
        assert_eq!(publisher("\u{212A}elvin").unwrap(), "\u{212A}elvin");
        assert!(publisher("a/b").is_err());
    }

    #[test]
    fn consumer_group_names_ok_and_fail() {
        for n in ["$Default", "readers", "a.b_c-1"] {
            assert_eq!(validate_consumer_group(n), Ok(()), "{n}");
        }
        for n in [
            "",
            "$default",
            "$Other",
            "a b",
            "a/b",
            "..",
            &"x".repeat(51),
        ] {
            assert!(validate_consumer_group(n).is_err(), "{n:?}");
        }
    }

    proptest! {
        #[test]
        fn valid_publisher_survives_uri_encoding_ok(n in "[^/\\p{Cc}]{1,128}") {
            prop_assume!(n != "." && n != "..");
            prop_assert_eq!(validate_publisher(&n), Ok(()));
            // Valid names survive the encodeURIComponent → decode trip unchanged.
            let enc = crate::sas::encode_uri_component(&n);
            prop_assert_eq!(percent_encoding::percent_decode_str(&enc).decode_utf8().unwrap(), n.as_str());
        }
    }
}
