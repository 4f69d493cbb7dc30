//! token-issuer: mints SAS tokens per publisher (Send) or consumer group (Listen), and, as
//! a Lambda function, also handles direct invocations (mint / revoke / resume), EventBridge
//! scheduled events (key rotation) and the Secrets Manager rotation contract.

mod events;
mod mint;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use http::HeaderMap;
use hubgate_shared::http::{ApiJson, read_body};
use hubgate_shared::json::parse_object;
use hubgate_shared::routes::Requirement;
use hubgate_shared::{ApiError, Clients, Config, Gate, Resource, Revocations, Right, authorize};

pub use events::{EventError, handle_event};
pub use mint::{MintRequest, MintResponse};

/// Largest `POST /v1/tokens` body.
const BODY_LIMIT: usize = 16 * 1024;

/// What the issuer needs, shared by all requests of the process.
#[derive(Debug)]
pub struct IssuerState {
    pub config: Arc<Config>,
    pub gate: Arc<Gate>,
    pub revocations: Arc<Revocations>,
}

impl IssuerState {
    /// Builds the state from the process's shared clients.
    pub fn new(config: Arc<Config>, clients: &Clients) -> Self {
        Self {
            config,
            gate: Arc::clone(&clients.gate),
            revocations: Arc::clone(&clients.revocations),
        }
    }
}

/// The token-issuer router: `POST /v1/tokens`.
pub fn app(state: Arc<IssuerState>) -> Router {
    let router = Router::new()
        .route("/v1/tokens", post(tokens))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    hubgate_shared::http::with_request_layers(router)
}

/// `POST /v1/tokens`: Manage on the hub (or the namespace). The credential is checked before
/// the body is read (Manage somewhere, as the authorizer's table says), then on the hub the
/// body names.
async fn tokens(
    State(s): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<ApiJson<MintResponse>, ApiError> {
    let principal = s.gate.authenticate(&headers).await?;
    Requirement::AnyScope(Right::Manage).check(&principal)?;
    let request: MintRequest = parse_object(&read_body(body, BODY_LIMIT).await?, "token request")?;
    hubgate_shared::names::validate_hub(&request.hub)?;
    authorize(&principal, Right::Manage, &Resource::hub(&request.hub))?;
    Ok(ApiJson(mint::mint(&s, request, &principal.name()).await?))
}

#[cfg(test)]
mod tests;
