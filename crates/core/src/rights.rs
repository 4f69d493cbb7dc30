//! Rights and resources, the Event Hubs model: rights `Send`, `Listen`, `Manage` (Manage
//! implies the other two), on resources named by path segments below the namespace.

use std::fmt;

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

use crate::names::fold;

/// One right, as named in Event Hubs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Right {
    Send,
    Listen,
    Manage,
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Send => "Send",
            Self::Listen => "Listen",
            Self::Manage => "Manage",
        })
    }
}

bitflags! {
    /// A set of rights. Use [`Rights::grants`]: it applies "Manage implies Send and Listen".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Rights: u8 {
        const SEND = 1;
        const LISTEN = 2;
        const MANAGE = 4;
    }
}

impl From<Right> for Rights {
    fn from(r: Right) -> Self {
        match r {
            Right::Send => Self::SEND,
            Right::Listen => Self::LISTEN,
            Right::Manage => Self::MANAGE,
        }
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Self::empty(), |acc, r| acc | r.into())
    }
}

impl Rights {
    /// Whether this set grants `right` (Manage grants everything).
    pub fn grants(self, right: Right) -> bool {
        self.contains(Self::MANAGE) || self.contains(right.into())
    }

    /// The rights actually granted: Manage implies Send and Listen.
    pub fn effective(self) -> Rights {
        if self.contains(Self::MANAGE) {
            Self::all()
        } else {
            self
        }
    }

    /// Whether this set grants every right in `wanted`.
    pub fn grants_all(self, wanted: Rights) -> bool {
        self.contains(Self::MANAGE) || self.contains(wanted)
    }

    /// The rights as names, for responses and logs.
    pub fn names(self) -> Vec<Right> {
        [Right::Send, Right::Listen, Right::Manage]
            .into_iter()
            .filter(|r| self.contains((*r).into()))
            .collect()
    }
}

/// What a request acts on, as path segments below the namespace (`hub`,
/// `hub/publishers/p`, …). Compared case-insensitively, segment by segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    segments: Vec<String>,
}

/// The path segment under which Event Hubs names publishers.
pub const PUBLISHERS: &str = "publishers";

/// The path segment under which Event Hubs names consumer groups.
pub const CONSUMER_GROUPS: &str = "consumergroups";

impl Resource {
    /// The whole namespace (every hub).
    pub fn namespace() -> Self {
        Self { segments: vec![] }
    }

    /// One event hub (Kafka topic).
    pub fn hub(hub: &str) -> Self {
        Self {
            segments: vec![fold(hub)],
        }
    }

    /// One consumer group of a hub.
    pub fn consumer_group(hub: &str, consumer_group: &str) -> Self {
        Self {
            segments: vec![fold(hub), CONSUMER_GROUPS.into(), fold(consumer_group)],
        }
    }

    /// One publisher on a hub.
    pub fn publisher(hub: &str, publisher: &str) -> Self {
        Self {
            segments: vec![fold(hub), PUBLISHERS.into(), fold(publisher)],
        }
    }

    /// A resource of already lower-cased segments (a verified token's scope).
    pub(crate) fn from_segments(segments: Vec<String>) -> Self {
        Self { segments }
    }

    /// The lower-cased segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether `scope` is a segment prefix of this resource.
    pub fn is_within(&self, scope: &[String]) -> bool {
        scope.len() <= self.segments.len() && scope.iter().zip(&self.segments).all(|(a, b)| a == b)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            f.write_str("/")
        } else {
            f.write_str(&self.segments.join("/"))
        }
    }
}
