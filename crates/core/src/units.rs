//! Durations in configuration: written as whole milliseconds or seconds under keys that say
//! which (`request_timeout_ms = 10000`, `max_ttl_secs = 3600`), held as [`Duration`].

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A `…_ms` value.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// A `…_secs` value.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}
