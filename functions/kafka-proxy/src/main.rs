//! kafka-proxy binary: configuration, clients, serve (Lambda, Azure custom handler or standalone).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hubgate_server::runtime::{ServeArgs, StartError, exit_code, serve, start};
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
    let cli = Cli::parse();
    exit_code(
        async {
            let (config, clients, mode) = start(&cli.serve).await?;
            let router = app(Arc::new(ProxyState::new(config, &clients)));
            serve(router, mode).await.map_err(StartError::from)
        }
        .await,
    )
}
