//! The all-in-one hubgate server: every function's router on one port.

use std::sync::Arc;

use hubgate_shared::{Clients, Config};
use kafka_proxy::ProxyState;
use token_issuer::IssuerState;

/// Every function's router, sharing one set of clients.
pub fn app(config: Arc<Config>, clients: &Clients) -> axum::Router {
    let proxy = kafka_proxy::app(Arc::new(ProxyState::new(Arc::clone(&config), clients)));
    proxy.merge(token_issuer::app(Arc::new(IssuerState::new(
        config, clients,
    ))))
}
