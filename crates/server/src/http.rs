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

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::routing::{MethodFilter, MethodRouter};

use crate::access::{Access, Grant, Refusal};
use crate::authz::AuthError;
use crate::kafka::KafkaError;
use crate::listener::tls::ClientCertificate;
use crate::names::NameError;
use crate::routes::{
    FunctionRoute, Method, ParamError, ProxyRoute, ROUTES, Route, RouteId, match_path,
};

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
    #[error(transparent)]
    BadParam(#[from] ParamError),
    #[error("{0}")]
    UnknownTopic(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Revoking a publisher that is revoked already.
    #[error("{0}")]
    AlreadyRevoked(String),
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
    /// The body did not arrive in time (`server.body_read_timeout_ms`); the connection closes.
    #[error(transparent)]
    BodyTimeout(#[from] crate::listener::BodyTimeout),
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
    /// A defect of the gateway (the detail is logged, the client sees a generic message).
    #[error("internal error")]
    Internal(&'static str),
}

impl From<crate::idempotency::IdempotencyError> for ApiError {
    fn from(e: crate::idempotency::IdempotencyError) -> Self {
        use crate::idempotency::IdempotencyError as I;
        match e {
            I::OtherRequest => Self::Unprocessable(e.to_string()),
            I::InProgress => Self::Conflict(e.to_string()),
            _ => Self::BadRequest(e.to_string()),
        }
    }
}

impl From<crate::json::JsonError> for ApiError {
    fn from(e: crate::json::JsonError) -> Self {
        Self::BadRequest(e.0)
    }
}

impl From<crate::routes::MissingParam> for ApiError {
    fn from(_: crate::routes::MissingParam) -> Self {
        Self::Internal("a handler asked for a parameter its route does not have")
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Auth(e) => Self::Unauthorized(e),
            Refusal::Param(e) => Self::BadParam(e),
            // Creating a topic the gateway would not expose is a configuration mistake to explain.
            Refusal::NotExposed {
                route: RouteId::KafkaProxy(ProxyRoute::CreateTopic),
                hub,
            } => Self::BadRequest(format!(
                "'{hub}' is not one of the configured hubs; add it to `hubs` first"
            )),
            Refusal::NotExposed { hub, .. } => {
                Self::UnknownTopic(format!("topic '{hub}' does not exist"))
            }
            Refusal::Unavailable(e) => Self::Kafka(e),
        }
    }
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
            Self::Unauthorized(e) => auth_status(e),
            Self::BadRequest(_) | Self::BadName(_) | Self::BadParam(_) => {
                (StatusCode::BAD_REQUEST, 40001)
            }
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
            Self::UnknownTopic(_) => (StatusCode::NOT_FOUND, 40401),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, 40404),
            Self::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, 40801),
            Self::Conflict(_) => (StatusCode::CONFLICT, 40901),
            Self::AlreadyRevoked(_) => (StatusCode::CONFLICT, 40902),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, 40301),
            Self::TooLarge(_) | Self::TooLargeUnknownLimit => {
                (StatusCode::PAYLOAD_TOO_LARGE, 41301)
            }
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 41501),
            Self::Kafka(e) | Self::PartialProduce { source: e, .. } => kafka_status(e),
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
                    G::Kafka(k) => kafka_status(k),
                }
            }
        }
    }
}

/// 401 for every credential problem (Event Hubs' rule), 403 for a valid token whose groups
/// do not allow the request, 503 when membership could not be checked (fail closed).
fn auth_status(e: &AuthError) -> (StatusCode, u32) {
    match e {
        AuthError::NotPermitted(..) => (StatusCode::FORBIDDEN, 40302),
        AuthError::GroupsUnavailable => (StatusCode::SERVICE_UNAVAILABLE, 50302),
        _ => (StatusCode::UNAUTHORIZED, 40101),
    }
}

