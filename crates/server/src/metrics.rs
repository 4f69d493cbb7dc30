//! Metrics: what the HTTP layer records (requests by route and status, credential failures,
//! throttling, waiting long polls, open streams), exposed with the Kafka layer's
//! (`hubgate_kafka::metrics`), the stores' and the process's in the Prometheus exposition
//! formats on a listener of their own ([`serve`]); on AWS Lambda, where nothing scrapes a
//! function, as one CloudWatch Embedded Metric Format line per invocation ([`Emf`]).
//!
//! Conventions (<https://prometheus.io/docs/practices/naming/>): prefix `hubgate_`, base
//! units, `_total` counters, and bounded label sets only: route ids, status classes, reasons
//! from closed sets, and hub names only from the configured `hubs` (others are `other`).
//! Never a publisher name, a principal or a token.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Record metrics and expose them: on the `listen` address (standalone, Azure), or as
    /// CloudWatch EMF log lines (Lambda). Default off.
    #[serde(default)]
    pub enabled: bool,
    /// Where Prometheus scrapes `GET /metrics` (default `127.0.0.1:9464`, loopback only).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// When set, a scrape must send `Authorization: Bearer <this>` (Prometheus'
    /// `authorization.credentials`); otherwise 401.
    #[serde(default)]
    pub bearer_token: Option<SecretString>,
    /// The CloudWatch namespace of EMF metrics on Lambda (default `hubgate`).
    #[serde(default = "default_namespace")]
    pub emf_namespace: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

fn default_namespace() -> String {
    "hubgate".into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: default_listen(),
            bearer_token: None,
            emf_namespace: default_namespace(),
        }
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self
            .bearer_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            return Err("metrics.bearer_token must not be empty when set".into());
        }
        if self.emf_namespace.trim().is_empty() || self.emf_namespace.len() > 255 {
            return Err("metrics.emf_namespace must be 1 to 255 characters".into());
        }
        Ok(())
    }
}

/// A request's route (its id in the route table, or `unmatched`) and status class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HubLabels {
    hub: String,
}

struct Families {
    requests: Family<RequestLabels, Histogram>,
    credential_failures: Family<ReasonLabels, Counter>,
    throttled: Family<HubLabels, Counter>,
    long_polls: Gauge,
    streams: Gauge,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    // 1 ms to ~65 s (long polls and stream openings wait up to a minute).
    requests: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 17))),
    credential_failures: Family::default(),
    throttled: Family::default(),
    long_polls: Gauge::default(),
    streams: Gauge::default(),
});

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The configured hubs (lower-case): the only hub label values besides `other`.
static HUBS: OnceLock<Vec<String>> = OnceLock::new();
/// Set on Lambda ([`Sink::Emf`]).
static EMF: OnceLock<Emf> = OnceLock::new();

/// Where the metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The Prometheus listener.
    Prometheus,
    /// CloudWatch EMF lines on stdout, one per invocation (Lambda).
    Emf,
}

/// Starts recording, for the rest of the process (see [`MetricsConfig::enabled`]); `hubs`
/// (the configured ones) are the hub label's values besides `other`.
pub fn enable(config: &MetricsConfig, hubs: &[String], sink: Sink) {
    let _ = HUBS.set(hubs.iter().map(|h| h.to_ascii_lowercase()).collect());
    if sink == Sink::Emf {
        let _ = EMF.set(Emf::new(&config.emf_namespace));
    }
    ENABLED.store(true, Ordering::Relaxed);
    hubgate_kafka::metrics::enable();
}

/// Whether metrics are recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn families() -> Option<&'static Families> {
    enabled().then(|| &*FAMILIES)
}

/// The hub label of `hub`: its configured name, else `other` (no hub list, or not in it).
fn hub_label(hub: &str) -> String {
    HUBS.get()
        .and_then(|hubs| hubs.iter().find(|h| h.eq_ignore_ascii_case(hub)))
        .map_or_else(|| "other".to_owned(), Clone::clone)
}

/// What an error answer tells the metrics, carried in its extensions from
/// `ApiError::into_response` to the layer that records the request.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A credential was refused, for this reason ([`hubgate_core::authz::AuthError::reason`]).
    Credential(&'static str),
    /// A sender was throttled on this hub.
    Throttled(String),
}

