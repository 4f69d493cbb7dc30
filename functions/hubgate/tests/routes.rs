//! The route table (`hubgate_server::routes`) against what is served, route by route, from
//! the table itself:
//!
//! - every route × every credential kind (SAS on the namespace, a hub, a publisher, a consumer
//!   group; bearer tokens by group; none; bad ones) × generated paths (odd names, keywords in
//!   other letter cases, percent-encoded segments, wrong methods): the authorizer and the
//!   serving function reach the same decision (allow, or the same status);
//! - every (method, path) the routers answer is a route of the table, with axum's `Allow`
//!   listing exactly the table's methods, and every route of the table is served.
//!
//! Kafka points at a closed port: whatever needs it answers 503, in both.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::sync::Arc;

use futures::StreamExt as _;
use http::HeaderMap;
use hubgate_server::routes::{Lookup, Method, Need, ProxyRoute, ROUTES, Route, RouteId, lookup};
use hubgate_server::{Clients, Config};
use hubgate_testkit::{FAR, Issuer, call, sas};

const G_SEND: &str = "aaaaaaaa-1111-2222-3333-444444444444";
const G_LISTEN: &str = "bbbbbbbb-1111-2222-3333-444444444444";
const G_MANAGE: &str = "cccccccc-1111-2222-3333-444444444444";

fn config(issuer: &Issuer) -> Config {
    let key = || {
        hubgate_server::sas::SasKey::generate()
            .unwrap()
            .expose()
            .to_owned()
    };
    let groups = format!(
        "[[oauth.groups]]\ngroup = '{G_SEND}'\nrights = ['Send']\nhub = 'hub'\n\
         [[oauth.groups]]\ngroup = '{G_LISTEN}'\nrights = ['Listen']\n\
         [[oauth.groups]]\ngroup = '{G_MANAGE}'\nrights = ['Manage']\nhub = 'hub'\n"
    );
    Config::from_toml(&format!(
        "namespace = 'ns.test'\n[authorizer]\nhttp_endpoint = true\n\
         [audit]\nkey = '{}'\n\
         [kafka]\nbootstrap_servers = ['127.0.0.1:1']\nrequest_timeout_ms = 20\n\
         [[rules]]\nname = 'send'\nrights = ['Send']\nprimary_key = '{}'\n\
         [[rules]]\nname = 'listen'\nrights = ['Listen']\nprimary_key = '{}'\n\
         [[rules]]\nname = 'manage'\nrights = ['Manage']\nprimary_key = '{}'\n{}",
        key(),
        key(),
        key(),
        key(),
        issuer.config_toml(&groups)
    ))
    .unwrap()
}

/// Every credential kind, by label.
fn credentials(c: &Config, issuer: &Issuer) -> Vec<(String, Option<String>)> {
    let mut out = vec![
        ("none".to_owned(), None),
        (
            "garbage".to_owned(),
            Some("SharedAccessSignature sr=x".to_owned()),
        ),
        (
            "expired".to_owned(),
            Some(sas(c, "manage", "", 1_000_000_000)),
        ),
    ];
    for (rule, scope) in [
        ("send", ""),
        ("listen", ""),
        ("manage", ""),
        ("send", "hub"),
        ("listen", "hub"),
        ("manage", "hub"),
        ("manage", "other"),
        ("send", "hub/publishers/dev-1"),
        ("listen", "hub/consumergroups/readers"),
        ("manage", "hub/consumergroups/readers"),
    ] {
        out.push((
            format!("sas {rule} @{scope}"),
            Some(sas(c, rule, scope, FAR)),
        ));
    }
    for (label, groups) in [
        ("send", vec![G_SEND]),
        ("listen", vec![G_LISTEN]),
        ("manage", vec![G_MANAGE]),
        ("none", vec![]),
    ] {
        out.push((
            format!("bearer {label}"),
            Some(format!("Bearer {}", issuer.token(&groups))),
        ));
    }
    out
}

/// `keyword` in other letter cases.
fn cases(keyword: &str) -> Vec<String> {
    let mixed: String = keyword
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    vec![keyword.to_ascii_uppercase(), mixed]
}

