//! Configuration values that may be written as one comma-separated string or as a list
//! (`HUBGATE_HUBS=a,b` as well as `hubs = ["a", "b"]`).

use serde::{Deserialize, Deserializer};

/// Accepts `["a", "b"]` or `"a,b"` (handy for environment variables); empty entries of the
/// string form are dropped.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}
