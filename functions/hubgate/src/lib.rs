//! The all-in-one hubgate server: every function's router on one port.

use std::sync::Arc;

use hubgate_shared::{Config, Kafka};
use kafka_proxy::ProxyState;

/// Every function's router, sharing one Kafka client.
pub fn app(config: Arc<Config>) -> axum::Router {
    let kafka = Arc::new(Kafka::new(&config.kafka));
    kafka_proxy::app(Arc::new(ProxyState::new(config, kafka)))
}