/// Concrete paths for a route: the plain sample, then one thing varied at a time.
fn paths(route: &Route) -> Vec<String> {
    let segments: Vec<&str> = route.path[1..].split('/').collect();
    let plain = |name: &str| -> String {
        match name {
            "hub" | "topic" => "hub".into(),
            "publisher" => "dev-1".into(),
            "consumergroup" => "readers".into(),
            _ => "0".into(),
        }
    };
    let variants = |name: &str| -> Vec<&'static str> {
        match name {
            "hub" | "topic" => vec!["Hub", "other", "h%75b", "__internal", "bad%20name", "%FF"],
            "publisher" => vec!["DEV-1", "dev%2D1", "dev-2", "a%2Fb", "%FF"],
            "consumergroup" => vec!["READERS", "$Default", "%24Default", "bad%20g"],
            "partition" => vec!["-1", "x", "2147483648", "7"],
            "offset" => vec!["-5", "1.0", "12"],
            _ => vec![],
        }
    };
    let build = |at: Option<(usize, String)>| -> String {
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if let Some((j, v)) = &at
                    && *j == i
                {
                    return format!("/{v}");
                }
                match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => format!("/{}", plain(name)),
                    None => format!("/{s}"),
                }
            })
            .collect()
    };
    let mut out = vec![build(None)];
    for (i, s) in segments.iter().enumerate() {
        match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => out.extend(
                variants(name)
                    .into_iter()
                    .map(|v| build(Some((i, v.into())))),
            ),
            None if route.path.starts_with("/{hub}/") => {
                out.extend(cases(s).into_iter().map(|v| build(Some((i, v)))));
                // A percent-encoded first letter.
                let encoded = format!("%{:02X}{}", s.as_bytes()[0], &s[1..]);
                out.push(build(Some((i, encoded))));
            }
            None => out.extend(cases(s).into_iter().map(|v| build(Some((i, v))))),
        }
    }
    out
}

