//! Serve one axum `Router` three ways, chosen at start-up from the environment:
//!
//! * **AWS Lambda** when `AWS_LAMBDA_RUNTIME_API` is set (`lambda_http::run`);
//! * **Azure Functions custom handler** when `FUNCTIONS_CUSTOMHANDLER_PORT` is set: HTTP on
//!   `127.0.0.1:<port>`, `GET /` answers (the host's readiness probe), and routes are also
//!   reachable under the host's `/api` prefix;
//! * **standalone** otherwise, on the configured listen address.

use crate::listener::ServerConfig;
use crate::listener::tls::{Tls, TlsConfig};
pub use crate::startup::{RuntimeError, StartError};
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tracing_subscriber::EnvFilter;

/// Where the process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// AWS Lambda. `streaming`: answers as a response stream (`HUBGATE_LAMBDA_RESPONSE_STREAMING=true`),
    /// for a function URL whose invoke mode is `RESPONSE_STREAM` (event streams need it; API
    /// Gateway HTTP APIs invoke buffered, so a streaming function is deployed on its own).
    Lambda {
        streaming: bool,
    },
    Azure {
        port: u16,
        server: ServerConfig,
    },
    Standalone {
        listen: SocketAddr,
        server: ServerConfig,
        /// HTTPS when set.
        tls: Option<TlsConfig>,
    },
}

impl Mode {
    /// Detects the mode from the environment; `listen` and `tls` are used for standalone,
    /// `server`'s connection limits in both HTTP modes. (The Functions host terminates TLS
    /// and talks plain HTTP to its custom handler: there `[tls]` is ignored, with a warning.)
    pub fn detect(
        listen: SocketAddr,
        server: ServerConfig,
        tls: Option<TlsConfig>,
    ) -> Result<Self, RuntimeError> {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            let streaming = std::env::var("HUBGATE_LAMBDA_RESPONSE_STREAMING")
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
            return Ok(Self::Lambda { streaming });
        }
        if let Ok(port) = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT") {
            let port = port
                .trim()
                .parse()
                .map_err(|_| RuntimeError::BadPort(port.clone()))?;
            if tls.is_some() {
                tracing::warn!("[tls] is ignored under the Functions host: it terminates TLS");
            }
            return Ok(Self::Azure { port, server });
        }
        Ok(Self::Standalone {
            listen,
            server,
            tls,
        })
    }
}

/// The router an Azure custom handler serves: `GET /` for readiness, every route also
/// under `/api` (the Functions host's default route prefix).
pub fn azure_router(router: Router) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .nest("/api", router.clone())
        .merge(router)
}

/// Serves `router` in the detected mode until SIGTERM / Ctrl-C.
pub async fn serve(router: Router, mode: Mode) -> Result<(), RuntimeError> {
    match mode {
        Mode::Lambda { streaming: false } => {
            tracing::info!("starting as an AWS Lambda function");
            lambda_http::run(crate::traces::flushing_on_lambda(router))
                .await
                .map_err(|e| RuntimeError::Lambda(e.to_string()))
        }
        Mode::Lambda { streaming: true } => {
            tracing::info!("starting as an AWS Lambda function with response streaming");
            lambda_http::run_with_streaming_response(router)
                .await
                .map_err(|e| RuntimeError::Lambda(e.to_string()))
        }
        Mode::Azure { port, server } => {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            tracing::info!(%addr, "starting as an Azure Functions custom handler");
            serve_http(azure_router(router), addr, &server, None).await
        }
        Mode::Standalone {
            listen,
            server,
            tls,
        } => {
            tracing::info!(%listen, https = tls.is_some(), "starting standalone server");
            serve_http(router, listen, &server, tls.as_ref()).await
        }
    }
}

/// An error a non-HTTP event handler returns (reported by Lambda as the function's error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a Lambda payload is an API Gateway Lambda authorizer event (`"type"` with a
/// `routeArn` or `methodArn`); it looks like an HTTP request but is not one.
pub fn is_authorizer_event(payload: &serde_json::Value) -> bool {
    // Present means a string: serializers of the HTTP event shapes write absent fields as
    // `null` (cargo lambda's function-URL events carry `"type": null, "methodArn": null`).
    let text = |k: &str| payload.get(k).is_some_and(serde_json::Value::is_string);
    text("type") && (text("routeArn") || text("methodArn"))
}

/// Whether a Lambda payload is an HTTP request (API Gateway REST/HTTP API, ALB, function URL).
pub fn is_http_event(payload: &serde_json::Value) -> bool {
    !is_authorizer_event(payload)
        && payload.get("requestContext").is_some()
        && ["httpMethod", "rawPath", "path"]
            .iter()
            .any(|k| payload.get(*k).is_some())
}

