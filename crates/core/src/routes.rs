//! The route table: the one declaration of hubgate's HTTP routes. Each route has an id, a
//! method, a path template, the function that serves it (derived from the id) and what it
//! needs from the caller. Everything else is derived from this table:
//!
//! - the axum routers (`http::table_router`: one handler per id, by an exhaustive `match`);
//! - the authorization decision of every request (`access::Access::decide`), run once per
//!   request by the router's layer and by the authorizer function, from the same [`lookup`];
//! - the OpenAPI document (`openapi`, an exhaustive `match` on the id);
//! - the deploy descriptions (`functions/hubgate/tests/deploy.rs` checks them whole).
//!
//! Event Hubs path keywords (`messages`, `publishers`, `RevokedPublishers`, …) match in any
//! ASCII letter case and percent-encoded, as the service's do; the HDInsight `/v1` paths match
//! exactly. A literal segment shadows a parameter at the same position, so `/v1/messages` is
//! no route (rather than hub `v1`).

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;

use crate::authz::{AuthError, Principal, Resource, Right, authorize};
use crate::names::{NameError, validate_consumer_group, validate_hub};

/// The function (binary, and Lambda function) that serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    KafkaProxy,
    TokenIssuer,
    Authorizer,
}

impl Function {
    /// Every function.
    pub const ALL: [Self; 3] = [Self::KafkaProxy, Self::TokenIssuer, Self::Authorizer];

    /// The binary's name (`functions/<name>/`), also its Lambda and Azure function's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::KafkaProxy => "kafka-proxy",
            Self::TokenIssuer => "token-issuer",
            Self::Authorizer => "authorizer",
        }
    }
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Delete,
    Get,
    Post,
    Put,
}

impl Method {
    /// The method's name as on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "DELETE",
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }

    /// The method named exactly `name` (HTTP methods are case-sensitive, RFC 9110 §9.1).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Delete, Self::Get, Self::Post, Self::Put]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the resource of a [`Need::On`] route is, read from the path's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole namespace.
    Namespace,
    /// The hub named by `{hub}` or `{topic}`.
    Hub,
    /// The publisher `{publisher}` on the hub.
    Publisher,
    /// The consumer group `{consumergroup}` of the hub.
    ConsumerGroup,
}

/// What a route needs from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No credential (`GET /openapi.json`, the API description).
    Public,
    /// The credential to judge is in the request body (`POST /v1/authorize`), not the caller's.
    InBody,
    /// Any valid credential (`GET /v1/status`).
    Authenticated,
    /// `Right` somewhere: the handler narrows by what it finds (`GET /v1/metadata/topics`
    /// lists only the topics the caller may Listen to; `POST /v1/tokens` names its hub in the
    /// body, which an authorizer does not see).
    AnyScope(Right),
    /// `Right` on the resource the path names.
    On(Right, Scope),
}

impl Need {
    /// Whether a caller must present a credential.
    pub const fn needs_credential(self) -> bool {
        !matches!(self, Self::Public | Self::InBody)
    }

    /// Whether `principal` meets the need on `resource` (the route's resource, for
    /// [`Need::On`]).
    pub fn check(
        self,
        principal: &Principal,
        resource: Option<&Resource>,
    ) -> Result<(), AuthError> {
        match (self, resource) {
            (Self::Public | Self::InBody | Self::Authenticated, _) => Ok(()),
            (Self::On(right, _), Some(resource)) => authorize(principal, right, resource),
            (Self::AnyScope(right), _) if principal.rights().grants(right) => Ok(()),
            // As in `authorize`: a SAS token lacking the right is a credential problem (401),
            // a valid bearer token whose groups lack it is a refusal (403).
            (Self::AnyScope(right) | Self::On(right, _), _) => Err(match principal {
                Principal::Sas { .. } | Principal::Certificate { .. } => {
                    AuthError::MissingRight(right)
                }
                _ => AuthError::NotPermitted(right, "any hub".into()),
            }),
        }
    }
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub id: RouteId,
    pub method: Method,
    /// `{name}` stands for one path segment; literals are written in their canonical case.
    pub path: &'static str,
    pub need: Need,
}

