//! End-to-end: the token issuer on a real broker, and key rotation through AWS Secrets
//! Manager (moto) with the rotation contract's four steps and the scheduled event, across two
//! hubgate processes.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::time::Duration;

use hubgate_server::config::RuleConfig;
use hubgate_server::sas::{SasKey, mint};
use hubgate_server::secrets::secret_value;
use hubgate_tests::{
    Env, HubgateProcess, Moto, NAMESPACE, SharedKafka, http, kafka_toml, now, unique,
};
use serde_json::{Value, json};

async fn mint_via(client: &reqwest::Client, base: &str, manage: &str, body: Value) -> (u16, Value) {
    let r = client
        .post(format!("{base}/v1/tokens"))
        .header("authorization", manage)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    hub: &str,
    publisher: &str,
    token: &str,
) -> u16 {
    client
        .post(format!("{base}/{hub}/publishers/{publisher}/messages"))
        .header("authorization", token)
        .body("event")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn issuer_mint_send_revoke_and_consumer_group_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 2).await;
    let base = &env.gateway.base;
    let manage = env.token("manage", hub);
    let (status, v) = mint_via(
        &env.http,
        base,
        &manage,
        json!({"hub": hub, "publisher": "dev-1", "ttl_secs": 600}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["resource"],
        format!("https://{NAMESPACE}/{hub}/publishers/dev-1")
    );
    let token = v["token"].as_str().unwrap();
    assert!(
        token.contains("skn=send"),
        "signed with the Send rule: {token}"
    );
    assert_eq!(send(&env.http, base, hub, "dev-1", token).await, 201);
    assert_eq!(
        send(&env.http, base, hub, "dev-2", token).await,
        401,
        "another publisher"
    );

    // Revoked publishers get no new token.
    let r = env
        .http
        .put(env.gateway.url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, v) = mint_via(
        &env.http,
        base,
        &manage,
        json!({"hub": hub, "publisher": "dev-1", "ttl_secs": 600}),
    )
    .await;
    assert_eq!(status, 409, "{v}");

    // A consumer group's Listen token cannot send, anywhere.
    let (status, v) = mint_via(
        &env.http,
        base,
        &manage,
        json!({"hub": hub, "consumer_group": "readers", "ttl_secs": 600}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let listen = v["token"].as_str().unwrap();
    assert!(listen.contains("skn=listen"));
    assert_eq!(send(&env.http, base, hub, "dev-2", listen).await, 401);
    let r = env
        .http
        .post(env.gateway.url(&format!("/v1/producer/topics/{hub}")))
        .header("authorization", listen)
        .json(&json!({"records": [{"value": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A Send token cannot mint.
    let (status, _) = mint_via(
        &env.http,
        base,
        &env.token("send", hub),
        json!({"hub": hub, "consumer_group": "g", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, 401);
}

const SECRET: &str = "hubgate/sas-rules";

fn rules() -> Vec<RuleConfig> {
    let key = || SasKey::generate().unwrap().expose().to_owned();
    let text = format!(
        "[[rules]]\nname='manage'\nrights=['Manage']\nprimary_key='{}'\n\
         [[rules]]\nname='send'\nrights=['Send']\nprimary_key='{}'\n\
         [[rules]]\nname='listen'\nrights=['Listen']\nprimary_key='{}'",
        key(),
        key(),
        key()
    );
    hubgate_server::Config::from_toml(&text).unwrap().rules
}

/// The current rules in the secret, read straight from moto.
async fn current_rules(moto: &Moto) -> Vec<RuleConfig> {
    // Name the stage: moto (unlike AWS) does not default to AWSCURRENT.
    let v = moto
        .secretsmanager(
            "GetSecretValue",
            json!({"SecretId": SECRET, "VersionStage": "AWSCURRENT"}),
        )
        .await;
    let parsed: hubgate_server::secrets::SecretRules =
        serde_json::from_str(v["SecretString"].as_str().unwrap()).unwrap();
    parsed.rules
}

fn manage_token(rules: &[RuleConfig]) -> String {
    let r = rules.iter().find(|r| r.name == "manage").unwrap();
    mint(
        &format!("https://{NAMESPACE}/"),
        "manage",
        &r.primary_key,
        now() + 3600,
    )
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/aws-lambda-events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn issuer_rotation_with_secrets_manager_ok() {
    let hub = &unique("hub");
    let broker = SharedKafka::get();
    let moto = Moto::start();
    let initial = rules();
    moto.secretsmanager(
        "CreateSecret",
        json!({"Name": SECRET, "SecretString": secret_value(&initial)}),
    )
    .await;

    // With the audit log: rotations and the reloads they cause are recorded.
    let toml = format!(
        "namespace = '{NAMESPACE}'\nsecret_id = '{SECRET}'\nsecret_reload_min_ms = 200\n\
         revocation_topic = '{}'\nconsumer_group_topic = '{}'\n\
         [audit]\nkey = 'YXVkaXQta2V5LWZvci10aGUtcm90YXRpb24tdGVzdC0wMDAx'\ntopic = '{}'\n\
         [kafka]\n{}request_timeout_ms = 5000\n",
        unique("__hubgate_revocations"),
        unique("__hubgate_groups"),
        unique("audit"),
        kafka_toml(&broker.bootstrap())
    );
    // P issues tokens and rotates; Q is another instance that started before any rotation.
    let p = HubgateProcess::start_with_env(&toml, &moto.env());
    let q = HubgateProcess::start_with_env(&toml, &moto.env());
    let client = http();
    let manage = manage_token(&initial);
    let r = client
        .put(p.url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "rules were loaded from the secret");

    let mint_t = |manage: String| {
        let client = client.clone();
        let base = p.base.clone();
        async move {
            let (status, v) = mint_via(
                &client,
                &base,
                &manage,
                json!({"hub": hub, "publisher": "dev-1", "ttl_secs": 3600}),
            )
            .await;
            assert_eq!(status, 200, "{v}");
            v["token"].as_str().unwrap().to_owned()
        }
    };
    let t1 = mint_t(manage.clone()).await;
    assert_eq!(send(&client, &q.base, hub, "dev-1", &t1).await, 201);

    // Rotation 1: the four steps of the Secrets Manager contract, as Lambda would deliver them.
    let mut event = fixture("example-secretsmanager-secret-rotation-event.json");
    event["SecretId"] = json!(SECRET);
    event["ClientRequestToken"] = json!("rotation-0001-0000-0000-000000000001");
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        event["Step"] = json!(step);
        let out = p
            .invoke(&event)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
        assert_eq!(out["ok"], true, "{step}: {out}");
    }
    // A retried step is harmless.
    event["Step"] = json!("finishSecret");
    p.invoke(&event).await.unwrap();
    let after_first = current_rules(&moto).await;
    let (old, new) = (&initial[1], &after_first[1]);
    assert_eq!(
        new.secondary_key.as_ref(),
        Some(&old.primary_key),
        "old primary became secondary"
    );
    assert_ne!(new.primary_key, old.primary_key, "a new primary key");

    tokio::time::sleep(Duration::from_millis(250)).await;
    let t2 = mint_t(manage.clone()).await; // the old manage key is now secondary: still valid
    assert_ne!(t1, t2);
    // Q has never reloaded: t2 fails once there, Q reloads, then accepts it.
    assert_eq!(
        send(&client, &q.base, hub, "dev-1", &t2).await,
        201,
        "new key accepted after reload"
    );
    assert_eq!(
        send(&client, &q.base, hub, "dev-1", &t1).await,
        201,
        "pre-rotation token still valid"
    );
    assert_eq!(send(&client, &p.base, hub, "dev-1", &t1).await, 201);
    assert_eq!(send(&client, &p.base, hub, "dev-1", &t2).await, 201);

    // Rotation 2: the EventBridge scheduled event rotates everything in one go.
    let out = p
        .invoke(&fixture("example-eventbridge-schedule.json"))
        .await
        .unwrap();
    assert_eq!(out["rotated"], true, "{out}");
    let after_second = current_rules(&moto).await;
    assert_eq!(
        after_second[1].secondary_key.as_ref(),
        Some(&after_first[1].primary_key)
    );

    tokio::time::sleep(Duration::from_millis(250)).await;
    let t3 = mint_t(manage_token(&after_second)).await;
    assert_eq!(
        send(&client, &q.base, hub, "dev-1", &t3).await,
        201,
        "newest key"
    );
    assert_eq!(
        send(&client, &q.base, hub, "dev-1", &t2).await,
        201,
        "previous key still accepted"
    );
    assert_eq!(
        send(&client, &q.base, hub, "dev-1", &t1).await,
        401,
        "key dropped after two rotations"
    );
    assert_eq!(send(&client, &p.base, hub, "dev-1", &t1).await, 401);
    // The manage key of the first generation is gone too.
    let (status, _) = mint_via(
        &client,
        &p.base,
        &manage,
        json!({"hub": hub, "consumer_group": "g", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, 401);

    // The audit log: each rotation step (the retried one too) and the scheduled rotation by
    // the invoking processes, the reloads that changed the rules, the mints and the topic.
    let page: serde_json::Value = client
        .get(p.url("/v1/audit?limit=1000"))
        .header("authorization", manage_token(&after_second))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let count = |a: &str| actions.iter().filter(|x| **x == a).count();
    assert_eq!(count("keys.rotate"), 6, "{page}");
    assert_eq!(count("topic.create"), 1, "{page}");
    assert_eq!(count("token.mint"), 3, "{page}");
    assert!(
        count("config.reload") >= 2,
        "P and Q reloaded new rules: {page}"
    );
    let step = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "keys.rotate")
        .unwrap();
    assert_eq!(step["principal"], "lambda:invoke");
    assert_eq!(step["details"]["step"], "CreateSecret", "{step}");
}
