//! Request bodies that become Kafka records, parsed and checked before anything is written:
//! the HDInsight produce body (`POST /v1/producer/topics/{topic}`) and the Event Hubs batch
//! (`Content-Type: application/vnd.microsoft.servicebus.json`) and `BrokerProperties`.
//! A body that passes is written exactly as the client sent it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::{self, JsonError, Object, parse_object, raw_string};

/// Record header carrying the publisher name (the Event Hubs AMQP annotation's name).
pub const PUBLISHER_HEADER: &str = "x-opt-publisher";

/// Header names only hubgate writes, never a client, on any route: the Event Hubs message
/// annotations (`x-opt-…`, of which [`PUBLISHER_HEADER`] names the authenticated publisher
/// and is what consumer-group reads report as `publisher`). Compared in ASCII case.
pub const RESERVED_HEADER_PREFIX: &str = "x-opt-";

/// Header names only hubgate writes besides [`RESERVED_HEADER_PREFIX`]: the W3C Trace
/// Context of the request that wrote the record (<https://www.w3.org/TR/trace-context/>);
/// a client continues a trace with the HTTP headers of the same names.
pub const RESERVED_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Whether a client-supplied header or property `name` is reserved
/// ([`RESERVED_HEADER_PREFIX`], [`RESERVED_HEADERS`]).
pub fn is_reserved_header(name: &str) -> bool {
    name.as_bytes()
        .get(..RESERVED_HEADER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_HEADER_PREFIX.as_bytes()))
        || RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
}

/// The error for a client that sent the reserved `name` as `what`.
pub fn reserved_header_error(what: &str, name: &str) -> JsonError {
    JsonError(format!(
        "{what} '{name}' is reserved: names starting with '{RESERVED_HEADER_PREFIX}', and {RESERVED_HEADERS:?} (send those as HTTP headers to continue a trace), are set by the gateway only"
    ))
}

/// One record of a produce body, ready for Kafka but for its partition and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedRecord {
    /// The partition the client asked for, if any (never negative).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, Vec<u8>>,
}

/// `POST /v1/producer/topics/{topic}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRequest {
    records: Vec<Object<ProduceRecord>>,
}

/// One record to produce. `key` and `value` may be any JSON: a string is sent as its UTF-8
/// bytes, `null` or absent as a null key/value, anything else as its JSON text exactly as
/// the client wrote it (kept raw: no parse into a tree and no re-serialisation, which was
/// most of the gateway's CPU per record).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord {
    #[serde(default)]
    key: Option<Box<RawValue>>,
    #[serde(default)]
    value: Option<Box<RawValue>>,
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The bytes a JSON key or value stands for; `Err` names what is wrong with it
/// ([`raw_string`]: a string without a UTF-8 form).
fn json_bytes(v: Option<Box<RawValue>>) -> Result<Option<Vec<u8>>, &'static str> {
    let Some(text) = v else { return Ok(None) };
    let text = text.get();
    if text.starts_with('"') {
        raw_string(text).map(|s| Some(s.into_bytes()))
    } else if text == "null" {
        Ok(None)
    } else {
        Ok(Some(text.as_bytes().to_vec()))
    }
}

impl ProduceRecord {
    /// The record's bytes.
    fn into_record(self, i: usize) -> Result<ProducedRecord, JsonError> {
        let bytes = |field: &str, v| {
            json_bytes(v).map_err(|why| JsonError(format!("record {i}: {field} {why}")))
        };
        if self.partition.is_some_and(|p| p < 0) {
            return Err(JsonError(format!(
                "record {i}: partition must not be negative"
            )));
        }
        if let Some(k) = self.headers.keys().find(|k| is_reserved_header(k)) {
            return Err(reserved_header_error(&format!("record {i}: header"), k));
        }
        Ok(ProducedRecord {
            partition: self.partition,
            key: bytes("key", self.key)?,
            value: bytes("value", self.value)?,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect(),
        })
    }
}

/// Parses a produce body and checks everything that needs no Kafka: the documented shape,
/// at least one record, no negative partition, keys and values with a UTF-8 form.
pub fn produce_records(bytes: &[u8]) -> Result<Vec<ProducedRecord>, JsonError> {
    let request: ProduceRequest = parse_object(bytes, "produce body")?;
    if request.records.is_empty() {
        return Err(JsonError("records must not be empty".into()));
    }
    request
        .records
        .into_iter()
        .enumerate()
        .map(|(i, Object(r))| r.into_record(i))
        .collect()
}

