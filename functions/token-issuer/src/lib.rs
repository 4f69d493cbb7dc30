//! token-issuer: mints SAS tokens per publisher (Send) or consumer group (Listen), and, as
//! a Lambda function, also handles direct invocations (mint / revoke / resume), EventBridge
//! scheduled events (key rotation) and the Secrets Manager rotation contract.

mod events;
mod mint;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::on;
use hubgate_server::access::{Access, Grant};
use hubgate_server::http::{ApiJson, read_body, table_router};
use hubgate_server::json::parse_object;
use hubgate_server::routes::IssuerRoute;
use hubgate_server::{ApiError, Clients, Config, Gate, Resource, Revocations, Right, authorize};

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
    /// The authorization decision (the route table's layer).
    pub access: Arc<Access>,
    /// The audit log of management actions.
    pub audit: Arc<hubgate_server::audit::Audit>,
}

impl IssuerState {
    /// Builds the state from the process's shared clients.
    pub fn new(config: Arc<Config>, clients: &Clients) -> Self {
        Self {
            config,
            gate: Arc::clone(&clients.gate),
            revocations: Arc::clone(&clients.revocations),
            access: Arc::clone(&clients.access),
            audit: Arc::clone(&clients.audit),
        }
    }
}

/// The token-issuer routes, from the route table (without the serving layers; see [`app`]).
pub fn routes(state: Arc<IssuerState>) -> Router {
    let access = Arc::clone(&state.access);
    table_router(&access, |id: IssuerRoute, m| match id {
        IssuerRoute::MintToken => on(m, tokens),
    })
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    .with_state(state)
}

/// The token-issuer app: [`routes`] behind the serving layers.
pub fn app(state: Arc<IssuerState>) -> Router {
    let cors = state.config.cors.layer();
    hubgate_server::http::serve(routes(state), cors)
}

/// `POST /v1/tokens`: Manage on the hub (or the namespace). The route's layer has checked
/// Manage somewhere (as the authorizer can, without the body); the hub the body names is
/// checked here.
async fn tokens(
    State(s): State<Arc<IssuerState>>,
    Grant {
        principal,
        request_id,
        ..
    }: Grant,
    body: Body,
) -> Result<ApiJson<MintResponse>, ApiError> {
    let request: MintRequest = parse_object(&read_body(body, BODY_LIMIT).await?, "token request")?;
    hubgate_server::names::validate_hub(&request.hub)?;
    authorize(&principal, Right::Manage, &Resource::hub(&request.hub))?;
    Ok(ApiJson(
        mint::mint(&s, request, &principal.name(), &request_id).await?,
    ))
}

#[cfg(test)]
mod tests;
