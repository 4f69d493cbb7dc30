//! Router tests through `oneshot`, and Lambda event tests with real `aws_lambda_events`
//! fixtures. Kafka points at a closed port: consumer-group and hub tokens need no Kafka;
//! publisher tokens consult the revocation list and must fail closed without it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hubgate_server::runtime::{BoxError, dispatch_lambda_event};
use hubgate_server::sas::mint;
use hubgate_server::{Clients, Config, Gate, Resource, Right, authorize};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{IssuerState, app, handle_event};

/// The `manage` rule, and with `send_listen` also testkit's `send` and `listen` rules.
fn config(send_listen: bool) -> Config {
    let issuer = "[issuer]\nmax_ttl_secs = 3600\n";
    if send_listen {
        // No [[rules]] here: offline_config adds manage, send and listen (RULES_TOML).
        return hubgate_testkit::offline_config("", 300, issuer);
    }
    let manage = format!(
        "[[rules]]\nname = 'manage'\nrights = ['Manage']\nprimary_key = '{}'\n",
        hubgate_testkit::KEY_A
    );
    hubgate_testkit::offline_config("", 300, &format!("{issuer}{manage}"))
}

fn state(c: Config) -> Arc<IssuerState> {
    let clients = Clients::with_gate(&c, Arc::new(Gate::from_config(&c))).unwrap();
    Arc::new(IssuerState::new(Arc::new(c), &clients))
}

fn manage_token(path: &str) -> String {
    hubgate_testkit::sas(&config(false), "manage", path, hubgate_testkit::FAR)
}

