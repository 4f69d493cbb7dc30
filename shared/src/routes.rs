//! What each route of hubgate's HTTP API requires, as a table: the authorizer function
//! decides from it before a request reaches a function. The functions check the same rights
//! themselves (defence in depth); `functions/hubgate/tests/routes.rs` keeps this table and
//! the routers in step.

use percent_encoding::percent_decode_str;

use crate::authz::{AuthError, Principal, Resource, Right, authorize};

/// What a route needs from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No credential (`GET /openapi.json`, the API description).
    Public,
    /// Any valid credential (`GET /v1/status`).
    Authenticated,
    /// `Right` on that resource.
    Right(Right, Resource),
    /// `Right` somewhere: the route narrows by what it finds (`GET /v1/metadata/topics`
    /// lists only the topics the caller may Listen to; `POST /v1/tokens` names its hub in the
    /// body, which an authorizer does not see).
    AnyScope(Right),
}

impl Requirement {
    /// The resource whose publisher (if any) must not be revoked.
    pub fn resource(&self) -> Option<&Resource> {
        match self {
            Self::Right(_, r) => Some(r),
            _ => None,
        }
    }

    /// Whether `principal` meets the requirement.
    pub fn check(&self, principal: &Principal) -> Result<(), AuthError> {
        match self {
            Self::Public | Self::Authenticated => Ok(()),
            Self::Right(right, resource) => authorize(principal, *right, resource),
            Self::AnyScope(right) if principal.rights().grants(*right) => Ok(()),
            // As in `authorize`: a SAS token lacking the right is a credential problem (401),
            // a valid bearer token whose groups lack it is a refusal (403).
            Self::AnyScope(right) => Err(match principal {
                Principal::Sas { .. } => AuthError::MissingRight(*right),
                _ => AuthError::NotPermitted(*right, "any hub".into()),
            }),
        }
    }
}

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

/// One route: method, path template (`{name}` stands for one path segment) and function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
}

const fn route(method: &'static str, path: &'static str, function: Function) -> Route {
    Route {
        method,
        path,
        function,
    }
}

/// Every route of the three routers. The routers match Event Hubs keywords (`messages`,
/// `publishers`, …) in any letter case; these templates write them in lower case.
/// `functions/hubgate/tests/routes.rs` checks the routers and [`requirement`] against this
/// list, `functions/hubgate/tests/deploy.rs` the deploy descriptions (`infra/aws`,
/// `functions/azure`).
pub const ROUTES: [Route; 27] = {
    use Function::{Authorizer, KafkaProxy, TokenIssuer};
    [
        route("GET", "/v1/status", KafkaProxy),
        route("GET", "/v1/metadata/brokers", KafkaProxy),
        route("GET", "/v1/metadata/topics", KafkaProxy),
        route("GET", "/v1/metadata/topics/{topic}/partitions", KafkaProxy),
        route(
            "GET",
            "/v1/metadata/topics/{topic}/partitions/{partition}",
            KafkaProxy,
        ),
        route("PUT", "/v1/topics/{topic}", KafkaProxy),
        route("POST", "/v1/producer/topics/{topic}", KafkaProxy),
        route(
            "GET",
            "/v1/consumer/topics/{topic}/partitions/{partition}/offsets/{offset}",
            KafkaProxy,
        ),
        route("POST", "/v1/tokens", TokenIssuer),
        route("POST", "/v1/authorize", Authorizer),
        route("POST", "/{hub}/messages", KafkaProxy),
        route("POST", "/{hub}/partitions/{partition}/messages", KafkaProxy),
        route("POST", "/{hub}/publishers/{publisher}/messages", KafkaProxy),
        route("POST", "/{hub}/publisher/{publisher}/messages", KafkaProxy),
        route("PUT", "/{hub}/revokedpublishers/{publisher}", KafkaProxy),
        route("DELETE", "/{hub}/revokedpublishers/{publisher}", KafkaProxy),
        route("GET", "/{hub}/revokedpublishers", KafkaProxy),
        route("GET", "/{hub}/consumergroups", KafkaProxy),
        route("PUT", "/{hub}/consumergroups/{consumergroup}", KafkaProxy),
        route("GET", "/{hub}/consumergroups/{consumergroup}", KafkaProxy),
        route(
            "DELETE",
            "/{hub}/consumergroups/{consumergroup}",
            KafkaProxy,
        ),
        route(
            "GET",
            "/{hub}/consumergroups/{consumergroup}/partitions",
            KafkaProxy,
        ),
        route(
            "GET",
            "/{hub}/consumergroups/{consumergroup}/partitions/{partition}",
            KafkaProxy,
        ),
        route(
            "GET",
            "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/messages",
            KafkaProxy,
        ),
        route(
            "GET",
            "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/checkpoint",
            KafkaProxy,
        ),
        route(
            "PUT",
            "/{hub}/consumergroups/{consumergroup}/partitions/{partition}/checkpoint",
            KafkaProxy,
        ),
        route("GET", "/openapi.json", KafkaProxy),
    ]
};