/// The status class of `status`: `2xx` … `5xx`.
pub fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// One request answered after `took` (until its head; a stream's body is not included).
pub fn request(route: &'static str, response: &axum::response::Response, took: Duration) {
    let Some(f) = families() else { return };
    let status = status_class(response.status());
    f.requests
        .get_or_create(&RequestLabels { route, status })
        .observe(took.as_secs_f64());
    let failure = response.extensions().get::<Failure>();
    match failure {
        Some(Failure::Credential(reason)) => {
            f.credential_failures
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
        Some(Failure::Throttled(hub)) => {
            f.throttled
                .get_or_create(&HubLabels {
                    hub: hub_label(hub),
                })
                .inc();
        }
        None => {}
    }
    if let Some(emf) = EMF.get() {
        emf.invocation(route, status, took, failure);
    }
}

/// A gauge raised while this lives.
#[derive(Debug)]
pub struct Open(&'static Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn open(gauge: fn(&'static Families) -> &'static Gauge) -> Option<Open> {
    let g = gauge(families()?);
    g.inc();
    Some(Open(g))
}

/// Counts a long poll while it waits for events.
pub fn long_poll_waiting() -> Option<Open> {
    open(|f| &f.long_polls)
}

/// Counts an open event stream.
pub fn stream_open() -> Option<Open> {
    open(|f| &f.streams)
}

/// A Kafka-backed store the metrics report on.
pub trait StoreStats: Send + Sync + std::fmt::Debug + 'static {
    /// Entries, and how long ago the last complete refresh began (`None` before the first).
    fn stats(&self) -> (usize, Option<Duration>);
}

/// The exposition's registry: every family (prefix `hubgate_`), the `stores` (by label),
/// and the standard `process_*` metrics.
pub fn registry(stores: Vec<(&'static str, Arc<dyn StoreStats>)>) -> Registry {
    let f = &*FAMILIES;
    let mut root = Registry::default();
    // The standard names, unprefixed, as every process dashboard expects them.
    root.register_collector(Box::new(Process));
    let registry = root.sub_registry_with_prefix("hubgate");
    registry.register_with_unit(
        "http_request_duration",
        "HTTP requests by route id and status class, until the answer's head (its _count counts requests)",
        Unit::Seconds,
        f.requests.clone(),
    );
    registry.register(
        "credential_failures",
        "Requests refused for their credential (401, 403, 503 when membership could not be checked), by reason",
        f.credential_failures.clone(),
    );
    registry.register(
        "throttled_requests",
        "Requests refused with 429 by a [[throttle]] rate, by hub (configured hubs; others are 'other')",
        f.throttled.clone(),
    );
    registry.register(
        "long_polls_waiting",
        "Reads waiting for events (wait_ms; limits.max_waiting_reads bounds them)",
        f.long_polls.clone(),
    );
    registry.register(
        "streams_open",
        "Open event streams (streams.max_open bounds them)",
        f.streams.clone(),
    );
    hubgate_kafka::metrics::register(registry);
    registry.register_collector(Box::new(Stores(stores)));
    root
}

/// The Kafka-backed stores: entries and the age of the last complete refresh.
#[derive(Debug)]
struct Stores(Vec<(&'static str, Arc<dyn StoreStats>)>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
}

impl Collector for Stores {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats: Vec<_> = self.0.iter().map(|(name, s)| (*name, s.stats())).collect();
        let mut entries = encoder.encode_descriptor(
            "store_entries",
            "Entries of a Kafka-backed store as this process last read it",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (store, (n, _)) in &stats {
            let n = i64::try_from(*n).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(entries.encode_family(&StoreLabels { store })?)?;
        }
        let mut age = encoder.encode_descriptor(
            "store_refresh_age",
            "Seconds since the last complete refresh of a store began (absent before the first)",
            Some(&Unit::Seconds),
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (store, (_, since)) in &stats {
            if let Some(since) = since {
                ConstGauge::new(since.as_secs_f64())
                    .encode(age.encode_family(&StoreLabels { store })?)?;
            }
        }
        Ok(())
    }
}

/// The standard process metrics (<https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics>),
/// read by `metrics-process` at each scrape.
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::MetricType;
        let m = metrics_process::collector::collect();
        let mut gauge = |name: &str, help: &str, unit: Option<Unit>, v: Option<f64>| {
            let Some(v) = v else { return Ok(()) };
            let e = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            ConstGauge::new(v).encode(e)
        };
        let as_f64 = |v: Option<u64>| v.map(|v| v as f64);
        gauge(
            "process_resident_memory",
            "Resident memory size",
            Some(Unit::Bytes),
            as_f64(m.resident_memory_bytes),
        )?;
        gauge(
            "process_virtual_memory",
            "Virtual memory size",
            Some(Unit::Bytes),
            as_f64(m.virtual_memory_bytes),
        )?;
        gauge(
            "process_open_fds",
            "Open file descriptors",
            None,
            as_f64(m.open_fds),
        )?;
        gauge(
            "process_max_fds",
            "The limit of open file descriptors",
            None,
            as_f64(m.max_fds),
        )?;
        gauge(
            "process_start_time",
            "Start of the process since the Unix epoch",
            Some(Unit::Seconds),
            as_f64(m.start_time_seconds),
        )?;
        gauge("process_threads", "OS threads", None, as_f64(m.threads))?;
        if let Some(cpu) = m.cpu_seconds_total {
            let e = encoder.encode_descriptor(
                "process_cpu",
                "User and system CPU time",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(e)?;
        }
        Ok(())
    }
}

/// The exposition of `registry`: OpenMetrics when the scraper asks for it (Prometheus does),
/// else the Prometheus text format 0.0.4 (curl, promtool). Returns the body and its type.
pub fn render(registry: &Registry, accept: Option<&str>) -> (String, &'static str) {
    let mut body = String::with_capacity(16 * 1024);
    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    let written = if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, registry)
    };
    if written.is_err() {
        // Writing to a String does not fail; a collector might. Say so in the body.
        body.push_str("# the exposition could not be written completely\n");
    }
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    };
    (body, content_type)
}