/// Handles one Lambda payload: HTTP requests go through `router` (as `lambda_http` would),
/// anything else (direct invocation, EventBridge, Secrets Manager rotation) to `on_event`.
pub async fn dispatch_lambda_event<F, Fut>(
    router: Router,
    on_event: &F,
    payload: serde_json::Value,
    context: lambda_http::Context,
) -> Result<serde_json::Value, BoxError>
where
    F: Fn(serde_json::Value) -> Fut,
    Fut: Future<Output = Result<serde_json::Value, BoxError>>,
{
    if is_http_event(&payload) {
        let request: lambda_http::request::LambdaRequest = serde_json::from_value(payload)?;
        let adapter = lambda_http::Adapter::from(router);
        let response =
            tower::ServiceExt::oneshot(adapter, lambda_http::LambdaEvent::new(request, context))
                .await?;
        Ok(serde_json::to_value(response)?)
    } else {
        on_event(payload).await
    }
}

/// The moment the current AWS Lambda invocation must have answered by (from the request's
/// Lambda context; `None` outside Lambda). Event streams end before it. A deadline already
/// past is no deadline: a running invocation cannot have one, and emulators send other
/// values (cargo-lambda's is the timeout itself, 600000, not a time).
pub fn invocation_deadline(extensions: &http::Extensions) -> Option<std::time::SystemTime> {
    use lambda_http::RequestExt as _;
    let context = extensions.lambda_context_ref()?;
    let deadline = std::time::UNIX_EPOCH + std::time::Duration::from_millis(context.deadline);
    (deadline > std::time::SystemTime::now()).then_some(deadline)
}

/// Like [`serve`], but on Lambda also accepts non-HTTP events (a response-streaming
/// function, reached through its URL only, gets HTTP alone), handled by `on_event`
/// (elsewhere only HTTP exists, so `on_event` is unused there).
pub async fn serve_with_events<F, Fut>(
    router: Router,
    mode: Mode,
    on_event: F,
) -> Result<(), RuntimeError>
where
    F: Fn(serde_json::Value) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, BoxError>> + Send + 'static,
{
    match mode {
        Mode::Lambda { streaming: false } => {
            tracing::info!("starting as an AWS Lambda function (HTTP and other events)");
            let router = crate::traces::flushing_on_lambda(router);
            let handler = lambda_http::service_fn(
                move |event: lambda_http::LambdaEvent<serde_json::Value>| {
                    let (router, on_event) = (router.clone(), on_event.clone());
                    async move {
                        dispatch_lambda_event(router, &on_event, event.payload, event.context).await
                    }
                },
            );
            lambda_http::lambda_runtime::run(handler)
                .await
                .map_err(|e| RuntimeError::Lambda(e.to_string()))
        }
        other => serve(router, other).await,
    }
}

async fn serve_http(
    router: Router,
    addr: SocketAddr,
    server: &ServerConfig,
    tls: Option<&TlsConfig>,
) -> Result<(), RuntimeError> {
    let tls = tls.map(Tls::load).transpose()?.map(std::sync::Arc::new);
    if let Some(tls) = &tls {
        tls.spawn_reload();
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RuntimeError::Bind(addr, e))?;
    crate::listener::serve(listener, router, server, tls, shutdown_signal()).await;
    crate::traces::shutdown();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Structured logs to stdout: JSON by default (`HUBGATE_LOG_FORMAT=text` for humans),
/// level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    init_tracing_with(None);
}

