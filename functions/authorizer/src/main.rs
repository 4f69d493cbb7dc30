//! authorizer binary: on Lambda, API Gateway authorizer events (and HTTP for
//! `POST /v1/authorize`); elsewhere `POST /v1/authorize`.

use std::process::ExitCode;
use std::sync::Arc;

use authorizer::{AuthorizerState, app, handle_event};
use clap::Parser;
use hubgate_server::runtime::{
    BoxError, ServeArgs, StartError, exit_code, serve_with_events, start,
};

/// hubgate authorizer: decides whether a request may reach hubgate's functions.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    exit_code(
        async {
            let (config, clients, mode) = start(&cli.serve).await?;
            let state = Arc::new(AuthorizerState::new(&config, &clients));
            let router = app(Arc::clone(&state));
            let on_event = move |payload: serde_json::Value| {
                let state = Arc::clone(&state);
                async move { handle_event(&state, payload).await.map_err(BoxError::from) }
            };
            serve_with_events(router, mode, on_event)
                .await
                .map_err(StartError::from)
        }
        .await,
    )
}