impl Route {
    /// The function that serves the route.
    pub const fn function(&self) -> Function {
        self.id.function()
    }

    /// Whether the route answers with an event stream (`text/event-stream`). Only these
    /// routes take a credential in the query (`access_token`, RFC 6750 §2.3), because a
    /// browser's `EventSource` cannot set headers.
    pub const fn is_stream(&self) -> bool {
        matches!(
            self.id,
            RouteId::KafkaProxy(ProxyRoute::StreamPartition | ProxyRoute::StreamHub)
        )
    }

    /// Whether literal segments match in any ASCII case (the Event Hubs paths).
    fn keywords_any_case(&self) -> bool {
        self.path.starts_with("/{hub}/")
    }

    fn segments(&self) -> impl Iterator<Item = &'static str> {
        self.path[1..].split('/')
    }

    /// The parameter names of the template, in order.
    pub fn parameters(&self) -> impl Iterator<Item = &'static str> {
        self.segments()
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// The resource a [`Need::On`] route acts on.
    pub fn resource(&self, params: &Params) -> Option<Resource> {
        let Need::On(_, scope) = self.need else {
            return None;
        };
        let hub = params.hub.as_deref().unwrap_or_default();
        Some(match scope {
            Scope::Namespace => Resource::namespace(),
            Scope::Hub => Resource::hub(hub),
            Scope::Publisher => {
                Resource::publisher(hub, params.publisher.as_deref().unwrap_or_default())
            }
            Scope::ConsumerGroup => {
                Resource::consumer_group(hub, params.consumer_group.as_deref().unwrap_or_default())
            }
        })
    }
}