/// The metrics listener's router: `GET /metrics`, with the bearer token when configured.
pub fn router(registry: Registry, bearer_token: Option<SecretString>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let state = Arc::new((registry, bearer_token));
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: HeaderMap| {
            let state = Arc::clone(&state);
            async move {
                let (registry, token) = &*state;
                if let Some(token) = token {
                    let sent = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or_default();
                    let same = aws_lc_rs::constant_time::verify_slices_are_equal(
                        sent.as_bytes(),
                        token.expose_secret().as_bytes(),
                    )
                    .is_ok();
                    if !same {
                        return (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, "Bearer")],
                            "send the metrics bearer token\n",
                        )
                            .into_response();
                    }
                }
                let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let (body, content_type) = render(registry, accept);
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            }
        }),
    )
}

/// Connections the metrics listener holds at most (a scraper or two, and curl).
const MAX_CONNECTIONS: usize = 16;

/// Serves the metrics listener until the process ends (bound before returning, so a taken
/// address stops the start-up), with the main listener's header, body and idle deadlines
/// (`server`) and at most [`MAX_CONNECTIONS`] connections: a slow or silent client holds
/// nothing for long, on loopback or not.
pub async fn serve(
    listen: SocketAddr,
    router: axum::Router,
    server: &crate::listener::ServerConfig,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, "serving metrics at /metrics");
    let server = crate::listener::ServerConfig {
        max_connections: Some(MAX_CONNECTIONS),
        ..*server
    };
    tokio::spawn(async move {
        crate::listener::serve(listener, router, &server, None, std::future::pending()).await;
    });
    Ok(())
}

/// CloudWatch Embedded Metric Format
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
/// one JSON line on stdout per invocation (Lambda serves one request at a time), which
/// CloudWatch Logs turns into metrics. Dimensions `Function`, `Route`, `Status` (bounded);
/// the Kafka figures are what this invocation did (deltas of the process totals).
#[derive(Debug)]
pub struct Emf {
    namespace: String,
    function: String,
    kafka: parking_lot::Mutex<hubgate_kafka::metrics::Snapshot>,
}

