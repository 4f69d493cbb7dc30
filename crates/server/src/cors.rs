//! Cross-origin requests from browsers (`[cors]`): the CORS protocol of the Fetch standard
//! (preflights, `Access-Control-*` answers) by tower-http's `CorsLayer`, with one policy for
//! the whole gateway and, optionally, one per hub (`[cors.hubs.<hub>]`, chosen by the hub the
//! path names). Off by default: without allowed origins no `Access-Control-*` header is sent
//! and browsers refuse cross-origin reads.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
use http::{HeaderName, HeaderValue};
use hubgate_core::cors::{OriginPattern, origin_allowed};
use hubgate_core::lists::string_or_list;
use serde::Deserialize;
use tower::ServiceExt as _;

use crate::names::{fold, validate_hub};
use crate::routes::{Method, match_path};

/// Request headers always allowed (besides the CORS-safelisted ones): credentials, bodies,
/// Event Hubs properties, idempotency, stream resumption, request ids.
pub const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "brokerproperties",
    "idempotency-key",
    "last-event-id",
    "x-request-id",
];

/// Response headers always exposed to scripts (besides the CORS-safelisted ones).
pub const EXPOSED_HEADERS: &[&str] = &[
    "nextoffset",
    "retry-after",
    "x-request-id",
    "idempotent-replayed",
    "location",
    "www-authenticate",
];

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// `[cors]`: the gateway-wide policy, and per-hub policies in `[cors.hubs.<hub>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed: `"*"`, exact (`"https://app.example.com"`) or wildcard subdomains
    /// (`"https://*.example.com"`). Empty (the default): CORS off, except for hubs that
    /// configure their own.
    #[serde(default, deserialize_with = "string_or_list")]
    pub allowed_origins: Vec<String>,
    /// Methods allowed (default `GET`, `POST`, `PUT`, `DELETE`).
    #[serde(default, deserialize_with = "string_or_list")]
    pub allowed_methods: Vec<String>,
    /// Request headers allowed besides [`ALLOWED_HEADERS`], e.g. custom property headers;
    /// `"*"` allows whatever a preflight asks for.
    #[serde(default, deserialize_with = "string_or_list")]
    pub allowed_headers: Vec<String>,
    /// Response headers exposed besides [`EXPOSED_HEADERS`].
    #[serde(default, deserialize_with = "string_or_list")]
    pub exposed_headers: Vec<String>,
    /// How long a browser may keep a preflight's answer (`Access-Control-Max-Age`, default
    /// 600 s).
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// Per-hub policies; each key left out takes the gateway-wide value.
    #[serde(default)]
    pub hubs: BTreeMap<String, HubCors>,
}

/// `[cors.hubs.<hub>]`: a hub's own policy; what it leaves out comes from `[cors]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubCors {
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_methods: Option<Vec<String>>,
    pub allowed_headers: Option<Vec<String>>,
    pub exposed_headers: Option<Vec<String>>,
    pub max_age_secs: Option<u64>,
}

/// One policy, checked.
#[derive(Debug, Clone)]
struct Policy {
    origins: Vec<OriginPattern>,
    methods: Vec<http::Method>,
    /// `None`: whatever the preflight asks for.
    headers: Option<Vec<HeaderName>>,
    exposed: Vec<HeaderName>,
    max_age: Duration,
}