macro_rules! route_table {
    ($(
        $(#[$group_doc:meta])*
        $function:ident($group:ident) {
            $( $(#[$doc:meta])* $variant:ident = $method:ident $path:literal $need:expr; )*
        }
    )*) => {
        $(
            $(#[$group_doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum $group { $( $(#[$doc])* $variant, )* }
        )*

        /// A route's id: which function serves it, and which of its routes it is.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RouteId { $( $function($group), )* }

        impl RouteId {
            /// The function that serves the route.
            pub const fn function(self) -> Function {
                match self { $( Self::$function(_) => Function::$function, )* }
            }

            /// A short name for logs and metric labels (the variant's name).
            pub const fn name(self) -> &'static str {
                match self { $( $( Self::$function($group::$variant) => stringify!($variant), )* )* }
            }

            /// The route's entry (the same as in [`ROUTES`]).
            pub const fn route(self) -> &'static Route {
                match self { $( $(
                    Self::$function($group::$variant) => &Route {
                        id: Self::$function($group::$variant),
                        method: Method::$method,
                        path: $path,
                        need: $need,
                    },
                )* )* }
            }
        }

        /// Every route, in the order the macro lists them.
        pub const ROUTES: &[Route] = &[ $( $(
            Route {
                id: RouteId::$function($group::$variant),
                method: Method::$method,
                path: $path,
                need: $need,
            },
        )* )* ];
    };
}

use Need::{AnyScope, Authenticated, InBody, On, Public};
use Right::{Listen, Manage, Send};
use Scope::{ConsumerGroup, Hub, Namespace, Publisher};

route_table! {
    /// The routes of `kafka-proxy`.
    KafkaProxy(ProxyRoute) {
        /// `GET /openapi.json`: this API's description.
        OpenApi = Get "/openapi.json" Public;
        Status = Get "/v1/status" Authenticated;
        Brokers = Get "/v1/metadata/brokers" On(Listen, Namespace);
        Topics = Get "/v1/metadata/topics" AnyScope(Listen);
        TopicPartitions = Get "/v1/metadata/topics/{topic}/partitions" On(Listen, Hub);
        TopicPartition = Get "/v1/metadata/topics/{topic}/partitions/{partition}" On(Listen, Hub);
        CreateTopic = Put "/v1/topics/{topic}" On(Manage, Hub);
        Produce = Post "/v1/producer/topics/{topic}" On(Send, Hub);
        Consume = Get "/v1/consumer/topics/{topic}/partitions/{partition}/offsets/{offset}" On(Listen, Hub);
        SendToHub = Post "/{hub}/messages" On(Send, Hub);
        SendToPartition = Post "/{hub}/partitions/{partition}/messages" On(Send, Hub);
        SendAsPublisher = Post "/{hub}/publishers/{publisher}/messages" On(Send, Publisher);
        /// The singular form some Event Hubs clients use.
        SendAsPublisherSingular = Post "/{hub}/publisher/{publisher}/messages" On(Send, Publisher);
        RevokePublisher = Put "/{hub}/revokedpublishers/{publisher}" On(Manage, Hub);
        ResumePublisher = Delete "/{hub}/revokedpublishers/{publisher}" On(Manage, Hub);
        ListRevokedPublishers = Get "/{hub}/revokedpublishers" On(Manage, Hub);
        ListConsumerGroups = Get "/{hub}/consumergroups" On(Manage, Hub);
        CreateConsumerGroup = Put "/{hub}/consumergroups/{consumergroup}" On(Manage, Hub);
        GetConsumerGroup = Get "/{hub}/consumergroups/{consumergroup}" On(Manage, Hub);
        DeleteConsumerGroup = Delete "/{hub}/consumergroups/{consumergroup}" On(Manage, Hub);
        GroupPartitions = Get "/{hub}/consumergroups/{consumergroup}/partitions" On(Listen, ConsumerGroup);
        GroupPartition = Get "/{hub}/consumergroups/{consumergroup}/partitions/{partition}" On(Listen, ConsumerGroup);
        ReadEvents = Get "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/messages" On(Listen, ConsumerGroup);
        GetCheckpoint = Get "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/checkpoint" On(Listen, ConsumerGroup);
        PutCheckpoint = Put "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/checkpoint" On(Listen, ConsumerGroup);
        /// Server-Sent Events from one partition (`text/event-stream`).
        StreamPartition = Get "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/stream" On(Listen, ConsumerGroup);
        /// Server-Sent Events from every partition of the hub.
        StreamHub = Get "/{hub}/consumergroups/{consumergroup}/stream" On(Listen, ConsumerGroup);
        /// The audit log of management actions.
        ListAudit = Get "/v1/audit" On(Manage, Namespace);
    }
    /// The routes of `token-issuer`.
    TokenIssuer(IssuerRoute) {
        MintToken = Post "/v1/tokens" AnyScope(Manage);
    }
    /// The routes of `authorizer`.
    Authorizer(AuthorizerRoute) {
        Authorize = Post "/v1/authorize" InBody;
    }
}

/// A route id of one function, for that function's router.
pub trait FunctionRoute: Copy + 'static {
    /// `Some` for the ids of this function.
    fn of(id: RouteId) -> Option<Self>;
}

impl FunctionRoute for ProxyRoute {
    fn of(id: RouteId) -> Option<Self> {
        match id {
            RouteId::KafkaProxy(r) => Some(r),
            _ => None,
        }
    }
}

impl FunctionRoute for IssuerRoute {
    fn of(id: RouteId) -> Option<Self> {
        match id {
            RouteId::TokenIssuer(r) => Some(r),
            _ => None,
        }
    }
}

impl FunctionRoute for AuthorizerRoute {
    fn of(id: RouteId) -> Option<Self> {
        match id {
            RouteId::Authorizer(r) => Some(r),
            _ => None,
        }
    }
}

/// A path parameter that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("partition must be an integer from 0 to 2147483647")]
    Partition,
    #[error("offset must be a non-negative integer")]
    Offset,
    /// A percent-decoded parameter is not UTF-8.
    #[error("{0} is not UTF-8 text once percent-decoded")]
    Encoding(&'static str),
}

/// A path's parameters as sent (percent-encoded), as the template names them; not yet
/// decoded or validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawParams<'a> {
    values: Vec<(&'static str, &'a str)>,
}