impl Emf {
    fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            function: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "hubgate".into()),
            kafka: parking_lot::Mutex::new(hubgate_kafka::metrics::snapshot()),
        }
    }

    fn invocation(&self, route: &str, status: &str, took: Duration, failure: Option<&Failure>) {
        let now = hubgate_kafka::metrics::snapshot();
        let kafka = {
            let mut last = self.kafka.lock();
            let d = now.since(&last);
            *last = now;
            d
        };
        println!(
            "{}",
            emf_line(
                &self.namespace,
                &self.function,
                route,
                status,
                took,
                failure,
                &kafka,
                chrono::Utc::now().timestamp_millis()
            )
        );
    }
}

/// One EMF line (see [`Emf`]).
#[allow(clippy::too_many_arguments)] // one line's fields, each named where it is called
pub fn emf_line(
    namespace: &str,
    function: &str,
    route: &str,
    status: &str,
    took: Duration,
    failure: Option<&Failure>,
    kafka: &hubgate_kafka::metrics::Snapshot,
    timestamp_ms: i64,
) -> String {
    let metric = |name: &str, unit: &str| serde_json::json!({"Name": name, "Unit": unit});
    let ms = |s: f64| (s * 1e6).round() / 1e3;
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Function", "Route", "Status"]],
                "Metrics": [
                    metric("Requests", "Count"),
                    metric("Duration", "Milliseconds"),
                    metric("CredentialFailures", "Count"),
                    metric("Throttled", "Count"),
                    metric("KafkaProduceRequests", "Count"),
                    metric("KafkaProduceDuration", "Milliseconds"),
                    metric("KafkaFetchRequests", "Count"),
                    metric("KafkaFetchDuration", "Milliseconds"),
                    metric("KafkaErrors", "Count"),
                ],
            }],
        },
        "Function": function,
        "Route": route,
        "Status": status,
        "Requests": 1,
        "Duration": ms(took.as_secs_f64()),
        "CredentialFailures": u8::from(matches!(failure, Some(Failure::Credential(_)))),
        "Throttled": u8::from(matches!(failure, Some(Failure::Throttled(_)))),
        "KafkaProduceRequests": kafka.produce_requests,
        "KafkaProduceDuration": ms(kafka.produce_seconds),
        "KafkaFetchRequests": kafka.fetch_requests,
        "KafkaFetchDuration": ms(kafka.fetch_seconds),
        "KafkaErrors": kafka.errors,
    });
    // Properties (searchable in Logs Insights, not dimensions): why a request failed.
    match failure {
        Some(Failure::Credential(reason)) => line["CredentialFailureReason"] = (*reason).into(),
        Some(Failure::Throttled(hub)) => line["ThrottledHub"] = hub_label(hub).into(),
        None => {}
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that sends half a request head to the metrics listener is cut off after
    /// `server.header_read_timeout_ms`, as on the main listener (it was held forever).
    #[tokio::test]
    async fn metrics_listener_half_sent_head_closed_ok() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let server = crate::listener::ServerConfig {
            header_read_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        serve(listen, router(Registry::default(), None), &server)
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(listen).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the half-sent head is still held after 5 s");
    }

    #[test]
    fn emf_line_shape_ok() {
        let kafka = hubgate_kafka::metrics::Snapshot {
            produce_requests: 1,
            produce_seconds: 0.0042,
            ..Default::default()
        };
        let line = emf_line(
            "hubgate",
            "kafka-proxy",
            "Produce",
            "2xx",
            Duration::from_micros(5300),
            Some(&Failure::Credential("expired_token")),
            &kafka,
            1_700_000_000_000,
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "hubgate");
        // Every metric the directive names is a number at the top level, every dimension
        // a string (the specification's rules).
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name}");
        }
        for d in directive["Dimensions"][0].as_array().unwrap() {
            assert!(v[d.as_str().unwrap()].is_string(), "{d}");
        }
        assert_eq!(v["Duration"], 5.3);
        assert_eq!(v["KafkaProduceDuration"], 4.2);
        assert_eq!(v["CredentialFailures"], 1);
        assert_eq!(v["CredentialFailureReason"], "expired_token");
    }

    #[test]
    fn status_class_ok() {
        assert_eq!(status_class(http::StatusCode::OK), "2xx");
        assert_eq!(status_class(http::StatusCode::TOO_MANY_REQUESTS), "4xx");
        assert_eq!(status_class(http::StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }
}
