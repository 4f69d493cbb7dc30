//! Traces: hubgate's `tracing` spans as OpenTelemetry spans (`tracing-opentelemetry`),
//! exported over OTLP/HTTP (protobuf) by the OpenTelemetry SDK, off by default (`[traces]`).
//!
//! A client's W3C `traceparent`/`tracestate` (<https://www.w3.org/TR/trace-context/>)
//! continues its trace: the request span is its child. The request's context goes into the
//! Kafka records it writes (headers `traceparent`, `tracestate`, which clients may not set:
//! `hubgate_core::bodies::is_reserved_header`), and comes back with consumed events, so a
//! consumer continues the trace.
//!
//! Besides the request span, spans only the exporter sees (target [`TARGET`], level DEBUG:
//! without traces no layer wants them, and they cost nothing): `authenticate`, `throttle`,
//! `kafka.produce` (with `kafka.produce_request`, the number of the Kafka produce request
//! that carried the records: HTTP requests coalesced into one share it) and `kafka.fetch`.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::response::IntoResponse;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of the spans only traces want (see the module's documentation).
pub const TARGET: &str = hubgate_kafka::TRACE_TARGET;

/// `[traces]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// Export spans (default off).
    #[serde(default)]
    pub enabled: bool,
    /// The OTLP/HTTP traces endpoint (default `http://127.0.0.1:4318/v1/traces`, a local
    /// collector; `https://` works too).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Headers sent with each export (an API key, say).
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// The share of new traces sampled, 0 to 1 (default 1). A request that continues a trace
    /// follows its parent's decision (`sampled` flag).
    #[serde(default = "default_ratio")]
    pub sample_ratio: f64,
    /// `service.name` of the spans (default `hubgate`).
    #[serde(default = "default_service")]
    pub service_name: String,
}

fn default_endpoint() -> String {
    "http://127.0.0.1:4318/v1/traces".into()
}

fn default_ratio() -> f64 {
    1.0
}

fn default_service() -> String {
    "hubgate".into()
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: default_endpoint(),
            headers: BTreeMap::new(),
            sample_ratio: default_ratio(),
            service_name: default_service(),
        }
    }
}

impl TracesConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err("traces.sample_ratio must be from 0 to 1".into());
        }
        if self.enabled
            && !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"))
        {
            return Err("traces.endpoint must be an http:// or https:// URL".into());
        }
        if self.service_name.trim().is_empty() {
            return Err("traces.service_name must not be empty".into());
        }
        Ok(())
    }
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TracesError {
    #[error("traces: the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("traces: the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The provider exporting `config`'s spans (batched, on the Tokio runtime); the caller
/// adds [`tracing_opentelemetry`]'s layer with its tracer.
pub fn provider(config: &TracesConfig) -> Result<SdkTracerProvider, TracesError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(TracesError::Client)?;
    let headers: HashMap<String, String> = config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
        .collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Reqwest(client))
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_headers(headers)
        .build()?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = PROVIDER.set(provider.clone());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(provider)
}

/// The tracer of `provider` for the `tracing` layer.
pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("hubgate")
}

/// Exports what is buffered (a Lambda invocation ends; the process may freeze), off the
/// async workers (the SDK's flush blocks).
pub async fn flush() {
    if let Some(p) = PROVIDER.get() {
        let p = p.clone();
        let _ = tokio::task::spawn_blocking(move || p.force_flush()).await;
    }
}

/// Exports what is buffered and stops the exporter (the process ends).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.shutdown();
    }
}

/// On Lambda (buffered answers), `router` with each answer's spans exported before the
/// answer goes out: the instance may freeze right after. The body is read here (Lambda reads
/// it whole anyway), so that the request's span, which lives as long as the body, has ended.
pub fn flushing_on_lambda(router: axum::Router) -> axum::Router {
    if !enabled() {
        return router;
    }
    axum::Router::new()
        .fallback_service(router)
        .layer(axum::middleware::map_response(
            |response: axum::response::Response| async move {
                let (parts, body) = response.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await;
                flush().await;
                match bytes {
                    Ok(b) => axum::response::Response::from_parts(parts, axum::body::Body::from(b)),
                    Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
                }
            },
        ))
}

/// Makes `span` (a request's) the child of the trace context `headers` carry, if any.
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() {
        return;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// The record headers carrying the current span's context (`traceparent`, `tracestate`),
/// for records written now; none while traces are off.
pub fn record_headers() -> Vec<(String, Vec<u8>)> {
    if !enabled() {
        return Vec::new();
    }
    let cx = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect()
}

/// hubgate's reqwest as the exporter's HTTP client.
#[derive(Debug)]
struct Reqwest(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Reqwest {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let mut out = http::Response::builder().status(response.status());
        if let Some(h) = out.headers_mut() {
            *h = response.headers().clone();
        }
        let body = response.bytes().await?;
        Ok(out.body(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_config_checked_ok() {
        assert!(TracesConfig::default().validate().is_ok());
        let bad = TracesConfig {
            sample_ratio: 1.5,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = TracesConfig {
            enabled: true,
            endpoint: "collector:4318".into(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn record_headers_off_none_ok() {
        assert!(record_headers().is_empty());
    }
}
