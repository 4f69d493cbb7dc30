//! The HTTP face of errors: one error type, mapped once to `{"error_code", "message"}`.
//!
//! Status codes follow Event Hubs for authorization (every failure is 401) and the
//! Confluent/HDInsight REST proxies for error codes (status × 100 + n). Clients get a
//! clear message; internal detail (broker errors, I/O) goes to the log only.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::authz::AuthError;
use crate::kafka::KafkaError;
use crate::names::NameError;

/// Every error a route can answer with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("{0}")]
    UnknownTopic(String),
    #[error("{0}")]
    UnknownPartition(String),
    #[error("{0}")]
    OffsetOutOfRange(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but contradicts an earlier request (e.g. a reused Idempotency-Key).
    #[error("{0}")]
    Unprocessable(String),
    /// The caller is authenticated and authorized, but policy refuses the request.
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("the request body is larger than the configured limit")]
    TooLargeUnknownLimit,
    /// Some partitions acknowledged their records, others failed: the body lists per-record
    /// results so the client knows exactly what was written.
    #[error("{source}")]
    PartialProduce {
        source: KafkaError,
        offsets: serde_json::Value,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Throttled(#[from] crate::throttle::ThrottleError),
    /// A consumer-group refusal (Kafka failures become [`ApiError::Kafka`]).
    #[error(transparent)]
    Group(crate::consumer_groups::GroupError),
    /// The path exists, the method does not; the `Allow` header lists the methods.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many reads of this process are waiting for events.
    #[error("{0}")]
    Busy(String),
}

impl From<crate::consumer_groups::GroupError> for ApiError {
    fn from(e: crate::consumer_groups::GroupError) -> Self {
        match e {
            crate::consumer_groups::GroupError::Kafka(k) => Self::Kafka(k),
            other => Self::Group(other),
        }
    }
}

/// The JSON error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error_code: u32,
    pub message: String,
    /// Per-record results when a produce request was partly written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offsets: Option<serde_json::Value>,
}

