//! token-issuer binary: configuration, clients, serve (Lambda with HTTP and other events,
//! Azure custom handler, or standalone).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hubgate_shared::runtime::{BoxError, Mode, ServeArgs, init_tracing, serve_with_events};
use hubgate_shared::{Gate, Kafka, Revocations};
use token_issuer::{IssuerState, app, handle_event};

/// hubgate token-issuer: mints SAS tokens, revokes publishers, rotates keys.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let config = match cli.serve.load() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let gate = match Gate::load(&config).await {
        Ok(g) => Arc::new(g),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the credentials configuration");
            return ExitCode::FAILURE;
        }
    };
    let kafka = Arc::new(Kafka::new(&config.kafka));
    let revocations = Arc::new(Revocations::new(kafka, &config));
    let state = Arc::new(IssuerState {
        config: Arc::clone(&config),
        gate,
        revocations,
    });
    let router = app(Arc::clone(&state));
    let on_event = move |payload: serde_json::Value| {
        let state = Arc::clone(&state);
        async move { handle_event(&state, payload).await.map_err(BoxError::from) }
    };
    let result = match Mode::detect(config.listen) {
        Ok(mode) => serve_with_events(router, mode, on_event).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "stopped");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
