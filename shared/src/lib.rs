//! What hubgate's functions share: Event Hubs SAS tokens, the authorization decision,
//! configuration, Kafka access, the HTTP error shape and the serverless runtime glue.

pub mod access;
pub mod authz;
pub mod clients;
pub mod config;
pub mod consumer_groups;
/// Fuzz target bodies; public only with the `fuzzing` feature (used by `fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod groups;
pub mod http;
pub mod idempotency;
pub mod json;
pub mod jwt;
pub mod kafka;
pub mod keys;
pub mod names;
pub mod openapi;
pub mod revocation;
pub mod routes;
pub mod runtime;
pub mod sas;
pub mod secrets;
pub mod table;
pub mod throttle;

pub use authz::{Authenticator, Principal, Resource, Right, Rights, authorize};
pub use clients::Clients;
pub use config::Config;
pub use gate::Gate;
pub use http::ApiError;
pub use kafka::{Kafka, KafkaError};
pub use keys::KeyStore;
pub use revocation::Revocations;
