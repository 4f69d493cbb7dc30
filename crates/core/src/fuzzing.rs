//! Fuzz target bodies for the credential parsers (cargo-fuzz targets in `fuzz/` call these;
//! the unit tests below replay the committed corpora through them).
//!
//! Each function takes arbitrary bytes and panics only when an invariant is broken. The
//! SAS format is the one of learn.microsoft.com/azure/event-hubs/authenticate-shared-access-signature.

use std::sync::OnceLock;

use crate::authz::RuleConfig;
use crate::authz::{AuthError, Authenticator, Right};
use crate::sas::{self, MAX_TOKEN_LEN, SasError, SasKey, SasToken, Scope};

/// The namespace the fuzzed tokens are checked against.
pub const NAMESPACE: &str = "fuzz.servicebus.windows.net";

/// "Now" for every check, so a run depends on its input only (2023-11-14T22:13:20Z).
pub const NOW: u64 = 1_700_000_000;

/// The rules of the fuzzing namespace: (name, key text, hub the rule is limited to).
pub const RULES: [(&str, &str, Option<&str>); 2] = [
    (
        "RootManageSharedAccessKey",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        None,
    ),
    (
        "hub-send",
        "r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo=",
        Some("hub"),
    ),
];

fn key(text: &str) -> SasKey {
    SasKey::new(text).expect("the fuzzing keys are long enough")
}

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let rules: Vec<RuleConfig> = RULES
            .iter()
            .map(|(name, k, hub)| RuleConfig {
                name: (*name).into(),
                rights: if hub.is_some() {
                    vec![Right::Send]
                } else {
                    vec![Right::Manage]
                },
                hub: hub.map(Into::into),
                primary_key: key(k),
                secondary_key: None,
            })
            .collect();
        Authenticator::new(NAMESPACE, &rules)
    })
}

/// A refusal must be a credential problem (401) whose text is short (it never echoes the
/// token).
fn check_refusal(e: &AuthError) {
    assert!(e.is_credential_problem(), "{e:?}");
    let text = e.to_string();
    assert!(text.len() <= 200, "a {}-byte error text", text.len());
}

/// Whatever arrives in an `Authorization` header: parse, verify, scope.
pub fn sas_parse_verify(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return; // `HeaderValue::to_str` lets only visible ASCII through
    };
    match authenticator().authenticate_sas(header, NOW) {
        Ok(principal) => {
            // Only a token signed with a rule's key gets here: the corpus holds some.
            let token = SasToken::parse(header).expect("an accepted token parses");
            assert!(token.expiry() > NOW, "an expired token was accepted");
            assert_eq!(token.scope().host(), NAMESPACE);
            let (_, k, hub) = RULES
                .iter()
                .find(|(name, ..)| *name == token.key_name())
                .expect("an accepted token names a rule");
            token.verify([&key(k)], NOW).expect("and verifies");
            if let Some(hub) = hub {
                assert!(
                    crate::authorize(&principal, Right::Send, &crate::Resource::hub(hub)).is_ok()
                        || principal.publisher().is_some(),
                    "a hub rule's token covers its hub or one publisher in it"
                );
                assert!(
                    crate::authorize(&principal, Right::Send, &crate::Resource::hub("other"))
                        .is_err(),
                    "a hub rule's token reached another hub"
                );
            }
        }
        Err(e) => check_refusal(&e),
    }
}

