//! The bad-input matrix: hostile or broken requests each get a clear 4xx in the JSON error
//! shape, nothing reaches Kafka, and the gateway stays healthy.
#![allow(clippy::unwrap_used)]

use hubgate_tests::{Env, latest_offsets, now, token, unique};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const BATCH: &str = "application/vnd.microsoft.servicebus.json";

/// One case: what is sent, and the status expected.
struct Case {
    name: String,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    want: u16,
}

fn case(
    name: &str,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
    want: u16,
) -> Case {
    let mut headers = HeaderMap::new();
    if let Some(a) = auth {
        headers.insert(
            "authorization",
            HeaderValue::from_bytes(a.as_bytes()).unwrap(),
        );
    }
    // The HDInsight routes take JSON bodies and say so (a body of another type is 415).
    if method == Method::POST && path.starts_with("/v1/") {
        headers.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        );
    }
    Case {
        name: name.into(),
        method,
        path: path.into(),
        headers,
        body: body.to_vec(),
        want,
    }
}

/// Replaces one `name=value` field of a SAS header.
fn with_field(token: &str, name: &str, value: &str) -> String {
    let (scheme, fields) = token.split_once(' ').unwrap();
    let fields: Vec<String> = fields
        .split('&')
        .map(|f| {
            if f.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                f.to_owned()
            }
        })
        .collect();
    format!("{scheme} {}", fields.join("&"))
}

