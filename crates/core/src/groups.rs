//! Security groups, the HDInsight Kafka REST proxy's model: members of configured groups get
//! configured rights (per hub or namespace-wide); everyone else is refused.
//!
//! Group ids are GUIDs parsed once at start-up. A token's `groups` claim (often 100+
//! entries, few of them configured) goes through a 256-bit filter on each entry's first
//! eight characters before any full comparison, so a claim of 100 groups costs ~1-2 ns per
//! entry. The result is a 64-bit mask of matching grants: no allocation on this path.
//!
//! Entra tokens carry no `groups` claim for app-only callers, nor one listing every group
//! on overage: the server then asks Microsoft Graph (`hubgate-server`, `groups`).

use serde::Deserialize;

use crate::rights::{Resource, Right, Rights};

/// Most group grants a policy may hold (they are addressed by a 64-bit mask).
pub const MAX_GRANTS: usize = 64;

/// `[[oauth.groups]]`: members of `group` get `rights`, on `hub` or the whole namespace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupGrantConfig {
    /// The group's object id (a GUID).
    pub group: String,
    pub rights: Vec<Right>,
    #[serde(default)]
    pub hub: Option<String>,
}

/// `[[oauth.groups]]` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupConfigError {
    #[error("at most {MAX_GRANTS} oauth.groups entries")]
    TooMany,
    #[error("oauth.groups: '{0}' is not a GUID")]
    NotAGuid(String),
    #[error("oauth.groups: {0}")]
    Hub(#[from] crate::names::NameError),
    #[error("oauth.groups: group {0} has no rights")]
    NoRights(String),
}

/// Parses a GUID without allocating.
pub fn guid(s: &str) -> Option<u128> {
    uuid::Uuid::try_parse(s).ok().map(|u| u.as_u128())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    group: u128,
    rights: Rights,
    scope: Resource,
}

/// The configured group grants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupPolicy {
    grants: Vec<Grant>,
    /// Per grant: the group id as lowercase hyphenated text, as Entra writes it.
    texts: Vec<[u8; 36]>,
    /// Per grant: [`head`] of that text.
    heads: Vec<u64>,
    /// Bit [`slot`] of every grant's head is set.
    filter: [u64; 4],
}

/// The first eight characters of a hyphenated GUID as a number, ASCII letters lowercased
/// (`| 0x20` maps `A-F` to `a-f` and leaves digits alone). Equal GUIDs, in any case, have
/// equal heads.
fn head(text: &[u8; 36]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&text[..8]);
    u64::from_le_bytes(first) | 0x2020_2020_2020_2020
}

/// A head's bit in the 256-bit filter (Fibonacci hashing).
fn slot(head: u64) -> usize {
    usize::from(head.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()[0])
}

impl GroupPolicy {
    /// Parses the grants (group ids must be GUIDs, hubs valid names).
    pub fn new(config: &[GroupGrantConfig]) -> Result<Self, GroupConfigError> {
        if config.len() > MAX_GRANTS {
            return Err(GroupConfigError::TooMany);
        }
        let grants = config
            .iter()
            .map(|g| {
                let group =
                    guid(&g.group).ok_or_else(|| GroupConfigError::NotAGuid(g.group.clone()))?;
                if let Some(h) = &g.hub {
                    crate::names::validate_hub(h)?;
                }
                if g.rights.is_empty() {
                    return Err(GroupConfigError::NoRights(g.group.clone()));
                }
                Ok(Grant {
                    group,
                    rights: g.rights.iter().copied().collect(),
                    scope: g
                        .hub
                        .as_deref()
                        .map_or_else(Resource::namespace, Resource::hub),
                })
            })
            .collect::<Result<Vec<Grant>, GroupConfigError>>()?;
        let texts: Vec<[u8; 36]> = grants
            .iter()
            .map(|g| {
                let mut text = [0u8; 36];
                uuid::Uuid::from_u128(g.group)
                    .hyphenated()
                    .encode_lower(&mut text);
                text
            })
            .collect();
        let heads: Vec<u64> = texts.iter().map(head).collect();
        let mut filter = [0u64; 4];
        for h in &heads {
            let s = slot(*h);
            filter[s / 64] |= 1 << (s % 64);
        }
        Ok(Self {
            grants,
            texts,
            heads,
            filter,
        })
    }

    /// The mask of grants whose group is among `groups`.
    pub fn mask<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> u64 {
        let mut mask = 0u64;
        for g in groups {
            if let Ok(text) = <&[u8; 36]>::try_from(g.as_bytes()) {
                // Hyphenated, the form Entra uses: filter, then compare text.
                let h = head(text);
                let s = slot(h);
                if self.filter[s / 64] & (1 << (s % 64)) == 0 {
                    continue;
                }
                for (i, (gh, gt)) in self.heads.iter().zip(&self.texts).enumerate() {
                    if *gh == h && text.eq_ignore_ascii_case(gt) {
                        mask |= 1 << i;
                    }
                }
            } else if let Some(id) = guid(g) {
                // Other GUID spellings (braces, no hyphens, urn:uuid:).
                for (i, grant) in self.grants.iter().enumerate() {
                    if grant.group == id {
                        mask |= 1 << i;
                    }
                }
            }
        }
        mask
    }