/// One event before it becomes a record.
#[derive(Debug)]
pub struct Event {
    pub body: Vec<u8>,
    pub partition_key: Option<String>,
    pub properties: BTreeMap<String, Vec<u8>>,
}

/// The `BrokerProperties` of Event Hubs / Service Bus; only `PartitionKey` is used, other
/// fields are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct BrokerProperties {
    #[serde(rename = "PartitionKey", default)]
    pub partition_key: Option<String>,
}

impl BrokerProperties {
    /// The `BrokerProperties` header's value.
    pub fn parse(value: &[u8]) -> Result<Self, JsonError> {
        json::parse_object(value, "BrokerProperties header (a JSON object)")
    }
}

/// One element of a batch body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchEvent {
    /// Kept raw: a JSON body other than a string is sent as the client wrote it.
    body: Box<serde_json::value::RawValue>,
    #[serde(default)]
    user_properties: BTreeMap<String, Value>,
    #[serde(default)]
    broker_properties: Option<Object<BrokerProperties>>,
    #[serde(default)]
    is_body_base64: bool,
}

fn property_value(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.into_bytes()),
        Value::Number(n) => Some(n.to_string().into_bytes()),
        Value::Bool(b) => Some(b.to_string().into_bytes()),
        _ => None,
    }
}

