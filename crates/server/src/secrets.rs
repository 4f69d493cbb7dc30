//! SAS rules and keys in AWS Secrets Manager: loading, and key rotation implementing the
//! Secrets Manager rotation contract (docs.aws.amazon.com/secretsmanager/latest/userguide/
//! rotate-secrets_lambda-functions.html): `createSecret`, `setSecret`, `testSecret`,
//! `finishSecret`.
//!
//! The secret's value is JSON: `{"rules": [{"name", "rights", "hub"?, "primary_key",
//! "secondary_key"?}]}` (the same fields as `[[rules]]` in the TOML configuration).
//! Rotation gives every rule a new random primary key and keeps the old primary as the
//! secondary: tokens minted before a rotation verify until the next one.

use std::fmt;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_smithy_http_client::tls;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::RuleConfig;
use crate::sas::SasKey;

/// Secrets Manager version stages.
const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// A Secrets Manager operation failed. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("secrets manager {op}: {detail}")]
    Aws { op: &'static str, detail: String },
    #[error("the secret has no value in stage {0}")]
    NoValue(&'static str),
    #[error("the secret's value is not valid rules JSON: {0}")]
    BadValue(String),
    #[error("rotation: {0}")]
    Rotation(String),
}

impl SecretError {
    fn aws<E: std::error::Error + 'static, R: fmt::Debug>(
        op: &'static str,
        e: SdkError<E, R>,
    ) -> Self {
        Self::Aws {
            op,
            detail: DisplayErrorContext(&e).to_string(),
        }
    }
}

/// The JSON stored in the secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRules {
    pub rules: Vec<RuleConfig>,
}

/// Serialization view of a rule (keys exposed only here, to write the secret).
#[derive(Serialize)]
struct RuleOut<'a> {
    name: &'a str,
    rights: &'a [crate::authz::Right],
    #[serde(skip_serializing_if = "Option::is_none")]
    hub: Option<&'a str>,
    primary_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secondary_key: Option<&'a str>,
}

/// Serializes rules as the secret's JSON.
fn rules_json(rules: &[RuleConfig]) -> String {
    let out: Vec<RuleOut<'_>> = rules
        .iter()
        .map(|r| RuleOut {
            name: &r.name,
            rights: &r.rights,
            hub: r.hub.as_deref(),
            primary_key: r.primary_key.expose(),
            secondary_key: r.secondary_key.as_ref().map(SasKey::expose),
        })
        .collect();
    serde_json::json!({ "rules": out }).to_string()
}

fn parse_rules(text: &str) -> Result<Vec<RuleConfig>, SecretError> {
    // serde_json's message names the field and position, never the secret's content.
    let parsed: SecretRules =
        serde_json::from_str(text).map_err(|e| SecretError::BadValue(e.to_string()))?;
    if parsed.rules.is_empty() {
        return Err(SecretError::BadValue("no rules".into()));
    }
    Ok(parsed.rules)
}

/// The rules after one rotation: a new primary key per rule, the old primary as secondary.
pub fn rotated(rules: &[RuleConfig]) -> Result<Vec<RuleConfig>, SecretError> {
    rules
        .iter()
        .map(|r| {
            let primary = SasKey::generate().map_err(|e| SecretError::Rotation(e.to_string()))?;
            Ok(RuleConfig {
                primary_key: primary,
                secondary_key: Some(r.primary_key.clone()),
                ..r.clone()
            })
        })
        .collect()
}

/// One step of the rotation contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RotationStep {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

/// The rotation event Secrets Manager sends to the rotation function.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub step: RotationStep,
    pub secret_id: String,
    pub client_request_token: String,
}

/// A Secrets Manager client bound to one secret.
/// AWS configuration loaded the standard way (environment, profile, web identity,
/// container and instance credentials; `AWS_ENDPOINT_URL` for e.g. moto) with a rustls HTTPS
/// client on aws-lc, the crypto library every other TLS and signature check here uses (with
/// ring for the SDK alone the binaries were 0.6 MiB larger). Without an explicit client
/// every call fails at run time.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

