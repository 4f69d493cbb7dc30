//! End-to-end: hubgate reaches Apache Kafka without a password, with SASL/OAUTHBEARER tokens
//! that the broker validates itself (KIP-768: `OAuthBearerValidatorCallbackHandler` against
//! the test OpenID provider's JWKS, audience and issuer checked), from the
//! `client_credentials` and `azure_managed_identity` sources (refused: another audience, an
//! expired token, a wrong client secret); and MSK IAM tokens checked
//! against Amazon's reference signer (`aws-msk-iam-sasl-signer-python`) and botocore.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::time::{Duration, SystemTime};

use hubgate_tests::{
    ClusterSpec, HubgateProcess, KafkaCluster, Oidc, http, kafka_python_read, test_config_toml,
    token_1h, unique,
};
use serde_json::{Value, json};

/// The listener whose tokens the broker validates, and one that expects another audience.
const LISTENERS: &[(&str, &str)] = &[("OAUTH", "SASL_PLAINTEXT"), ("OTHERAUD", "SASL_PLAINTEXT")];

/// One node with OAUTHBEARER listeners validating `oidc`'s tokens (KIP-768), and `more`
/// `server.properties` lines.
fn oauth_cluster(oidc: &Oidc, more: &str) -> KafkaCluster {
    let (issuer, jwks) = (oidc.issuer(), format!("{}/jwks", oidc.issuer()));
    let handler =
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
    let login = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;";
    let mut properties = format!(
        "sasl.enabled.mechanisms=OAUTHBEARER\nsasl.oauthbearer.jwks.endpoint.url={jwks}\n\
         sasl.oauthbearer.expected.issuer={issuer}\n{more}\n"
    );
    for (listener, audience) in [("oauth", "api://hubgate"), ("otheraud", "api://other")] {
        properties.push_str(&format!(
            "listener.name.{listener}.sasl.enabled.mechanisms=OAUTHBEARER\n\
             listener.name.{listener}.oauthbearer.sasl.server.callback.handler.class={handler}\n\
             listener.name.{listener}.oauthbearer.sasl.jaas.config={login}\n\
             listener.name.{listener}.oauthbearer.sasl.oauthbearer.expected.audience={audience}\n"
        ));
    }
    let allowed = format!("-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks}");
    KafkaCluster::start_spec(ClusterSpec {
        nodes: 1,
        listeners: LISTENERS,
        properties: &properties,
        jvm_args: &[&allowed],
        ..ClusterSpec::default()
    })
}

/// hubgate's configuration for `bootstrap` with OAUTHBEARER tokens from `source` (TOML lines
/// of `[kafka.oauth]`).
fn config_toml(bootstrap: &str, source: &str) -> String {
    let toml = test_config_toml(bootstrap, "")
        .replace("[kafka]\n", "[kafka]\nsasl_mechanism = \"OAUTHBEARER\"\n");
    format!("{toml}\n[kafka.oauth]\n{source}\n")
}

