//! Rules for the unit tests: four SAS rules on namespace `ns.test`.

use crate::authz::RuleConfig;
use crate::rights::Right;
use crate::sas::SasKey;

pub(crate) const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub(crate) const KEY_B: &str = "r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo=";

/// What the tests need of a configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) namespace: String,
    pub(crate) rules: Vec<RuleConfig>,
}

fn rule(
    name: &str,
    right: Right,
    hub: Option<&str>,
    primary: &str,
    secondary: Option<&str>,
) -> RuleConfig {
    let key = |k: &str| SasKey::new(k).unwrap_or_else(|e| panic!("{e}"));
    RuleConfig {
        name: name.into(),
        rights: vec![right],
        hub: hub.map(Into::into),
        primary_key: key(primary),
        secondary_key: secondary.map(key),
    }
}

/// `manage` (keys A and B), `send` (B), `listen` (A), `only-hub` (Send on hub `only`, B).
pub(crate) fn test_config() -> Config {
    Config {
        namespace: "ns.test".into(),
        rules: vec![
            rule("manage", Right::Manage, None, KEY_A, Some(KEY_B)),
            rule("send", Right::Send, None, KEY_B, None),
            rule("listen", Right::Listen, None, KEY_A, None),
            rule("only-hub", Right::Send, Some("only"), KEY_B, None),
        ],
    }
}