/// A path segment percent-decoded once, as UTF-8 (RFC 3986 §2.1; `+` is literal in a path).
fn decode_segment(segment: &str) -> Option<Cow<'_, str>> {
    percent_decode_str(segment).decode_utf8().ok()
}

impl RawParams<'_> {
    /// The value of parameter `name`, percent-decoded (`None` also when it is not UTF-8).
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| decode_segment(v))
    }

    /// Decodes and validates every parameter: each is percent-decoded once (UTF-8), names
    /// are checked by the rules of `names` (a publisher is also put in its canonical form,
    /// [`names::publisher`](crate::names::publisher)), numbers parsed as numbers.
    pub fn parse(&self) -> Result<Params, ParamError> {
        let mut p = Params::default();
        for (name, raw) in &self.values {
            let value = decode_segment(raw).ok_or(ParamError::Encoding(name))?;
            let value = value.as_ref();
            match *name {
                "hub" | "topic" => {
                    validate_hub(value)?;
                    p.hub = Some(value.to_owned());
                }
                "publisher" => p.publisher = Some(crate::names::publisher(value)?),
                "consumergroup" => {
                    validate_consumer_group(value)?;
                    p.consumer_group = Some(value.to_owned());
                }
                "partition" => p.partition = Some(parse_partition(value)?),
                "offset" => {
                    p.offset = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|o: &i64| *o >= 0)
                            .ok_or(ParamError::Offset)?,
                    );
                }
                // A template parameter this parser does not know is a bug the table test finds.
                _ => {}
            }
        }
        Ok(p)
    }
}

/// Parses a partition number (a path segment or query value).
pub fn parse_partition(s: &str) -> Result<i32, ParamError> {
    s.parse::<i32>()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or(ParamError::Partition)
}

/// A path's parameters, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Params {
    /// `{hub}` or `{topic}`.
    pub hub: Option<String>,
    /// `{publisher}`, in its canonical form ([`names::publisher`](crate::names::publisher)).
    pub publisher: Option<String>,
    pub consumer_group: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
}

/// A handler asked for a parameter its route's template does not have: a defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the route has no parameter '{0}'")]
pub struct MissingParam(pub &'static str);

impl Params {
    /// `{hub}` or `{topic}`.
    pub fn hub(&self) -> Result<&str, MissingParam> {
        self.hub.as_deref().ok_or(MissingParam("hub"))
    }

    /// `{publisher}`.
    pub fn publisher(&self) -> Result<&str, MissingParam> {
        self.publisher.as_deref().ok_or(MissingParam("publisher"))
    }

    /// `{consumergroup}`.
    pub fn consumer_group(&self) -> Result<&str, MissingParam> {
        self.consumer_group
            .as_deref()
            .ok_or(MissingParam("consumergroup"))
    }

    /// `{partition}`.
    pub fn partition(&self) -> Result<i32, MissingParam> {
        self.partition.ok_or(MissingParam("partition"))
    }

    /// `{offset}`.
    pub fn offset(&self) -> Result<i64, MissingParam> {
        self.offset.ok_or(MissingParam("offset"))
    }
}

/// What the table says of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The route, and the path's parameters.
    Found(&'static Route, RawParams<'a>),
    /// The path is a route's, the method is not: the methods that are, sorted.
    MethodNotAllowed(Vec<Method>),
    /// No route has this path.
    NotFound,
}

/// Where a path matches the table (whatever the method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch<'a> {
    /// The matched template (shared by all the routes serving this path).
    pub template: &'static str,
    segments: Vec<&'a str>,
}