async fn post(s: Arc<IssuerState>, auth: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/v1/tokens")
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(s).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Verifies `token` against `c`'s rules and returns the principal.
fn verify(c: &Config, token: &str) -> hubgate_server::Principal {
    hubgate_server::Authenticator::new(&c.namespace, &c.rules)
        .authenticate_sas(token, hubgate_server::authz::unix_now())
        .unwrap()
}

#[tokio::test]
async fn tokens_consumer_group_listen_token_ok() {
    let c = config(true);
    let (status, v) = post(
        state(c.clone()),
        &manage_token("hub"),
        json!({"hub": "hub", "consumer_group": "readers", "ttl_secs": 600}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["resource"], "https://ns.test/hub/consumergroups/readers");
    let t = v["token"].as_str().unwrap();
    assert!(t.contains("skn=listen"), "least-privileged rule: {t}");
    let p = verify(&c, t);
    assert!(
        authorize(
            &p,
            Right::Listen,
            &Resource::consumer_group("hub", "readers")
        )
        .is_ok()
    );
    assert!(
        authorize(&p, Right::Listen, &Resource::hub("hub")).is_err(),
        "only that group"
    );
    assert!(authorize(&p, Right::Send, &Resource::consumer_group("hub", "readers")).is_err());
    let now = hubgate_server::authz::unix_now();
    assert!((now + 599..=now + 601).contains(&v["expires_at"].as_u64().unwrap()));
}

#[tokio::test]
async fn tokens_hub_rights_ok() {
    let c = config(true);
    let (status, v) = post(
        state(c.clone()),
        &manage_token(""),
        json!({"hub": "hub", "rights": ["Send"], "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["token"].as_str().unwrap().contains("skn=send"));
    assert_eq!(v["resource"], "https://ns.test/hub");
}

#[tokio::test]
async fn tokens_without_manage_fails() {
    let c = config(true);
    let send = mint(
        "https://ns.test/hub",
        "send",
        &c.rule("send").unwrap().primary_key,
        4_000_000_000,
    );
    let (status, v) = post(
        state(c),
        &send,
        json!({"hub": "hub", "consumer_group": "x", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error_code"], 40101);
    // A Manage token for another hub does not cover this one.
    let c = config(true);
    let (status, _) = post(
        state(c),
        &manage_token("other"),
        json!({"hub": "hub", "consumer_group": "x", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_manage_never_minted_by_default_fails() {
    let c = config(true);
    let (status, v) = post(
        state(c),
        &manage_token(""),
        json!({"hub": "hub", "rights": ["Manage"], "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["error_code"], 40301);
    // Only a Manage rule exists: a consumer-group token would carry Manage, so it is refused.
    let (status, v) = post(
        state(config(false)),
        &manage_token(""),
        json!({"hub": "hub", "consumer_group": "g", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("has Manage"));
}

#[tokio::test]
async fn tokens_bad_requests_fail() {
    let s = state(config(true));
    let auth = manage_token("");
    for body in [
        json!({"hub": "hub", "consumer_group": "g", "ttl_secs": 0}),
        json!({"hub": "hub", "consumer_group": "g", "ttl_secs": 3601}),
        json!({"hub": "hub", "consumer_group": "g"}),
        json!({"hub": "hub", "publisher": "p", "consumer_group": "g", "ttl_secs": 60}),
        json!({"hub": "hub", "publisher": "a/b", "ttl_secs": 60}),
        json!({"hub": "hub", "publisher": "p", "rights": ["Listen"], "ttl_secs": 60}),
        json!({"hub": "hub", "consumer_group": "g", "rights": ["Send"], "ttl_secs": 60}),
        json!({"hub": "hub", "consumer_group": "bad group", "ttl_secs": 60}),
        json!({"hub": "hub", "ttl_secs": 60}),
        json!({"hub": "__internal", "consumer_group": "g", "ttl_secs": 60}),
        json!({"hub": "hub", "consumer_group": "g", "ttl_secs": 60, "extra": 1}),
    ] {
        let (status, v) = post(Arc::clone(&s), &auth, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
}

#[tokio::test]
async fn tokens_publisher_without_revocation_list_fails_closed() {
    let (status, v) = post(
        state(config(true)),
        &manage_token(""),
        json!({"hub": "hub", "publisher": "dev-1", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/aws-lambda-events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn lambda(s: &Arc<IssuerState>, payload: Value) -> Result<Value, BoxError> {
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
}

#[tokio::test]
async fn lambda_apigw_v2_http_event_mints_ok() {
    let s = state(config(true));
    let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
    event["rawPath"] = json!("/v1/tokens");
    event["requestContext"]["http"]["method"] = json!("POST");
    event["requestContext"]["http"]["path"] = json!("/v1/tokens");
    event["headers"]["authorization"] = json!(manage_token(""));
    event["headers"]["content-type"] = json!("application/json");
    event["body"] = json!(json!({"hub": "hub", "consumer_group": "g", "ttl_secs": 60}).to_string());
    let out = lambda(&s, event).await.unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["resource"], "https://ns.test/hub/consumergroups/g");
}

#[tokio::test]
async fn lambda_direct_invocation_mint_ok() {
    let s = state(config(true));
    let out = lambda(
        &s,
        json!({"action": "mint", "hub": "hub", "consumer_group": "g", "ttl_secs": 60}),
    )
    .await
    .unwrap();
    assert!(
        out["token"]
            .as_str()
            .unwrap()
            .starts_with("SharedAccessSignature sr=")
    );
    assert_eq!(out["resource"], "https://ns.test/hub/consumergroups/g");
}

#[tokio::test]
async fn lambda_events_without_secret_or_unknown_fail() {
    let s = state(config(true));
    let err = lambda(&s, fixture("example-eventbridge-schedule.json"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("secret_id"), "{err}");
    let err = lambda(
        &s,
        fixture("example-secretsmanager-secret-rotation-event.json"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("secret_id"), "{err}");
    let err = lambda(&s, json!({"hello": "world"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid event"), "{err}");
    let err = lambda(&s, json!({"action": "explode"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid event"), "{err}");
    let err = lambda(
        &s,
        json!({"action": "mint", "hub": "hub", "rights": ["Manage"], "ttl_secs": 5}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("Manage"), "{err}");
}