/// Parses an Event Hubs batch body; one bad event refuses the whole batch.
pub fn batch_events(body: &[u8]) -> Result<Vec<Event>, JsonError> {
    let batch: Vec<Object<BatchEvent>> = json::parse(
        body,
        r#"batch: expected [{"Body": …, "UserProperties": {…}, "BrokerProperties": {…}, "IsBodyBase64": false}]"#,
    )?;
    if batch.is_empty() {
        return Err(JsonError("the batch is empty".into()));
    }
    batch
        .into_iter()
        .enumerate()
        .map(|(i, Object(e))| {
            let raw = e.body.get();
            let text =
                || json::raw_string(raw).map_err(|why| JsonError(format!("event {i}: Body {why}")));
            let body = match (raw.starts_with('"'), e.is_body_base64) {
                (true, true) => BASE64
                    .decode(text()?.as_bytes())
                    .map_err(|_| JsonError(format!("event {i}: Body is not valid base64")))?,
                (true, false) => text()?.into_bytes(),
                (false, true) => {
                    return Err(JsonError(format!(
                        "event {i}: IsBodyBase64 needs Body to be a string"
                    )));
                }
                (false, false) => raw.as_bytes().to_vec(),
            };
            let properties = e
                .user_properties
                .into_iter()
                .map(|(k, v)| {
                    if is_reserved_header(&k) {
                        return Err(reserved_header_error(
                            &format!("event {i}: UserProperties"),
                            &k,
                        ));
                    }
                    let v = property_value(v).ok_or_else(|| {
                        JsonError(format!(
                            "event {i}: UserProperties['{k}'] must be a string, number or boolean"
                        ))
                    })?;
                    Ok((k, v))
                })
                .collect::<Result<_, JsonError>>()?;
            Ok(Event {
                body,
                partition_key: e.broker_properties.and_then(|b| b.0.partition_key),
                properties,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_record_json_values_ok() {
        let r: ProduceRecord = serde_json::from_str(
            r#"{"key": "k", "value": {"b": 1,  "a": [true]}, "partition": 2, "headers": {"h": "v"}}"#,
        )
        .unwrap();
        assert_eq!(r.partition, Some(2));
        let rec = r.into_record(0).unwrap();
        assert_eq!(rec.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(
            rec.value.as_deref(),
            Some(&br#"{"b": 1,  "a": [true]}"#[..]),
            "JSON values are kept as written"
        );
        assert_eq!(rec.headers["h"], b"v");
        let r: ProduceRecord = serde_json::from_str(r#"{"value": null}"#).unwrap();
        let rec = r.into_record(0).unwrap();
        assert!(rec.key.is_none() && rec.value.is_none());
        let r: ProduceRecord =
            serde_json::from_str(r#"{"key": "a\"b\u00e9", "value": 1.50}"#).unwrap();
        let rec = r.into_record(0).unwrap();
        assert_eq!(rec.key.as_deref(), Some("a\"bé".as_bytes()));
        assert_eq!(rec.value.as_deref(), Some(&b"1.50"[..]));
        let r: ProduceRecord = serde_json::from_str("{}").unwrap();
        let rec = r.into_record(0).unwrap();
        assert!(rec.key.is_none() && rec.value.is_none());
    }

    #[test]
    fn produce_record_unknown_field_fails() {
        for bad in [
            r#"{"valeu": 1}"#,
            r#"{"partition": -1.5}"#,
            r#"{"headers": {"h": 1}}"#,
            r#"{"value": }"#,
            r#"{"value": [1,}"#,
        ] {
            assert!(serde_json::from_str::<ProduceRecord>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn produce_request_parse_ok() {
        let parsed = produce_records(
            br#"{"records":[{"value":"a"},{"key":"k","value":{"x":1},"partition":1}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].partition, None);
        assert_eq!(parsed[0].value.as_deref(), Some(&b"a"[..]));
        assert_eq!(parsed[1].partition, Some(1));
        assert_eq!(parsed[1].key.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn produce_request_parse_bad_input_fails() {
        for (bad, why) in [
            (r#"{"records":[]}"#, "records must not be empty"),
            (
                r#"{"records":[{"value":1},{"partition":-1}]}"#,
                "record 1: partition",
            ),
            // Found while writing the fuzz invariant: valid JSON syntax, no UTF-8 form.
            // It used to be written as a null value and answered 200.
            (r#"{"records":[{"value":"\ud800"}]}"#, "record 0: value"),
            (
                r#"{"records":[{"value":"ok"},{"key":"\udc00x"}]}"#,
                "record 1: key",
            ),
        ] {
            match produce_records(bad.as_bytes()) {
                Err(JsonError(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn batch_events_parse_ok() {
        let body = br#"[{"Body":"aGk=","IsBodyBase64":true,"UserProperties":{"a":"x","n":1,"b":true},"BrokerProperties":{"PartitionKey":"k","Label":"ignored"}},{"Body":{"j":1}}]"#;
        let events = batch_events(body).unwrap();
        assert_eq!(events[0].body, b"hi");
        assert_eq!(events[0].partition_key.as_deref(), Some("k"));
        assert_eq!(events[0].properties["n"], b"1");
        assert_eq!(events[0].properties["b"], b"true");
        assert_eq!(events[1].body, br#"{"j":1}"#);
    }

    #[test]
    fn reserved_headers_from_clients_fails() {
        for name in [
            "x-opt-publisher",
            "X-Opt-Publisher",
            "x-opt-enqueued-time",
            "X-OPT-",
        ] {
            assert!(is_reserved_header(name), "{name}");
            let produce =
                format!(r#"{{"records":[{{"value":"v","headers":{{"{name}":"forged"}}}}]}}"#);
            let e = produce_records(produce.as_bytes()).unwrap_err();
            assert!(e.0.contains("reserved"), "{e:?}");
            let batch = format!(r#"[{{"Body":"b","UserProperties":{{"{name}":"forged"}}}}]"#);
            let e = batch_events(batch.as_bytes()).unwrap_err();
            assert!(e.0.contains("reserved"), "{e:?}");
        }
        for name in [
            "x-optional",
            "publisher",
            "x-op",
            "ẋ-opt-publisher",
            "x-opt",
        ] {
            assert!(!is_reserved_header(name), "{name}");
        }
    }

    #[test]
    fn batch_events_bad_input_fails() {
        for body in [
            &b"[]"[..],
            b"{}",
            b"[{}]",
            b"[{\"Body\":\"%%%\",\"IsBodyBase64\":true}]",
            b"[{\"Body\":1,\"IsBodyBase64\":true}]",
            b"[{\"Body\":\"x\",\"UserProperties\":{\"a\":[1]}}]",
            b"[{\"Body\":\"x\",\"UserProperties\":{\"a\":null}}]",
            b"not json",
            br#"[{"Body":"\ud800"}]"#,
            br#"[{"Body":"\udc00","IsBodyBase64":true}]"#,
        ] {
            assert!(
                batch_events(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
