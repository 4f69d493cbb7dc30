//! The authorizer's requirement table (`hubgate_shared::routes`) and the routers agree: for a
//! sample of every route, a credential that meets the table's requirement gets past the
//! router's own check (whatever follows: Kafka is down here, so 4xx/503), and a credential
//! that does not is refused by both. Kafka points at a closed port.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use hubgate_shared::routes::{Function, ROUTES, Requirement, requirement};
use hubgate_shared::sas::{SasKey, mint};
use hubgate_shared::{Clients, Config, Gate, Right};
use tower::ServiceExt;

/// A sample path for a route template: `{topic}`/`{hub}` is `hub`, numbers are 0, a
/// publisher is `dev-1`.
fn sample(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{topic}" | "{hub}" => "hub",
            "{partition}" | "{offset}" => "0",
            "{publisher}" => "dev-1",
            "{consumergroup}" => "readers",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One sample request per route of the table, and keywords in other letter cases (which the
/// routers and the requirement table accept, as Event Hubs does).
fn samples() -> Vec<(&'static str, String)> {
    let mut samples: Vec<_> = ROUTES
        .iter()
        // The authorizer's own endpoint checks the credential in its body, not the caller's.
        .filter(|r| r.function != Function::Authorizer)
        .map(|r| (r.method, sample(r.path)))
        .collect();
    samples.push(("POST", "/hub/Publisher/dev-1/Messages".into()));
    samples.push(("DELETE", "/hub/RevokedPublishers/dev-1".into()));
    samples.push((
        "GET",
        "/hub/ConsumerGroups/readers/Partitions/0/Messages".into(),
    ));
    samples
}

fn config() -> Config {
    let key = |_| SasKey::generate().unwrap().expose().to_owned();
    let rules: String = ["send", "listen", "manage"]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let right = ["Send", "Listen", "Manage"][i];
            format!(
                "[[rules]]\nname = '{r}'\nrights = ['{right}']\nprimary_key = '{}'\n",
                key(i)
            )
        })
        .collect();
    Config::from_toml(&format!(
        "namespace = 'ns.test'\n[kafka]\nbootstrap_servers = ['127.0.0.1:1']\nrequest_timeout_ms = 200\n{rules}"
    ))
    .unwrap()
}

fn token(c: &Config, right: Right, scope: &str) -> String {
    let rule = match right {
        Right::Send => "send",
        Right::Listen => "listen",
        Right::Manage => "manage",
    };
    let key = &c.rule(rule).unwrap().primary_key;
    mint(
        &format!("https://ns.test/{scope}"),
        rule,
        key,
        4_000_000_000,
    )
}

/// A token meeting `req` exactly, and one that does not (another right, or another scope;
/// `None` for a public route).
fn tokens(c: &Config, req: &Requirement) -> (String, Option<String>) {
    let (good, bad) = match req {
        Requirement::Public => return (String::new(), None),
        Requirement::Authenticated => (token(c, Right::Listen, ""), String::new()),
        Requirement::AnyScope(r) => {
            let other = if *r == Right::Listen {
                Right::Send
            } else {
                Right::Listen
            };
            (token(c, *r, "some-hub"), token(c, other, ""))
        }
        Requirement::Right(r, resource) => {
            let other = if *r == Right::Send {
                Right::Listen
            } else {
                Right::Send
            };
            let scope = resource.segments().join("/");
            (token(c, *r, &scope), token(c, other, &scope))
        }
    };
    (good, Some(bad))
}

async fn status(app: &axum::Router, method: &str, path: &str, auth: &str) -> u16 {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if !auth.is_empty() {
        req = req.header("authorization", auth);
    }
    let body = r#"{"hub":"hub","consumer_group":"g","ttl_secs":60,"records":[{"value":"x"}]}"#;
    app.clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn routes_table_matches_routers_ok() {
    let c = Arc::new(config());
    let clients = Clients::with_gate(&c, Arc::new(Gate::from_config(&c))).unwrap();
    let app = hubgate::app(Arc::clone(&c), &clients);
    for (method, path) in samples() {
        let path = path.as_str();
        let req = requirement(method, path)
            .unwrap_or_else(|| panic!("no requirement for {method} {path}"));
        let (good, bad) = tokens(&c, &req);
        let with_good = status(&app, method, path, &good).await;
        assert!(
            ![401, 403, 404, 405].contains(&with_good)
                || (with_good == 404 && path.contains("revokedpublishers/dev-1")),
            "{method} {path}: a credential meeting {req:?} got {with_good}"
        );
        let Some(bad) = bad else { continue };
        let with_bad = status(&app, method, path, &bad).await;
        assert!(
            [401, 403].contains(&with_bad),
            "{method} {path}: a credential not meeting {req:?} got {with_bad}"
        );
    }
}

#[test]
fn routes_authorizer_endpoint_has_no_requirement_ok() {
    for r in ROUTES.iter().filter(|r| r.function == Function::Authorizer) {
        assert_eq!(requirement(r.method, &sample(r.path)), None, "{r:?}");
    }
}

#[tokio::test]
async fn routes_openapi_document_lists_every_route_ok() {
    let c = Arc::new(config());
    let clients = Clients::with_gate(&c, Arc::new(Gate::from_config(&c))).unwrap();
    let app = hubgate::app(Arc::clone(&c), &clients);
    // No credential: the description is public.
    let response = app
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
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
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.name().to_owned(),
            )
        })
        .collect();
    assert_eq!(described, routed);
}
