//! JSON ↔ Kafka record conversions for the HDInsight-style `/v1` API.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hubgate_shared::ApiError;
use hubgate_shared::json::{Object, parse_object, raw_string};
use rskafka::record::{Record, RecordAndOffset};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `POST /v1/producer/topics/{topic}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProduceRequest {
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
    /// The Kafka record (without partition).
    fn into_record(self, i: usize, timestamp: DateTime<Utc>) -> Result<Record, ApiError> {
        let bytes = |field: &str, v| {
            json_bytes(v).map_err(|why| ApiError::BadRequest(format!("record {i}: {field} {why}")))
        };
        Ok(Record {
            key: bytes("key", self.key)?,
            value: bytes("value", self.value)?,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect(),
            timestamp,
        })
    }
}

impl ProduceRequest {
    /// Parses a produce body and checks everything that needs no Kafka: the documented
    /// shape, at least one record, no negative partition, keys and values with a UTF-8
    /// form. Answers each record's requested partition and its Kafka record.
    pub(crate) fn parse(
        bytes: &[u8],
        timestamp: DateTime<Utc>,
    ) -> Result<Vec<(Option<i32>, Record)>, ApiError> {
        let request: Self = parse_object(bytes, "produce body")?;
        if request.records.is_empty() {
            return Err(ApiError::BadRequest("records must not be empty".into()));
        }
        request
            .records
            .into_iter()
            .enumerate()
            .map(|(i, Object(r))| {
                let partition = r.partition;
                if partition.is_some_and(|p| p < 0) {
                    return Err(ApiError::BadRequest(format!(
                        "record {i}: partition must not be negative"
                    )));
                }
                Ok((partition, r.into_record(i, timestamp)?))
            })
            .collect()
    }
}

/// One entry of the produce response, in request order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OffsetResult {
    pub(crate) partition: i32,
    pub(crate) offset: Option<i64>,
    pub(crate) error_code: Option<u32>,
    pub(crate) error: Option<String>,
}

/// `{"offsets": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct ProduceResponse {
    pub(crate) offsets: Vec<OffsetResult>,
}

const BASE64_ENCODING: &str = "base64";

/// Bytes as a JSON string: UTF-8 text as is, anything else base64 (with the encoding named).
fn text_or_base64(bytes: Option<Vec<u8>>) -> (Option<String>, Option<&'static str>) {
    match bytes {
        None => (None, None),
        Some(b) => match String::from_utf8(b) {
            Ok(s) => (Some(s), None),
            Err(e) => (Some(BASE64.encode(e.into_bytes())), Some(BASE64_ENCODING)),
        },
    }
}

/// One consumed record. `key`, `value` and header values are strings: the UTF-8 text when
/// the bytes are valid UTF-8, otherwise base64 with `keyEncoding` / `valueEncoding` /
/// `headersEncoding` set to `"base64"`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsumedRecord {
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_encoding: Option<&'static str>,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_encoding: Option<&'static str>,
    partition: i32,
    offset: i64,
    /// Milliseconds since the Unix epoch.
    timestamp: i64,
    timestamp_type: &'static str,
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers_encoding: Option<&'static str>,
}

/// Record headers as JSON strings: all as text when every value is UTF-8, otherwise all
/// base64 (and the encoding named).
fn headers_text_or_base64(
    headers: BTreeMap<String, Vec<u8>>,
) -> (BTreeMap<String, String>, Option<&'static str>) {
    let all_text = headers.values().all(|v| std::str::from_utf8(v).is_ok());
    let headers = headers
        .into_iter()
        .map(|(k, v)| {
            let v = if all_text {
                String::from_utf8(v).unwrap_or_default()
            } else {
                BASE64.encode(v)
            };
            (k, v)
        })
        .collect();
    (headers, (!all_text).then_some(BASE64_ENCODING))
}

impl ConsumedRecord {
    pub(crate) fn new(partition: i32, r: RecordAndOffset) -> Self {
        let (key, key_encoding) = text_or_base64(r.record.key);
        let (value, value_encoding) = text_or_base64(r.record.value);
        let (headers, headers_encoding) = headers_text_or_base64(r.record.headers);
        Self {
            key,
            key_encoding,
            value,
            value_encoding,
            partition,
            offset: r.offset,
            timestamp: r.record.timestamp.timestamp_millis(),
            // rskafka does not expose the batch's timestamp type; hubgate writes CreateTime.
            timestamp_type: "CreateTime",
            headers,
            headers_encoding,
        }
    }
}

