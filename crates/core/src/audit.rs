//! The tamper-evident audit chain (issue 19, its I/O-free core): every management action is
//! an [`Entry`] carrying an HMAC-SHA256 over its content and its predecessor's MAC, per
//! writer (one chain per process), under a key of the deployment. [`verify`] replays the
//! entries in the order they were read and finds an entry removed from the middle of a chain,
//! altered, re-ordered or re-written, and one written without the key.
//!
//! What a chain cannot show by itself: the loss of a chain's last entries, or of a whole
//! chain (a writer that wrote and vanished). Those need a record of how far each writer got
//! kept elsewhere; [`Report::heads`] is what to compare with it.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The MAC before a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every action recorded.
pub const ACTIONS: [&str; 8] = [
    "token.mint",
    "publisher.revoke",
    "publisher.resume",
    "topic.create",
    "consumer_group.create",
    "consumer_group.delete",
    "keys.rotate",
    "config.reload",
];

/// Shortest audit key accepted (bytes).
pub const MIN_KEY_LEN: usize = 32;

/// The deployment's audit key (zeroized when dropped).
pub struct AuditKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// An audit key that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit key needs at least {MIN_KEY_LEN} bytes")]
pub struct KeyTooShort;

impl AuditKey {
    /// A key from its bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, KeyTooShort> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyTooShort);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
}

/// What an entry says happened (everything but the chain fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What was done (`token.mint`, `publisher.revoke`, `consumer_group.delete`, …).
    pub action: String,
    /// Who did it: a principal's name, never a credential.
    pub principal: String,
    /// The request's id.
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    /// The publisher, consumer group, rule or topic acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The action's own details (a mint's rule and expiry; never a token or key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// One audit record: an [`Action`] in its writer's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The chain: one per writing process (instance and start).
    pub writer: String,
    /// The entry's place in its writer's chain, from 0.
    pub seq: u64,
    #[serde(flatten)]
    pub action: Action,
    /// The predecessor's `mac` ([`GENESIS`] for `seq` 0), hex.
    pub prev: String,
    /// HMAC-SHA256 over the entry without this field, hex.
    pub mac: String,
}

/// The MAC'd form: every field but `mac`, in a fixed order (serde writes a struct's fields
/// in declaration order), so that writer and verifier hash the same bytes.
#[derive(Serialize)]
struct Signed<'a> {
    writer: &'a str,
    seq: u64,
    action: &'a Action,
    prev: &'a str,
}

fn signed_bytes(writer: &str, seq: u64, action: &Action, prev: &str) -> Vec<u8> {
    let signed = Signed {
        writer,
        seq,
        action,
        prev,
    };
    // Strings, numbers and a string map: serialization cannot fail.
    serde_json::to_vec(&signed).unwrap_or_default()
}

/// One writer's chain: appends entries linked to the last one.
#[derive(Debug)]
pub struct Chain {
    writer: String,
    next_seq: u64,
    last_mac: String,
}

impl Chain {
    /// A new chain for `writer` (unique per process: instance id and start time).
    pub fn new(writer: impl Into<String>) -> Self {
        Self {
            writer: writer.into(),
            next_seq: 0,
            last_mac: GENESIS.to_owned(),
        }
    }

    /// The next entry, linked to the last one and MAC'd with `key`.
    pub fn append(&mut self, key: &AuditKey, action: Action) -> Entry {
        let bytes = signed_bytes(&self.writer, self.next_seq, &action, &self.last_mac);
        let mut mac = key.mac();
        mac.update(&bytes);
        let entry = Entry {
            writer: self.writer.clone(),
            seq: self.next_seq,
            action,
            prev: std::mem::take(&mut self.last_mac),
            mac: hex::encode(mac.finalize().into_bytes()),
        };
        self.next_seq += 1;
        self.last_mac.clone_from(&entry.mac);
        entry
    }
}

/// Why an entry breaks its chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Broken {
    /// The MAC does not match the content (altered, or written without the key).
    #[error(
        "entry {seq} of writer {writer}: the MAC does not match (altered, or not written with this key)"
    )]
    BadMac { writer: String, seq: u64 },
    /// The entry does not follow its predecessor (one removed, re-ordered or written again).
    #[error(
        "entry {seq} of writer {writer}: expected entry {expected} (entries removed, re-ordered or written again)"
    )]
    OutOfSequence {
        writer: String,
        seq: u64,
        expected: u64,
    },
    /// The entry names a predecessor other than the one before it.
    #[error("entry {seq} of writer {writer}: it does not follow the entry before it")]
    BadLink { writer: String, seq: u64 },
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries checked.
    pub entries: usize,
    /// Every writer's last entry: `(seq, mac)`.
    pub heads: BTreeMap<String, (u64, String)>,
    /// Every break, in the order read.
    pub broken: Vec<Broken>,
}

impl Report {
    /// Whether every chain is whole.
    pub fn ok(&self) -> bool {
        self.broken.is_empty()
    }
}

