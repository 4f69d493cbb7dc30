//! Router tests through `tower::ServiceExt::oneshot` (`hubgate_testkit::call`). Kafka points at a closed port: every
//! refusal here must happen before Kafka is asked, and Kafka being down must be a clean 503.

use std::sync::Arc;

use axum::http::StatusCode;
use hubgate_server::sas::mint;
use hubgate_server::{Clients, Config, Gate};
use hubgate_testkit::FAR;
use serde_json::{Value, json};

use crate::{ProxyState, app};

fn config(hubs: &str) -> Config {
    hubgate_testkit::offline_config(
        &format!("hubs = [{hubs}]"),
        300,
        "[limits]\nmax_publication_bytes = 1000\n",
    )
}

fn router(hubs: &str) -> axum::Router {
    let c = Arc::new(config(hubs));
    let clients = Clients::with_gate(&c, Arc::new(Gate::from_config(&c))).unwrap();
    app(Arc::new(ProxyState::new(c, &clients)))
}

fn token(rule: &str, path: &str, expiry: u64) -> String {
    hubgate_testkit::sas(&config(""), rule, path, expiry)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, Value, http::HeaderMap) {
    let a =
        hubgate_testkit::call(app, method, uri, auth, "application/json", body.to_owned()).await;
    (a.status, a.json, a.headers)
}

fn assert_error(v: &Value, code: u64, contains: &str) {
    assert_eq!(v["error_code"], code, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(contains), "message {msg:?} lacks {contains:?}");
}

#[tokio::test]
async fn status_without_credential_fails() {
    let (s, v, _) = call(&router(""), "GET", "/v1/status", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 40101, "MissingToken");
}

