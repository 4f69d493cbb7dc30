//! hubgate: every function on one port (local development, containers, Azure Function
//! App), plus the operator CLI: mint a token, generate a key.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use hubgate_server::Clients;
use hubgate_server::config::ConfigError;
use hubgate_server::config::signing_rule;
use hubgate_server::names::NameError;
use hubgate_server::names::{validate_hub, validate_publisher};
use hubgate_server::runtime::{
    BoxError, ServeArgs, StartError, exit_code, init_tracing, serve_with_events, start,
};
use hubgate_server::sas::KeyError;
use hubgate_server::sas::{SasKey, mint};
use hubgate_server::{Config, Right};

/// hubgate: a secure HTTPS front door to Kafka.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every function on one port.
    Serve(ServeArgs),
    /// Mint a SAS token from a rule in the configuration; prints the token.
    Token {
        /// TOML configuration file.
        #[arg(long, env = "HUBGATE_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// The event hub (Kafka topic); omit for a namespace-wide token.
        #[arg(long)]
        hub: Option<String>,
        /// Scope the token to this publisher (it can then only send as that publisher).
        #[arg(long)]
        publisher: Option<String>,
        /// The rule whose primary key signs the token. Default: the first rule that grants
        /// `--right` on the hub.
        #[arg(long)]
        rule: Option<String>,
        /// The right the token is for when choosing a rule.
        #[arg(long, value_enum, default_value = "send")]
        right: RightArg,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Print a new random 256-bit SAS key (base64, like Azure's); also an `[audit] key`.
    Key,
    /// The audit log of management actions.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run one non-HTTP event, as Lambda would deliver it, and print the result:
    /// `{"action": "mint" | "revoke" | "resume", …}`, an EventBridge scheduled event (rotate
    /// the keys), a Secrets Manager rotation step, or an API Gateway authorizer event.
    Invoke {
        /// TOML configuration file.
        #[arg(long, env = "HUBGATE_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// The event: JSON text, or @FILE.
        #[arg(long)]
        event: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every chain of the audit topic with the configured `[audit] key`: exit 0 when
    /// whole; otherwise list each removed, altered, re-ordered or forged entry and exit 1.
    Verify {
        /// TOML configuration file.
        #[arg(long, env = "HUBGATE_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// Check this topic instead of `[audit] topic` (a copy, say).
        #[arg(long)]
        topic: Option<String>,
        /// Accept chains whose first entries are gone from the start of the log (a finite
        /// `audit.retention_ms` deletes them; Kafka cannot tell that from a delete-records).
        #[arg(long)]
        allow_truncated: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RightArg {
    Send,
    Listen,
    Manage,
}

impl From<RightArg> for Right {
    fn from(r: RightArg) -> Self {
        match r {
            RightArg::Send => Self::Send,
            RightArg::Listen => Self::Listen,
            RightArg::Manage => Self::Manage,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run(Cli::parse()).await)
}

/// Why a command failed: the message is for the operator at the terminal.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{0}: {1}")]
    File(String, std::io::Error),
    #[error("the event is not JSON: {0}")]
    EventNotJson(serde_json::Error),
    #[error("{0}")]
    Event(BoxError),
    #[error("{0}")]
    Usage(String),
    #[error("the audit log could not be read: {0}")]
    Kafka(#[from] hubgate_server::KafkaError),
    #[error("the audit log is broken (see above)")]
    AuditBroken,
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => {
            let (config, clients, mode) = start(&args).await?;
            let router = hubgate::app(Arc::clone(&config), &clients);
            let on_event = move |payload: serde_json::Value| {
                let (config, clients) = (Arc::clone(&config), clients.clone());
                async move { hubgate::handle_event(config, &clients, payload).await }
            };
            Ok(serve_with_events(router, mode, on_event)
                .await
                .map_err(StartError::from)?)
        }
        Command::Token {
            config,
            hub,
            publisher,
            rule,
            right,
            ttl_secs,
        } => {
            let config = Config::load(config.as_deref())?;
            println!(
                "{}",
                token(
                    &config,
                    hub.as_deref(),
                    publisher.as_deref(),
                    rule.as_deref(),
                    right.into(),
                    ttl_secs
                )?
            );
            Ok(())
        }
        Command::Invoke { config, event } => {
            init_tracing();
            let text = match event.strip_prefix('@') {
                Some(file) => {
                    std::fs::read_to_string(file).map_err(|e| CliError::File(file.to_owned(), e))?
                }
                None => event,
            };
            let payload: serde_json::Value =
                serde_json::from_str(&text).map_err(CliError::EventNotJson)?;
            let config = Arc::new(Config::load(config.as_deref())?);
            let clients = Clients::load(&config).await?;
            let result = hubgate::handle_event(config, &clients, payload)
                .await
                .map_err(CliError::Event)?;
            println!("{result}");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify {
            config,
            topic,
            allow_truncated,
        }) => {
            let config = Config::load(config.as_deref())?;
            let key = config
                .audit
                .key()
                .map_err(CliError::Usage)?
                .ok_or_else(|| CliError::Usage("[audit] key is not set".into()))?;
            let topic = topic.unwrap_or_else(|| config.audit.topic.clone());
            let clients = Clients::load(&config).await?;
            let verdict =
                hubgate_server::audit::verify_topic(&clients.kafka, &topic, &key, allow_truncated)
                    .await?;
            print!("{}", verdict_text(&topic, &verdict));
            if verdict.ok() {
                Ok(())
            } else {
                Err(CliError::AuditBroken)
            }
        }
        Command::Key => {
            let key = SasKey::generate()?;
            println!("{}", key.expose());
            Ok(())
        }
    }
}

/// What `hubgate audit verify` prints.
fn verdict_text(topic: &str, v: &hubgate_server::audit::Verdict) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "audit topic '{topic}': offsets {} to {}, {} entries in {} chains\n",
        v.earliest,
        v.end,
        v.report.entries,
        v.report.heads.len()
    );
    for (writer, (seq, _)) in &v.report.heads {
        let _ = writeln!(out, "  chain {writer}: last entry {seq}");
    }
    for writer in &v.truncated {
        let _ = writeln!(
            out,
            "  chain {writer}: its first entries are gone (allowed)"
        );
    }
    for (offset, why) in &v.not_entries {
        let _ = writeln!(out, "BROKEN: offset {offset} is not an audit entry: {why}");
    }
    for b in &v.report.broken {
        let _ = writeln!(out, "BROKEN: {b}");
    }
    out.push_str(if v.ok() {
        "OK: every chain is whole\n"
    } else {
        "FAILED\n"
    });
    out
}

/// Mints a token for the namespace, a hub, or one publisher on a hub, with a rule that
/// grants `right` there.
fn token(
    config: &Config,
    hub: Option<&str>,
    publisher: Option<&str>,
    rule: Option<&str>,
    right: Right,
    ttl_secs: u64,
) -> Result<String, CliError> {
    if let Some(h) = hub {
        validate_hub(h)?;
    }
    if let Some(p) = publisher {
        if hub.is_none() {
            return Err(CliError::Usage("--publisher needs --hub".into()));
        }
        validate_publisher(p)?;
    }
    let where_ = hub.map_or_else(|| "the namespace".to_owned(), |h| format!("hub '{h}'"));
    let rule = match rule {
        Some(name) => config.rule(name).filter(|r| r.covers(hub)).ok_or_else(|| {
            CliError::Usage(format!(
                "no rule '{name}' covering {where_} in the configuration"
            ))
        })?,
        None => signing_rule(&config.rules, hub, right.into())
            .ok_or_else(|| CliError::Usage(format!("no rule grants {right} on {where_}")))?,
    };
    let now = hubgate_server::authz::unix_now();
    let segments = match (hub, publisher) {
        (Some(h), Some(p)) => vec![h, hubgate_server::authz::PUBLISHERS, p],
        (Some(h), None) => vec![h],
        _ => vec![],
    };
    let uri = hubgate_server::sas::resource_uri(&config.namespace, segments);
    Ok(mint(
        &uri,
        &rule.name,
        &rule.primary_key,
        now.saturating_add(ttl_secs),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubgate_server::{Resource, authorize};

    fn config() -> Config {
        let key = SasKey::generate().unwrap();
        let key = key.expose();
        Config::from_toml(&format!(
            "namespace = 'ns.test'\n[[rules]]\nname='root'\nrights=['Manage','Send','Listen']\nhub='other'\nprimary_key='{key}'\n\
             [[rules]]\nname='listen'\nrights=['Listen']\nprimary_key='{key}'\n\
             [[rules]]\nname='send'\nrights=['Send']\nprimary_key='{key}'"
        ))
        .unwrap()
    }

    #[test]
    fn token_picks_least_privileged_rule_ok() {
        let c = config();
        assert!(
            token(&c, Some("other"), None, None, Right::Send, 60)
                .unwrap()
                .contains("skn=send")
        );
        assert!(
            token(&c, Some("other"), None, None, Right::Manage, 60)
                .unwrap()
                .contains("skn=root")
        );
        assert!(
            token(&c, Some("other"), None, Some("root"), Right::Send, 60)
                .unwrap()
                .contains("skn=root")
        );
    }

    #[test]
    fn token_publisher_verifies_and_is_scoped_ok() {
        let c = config();
        let t = token(&c, Some("hub"), Some("dev-1"), None, Right::Send, 60).unwrap();
        let auth = hubgate_server::Authenticator::new(&c.namespace, &c.rules);
        let p = auth
            .authenticate_sas(&t, hubgate_server::authz::unix_now())
            .unwrap();
        assert!(t.contains("skn=send"));
        assert!(authorize(&p, Right::Send, &Resource::publisher("hub", "dev-1")).is_ok());
        assert!(authorize(&p, Right::Send, &Resource::publisher("hub", "dev-2")).is_err());
    }

    #[test]
    fn token_namespace_wide_ok() {
        let c = config();
        let t = token(&c, None, None, None, Right::Listen, 60).unwrap();
        assert!(t.contains("sr=https%3A%2F%2Fns.test%2F&"), "{t}");
        let auth = hubgate_server::Authenticator::new(&c.namespace, &c.rules);
        let p = auth
            .authenticate_sas(&t, hubgate_server::authz::unix_now())
            .unwrap();
        assert!(authorize(&p, Right::Listen, &Resource::namespace()).is_ok());
    }

    #[test]
    fn token_bad_input_fails() {
        let c = config();
        assert!(token(&c, Some("hub"), Some("a/b"), None, Right::Send, 60).is_err());
        assert!(token(&c, Some("__x"), None, None, Right::Send, 60).is_err());
        assert!(token(&c, Some("hub"), None, None, Right::Manage, 60).is_err());
        assert!(token(&c, Some("hub"), None, Some("nope"), Right::Send, 60).is_err());
        assert!(token(&c, None, Some("p"), None, Right::Send, 60).is_err());
    }
}