/// Checks `entries` in the order they were read (a partition's offsets): each writer's
/// entries must run 0, 1, 2, … each naming its predecessor's MAC, each MAC valid under `key`.
pub fn verify<'a>(key: &AuditKey, entries: impl IntoIterator<Item = &'a Entry>) -> Report {
    let mut report = Report::default();
    for e in entries {
        report.entries += 1;
        let bytes = signed_bytes(&e.writer, e.seq, &e.action, &e.prev);
        let mut mac = key.mac();
        mac.update(&bytes);
        let mac_ok = hex::decode(&e.mac).is_ok_and(|m| mac.verify_slice(&m).is_ok());
        let (expected, prev) = report
            .heads
            .get(&e.writer)
            .map_or((0, GENESIS), |(seq, mac)| (seq + 1, mac.as_str()));
        if !mac_ok {
            report.broken.push(Broken::BadMac {
                writer: e.writer.clone(),
                seq: e.seq,
            });
        } else if e.seq != expected {
            report.broken.push(Broken::OutOfSequence {
                writer: e.writer.clone(),
                seq: e.seq,
                expected,
            });
        } else if e.prev != prev {
            report.broken.push(Broken::BadLink {
                writer: e.writer.clone(),
                seq: e.seq,
            });
        }
        // Every entry moves its chain on (as far as it claims), so that one tampering is
        // reported once, not again at each entry after it.
        report
            .heads
            .insert(e.writer.clone(), (e.seq, e.mac.clone()));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> AuditKey {
        AuditKey::new(&[b; 32]).unwrap()
    }

    fn action(i: u64) -> Action {
        Action {
            time_ms: 1_800_000_000_000 + i,
            action: "publisher.revoke".into(),
            principal: "sas:manage@/".into(),
            request_id: format!("req-{i}"),
            hub: Some("telemetry".into()),
            target: Some(format!("device-{i}")),
            details: BTreeMap::new(),
        }
    }

    /// Two writers' chains of `n` entries each, interleaved as a topic would hold them.
    fn log(n: u64) -> Vec<Entry> {
        let k = key(7);
        let (mut a, mut b) = (Chain::new("a"), Chain::new("b"));
        (0..n)
            .flat_map(|i| [a.append(&k, action(i)), b.append(&k, action(i + 100))])
            .collect()
    }

    #[test]
    fn audit_untouched_log_verifies_ok() {
        let entries = log(5);
        let r = verify(&key(7), &entries);
        assert!(r.ok(), "{:?}", r.broken);
        assert_eq!(r.entries, 10);
        assert_eq!(r.heads["a"].0, 4);
        // Written as JSON and read back: still whole.
        let json: Vec<String> = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let back: Vec<Entry> = json
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        assert!(verify(&key(7), &back).ok());
    }

    #[test]
    fn audit_deleted_entry_fails() {
        let mut entries = log(5);
        entries.remove(4); // a's entry 2
        let r = verify(&key(7), &entries);
        assert_eq!(
            r.broken,
            [Broken::OutOfSequence {
                writer: "a".into(),
                seq: 3,
                expected: 2
            }]
        );
    }

    #[test]
    fn audit_altered_entry_fails() {
        let mut entries = log(3);
        entries[2].action.target = Some("someone-else".into());
        let r = verify(&key(7), &entries);
        assert_eq!(
            r.broken,
            [Broken::BadMac {
                writer: "a".into(),
                seq: 1
            }]
        );
    }

    #[test]
    fn audit_reordered_or_rewritten_entry_fails() {
        let mut entries = log(3);
        entries.swap(0, 2); // a's 0 and 1 swapped
        assert!(!verify(&key(7), &entries).ok());
        let mut entries = log(3);
        let again = entries[0].clone();
        entries.push(again); // an old entry produced again at the end
        let r = verify(&key(7), &entries);
        assert!(matches!(
            r.broken.as_slice(),
            [Broken::OutOfSequence {
                seq: 0,
                expected: 3,
                ..
            }]
        ));
    }

    #[test]
    fn audit_wrong_key_or_forged_link_fails() {
        let entries = log(2);
        let r = verify(&key(8), &entries);
        assert_eq!(r.broken.len(), 4, "every entry, under another key");
        // A forger with the key of another deployment, or a chain spliced from elsewhere:
        let mut other = Chain::new("a");
        other.append(&key(7), action(50));
        let spliced = other.append(&key(7), action(51)); // a valid entry 1 of another chain
        let mut entries = log(2);
        entries[2] = spliced;
        assert!(matches!(
            verify(&key(7), &entries).broken.as_slice(),
            [Broken::BadLink { seq: 1, .. }]
        ));
    }

    #[test]
    fn audit_key_too_short_fails() {
        assert_eq!(AuditKey::new(&[0; 31]).unwrap_err(), KeyTooShort);
        assert_eq!(format!("{:?}", key(1)), "AuditKey(…)");
    }

    proptest::proptest! {
        #[test]
        fn audit_any_single_change_detected_ok(n in 1u64..8, victim in 0usize..16, change in 0u8..4) {
            let mut entries = log(n);
            let i = victim % entries.len();
            match change {
                0 => { entries.remove(i); }
                1 => entries[i].action.principal.push('x'),
                2 => entries[i].seq += 1,
                _ => entries[i].action.time_ms += 1,
            }
            // Removing a chain's last entry is the one change a chain cannot show.
            let last_of_writer = entries.len() < log(n).len()
                && i >= log(n).len() - 2;
            proptest::prop_assert!(last_of_writer || !verify(&key(7), &entries).ok());
        }
    }
}