#[tokio::test]
async fn status_kafka_down_reports_unavailable_ok() {
    let t = token("listen", "", FAR);
    let (s, v, h) = call(&router(""), "GET", "/v1/status", Some(&t), "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"status": "ok", "kafka": "unavailable"}));
    assert!(h.contains_key("x-request-id"));
}

#[tokio::test]
async fn produce_listen_only_token_fails() {
    let t = token("listen", "hub", FAR);
    let (s, v, _) = call(
        &router(""),
        "POST",
        "/v1/producer/topics/hub",
        Some(&t),
        r#"{"records":[{"value":"x"}]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 40101, "'Send' claim(s) are required");
}

#[tokio::test]
async fn create_topic_send_token_fails() {
    let t = token("send", "hub", FAR);
    let (s, v, _) = call(
        &router(""),
        "PUT",
        "/v1/topics/hub",
        Some(&t),
        r#"{"partition_count":1}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 40101, "'Manage' claim(s)");
}

#[tokio::test]
async fn publisher_token_on_other_publisher_fails() {
    let t = token("send", "hub/publishers/a", FAR);
    let (s, v, _) = call(
        &router(""),
        "POST",
        "/hub/publishers/b/messages",
        Some(&t),
        "x",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 40101, "InvalidAudience");
    // …and on the hub-wide /v1 produce route.
    let (s, _, _) = call(
        &router(""),
        "POST",
        "/v1/producer/topics/hub",
        Some(&t),
        r#"{"records":[{"value":"x"}]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_token_fails() {
    let t = token("send", "hub", 1_000);
    let (s, v, _) = call(
        &router(""),
        "POST",
        "/hub/publishers/a/messages",
        Some(&t),
        "x",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 40101, "ExpiredToken");
}

#[tokio::test]
async fn wrong_key_fails() {
    let c = config("");
    let other = &c.rule("manage").unwrap().primary_key; // KEY_A, but rule "send" uses KEY_B
    let t = mint("https://ns.test/hub", "send", other, FAR);
    let (s, v, _) = call(
        &router(""),
        "POST",
        "/hub/publishers/a/messages",
        Some(&t),
        "x",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&v, 40101, "InvalidSignature");
}

#[tokio::test]
async fn produce_bad_body_fails() {
    let t = token("send", "hub", FAR);
    let app = router("");
    for (body, want) in [
        ("not json", "invalid produce body"),
        (r#"{"records":[]}"#, "must not be empty"),
        (r#"{"records":[{"valeu":1}]}"#, "unknown field"),
        (
            r#"{"records":[{"value":1,"partition":-1}]}"#,
            "must not be negative",
        ),
    ] {
        let (s, v, _) = call(&app, "POST", "/v1/producer/topics/hub", Some(&t), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&v, 40001, want);
    }
}

#[tokio::test]
async fn send_oversized_body_fails() {
    // A hub path: a publisher path consults the revocation list first (503 here, no Kafka).
    let t = token("send", "hub", FAR);
    let (s, v, _) = call(
        &router(""),
        "POST",
        "/hub/messages",
        Some(&t),
        &"x".repeat(1001),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&v, 41301, "1000 bytes");
}

#[tokio::test]
async fn bad_names_fail() {
    let t = token("manage", "", FAR);
    let app = router("");
    for uri in [
        "/v1/producer/topics/__hubgate_revocations",
        "/v1/producer/topics/a%20b",
        "/hub/publishers/a%2Fb/messages",
        "/hub/publishers/%2E%2E/messages",
        "/v1/consumer/topics/hub/partitions/-1/offsets/0",
        "/v1/consumer/topics/hub/partitions/0/offsets/-5",
        "/v1/consumer/topics/hub/partitions/0/offsets/0?count=0",
        "/v1/consumer/topics/hub/partitions/0/offsets/0?count=99999999",
        "/v1/consumer/topics/hub/partitions/0/offsets/0?cuont=1",
    ] {
        let method = if uri.contains("consumer") {
            "GET"
        } else {
            "POST"
        };
        let (s, v, _) = call(&app, method, uri, Some(&t), "{}").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error_code"], 40001, "{uri}");
    }
}

#[tokio::test]
async fn hub_not_configured_fails() {
    let t = token("manage", "", FAR);
    let app = router(r#""allowed""#);
    let (s, v, _) = call(&app, "POST", "/other/publishers/a/messages", Some(&t), "x").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, 40401, "does not exist");
    let (s, _, _) = call(&app, "PUT", "/v1/topics/other", Some(&t), "{}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn create_topic_bad_body_fails() {
    let t = token("manage", "", FAR);
    let app = router("");
    for body in [
        r#"{"partition_count":0}"#,
        r#"{"replication_factor":0}"#,
        r#"{"topic_properties":{"a":[1]}}"#,
        r#"{"x":1}"#,
    ] {
        let (s, _, _) = call(&app, "PUT", "/v1/topics/hub", Some(&t), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test]
async fn produce_kafka_down_is_503_with_retry_after_ok() {
    let t = token("send", "hub", FAR);
    let (s, v, h) = call(
        &router(""),
        "POST",
        "/hub/publishers/a/messages",
        Some(&t),
        "x",
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&v, 50301, "Kafka is unavailable");
    assert_eq!(h["retry-after"], "1");
    assert!(
        !v["message"].as_str().unwrap().contains("127.0.0.1"),
        "no internals: {v}"
    );
}

#[tokio::test]
async fn consumer_group_token_other_group_fails() {
    let app = router("");
    let reader = token("listen", "hub/consumergroups/readers", FAR);
    for path in [
        "/hub/consumergroups/others/partitions/0/messages",
        "/hub/consumergroups/$Default/partitions/0/checkpoint",
        "/v1/consumer/topics/hub/partitions/0/offsets/0",
        "/hub/consumergroups",
    ] {
        let (s, v, _) = call(&app, "GET", path, Some(&reader), "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {v}");
    }
    // Group management needs Manage, not Listen on the hub.
    let listen = token("listen", "hub", FAR);
    let (s, _, _) = call(&app, "PUT", "/hub/consumergroups/g", Some(&listen), "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn consumer_group_bad_input_before_kafka_fails() {
    let app = router("");
    let manage = token("manage", "", FAR);
    let read = "/hub/consumergroups/$Default/partitions/0/messages";
    for (method, uri, body, why) in [
        ("GET", format!("{read}?count=0"), "", "count 0"),
        ("GET", format!("{read}?wait_ms=30001"), "", "wait too long"),
        ("GET", format!("{read}?offset=-3"), "", "negative offset"),
        ("GET", format!("{read}?bogus=1"), "", "unknown parameter"),
        (
            "GET",
            "/hub/consumergroups/$Default/partitions/x/messages".into(),
            "",
            "partition",
        ),
        (
            "GET",
            "/hub/consumergroups/bad!name/partitions/0/messages".into(),
            "",
            "group name",
        ),
        ("PUT", "/hub/consumergroups/g".into(), "[1]", "array body"),
        (
            "PUT",
            "/hub/consumergroups/g".into(),
            r#"{"colour":"red"}"#,
            "unknown field",
        ),
    ] {
        let (s, v, _) = call(&app, method, &uri, Some(&manage), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        assert_error(&v, 40001, "");
    }
    // Valid requests reach Kafka, which is down here: a clean 503.
    let (s, v, h) = call(&app, "GET", read, Some(&manage), "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(h["retry-after"], "1");
}

#[tokio::test]
async fn method_not_allowed_lists_allowed_methods_ok() {
    let app = router("");
    let (s, v, h) = call(
        &app,
        "DELETE",
        "/hub/consumergroups/g/partitions/0/checkpoint",
        None,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(h["allow"], "GET,HEAD,PUT");
    assert_error(&v, 40501, "DELETE is not served here");
    let (s, _, _) = call(&app, "GET", "/openapi.json", None, "").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn query_api_version_and_timeout_ignored_on_every_read_ok() {
    let app = router("");
    let manage = token("manage", "", FAR);
    let ignored = "api-version=2014-01&timeout=60&API-VERSION=2015-01";
    for path in [
        "/v1/consumer/topics/hub/partitions/0/offsets/0",
        "/hub/consumergroups/$Default/partitions/0/messages",
    ] {
        // Accepted (then Kafka, down here, answers 503), not "unknown field".
        let (s, v, _) = call(&app, "GET", &format!("{path}?{ignored}"), Some(&manage), "").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{path}: {v}");
        // The route's own parameters are still checked beside them.
        let (s, v, _) = call(
            &app,
            "GET",
            &format!("{path}?{ignored}&count=0"),
            Some(&manage),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
}

#[tokio::test]
async fn produce_not_json_content_type_fails() {
    let t = token("send", "hub", FAR);
    let app = router("");
    let produce = |content_type: &'static str| {
        let (app, t) = (app.clone(), t.clone());
        async move {
            let body = r#"{"records":[{"value":1}]}"#;
            let uri = "/v1/producer/topics/hub";
            hubgate_testkit::call(&app, "POST", uri, Some(&t), content_type, body).await
        }
    };
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let a = produce(content_type).await;
        assert_eq!(
            a.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_error(&a.json, 41501, "application/json");
    }
    // Declared JSON (also with parameters or a +json type) goes on to Kafka (down: 503).
    for content_type in [
        "application/json; charset=utf-8",
        "application/vnd.kafka+json",
    ] {
        let a = produce(content_type).await;
        assert_eq!(
            a.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{content_type:?}"
        );
    }
}

#[tokio::test]
async fn unknown_rule_answers_like_a_bad_signature_ok() {
    let app = router("");
    let good = token("listen", "hub", FAR);
    let unknown_rule = good.replace("skn=listen", "skn=nosuchrule");
    let sig_at = good.find("sig=").unwrap() + 4;
    let mut bad_sig = good.clone();
    bad_sig.replace_range(sig_at..sig_at + 4, "AAAA");
    let path = "/v1/metadata/topics";
    let (s1, v1, _) = call(&app, "GET", path, Some(&unknown_rule), "").await;
    let (s2, v2, _) = call(&app, "GET", path, Some(&bad_sig), "").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        v1, v2,
        "a caller without a key must not learn which rule names exist"
    );
}

#[tokio::test]
async fn reserved_headers_from_clients_fails() {
    let app = router("");
    let t = token("send", "hub", FAR);
    let send = |content_type: &'static str, header: Option<&'static str>, body: &'static str| {
        let (app, t) = (app.clone(), t.clone());
        async move {
            let mut r = axum::http::Request::post("/hub/messages")
                .header("authorization", t)
                .header("content-type", content_type);
            if let Some(h) = header {
                r = r.header(h, "forged");
            }
            hubgate_testkit::send(&app, r.body(body.into()).unwrap())
                .await
                .status
        }
    };
    // A custom header on a single send, a batch's UserProperties, a produce record header.
    for name in ["x-opt-publisher", "X-Opt-Enqueued-Time"] {
        assert_eq!(
            send("text/plain", Some(name), "e").await,
            StatusCode::BAD_REQUEST,
            "{name}"
        );
    }
    let batch = r#"[{"Body":"e","UserProperties":{"X-OPT-PUBLISHER":"forged"}}]"#;
    assert_eq!(
        send(crate::BATCH_CONTENT_TYPE, None, batch).await,
        StatusCode::BAD_REQUEST
    );
    let produce = r#"{"records":[{"value":"v","headers":{"x-opt-publisher":"forged"}}]}"#;
    let (s, v, _) = call(&app, "POST", "/v1/producer/topics/hub", Some(&t), produce).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_error(&v, 40001, "reserved");
    // Other custom headers still travel (on to Kafka, down here: 503).
    assert_eq!(
        send("text/plain", Some("x-custom"), "e").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn send_properties_count_toward_the_size_limit_fails() {
    // max_publication_bytes is 1000 here: a 1-byte body with 1,200 bytes of custom headers
    // would be a 1.2 KB record.
    let app = router("");
    let t = token("send", "hub", FAR);
    let send = |headers: Vec<(&'static str, String)>| {
        let (app, t) = (app.clone(), t.clone());
        async move {
            let mut r = axum::http::Request::post("/hub/messages")
                .header("authorization", t)
                .header("content-type", "text/plain");
            for (name, value) in headers {
                r = r.header(name, value);
            }
            hubgate_testkit::send(&app, r.body("e".into()).unwrap()).await
        }
    };
    let big = vec![("x-a", "a".repeat(600)), ("x-b", "b".repeat(600))];
    let a = send(big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.json);
    assert_error(&a.json, 41301, "1000 bytes");
    // Within the limit: on to Kafka (down here: 503).
    let a = send(vec![("x-a", "a".repeat(600))]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.json);
}
