//! The one authorization decision of a request, driven by the route table
//! ([`crate::routes`]): who the caller is, whether the path's names are valid, whether the
//! caller has what the route needs, whether the hub is exposed, which one Kafka topic the
//! hub is, whether a publisher involved is revoked. The routers run it once per request in
//! a layer ([`crate::http::table_router`]) and the authorizer function runs the same code,
//! so the two cannot disagree.

use std::sync::Arc;

use http::HeaderMap;

use crate::authz::{AuthError, Principal, Resource};
use crate::config::{Config, hub_exposed};
use crate::gate::Gate;
use crate::kafka::{Kafka, KafkaError};
use crate::listener::tls::ClientCertificate;
use crate::revocation::Revocations;
use crate::routes::{MissingParam, ParamError, Params, RawParams, Route, RouteId};

/// What a request that passed [`Access::decide`] carries to its handler.
#[derive(Debug, Clone)]
pub struct Grant {
    pub route: RouteId,
    pub principal: Arc<Principal>,
    /// The path's parameters, validated; the hub is the Kafka topic it stands for
    /// ([`Kafka::resolve_topic`]).
    pub params: Params,
    /// The resource the route acts on, for [`Need::On`](crate::routes::Need::On) routes.
    pub resource: Option<Resource>,
    /// The request's `x-request-id` (for the audit log), set by the route guard.
    pub request_id: String,
}

impl Grant {
    /// The resource of a [`Need::On`](crate::routes::Need::On) route.
    pub fn resource(&self) -> Result<&Resource, MissingParam> {
        self.resource.as_ref().ok_or(MissingParam("resource"))
    }
}

/// Why [`Access::decide`] refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No valid credential, or one without the right (or a revoked publisher).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A path parameter is not valid.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The hub is not one this gateway exposes (`hubs`).
    #[error("topic '{hub}' does not exist")]
    NotExposed { route: RouteId, hub: String },
    /// Kafka could not be asked (the revocation list: publisher requests fail closed; the
    /// topic list), or said the hub stands for no one topic ([`KafkaError::CaseTwins`]).
    #[error(transparent)]
    Unavailable(#[from] KafkaError),
}

/// The credentials, the exposed hubs and the revocation list: what a decision needs.
#[derive(Debug)]
pub struct Access {
    gate: Arc<Gate>,
    revocations: Arc<Revocations>,
    kafka: Arc<Kafka>,
    hubs: Vec<String>,
}

impl Access {
    /// The decision for `config`'s hubs, with these credentials, revocations and Kafka
    /// (for the topic a hub stands for).
    pub fn new(
        config: &Config,
        gate: Arc<Gate>,
        revocations: Arc<Revocations>,
        kafka: Arc<Kafka>,
    ) -> Self {
        Self {
            gate,
            revocations,
            kafka,
            hubs: config.hubs.clone(),
        }
    }

    /// The credentials.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Decides a request for `route` with the path's `raw` parameters, these headers and the
    /// connection's client `certificate` (mutual TLS). `Ok(None)` for routes that need no
    /// credential. The order is fixed: a caller without a
    /// valid credential learns nothing about names (401 before 400), then the names, the
    /// right, the hub, the one topic the hub is (the cached topic list), and last the
    /// revocation list.
    pub async fn decide(
        &self,
        route: &'static Route,
        raw: &RawParams<'_>,
        headers: &HeaderMap,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Option<Grant>, Refusal> {
        if !route.need.needs_credential() {
            return Ok(None);
        }
        let principal = self.gate.authenticate(headers, certificate).await?;
        // Into the request's log line (a name, never credential material).
        // Formatted only if the line is written: no String per request otherwise.
        tracing::Span::current().record("principal", tracing::field::display(&*principal));
        let mut params = raw.parse()?;
        let resource = route.resource(&params);
        route.need.check(&principal, resource.as_ref())?;
        if let Some(hub) = &params.hub
            && !hub_exposed(&self.hubs, hub)
        {
            return Err(Refusal::NotExposed {
                route: route.id,
                hub: hub.clone(),
            });
        }
        // A hub name is case-insensitive, a topic name is not: a credential for the hub
        // reaches exactly one topic, or none (case twins are refused).
        if let Some(hub) = params.hub.take() {
            params.hub = Some(self.kafka.resolve_topic(&hub).await?);
        }
        let publisher = match resource.as_ref().map(Resource::segments) {
            Some([hub, p, publisher]) if p == crate::authz::PUBLISHERS => {
                Some((hub.as_str(), publisher.as_str()))
            }
            _ => principal.publisher(),
        };
        if let Some((hub, publisher)) = publisher
            && self.revocations.is_revoked(hub, publisher).await?
        {
            return Err(AuthError::Revoked(publisher.to_owned()).into());
        }
        Ok(Some(Grant {
            route: route.id,
            principal,
            params,
            resource,
            request_id: String::new(),
        }))
    }
}
