//! Event stream ids (Server-Sent Events, WHATWG HTML §9.2 "Server-sent events"): what a
//! stream's `id:` field says, so that a reconnect's `Last-Event-ID` resumes the stream on any
//! instance with nothing lost or repeated, and a checkpoint can be set from an id.
//!
//! An id says, for each partition, the offset of the last event the stream delivered from
//! it (`-1`: none, the stream starts at offset 0). A one-partition stream's id is that offset
//! alone (`"41"`); a hub stream's lists every partition, `<partition>:<offset>` joined by
//! commas (`"0:41,1:-1,2:9"`). The next event to read on a partition is the id's offset + 1
//! (Kafka's committed-offset convention, which checkpoints use).

use std::fmt::{self, Write as _};

/// Longest id accepted (a hub of 1,024 partitions with 19-digit offsets stays well under).
pub const MAX_ID_LEN: usize = 32 * 1024;

/// Longest id accepted in a URL (`last_event_id`): URLs are kept short (servers refuse long
/// ones with 414); a longer id (a hub of some hundred partitions) goes in `Last-Event-ID`.
pub const MAX_QUERY_ID_LEN: usize = 2048;

/// An event id that is not one a stream writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventIdError {
    #[error(
        "not an event id: expected an offset (\"41\") or partition:offset pairs (\"0:41,1:-1\")"
    )]
    Syntax,
    #[error("an event id names partition {0} twice")]
    Duplicate(i32),
    #[error("an event id is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("the event id does not name partition {0}")]
    NoPartition(i32),
}

/// A parsed event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventId {
    /// A one-partition stream's id: the offset of the last event delivered.
    Offset(i64),
    /// A hub stream's id: `(partition, last offset delivered)`, sorted by partition.
    Positions(Vec<(i32, i64)>),
}

/// `-1` or a non-negative offset.
fn last_offset(s: &str) -> Option<i64> {
    let o: i64 = s.parse().ok()?;
    // A leading '+' or zeros would make two spellings of one id.
    let canonical = s == "-1" || (!s.starts_with(['+', '-']) && (s == "0" || !s.starts_with('0')));
    (o >= -1 && canonical).then_some(o)
}

impl EventId {
    /// Parses an id as a stream wrote it (`Last-Event-ID`, a query parameter, a checkpoint).
    pub fn parse(s: &str) -> Result<Self, EventIdError> {
        if s.len() > MAX_ID_LEN {
            return Err(EventIdError::TooLong);
        }
        if !s.contains(':') {
            return last_offset(s).map(Self::Offset).ok_or(EventIdError::Syntax);
        }
        let mut positions = Vec::new();
        for pair in s.split(',') {
            let (p, o) = pair.split_once(':').ok_or(EventIdError::Syntax)?;
            let p = crate::routes::parse_partition(p).map_err(|_| EventIdError::Syntax)?;
            if p.to_string() != pair[..pair.len() - o.len() - 1] {
                return Err(EventIdError::Syntax);
            }
            let o = last_offset(o).ok_or(EventIdError::Syntax)?;
            positions.push((p, o));
        }
        positions.sort_unstable_by_key(|(p, _)| *p);
        if let Some(w) = positions.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EventIdError::Duplicate(w[0].0));
        }
        Ok(Self::Positions(positions))
    }

    /// The offset of the next event to read on `partition` (the last delivered + 1).
    /// A one-partition id stands for whatever partition its stream reads.
    pub fn next_offset(&self, partition: i32) -> Result<i64, EventIdError> {
        match self {
            Self::Offset(o) => Ok(o + 1),
            Self::Positions(ps) => ps
                .iter()
                .find(|(p, _)| *p == partition)
                .map(|(_, o)| o + 1)
                .ok_or(EventIdError::NoPartition(partition)),
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Offset(o) => write!(f, "{o}"),
            Self::Positions(ps) => {
                for (i, (p, o)) in ps.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{p}:{o}")?;
                }
                Ok(())
            }
        }
    }
}

/// Writes the id of a hub stream whose next offsets are `next` (`(partition, next offset)`,
/// sorted by partition) into `out`, without building an [`EventId`].
pub fn write_positions(out: &mut String, next: &[(i32, i64)]) {
    for (i, (p, n)) in next.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{p}:{}", n - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_offset_roundtrip_ok() {
        assert_eq!(EventId::parse("41").unwrap(), EventId::Offset(41));
        assert_eq!(EventId::parse("-1").unwrap().next_offset(7).unwrap(), 0);
        assert_eq!(EventId::Offset(41).to_string(), "41");
    }

    #[test]
    fn event_id_positions_roundtrip_ok() {
        let id = EventId::parse("2:9,0:41,1:-1").unwrap();
        assert_eq!(id, EventId::Positions(vec![(0, 41), (1, -1), (2, 9)]));
        assert_eq!(id.to_string(), "0:41,1:-1,2:9");
        assert_eq!(id.next_offset(1).unwrap(), 0);
        assert_eq!(id.next_offset(3), Err(EventIdError::NoPartition(3)));
        let mut s = String::new();
        write_positions(&mut s, &[(0, 42), (1, 0), (2, 10)]);
        assert_eq!(s, "0:41,1:-1,2:9");
    }

    #[test]
    fn event_id_malformed_fails() {
        for bad in [
            "", "-2", "+1", "01", "1.5", "a", "0:", ":1", "0:1,", "0:1,,1:2", "-1:3", "00:1",
            "0:01", "0:1:2", " 1",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(EventId::parse("0:1,0:2"), Err(EventIdError::Duplicate(0)));
        assert_eq!(
            EventId::parse(&"1".repeat(MAX_ID_LEN + 1)),
            Err(EventIdError::TooLong)
        );
    }

    proptest::proptest! {
        #[test]
        fn event_id_display_parse_roundtrip_ok(
            positions in proptest::collection::btree_map(0..10_000i32, -1..i64::MAX, 1..40)
        ) {
            let id = EventId::Positions(positions.into_iter().collect());
            proptest::prop_assert_eq!(EventId::parse(&id.to_string()).unwrap(), id);
        }

        #[test]
        fn event_id_parse_any_text_no_panic_ok(s in ".{0,64}") {
            if let Ok(id) = EventId::parse(&s) {
                // Whatever parses is written back exactly (one spelling per id), up to order.
                proptest::prop_assert_eq!(EventId::parse(&id.to_string()).unwrap(), id);
            }
        }
    }
}