#[derive(Debug, Clone)]
pub struct SecretStore {
    client: Client,
    secret_id: String,
}

impl SecretStore {
    /// Loads AWS configuration the standard way (environment, profile, IMDS/container
    /// credentials; `AWS_ENDPOINT_URL` for e.g. moto) with a rustls+ring HTTPS client.
    pub async fn from_env(secret_id: impl Into<String>) -> Self {
        let sdk = aws_sdk_config().await;
        Self {
            client: Client::new(&sdk),
            secret_id: secret_id.into(),
        }
    }

    /// The same client, bound to another secret (a rotation event names its secret).
    pub fn for_secret(&self, secret_id: &str) -> Self {
        Self {
            client: self.client.clone(),
            secret_id: secret_id.to_owned(),
        }
    }

    /// The secret this store reads.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The SDK client (tests use it to create secrets).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The secret's text in `stage` (and `version`).
    async fn text(
        &self,
        stage: &'static str,
        version: Option<&str>,
    ) -> Result<String, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| SecretError::aws("GetSecretValue", e))?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or(SecretError::NoValue(stage))
    }

    async fn value(
        &self,
        stage: &'static str,
        version: Option<&str>,
    ) -> Result<Vec<RuleConfig>, SecretError> {
        parse_rules(&self.text(stage, version).await?)
    }

    /// Kafka SASL credentials from this secret: `{"username", "password"}`, the form of MSK's
    /// SCRAM secrets (`kafka.sasl_secret_id`). The error never holds the value.
    pub async fn kafka_credentials(&self) -> Result<(String, SecretString), SecretError> {
        #[derive(Deserialize)]
        struct Credentials {
            username: String,
            password: SecretString,
        }
        let text = self.text(CURRENT, None).await?;
        let c: Credentials = serde_json::from_str(&text).map_err(|_| {
            SecretError::BadValue(
                "kafka.sasl_secret_id: the value is not {\"username\": …, \"password\": …}".into(),
            )
        })?;
        Ok((c.username, c.password))
    }

    /// The current rules (stage `AWSCURRENT`).
    pub async fn load(&self) -> Result<Vec<RuleConfig>, SecretError> {
        self.value(CURRENT, None).await
    }

    /// Runs one rotation step for version `token` (the `ClientRequestToken`).
    pub async fn rotation_step(&self, step: RotationStep, token: &str) -> Result<(), SecretError> {
        match step {
            RotationStep::CreateSecret => self.create_pending(token).await,
            // hubgate's functions read the secret themselves: no other service to update.
            RotationStep::SetSecret => Ok(()),
            RotationStep::TestSecret => self.test_pending(token).await,
            RotationStep::FinishSecret => self.finish(token).await,
        }
    }

    /// Rotates now, all four steps, under a new version id; returns it.
    pub async fn rotate_now(&self) -> Result<String, SecretError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| SecretError::Rotation(e.to_string()))?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        for step in [
            RotationStep::CreateSecret,
            RotationStep::SetSecret,
            RotationStep::TestSecret,
            RotationStep::FinishSecret,
        ] {
            self.rotation_step(step, &token).await?;
        }
        Ok(token)
    }

    /// Which stages each version has.
    async fn stages(&self) -> Result<Vec<(String, Vec<String>)>, SecretError> {
        let d = self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| SecretError::aws("DescribeSecret", e))?;
        Ok(d.version_ids_to_stages()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    /// `createSecret`: unless version `token` already holds a value, write the rotated rules
    /// as version `token`, stage `AWSPENDING`.
    async fn create_pending(&self, token: &str) -> Result<(), SecretError> {
        let current = self.load().await?;
        if self.value(PENDING, Some(token)).await.is_ok() {
            return Ok(()); // a retried step: already created
        }
        let next = rotated(&current)?;
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .client_request_token(token)
            .secret_string(rules_json(&next))
            .version_stages(PENDING)
            .send()
            .await
            .map_err(|e| SecretError::aws("PutSecretValue", e))?;
        tracing::info!(secret = %self.secret_id, version = token, rules = next.len(), "rotation: new keys created");
        Ok(())
    }

    /// `testSecret`: the pending rules parse, and each rule's new key signs a token that
    /// verifies against the rule.
    async fn test_pending(&self, token: &str) -> Result<(), SecretError> {
        let rules = self.value(PENDING, Some(token)).await?;
        for r in &rules {
            let t = crate::sas::mint(
                "https://rotation.test/",
                &r.name,
                &r.primary_key,
                u64::MAX / 2,
            );
            let parsed = crate::sas::SasToken::parse(&t)
                .map_err(|e| SecretError::Rotation(e.to_string()))?;
            let keys = std::iter::once(&r.primary_key).chain(r.secondary_key.as_ref());
            parsed
                .verify(keys, 0)
                .map_err(|e| SecretError::Rotation(format!("rule {}: {e}", r.name)))?;
        }
        Ok(())
    }

    /// `finishSecret`: move `AWSCURRENT` to version `token`.
    async fn finish(&self, token: &str) -> Result<(), SecretError> {
        let stages = self.stages().await?;
        let current = stages
            .iter()
            .find(|(_, s)| s.iter().any(|s| s == CURRENT))
            .map(|(v, _)| v.clone());
        if current.as_deref() == Some(token) {
            return Ok(()); // already finished
        }
        if !stages.iter().any(|(v, _)| v == token) {
            return Err(SecretError::Rotation(format!(
                "version {token} does not exist"
            )));
        }
        self.client
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage(CURRENT)
            .move_to_version_id(token)
            .set_remove_from_version_id(current)
            .send()
            .await
            .map_err(|e| SecretError::aws("UpdateSecretVersionStage", e))?;
        tracing::info!(secret = %self.secret_id, version = token, "rotation: new keys are current");
        Ok(())
    }
}

