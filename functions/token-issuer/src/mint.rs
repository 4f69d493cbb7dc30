//! Minting: which rule signs, which resource the token covers, for how long.

use hubgate_server::audit::Event;
use hubgate_server::authz::{CONSUMER_GROUPS, PUBLISHERS, unix_now};
use hubgate_server::config::signing_rule;
use hubgate_server::names::NameError;
use hubgate_server::names::{validate_consumer_group, validate_hub, validate_publisher};
use hubgate_server::{ApiError, KafkaError, Right, Rights};
use serde::{Deserialize, Serialize};

use crate::IssuerState;

/// What to mint. Exactly one of: `publisher` (a Send token for that publisher),
/// `consumer_group` (a Listen token for that group), or neither with `rights` (a token for
/// the whole hub).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    pub hub: String,
    #[serde(default)]
    pub publisher: Option<String>,
    #[serde(default)]
    pub consumer_group: Option<String>,
    #[serde(default)]
    pub rights: Option<Vec<Right>>,
    pub ttl_secs: u64,
}

/// The minted token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MintResponse {
    /// `SharedAccessSignature sr=…&sig=…&se=…&skn=…`
    pub token: String,
    /// The resource URI the token covers.
    pub resource: String,
    /// Expiry, Unix seconds (the token's `se`).
    pub expires_at: u64,
}

/// Why a token was not minted (the HTTP route and the direct invocation both report it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// The request does not say what to mint in a way that can be minted.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("minting Manage tokens is disabled (issuer.allow_manage_tokens = false)")]
    ManageDisabled,
    #[error("hub '{0}' does not exist")]
    UnknownHub(String),
    #[error("publisher '{0}' is revoked; resume it before minting a token for it")]
    Revoked(String),
    #[error("no SAS rule grants {wanted:?} on hub '{hub}'")]
    NoRule { wanted: Vec<Right>, hub: String },
    #[error(
        "the only rule granting that on '{hub}' is '{rule}', which has Manage; add a rule with just the rights wanted"
    )]
    OnlyManageRule { hub: String, rule: String },
    /// The revocation list could not be read.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl From<MintError> for ApiError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::Invalid(m) => Self::BadRequest(m),
            MintError::Name(n) => Self::BadName(n),
            MintError::UnknownHub(_) => Self::UnknownTopic(e.to_string()),
            MintError::Revoked(_) => Self::Conflict(e.to_string()),
            MintError::Kafka(k) => Self::Kafka(k),
            other => Self::Forbidden(other.to_string()),
        }
    }
}

/// Checks `requested` (if any) is exactly `only`.
fn only(requested: Option<&[Right]>, only: Right, what: &str) -> Result<(), MintError> {
    match requested {
        None => Ok(()),
        Some([r]) if *r == only => Ok(()),
        Some(_) => Err(MintError::Invalid(format!(
            "a {what} token has exactly the {only} right; omit `rights` or send [\"{only}\"]"
        ))),
    }
}

/// Mints the token `request` asks for; `by` (a principal name) and `request_id` go to the
/// audit log (the token does not), before the token is handed out.
pub(crate) async fn mint(
    s: &IssuerState,
    request: MintRequest,
    by: &str,
    request_id: &str,
) -> Result<MintResponse, MintError> {
    let MintRequest {
        hub,
        publisher,
        consumer_group,
        rights,
        ttl_secs,
    } = request;
    validate_hub(&hub)?;
    let max = s.config.issuer.max_ttl.as_secs();
    if !(1..=max).contains(&ttl_secs) {
        return Err(MintError::Invalid(format!(
            "ttl_secs must be from 1 to {max}"
        )));
    }
    let (path, wanted): (Vec<&str>, Rights) = match (&publisher, &consumer_group) {
        (Some(_), Some(_)) => {
            return Err(MintError::Invalid(
                "give either publisher or consumer_group, not both".into(),
            ));
        }
        (Some(p), None) => {
            validate_publisher(p)?;
            only(rights.as_deref(), Right::Send, "publisher")?;
            (vec![&hub, PUBLISHERS, p], Rights::SEND)
        }
        (None, Some(cg)) => {
            validate_consumer_group(cg)?;
            only(rights.as_deref(), Right::Listen, "consumer group")?;
            (vec![&hub, CONSUMER_GROUPS, cg], Rights::LISTEN)
        }
        (None, None) => {
            let wanted: Rights = rights.unwrap_or_default().into_iter().collect();
            if wanted.is_empty() {
                return Err(MintError::Invalid(
                    "give publisher, consumer_group, or rights (Send, Listen) for a hub token"
                        .into(),
                ));
            }
            (vec![&hub], wanted)
        }
    };
    let allow_manage = s.config.issuer.allow_manage_tokens;
    if wanted.contains(Rights::MANAGE) && !allow_manage {
        return Err(MintError::ManageDisabled);
    }
    if !s.config.hub_allowed(&hub) {
        return Err(MintError::UnknownHub(hub));
    }
    if let Some(p) = &publisher
        && s.revocations.is_revoked(&hub, p).await?
    {
        return Err(MintError::Revoked(p.clone()));
    }

    // Sign with the newest keys, even if another process rotated them.
    s.gate.keys.reload_if_stale().await;
    let keys = s.gate.keys.current();
    // The least-privileged rule granting every wanted right; its rights are the token's.
    let rule = signing_rule(&keys.rules, Some(&hub), wanted).ok_or_else(|| MintError::NoRule {
        wanted: wanted.names(),
        hub: hub.clone(),
    })?;
    if rule.rights().grants(Right::Manage) && !allow_manage {
        return Err(MintError::OnlyManageRule {
            hub: hub.clone(),
            rule: rule.name.clone(),
        });
    }
    let expires_at = unix_now().saturating_add(ttl_secs);
    let resource = hubgate_server::sas::resource_uri(&s.config.namespace, path);
    let token = hubgate_server::sas::mint(&resource, &rule.name, &rule.primary_key, expires_at);
    tracing::info!(
        by,
        hub,
        publisher = publisher.as_deref(),
        consumer_group = consumer_group.as_deref(),
        rule = rule.name,
        expires_at,
        "token minted"
    );
    let mut details = vec![
        ("rule", rule.name.clone()),
        ("expires_at", expires_at.to_string()),
        ("rights", format!("{:?}", rule.rights().names())),
    ];
    if let Some(cg) = &consumer_group {
        details.push(("consumer_group", cg.clone()));
    }
    s.audit
        .record(Event {
            action: "token.mint",
            principal: by,
            request_id,
            hub: Some(&hub),
            target: publisher.as_deref().or(consumer_group.as_deref()),
            details,
        })
        .await?;
    Ok(MintResponse {
        token,
        resource,
        expires_at,
    })
}