impl<'a> PathMatch<'a> {
    /// The routes of this path.
    pub fn routes(&self) -> impl Iterator<Item = &'static Route> + '_ {
        ROUTES.iter().filter(|r| r.path == self.template)
    }

    /// Whether the path already has its literals in their canonical form (most requests):
    /// then [`canonical_path`](Self::canonical_path) is the path itself.
    pub fn is_canonical(&self) -> bool {
        self.template[1..]
            .split('/')
            .zip(&self.segments)
            .all(|(t, s)| is_parameter(t) || t == *s)
    }

    /// The path with literals in their canonical form and parameters as sent (still
    /// percent-encoded): what the routers match.
    pub fn canonical_path(&self) -> String {
        let mut out = String::with_capacity(self.template.len() + 16);
        for (t, s) in self.template[1..].split('/').zip(&self.segments) {
            out.push('/');
            out.push_str(if is_parameter(t) { s } else { t });
        }
        out
    }

    /// The parameters, as sent.
    pub fn params(&self) -> RawParams<'a> {
        let values = self.template[1..]
            .split('/')
            .zip(&self.segments)
            .filter_map(|(t, s)| {
                let name = t.strip_prefix('{')?.strip_suffix('}')?;
                Some((name, *s))
            })
            .collect();
        RawParams { values }
    }
}

fn is_parameter(template_segment: &str) -> bool {
    template_segment.starts_with('{')
}

/// Whether `segment` (as sent) is the literal `literal` of a template.
fn literal_matches(segment: &str, literal: &str, any_case: bool) -> bool {
    if segment.len() == literal.len() && !segment.contains('%') {
        return if any_case {
            segment.eq_ignore_ascii_case(literal)
        } else {
            segment == literal
        };
    }
    let decoded = percent_decode_str(segment).decode_utf8_lossy();
    if any_case {
        decoded.eq_ignore_ascii_case(literal)
    } else {
        decoded == literal
    }
}

/// One segment of a template.
#[derive(Debug, Clone, Copy)]
enum Segment {
    Literal(&'static str),
    Parameter,
}

/// A distinct template of the table, split once.
#[derive(Debug)]
struct Template {
    path: &'static str,
    any_case: bool,
    segments: Vec<Segment>,
}

/// The table prepared for matching: its distinct templates, split, and per position the
/// literals some template has there (a parameter never takes one of those).
#[derive(Debug)]
struct Matcher {
    templates: Vec<Template>,
    literals_at: Vec<Vec<(&'static str, bool)>>,
}

static MATCHER: std::sync::LazyLock<Matcher> = std::sync::LazyLock::new(|| {
    let mut templates: Vec<Template> = Vec::new();
    let mut literals_at: Vec<Vec<(&'static str, bool)>> = Vec::new();
    for route in ROUTES {
        if templates.iter().any(|t| t.path == route.path) {
            continue;
        }
        let any_case = route.keywords_any_case();
        let segments: Vec<Segment> = route
            .segments()
            .map(|t| {
                if is_parameter(t) {
                    Segment::Parameter
                } else {
                    Segment::Literal(t)
                }
            })
            .collect();
        for (i, seg) in segments.iter().enumerate() {
            if literals_at.len() <= i {
                literals_at.push(Vec::new());
            }
            if let Segment::Literal(l) = seg
                && !literals_at[i].contains(&(l, any_case))
            {
                literals_at[i].push((l, any_case));
            }
        }
        templates.push(Template {
            path: route.path,
            any_case,
            segments,
        });
    }
    Matcher {
        templates,
        literals_at,
    }
});

/// Whether a parameter at position `i` must give way: some template has a literal there
/// that `segment` is.
fn shadowed(i: usize, segment: &str) -> bool {
    MATCHER.literals_at.get(i).is_some_and(|literals| {
        literals
            .iter()
            .any(|(l, any_case)| literal_matches(segment, l, *any_case))
    })
}

/// Matches a path (without query string) against the table, whatever the method.
pub fn match_path(path: &str) -> Option<PathMatch<'_>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let template = MATCHER.templates.iter().find(|t| {
        t.segments.len() == segments.len()
            && t.segments
                .iter()
                .zip(&segments)
                .enumerate()
                .all(|(i, (seg, s))| match seg {
                    Segment::Literal(l) => literal_matches(s, l, t.any_case),
                    Segment::Parameter => !shadowed(i, s),
                })
    })?;
    Some(PathMatch {
        template: template.path,
        segments,
    })
}

