//! Validation of the names that reach Kafka or a SAS scope: hubs (topics), publishers, rules.
//!
//! Rules are strict on purpose: a name that passes is safe as a Kafka topic or record key,
//! as a URL path segment, and inside a SAS resource URI without any encoding ambiguity.

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

/// A publisher: `[A-Za-z0-9._~:@-]`, 1–128 characters, not `.` or `..`.
pub fn validate_publisher(name: &str) -> Result<(), NameError> {
    check(
        name,
        "publisher",
        MAX_PUBLISHER_LEN,
        "letters, digits, '.', '_', '~', ':', '@' and '-'",
        |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'@' | b'-'),
    )
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
        for n in ["dev-01", "a@b.c", "urn:dev:1", "x~y_z"] {
            assert_eq!(validate_publisher(n), Ok(()), "{n}");
        }
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a+b",
            "a%20",
            "é",
            "a\nb",
            &"x".repeat(129),
        ] {
            assert!(validate_publisher(n).is_err(), "{n:?}");
        }
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
        fn valid_publisher_needs_no_uri_encoding_ok(n in "[A-Za-z0-9._~:@-]{1,128}") {
            prop_assume!(n != "." && n != "..");
            prop_assert_eq!(validate_publisher(&n), Ok(()));
            // Valid names survive the encodeURIComponent → decode trip unchanged.
            let enc = crate::sas::encode_uri_component(&n);
            prop_assert_eq!(percent_encoding::percent_decode_str(&enc).decode_utf8().unwrap(), n.as_str());
        }
    }
}
