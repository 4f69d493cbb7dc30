//! authorizer: decides whether a request may reach hubgate's functions, before it costs
//! anything. As an API Gateway HTTP API Lambda REQUEST authorizer (payload format 2.0,
//! simple responses) and as `POST /v1/authorize` for other gateways.
//!
//! The decision depends on the credential, the method and the path, and is the one the
//! functions' routers make ([`hubgate_server::routes`], [`hubgate_server::access`]): a cached
//! "allow" for one publisher's token can never be
//! reused for another publisher or hub as long as the cache key contains the method and path
//! (or caching is off); the functions check again anyway.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::on;
use http::{HeaderMap, HeaderValue, StatusCode};
use hubgate_server::http::{ApiJson, table_router};
use hubgate_server::json::Object;
use hubgate_server::routes::{AuthorizerRoute, Lookup, lookup};
use hubgate_server::{ApiError, Clients, Config, Principal};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use serde::{Deserialize, Serialize};

/// What the authorizer needs.
#[derive(Debug)]
pub struct AuthorizerState {
    pub clients: Clients,
    /// `authorizer.http_endpoint`: whether `POST /v1/authorize` answers.
    pub http_endpoint: bool,
    /// `[cors]`.
    pub cors: Option<hubgate_server::cors::CorsByHubLayer>,
}

impl AuthorizerState {
    pub fn new(config: &Config, clients: &Clients) -> Self {
        Self {
            clients: clients.clone(),
            http_endpoint: config.authorizer.http_endpoint,
            cors: config.cors.layer(),
        }
    }
}

/// A decision, shaped as API Gateway's simple response: `{"isAuthorized", "context"}`.
/// On allow, `context` holds `principalKind` (`sas`, `jwt`, or `anonymous` for the public
/// API description), `principal`, `rights`
/// (comma-separated) and `publisher` (empty unless the credential is bound to one); on deny,
/// `reason` and `status` (the HTTP status the function itself would answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(rename = "isAuthorized")]
    pub is_authorized: bool,
    pub context: BTreeMap<String, String>,
}

impl Decision {
    fn deny(reason: impl Into<String>, status: StatusCode) -> Self {
        Self {
            is_authorized: false,
            context: BTreeMap::from([
                ("reason".to_owned(), reason.into()),
                ("status".to_owned(), status.as_u16().to_string()),
            ]),
        }
    }

    /// A route that needs no credential (`GET /openapi.json`).
    fn anonymous() -> Self {
        Self {
            is_authorized: true,
            context: BTreeMap::from([
                ("principalKind".to_owned(), "anonymous".to_owned()),
                ("principal".to_owned(), String::new()),
                ("rights".to_owned(), String::new()),
                ("publisher".to_owned(), String::new()),
            ]),
        }
    }

    fn allow(p: &Principal) -> Self {
        let kind = match p {
            Principal::Sas { .. } => "sas",
            Principal::Certificate { .. } => "certificate",
            _ => "jwt",
        };
        let rights: Vec<String> = p.rights().names().iter().map(ToString::to_string).collect();
        let publisher = p.publisher().map(|(_, p)| p.to_owned()).unwrap_or_default();
        Self {
            is_authorized: true,
            context: BTreeMap::from([
                ("principalKind".to_owned(), kind.to_owned()),
                ("principal".to_owned(), p.name()),
                ("rights".to_owned(), rights.join(",")),
                ("publisher".to_owned(), publisher),
            ]),
        }
    }
}

/// Decides for a request with these headers, method and path (a query string is ignored):
/// the route table's [`lookup`], then the same [`Access::decide`](hubgate_server::access::Access::decide)
/// the functions' routers run.
pub async fn decide(
    s: &AuthorizerState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Decision {
    let path = path.split('?').next().unwrap_or_default();
    let (route, raw) = match lookup(method, path) {
        Lookup::Found(route, raw) => (route, raw),
        Lookup::MethodNotAllowed(_) => {
            return Decision::deny(
                format!("{method} is not served here"),
                StatusCode::METHOD_NOT_ALLOWED,
            );
        }
        Lookup::NotFound => return Decision::deny("no such route", StatusCode::NOT_FOUND),
    };
    match s.clients.access.decide(route, &raw, headers, None).await {
        Ok(None) => Decision::anonymous(),
        Ok(Some(grant)) => {
            tracing::debug!(
                principal = grant.principal.name(),
                method,
                path,
                "authorized"
            );
            Decision::allow(&grant.principal)
        }
        // Includes "the revocation list cannot be read": fail closed.
        Err(refusal) => {
            let e = ApiError::from(refusal);
            Decision::deny(e.client_message(), e.status_and_code().0)
        }
    }
}

/// `POST /v1/authorize` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The request's `Authorization` header value.
    #[serde(default)]
    pub authorization: Option<String>,
    pub method: String,
    pub path: String,
}

/// The authorizer routes, from the route table (without the serving layers; see [`app`]).
pub fn routes(state: Arc<AuthorizerState>) -> Router {
    let access = Arc::clone(&state.clients.access);
    table_router(&access, |id: AuthorizerRoute, m| match id {
        AuthorizerRoute::Authorize => on(m, authorize),
    })
    .layer(DefaultBodyLimit::max(32 * 1024))
    .with_state(state)
}

/// The authorizer app: `POST /v1/authorize` (200 with the decision in the body; 404 unless
/// `authorizer.http_endpoint` is on).
pub fn app(state: Arc<AuthorizerState>) -> Router {
    let cors = state.cors.clone();
    hubgate_server::http::serve(routes(state), cors)
}

async fn authorize(
    State(s): State<Arc<AuthorizerState>>,
    // Objects only: serde would also take an array of the fields in order.
    body: Result<ApiJson<Object<AuthorizeRequest>>, ApiError>,
) -> Result<ApiJson<Decision>, ApiError> {
    // Off, it answers as if it did not exist, before looking at the body.
    if !s.http_endpoint {
        return Err(ApiError::NotFound(
            "POST /v1/authorize is off; turn it on with authorizer.http_endpoint = true \
             (HUBGATE_AUTHORIZER__HTTP_ENDPOINT=true) on a private network only"
                .into(),
        ));
    }
    let ApiJson(Object(r)) = body?;
    let mut headers = HeaderMap::new();
    if let Some(a) = r
        .authorization
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        headers.insert(http::header::AUTHORIZATION, a);
    }
    Ok(ApiJson(decide(&s, &headers, &r.method, &r.path).await))
}

/// An event the authorizer cannot handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    #[error("not an API Gateway v2 authorizer event: {0}")]
    NotAnAuthorizerEvent(serde_json::Error),
    #[error("the decision could not be written as JSON: {0}")]
    Encode(serde_json::Error),
}

/// Handles an API Gateway v2 REQUEST authorizer event; returns the simple response JSON.
pub async fn handle_event(
    s: &AuthorizerState,
    payload: serde_json::Value,
) -> Result<serde_json::Value, EventError> {
    let event: ApiGatewayV2CustomAuthorizerV2Request =
        serde_json::from_value(payload).map_err(EventError::NotAnAuthorizerEvent)?;
    let method = event.request_context.http.method.as_str().to_owned();
    let path = event.raw_path.clone().unwrap_or_default();
    let decision = decide(s, &event.headers, &method, &path).await;
    serde_json::to_value(decision).map_err(EventError::Encode)
}

#[cfg(test)]
mod tests;