/// What the table says of `method path` (path without query string).
pub fn lookup<'a>(method: &str, path: &'a str) -> Lookup<'a> {
    let Some(m) = match_path(path) else {
        return Lookup::NotFound;
    };
    // HEAD is GET without the body (RFC 9110 §9.3.2), as the routers serve it.
    let method = match method {
        "HEAD" => Some(Method::Get),
        m => Method::parse(m),
    };
    match m.routes().find(|r| Some(r.method) == method) {
        Some(route) => Lookup::Found(route, m.params()),
        None => {
            let mut allowed: Vec<Method> = m.routes().map(|r| r.method).collect();
            allowed.sort_unstable();
            Lookup::MethodNotAllowed(allowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: &str, path: &str) -> Option<(RouteId, Result<Params, ParamError>)> {
        match lookup(method, path) {
            Lookup::Found(r, raw) => Some((r.id, raw.parse())),
            _ => None,
        }
    }

    #[test]
    fn routes_ids_unique_and_named_once_ok() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in ROUTES.iter().enumerate() {
            assert_eq!(r.id.route(), r, "{:?}", r.id);
            assert!(names.insert(r.id.name()), "{} twice", r.id.name());
            assert!(
                ROUTES[..i]
                    .iter()
                    .all(|o| (o.method, o.path) != (r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            // Every parameter is one the parser knows.
            for p in r.parameters() {
                assert!(
                    [
                        "hub",
                        "topic",
                        "publisher",
                        "consumergroup",
                        "partition",
                        "offset"
                    ]
                    .contains(&p),
                    "{p}"
                );
            }
        }
    }

    #[test]
    fn lookup_table_ok() {
        use ProxyRoute as P;
        let cases = [
            ("GET", "/v1/status", RouteId::KafkaProxy(P::Status)),
            (
                "POST",
                "/hub/PUBLISHER/dev%2D1/Messages",
                RouteId::KafkaProxy(P::SendAsPublisherSingular),
            ),
            (
                "POST",
                "/hub/partitions/3/messages",
                RouteId::KafkaProxy(P::SendToPartition),
            ),
            (
                "DELETE",
                "/hub/RevokedPublishers/p",
                RouteId::KafkaProxy(P::ResumePublisher),
            ),
            (
                "POST",
                "/v1/tokens",
                RouteId::TokenIssuer(IssuerRoute::MintToken),
            ),
            (
                "POST",
                "/v1/authorize",
                RouteId::Authorizer(AuthorizerRoute::Authorize),
            ),
            (
                "GET",
                "/hub/ConsumerGroups/readers/Partitions/1/Messages",
                RouteId::KafkaProxy(P::ReadEvents),
            ),
            (
                "PUT",
                "/hub/consumergroups/readers/partitions/0/checkpoint",
                RouteId::KafkaProxy(P::PutCheckpoint),
            ),
            ("GET", "/openapi.json", RouteId::KafkaProxy(P::OpenApi)),
            ("POST", "/hub/%6Dessages", RouteId::KafkaProxy(P::SendToHub)),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                found(method, path).map(|f| f.0),
                Some(want),
                "{method} {path}"
            );
        }
        let (_, params) = found("POST", "/hub/PUBLISHER/dev%2D1/Messages").unwrap();
        let params = params.unwrap();
        assert_eq!(params.hub.as_deref(), Some("hub"));
        assert_eq!(params.publisher.as_deref(), Some("dev-1"));
    }

    #[test]
    fn lookup_no_route_fails() {
        for (method, path) in [
            ("POST", "/v1/messages"),
            ("GET", "/v1/status/"),
            ("GET", "/V1/status"),
            ("POST", "/hub/subscribers/x/messages"),
            ("GET", "relative"),
            ("GET", "//messages"),
            ("GET", "/hub/nothing"),
            ("PUT", "/v1/consumergroups/g"),
        ] {
            assert_eq!(lookup(method, path), Lookup::NotFound, "{method} {path}");
        }
        assert_eq!(
            lookup("DELETE", "/v1/topics/t"),
            Lookup::MethodNotAllowed(vec![Method::Put])
        );
        assert_eq!(
            lookup("PUT", "/hub/consumergroups/g/partitions/0/messages"),
            Lookup::MethodNotAllowed(vec![Method::Get])
        );
        assert_eq!(
            lookup("get", "/hub/consumergroups/g"),
            Lookup::MethodNotAllowed(vec![Method::Delete, Method::Get, Method::Put])
        );
    }

    #[test]
    fn lookup_bad_params_fail() {
        for (method, path) in [
            ("POST", "/hub/publishers/%FF/messages"),
            ("POST", "/hub/partitions/-1/messages"),
            ("POST", "/__internal/messages"),
            ("GET", "/v1/consumer/topics/t/partitions/0/offsets/x"),
            ("PUT", "/hub/consumergroups/a%20b"),
        ] {
            let (_, params) = found(method, path).unwrap();
            assert!(params.is_err(), "{method} {path}");
        }
    }

    #[test]
    fn canonical_path_keeps_params_ok() {
        assert!(
            match_path("/Hub/publishers/dev%2D1/messages")
                .unwrap()
                .is_canonical()
        );
        let m = match_path("/Hub/PUBLISHERS/dev%2D1/MESSAGES").unwrap();
        assert!(!m.is_canonical());
        assert_eq!(m.canonical_path(), "/Hub/publishers/dev%2D1/messages");
        assert_eq!(m.template, "/{hub}/publishers/{publisher}/messages");
    }

    /// `keyword` with each letter's case chosen by the bits of `mask`.
    fn cased(keyword: &str, mask: u64) -> String {
        keyword
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn lookup_consumer_group_paths_any_case_ok(
            hub in "[a-z][a-z0-9._-]{0,20}",
            group in "[A-Za-z0-9._-]{1,20}",
            partition in 0u32..100_000,
            leaf in proptest::sample::select(vec!["", "/messages", "/checkpoint"]),
            with_partition in proptest::bool::ANY,
            masks in proptest::array::uniform4(proptest::num::u64::ANY),
        ) {
            proptest::prop_assume!(hub != "v1" && group != "." && group != "..");
            let leaf = if with_partition { cased(leaf, masks[2]) } else { String::new() };
            let tail = if with_partition { format!("/{partition}{leaf}") } else { String::new() };
            let path = format!(
                "/{hub}/{}/{group}/{}{tail}",
                cased("consumergroups", masks[0]),
                cased("partitions", masks[1]),
            );
            let want: &[Method] = match leaf.to_ascii_lowercase().as_str() {
                "/checkpoint" => &[Method::Get, Method::Put],
                _ => &[Method::Get],
            };
            proptest::prop_assert_eq!(lookup("DELETE", &path), Lookup::MethodNotAllowed(want.to_vec()));
            for m in want {
                let Lookup::Found(route, raw) = lookup(m.as_str(), &path) else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!("{m} {path}")));
                };
                let params = raw.parse();
                proptest::prop_assert!(params.is_ok(), "{} {}", m, path);
                let params = params.unwrap_or_default();
                proptest::prop_assert_eq!(
                    route.resource(&params),
                    Some(Resource::consumer_group(&hub, &group)),
                    "{} {}", m, path
                );
            }
        }
    }
}
