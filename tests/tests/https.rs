//! End-to-end: `hubgate serve` with `[tls]` and `[tls.client_auth]` on the real broker, driven
//! by real clients: curl over HTTP/2 and HTTP/1.1, Python httpx with h2, openssl s_client
//! (protocol versions, ALPN), and device certificates (a test CA from rcgen) sending as their
//! publisher, refused elsewhere, locked out by a revocation made through a second instance.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hubgate_server::routes;
use hubgate_tests::pki::TestCa;
use hubgate_tests::{HubgateProcess, SharedKafka, test_config_toml, token_1h, unique};

/// `curl` with `args`; its `-w` output.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test checks)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl s_client` against `port` with `args`; stdout and stderr.
fn s_client(port: u16, ca: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-CAfile"])
        .arg(ca)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed (scripts/test checks)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One request of [`every_route`]: what to send and the status it must get.
struct Call {
    method: &'static str,
    path: String,
    body: Option<String>,
    status: i64,
}

/// A request for every route of the table (the Manage token can make them all), in an order
/// that makes each succeed on a fresh `topic`; checked to cover the table.
fn every_route(topic: &str, manage: &str) -> Vec<Call> {
    let group = format!("/{topic}/consumergroups/g1");
    let call = |method, path: String, body: Option<String>, status| Call {
        method,
        path,
        body,
        status,
    };
    let calls =
        vec![
        call("GET", "/openapi.json".into(), None, 200),
        call("GET", "/v1/status".into(), None, 200),
        call("GET", "/v1/metadata/brokers".into(), None, 200),
        call(
            "PUT",
            format!("/v1/topics/{topic}"),
            Some(r#"{"partition_count":1}"#.into()),
            201,
        ),
        call("GET", "/v1/metadata/topics".into(), None, 200),
        call(
            "GET",
            format!("/v1/metadata/topics/{topic}/partitions"),
            None,
            200,
        ),
        call(
            "GET",
            format!("/v1/metadata/topics/{topic}/partitions/0"),
            None,
            200,
        ),
        call(
            "POST",
            format!("/v1/producer/topics/{topic}"),
            Some(r#"{"records":[{"value":"v"}]}"#.into()),
            200,
        ),
        call(
            "GET",
            format!("/v1/consumer/topics/{topic}/partitions/0/offsets/0"),
            None,
            200,
        ),
        call("POST", format!("/{topic}/messages"), Some("{}".into()), 201),
        call(
            "POST",
            format!("/{topic}/partitions/0/messages"),
            Some("{}".into()),
            201,
        ),
        call(
            "POST",
            format!("/{topic}/publishers/dev-9/messages"),
            Some("{}".into()),
            201,
        ),
        call(
            "POST",
            format!("/{topic}/publisher/dev-9/messages"),
            Some("{}".into()),
            201,
        ),
        call(
            "PUT",
            format!("/{topic}/revokedpublishers/dev-8"),
            None,
            201,
        ),
        call("GET", format!("/{topic}/revokedpublishers"), None, 200),
        call(
            "DELETE",
            format!("/{topic}/revokedpublishers/dev-8"),
            None,
            200,
        ),
        call("PUT", group.clone(), None, 201),
        call("GET", format!("/{topic}/consumergroups"), None, 200),
        call("GET", group.clone(), None, 200),
        call("GET", format!("{group}/partitions"), None, 200),
        call("GET", format!("{group}/partitions/0"), None, 200),
        call(
            "GET",
            format!("{group}/partitions/0/messages?count=10"),
            None,
            200,
        ),
        call(
            "PUT",
            format!("{group}/partitions/0/checkpoint"),
            Some(r#"{"offset":1}"#.into()),
            200,
        ),
        call("GET", format!("{group}/partitions/0/checkpoint"), None, 200),
        // Event streams: closed after a second here (streams.max_duration_secs).
        call("GET", format!("{group}/partitions/0/stream?offset=0"), None, 200),
        call("GET", format!("{group}/stream"), None, 200),
        call("DELETE", group.clone(), None, 200),
        call("GET", "/v1/audit".into(), None, 200),
        call(
            "POST",
            "/v1/tokens".into(),
            Some(
                serde_json::json!({"hub": topic, "publisher": "dev-9", "ttl_secs": 60}).to_string(),
            ),
            200,
        ),
        call(
            "POST",
            "/v1/authorize".into(),
            Some(
                serde_json::json!({"authorization": manage, "method": "GET", "path": "/v1/status"})
                    .to_string(),
            ),
            200,
        ),
    ];
    let covered: std::collections::BTreeSet<_> = calls
        .iter()
        .map(|c| {
            let path = c.path.split('?').next().unwrap();
            match routes::lookup(c.method, path) {
                routes::Lookup::Found(route, _) => route.id,
                _ => panic!("{} {path} is no route", c.method),
            }
        })
        .collect();
    let table: std::collections::BTreeSet<_> = routes::ROUTES.iter().map(|r| r.id).collect();
    assert_eq!(covered, table, "every route of the table, once");
    calls
}

/// Runs `tests/py/https_client.py` (httpx) with `spec`; its answers.
fn httpx(spec: &serde_json::Value) -> Vec<serde_json::Value> {
    let python = std::env::var("HUBGATE_PYTHON").expect("HUBGATE_PYTHON (scripts/test sets it)");
    let mut child = Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/https_client.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn https_http2_http1_and_device_certificates_ok() {
    let hub = unique("tlshub");
    let dir = tempfile::tempdir().unwrap();
    let (ca, devices, foreign) = (
        TestCa::new("server CA"),
        TestCa::new("devices"),
        TestCa::new("other"),
    );
    let (cert_file, key_file) = ca.server().write(dir.path(), "server");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let devices_file = dir.path().join("devices.pem");
    std::fs::write(&devices_file, devices.pem()).unwrap();

    let broker = SharedKafka::get();
    let base = test_config_toml(
        &broker.bootstrap(),
        &format!(
            "revocation_refresh_ms = 500\n[streams]\nmax_duration_secs = 1\n\
             [audit]\nkey = 'aHR0cHMtdGVzdC1hdWRpdC1rZXktb2YtMzItYnl0ZXMhIQ=='\ntopic = '{}'",
            unique("audit")
        ),
    );
    let config = hubgate_server::Config::from_toml(&base).unwrap();
    let tls = format!(
        r#"
        [authorizer]
        http_endpoint = true
        [tls]
        cert_file = {cert_file:?}
        key_file = {key_file:?}
        hsts_max_age_secs = 600
        [tls.client_auth]
        ca_file = {devices_file:?}
        [[tls.client_auth.map]]
        hub = "{hub}"
        field = "subject_cn"
        [[tls.client_auth.map]]
        hub = "{hub}"
        field = "san_dns"
        identity = "svc.backend.example"
        rights = ["Listen"]
        "#
    );
    let server = HubgateProcess::start(&format!("{base}\n{tls}"));
    // A second instance on the same Kafka stores, plain HTTP.
    let other = HubgateProcess::start(&base);
    let manage = token_1h(&config, "manage", "");
    let port = server.port();
    let ca_path = ca_file.to_str().unwrap();
    let auth = format!("Authorization: {manage}");

    // curl: HTTP/2 by ALPN and HTTP/1.1, the HSTS header; a topic to send to.
    assert_eq!(
        curl(&[
            "--cacert",
            ca_path,
            "--http2",
            "-X",
            "PUT",
            "-H",
            &auth,
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"partition_count":1}"#,
            &server.https_url(&format!("/v1/topics/{hub}")),
        ]),
        "2 201"
    );
    for (flag, want) in [("--http2", "2 201"), ("--http1.1", "1.1 201")] {
        let url = server.https_url(&format!("/{hub}/messages"));
        let got = curl(&[
            "--cacert", ca_path, flag, "-X", "POST", "-H", &auth, "-d", "e", &url,
        ]);
        assert_eq!(got, want, "{flag}");
    }
    let headers = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert", ca_path])
        .args(["-H", &auth, &server.https_url("/v1/status")])
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&headers.stdout).to_ascii_lowercase();
    assert!(
        headers.contains("strict-transport-security: max-age=600"),
        "{headers}"
    );

    // httpx over HTTP/2 (one connection, many streams) and HTTP/1.1: every route of the table.
    for http2 in [true, false] {
        let topic = format!("{hub}{}", if http2 { "-h2" } else { "-h1" });
        let calls = every_route(&topic, &manage);
        let requests: Vec<serde_json::Value> = calls
            .iter()
            .map(|c| {
                let mut headers = serde_json::json!({"content-type": "application/json"});
                if c.path != "/openapi.json" {
                    headers["authorization"] = manage.clone().into();
                }
                serde_json::json!({"method": c.method, "path": c.path, "headers": headers, "body": c.body})
            })
            .collect();
        let spec = serde_json::json!({
            "base": format!("https://localhost:{port}"), "ca": ca_path, "http2": http2,
            "requests": requests,
        });
        let answers = httpx(&spec);
        let version = if http2 { "HTTP/2" } else { "HTTP/1.1" };
        for (call, answer) in calls.iter().zip(&answers) {
            assert_eq!(
                (
                    answer["status"].as_i64().unwrap(),
                    answer["http_version"].as_str().unwrap()
                ),
                (call.status, version),
                "{} {}: {answer}",
                call.method,
                call.path
            );
        }
        assert_eq!(answers.len(), calls.len());
    }

    // A refusal answered before the request body was read reaches an HTTP/2 client: curl
    // 7.88 loses the answer (exit 92, no status) if the stream is reset before its upload.
    let (cert, key) = devices
        .client(Some("dev-1"), &[], false)
        .write(dir.path(), "dev-1");
    let wrong = server.https_url(&format!("/{hub}/publishers/dev-2/messages"));
    for _ in 0..20 {
        let got = curl(&[
            "--cacert",
            ca_path,
            "--http2",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-X",
            "POST",
            "-d",
            "spoofed",
            &wrong,
        ]);
        assert_eq!(got, "2 401");
    }

    // openssl: TLS 1.3 and 1.2 with ALPN h2 and a verified chain; TLS 1.1 refused.
    for (version, want) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let out = s_client(port, &ca_file, &[version, "-alpn", "h2"]);
        assert!(
            out.contains(&format!("New, {want}, Cipher is"))
                && out.contains("ALPN protocol: h2")
                && out.contains("Verify return code: 0 (ok)"),
            "{version}: {out}"
        );
    }
    let old = s_client(
        port,
        &ca_file,
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    );
    assert!(
        old.contains("Cipher is (NONE)"),
        "TLS 1.1 must be refused: {old}"
    );

    // Device certificates.
    let client_with = |pem: &hubgate_tests::pki::Pem| {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .identity(pem.identity())
            .build()
            .unwrap()
    };
    let send = |client: reqwest::Client, path: String| async move {
        client.post(path).body("event").send().await
    };
    let device = client_with(&devices.client(Some("Dev-1"), &[], false));
    let own = server.https_url(&format!("/{hub}/publishers/dev-1/messages"));
    assert_eq!(
        send(device.clone(), own.clone()).await.unwrap().status(),
        201
    );
    for path in [
        format!("/{hub}/publishers/dev-2/messages"),
        format!("/{hub}/messages"),
    ] {
        let r = send(device.clone(), server.https_url(&path)).await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let service = client_with(&devices.client(None, &["svc.backend.example"], false));
    let read = server.https_url(&format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0"));
    assert_eq!(service.get(&read).send().await.unwrap().status(), 200);
    let r = send(service, server.https_url(&format!("/{hub}/messages")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "Listen only");
    let unmapped = client_with(&devices.client(None, &["other.example"], false));
    let r = send(unmapped, own.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("UnmappedCertificate"));
    for refused in [
        devices.client(Some("dev-1"), &[], true),
        foreign.client(Some("dev-1"), &[], false),
    ] {
        assert!(
            send(client_with(&refused), own.clone()).await.is_err(),
            "expired or foreign-CA certificates fail the handshake"
        );
    }

    // Revoked through the other instance: the certificate is locked out here.
    let r = reqwest::Client::new()
        .put(other.url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let start = Instant::now();
    loop {
        let status = send(device.clone(), own.clone()).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 201);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still sending after a revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn https_certificate_rotation_on_sighup_during_sends_ok() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("rotation CA");
    let (cert_file, key_file) = ca.server().write(dir.path(), "server");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let broker = SharedKafka::get();
    let base = test_config_toml(&broker.bootstrap(), "");
    let config = hubgate_server::Config::from_toml(&base).unwrap();
    let tls = format!(
        "[tls]\ncert_file = {cert_file:?}\nkey_file = {key_file:?}\nreload_check_ms = 600000\n"
    );
    let server = HubgateProcess::start(&format!("{base}\n{tls}"));
    let manage = token_1h(&config, "manage", "");
    let hub = unique("rot");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = client
        .put(server.https_url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let fingerprint = || {
        let out = s_client(server.port(), &ca_file, &[]);
        let begin = out.find("-----BEGIN CERTIFICATE-----").unwrap();
        let end = out.find("-----END CERTIFICATE-----").unwrap();
        out[begin..end].split_whitespace().collect::<String>()
    };
    let pem_body = |pem: &str| {
        let end = pem.find("-----END CERTIFICATE-----").unwrap();
        pem[..end].split_whitespace().collect::<String>()
    };
    let first = fingerprint();

    // Four senders on kept-alive connections and one that connects anew for every request.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for fresh in [false, false, false, false, true] {
        let (client, stop, url, manage, ca_pem) = (
            client.clone(),
            stop.clone(),
            server.https_url(&format!("/{hub}/messages")),
            manage.clone(),
            ca.pem(),
        );
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let c = if fresh {
                    reqwest::Client::builder()
                        .add_root_certificate(
                            reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap(),
                        )
                        .build()
                        .unwrap()
                } else {
                    client.clone()
                };
                let r = c
                    .post(&url)
                    .header("authorization", &manage)
                    .body("e")
                    .send()
                    .await;
                assert_eq!(
                    r.map(|r| r.status().as_u16()).map_err(|e| e.to_string()),
                    Ok(201)
                );
                sent += 1;
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = ca.server();
    next.write(dir.path(), "server");
    server.hangup();
    let start = Instant::now();
    while fingerprint() == first {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fingerprint(),
        pem_body(&next.cert),
        "new connections get the new one"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for s in senders {
        total += s.await.unwrap();
    }
    assert!(total > 10, "{total} sends");
    assert!(
        server.log().contains("TLS certificate reloaded"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn h2c_prior_knowledge_only_when_configured_ok() {
    let broker = SharedKafka::get();
    let base = test_config_toml(&broker.bootstrap(), "");
    let config = hubgate_server::Config::from_toml(&base).unwrap();
    let auth = format!("Authorization: {}", token_1h(&config, "manage", ""));
    let h2c = HubgateProcess::start(&format!("{base}\n[server]\nh2c = true\n"));
    let plain = HubgateProcess::start(&base);
    for (flag, want) in [
        ("--http2-prior-knowledge", "2 200"),
        ("--http1.1", "1.1 200"),
    ] {
        assert_eq!(
            curl(&[flag, "-H", &auth, &h2c.url("/v1/status")]),
            want,
            "{flag}"
        );
    }
    // Without server.h2c the HTTP/2 preface is not HTTP/1.1: no answer.
    let got = curl(&[
        "--http2-prior-knowledge",
        "-H",
        &auth,
        &plain.url("/v1/status"),
    ]);
    assert!(!got.starts_with("2 "), "{got}");
    assert_eq!(curl(&["-H", &auth, &plain.url("/v1/status")]), "1.1 200");
}