/// A token minted for an arbitrary resource, expiry and rule parses back to that resource
/// and verifies with that rule's key only. Input: 8 bytes expiry, 1 byte rule, the URI.
pub fn sas_mint_roundtrip(data: &[u8]) {
    let Some((expiry, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((&rule, uri)) = rest.split_first() else {
        return;
    };
    let expiry = u64::from_le_bytes(*expiry);
    let uri = String::from_utf8_lossy(uri);
    let (name, k, _) = RULES[usize::from(rule) % RULES.len()];
    let (_, other, _) = RULES[(usize::from(rule) + 1) % RULES.len()];
    let token = sas::mint(&uri, name, &key(k), expiry);

    let parsed = SasToken::parse(&token);
    if token.len() > MAX_TOKEN_LEN {
        assert_eq!(parsed, Err(SasError::TooLong));
        return;
    }
    match (Scope::parse(&uri), parsed) {
        (Ok(scope), Ok(parsed)) => {
            assert_eq!(parsed.scope(), &scope, "the scope survives mint and parse");
            assert_eq!(parsed.key_name(), name);
            assert_eq!(parsed.expiry(), expiry);
            let verified = parsed.verify([&key(k)], NOW);
            if expiry > NOW {
                assert_eq!(verified, Ok(()));
            } else {
                assert_eq!(verified, Err(SasError::Expired));
            }
            assert_eq!(
                parsed.verify([&key(other)], NOW),
                Err(SasError::InvalidSignature)
            );
        }
        // An empty `sr` is refused as empty, any other bad one as a bad resource.
        (Err(_), parsed) => assert!(parsed.is_err(), "a token for a bad resource parsed"),
        (Ok(_), Err(e)) => panic!("a minted token for a valid resource failed: {e:?}"),
    }
    match authenticator().authenticate_sas(&token, NOW) {
        Ok(principal) => assert!(expiry > NOW && principal.name().starts_with("sas:")),
        Err(e) => check_refusal(&e),
    }
}

/// The resource URI parser (`sr` once form-decoded).
pub fn scope_parse(data: &[u8]) {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scope) = Scope::parse(uri) else {
        return;
    };
    let host = scope.host();
    assert!(!host.is_empty());
    assert_eq!(host, host.to_ascii_lowercase(), "the host is lower-cased");
    assert!(!host.contains(['/', '?', '#']));
    for segment in scope.segments() {
        assert!(!segment.is_empty(), "empty segment");
        assert!(!segment.chars().any(char::is_control), "control character");
    }
    // Written out again (as a minting backend would) it parses to the same scope.
    let again = std::iter::once(host.to_owned())
        .chain(
            scope
                .segments()
                .iter()
                .map(|s| sas::encode_uri_component(s)),
        )
        .collect::<Vec<_>>()
        .join("/");
    assert_eq!(Scope::parse(&again).as_ref(), Ok(&scope), "{again}");
}

/// Runs every committed input of one fuzz target through its body: its corpus
/// (`fuzz/corpus/<target>/`, kept small by `cargo fuzz cmin`) and the inputs of fixed bugs
/// (`fuzz/regressions/<target>/`, which cmin never touches). The unit tests replay what the
/// fuzzer found, without the fuzzer.
pub fn replay_corpus(target: &str, body: fn(&[u8])) {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        if kind == "regressions" && !dir.exists() {
            continue;
        }
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            body(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for {target}");
}

/// Every body parser error is a client error (400) with a short message that does not echo
/// the body.
fn check_body_refusal(e: &crate::json::JsonError) {
    assert!(e.0.len() <= 1024, "error message of {} bytes", e.0.len());
}

/// `POST /v1/producer/topics/{topic}`: the HDInsight produce body.
pub fn produce_body(data: &[u8]) {
    match crate::bodies::produce_records(data) {
        Ok(records) => {
            assert!(!records.is_empty(), "an empty produce body was accepted");
            // Anything written must be what the client sent: re-read the body as a JSON
            // tree and compare each string key and value with the record's bytes.
            // serde_json's tree refuses numbers beyond f64 (`1e400`) that the raw parser
            // passes on as text; such a body cannot be compared this way.
            let Ok(tree) = serde_json::from_slice::<serde_json::Value>(data) else {
                return;
            };
            let sent = tree["records"].as_array().expect("records is an array");
            assert_eq!(sent.len(), records.len());
            for (record, sent) in records.iter().zip(sent) {
                assert!(
                    record.partition.is_none_or(|p| p >= 0),
                    "negative partition"
                );
                for (field, bytes) in [("key", &record.key), ("value", &record.value)] {
                    match &sent[field] {
                        serde_json::Value::Null => assert!(bytes.is_none(), "{field}"),
                        serde_json::Value::String(s) => {
                            assert_eq!(bytes.as_deref(), Some(s.as_bytes()), "{field}");
                        }
                        other => {
                            let written: serde_json::Value =
                                serde_json::from_slice(bytes.as_deref().expect(field))
                                    .expect("a JSON value is written as JSON text");
                            assert_eq!(&written, other, "{field}");
                        }
                    }
                }
            }
        }
        Err(e) => check_body_refusal(&e),
    }
}

/// `POST /{hub}/messages` with `Content-Type: application/vnd.microsoft.servicebus.json`.
pub fn batch_body(data: &[u8]) {
    match crate::bodies::batch_events(data) {
        Ok(events) => {
            assert!(!events.is_empty(), "an empty batch was accepted");
            let Ok(tree) = serde_json::from_slice::<serde_json::Value>(data) else {
                return; // numbers beyond f64, as in produce_body
            };
            let sent = tree.as_array().expect("a batch is an array");
            assert_eq!(sent.len(), events.len());
            for (event, sent) in events.iter().zip(sent) {
                let base64 = sent["IsBodyBase64"].as_bool().unwrap_or(false);
                match &sent["Body"] {
                    serde_json::Value::String(s) if !base64 => {
                        assert_eq!(event.body, s.as_bytes());
                    }
                    serde_json::Value::String(_) => {}
                    other => {
                        let written: serde_json::Value = serde_json::from_slice(&event.body)
                            .expect("a JSON body is written as JSON text");
                        assert_eq!(&written, other);
                    }
                }
                let properties = sent["UserProperties"].as_object();
                assert_eq!(
                    event.properties.len(),
                    properties.map_or(0, serde_json::Map::len)
                );
            }
        }
        Err(e) => check_body_refusal(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_corpus_sas_parse_verify_replays_ok() {
        replay_corpus("sas_parse_verify", sas_parse_verify);
    }

    #[test]
    fn fuzz_corpus_sas_mint_roundtrip_replays_ok() {
        replay_corpus("sas_mint_roundtrip", sas_mint_roundtrip);
    }

    #[test]
    fn fuzz_corpus_scope_parse_replays_ok() {
        replay_corpus("scope_parse", scope_parse);
    }

    #[test]
    fn fuzz_corpus_produce_body_replays_ok() {
        replay_corpus("produce_body", produce_body);
    }

    #[test]
    fn fuzz_corpus_batch_body_replays_ok() {
        replay_corpus("batch_body", batch_body);
    }

    #[test]
    fn sas_parse_verify_accepts_a_signed_token_ok() {
        // The corpus seeds must reach past the signature check, or the fuzzer never does.
        let token = sas::mint(
            &format!("https://{NAMESPACE}/hub/publishers/dev-1"),
            RULES[1].0,
            &key(RULES[1].1),
            NOW + 3600,
        );
        assert!(authenticator().authenticate_sas(&token, NOW).is_ok());
        sas_parse_verify(token.as_bytes());
    }
}
