//! The authorizer's requirement table (`hubgate_shared::routes`) and the routers agree: for a
//! sample of every route, a credential that meets the table's requirement gets past the
//! router's own check (whatever follows: Kafka is down here, so 4xx/503), and a credential
//! that does not is refused by both. Kafka points at a closed port.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use hubgate_shared::routes::{Requirement, requirement};
use hubgate_shared::sas::{SasKey, mint};
use hubgate_shared::{Clients, Config, Gate, Right};
use tower::ServiceExt;

/// One sample request per route of the three routers (method, path).
const ROUTES: [(&str, &str); 16] = [
    ("GET", "/v1/status"),
    ("GET", "/v1/metadata/brokers"),
    ("GET", "/v1/metadata/topics"),
    ("GET", "/v1/metadata/topics/hub/partitions"),
    ("GET", "/v1/metadata/topics/hub/partitions/0"),
    ("PUT", "/v1/topics/hub"),
    ("POST", "/v1/producer/topics/hub"),
    ("GET", "/v1/consumer/topics/hub/partitions/0/offsets/0"),
    ("POST", "/v1/tokens"),
    ("POST", "/hub/messages"),
    ("POST", "/hub/partitions/0/messages"),
    ("POST", "/hub/publishers/dev-1/messages"),
    ("POST", "/hub/Publisher/dev-1/Messages"),
    ("PUT", "/hub/revokedpublishers/dev-1"),
    ("DELETE", "/hub/RevokedPublishers/dev-1"),
    ("GET", "/hub/revokedpublishers"),
];

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

/// A token meeting `req` exactly, and one that does not (another right, or another scope).
fn tokens(c: &Config, req: &Requirement) -> (String, String) {
    match req {
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
    }
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
    let clients = Clients::with_gate(&c, Arc::new(Gate::from_config(&c)));
    let app = hubgate::app(Arc::clone(&c), &clients);
    for (method, path) in ROUTES {
        let req = requirement(method, path)
            .unwrap_or_else(|| panic!("no requirement for {method} {path}"));
        let (good, bad) = tokens(&c, &req);
        let with_good = status(&app, method, path, &good).await;
        assert!(
            ![401, 403, 404, 405].contains(&with_good)
                || (with_good == 404 && path.contains("revokedpublishers/dev-1")),
            "{method} {path}: a credential meeting {req:?} got {with_good}"
        );
        let with_bad = status(&app, method, path, &bad).await;
        assert!(
            [401, 403].contains(&with_bad),
            "{method} {path}: a credential not meeting {req:?} got {with_bad}"
        );
    }
}