/// [`init_tracing`], and with `traces` the spans exported by OpenTelemetry (their own filter:
/// hubgate's spans at INFO and the [`crate::traces::TARGET`] spans, whatever `RUST_LOG` says).
pub fn init_tracing_with(traces: Option<opentelemetry_sdk::trace::Tracer>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("HUBGATE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("text"));
    let logs = tracing_subscriber::fmt::layer().with_ansi(false);
    let logs = if text {
        logs.boxed()
    } else {
        logs.json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    // Two arms, not an `Option` layer: an absent layer counts as one that wants everything,
    // and every DEBUG span and event of every crate would then be built (and the trace-only
    // spans entered, hiding the request span from `Span::current`).
    let _ = match traces {
        Some(tracer) => {
            let wanted = tracing_subscriber::filter::Targets::new()
                .with_target(crate::traces::TARGET, tracing::Level::DEBUG)
                .with_default(tracing::Level::INFO);
            let spans = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(wanted);
            registry.with(spans).try_init()
        }
        None => registry.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    #[test]
    fn invocation_deadline_past_or_missing_is_none_ok() {
        let mut extensions = http::Extensions::new();
        assert_eq!(invocation_deadline(&extensions), None);
        let ms = |t: std::time::SystemTime| {
            u64::try_from(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
        };
        let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let mut context = lambda_http::Context::default();
        context.deadline = ms(soon);
        extensions.insert(context.clone());
        let got = invocation_deadline(&extensions).unwrap();
        assert_eq!(ms(got), ms(soon));
        // cargo-lambda's emulator sends the timeout (600000), not a time: no deadline.
        context.deadline = 600_000;
        extensions.insert(context);
        assert_eq!(invocation_deadline(&extensions), None);
    }

    #[test]
    fn is_http_event_function_url_with_null_fields_ok() {
        // What `cargo lambda watch` sends for /lambda-url/<fn>/…: authorizer fields as null.
        let url = serde_json::json!({"type": null, "methodArn": null, "version": "2.0",
            "routeKey": "$default", "rawPath": "/v1/tokens", "requestContext": {"http": {}}});
        assert!(!is_authorizer_event(&url));
        assert!(is_http_event(&url));
        let authorizer = serde_json::json!({"type": "REQUEST", "routeArn": "arn:aws:execute-api:x",
            "rawPath": "/v1/tokens", "requestContext": {}});
        assert!(is_authorizer_event(&authorizer) && !is_http_event(&authorizer));
    }

    #[tokio::test]
    async fn azure_router_ready_and_api_prefix_ok() {
        let app = azure_router(Router::new().route("/v1/status", get(|| async { "up" })));
        for (path, want) in [
            ("/", StatusCode::OK),
            ("/v1/status", StatusCode::OK),
            ("/api/v1/status", StatusCode::OK),
            ("/nope", StatusCode::NOT_FOUND),
        ] {
            let r = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(r.status(), want, "{path}");
        }
    }
}

/// What every function binary does before serving: logging, configuration (with
/// `--listen`), the shared clients (warmed up), and the runtime mode.
pub async fn start(
    args: &ServeArgs,
) -> Result<(std::sync::Arc<crate::Config>, crate::Clients, Mode), StartError> {
    let mut config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            init_tracing();
            return Err(e.into());
        }
    };
    let tracer = if config.traces.enabled {
        let provider = crate::traces::provider(&config.traces)?;
        Some(crate::traces::tracer(&provider))
    } else {
        None
    };
    init_tracing_with(tracer);
    let mode = Mode::detect(config.listen, config.server, config.tls.clone())?;
    if matches!(mode, Mode::Lambda { .. }) {
        // One request per instance at a time: nothing to combine, so produce directly.
        config.kafka.coalesce = false;
    }
    let config = std::sync::Arc::new(config);
    let clients = crate::Clients::load(&config).await?;
    if config.metrics.enabled {
        use crate::metrics::{self, Sink};
        if matches!(mode, Mode::Lambda { .. }) {
            metrics::enable(&config.metrics, &config.hubs, Sink::Emf);
        } else {
            metrics::enable(&config.metrics, &config.hubs, Sink::Prometheus);
            let registry = metrics::registry(vec![
                (
                    "revocations",
                    std::sync::Arc::clone(&clients.revocations) as _,
                ),
                (
                    "consumer_groups",
                    std::sync::Arc::clone(&clients.consumer_groups) as _,
                ),
            ]);
            let router = metrics::router(registry, config.metrics.bearer_token.clone());
            let listen = config.metrics.listen;
            metrics::serve(listen, router, &config.server)
                .await
                .map_err(|e| RuntimeError::Bind(listen, e))?;
        }
    }
    // In the background: the server listens (and answers Azure's readiness probe, and a
    // Lambda instance finishes its init) even while Kafka is unreachable. Requests that need
    // the revocation list load it themselves and fail closed until they can.
    let warming = clients.clone();
    // A store topic that is not compacted stops the process (exit code 78, EX_CONFIG).
    tokio::spawn(async move {
        if let Err(e) = warming.warm_up().await {
            tracing::error!(error = %e, "refusing to serve");
            eprintln!("error: {e}");
            std::process::exit(78);
        }
    });
    Ok((config, clients, mode))
}

/// Logs how a function binary ended and turns it into its exit code.
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped");
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Command-line options every function binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (see the README for every key).
    #[arg(long, env = "HUBGATE_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Listen address in standalone mode; overrides `listen` / `HUBGATE_LISTEN`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// Loads the configuration and applies `--listen`.
    pub fn load(&self) -> Result<crate::Config, crate::config::ConfigError> {
        let mut config = crate::Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        Ok(config)
    }
}