    /// Whether the grants in `mask` give `right` on `resource`.
    pub fn permits(&self, mask: u64, right: Right, resource: &Resource) -> bool {
        self.grants
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .any(|(_, g)| g.rights.grants(right) && resource.is_within(g.scope.segments()))
    }

    /// The union of the rights in `mask` (wherever they apply).
    pub fn rights(&self, mask: u64) -> Rights {
        self.grants
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .fold(Rights::empty(), |acc, (_, g)| acc | g.rights)
    }

    /// The distinct group ids, as Graph wants them.
    pub fn group_ids(&self) -> Vec<String> {
        let mut ids: Vec<u128> = self.grants.iter().map(|g| g.group).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|g| uuid::Uuid::from_u128(g).to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITERS: &str = "11111111-1111-1111-1111-111111111111";
    const READERS: &str = "22222222-2222-2222-2222-222222222222";
    const ADMINS: &str = "33333333-3333-3333-3333-333333333333";

    fn policy() -> GroupPolicy {
        GroupPolicy::new(&[
            GroupGrantConfig {
                group: WRITERS.into(),
                rights: vec![Right::Send],
                hub: Some("telemetry".into()),
            },
            GroupGrantConfig {
                group: READERS.into(),
                rights: vec![Right::Listen],
                hub: None,
            },
            GroupGrantConfig {
                group: ADMINS.to_uppercase(),
                rights: vec![Right::Manage],
                hub: None,
            },
        ])
        .unwrap()
    }

    #[test]
    fn policy_grants_by_group_and_hub_ok() {
        let p = policy();
        let m = p.mask([
            "not-a-guid",
            WRITERS,
            "44444444-4444-4444-4444-444444444444",
        ]);
        assert_eq!(m, 0b001);
        assert!(p.permits(m, Right::Send, &Resource::hub("telemetry")));
        assert!(p.permits(m, Right::Send, &Resource::publisher("telemetry", "d")));
        assert!(!p.permits(m, Right::Send, &Resource::hub("orders")));
        assert!(!p.permits(m, Right::Listen, &Resource::hub("telemetry")));
        let admin = p.mask([ADMINS]);
        assert!(
            p.permits(admin, Right::Send, &Resource::hub("orders")),
            "Manage implies Send; ids case-insensitive"
        );
        assert!(!p.permits(0, Right::Listen, &Resource::namespace()));
        assert_eq!(p.rights(0b011), Rights::SEND | Rights::LISTEN);
    }

    #[test]
    fn mask_other_guid_spellings_and_case_ok() {
        let p = policy();
        let braced = format!("{{{READERS}}}");
        let simple = WRITERS.replace('-', "");
        assert_eq!(p.mask([braced.as_str()]), 0b010);
        assert_eq!(p.mask([simple.as_str()]), 0b001);
        assert_eq!(p.mask([ADMINS.to_uppercase().as_str()]), 0b100);
        // Same first eight characters, different GUID.
        assert_eq!(p.mask(["11111111-1111-1111-1111-111111111112"]), 0);
        // Bytes that only differ in bit 0x20 from a hex digit are not that digit.
        assert_eq!(p.mask(["\x11111111-1111-1111-1111-11111111111"]), 0);
    }

    proptest::proptest! {
        /// The filtered text comparison agrees with parsing every entry as a GUID.
        #[test]
        fn mask_matches_parsing_every_entry_ok(
            granted in proptest::collection::vec(proptest::num::u128::ANY, 1..12),
            picks in proptest::collection::vec((proptest::num::usize::ANY, proptest::bool::ANY), 0..40),
            noise in proptest::collection::vec("[0-9a-fA-F-]{36}", 0..20),
        ) {
            let config: Vec<GroupGrantConfig> = granted
                .iter()
                .map(|g| GroupGrantConfig {
                    group: uuid::Uuid::from_u128(*g).to_string(),
                    rights: vec![Right::Send],
                    hub: None,
                })
                .collect();
            let policy = GroupPolicy::new(&config).unwrap();
            let mut claim: Vec<String> = picks
                .iter()
                .map(|(i, upper)| {
                    let t = uuid::Uuid::from_u128(granted[i % granted.len()]).to_string();
                    if *upper { t.to_uppercase() } else { t }
                })
                .collect();
            claim.extend(noise);
            let slow = claim.iter().filter_map(|g| guid(g)).fold(0u64, |m, id| {
                granted
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| **g == id)
                    .fold(m, |m, (i, _)| m | 1 << i)
            });
            proptest::prop_assert_eq!(policy.mask(claim.iter().map(String::as_str)), slow);
        }
    }

    #[test]
    fn policy_bad_config_fails() {
        assert!(
            GroupPolicy::new(&[GroupGrantConfig {
                group: "writers".into(),
                rights: vec![Right::Send],
                hub: None
            }])
            .is_err()
        );
        assert!(
            GroupPolicy::new(&[GroupGrantConfig {
                group: WRITERS.into(),
                rights: vec![],
                hub: None
            }])
            .is_err()
        );
        assert!(
            GroupPolicy::new(&[GroupGrantConfig {
                group: WRITERS.into(),
                rights: vec![Right::Send],
                hub: Some("__x".into())
            }])
            .is_err()
        );
    }

    #[test]
    fn group_ids_distinct_lowercase_ok() {
        let mut p = policy();
        p.grants.push(p.grants[0].clone());
        assert_eq!(p.group_ids(), [WRITERS, READERS, ADMINS]);
    }
}
