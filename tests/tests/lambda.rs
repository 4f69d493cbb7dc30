//! The functions as AWS Lambda runs them, locally: every binary under `cargo lambda watch`
//! (the Lambda runtime API emulator), called over its function-URL endpoint, then
//! `cargo lambda invoke --data-file` with API Gateway v2 HTTP events and the REQUEST
//! authorizer event (`tests/fixtures/aws-lambda-events/`, fields overridden per call), and a
//! direct invocation of the token issuer. Real broker; cargo-lambda from `scripts/test`
//! (`HUBGATE_CARGO_LAMBDA`, PyPI `cargo-lambda`).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubgate_tests::{SharedKafka, free_port, latest_offsets, test_config_toml, token_1h, unique};
use serde_json::{Value, json};

/// `cargo-lambda` (its directory also holds the zig it links with).
fn cargo_lambda() -> PathBuf {
    let p = std::env::var_os("HUBGATE_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "HUBGATE_CARGO_LAMBDA is not set: the Lambda smoke test needs cargo-lambda \
             (scripts/test installs it in target/py-infra; or `pip install cargo-lambda`)"
            )
        });
    assert!(p.exists(), "{} does not exist", p.display());
    p
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/fixtures/aws-lambda-events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `cargo lambda watch`, killed (with the functions it started) when dropped.
struct Watch {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// Every process below `pid` (watch runs each function through `cargo run`).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((child, ppid))
        })
        .collect();
    let mut found = vec![];
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for &(child, _) in parents.iter().filter(|(_, parent)| *parent == p) {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The functions it started, then watch itself.
        for pid in descendants(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    /// The functions read `config_toml` (kept in the watch's directory); `extra_env`: more
    /// `NAME=value` pairs for them, comma-separated (or empty).
    fn start(config_toml: &str, extra_env: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hubgate.toml");
        std::fs::write(&config, config_toml).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("watch.log")).unwrap();
        let bin = cargo_lambda();
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(&bin)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .arg("--env-var")
            .arg(format!(
                "HUBGATE_CONFIG={},HUBGATE_LOG_FORMAT=text{}{extra_env}",
                config.display(),
                if extra_env.is_empty() { "" } else { "," }
            ))
            .current_dir(repo())
            .env("PATH", path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let w = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(300);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "watch not listening: {}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        w
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("watch.log")).unwrap_or_default()
    }

    fn url(&self, function: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{function}{path}", self.port)
    }

    /// `cargo lambda invoke <function> --data-file <event>`: the function's JSON answer.
    fn invoke(&self, function: &str, event: &Value) -> Value {
        let file = self.dir.path().join(format!("{function}-event.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .arg(function)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "invoke {function}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// An API Gateway v2 HTTP event (payload 2.0) for `method path` with `authorization`.
fn http_event(method: &str, path: &str, authorization: &str, body: Option<&str>) -> Value {
    let mut e = fixture("example-apigw-v2-request-no-authorizer.json");
    e["rawPath"] = json!(path);
    e["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["headers"]["authorization"] = json!(authorization);
    if let Some(b) = body {
        e["body"] = json!(b);
        e["headers"]["content-type"] = json!("application/json");
        e["headers"]["content-length"] = json!(b.len().to_string());
    }
    e
}

/// The REQUEST authorizer event (payload 2.0) for `method path` with `authorization`.
fn authorizer_event(method: &str, path: &str, authorization: &str) -> Value {
    let mut e = fixture("example-apigw-v2-custom-authorizer-v2-request.json");
    e["rawPath"] = json!(path);
    e["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["headers"] = json!({ "authorization": authorization });
    e["identitySource"] = json!([authorization, method, path]);
    e
}

/// `cargo lambda watch` with the shared cluster's configuration plus `extra_toml`, the
/// functions' `extra_env`; the configuration, and a client patient enough for the first call
/// (it waits for watch to build and start the function).
async fn watch_with(
    extra_toml: &str,
    extra_env: &'static str,
) -> (Watch, hubgate_server::Config, reqwest::Client) {
    let broker = SharedKafka::get();
    let toml = test_config_toml(&broker.bootstrap(), extra_toml);
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let watch = tokio::task::spawn_blocking(move || Watch::start(&toml, extra_env))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    (watch, config, client)
}

#[tokio::test]
async fn lambda_functions_under_cargo_lambda_ok() {
    let telemetry = &unique("telemetry");
    let started = Instant::now();
    // Metrics on: on Lambda they are CloudWatch EMF lines, one per invocation.
    let (watch, config, client) = watch_with(
        "[authorizer]\nhttp_endpoint = true\n[metrics]\nenabled = true\nemf_namespace = \"hubgate-test\"\n",
        "",
    )
    .await;
    let manage = token_1h(&config, "manage", "");
    let listen = token_1h(&config, "listen", "");

    // Over HTTP (the function-URL endpoint): each binary answers its own routes.
    let r = client
        .get(watch.url("kafka-proxy", "/v1/status"))
        .header("authorization", &listen)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", watch.log());
    assert_eq!(r.json::<Value>().await.unwrap()["kafka"], "ok");
    println!("lambda: first answer {:?} after start", started.elapsed());
    let r = client
        .put(watch.url("kafka-proxy", &format!("/v1/topics/{telemetry}")))
        .header("authorization", &manage)
        .json(&json!({ "partition_count": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = client
        .post(watch.url("token-issuer", "/v1/tokens"))
        .header("authorization", &manage)
        .json(&json!({ "hub": telemetry, "publisher": "dev-1", "ttl_secs": 600 }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}\n{}", watch.log());
    let device = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .post(watch.url(
            "kafka-proxy",
            &format!("/{telemetry}/publishers/dev-1/messages"),
        ))
        .header("authorization", &device)
        .body("over the function URL")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = client
        .post(watch.url("authorizer", "/v1/authorize"))
        .json(
            &json!({ "method": "POST", "path": &format!("/{telemetry}/publishers/dev-1/messages"),
                       "authorization": device }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", watch.log());
    let decision = r.json::<Value>().await.unwrap();
    assert_eq!(decision["isAuthorized"], true, "{decision}");

    // `cargo lambda invoke` with API Gateway v2 events.
    let answer = watch.invoke(
        "kafka-proxy",
        &http_event(
            "POST",
            &format!("/{telemetry}/publishers/dev-1/messages"),
            &device,
            Some("by invoke"),
        ),
    );
    assert_eq!(answer["statusCode"], 201, "{answer}");
    assert_eq!(
        latest_offsets(&SharedKafka::get().bootstrap(), telemetry).await,
        [2]
    );
    let answer = watch.invoke(
        "kafka-proxy",
        &http_event(
            "POST",
            &format!("/{telemetry}/publishers/dev-2/messages"),
            &device,
            Some("as dev-2"),
        ),
    );
    assert_eq!(
        answer["statusCode"], 401,
        "dev-1's token as dev-2: {answer}"
    );
    let body = json!({ "hub": telemetry, "rights": ["Listen"], "ttl_secs": 60 }).to_string();
    let answer = watch.invoke(
        "token-issuer",
        &http_event("POST", "/v1/tokens", &manage, Some(&body)),
    );
    assert_eq!(answer["statusCode"], 200, "{answer}");

    // The authorizer event: allowed for the device's own publisher, denied for another.
    let allow = watch.invoke(
        "authorizer",
        &authorizer_event(
            "POST",
            &format!("/{telemetry}/publishers/dev-1/messages"),
            &device,
        ),
    );
    assert_eq!(allow["isAuthorized"], true, "{allow}");
    assert_eq!(allow["context"]["publisher"], "dev-1", "{allow}");
    let deny = watch.invoke(
        "authorizer",
        &authorizer_event(
            "POST",
            &format!("/{telemetry}/publishers/dev-2/messages"),
            &device,
        ),
    );
    assert_eq!(deny["isAuthorized"], false, "{deny}");

    // A direct invocation of the token issuer (a provisioning pipeline).
    let minted = watch.invoke(
        "token-issuer",
        &json!({ "action": "mint", "hub": telemetry, "publisher": "dev-9", "ttl_secs": 60 }),
    );
    assert!(
        minted["token"]
            .as_str()
            .unwrap()
            .starts_with("SharedAccessSignature "),
        "{minted}"
    );
    assert_eq!(
        latest_offsets(&SharedKafka::get().bootstrap(), telemetry).await,
        [2]
    );

    // The EMF lines: one per HTTP invocation, with the route, status and Kafka figures.
    let log = watch.log();
    let emf: Vec<Value> = log
        .lines()
        .filter(|l| l.contains("\"_aws\":"))
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let sent: Vec<&Value> = emf
        .iter()
        .filter(|e| e["Route"] == "SendAsPublisher" && e["Status"] == "2xx")
        .collect();
    assert_eq!(sent.len(), 2, "two sends answered 201: {emf:?}\n{log}");
    for e in &sent {
        assert_eq!(
            e["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "hubgate-test"
        );
        assert_eq!(e["Requests"], 1);
        assert_eq!(e["KafkaProduceRequests"], 1, "{e}");
        assert!(e["Duration"].as_f64().unwrap() > 0.0);
    }
    let refused = emf
        .iter()
        .find(|e| e["Route"] == "SendAsPublisher" && e["Status"] == "4xx")
        .unwrap_or_else(|| panic!("the 401: {emf:?}"));
    assert_eq!(refused["CredentialFailures"], 1);
    assert_eq!(refused["CredentialFailureReason"], "invalid_audience");
}

/// An event stream through the function URL of a response-streaming function
/// (`HUBGATE_LAMBDA_RESPONSE_STREAMING`, as `infra/aws/streams.tf` deploys it): the events
/// arrive as `text/event-stream`, and the stream ends by itself (here after
/// `streams.max_duration_secs`; on AWS before the invocation's deadline).
#[tokio::test]
async fn lambda_event_stream_with_response_streaming_ok() {
    let hub = &unique("live");
    let (watch, config, client) = watch_with(
        "[streams]\nmax_duration_secs = 2\n",
        "HUBGATE_LAMBDA_RESPONSE_STREAMING=true",
    )
    .await;
    let manage = token_1h(&config, "manage", "");
    // Every answer of a streaming function is streamed, the plain ones too.
    let r = client
        .put(watch.url("kafka-proxy", &format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({ "partition_count": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "{}\n{}",
        r.text().await.unwrap(),
        watch.log()
    );
    for body in ["e0", "e1"] {
        let r = client
            .post(watch.url("kafka-proxy", &format!("/{hub}/messages")))
            .header("authorization", &manage)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let started = Instant::now();
    let r = client
        .get(watch.url(
            "kafka-proxy",
            &format!("/{hub}/consumergroups/$Default/partitions/0/stream?offset=0"),
        ))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", watch.log());
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("retry: 1000\n"), "{text}");
    for want in ["id: 0\n", "id: 1\n", "\"body\":\"e0\"", "\"body\":\"e1\""] {
        assert!(text.contains(want), "{want} in {text}\n{}", watch.log());
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the stream stayed open until max_duration_secs"
    );
}
