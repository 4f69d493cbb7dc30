//! Structured logs: one JSON line per request with request id, route, principal, status and
//! latency, and no key, signature, SAS token or JWT anywhere in them, at debug level.
#![allow(clippy::unwrap_used)]

use hubgate_server::Config;
use hubgate_tests::{HubgateProcess, SharedKafka, http, test_config_toml, token_1h, unique};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_structured_and_free_of_secrets_ok() {
    let hub = &unique("hub");
    let broker = SharedKafka::get();
    let toml = test_config_toml(&broker.bootstrap(), "");
    let config = Config::from_toml(&toml).unwrap();
    let env = [
        ("HUBGATE_LOG_FORMAT".to_owned(), "json".to_owned()),
        ("RUST_LOG".to_owned(), "debug".to_owned()),
    ];
    let hg = HubgateProcess::start_with_env(&toml, &env);
    let client = http();
    let manage = token_1h(&config, "manage", "");
    let device = token_1h(&config, "send", &format!("{hub}/publishers/dev-1"));
    let sig = |t: &str| {
        t.split("sig=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    let forged = device.replace(
        &sig(&device),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D",
    );
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQtc2hvdWxkLW5vdC1iZS1sb2dnZWQ";

    let r = client
        .put(hg.url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut secrets = vec![
        manage.clone(),
        sig(&manage),
        device.clone(),
        sig(&device),
        jwt.to_owned(),
    ];
    for (auth, want) in [
        (&device, 201),
        (&forged, 401),
        (&format!("Bearer {jwt}"), 401),
    ] {
        let r = client
            .post(hg.url(&format!("/{hub}/publishers/dev-1/messages")))
            .header("authorization", auth)
            .header("idempotency-key", "log-test")
            .body("e")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }
    let minted: Value = client
        .post(hg.url("/v1/tokens"))
        .header("authorization", &manage)
        .json(&json!({"hub": hub, "publisher": "dev-2", "ttl_secs": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let minted = minted["token"].as_str().unwrap().to_owned();
    secrets.push(sig(&minted));
    secrets.push(minted);
    for rule in &config.rules {
        secrets.push(rule.primary_key.expose().to_owned());
    }
    // Let the last lines reach the file.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let log = hg.log();
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret is in the log: {s}");
    }
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let done = lines
        .iter()
        .find(|l| {
            l["status"] == 201
                && l["spans"][0]["path"] == format!("/{hub}/publishers/dev-1/messages")
        })
        .unwrap_or_else(|| panic!("no line for the send: {log}"));
    let span = &done["spans"][0];
    assert_eq!(
        span["principal"],
        format!("sas:send@{hub}/publishers/dev-1")
    );
    assert_eq!(span["route"], "/{hub}/publishers/{publisher}/messages");
    assert_eq!(span["method"], "POST");
    assert!(span["request_id"].as_str().is_some_and(|id| id.len() >= 32));
    assert!(done["latency"].is_string());
    let refused = lines.iter().filter(|l| l["status"] == 401).count();
    assert!(refused >= 2, "the refusals are logged too");
    println!(
        "logs: {} JSON lines at debug level, {} secrets checked, none present",
        lines.len(),
        secrets.len()
    );
}
