//! Non-HTTP invocations of the token issuer (on Lambda these arrive as raw JSON events;
//! elsewhere `hubgate invoke` runs them):
//!
//! * direct invocation, e.g. from a device-provisioning pipeline (Step Functions, another
//!   Lambda): `{"action": "mint", "hub", "publisher"?, "consumer_group"?, "rights"?, "ttl_secs"}`,
//!   `{"action": "revoke" | "resume", "hub", "publisher"}`. IAM decides who may invoke;
//! * an EventBridge scheduled event (`"detail-type": "Scheduled Event"`): rotate the keys now;
//! * a Secrets Manager rotation step (`{"Step", "SecretId", "ClientRequestToken"}`).

use hubgate_server::ApiError;
use hubgate_server::names::{validate_hub, validate_publisher};
use hubgate_server::secrets::{RotationEvent, RotationStep, SecretError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::IssuerState;
use crate::mint::{MintRequest, mint};

/// Who direct invocations are attributed to in the audit log.
const INVOKER: &str = "lambda:invoke";

/// A non-HTTP event failed. On Lambda this is the invocation's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("{0}")]
    Mint(#[from] crate::mint::MintError),
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("key rotation needs `secret_id` (the Secrets Manager secret holding the SAS rules)")]
    NoSecret,
}

impl From<serde_json::Error> for EventError {
    fn from(e: serde_json::Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Invocation {
    Mint(MintRequest),
    Revoke(PublisherRef),
    Resume(PublisherRef),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublisherRef {
    hub: String,
    publisher: String,
}

impl PublisherRef {
    fn validate(&self, s: &IssuerState) -> Result<(), EventError> {
        validate_hub(&self.hub).map_err(ApiError::from)?;
        validate_publisher(&self.publisher).map_err(ApiError::from)?;
        if !s.config.hub_allowed(&self.hub) {
            return Err(
                ApiError::UnknownTopic(format!("hub '{}' does not exist", self.hub)).into(),
            );
        }
        Ok(())
    }
}

/// Handles one non-HTTP event; returns the JSON result.
pub async fn handle_event(s: &IssuerState, payload: Value) -> Result<Value, EventError> {
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let store = s.gate.keys.secret_store().ok_or(EventError::NoSecret)?;
        let version = store.rotate_now().await?;
        s.gate.keys.reload_now().await;
        audit_event(
            s,
            "keys.rotate",
            None,
            None,
            vec![("version", version.clone())],
        )
        .await?;
        return Ok(json!({ "rotated": true, "version": version }));
    }
    if payload.get("Step").is_some() {
        let e: RotationEvent = serde_json::from_value(payload)?;
        let store = s
            .gate
            .keys
            .secret_store()
            .ok_or(EventError::NoSecret)?
            .for_secret(&e.secret_id);
        store.rotation_step(e.step, &e.client_request_token).await?;
        if e.step == RotationStep::FinishSecret {
            s.gate.keys.reload_now().await;
        }
        let details = vec![
            ("step", format!("{:?}", e.step)),
            ("version", e.client_request_token.clone()),
        ];
        audit_event(s, "keys.rotate", None, Some(&e.secret_id), details).await?;
        return Ok(json!({ "step": format!("{:?}", e.step), "ok": true }));
    }
    if payload.get("action").is_some() {
        return match serde_json::from_value::<Invocation>(payload)? {
            Invocation::Mint(request) => {
                Ok(serde_json::to_value(mint(s, request, INVOKER, "").await?)?)
            }
            Invocation::Revoke(p) => {
                p.validate(s)?;
                let changed = s
                    .revocations
                    .revoke(&p.hub, &p.publisher, INVOKER)
                    .await
                    .map_err(ApiError::from)?
                    .is_some();
                tracing::info!(
                    hub = p.hub,
                    publisher = p.publisher,
                    changed,
                    by = INVOKER,
                    "publisher revoked"
                );
                if changed {
                    audit_event(
                        s,
                        "publisher.revoke",
                        Some(&p.hub),
                        Some(&p.publisher),
                        Vec::new(),
                    )
                    .await?;
                }
                Ok(
                    json!({ "hub": p.hub, "publisher": p.publisher, "revoked": true, "changed": changed }),
                )
            }
            Invocation::Resume(p) => {
                p.validate(s)?;
                let changed = s
                    .revocations
                    .resume(&p.hub, &p.publisher)
                    .await
                    .map_err(ApiError::from)?;
                tracing::info!(
                    hub = p.hub,
                    publisher = p.publisher,
                    changed,
                    by = INVOKER,
                    "publisher resumed"
                );
                if changed {
                    audit_event(
                        s,
                        "publisher.resume",
                        Some(&p.hub),
                        Some(&p.publisher),
                        Vec::new(),
                    )
                    .await?;
                }
                Ok(
                    json!({ "hub": p.hub, "publisher": p.publisher, "revoked": false, "changed": changed }),
                )
            }
        };
    }
    Err(EventError::Invalid(
        "expected an HTTP request, {\"action\": \"mint\" | \"revoke\" | \"resume\", …}, an EventBridge \
         \"Scheduled Event\", or a Secrets Manager rotation step"
            .into(),
    ))
}

/// Records an action of an invocation (its principal is [`INVOKER`]; no request id).
async fn audit_event(
    s: &IssuerState,
    action: &'static str,
    hub: Option<&str>,
    target: Option<&str>,
    details: Vec<(&'static str, String)>,
) -> Result<(), EventError> {
    s.audit
        .record(hubgate_server::audit::Event {
            action,
            principal: INVOKER,
            request_id: "",
            hub,
            target,
            details,
        })
        .await
        .map_err(|e| EventError::from(ApiError::from(e)))
}