impl ApiError {
    /// HTTP status and Confluent-style error code.
    pub fn status_and_code(&self) -> (StatusCode, u32) {
        match self {
            Self::Unauthorized(e) => e.status_and_code(),
            Self::BadRequest(_) | Self::BadName(_) => (StatusCode::BAD_REQUEST, 40001),
            Self::UnknownTopic(_) => (StatusCode::NOT_FOUND, 40401),
            Self::UnknownPartition(_) => (StatusCode::NOT_FOUND, 40402),
            Self::OffsetOutOfRange(_) => (StatusCode::NOT_FOUND, 40403),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, 40404),
            Self::Conflict(_) => (StatusCode::CONFLICT, 40901),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, 40301),
            Self::TooLarge(_) | Self::TooLargeUnknownLimit => {
                (StatusCode::PAYLOAD_TOO_LARGE, 41301)
            }
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 41501),
            Self::Kafka(e) | Self::PartialProduce { source: e, .. } => e.status_and_code(),
            Self::Throttled(crate::throttle::ThrottleError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, 41303)
            }
            Self::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, 42901),
            Self::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, 42902),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, 40501),
            Self::Group(e) => {
                use crate::consumer_groups::GroupError as G;
                match e {
                    G::NotFound { .. } => (StatusCode::NOT_FOUND, 40405),
                    G::Exists(_) | G::CreatedConcurrently(_) => (StatusCode::CONFLICT, 40903),
                    G::TooMany { .. } => (StatusCode::FORBIDDEN, 40303),
                    G::DefaultIsPermanent => (StatusCode::BAD_REQUEST, 40003),
                    G::Kafka(k) => k.status_and_code(),
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.status_and_code();
        let mut offsets = None;
        let message = match self {
            Self::Kafka(ref e) => {
                // The broker's own words stay in the log.
                tracing::warn!(error = %e, detail = ?e, "kafka operation failed");
                e.client_message()
            }
            Self::PartialProduce {
                ref source,
                offsets: ref o,
            } => {
                tracing::warn!(error = %source, detail = ?source, "produce partly failed");
                offsets = Some(o.clone());
                format!(
                    "{} Some records were acknowledged (see offsets); retrying them writes them again.",
                    source.client_message()
                )
            }
            Self::Unauthorized(ref e) => {
                tracing::info!(reason = %e, "request refused");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let body = ErrorBody {
            error_code,
            message,
            offsets,
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::Unauthorized(e) = &self
            && e.is_invalid_bearer()
        {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let secs = match &self {
                Self::Throttled(e) => e.retry_after_secs(),
                _ => 1,
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Describes an axum rejection without echoing internals.
fn rejection_message(status: StatusCode, body: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLargeUnknownLimit;
    }
    ApiError::BadRequest(body)
}

/// Reads a whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest("the request body could not be read".into())
        }
    })
}

/// Request ids (`x-request-id`, generated when absent, echoed in the response) and one
/// structured log line per request with request id, method, path, route (the matched
/// template), principal (recorded by [`Gate::check`](crate::Gate::check); never a token or
/// key), status and latency.
pub fn with_request_layers(router: axum::Router) -> axum::Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &http::Request<axum::body::Body>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or("-", axum::extract::MatchedPath::as_str);
            tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                route,
                principal = tracing::field::Empty,
            )
        })
        .on_response(
            DefaultOnResponse::new()
                .level(tracing::Level::INFO)
                .latency_unit(tower_http::LatencyUnit::Micros),
        );
    router
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Gives a 405 the JSON error shape and an `Allow` header with the methods the route table
/// serves at that path (the routers match several resources with one pattern, so their own
/// `Allow` would list methods of other resources). No route at all there: 404.
async fn method_not_allowed(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Cheap clones (shared bytes): this runs on every request.
    let uri = request.uri().clone();
    let method = request.method().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allowed = crate::routes::methods_for(uri.path()).join(", ");
    if allowed.is_empty() {
        return ApiError::NotFound("no such route; see the README for the API".into())
            .into_response();
    }
    let mut response =
        ApiError::MethodNotAllowed(format!("{method} is not served here; use {allowed}"))
            .into_response();
    if let Ok(v) = HeaderValue::from_str(&allowed) {
        response.headers_mut().insert(header::ALLOW, v);
    }
    response
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("expected 'Content-Type: application/json'".into())
            }
            JsonRejection::BytesRejection(b) => b.into(),
            other => Self::BadRequest(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        rejection_message(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest(format!("invalid path: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(format!("invalid query string: {}", r.body_text()))
    }
}

/// `Json` that answers bad input with [`ApiError`] instead of axum's plain-text rejection.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query` with [`ApiError`] rejections.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path` with [`ApiError`] rejections.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Parses a partition number from a path segment.
pub fn parse_partition(s: &str) -> Result<i32, ApiError> {
    s.parse::<i32>().ok().filter(|p| *p >= 0).ok_or_else(|| {
        ApiError::BadRequest("partition must be an integer from 0 to 2147483647".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value, Response) {
        let r = e.into_response();
        let status = r.status();
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap();
        (
            status,
            v,
            Response::from_parts(parts, axum::body::Body::empty()),
        )
    }

    #[tokio::test]
    async fn api_error_json_shape_ok() {
        let (status, v, _) = body_of(ApiError::Unauthorized(AuthError::Missing)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(v["error_code"], 40101);
        assert!(v["message"].as_str().unwrap().starts_with("MissingToken"));
        let (status, v, _) = body_of(ApiError::TooLarge(10)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(v["error_code"], 41301);
    }

    #[tokio::test]
    async fn api_error_kafka_hides_detail_and_sets_retry_after_ok() {
        let (status, v, r) = body_of(ApiError::Kafka(KafkaError::Timeout)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(v["error_code"], 50301);
        assert_eq!(r.headers()["retry-after"], "1");
    }

    #[test]
    fn parse_partition_ok_and_fails() {
        assert_eq!(parse_partition("0").unwrap(), 0);
        assert_eq!(parse_partition("2147483647").unwrap(), i32::MAX);
        for bad in ["-1", "x", "2147483648", "", "1.0", " 1"] {
            assert!(parse_partition(bad).is_err(), "{bad}");
        }
    }
}