/// One event read through a consumer group, in Event Hubs terms: the record key is the
/// partition key (for a publisher's events, the publisher), headers are the properties.
/// Text is given as is; other bytes as base64 with `body_encoding` / `partition_key_encoding`
/// / `properties_encoding` set to `"base64"`.
#[derive(Debug, Serialize)]
pub(crate) struct ListenedEvent {
    offset: i64,
    /// When the gateway (or producer) wrote the event: the record's timestamp.
    enqueued_time_utc: String,
    partition_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition_key_encoding: Option<&'static str>,
    /// The publisher that sent the event, when it was sent to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher: Option<String>,
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<&'static str>,
    properties: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties_encoding: Option<&'static str>,
}

impl ListenedEvent {
    pub(crate) fn new(r: RecordAndOffset) -> Self {
        let mut headers = r.record.headers;
        let publisher = headers
            .remove(crate::PUBLISHER_HEADER)
            .and_then(|p| String::from_utf8(p).ok());
        let (partition_key, partition_key_encoding) = text_or_base64(r.record.key);
        let (body, body_encoding) = text_or_base64(r.record.value);
        let (properties, properties_encoding) = headers_text_or_base64(headers);
        Self {
            offset: r.offset,
            enqueued_time_utc: r
                .record
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            partition_key,
            partition_key_encoding,
            publisher,
            body,
            body_encoding,
            properties,
            properties_encoding,
        }
    }
}

/// `{"records": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct ConsumeResponse {
    pub(crate) records: Vec<ConsumedRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn produce_record_json_values_ok() {
        let r: ProduceRecord = serde_json::from_str(
            r#"{"key": "k", "value": {"b": 1,  "a": [true]}, "partition": 2, "headers": {"h": "v"}}"#,
        )
        .unwrap();
        assert_eq!(r.partition, Some(2));
        let rec = r.into_record(0, Utc::now()).unwrap();
        assert_eq!(rec.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(
            rec.value.as_deref(),
            Some(&br#"{"b": 1,  "a": [true]}"#[..]),
            "JSON values are kept as written"
        );
        assert_eq!(rec.headers["h"], b"v");
        let r: ProduceRecord = serde_json::from_str(r#"{"value": null}"#).unwrap();
        let rec = r.into_record(0, Utc::now()).unwrap();
        assert!(rec.key.is_none() && rec.value.is_none());
        let r: ProduceRecord =
            serde_json::from_str(r#"{"key": "a\"b\u00e9", "value": 1.50}"#).unwrap();
        let rec = r.into_record(0, Utc::now()).unwrap();
        assert_eq!(rec.key.as_deref(), Some("a\"bé".as_bytes()));
        assert_eq!(rec.value.as_deref(), Some(&b"1.50"[..]));
        let r: ProduceRecord = serde_json::from_str("{}").unwrap();
        let rec = r.into_record(0, Utc::now()).unwrap();
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
        let parsed = ProduceRequest::parse(
            br#"{"records":[{"value":"a"},{"key":"k","value":{"x":1},"partition":1}]}"#,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0, None);
        assert_eq!(parsed[0].1.value.as_deref(), Some(&b"a"[..]));
        assert_eq!(parsed[1].0, Some(1));
        assert_eq!(parsed[1].1.key.as_deref(), Some(&b"k"[..]));
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
            match ProduceRequest::parse(bad.as_bytes(), Utc::now()) {
                Err(ApiError::BadRequest(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn consumed_record_binary_is_base64_ok() {
        let r = RecordAndOffset {
            record: Record {
                key: Some(vec![0xff]),
                value: Some(b"text".to_vec()),
                headers: [("h".to_string(), vec![0xfe])].into(),
                timestamp: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            },
            offset: 7,
        };
        let v = serde_json::to_value(ConsumedRecord::new(3, r)).unwrap();
        assert_eq!(
            v,
            json!({"key": "/w==", "keyEncoding": "base64", "value": "text", "partition": 3,
                   "offset": 7, "timestamp": 1_700_000_000_123_i64, "timestampType": "CreateTime",
                   "headers": {"h": "/g=="}, "headersEncoding": "base64"})
        );
    }
}