/// Kafka's refusals of the request are 4xx; Kafka being away or slow is 503 (retry).
pub fn kafka_status(e: &KafkaError) -> (StatusCode, u32) {
    match e {
        KafkaError::UnknownTopic(_) => (StatusCode::NOT_FOUND, 40401),
        KafkaError::UnknownPartition { .. } => (StatusCode::NOT_FOUND, 40402),
        KafkaError::OffsetOutOfRange { .. } => (StatusCode::NOT_FOUND, 40403),
        // The same code as the gateway's own check before creating (`ApiError::Conflict`):
        // which of the two sees an existing topic first is a race.
        KafkaError::TopicExists(_) => (StatusCode::CONFLICT, 40901),
        KafkaError::CaseTwins { .. } => (StatusCode::CONFLICT, 40904),
        KafkaError::InvalidTopic(_) => (StatusCode::BAD_REQUEST, 40002),
        KafkaError::RecordTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, 41302),
        KafkaError::Shared(e) => kafka_status(e),
        KafkaError::Encode(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        // Kafka answered, with records hubgate cannot decode: retrying cannot help.
        KafkaError::Undecodable { .. } => (StatusCode::BAD_GATEWAY, 50201),
        KafkaError::StoreNotCompacted { .. } => (StatusCode::INTERNAL_SERVER_ERROR, 50002),
        // Timeout, Client, Admin, Config, Busy, CombinedTooLarge, and any failure added later:
        // Kafka is away or overloaded, nothing was acknowledged.
        _ => (StatusCode::SERVICE_UNAVAILABLE, 50301),
    }
}

impl ApiError {
    /// What the client is told: never a broker's or a library's own words.
    pub fn client_message(&self) -> String {
        match self {
            Self::Unauthorized(e) => e.client_text(),
            Self::Kafka(e) => e.client_message(),
            Self::PartialProduce { source, .. } => format!(
                "{} Some records were acknowledged (see offsets); retrying them writes them again.",
                source.client_message()
            ),
            _ => self.to_string(),
        }
    }
}

/// What the log should say of an error answer: carried in the response's extensions to the
/// [`log_errors`] layer, which logs it inside the request's span (an `IntoResponse` does not
/// log, as axum's error-handling guidance says).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    level: tracing::Level,
    message: &'static str,
    /// The full error, for operators only (broker words, defects).
    detail: String,
}

impl ErrorReport {
    fn of(e: &ApiError) -> Option<Self> {
        let (level, message, detail) = match e {
            ApiError::Kafka(k) => (
                tracing::Level::WARN,
                "kafka operation failed",
                format!("{k}: {k:?}"),
            ),
            ApiError::PartialProduce { source, .. } => (
                tracing::Level::WARN,
                "produce partly failed",
                format!("{source}: {source:?}"),
            ),
            ApiError::Unauthorized(a) => (tracing::Level::INFO, "request refused", a.to_string()),
            ApiError::Internal(d) => (tracing::Level::ERROR, "internal error", (*d).to_owned()),
            _ => return None,
        };
        Some(Self {
            level,
            message,
            detail,
        })
    }
}

/// Logs the [`ErrorReport`] of an error answer.
fn log_errors(response: Response) -> Response {
    if let Some(r) = response.extensions().get::<ErrorReport>() {
        let detail = r.detail.as_str();
        match r.level {
            tracing::Level::ERROR => tracing::error!(detail, "{}", r.message),
            tracing::Level::WARN => tracing::warn!(error = detail, "{}", r.message),
            _ => tracing::info!(reason = detail, "{}", r.message),
        }
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.status_and_code();
        let offsets = match &self {
            Self::PartialProduce { offsets, .. } => Some(offsets.clone()),
            _ => None,
        };
        let report = ErrorReport::of(&self);
        let message = self.client_message();
        let body = ErrorBody {
            error_code,
            message,
            offsets,
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::PartialProduce { .. }) {
            response
                .extensions_mut()
                .insert(crate::idempotency::PartlyWritten);
        }
        if let Some(report) = report {
            response.extensions_mut().insert(report);
        }
        match &self {
            Self::Unauthorized(e) => {
                response
                    .extensions_mut()
                    .insert(crate::metrics::Failure::Credential(e.reason()));
            }
            Self::Throttled(
                crate::throttle::ThrottleError::Limited { hub, .. }
                | crate::throttle::ThrottleError::TooLarge { hub, .. },
            ) => {
                response
                    .extensions_mut()
                    .insert(crate::metrics::Failure::Throttled(hub.clone()));
            }
            _ => {}
        }
        if matches!(self, Self::BodyTimeout(_)) {
            // The rest of the body may still come: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
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
/// What a body read error means for the client: too large (413), too slow (408), or broken.
pub(crate) fn body_error(e: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge(limit);
        }
        if let Some(t) = s.downcast_ref::<crate::listener::BodyTimeout>() {
            return ApiError::BodyTimeout(*t);
        }
        source = s.source();
    }
    ApiError::BadRequest("the request body could not be read".into())
}

pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| body_error(&e, limit))
}

