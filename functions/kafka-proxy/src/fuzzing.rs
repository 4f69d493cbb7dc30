//! Fuzz target bodies for the request-body parsers (cargo-fuzz targets in `fuzz/` call
//! these; the unit tests below replay the committed corpora through them).
//!
//! Each function takes arbitrary bytes and panics only when an invariant is broken: a
//! parser must refuse bad input with a 400 and accept nothing it would write wrongly.

use chrono::{DateTime, Utc};
use hubgate_shared::ApiError;

/// A fixed record timestamp, so a run depends on its input only.
fn timestamp() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// Every parser error is a client error with a short message that does not echo the body.
fn check_refusal(e: &ApiError) {
    let ApiError::BadRequest(message) = e else {
        panic!("a body parser answered something other than 400: {e:?}");
    };
    assert!(
        message.len() <= 1024,
        "error message of {} bytes",
        message.len()
    );
}

/// `POST /v1/producer/topics/{topic}`: the HDInsight produce body.
pub fn produce_body(data: &[u8]) {
    match crate::records::ProduceRequest::parse(data, timestamp()) {
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
            for ((partition, record), sent) in records.iter().zip(sent) {
                assert!(partition.is_none_or(|p| p >= 0), "negative partition");
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
        Err(e) => check_refusal(&e),
    }
}

/// `POST /{hub}/messages` with `Content-Type: application/vnd.microsoft.servicebus.json`.
pub fn batch_body(data: &[u8]) {
    match crate::eventhubs::batch_events(data) {
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
        Err(e) => check_refusal(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubgate_shared::fuzzing::replay_corpus;

    #[test]
    fn fuzz_corpus_produce_body_replays_ok() {
        replay_corpus("produce_body", produce_body);
    }

    #[test]
    fn fuzz_corpus_batch_body_replays_ok() {
        replay_corpus("batch_body", batch_body);
    }
}
