//! JSON request bodies: objects only, short parse errors ([`JsonError`], a 400 in the HTTP layer).
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON **array** of the fields'
//! values in declaration order, so `[[["k","v",0,{}]]]` would be a valid produce body and
//! `[[]]` a record with neither key nor value. No API here documents that form, and the
//! fuzzer found it (`fuzz/corpus/produce_body`): [`Object`] accepts JSON objects only.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A body that is not what the route takes: the text says what is wrong (a 400 in the
/// HTTP layer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(pub String);

/// A `T` that was written as a JSON object (never as an array of its fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                // The values still come from the JSON deserializer itself, so `RawValue`
                // fields keep working.
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// The text of a raw JSON string value (`"…"`, as `RawValue::get` returns it).
///
/// The raw-value parser checks syntax only, so a string with an unpaired surrogate escape
/// (`"\ud800"`) gets through it; it has no UTF-8 form and is refused here rather than written
/// as something the client did not send. `Err` completes "<field> …" in a 400's message.
pub fn raw_string(raw: &str) -> Result<String, &'static str> {
    serde_json::from_str(raw).map_err(|_| "is a JSON string with an unpaired surrogate escape")
}

/// Longest part of a parser's message kept in a 400: serde's messages quote the input
/// (`unknown field `…``), and a client's kilobyte-long field name need not come back.
const MAX_DETAIL_CHARS: usize = 160;

/// Parses a JSON request body (or header); `what` names it in the 400's message.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, JsonError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let mut detail = e.to_string();
        if let Some((cut, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
            detail.truncate(cut);
            detail.push('…');
        }
        JsonError(format!("invalid {what}: {detail}"))
    })
}

/// [`parse`] for a body that must be a JSON object.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, JsonError> {
    parse::<Object<T>>(bytes, what).map(|o| o.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Two {
        #[serde(default)]
        a: Option<Box<RawValue>>,
        #[serde(default)]
        b: Vec<Object<Two>>,
    }

    #[test]
    fn parse_object_objects_ok() {
        let t: Two = parse_object(br#"{"a": {"x": [1, 2]}, "b": [{"a": "s"}]}"#, "t").unwrap();
        assert_eq!(t.a.unwrap().get(), r#"{"x": [1, 2]}"#);
        assert_eq!(t.b[0].0.a.as_ref().unwrap().get(), r#""s""#);
    }

    #[test]
    fn parse_long_field_name_message_is_short_ok() {
        let body = format!(r#"{{"{}": 1}}"#, "x".repeat(5000));
        let Err(JsonError(m)) = parse_object::<Two>(body.as_bytes(), "t") else {
            panic!("accepted");
        };
        assert!(m.chars().count() < 200 && m.ends_with('…'), "{m}");
    }

    #[test]
    fn parse_object_arrays_and_unknown_fields_fails() {
        for bad in [
            &b"[]"[..],
            b"[1, []]",
            br#"{"b": [[]]}"#,
            br#"{"c": 1}"#,
            b"1",
            b"\"x\"",
        ] {
            let e = parse_object::<Two>(bad, "thing").unwrap_err();
            assert!(
                matches!(&e, JsonError(m) if m.starts_with("invalid thing: ")),
                "{}: {e:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