/// A function's router, built from the route table: every route of `R`'s function, its
/// handler from `handler` (an exhaustive `match` on `R`, so a route without a handler does
/// not compile), and before the handler the route's authorization ([`Access::decide`]), which
/// hands the handler its [`Grant`].
pub fn table_router<R, S>(
    access: &Arc<Access>,
    handler: impl Fn(R, MethodFilter) -> MethodRouter<S>,
) -> axum::Router<S>
where
    R: FunctionRoute,
    S: Clone + Send + Sync + 'static,
{
    let mut router = axum::Router::new();
    for route in ROUTES {
        let Some(id) = R::of(route.id) else { continue };
        let filter = match route.method {
            Method::Delete => MethodFilter::DELETE,
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
        };
        let guarded = handler(id, filter).route_layer(GuardLayer {
            route,
            access: Arc::clone(access),
        });
        router = router.route(route.path, guarded);
    }
    router
}

/// The route's authorization before its handler ([`guard`]); a layer of its own rather than
/// `from_fn`, which boxes the rest of the route once more per request.
#[derive(Clone)]
struct GuardLayer {
    route: &'static Route,
    access: Arc<Access>,
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            route: self.route,
            access: Arc::clone(&self.access),
        }
    }
}

#[derive(Clone)]
struct Guard<S> {
    inner: S,
    route: &'static Route,
    access: Arc<Access>,
}

impl<S> tower::Service<Request> for Guard<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The ready service goes with the request; a clone stays for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (route, access) = (self.route, Arc::clone(&self.access));
        Box::pin(async move { Ok(guard(route, &access, request, inner).await) })
    }
}

/// Runs the route's authorization and hands the [`Grant`] to the handler (`inner`).
async fn guard<S>(
    route: &'static Route,
    access: &Access,
    mut request: Request,
    mut inner: S,
) -> Response
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    let decision = match match_path(request.uri().path()) {
        Some(m) if m.template == route.path => {
            let certificate = request.extensions().get::<ClientCertificate>();
            let in_query = match query_credential(route, request.uri().query(), request.headers()) {
                Ok(headers) => headers,
                Err(e) => return e.into_response(),
            };
            let headers = in_query.as_ref().unwrap_or(request.headers());
            let span = tracing::debug_span!(target: crate::traces::TARGET, "authenticate");
            tracing::Instrument::instrument(
                access.decide(route, &m.params(), headers, certificate),
                span,
            )
            .await
        }
        // The normalizing layer sent a path of another template: a defect.
        _ => return ApiError::Internal("route and path disagree").into_response(),
    };
    match decision {
        Ok(grant) => {
            if let Some(mut grant) = grant {
                // Into the request's log line (a name, never credential material), from here:
                // inside `decide` the current span may be the trace-only `authenticate`.
                tracing::Span::current()
                    .record("principal", tracing::field::display(&*grant.principal));
                if let Some(id) = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                {
                    id.clone_into(&mut grant.request_id);
                }
                request.extensions_mut().insert(grant);
            }
            match inner.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        Err(refusal) => ApiError::from(refusal).into_response(),
    }
}

/// The query parameter of a stream route that may carry the credential (RFC 6750 §2.3):
/// a browser's `EventSource` cannot set headers. Never logged: the request's log line holds
/// the path only.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// For a stream route whose query has an [`ACCESS_TOKEN_PARAM`]: the request's headers with
/// that credential as `Authorization` (a SAS token as is, anything else as a bearer token).
/// A credential in both places is refused (RFC 6750 §2: one method per request).
fn query_credential(
    route: &Route,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> Result<Option<http::HeaderMap>, ApiError> {
    let Some(query) = query.filter(|_| route.is_stream()) else {
        return Ok(None);
    };
    let Some(token) = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == ACCESS_TOKEN_PARAM)
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiError::BadRequest(format!(
            "send the credential either in the Authorization header or in the {ACCESS_TOKEN_PARAM} query parameter, not both"
        )));
    }
    let token = token.trim();
    let value = if token
        .get(..hubgate_core::sas::SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(hubgate_core::sas::SCHEME))
    {
        HeaderValue::from_str(token)
    } else {
        HeaderValue::from_str(&format!("Bearer {token}"))
    }
    .map_err(|_| ApiError::Unauthorized(AuthError::NotText))?;
    let mut headers = headers.clone();
    headers.insert(header::AUTHORIZATION, value);
    Ok(Some(headers))
}

