//! kafka-proxy binary: configuration, clients, serve (Lambda, Azure custom handler or standalone).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hubgate_shared::runtime::{Mode, ServeArgs, init_tracing, serve};
use hubgate_shared::{Gate, Kafka, Revocations};
use kafka_proxy::{ProxyState, app};

/// hubgate kafka-proxy: HDInsight-compatible /v1 API and Event Hubs send paths.
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
    let kafka = Arc::new(Kafka::new(&config.kafka));
    let revocations = Arc::new(Revocations::new(Arc::clone(&kafka), &config));
    if let Err(e) = revocations.refresh().await {
        tracing::warn!(error = %e, "could not load the revocation list at start-up; will retry on demand");
    }
    let gate = match Gate::load(&config).await {
        Ok(g) => Arc::new(g),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the credentials configuration");
            return ExitCode::FAILURE;
        }
    };
    let router = app(Arc::new(ProxyState::new(
        Arc::clone(&config),
        gate,
        kafka,
        revocations,
    )));
    let result = match Mode::detect(config.listen) {
        Ok(mode) => serve(router, mode).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "stopped");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
