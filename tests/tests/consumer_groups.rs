//! End-to-end: consumer groups over stateless HTTP on the real broker. Two hubgate processes
//! share a group's progress through checkpoints stored in Kafka; Listen tokens minted for a
//! group work for that group only; deleting a group removes its checkpoints; a long poll
//! answers as soon as an event arrives, also when another instance received it; creates of
//! one group racing through two instances settle with one 201.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::time::{Duration, Instant};

use hubgate_tests::{Env, HubgateProcess, SharedKafka, http, test_config_toml, token_1h, unique};
use reqwest::Client;
use serde_json::{Value, json};

async fn send(client: &Client, url: &str, token: &str, body: &str) {
    let r = client
        .post(url)
        .header("authorization", token)
        .header("sensor", "s-1")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "send: {}", r.text().await.unwrap());
}

async fn get(client: &Client, url: &str, token: &str) -> (u16, Value) {
    let r = client
        .get(url)
        .header("authorization", token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn put(client: &Client, url: &str, token: &str, body: Value) -> (u16, Value) {
    let r = client
        .put(url)
        .header("authorization", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn offsets(read: &Value) -> Vec<i64> {
    read["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_i64().unwrap())
        .collect()
}

/// Two hubgate processes on the shared cluster (`extra` TOML for both), a client, a Manage
/// token, and a hub of their own, `hub`, with `partitions` partitions.
struct TwoInstances {
    a: HubgateProcess,
    b: HubgateProcess,
    client: Client,
    manage: String,
    config: hubgate_server::Config,
    hub: String,
}

async fn two_instances(extra: &str, partitions: i32) -> TwoInstances {
    let hub = &unique("hub");
    let broker = SharedKafka::get();
    let toml = test_config_toml(&broker.bootstrap(), extra);
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let a = HubgateProcess::start(&toml);
    let b = HubgateProcess::start(&toml);
    let client = http();
    let manage = token_1h(&config, "manage", "");
    let (status, _) = put(
        &client,
        &a.url(&format!("/v1/topics/{hub}")),
        &manage,
        json!({"partition_count": partitions}),
    )
    .await;
    assert_eq!(status, 201);
    TwoInstances {
        a,
        b,
        client,
        manage,
        config,
        hub: hub.clone(),
    }
}

#[tokio::test]
async fn consumer_group_two_instances_share_checkpoints_ok() {
    let TwoInstances {
        a,
        b,
        client,
        manage,
        config,
        hub,
    } = two_instances("", 2).await;
    let hub = &hub;
    for i in 0..5 {
        send(
            &client,
            &a.url(&format!("/{hub}/partitions/0/messages")),
            &manage,
            &format!("event-{i}"),
        )
        .await;
    }

    // The group, created through one instance, is seen by the other.
    let (status, group) = put(
        &client,
        &a.url(&format!("/{hub}/consumergroups/readers")),
        &manage,
        json!({"user_metadata": "the billing readers"}),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["name"], "readers");
    assert_eq!(group["user_metadata"], "the billing readers");
    let (status, _) = put(
        &client,
        &b.url(&format!("/{hub}/ConsumerGroups/readers")),
        &manage,
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, list) = get(&client, &b.url(&format!("/{hub}/consumergroups")), &manage).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["consumer_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["$Default", "readers"]);

    // A Listen token for the group, from the token issuer.
    let r = client
        .post(a.url("/v1/tokens"))
        .header("authorization", &manage)
        .json(&json!({"hub": hub, "consumer_group": "readers", "ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reader = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Reader 1 on instance a: no checkpoint yet, so from the earliest event.
    let messages = &format!("/{hub}/consumergroups/readers/partitions/0/messages");
    let r = client
        .get(a.url(&format!("{messages}?count=2")))
        .header("authorization", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["nextoffset"], "2");
    let read: Value = r.json().await.unwrap();
    assert_eq!(offsets(&read), [0, 1]);
    assert_eq!(read["next_offset"], 2);
    let first = &read["events"][0];
    assert_eq!(first["body"], "event-0");
    assert_eq!(first["properties"]["sensor"], "s-1");
    assert!(
        first["enqueued_time_utc"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    let checkpoint = &format!("/{hub}/consumergroups/readers/partitions/0/checkpoint");
    let (status, c) = put(&client, &a.url(checkpoint), &reader, json!({"offset": 2})).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["offset"], 2);

    // Reader 2 on instance b continues where reader 1 checkpointed.
    let (status, read) = get(&client, &b.url(&format!("{messages}?count=10")), &reader).await;
    assert_eq!(status, 200);
    assert_eq!(offsets(&read), [2, 3, 4]);
    let (status, _) = put(&client, &b.url(checkpoint), &reader, json!({"offset": 5})).await;
    assert_eq!(status, 200);
    let (status, c) = get(&client, &a.url(checkpoint), &reader).await;
    assert_eq!((status, c["offset"].clone()), (200, json!(5)));
    // An explicit offset reads from there, checkpoint or not.
    let (_, read) = get(
        &client,
        &a.url(&format!("{messages}?offset=3&count=1")),
        &reader,
    )
    .await;
    assert_eq!(offsets(&read), [3]);

    // Runtime information: offsets, last enqueued event and the group's lag.
    send(
        &client,
        &b.url(&format!("/{hub}/partitions/0/messages")),
        &manage,
        "event-5",
    )
    .await;
    let (status, p) = get(
        &client,
        &a.url(&format!("/{hub}/consumergroups/readers/partitions/0")),
        &reader,
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["begin_offset"], 0);
    assert_eq!(p["end_offset"], 6);
    assert_eq!(p["last_enqueued_offset"], 5);
    assert!(p["last_enqueued_time_utc"].is_string());
    assert_eq!(p["checkpoint_offset"], 5);
    assert_eq!(p["lag"], 1);
    let (status, all) = get(
        &client,
        &b.url(&format!("/{hub}/consumergroups/readers/partitions")),
        &reader,
    )
    .await;
    assert_eq!(status, 200);
    let parts = all["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1]["is_empty"], true);
    assert_eq!(parts[1]["lag"], 0);
    assert_eq!(parts[1]["last_enqueued_offset"], Value::Null);

    // The group's token works for that group only.
    let send_token = token_1h(&config, "send", hub);
    for (url, token, why) in [
        (
            a.url(&format!(
                "/{hub}/consumergroups/others/partitions/0/messages"
            )),
            &reader,
            "another group",
        ),
        (
            a.url(&format!(
                "/{hub}/consumergroups/$Default/partitions/0/messages"
            )),
            &reader,
            "$Default",
        ),
        (
            a.url(&format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0")),
            &reader,
            "the hub's /v1 read",
        ),
        (
            a.url(&format!("/{hub}/consumergroups")),
            &reader,
            "group management",
        ),
        (a.url(messages), &send_token, "a Send token"),
        (a.url(messages), &String::new(), "no credential"),
    ] {
        let (status, body) = get(&client, &url, token).await;
        assert_eq!(status, 401, "{why}: {body}");
    }
    let r = client
        .post(a.url(&format!("/{hub}/messages")))
        .header("authorization", &reader)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a Listen token cannot send");
    // A hub-wide Listen token reads through any group, $Default included.
    let hub_listen = token_1h(&config, "listen", hub);
    let (status, read) = get(
        &client,
        &b.url(&format!(
            "/{hub}/consumergroups/$Default/partitions/0/messages?count=1"
        )),
        &hub_listen,
    )
    .await;
    assert_eq!((status, offsets(&read)), (200, vec![0]));

    // Deleting the group (through b) removes its checkpoints everywhere.
    let r = client
        .delete(b.url(&format!("/{hub}/consumergroups/readers")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = get(&client, &a.url(checkpoint), &reader).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&client, &a.url(messages), &reader).await;
    assert_eq!(status, 404, "reading a deleted group");
    let (status, _) = put(
        &client,
        &a.url(&format!("/{hub}/consumergroups/readers")),
        &manage,
        json!({}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = get(&client, &b.url(checkpoint), &reader).await;
    assert_eq!(
        status, 404,
        "a new group of the same name has no checkpoint: {body}"
    );
    let (_, read) = get(&client, &b.url(&format!("{messages}?count=1")), &reader).await;
    assert_eq!(
        offsets(&read),
        [0],
        "the new group starts at the earliest event"
    );
    let r = client
        .delete(a.url(&format!("/{hub}/consumergroups/$Default")))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "$Default cannot be deleted");
    println!("consumer groups: two instances shared checkpoints 2 and 5; delete removed them");
}

#[tokio::test]
async fn consumer_group_long_poll_returns_on_event_ok() {
    let hub = &unique("hub");
    let env = Env::start("").await;
    env.create_topic(hub, 1).await;
    // A second instance receives the event: the reader's instance learns of it from Kafka.
    let toml = test_config_toml(&env.broker.bootstrap(), "");
    let other = HubgateProcess::start(&toml);
    let other_config = hubgate_server::Config::from_toml(&toml).unwrap();
    let listen = env.token("listen", hub);
    let url = env.gateway.url(&format!(
        "/{hub}/consumergroups/$Default/partitions/0/messages?wait_ms=20000"
    ));

    for (sender, name) in [
        (other.url(&format!("/{hub}/messages")), "another instance"),
        (
            env.gateway.url(&format!("/{hub}/messages")),
            "the same instance",
        ),
    ] {
        let token = if name == "the same instance" {
            env.token("send", hub)
        } else {
            token_1h(&other_config, "send", hub)
        };
        let (_, before) = get(
            &env.http,
            &env.gateway
                .url(&format!("/{hub}/consumergroups/$Default/partitions/0")),
            &listen,
        )
        .await;
        let end = before["end_offset"].as_i64().unwrap();
        let started = Instant::now();
        let reader = {
            let (http, url, listen) = (
                env.http.clone(),
                format!("{url}&offset={end}"),
                listen.clone(),
            );
            tokio::spawn(async move { get(&http, &url, &listen).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !reader.is_finished(),
            "the read waits while there is nothing"
        );
        send(&env.http, &sender, &token, name).await;
        let sent = started.elapsed();
        let (status, read) = reader.await.unwrap();
        let waited = started.elapsed();
        assert_eq!(status, 200);
        assert_eq!(offsets(&read), [end], "{read}");
        assert_eq!(read["events"][0]["body"], name);
        // Answered on the event, not at the end of the 20 s wait.
        assert!(waited < Duration::from_secs(15), "{name}: {waited:?}");
        println!(
            "long poll: event sent through {name} at {sent:?}, answered at {waited:?} ({:?} after the send)",
            waited - sent
        );
    }

    // Nothing arrives: an empty answer after the wait, with where to continue.
    let (_, before) = get(
        &env.http,
        &env.gateway
            .url(&format!("/{hub}/consumergroups/$Default/partitions/0")),
        &listen,
    )
    .await;
    let end = before["end_offset"].as_i64().unwrap();
    let started = Instant::now();
    let (status, read) = get(
        &env.http,
        &env.gateway.url(&format!(
            "/{hub}/consumergroups/$Default/partitions/0/messages?wait_ms=1000&offset={end}"
        )),
        &listen,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(offsets(&read), Vec::<i64>::new());
    assert_eq!(read["next_offset"], end);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn consumer_group_limits_and_bad_input_fails() {
    let hub = &unique("hub");
    let env = Env::start(
        "[limits]\nmax_consumer_groups_per_hub = 3\nmax_wait_ms = 5000\nmax_waiting_reads = 1",
    )
    .await;
    env.create_topic(hub, 1).await;
    let manage = env.token("manage", "");
    let group = |g: &str| env.gateway.url(&format!("/{hub}/consumergroups/{g}"));
    for g in ["g1", "g2"] {
        assert_eq!(put(&env.http, &group(g), &manage, json!({})).await.0, 201);
    }
    let (status, body) = put(&env.http, &group("g3"), &manage, json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("3 consumer groups"),
        "{body}"
    );

    let read = |q: &str| {
        env.gateway.url(&format!(
            "/{hub}/consumergroups/g1/partitions/0/messages{q}"
        ))
    };
    for (url, want, why) in [
        (
            read("?wait_ms=5001"),
            400,
            "wait_ms above limits.max_wait_ms",
        ),
        (read("?count=0"), 400, "count 0"),
        (read("?offset=-1"), 400, "negative offset"),
        (read("?offset=99"), 404, "offset past the end"),
        (read("?colour=red"), 400, "unknown parameter"),
        (
            env.gateway
                .url(&format!("/{hub}/consumergroups/nope/partitions/0/messages")),
            404,
            "unknown group",
        ),
        (
            env.gateway
                .url(&format!("/{hub}/consumergroups/g1/partitions/7/messages")),
            404,
            "unknown partition",
        ),
        (
            env.gateway
                .url("/nohub/consumergroups/$Default/partitions/0/messages"),
            404,
            "unknown hub",
        ),
        (
            env.gateway.url(&format!(
                "/{hub}/consumergroups/bad%20name/partitions/0/messages"
            )),
            400,
            "bad group name",
        ),
        (
            env.gateway.url(&format!("/{hub}/consumergroups/g1")),
            200,
            "get a group",
        ),
        (
            env.gateway.url(&format!("/{hub}/consumergroups/g9")),
            404,
            "get an unknown group",
        ),
    ] {
        let (status, body) = get(&env.http, &url, &manage).await;
        assert_eq!(status, want, "{why}: {body}");
        if status >= 400 {
            assert!(body["message"].is_string(), "{why}: {body}");
        }
    }
    let checkpoint = env
        .gateway
        .url(&format!("/{hub}/consumergroups/g1/partitions/0/checkpoint"));
    for (body, why) in [
        (json!({"offset": 1}), "past the end of an empty partition"),
        (json!({"offset": -1}), "negative"),
        (json!({"offset": "0"}), "not a number"),
        (json!([0]), "not an object"),
        (json!({"offset": 0, "extra": 1}), "unknown field"),
    ] {
        let (status, answer) = put(&env.http, &checkpoint, &manage, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    let (status, _) = put(&env.http, &checkpoint, &manage, json!({"offset": 0})).await;
    assert_eq!(status, 200);
    // One read may wait (limits.max_waiting_reads = 1); a second waiting read is a 429, a read
    // that does not wait is served.
    let waiting = {
        let (http, url, token) = (
            env.http.clone(),
            read("?wait_ms=5000&offset=0"),
            manage.clone(),
        );
        tokio::spawn(async move { get(&http, &url, &token).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = env
        .http
        .get(read("?wait_ms=5000&offset=0"))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(get(&env.http, &read("?offset=0"), &manage).await.0, 200);
    assert_eq!(waiting.await.unwrap().0, 200);
    let long = "x".repeat(1025);
    let (status, _) = put(
        &env.http,
        &group("g1"),
        &manage,
        json!({"user_metadata": long}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn consumer_group_checkpoint_past_the_end_restarts_at_earliest_ok() {
    let again = &unique("again");
    let env = Env::start("").await;
    env.create_topic(again, 1).await;
    let manage = env.token("manage", "");
    let url = |p: &str| env.gateway.url(p);
    for i in 0..3 {
        send(
            &env.http,
            &url(&format!("/{again}/messages")),
            &manage,
            &format!("old-{i}"),
        )
        .await;
    }
    assert_eq!(
        put(
            &env.http,
            &url(&format!("/{again}/consumergroups/g")),
            &manage,
            json!({})
        )
        .await
        .0,
        201
    );
    let checkpoint = url(&format!(
        "/{again}/consumergroups/g/partitions/0/checkpoint"
    ));
    assert_eq!(
        put(&env.http, &checkpoint, &manage, json!({"offset": 3}))
            .await
            .0,
        200
    );
    // The topic is deleted and created again (outside the gateway): the checkpoint now
    // points past its end.
    let client = hubgate_tests::kafka_client(&env.broker.bootstrap()).await;
    client
        .controller_client()
        .unwrap()
        .delete_topic(again, 5_000)
        .await
        .unwrap();
    let controller = client.controller_client().unwrap();
    controller.create_topic(again, 1, 1, 5_000).await.unwrap();
    // Until the new partition is ready on its broker, a send is 503 (retry), never 404: the
    // topic exists (Kafka answers UNKNOWN_TOPIC_OR_PARTITION for a moment after a create).
    let started = std::time::Instant::now();
    loop {
        let r = env
            .http
            .post(url(&format!("/{again}/messages")))
            .header("authorization", &manage)
            .body("new-0")
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            201 => break,
            503 if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            s => panic!(
                "send after the topic was created again: {s} {}",
                r.text().await.unwrap()
            ),
        }
    }
    let (status, read) = get(
        &env.http,
        &url(&format!("/{again}/consumergroups/g/partitions/0/messages")),
        &manage,
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        offsets(&read),
        [0],
        "from the earliest event, as auto.offset.reset=earliest"
    );
    assert_eq!(read["events"][0]["body"], "new-0");
    // An explicit offset past the end is the caller's mistake: 404, not a silent restart.
    let (status, _) = get(
        &env.http,
        &url(&format!(
            "/{again}/consumergroups/g/partitions/0/messages?offset=3"
        )),
        &manage,
    )
    .await;
    assert_eq!(status, 404);
}

/// Creates of one group racing through two instances: exactly one answers 201, the other 409,
/// and the group both instances show afterwards is the one that answered 201.
#[tokio::test]
async fn consumer_group_racing_creates_one_wins_ok() {
    let TwoInstances {
        a,
        b,
        client,
        manage,
        hub,
        ..
    } = two_instances("[limits]\nmax_consumer_groups_per_hub = 100", 1).await;
    let hub = &hub;
    // Both instances have read the store once, so neither pays for that in the race.
    for gw in [&a, &b] {
        assert_eq!(
            get(&client, &gw.url(&format!("/{hub}/consumergroups")), &manage)
                .await
                .0,
            200
        );
    }
    let mut both_passed_the_check = 0;
    for round in 0..30 {
        let path = format!("/{hub}/consumergroups/g{round}");
        let (url_a, url_b) = (a.url(&path), b.url(&path));
        let (ra, rb) = tokio::join!(
            put(
                &client,
                &url_a,
                &manage,
                json!({"user_metadata": "through a"})
            ),
            put(
                &client,
                &url_b,
                &manage,
                json!({"user_metadata": "through b"})
            ),
        );
        let mut statuses = [ra.0, rb.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}: {ra:?} {rb:?}");
        let winner = if ra.0 == 201 {
            "through a"
        } else {
            "through b"
        };
        for gw in [&a, &b] {
            let (status, group) = get(&client, &gw.url(&path), &manage).await;
            assert_eq!(status, 200);
            assert_eq!(
                group["user_metadata"],
                winner,
                "round {round}: {ra:?} {rb:?} via {}: {group}",
                gw.url("")
            );
        }
        let loser = if ra.0 == 409 { &ra.1 } else { &rb.1 };
        assert_eq!(loser["error_code"], 40903, "{loser}");
        both_passed_the_check += usize::from(
            loser["message"]
                .as_str()
                .is_some_and(|m| m.contains("at the same time")),
        );
    }
    println!("{both_passed_the_check} of 30 rounds: both creates were written, one won");
}
