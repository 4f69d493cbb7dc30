//! hubgate's I/O-free core: Event Hubs shared access signatures, names in their one canonical
//! form, rights and resources, the authorization decision, the group policy, JWT verification
//! given keys, the route table and the JSON body rules. No tokio, no HTTP stack, no Kafka
//! client, no cloud SDK: the fuzz targets and the credential benchmarks build on this alone.
//!
//! Module layering (no cycles): `sas` ← `names`; `rights` ← `groups`; `sas`, `rights`,
//! `groups`, `jwt` ← `authz` ← `routes`; `json` ← `bodies`; `routes` ← `streams`; `jwt`, `cors` and `audit` stand alone.

pub mod audit;
pub mod authz;
pub mod bodies;
pub mod certs;
pub mod cors;
/// Fuzz target bodies; public only with the `fuzzing` feature (used by `fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod groups;
pub mod json;
pub mod jwt;
pub mod lists;
pub mod names;
pub mod rights;
pub mod routes;
pub mod sas;
pub mod streams;
#[cfg(test)]
mod testing;
pub mod units;

pub use authz::{AuthError, Authenticator, Principal, RuleConfig, authorize};
pub use rights::{Resource, Right, Rights};