/// A valid body for the route, so that a handler's own 400 would be a disagreement.
fn body(route: &Route) -> (&'static str, &'static str) {
    use ProxyRoute as P;
    const JSON: &str = "application/json";
    match route.id {
        RouteId::KafkaProxy(P::CreateTopic) => (JSON, "{}"),
        RouteId::KafkaProxy(P::Produce) => (JSON, r#"{"records":[{"value":"x"}]}"#),
        RouteId::KafkaProxy(P::PutCheckpoint) => (JSON, r#"{"offset":0}"#),
        RouteId::KafkaProxy(P::CreateConsumerGroup | P::RevokePublisher) => (JSON, ""),
        RouteId::KafkaProxy(P::SendToHub | P::SendToPartition)
        | RouteId::KafkaProxy(P::SendAsPublisher | P::SendAsPublisherSingular) => {
            ("text/plain", "event")
        }
        RouteId::TokenIssuer(_) => (JSON, r#"{"hub":"hub","publisher":"dev-1","ttl_secs":60}"#),
        RouteId::Authorizer(_) => (JSON, r#"{"method":"GET","path":"/v1/status"}"#),
        _ => (JSON, ""),
    }
}

struct Case {
    method: &'static str,
    path: String,
    credential: String,
    authorization: Option<String>,
    route: Option<&'static Route>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_authorizer_and_functions_decide_alike_ok() {
    let issuer = Issuer::start().await;
    let c = Arc::new(config(&issuer));
    let clients = Clients::load(&c).await.unwrap();
    let app = hubgate::app(Arc::clone(&c), &clients);
    let state = authorizer::AuthorizerState::new(&c, &clients);
    let creds = credentials(&c, &issuer);

    let mut cases = Vec::new();
    for route in ROUTES {
        for (i, path) in paths(route).into_iter().enumerate() {
            let mut methods = vec![route.method.as_str()];
            // On the plain path: a method no route serves, and HEAD for GET routes.
            if i == 0 {
                methods.push("PATCH");
                if route.method == Method::Get {
                    methods.push("HEAD");
                }
            }
            for method in methods {
                for (label, auth) in &creds {
                    cases.push(Case {
                        method,
                        path: path.clone(),
                        credential: label.clone(),
                        authorization: auth.clone(),
                        route: match lookup(method, &path) {
                            Lookup::Found(r, _) => Some(r),
                            _ => None,
                        },
                    });
                }
            }
        }
    }
    for path in [
        "/hub/nothing",
        "/v1/messages",
        "/v1/status/",
        "//messages",
        "/hub",
    ] {
        for (label, auth) in &creds {
            cases.push(Case {
                method: "GET",
                path: path.into(),
                credential: label.clone(),
                authorization: auth.clone(),
                route: None,
            });
        }
    }
    let total = cases.len();
    let mut allowed = 0usize;
    let mut failures = Vec::new();
    let results = futures::stream::iter(cases)
        .map(|case| {
            let (app, state) = (&app, &state);
            async move {
                let mut headers = HeaderMap::new();
                if let Some(a) = &case.authorization {
                    headers.insert("authorization", a.parse().unwrap());
                }
                let decision = authorizer::decide(state, &headers, case.method, &case.path).await;
                let (content_type, body) = case.route.map_or(("application/json", ""), body);
                let answer = call(
                    app,
                    case.method,
                    &case.path,
                    case.authorization.as_deref(),
                    content_type,
                    body,
                )
                .await;
                (case, decision, answer)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    for (case, decision, answer) in results {
        let status = answer.status.as_u16();
        let what = format!(
            "{} {} with {}: authorizer {:?}, function {} {}",
            case.method, case.path, case.credential, decision.context, status, answer.json
        );
        if decision.is_authorized {
            allowed += 1;
            // The issuer narrows to the hub its body names, which no authorizer sees.
            let narrowed = case
                .route
                .is_some_and(|r| matches!(r.need, Need::AnyScope(_)))
                && case
                    .route
                    .is_some_and(|r| matches!(r.id, RouteId::TokenIssuer(_)))
                && [401, 403].contains(&status);
            // Bodies are valid, so a 40001 would be a path the authorizer let through; other
            // 400s are the domain's (`$Default` cannot be deleted: 40003).
            let refused = [401, 403, 405].contains(&status)
                || answer.json["error_code"] == 40001
                || answer.json["error_code"] == 40404;
            if refused && !narrowed {
                failures.push(what);
            }
        } else if decision.context["status"] != status.to_string() {
            failures.push(what);
        }
    }
    println!("{total} requests, {allowed} allowed by both");
    assert!(
        failures.is_empty(),
        "{} of {total} disagree:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
    );
    assert!(allowed > 100, "only {allowed} requests were allowed");
}

/// Every (method, path) the routers answer is in the table: for paths made from every
/// template (and from literals put where another template has a parameter, and one segment
/// more or less), each method's answer is the table's: 404 for no route, 405 with exactly the
/// table's methods in `Allow`, and otherwise served (not 404/405).
#[tokio::test]
async fn routes_routers_serve_exactly_the_table_ok() {
    let issuer = Issuer::start().await;
    let c = Arc::new(config(&issuer));
    let clients = Clients::load(&c).await.unwrap();
    let app = hubgate::app(Arc::clone(&c), &clients);
    let manage = sas(&c, "manage", "", FAR);

    let literals: Vec<&str> = ROUTES
        .iter()
        .flat_map(|r| r.path[1..].split('/'))
        .filter(|s| !s.starts_with('{'))
        .collect();
    let mut paths = std::collections::BTreeSet::new();
    for route in ROUTES {
        let sample: Vec<String> = route.path[1..]
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "0".to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect();
        paths.insert(format!("/{}", sample.join("/")));
        paths.insert(format!("/{}/extra", sample.join("/")));
        paths.insert(format!("/{}", sample[..sample.len() - 1].join("/")));
        for i in 0..sample.len() {
            for l in &literals {
                let mut p = sample.clone();
                p[i] = (*l).to_owned();
                paths.insert(format!("/{}", p.join("/")));
            }
        }
    }
    let mut served = std::collections::BTreeSet::new();
    let mut checked = 0;
    for path in &paths {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let answer = call(&app, method, path, Some(&manage), "application/json", "{}").await;
            let status = answer.status.as_u16();
            checked += 1;
            match lookup(method, path) {
                Lookup::NotFound => {
                    assert_eq!(status, 404, "{method} {path}: {}", answer.json);
                    assert_eq!(answer.json["error_code"], 40404, "{method} {path}");
                }
                Lookup::MethodNotAllowed(allowed) => {
                    assert_eq!(status, 405, "{method} {path}: {}", answer.json);
                    let mut want: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                    if allowed.contains(&Method::Get) {
                        want.push("HEAD");
                    }
                    want.sort_unstable();
                    let mut got: Vec<&str> = answer.headers["allow"]
                        .to_str()
                        .unwrap()
                        .split(',')
                        .map(str::trim)
                        .collect();
                    got.sort_unstable();
                    assert_eq!(got, want, "{method} {path}");
                }
                Lookup::Found(route, _) => {
                    assert!(
                        answer.json["error_code"] != 40404 && status != 405,
                        "{method} {path} is {:?} but got {status} {}",
                        route.id,
                        answer.json
                    );
                    served.insert(route.id);
                }
            }
        }
    }
    let all: std::collections::BTreeSet<RouteId> = ROUTES.iter().map(|r| r.id).collect();
    assert_eq!(served, all, "routes of the table that were never served");
    println!("{checked} requests over {} paths", paths.len());
}

#[tokio::test]
async fn routes_openapi_document_lists_every_route_ok() {
    let issuer = Issuer::start().await;
    let c = Arc::new(config(&issuer));
    let clients = Clients::load(&c).await.unwrap();
    let app = hubgate::app(Arc::clone(&c), &clients);
    // No credential: the description is public.
    let answer = call(&app, "GET", "/openapi.json", None, "application/json", "").await;
    assert_eq!(answer.status, 200);
    let doc = answer.json;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut described = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let function = op["x-hubgate-function"].as_str().unwrap().to_owned();
            described.insert((method.to_ascii_uppercase(), path.clone(), function));
        }
    }
    let routed: std::collections::BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.as_str().to_owned(),
                r.path.to_owned(),
                r.function().name().to_owned(),
            )
        })
        .collect();
    assert_eq!(described, routed);
}
