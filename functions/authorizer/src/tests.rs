//! Decisions through `POST /v1/authorize` (oneshot) and through real API Gateway v2
//! authorizer event fixtures, with the exact response JSON. Kafka points at a closed port:
//! hub-level decisions need no Kafka; publisher decisions consult the revocation list and
//! must deny (fail closed) without it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use hubgate_server::runtime::{BoxError, dispatch_lambda_event};
use hubgate_server::{Clients, Config, Gate};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{AuthorizerState, app, handle_event};

fn config() -> Config {
    hubgate_testkit::offline_config("", 300, "")
}

/// The authorizer with `POST /v1/authorize` on (`authorizer.http_endpoint`).
fn state() -> Arc<AuthorizerState> {
    state_with(true)
}

fn state_with(http_endpoint: bool) -> Arc<AuthorizerState> {
    let c = config();
    let clients = Clients::with_gate(&c, Arc::new(Gate::from_config(&c))).unwrap();
    Arc::new(AuthorizerState {
        clients,
        http_endpoint,
        cors: None,
    })
}

/// A Send token for `path`.
fn token(path: &str) -> String {
    hubgate_testkit::sas(&config(), "send", path, hubgate_testkit::FAR)
}

fn fixture() -> Value {
    let path = format!(
        "{}/../../tests/fixtures/aws-lambda-events/example-apigw-v2-custom-authorizer-v2-request.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture, as API Gateway would send it for `method path` with `authorization`.
fn event(method: &str, path: &str, authorization: Option<&str>) -> Value {
    let mut e = fixture();
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    if let Some(a) = authorization {
        e["headers"]["authorization"] = json!(a);
    }
    e
}

async fn lambda(s: &Arc<AuthorizerState>, payload: Value) -> Value {
    let on_event = |payload: Value| {
        let s = Arc::clone(s);
        async move { handle_event(&s, payload).await.map_err(BoxError::from) }
    };
    dispatch_lambda_event(
        app(Arc::clone(s)),
        &on_event,
        payload,
        lambda_http::Context::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn authorizer_event_hub_send_allowed_exact_json_ok() {
    let out = lambda(
        &state(),
        event("POST", "/hub/messages", Some(&token("hub"))),
    )
    .await;
    assert_eq!(
        out,
        json!({"isAuthorized": true, "context": {
            "principalKind": "sas", "principal": "sas:send@hub", "rights": "Send", "publisher": ""}})
    );
}

#[tokio::test]
async fn authorizer_event_denials_exact_json_fails() {
    let s = state();
    let cases = [
        (
            event("POST", "/hub/messages", None),
            "MissingToken: send 'Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…'",
        ),
        (
            event("POST", "/other/messages", Some(&token("hub"))),
            "InvalidAudience: the token does not cover 'other'",
        ),
        (
            event("PUT", "/v1/topics/hub", Some(&token("hub"))),
            "Unauthorized access. 'Manage' claim(s) are required",
        ),
        (
            event("GET", "/my/path", Some(&token("hub"))),
            "no such route",
        ),
        (
            event(
                "POST",
                "/hub/publishers/dev-2/messages",
                Some(&token("hub/publishers/dev-1")),
            ),
            "InvalidAudience: the token does not cover 'hub/publishers/dev-2'",
        ),
        (
            event("POST", "/hub/messages", Some("Bearer eyJ.x.y")),
            "UnsupportedScheme: bearer tokens are not configured on this gateway",
        ),
    ];
    for (e, reason) in cases {
        let status = if reason == "no such route" {
            "404"
        } else {
            "401"
        };
        assert_eq!(
            lambda(&s, e).await,
            json!({"isAuthorized": false, "context": {"reason": reason, "status": status}})
        );
    }
}

/// The table's names are checked before an allow: the function would refuse these with 400
/// (before the route table, the authorizer allowed them).
#[tokio::test]
async fn authorizer_bad_names_deny_with_400_fails() {
    let s = state();
    for path in [
        "/hub/publishers/a%2Fb/messages",
        "/__internal/messages",
        "/hub/partitions/-1/messages",
    ] {
        let out = lambda(&s, event("POST", path, Some(&token("")))).await;
        assert_eq!(out["isAuthorized"], false, "{path}: {out}");
        assert_eq!(out["context"]["status"], "400", "{path}: {out}");
    }
    let out = lambda(&s, event("POST", "/v1/messages", Some(&token("")))).await;
    assert_eq!(out["context"]["status"], "404", "{out}");
}

#[tokio::test]
async fn authorizer_publisher_without_revocation_list_denies_fails() {
    let out = lambda(
        &state(),
        event(
            "POST",
            "/hub/publishers/dev-1/messages",
            Some(&token("hub/publishers/dev-1")),
        ),
    )
    .await;
    assert_eq!(out["isAuthorized"], false, "fail closed: {out}");
}

#[tokio::test]
async fn authorize_route_same_decision_ok() {
    let body = json!({"authorization": token("hub"), "method": "POST", "path": "/hub/partitions/0/messages"});
    let req = Request::post("/v1/authorize")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(state()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["isAuthorized"], true);
    assert_eq!(v["context"]["rights"], "Send");
}

#[tokio::test]
async fn authorizer_openapi_without_credential_ok() {
    let out = lambda(&state(), event("GET", "/openapi.json", None)).await;
    assert_eq!(out["isAuthorized"], true, "{out}");
    assert_eq!(out["context"]["principalKind"], "anonymous");
    // A consumer-group read still needs its credential.
    let out = lambda(
        &state(),
        event("GET", "/hub/consumergroups/g/partitions/0/messages", None),
    )
    .await;
    assert_eq!(out["isAuthorized"], false, "{out}");
}

#[tokio::test]
async fn authorize_route_off_by_default_fails() {
    let c = config();
    assert!(!c.authorizer.http_endpoint, "off unless configured");
    let body = json!({"authorization": token("hub"), "method": "POST", "path": "/hub/messages"});
    let req = Request::post("/v1/authorize")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(state_with(false)).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("authorizer.http_endpoint"),
        "{v}"
    );
    assert!(v.get("context").is_none(), "no decision: {v}");
    // API Gateway's authorizer events do not need the endpoint.
    let out = lambda(
        &state_with(false),
        event("POST", "/hub/messages", Some(&token("hub"))),
    )
    .await;
    assert_eq!(out["isAuthorized"], true, "{out}");
}

#[tokio::test]
async fn authorize_route_array_body_fails() {
    // serde's array form of the struct's fields is not the documented object.
    let req = Request::post("/v1/authorize")
        .header("content-type", "application/json")
        .body(Body::from(r#"[null, "GET", "/openapi.json"]"#))
        .unwrap();
    let resp = app(state()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 400);
}