/// The methods [`ROUTES`] serve at `path` (keywords in any letter case, percent-encoding
/// decoded, as the routers and [`requirement`] read them), for `Allow`.
pub fn methods_for(path: &str) -> Vec<&'static str> {
    let bare = path.split('?').next().unwrap_or_default();
    let mut methods: Vec<&'static str> = ["DELETE", "GET", "POST", "PUT"]
        .into_iter()
        .filter(|m| requirement(m, bare).is_some())
        .collect();
    // The authorizer's own endpoint has no requirement: it judges the credential in its body.
    methods.extend(
        ROUTES
            .iter()
            .filter(|r| r.function == Function::Authorizer && r.path == bare)
            .map(|r| r.method),
    );
    methods.sort_unstable();
    methods.dedup();
    methods
}

fn is(segment: &str, keyword: &str) -> bool {
    segment.eq_ignore_ascii_case(keyword)
}

/// The requirement of `method path` (path without query string), or `None` for a request
/// no route serves.
pub fn requirement(method: &str, path: &str) -> Option<Requirement> {
    use Requirement::{AnyScope, Authenticated, Public, Right as R};
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect::<Option<_>>()?;
    if segments.iter().any(String::is_empty) {
        return None;
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = method.to_ascii_uppercase();
    let hub = Resource::hub;
    let cg = Resource::consumer_group;
    let groups = |kw: &str| is(kw, crate::authz::CONSUMER_GROUPS);
    Some(match (m.as_str(), s.as_slice()) {
        ("GET", ["openapi.json"]) => Public,
        ("GET", ["v1", "status"]) => Authenticated,
        ("GET", ["v1", "metadata", "brokers"]) => R(Right::Listen, Resource::namespace()),
        ("GET", ["v1", "metadata", "topics"]) => AnyScope(Right::Listen),
        (
            "GET",
            ["v1", "metadata", "topics", t, "partitions"]
            | ["v1", "metadata", "topics", t, "partitions", _],
        ) => R(Right::Listen, hub(t)),
        ("PUT", ["v1", "topics", t]) => R(Right::Manage, hub(t)),
        ("POST", ["v1", "producer", "topics", t]) => R(Right::Send, hub(t)),
        ("GET", ["v1", "consumer", "topics", t, "partitions", _, "offsets", _]) => {
            R(Right::Listen, hub(t))
        }
        ("POST", ["v1", "tokens"]) => AnyScope(Right::Manage),
        (_, ["v1", ..]) => return None,
        ("POST", [h, kw]) if is(kw, "messages") => R(Right::Send, hub(h)),
        ("GET", [h, kw]) if is(kw, "revokedpublishers") => R(Right::Manage, hub(h)),
        ("PUT" | "DELETE", [h, kw, _]) if is(kw, "revokedpublishers") => R(Right::Manage, hub(h)),
        ("POST", [h, kw, p, tail])
            if is(tail, "messages") && (is(kw, "publishers") || is(kw, "publisher")) =>
        {
            R(Right::Send, Resource::publisher(h, p))
        }
        ("POST", [h, kw, _, tail]) if is(tail, "messages") && is(kw, "partitions") => {
            R(Right::Send, hub(h))
        }
        ("GET", [h, kw]) if groups(kw) => R(Right::Manage, hub(h)),
        ("PUT" | "GET" | "DELETE", [h, kw, _]) if groups(kw) => R(Right::Manage, hub(h)),
        ("GET", [h, kw, g, p] | [h, kw, g, p, _]) if groups(kw) && is(p, "partitions") => {
            R(Right::Listen, cg(h, g))
        }
        ("GET", [h, kw, g, p, _, leaf])
            if groups(kw)
                && is(p, "partitions")
                && (is(leaf, "messages") || is(leaf, "checkpoint")) =>
        {
            R(Right::Listen, cg(h, g))
        }
        ("PUT", [h, kw, g, p, _, leaf])
            if groups(kw) && is(p, "partitions") && is(leaf, "checkpoint") =>
        {
            R(Right::Listen, cg(h, g))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_for_path_ok() {
        assert_eq!(
            methods_for("/hub/ConsumerGroups/g/partitions/0/checkpoint"),
            ["GET", "PUT"]
        );
        assert_eq!(
            methods_for("/hub/consumergroups/g"),
            ["DELETE", "GET", "PUT"]
        );
        assert_eq!(methods_for("/hub/messages"), ["POST"]);
        assert_eq!(methods_for("/v1/authorize"), ["POST"]);
        assert!(methods_for("/hub/nothing").is_empty());
        assert_eq!(methods_for("/hub/%6Dessages"), ["POST"]);
        assert!(methods_for("/v1/messages").is_empty());
    }

    #[test]
    fn requirement_table_ok() {
        let cases = [
            ("GET", "/v1/status", Some(Requirement::Authenticated)),
            (
                "get",
                "/v1/metadata/brokers",
                Some(Requirement::Right(Right::Listen, Resource::namespace())),
            ),
            (
                "POST",
                "/v1/producer/topics/t?x=1",
                Some(Requirement::Right(Right::Send, Resource::hub("t"))),
            ),
            (
                "POST",
                "/hub/PUBLISHER/dev%2D1/Messages",
                Some(Requirement::Right(
                    Right::Send,
                    Resource::publisher("hub", "dev-1"),
                )),
            ),
            (
                "POST",
                "/hub/partitions/3/messages",
                Some(Requirement::Right(Right::Send, Resource::hub("hub"))),
            ),
            (
                "DELETE",
                "/hub/RevokedPublishers/p",
                Some(Requirement::Right(Right::Manage, Resource::hub("hub"))),
            ),
            (
                "POST",
                "/v1/tokens",
                Some(Requirement::AnyScope(Right::Manage)),
            ),
            (
                "GET",
                "/hub/ConsumerGroups/readers/Partitions/1/Messages",
                Some(Requirement::Right(
                    Right::Listen,
                    Resource::consumer_group("hub", "readers"),
                )),
            ),
            (
                "PUT",
                "/hub/consumergroups/readers",
                Some(Requirement::Right(Right::Manage, Resource::hub("hub"))),
            ),
            (
                "PUT",
                "/hub/consumergroups/readers/partitions/0/checkpoint",
                Some(Requirement::Right(
                    Right::Listen,
                    Resource::consumer_group("hub", "readers"),
                )),
            ),
            ("GET", "/openapi.json", Some(Requirement::Public)),
            ("PUT", "/hub/consumergroups/g/partitions/0/messages", None),
            ("POST", "/v1/messages", None),
            ("GET", "/v1/status/", None),
            ("DELETE", "/v1/topics/t", None),
            ("POST", "/hub/subscribers/x/messages", None),
            ("GET", "relative", None),
            ("POST", "/hub/publishers/%FF/messages", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(requirement(method, path), want, "{method} {path}");
        }
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
        fn requirement_consumer_group_paths_any_case_ok(
            hub in "[a-z][a-z0-9._-]{0,20}",
            group in "[A-Za-z0-9._-]{1,20}",
            partition in 0u32..100_000,
            leaf in proptest::sample::select(vec!["", "/messages", "/checkpoint"]),
            with_partition in proptest::bool::ANY,
            masks in proptest::array::uniform4(proptest::num::u64::ANY),
        ) {
            proptest::prop_assume!(hub != "v1");
            let leaf = if with_partition { cased(leaf, masks[2]) } else { String::new() };
            let tail = if with_partition { format!("/{partition}{leaf}") } else { String::new() };
            let path = format!(
                "/{hub}/{}/{group}/{}{tail}",
                cased("consumergroups", masks[0]),
                cased("partitions", masks[1]),
            );
            let methods = methods_for(&path);
            let want: &[&str] = match leaf.to_ascii_lowercase().as_str() {
                "/checkpoint" => &["GET", "PUT"],
                _ => &["GET"],
            };
            proptest::prop_assert_eq!(&methods, want, "{}", path);
            for m in methods {
                proptest::prop_assert_eq!(
                    requirement(m, &path),
                    Some(Requirement::Right(Right::Listen, Resource::consumer_group(&hub, &group))),
                    "{} {}", m, path
                );
            }
            proptest::prop_assert_eq!(requirement("DELETE", &path), None);
        }
    }
}
