//! JSON ↔ Kafka record conversions for the HDInsight-style `/v1` API.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hubgate_server::ApiError;
use rskafka::record::{Record, RecordAndOffset};
use serde::Serialize;

/// The Kafka records of a produce body ([`hubgate_core::bodies::produce_records`]), each with
/// its requested partition.
pub(crate) fn produce_records(
    bytes: &[u8],
    timestamp: DateTime<Utc>,
) -> Result<Vec<(Option<i32>, Record)>, ApiError> {
    let trace = hubgate_server::traces::record_headers();
    Ok(hubgate_core::bodies::produce_records(bytes)?
        .into_iter()
        .map(|r| {
            let mut headers = r.headers;
            headers.extend(trace.iter().cloned());
            let record = Record {
                key: r.key,
                value: r.value,
                headers,
                timestamp,
            };
            (r.partition, record)
        })
        .collect())
}

/// One entry of the produce response, in request order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OffsetResult {
    pub(crate) partition: i32,
    pub(crate) offset: Option<i64>,
    pub(crate) error_code: Option<u32>,
    pub(crate) error: Option<String>,
}

impl OffsetResult {
    /// A record Kafka acknowledged at `offset`.
    pub(crate) fn written(partition: i32, offset: i64) -> Self {
        Self {
            partition,
            offset: Some(offset),
            error_code: None,
            error: None,
        }
    }
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
            .remove(hubgate_core::bodies::PUBLISHER_HEADER)
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
