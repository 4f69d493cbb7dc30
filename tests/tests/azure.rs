//! The Azure Functions host, replayed: what the host does with `functions/azure/host.json`
//! and a `function.json`, done by hand against the real `hubgate` binary and a real broker.
//! Azure Functions Core Tools cannot be installed here (its installer downloads a binary).
//!
//! The host starts `defaultExecutablePath` with `arguments` in the app directory and
//! `FUNCTIONS_CUSTOMHANDLER_PORT` set, treats any answer to `GET /` on 127.0.0.1 as ready
//! (within 60 s), then, with `enableForwardingHttpRequest`, forwards each request unchanged
//! (path with the route prefix, method, headers, body), adding its own headers.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubgate_tests::{
    SharedKafka, free_port, http, hubgate_bin, kafka_python_read, latest_offsets, test_config_toml,
    token_1h, unique,
};

/// The custom handler process; killed when dropped.
struct Handler(Child);

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host_json() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/azure/host.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Headers the Functions host and the App Service front end add to a forwarded request.
const HOST_HEADERS: [(&str, &str); 12] = [
    (
        "x-azure-functions-invocationid",
        "5a6c1f0e-3b6c-4c59-9b35-2d1f2c3f8a11",
    ),
    ("x-forwarded-for", "203.0.113.7:51234"),
    ("x-forwarded-proto", "https"),
    ("x-arr-log-id", "0d6f7a4e-5a4c-4c1e-8d0e-6e0b2c3d4e5f"),
    (
        "x-arr-ssl",
        "2048|256|CN=Microsoft Azure RSA TLS Issuing CA 03",
    ),
    // What the host says of the original request; hubgate does not route by it.
    ("x-original-url", "/telemetry/publishers/dev-1/messages"),
    (
        "x-waws-unencoded-url",
        "/telemetry/publishers/dev-1/messages",
    ),
    ("x-site-deployment-id", "hubgate-func"),
    ("x-appservice-proto", "https"),
    ("client-ip", "203.0.113.7:51234"),
    ("disguised-host", "hubgate-func.azurewebsites.net"),
    ("was-default-hostname", "hubgate-func.azurewebsites.net"),
];

#[tokio::test]
async fn azure_custom_handler_replayed_host_ok() {
    let telemetry = &unique("telemetry");
    let broker = SharedKafka::get();
    let toml = test_config_toml(&broker.bootstrap(), "");
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("hubgate.toml"), &toml).unwrap();

    // Start the executable as the host does.
    let host = host_json();
    let handler = &host["customHandler"];
    assert_eq!(handler["description"]["defaultExecutablePath"], "hubgate");
    assert_eq!(handler["enableForwardingHttpRequest"], true);
    let args = host_args();
    let (_handler, base, ready) = start_handler(app.path(), &args).await;
    let client = http();
    println!("azure: ready after {ready:?}");

    // The hub, created through the handler.
    let r = client
        .put(format!("{base}/v1/topics/{telemetry}"))
        .header("authorization", token_1h(&config, "manage", ""))
        .json(&serde_json::json!({ "partition_count": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // As configured (routePrefix "": the Event Hubs and HDInsight paths unchanged), and with
    // the host's default prefix `api`, which an operator may keep.
    let configured = host["extensions"]["http"]["routePrefix"].as_str().unwrap();
    let send = token_1h(&config, "send", &format!("{telemetry}/publishers/dev-1"));
    let listen = token_1h(&config, "listen", "");
    for (sent, prefix) in [configured, "api"].into_iter().enumerate() {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        let forward = |method: reqwest::Method, path: &str| {
            let mut req = client.request(method, format!("{base}{prefix}{path}"));
            for (k, v) in HOST_HEADERS {
                req = req.header(k, v);
            }
            req
        };
        let r = forward(reqwest::Method::GET, "/v1/status")
            .header("authorization", &listen)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{prefix}/v1/status");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["kafka"], "ok");

        let r = forward(
            reqwest::Method::POST,
            &format!("/{telemetry}/publishers/dev-1/messages"),
        )
        .header("authorization", &send)
        .header("sensor", "t1")
        .body(format!("event {sent}"))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201, "{prefix}: {}", r.text().await.unwrap());
        assert_eq!(
            latest_offsets(&broker.bootstrap(), telemetry).await,
            [sent as i64 + 1]
        );

        // Unknown routes answer in the JSON error shape, not the host's page.
        let r = forward(reqwest::Method::GET, "/v1/nothing-here")
            .header("authorization", &listen)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{prefix}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error_code"].is_number());
    }

    // The host's headers are HTTP machinery, not event properties; the client's are kept.
    let records = kafka_python_read(&broker.bootstrap(), telemetry).await;
    assert_eq!(records.len(), 2);
    for r in &records {
        let names: Vec<String> = r.headers().into_iter().map(|(k, _)| k).collect();
        assert!(names.contains(&"sensor".to_owned()), "{names:?}");
        for (h, _) in HOST_HEADERS {
            assert!(
                !names.contains(&h.to_owned()),
                "{h} became an event property: {names:?}"
            );
        }
    }
}

/// Starts `hubgate <args>` in `app` as the Functions host does and waits for any answer to
/// `GET /` (the host allows 60 s). Returns the process, its base URL and the time to ready.
async fn start_handler(app: &std::path::Path, args: &[String]) -> (Handler, String, Duration) {
    let port = free_port();
    let log = std::fs::File::create(app.join("handler.log")).unwrap();
    let child = Command::new(hubgate_bin())
        .args(args)
        .current_dir(app)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        // App settings become environment variables; the config file stands in for them.
        .env("HUBGATE_CONFIG", app.join("hubgate.toml"))
        .env("HUBGATE_LOG_FORMAT", "text")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let handler = Handler(child);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let client = http();
    while client.get(format!("{base}/")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no answer to GET / within 60 s: {}",
            std::fs::read_to_string(app.join("handler.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (handler, base, started.elapsed())
}

fn host_args() -> Vec<String> {
    host_json()["customHandler"]["description"]["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// With Kafka unreachable the handler still answers the readiness probe at once, not after
/// the Kafka timeout: the revocation list loads in the background (requests that need it
/// load it themselves and fail closed; see the reliability and bad-input tests).
#[tokio::test]
async fn azure_ready_while_kafka_is_down_ok() {
    let app = tempfile::tempdir().unwrap();
    let toml = test_config_toml(&format!("127.0.0.1:{}", free_port()), "")
        .replace("request_timeout_ms = 5000", "request_timeout_ms = 15000");
    std::fs::write(app.path().join("hubgate.toml"), &toml).unwrap();
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let (_handler, _base, ready) = start_handler(app.path(), &host_args()).await;
    let timeout = config.kafka.request_timeout;
    println!("azure: ready after {ready:?} with Kafka down (request timeout {timeout:?})");
    // Waiting for the warm-up took most of the timeout (3.7 s of 5 s, measured before the fix).
    assert!(ready < timeout / 3, "readiness waited for Kafka: {ready:?}");
}
