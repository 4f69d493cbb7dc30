//! The all-in-one hubgate server: every function's router on one port, and on Lambda every
//! function's non-HTTP events.

use std::sync::Arc;

use authorizer::AuthorizerState;
use hubgate_server::runtime::{BoxError, is_authorizer_event};
use hubgate_server::{Clients, Config};
use kafka_proxy::ProxyState;
use token_issuer::IssuerState;

/// Every function's router, sharing one set of clients.
pub fn app(config: Arc<Config>, clients: &Clients) -> axum::Router {
    let proxy = kafka_proxy::routes(Arc::new(ProxyState::new(Arc::clone(&config), clients)));
    let authorizer = authorizer::routes(Arc::new(AuthorizerState::new(&config, clients)));
    let cors = config.cors.layer();
    let issuer = token_issuer::routes(Arc::new(IssuerState::new(config, clients)));
    hubgate_server::http::serve(proxy.merge(issuer).merge(authorizer), cors)
}

/// Handles a non-HTTP Lambda event: API Gateway authorizer events go to the authorizer,
/// everything else to the token issuer.
pub async fn handle_event(
    config: Arc<Config>,
    clients: &Clients,
    payload: serde_json::Value,
) -> Result<serde_json::Value, BoxError> {
    if is_authorizer_event(&payload) {
        let state = AuthorizerState::new(&config, clients);
        return authorizer::handle_event(&state, payload)
            .await
            .map_err(BoxError::from);
    }
    let issuer = IssuerState::new(config, clients);
    token_issuer::handle_event(&issuer, payload)
        .await
        .map_err(BoxError::from)
}