fn header_names(
    built_in: &[&'static str],
    extra: &[String],
    key: &str,
) -> Result<Vec<HeaderName>, String> {
    let mut names: Vec<HeaderName> = built_in
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect();
    for h in extra {
        let name = HeaderName::try_from(h.as_str())
            .map_err(|_| format!("cors: {key} '{h}' is not a header name"))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

impl Policy {
    fn new(
        origins: &[String],
        methods: &[String],
        headers: &[String],
        exposed: &[String],
        max_age_secs: Option<u64>,
    ) -> Result<Self, String> {
        let origins = origins
            .iter()
            .map(|o| OriginPattern::parse(o).map_err(|e| format!("cors: {e}")))
            .collect::<Result<_, _>>()?;
        let methods = if methods.is_empty() {
            vec![
                http::Method::GET,
                http::Method::POST,
                http::Method::PUT,
                http::Method::DELETE,
            ]
        } else {
            methods
                .iter()
                .map(|m| {
                    Method::parse(m)
                        .and_then(|m| http::Method::from_bytes(m.as_str().as_bytes()).ok())
                        .ok_or_else(|| {
                            format!(
                                "cors: allowed_methods '{m}' is not one of GET, POST, PUT, DELETE"
                            )
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let headers = if headers.iter().any(|h| h == "*") {
            None
        } else {
            Some(header_names(ALLOWED_HEADERS, headers, "allowed_headers")?)
        };
        Ok(Self {
            origins,
            methods,
            headers,
            exposed: header_names(EXPOSED_HEADERS, exposed, "exposed_headers")?,
            max_age: max_age_secs.map_or(DEFAULT_MAX_AGE, Duration::from_secs),
        })
    }

    /// tower-http's layer for this policy; `None` when it allows no origin.
    fn layer(&self) -> Option<tower_http::cors::CorsLayer> {
        use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
        if self.origins.is_empty() {
            return None;
        }
        let origin = if self.origins.contains(&OriginPattern::Any) {
            AllowOrigin::any()
        } else {
            let patterns = self.origins.clone();
            AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| origin_allowed(&patterns, o))
            })
        };
        let headers = match &self.headers {
            Some(list) => AllowHeaders::list(list.iter().cloned()),
            None => AllowHeaders::mirror_request(),
        };
        Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods(self.methods.clone())
                .allow_headers(headers)
                .expose_headers(self.exposed.clone())
                .max_age(self.max_age),
        )
    }
}

impl CorsConfig {
    fn global(&self) -> Result<Policy, String> {
        Policy::new(
            &self.allowed_origins,
            &self.allowed_methods,
            &self.allowed_headers,
            &self.exposed_headers,
            self.max_age_secs,
        )
    }

    fn hub(&self, hub: &HubCors) -> Result<Policy, String> {
        Policy::new(
            hub.allowed_origins
                .as_ref()
                .unwrap_or(&self.allowed_origins),
            hub.allowed_methods
                .as_ref()
                .unwrap_or(&self.allowed_methods),
            hub.allowed_headers
                .as_ref()
                .unwrap_or(&self.allowed_headers),
            hub.exposed_headers
                .as_ref()
                .unwrap_or(&self.exposed_headers),
            hub.max_age_secs.or(self.max_age_secs),
        )
    }

    /// Checks every pattern, method, header name and hub name.
    pub fn validate(&self) -> Result<(), String> {
        self.global()?;
        for (name, hub) in &self.hubs {
            validate_hub(name).map_err(|e| format!("cors.hubs: {e}"))?;
            self.hub(hub)?;
        }
        Ok(())
    }

    /// The layer answering CORS for every route; `None` when CORS is off everywhere.
    pub fn layer(&self) -> Option<CorsByHubLayer> {
        let global = self.global().ok()?.layer();
        let hubs: HashMap<String, Option<tower_http::cors::CorsLayer>> = self
            .hubs
            .iter()
            .filter_map(|(name, hub)| Some((fold(name), self.hub(hub).ok()?.layer())))
            .collect();
        if global.is_none() && hubs.values().all(Option::is_none) {
            return None;
        }
        Some(CorsByHubLayer {
            global,
            hubs: Arc::new(hubs),
        })
    }
}

/// The CORS layer: the policy of the hub the path names, else the gateway-wide one.
#[derive(Debug, Clone)]
pub struct CorsByHubLayer {
    global: Option<tower_http::cors::CorsLayer>,
    hubs: Arc<HashMap<String, Option<tower_http::cors::CorsLayer>>>,
}

impl<S: Clone> tower::Layer<S> for CorsByHubLayer {
    type Service = CorsByHub<S>;

    fn layer(&self, inner: S) -> CorsByHub<S> {
        let wrap = |l: &tower_http::cors::CorsLayer| tower::Layer::layer(l, inner.clone());
        CorsByHub {
            global: self.global.as_ref().map(wrap),
            hubs: Arc::new(
                self.hubs
                    .iter()
                    .map(|(h, l)| (h.clone(), l.as_ref().map(wrap)))
                    .collect(),
            ),
            plain: inner,
        }
    }
}

/// See [`CorsByHubLayer`].
#[derive(Clone)]
#[allow(missing_debug_implementations)] // wraps the router, which has nothing to show
pub struct CorsByHub<S> {
    plain: S,
    global: Option<tower_http::cors::Cors<S>>,
    hubs: Arc<HashMap<String, Option<tower_http::cors::Cors<S>>>>,
}

/// The hub a path names (`{hub}` or `{topic}`), folded; `None` for other paths.
fn hub_of(path: &str) -> Option<String> {
    let m = match_path(path)?;
    let params = m.params();
    let hub = params.get("hub").or_else(|| params.get("topic"))?;
    Some(fold(&hub))
}

impl<S> tower::Service<Request> for CorsByHub<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        // Each call readies its own clone (below).
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let policy = if self.hubs.is_empty() {
            self.global.as_ref()
        } else {
            match hub_of(request.uri().path()).and_then(|h| self.hubs.get(&h)) {
                Some(hub) => hub.as_ref(),
                None => self.global.as_ref(),
            }
        };
        match policy {
            Some(cors) => Box::pin(cors.clone().oneshot(request)),
            None => Box::pin(self.plain.clone().oneshot(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> CorsConfig {
        use figment::providers::Format as _;
        figment::Figment::from(figment::providers::Toml::string(toml))
            .extract()
            .unwrap()
    }

    #[test]
    fn cors_off_by_default_ok() {
        assert!(CorsConfig::default().layer().is_none());
        let only_hub = config("[hubs.telemetry]\nallowed_origins = [\"https://a.test\"]");
        assert!(only_hub.layer().is_some());
    }

    #[test]
    fn cors_config_bad_values_fails() {
        for bad in [
            "allowed_origins = [\"example.com\"]",
            "allowed_origins = [\"*\"]\nallowed_methods = [\"PATCH\"]",
            "allowed_origins = [\"*\"]\nallowed_headers = [\"bad header\"]",
            "[hubs.\"bad/name\"]\nallowed_origins = [\"*\"]",
        ] {
            assert!(config(bad).validate().is_err(), "{bad}");
        }
        config("allowed_origins = \"https://a.test,https://*.b.test\"")
            .validate()
            .unwrap();
    }

    #[test]
    fn cors_hub_of_path_ok() {
        assert_eq!(hub_of("/Telemetry/messages").as_deref(), Some("telemetry"));
        assert_eq!(
            hub_of("/v1/producer/topics/Orders").as_deref(),
            Some("orders")
        );
        assert_eq!(hub_of("/v1/tokens"), None);
        assert_eq!(hub_of("/nowhere/at/all/x/y/z"), None);
    }
}