/// Creates a hub through `hg`, sends to a publisher, produces and reads through `/v1`, reads
/// and checkpoints through a consumer group, revokes the publisher: every path that reaches
/// Kafka (the admin connection, rskafka's produce and fetch, both store topics).
async fn exercise(hg: &HubgateProcess, config_toml: &str, name: &str) -> String {
    let client = http();
    let config = hubgate_server::Config::from_toml(config_toml).unwrap();
    let hub = unique("oauth");
    let url = |p: &str| format!("{}{p}", hg.base);
    let manage = token_1h(&config, "manage", "");
    let r = client
        .put(url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "{name}: create: {}\n{}",
        r.text().await.unwrap(),
        hg.log()
    );
    let send = token_1h(&config, "send", &format!("{hub}/publishers/dev-1"));
    let r = client
        .post(url(&format!("/{hub}/publishers/dev-1/messages")))
        .header("authorization", &send)
        .body(format!("from {name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{name}: send: {}", r.text().await.unwrap());
    let r = client
        .post(url(&format!("/v1/producer/topics/{hub}")))
        .header("authorization", token_1h(&config, "send", ""))
        .json(&json!({"records": [{"value": "second"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "{name}: produce: {}",
        r.text().await.unwrap()
    );
    let listen = token_1h(&config, "listen", "");
    let r = client
        .get(url(&format!(
            "/v1/consumer/topics/{hub}/partitions/0/offsets/0?count=2"
        )))
        .header("authorization", &listen)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["records"][1]["value"], "second", "{name}: {body}");
    let group = format!("/{hub}/consumergroups/readers");
    let r = client
        .put(url(&group))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "{name}: group: {}",
        r.text().await.unwrap()
    );
    let r = client
        .get(url(&format!("{group}/partitions/0/messages?count=10")))
        .header("authorization", &listen)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "{name}: group read: {}",
        r.text().await.unwrap()
    );
    let r = client
        .put(url(&format!("{group}/partitions/0/checkpoint")))
        .header("authorization", &listen)
        .json(&json!({"offset": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "{name}: checkpoint: {}",
        r.text().await.unwrap()
    );
    let r = client
        .put(url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "{name}: revoke: {}",
        r.text().await.unwrap()
    );
    let r = client
        .post(url(&format!("/{hub}/publishers/dev-1/messages")))
        .header("authorization", &send)
        .body("after the revocation")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "{name}: revoked publisher");
    hub
}

/// A send through `hg` that Kafka must refuse: 503, nothing acknowledged; the log says why.
async fn refused(hg: &HubgateProcess, config_toml: &str, why: &str) {
    let config = hubgate_server::Config::from_toml(config_toml).unwrap();
    let r = http()
        .put(format!("{}/v1/topics/{}", hg.base, unique("refused")))
        .header("authorization", token_1h(&config, "manage", ""))
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "{why}: {}", r.text().await.unwrap());
    let log = hg.log();
    assert!(log.contains(why), "the log names the cause ({why}):\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_oauthbearer_client_credentials_ok() {
    let oidc = Oidc::start("broker-tenant", "broker-key");
    let cluster = oauth_cluster(&oidc, "");
    let token_url = format!("{}/token", oidc.issuer());
    let source = format!(
        "source = \"client_credentials\"\ntoken_url = \"{token_url}\"\nclient_id = \"member\"\n\
         client_secret = \"secret\"\n"
    );
    let toml = config_toml(&cluster.listener_bootstrap("OAUTH"), &source);
    let hg = HubgateProcess::start(&toml);
    let hub = exercise(&hg, &toml, "client_credentials").await;
    // An independent client on the broker's PLAINTEXT listener reads what hubgate wrote.
    let py = kafka_python_read(&cluster.bootstrap(), &hub).await;
    assert_eq!(py[0].value().unwrap(), b"from client_credentials");
    assert!(
        !hg.log().contains("\"secret\""),
        "the secret is never logged"
    );

    // Refusals, each a 503 with its cause in the log, never a hang.
    let wrong_audience = config_toml(&cluster.listener_bootstrap("OTHERAUD"), &source);
    let hg = HubgateProcess::start(&wrong_audience);
    refused(&hg, &wrong_audience, "Sasl handshake failed").await;
    let bad_secret = config_toml(
        &cluster.listener_bootstrap("OAUTH"),
        &source.replace(
            "client_secret = \"secret\"",
            "client_secret = \"wrong-secret\"",
        ),
    );
    let hg = HubgateProcess::start(&bad_secret);
    refused(&hg, &bad_secret, "invalid_client").await;
    assert!(
        !hg.log().contains("wrong-secret"),
        "the secret is never logged"
    );

    // The MSK IAM source, credentials from the default AWS chain (here the environment): it
    // signs and presents its token; a broker without MSK's validator refuses it (503).
    let msk = config_toml(
        &cluster.listener_bootstrap("OAUTH"),
        "source = \"aws_msk_iam\"\nregion = \"eu-west-1\"\n",
    );
    let aws_env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "AKIAHUBGATETEST"),
        ("AWS_SECRET_ACCESS_KEY", "a-test-secret-key"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let hg = HubgateProcess::start_with_env(&msk, &aws_env);
    refused(&hg, &msk, "Sasl handshake failed").await;
    let log = hg.log();
    assert!(
        log.contains("broker token fetched") && log.contains("aws_msk_iam"),
        "the MSK IAM token was signed from the environment's credentials:\n{log}"
    );
    assert!(
        !log.contains("a-test-secret-key"),
        "the secret key is never logged"
    );

    // A token endpoint that hands out tokens signed with the provider's own key: accepted
    // while valid, refused by the broker once expired (though the endpoint claims an hour).
    let now = hubgate_tests::now();
    for (exp, fine) in [(now + 600, true), (now - 120, false)] {
        let claims = json!({"iss": oidc.issuer(), "aud": "api://hubgate", "sub": "member",
                            "iat": now - 700, "exp": exp});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(oidc.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(&oidc.key_pem()).unwrap(),
        )
        .unwrap();
        let (url, _server) = token_endpoint(token).await;
        let source = format!(
            "source = \"client_credentials\"\ntoken_url = \"{url}\"\nclient_id = \"member\"\n\
             client_secret = \"secret\"\n"
        );
        let toml = config_toml(&cluster.listener_bootstrap("OAUTH"), &source);
        let hg = HubgateProcess::start(&toml);
        if fine {
            exercise(&hg, &toml, "a forged valid token").await;
        } else {
            refused(&hg, &toml, "Sasl handshake failed").await;
        }
    }
}

/// A token endpoint that answers every request with `token`, "valid for an hour".
async fn token_endpoint(token: String) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move || {
            let token = token.clone();
            async move {
                axum::Json(
                    json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, task)
}

/// With 30-second tokens and brokers that end a session after 10 s
/// (`connections.max.reauth.ms`; rskafka does not re-authenticate in place, so the broker
/// closes the connection and rskafka reconnects with the cache's current token), two minutes
/// of sends and reads fail no request, while the tokens are replaced several times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_oauthbearer_tokens_expire_under_load_ok() {
    let oidc = Oidc::start_with_ttl("reauth-tenant", "reauth-key", 30);
    let cluster = oauth_cluster(
        &oidc,
        "listener.name.oauth.oauthbearer.connections.max.reauth.ms=10000",
    );
    let source = format!(
        "source = \"client_credentials\"\ntoken_url = \"{}/token\"\nclient_id = \"member\"\n\
         client_secret = \"secret\"\n",
        oidc.issuer()
    );
    let toml = config_toml(&cluster.listener_bootstrap("OAUTH"), &source);
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let hg = HubgateProcess::start(&toml);
    let hub = unique("reauth");
    let client = http();
    let r = client
        .put(format!("{}/v1/topics/{hub}", hg.base))
        .header("authorization", token_1h(&config, "manage", ""))
        .json(&json!({"partition_count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let seconds = 120;
    let until = std::time::Instant::now() + Duration::from_secs(seconds);
    let senders: Vec<_> = (0..4)
        .map(|i| {
            let (client, base, hub) = (client.clone(), hg.base.clone(), hub.clone());
            let token = token_1h(&config, "send", &format!("{hub}/publishers/dev-{i}"));
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while std::time::Instant::now() < until {
                    let r = client
                        .post(format!("{base}/{hub}/publishers/dev-{i}/messages"))
                        .header("authorization", &token)
                        .body(format!("event {ok}"))
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 201 {
                        ok += 1;
                    } else {
                        failed.push(format!("{} {}", r.status(), r.text().await.unwrap()));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (ok, failed)
            })
        })
        .collect();
    let listen = token_1h(&config, "listen", "");
    let mut reads = 0;
    while std::time::Instant::now() < until {
        let r = client
            .get(format!("{}/v1/metadata/topics/{hub}/partitions/0", hg.base))
            .header("authorization", &listen)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "read {reads}: {}", r.text().await.unwrap());
        reads += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut sent = 0;
    for s in senders {
        let (ok, failed) = s.await.unwrap();
        assert!(failed.is_empty(), "failed sends: {failed:?}\n{}", hg.log());
        sent += ok;
    }
    let log = hg.log();
    let fetched = log.matches("broker token fetched").count();
    // Each session the broker ended is a new connection (rskafka logs each).
    let connections = log.matches("Establishing new connection").count();
    println!(
        "reauth: {sent} sends and {reads} reads in {seconds} s through {fetched} broker tokens of \
         30 s and {connections} connections, none failed"
    );
    assert!(fetched >= 4, "the tokens were replaced ({fetched} fetched)");
    assert!(
        connections >= 8,
        "the broker ended sessions every 10 s ({connections} connections)"
    );
    assert!(sent > 1000, "{sent} sends");
}

/// The App Service identity protocol (`GET $IDENTITY_ENDPOINT?resource=…&api-version=2019-08-01`
/// with `X-IDENTITY-HEADER`), handing out the test provider's tokens.
async fn identity_endpoint(
    oidc_token_url: String,
    header: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/msi/token",
        axum::routing::get(
            move |headers: HeaderMap,
                  Query(q): Query<std::collections::HashMap<String, String>>| {
                let token_url = oidc_token_url.clone();
                async move {
                    if headers
                        .get("x-identity-header")
                        .and_then(|v| v.to_str().ok())
                        != Some(header)
                        || q.get("api-version").map(String::as_str) != Some("2019-08-01")
                        || q.get("resource").map(String::as_str)
                            != Some("https://ns.servicebus.windows.net")
                    {
                        return Err(StatusCode::UNAUTHORIZED);
                    }
                    let v: Value = http()
                        .post(token_url)
                        .basic_auth("member", Some("secret"))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let expires_on = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        + v["expires_in"].as_u64().unwrap();
                    Ok(axum::Json(json!({
                        "access_token": v["access_token"],
                        "expires_on": expires_on.to_string(),
                        "resource": q["resource"],
                        "token_type": "Bearer",
                    })))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/msi/token", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_oauthbearer_azure_managed_identity_ok() {
    let oidc = Oidc::start("identity-tenant", "identity-key");
    let cluster = oauth_cluster(&oidc, "");
    let (endpoint, _server) =
        identity_endpoint(format!("{}/token", oidc.issuer()), "the-header").await;
    let source =
        "source = \"azure_managed_identity\"\nresource = \"https://ns.servicebus.windows.net\"\n";
    let toml = config_toml(&cluster.listener_bootstrap("OAUTH"), source);
    let env = |header: &str| {
        vec![
            ("IDENTITY_ENDPOINT".to_owned(), endpoint.clone()),
            ("IDENTITY_HEADER".to_owned(), header.to_owned()),
        ]
    };
    let hg = HubgateProcess::start_with_env(&toml, &env("the-header"));
    exercise(&hg, &toml, "azure_managed_identity").await;
    let hg = HubgateProcess::start_with_env(&toml, &env("a-wrong-header"));
    refused(&hg, &toml, "401 Unauthorized").await;
    assert!(
        !hg.log().contains("a-wrong-header"),
        "the header is never logged"
    );
}

/// Runs tests/py/msk_token.py on a token hubgate signed for `region` at `at` with fixed
/// credentials; its JSON.
async fn against_reference(region: &str, at: SystemTime) -> Value {
    let (key, secret, session) = (
        "AKIAHUBGATETEST",
        "c2VjcmV0L2tleStmb3IvdGVzdHM=",
        "FwoGZXIvYXdzEPT//session+token/==",
    );
    let credentials =
        aws_credential_types::Credentials::new(key, secret, Some(session.into()), None, "test");
    let token = hubgate_server::broker_tokens::MskIam::sign(region, credentials, at).unwrap();
    let python = std::env::var("HUBGATE_PYTHON").expect("HUBGATE_PYTHON (scripts/test sets it)");
    let out = tokio::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/msk_token.py"))
        .args(["eu-west-1", &token])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", session)
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seconds between the two tokens' `X-Amz-Date`s.
fn date_gap(v: &Value) -> i64 {
    let at = |k: &str| {
        chrono::NaiveDateTime::parse_from_str(v[k].as_str().unwrap(), "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc()
            .timestamp()
    };
    (at("hubgate_date") - at("reference_date")).abs()
}

#[tokio::test]
async fn broker_msk_iam_token_matches_amazons_reference_signer_ok() {
    let v = against_reference("eu-west-1", SystemTime::now()).await;
    assert_eq!(v["hubgate"], v["reference"], "{v}");
    assert_eq!(v["hubgate"]["action"], "kafka-cluster:Connect");
    assert_eq!(v["hubgate"]["host"], "kafka.eu-west-1.amazonaws.com");
    assert_eq!(v["hubgate"]["expires"], "900");
    assert_eq!(
        v["hubgate"]["session_token"],
        "FwoGZXIvYXdzEPT//session+token/=="
    );
    assert!(date_gap(&v) <= 60, "{v}");
    assert_eq!(
        v["signature_recomputed"], true,
        "botocore computes hubgate's signature: {v}"
    );
}

#[tokio::test]
async fn broker_msk_iam_token_other_region_or_clock_fails() {
    // What the comparison above would catch: a token for another region…
    let v = against_reference("us-east-1", SystemTime::now()).await;
    assert_ne!(v["hubgate"]["host"], v["reference"]["host"], "{v}");
    assert_ne!(v["hubgate"]["scope"], v["reference"]["scope"], "{v}");
    assert_eq!(v["signature_recomputed"], false, "{v}");
    // …or signed by a clock an hour off.
    let v = against_reference("eu-west-1", SystemTime::now() - Duration::from_secs(3600)).await;
    assert!(date_gap(&v) > 60, "{v}");
    // botocore, run at hubgate's own date, still agrees with the signature itself.
    assert_eq!(v["signature_recomputed"], true, "{v}");
}