fn without_field(token: &str, name: &str) -> String {
    let (scheme, fields) = token.split_once(' ').unwrap();
    let kept: Vec<&str> = fields
        .split('&')
        .filter(|f| !f.starts_with(&format!("{name}=")))
        .collect();
    format!("{scheme} {}", kept.join("&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_matrix_4xx_json_nothing_written_fails() {
    let hub = &unique("hub");
    let env = Env::start("[limits]\nmax_publication_bytes = 4096\n").await;
    env.create_topic(hub, 2).await;
    let config = &env.gateway.config;
    let send = env.token("send", hub);
    let listen = env.token("listen", hub);
    let sig = send
        .split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let post = Method::POST;
    let get = Method::GET;
    let ev = &format!("/{hub}/messages");
    let mut cases = vec![
        // Credentials (SAS).
        case("no authorization", post.clone(), ev, None, b"x", 401),
        case("empty authorization", post.clone(), ev, Some(""), b"x", 401),
        case(
            "scheme only",
            post.clone(),
            ev,
            Some("SharedAccessSignature"),
            b"x",
            401,
        ),
        case(
            "scheme and space",
            post.clone(),
            ev,
            Some("SharedAccessSignature "),
            b"x",
            401,
        ),
        case(
            "basic scheme",
            post.clone(),
            ev,
            Some("Basic dXNlcjpwYXNz"),
            b"x",
            401,
        ),
        case(
            "bearer without oauth",
            post.clone(),
            ev,
            Some("Bearer abc.def.ghi"),
            b"x",
            401,
        ),
        case(
            "bearer garbage",
            post.clone(),
            ev,
            Some("Bearer"),
            b"x",
            401,
        ),
        case(
            "non-utf8 header",
            post.clone(),
            ev,
            Some("SharedAccessSignature sr=\u{00ff}"),
            b"x",
            401,
        ),
        case(
            "missing sr",
            post.clone(),
            ev,
            Some(&without_field(&send, "sr")),
            b"x",
            401,
        ),
        case(
            "missing sig",
            post.clone(),
            ev,
            Some(&without_field(&send, "sig")),
            b"x",
            401,
        ),
        case(
            "missing se",
            post.clone(),
            ev,
            Some(&without_field(&send, "se")),
            b"x",
            401,
        ),
        case(
            "missing skn",
            post.clone(),
            ev,
            Some(&without_field(&send, "skn")),
            b"x",
            401,
        ),
        case(
            "duplicate sig",
            post.clone(),
            ev,
            Some(&format!("{send}&sig={sig}")),
            b"x",
            401,
        ),
        case(
            "duplicate se",
            post.clone(),
            ev,
            Some(&format!("{send}&se=1")),
            b"x",
            401,
        ),
        case(
            "unknown field",
            post.clone(),
            ev,
            Some(&format!("{send}&foo=bar")),
            b"x",
            401,
        ),
        case(
            "field without value",
            post.clone(),
            ev,
            Some(&format!("{send}&sr")),
            b"x",
            401,
        ),
        case(
            "empty sig",
            post.clone(),
            ev,
            Some(&with_field(&send, "sig", "")),
            b"x",
            401,
        ),
        case(
            "se not numeric",
            post.clone(),
            ev,
            Some(&with_field(&send, "se", "abc")),
            b"x",
            401,
        ),
        case(
            "se negative",
            post.clone(),
            ev,
            Some(&with_field(&send, "se", "-1")),
            b"x",
            401,
        ),
        case(
            "se huge",
            post.clone(),
            ev,
            Some(&with_field(&send, "se", &"9".repeat(30))),
            b"x",
            401,
        ),
        case(
            "se u64 max + 1",
            post.clone(),
            ev,
            Some(&with_field(&send, "se", "18446744073709551616")),
            b"x",
            401,
        ),
        case(
            "se float",
            post.clone(),
            ev,
            Some(&with_field(&send, "se", "1e12")),
            b"x",
            401,
        ),
        case(
            "se changed",
            post.clone(),
            ev,
            Some(&with_field(&send, "se", &(now() + 7200).to_string())),
            b"x",
            401,
        ),
        case(
            "expired",
            post.clone(),
            ev,
            Some(&token(config, "send", hub, 1)),
            b"x",
            401,
        ),
        case(
            "sig not base64",
            post.clone(),
            ev,
            Some(&with_field(&send, "sig", "!!!!")),
            b"x",
            401,
        ),
        case(
            "sig 16 bytes",
            post.clone(),
            ev,
            Some(&with_field(&send, "sig", "AAAAAAAAAAAAAAAAAAAAAA%3D%3D")),
            b"x",
            401,
        ),
        case(
            "sig 33 bytes",
            post.clone(),
            ev,
            Some(&with_field(&send, "sig", &"A".repeat(44))),
            b"x",
            401,
        ),
        case(
            "sig truncated",
            post.clone(),
            ev,
            Some(&with_field(&send, "sig", &sig[..sig.len() - 4])),
            b"x",
            401,
        ),
        case(
            "sig of another rule",
            post.clone(),
            ev,
            Some(&with_field(&listen, "skn", "send")),
            b"x",
            401,
        ),
        case(
            "unknown rule",
            post.clone(),
            ev,
            Some(&with_field(&send, "skn", "nobody")),
            b"x",
            401,
        ),
        case(
            "other namespace",
            post.clone(),
            ev,
            Some(&with_field(&send, "sr", "https%3A%2F%2Fevil.example%2Fhub")),
            b"x",
            401,
        ),
        case(
            "sr traversal",
            post.clone(),
            ev,
            Some(&with_field(
                &send,
                "sr",
                "https%3A%2F%2Flocalhost%2Fother%2F..%2Fhub",
            )),
            b"x",
            401,
        ),
        case(
            "sr control char",
            post.clone(),
            ev,
            Some(&with_field(
                &send,
                "sr",
                "https%3A%2F%2Flocalhost%2Fh%2500ub",
            )),
            b"x",
            401,
        ),
        case(
            "sr bad percent",
            post.clone(),
            ev,
            Some(&with_field(&send, "sr", "https%3A%2F%2Flocalhost%2F%ZZ")),
            b"x",
            401,
        ),
        case(
            "token over 4 KiB",
            post.clone(),
            ev,
            Some(&format!("{send}&sr={}", "a".repeat(5000))),
            b"x",
            401,
        ),
        case(
            "listen token sends",
            post.clone(),
            ev,
            Some(&listen),
            b"x",
            401,
        ),
        case(
            "token for another hub",
            post.clone(),
            "/other/messages",
            Some(&env.token("send", hub)),
            b"x",
            401,
        ),
        case(
            "publisher token as another",
            post.clone(),
            &format!("/{hub}/publishers/dev-2/messages"),
            Some(&env.token("send", &format!("{hub}/publishers/dev-1"))),
            b"x",
            401,
        ),
        // Bodies.
        case(
            "body over the limit",
            post.clone(),
            ev,
            Some(&send),
            &[b'x'; 5000],
            413,
        ),
        // Names.
        case(
            "unknown hub",
            post.clone(),
            "/nohub/messages",
            Some(&env.token("send", "")),
            b"x",
            404,
        ),
        case(
            "hub too long",
            post.clone(),
            &format!("/{}/messages", "h".repeat(300)),
            Some(&env.token("send", "")),
            b"x",
            400,
        ),
        // The URL parser resolves `%2e%2e` as `..` before sending: `/messages`, no such route.
        case(
            "hub traversal",
            post.clone(),
            "/%2e%2e/messages",
            Some(&env.token("send", "")),
            b"x",
            404,
        ),
        case(
            "hub dots",
            post.clone(),
            "/a..b%2F..%2Fc/messages",
            Some(&env.token("send", "")),
            b"x",
            400,
        ),
        case(
            "hub control char",
            post.clone(),
            "/h%01ub/messages",
            Some(&env.token("send", "")),
            b"x",
            400,
        ),
        case(
            "hub unicode",
            post.clone(),
            "/h%C3%BCb/messages",
            Some(&env.token("send", "")),
            b"x",
            400,
        ),
        case(
            "hub with space",
            post.clone(),
            "/h%20ub/messages",
            Some(&env.token("send", "")),
            b"x",
            400,
        ),
        case(
            "publisher slash",
            post.clone(),
            &format!("/{hub}/publishers/a%2Fb/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "publisher too long",
            post.clone(),
            &format!("/{hub}/publishers/{}/messages", "p".repeat(300)),
            Some(&send),
            b"x",
            400,
        ),
        // Any other text is a publisher name (`d%C3%A9v`, a zero-width space: see
        // eventhubs.rs); control characters and bytes that are not UTF-8 are not.
        case(
            "publisher control character",
            post.clone(),
            &format!("/{hub}/publishers/dev%0A1/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "publisher C1 control character",
            post.clone(),
            &format!("/{hub}/publishers/dev%C2%851/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "publisher not UTF-8",
            post.clone(),
            &format!("/{hub}/publishers/d%FFv/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "partition negative",
            post.clone(),
            &format!("/{hub}/partitions/-1/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "partition not a number",
            post.clone(),
            &format!("/{hub}/partitions/zero/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "partition huge",
            post.clone(),
            &format!("/{hub}/partitions/99999999999/messages"),
            Some(&send),
            b"x",
            400,
        ),
        case(
            "partition missing",
            post.clone(),
            &format!("/{hub}/partitions/7/messages"),
            Some(&send),
            b"x",
            404,
        ),
        // HDInsight produce bodies.
        case(
            "produce not json",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            b"{records",
            400,
        ),
        case(
            "produce empty records",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[]}"#,
            400,
        ),
        case(
            "produce records not a list",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":{"value":1}}"#,
            400,
        ),
        case(
            "produce unknown field",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[{"valeu":1}]}"#,
            400,
        ),
        case(
            "produce negative partition",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[{"value":1,"partition":-1}]}"#,
            400,
        ),
        case(
            "produce huge partition",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[{"value":1,"partition":4294967296}]}"#,
            400,
        ),
        case(
            "produce missing partition",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[{"value":1,"partition":5}]}"#,
            404,
        ),
        case(
            "produce header not text",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[{"value":1,"headers":{"h":1}}]}"#,
            400,
        ),
        case(
            "produce truncated",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            br#"{"records":[{"value":"#,
            400,
        ),
        case(
            "produce not utf-8",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            b"{\"records\":[{\"value\":\"\xff\"}]}",
            400,
        ),
        case(
            "produce unknown topic",
            post.clone(),
            "/v1/producer/topics/nohub",
            Some(&env.token("send", "")),
            br#"{"records":[{"value":1}]}"#,
            404,
        ),
        case(
            "produce over the limit",
            post.clone(),
            &format!("/v1/producer/topics/{hub}"),
            Some(&send),
            &[b' '; 5000],
            413,
        ),
        // Consume parameters.
        case(
            "consume negative partition",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/-1/offsets/0"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume partition text",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/x/offsets/0"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume negative offset",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/-5"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume offset text",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/abc"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume offset past end",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/9223372036854775807"),
            Some(&listen),
            b"",
            404,
        ),
        case(
            "consume offset overflow",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/9223372036854775808"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume count zero",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0?count=0"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume count huge",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0?count=99999999999"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume count text",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0?count=ten"),
            Some(&listen),
            b"",
            400,
        ),
        case(
            "consume unknown query",
            get.clone(),
            &format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0?cnt=1"),
            Some(&listen),
            b"",
            400,
        ),
        // Routes.
        case(
            "unknown route",
            get.clone(),
            "/v2/everything",
            Some(&listen),
            b"",
            404,
        ),
    ];
    // Event Hubs batch bodies.
    for (name, body, want) in [
        ("batch not json", &b"[{"[..], 400),
        ("batch empty", b"[]", 400),
        ("batch not a list", br#"{"Body":"x"}"#, 400),
        ("batch body missing", br#"[{"UserProperties":{}}]"#, 400),
        (
            "batch bad base64",
            br#"[{"Body":"%%%","IsBodyBase64":true}]"#,
            400,
        ),
        (
            "batch base64 of a number",
            br#"[{"Body":1,"IsBodyBase64":true}]"#,
            400,
        ),
        (
            "batch property a list",
            br#"[{"Body":"x","UserProperties":{"a":[1]}}]"#,
            400,
        ),
        (
            "batch property null",
            br#"[{"Body":"x","UserProperties":{"a":null}}]"#,
            400,
        ),
        (
            "batch one bad of two",
            br#"[{"Body":"ok"},{"Body":"%","IsBodyBase64":true}]"#,
            400,
        ),
    ] {
        let mut c = case(name, post.clone(), ev, Some(&send), body, want);
        c.headers.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static(BATCH),
        );
        cases.push(c);
    }

    let before = latest_offsets(&env.broker.bootstrap(), hub).await;
    let mut failures = Vec::new();
    for c in &cases {
        let r = env
            .http
            .request(c.method.clone(), env.gateway.url(&c.path))
            .headers(c.headers.clone())
            .body(c.body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let shaped = json.as_ref().is_some_and(|j| {
            j["error_code"].is_u64() && j["message"].as_str().is_some_and(|m| !m.is_empty())
        });
        // No credential material is echoed (the real signature; the rule's key).
        let key = config.rule("send").unwrap().primary_key.expose().to_owned();
        let leaks = text.contains(&sig) || text.contains(&key);
        if status != c.want || !shaped || leaks {
            failures.push(format!("{}: {status} (want {}) {text}", c.name, c.want));
        }
    }
    let after = latest_offsets(&env.broker.bootstrap(), hub).await;
    println!(
        "bad-input matrix: {} cases, {} as expected",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(before, after, "something was written to Kafka");
    let ok = env
        .http
        .post(env.gateway.url(ev))
        .header("authorization", &send)
        .body("still working")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201, "healthy afterwards");
}

/// The review's slowloris case: 150 connections that never finish their request head, against
/// a server allowed 128 descriptors. Before the listener had limits they were held forever and
/// the server refused everyone (`accept error: Too many open files`); now the cap (3/4 of the
/// limit) keeps descriptors free, the header timeout closes the silent ones, and a real client
/// is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_half_sent_heads_at_descriptor_limit_ok() {
    use tokio::io::AsyncWriteExt;
    let broker = hubgate_tests::SharedKafka::get();
    let toml = hubgate_tests::test_config_toml(
        &broker.bootstrap(),
        "[server]\nheader_read_timeout_ms = 1000\n",
    );
    let server = hubgate_tests::HubgateProcess::start_with_open_files(&toml, 128);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..150 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let r = hubgate_tests::http()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("a real client is answered: {e}\n{}", server.log()));
    assert_eq!(r.status(), 200);
    let log = server.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.contains("max_connections=96"), "{log}");
    drop(slow);
}