/// The secret value for `rules` (to create a secret, e.g. in tests or a setup script).
pub fn secret_value(rules: &[RuleConfig]) -> String {
    rules_json(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::test_config;

    #[test]
    fn rotated_moves_primary_to_secondary_ok() {
        let rules = test_config().rules;
        let next = rotated(&rules).unwrap();
        for (old, new) in rules.iter().zip(&next) {
            assert_eq!(new.name, old.name);
            assert_eq!(new.rights, old.rights);
            assert_eq!(new.secondary_key.as_ref(), Some(&old.primary_key));
            assert_ne!(new.primary_key, old.primary_key);
        }
    }

    #[test]
    fn secret_json_round_trip_ok() {
        let rules = test_config().rules;
        let back = parse_rules(&secret_value(&rules)).unwrap();
        assert_eq!(back.len(), rules.len());
        assert_eq!(back[0].primary_key, rules[0].primary_key);
        assert_eq!(back[0].secondary_key, rules[0].secondary_key);
        assert_eq!(back[3].hub.as_deref(), Some("only"));
    }

    #[test]
    fn parse_rules_bad_value_hides_content_fails() {
        let err = parse_rules(
            r#"{"rules": [{"name": "x", "rights": ["Send"], "primary_key": "s3cr3t"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(parse_rules(r#"{"rules": []}"#).is_err());
        assert!(parse_rules("not json").is_err());
    }

    #[test]
    fn rotation_event_fixture_parses_ok() {
        let e: RotationEvent = serde_json::from_str(
            r#"{"Step": "createSecret", "SecretId": "arn:x", "ClientRequestToken": "t-1"}"#,
        )
        .unwrap();
        assert_eq!(e.step, RotationStep::CreateSecret);
        assert_eq!(e.client_request_token, "t-1");
    }
}