impl<S: Send + Sync> FromRequestParts<S> for Grant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<Grant>().ok_or(ApiError::Internal(
            "a handler of a public route asked for a grant",
        ))
    }
}

/// The app served for one or more functions' table routers (merged): Event Hubs keywords
/// normalized before routing, 404 for paths outside the table and 405 (with axum's `Allow`)
/// in the JSON error shape, request ids and the log line.
///
/// The layers wrap the routers as one service (`tower::ServiceBuilder`), boxed once: a
/// `Router::layer` boxes each layer separately, and every request then cloned each box and,
/// through it, every box inside (about 20 of a request's 130 allocations, measured with a
/// `malloc` uprobe).
///
/// `cors` (from [`crate::cors::CorsConfig::layer`]) answers preflights and adds the CORS
/// headers to every answer, errors included; `None` leaves CORS off.
pub fn serve(routes: axum::Router, cors: Option<crate::cors::CorsByHubLayer>) -> axum::Router {
    let inner = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    axum::Router::new().fallback_service(with_request_layers(inner, cors))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see the README for the API".into())
}

async fn method_not_allowed(method: http::Method) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{method} is not served here; the Allow header lists the methods that are"
    ))
}

/// Matches the path against the route table: no route, 404; otherwise the path is handed on
/// with its keywords in their canonical form (`/hub/Messages` → `/hub/messages`), so the
/// routers match exactly, and the matched template goes into the log line.
async fn normalize(request: Request, next: Next) -> Response {
    if !crate::metrics::enabled() {
        return route_canonical(request, next, None).await;
    }
    let started = std::time::Instant::now();
    let mut route = "unmatched";
    let response = route_canonical(request, next, Some(&mut route)).await;
    crate::metrics::request(route, &response, started.elapsed());
    response
}

/// [`normalize`]'s work; sets `route` (for the metrics) to the route id the path and method
/// name.
async fn route_canonical(
    mut request: Request,
    next: Next,
    route: Option<&mut &'static str>,
) -> Response {
    let canonical = {
        let path = request.uri().path();
        let Some(m) = match_path(path) else {
            return not_found().await.into_response();
        };
        tracing::Span::current().record("route", m.template);
        if let Some(route) = route {
            let method = Method::parse(request.method().as_str());
            if let Some(r) = m.routes().find(|r| Some(r.method) == method) {
                *route = r.id.name();
            }
        }
        // Most paths are canonical already: no copy then.
        (!m.is_canonical()).then(|| m.canonical_path())
    };
    if let Some(path) = canonical {
        let uri = request.uri();
        let path_and_query = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = uri.clone().into_parts();
        match path_and_query.parse() {
            Ok(pq) => parts.path_and_query = Some(pq),
            Err(_) => return ApiError::Internal("canonical path not a URI").into_response(),
        }
        match http::Uri::from_parts(parts) {
            Ok(u) => *request.uri_mut() = u,
            Err(_) => return ApiError::Internal("canonical path not a URI").into_response(),
        }
    }
    next.run(request).await
}

/// A random (v4) UUID for a request that brought no `x-request-id`, formatted on the stack
/// (tower-http's `MakeRequestUuid` formats into a `String` first).
#[derive(Debug, Clone, Copy)]
struct NewRequestId;

impl tower_http::request_id::MakeRequestId for NewRequestId {
    fn make_request_id<B>(
        &mut self,
        _: &http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// Request ids (`x-request-id`, generated when absent, echoed in the response) and one
/// structured log line per request with request id, method, path, route (the matched
/// template), principal (recorded by [`Access::decide`]; never a token or key), status and
/// latency.
fn with_request_layers(
    router: axum::Router,
    cors: Option<crate::cors::CorsByHubLayer>,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &http::Request<axum::body::Body>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let span = tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                route = tracing::field::Empty,
                principal = tracing::field::Empty,
            );
            crate::traces::continue_from(&span, req.headers());
            span
        })
        .on_response(
            DefaultOnResponse::new()
                .level(tracing::Level::INFO)
                .latency_unit(tower_http::LatencyUnit::Micros),
        );
    // Outermost first: the request id is set before the span opens, the path normalized
    // last, just before routing.
    tower::ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(SetRequestIdLayer::x_request_id(NewRequestId))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .map_response(log_errors)
        .option_layer(cors)
        .map_response(IntoResponse::into_response)
        .layer(axum::middleware::from_fn(normalize))
        .service(router)
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

