//! The server layer of hubgate's functions: HTTP (routers built from the route table, the one
//! authorization layer, the error shape), configuration, the serverless runtime glue, the
//! OAuth key and Graph clients, Secrets Manager, and the Kafka-backed stores (revocations,
//! consumer groups, idempotency). The I/O-free parts are `hubgate-core` and the Kafka layer
//! `hubgate-kafka`, re-exported here under their module names.

pub mod access;
pub mod audit;
pub mod broker_tokens;
pub mod clients;
pub mod config;
pub mod consumer_groups;
pub mod cors;
pub mod credential_cache;
pub mod gate;
pub mod groups;
pub mod header_case;
pub mod http;
pub mod idempotency;
pub mod jwt;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod revocation;
pub mod runtime;
pub mod secrets;
pub mod startup;
pub mod throttle;
pub mod traces;

pub use hubgate_core::{authz, json, names, rights, routes, sas};
pub use hubgate_kafka::{self as kafka, table};

pub use authz::{Authenticator, Principal, Resource, Right, Rights, authorize};
pub use clients::Clients;
pub use config::Config;
pub use gate::Gate;
pub use http::ApiError;
pub use kafka::{Kafka, KafkaError};
pub use keys::KeyStore;
pub use revocation::Revocations;
