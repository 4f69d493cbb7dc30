//! End-to-end: schemathesis (PyPI) generates requests from `GET /openapi.json` and sends them
//! to the live all-in-one server (the `hubgate` binary) on the real broker: no 5xx, every
//! status, content type, header and body as the document says, schema-violating requests
//! refused, credentials enforced.
//!
//! One check is left out: `positive_data_acceptance` (every schema-valid request must
//! succeed). Validity here goes beyond what a schema can say: a checkpoint must lie within the
//! partition's current end, a mint names a publisher or a consumer group but not both, and
//! JSON Schema counts `1.0` as an integer where hubgate, like serde, wants `1`.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::process::Command;

use hubgate_tests::{HubgateProcess, SharedKafka, http, test_config_toml, token_1h, unique};
use serde_json::json;

#[tokio::test]
async fn openapi_schemathesis_live_server_ok() {
    let hub = &unique("hub");
    let schemathesis = std::env::var("HUBGATE_SCHEMATHESIS").expect(
        "HUBGATE_SCHEMATHESIS is not set: run the tests with scripts/test (it installs schemathesis)",
    );
    let broker = SharedKafka::get();
    // Event streams close after a second, so that each answer has an end to check.
    let toml = test_config_toml(&broker.bootstrap(), "[streams]\nmax_duration_secs = 1");
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let server = HubgateProcess::start(&toml);
    let manage = token_1h(&config, "manage", "");
    let client = http();

    // What the document's examples name: hub hub with events, group $Default, publisher
    // device-1; and a group with a checkpoint.
    let r = client
        .put(server.url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({"partition_count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for body in [&b"text"[..], &[0xff, 0x00, 0x9c][..]] {
        let r = client
            .post(server.url(&format!("/{hub}/publishers/device-1/messages")))
            .header("authorization", &manage)
            .header("sensor", "s-1")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = client
        .put(server.url(&format!("/{hub}/consumergroups/readers")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // schemathesis keeps a cache of past failures in its working directory: not in the repo.
    let workdir = tempfile::tempdir().unwrap();
    let output = Command::new(&schemathesis)
        .current_dir(workdir.path())
        .args([
            "run",
            &server.url("/openapi.json"),
            "--header",
            &format!("Authorization: {manage}"),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "50",
            "--workers",
            "2",
            "--request-timeout",
            "40",
            // schemathesis fails answers slower than 10 s by default; speed is for the
            // benchmarks (creating a topic of thousands of partitions takes a slow single
            // broker longer): only the request timeout bounds an answer here.
            "--max-response-time",
            "40",
            "--wait-for-schema",
            "10",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("run {schemathesis}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        output.status,
        server.log()
    );
}