/// Query parameters every route accepts and ignores: Event Hubs clients send them on every
/// call (README "API").
pub const IGNORED_QUERY: &[&str] = &["api-version", "timeout"];

/// `Query` with [`ApiError`] rejections, after dropping the [`IGNORED_QUERY`] parameters (so
/// a route's own query type may refuse unknown fields and still take Event Hubs calls).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let kept = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| !IGNORED_QUERY.iter().any(|i| k.eq_ignore_ascii_case(i))),
            )
            .finish();
        let uri: axum::http::Uri = format!("/?{kept}")
            .parse()
            .map_err(|_| ApiError::BadRequest("invalid query string".into()))?;
        let axum::extract::Query(q) = axum::extract::Query::try_from_uri(&uri)?;
        Ok(Self(q))
    }
}

/// Refuses a body that is not declared JSON (`application/json`, or `application/*+json`)
/// with 415, as [`ApiJson`] does, for routes that read their JSON body as bytes first
/// (to hash it for idempotency).
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = media == "application/json"
        || media
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "expected 'Content-Type: application/json'".into(),
        ))
    }
}

/// `Path` with [`ApiError`] rejections.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn body_error_timeout_is_408_and_closes_ok() {
        let timeout = crate::listener::BodyTimeout(std::time::Duration::from_secs(60));
        // As axum hands it over: the body's error inside axum's.
        let wrapped =
            axum::Error::new(Box::new(timeout) as Box<dyn std::error::Error + Send + Sync>);
        let e = body_error(&wrapped, 10);
        assert!(matches!(e, ApiError::BodyTimeout(_)), "{e:?}");
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(r.headers()[header::CONNECTION], "close");
        let other = axum::Error::new(std::io::Error::other("reset"));
        assert!(matches!(body_error(&other, 10), ApiError::BadRequest(_)));
    }

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

    #[test]
    fn api_error_report_for_the_log_layer_ok() {
        let r = ApiError::Kafka(KafkaError::Timeout).into_response();
        let report = r.extensions().get::<ErrorReport>().unwrap();
        assert_eq!(report.level, tracing::Level::WARN);
        assert!(report.detail.contains("Timeout"), "{}", report.detail);
        let r = ApiError::BadRequest("x".into()).into_response();
        assert!(r.extensions().get::<ErrorReport>().is_none());
    }

    #[test]
    fn query_credential_stream_routes_only_ok() {
        use crate::routes::{ProxyRoute, RouteId};
        let stream = RouteId::KafkaProxy(ProxyRoute::StreamHub).route();
        let read = RouteId::KafkaProxy(ProxyRoute::ReadEvents).route();
        let none = http::HeaderMap::new();
        let sas = "access_token=SharedAccessSignature%20sr%3Dx%26sig%3Dy&start=latest";
        let h = query_credential(stream, Some(sas), &none).unwrap().unwrap();
        assert_eq!(h[header::AUTHORIZATION], "SharedAccessSignature sr=x&sig=y");
        let h = query_credential(stream, Some("access_token=eyJ.a.b"), &none)
            .unwrap()
            .unwrap();
        assert_eq!(h[header::AUTHORIZATION], "Bearer eyJ.a.b");
        // Not a stream route, or no parameter: the request's own headers.
        assert!(query_credential(read, Some(sas), &none).unwrap().is_none());
        assert!(
            query_credential(stream, Some("start=latest"), &none)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn query_credential_in_two_places_fails() {
        use crate::routes::{ProxyRoute, RouteId};
        let stream = RouteId::KafkaProxy(ProxyRoute::StreamPartition).route();
        let mut headers = http::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        let e = query_credential(stream, Some("access_token=y"), &headers).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
        let e = query_credential(stream, Some("access_token=a%0Ab"), &http::HeaderMap::new())
            .unwrap_err();
        assert_eq!(e.status_and_code().0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn api_error_kafka_hides_detail_and_sets_retry_after_ok() {
        let (status, v, r) = body_of(ApiError::Kafka(KafkaError::Timeout)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(v["error_code"], 50301);
        assert_eq!(r.headers()["retry-after"], "1");
    }
}
