//! The revocation and consumer-group stores through Kafka's log compaction, on a node of the
//! test's own with aggressive cleaner settings (segments rolled every 100 ms, any dirty
//! ratio cleaned, tombstones kept 100 ms): after the cleaner removed superseded records and
//! tombstones, a restarted hubgate still has revoked publishers revoked, resumed ones
//! resumed, deleted groups deleted and checkpoints where they were.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hubgate_server::Config;
use hubgate_tests::{HubgateProcess, KafkaCluster, http, test_config_toml, token_1h};
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use serde_json::json;

/// What is left in partition 0 of `topic`: the offsets of its records and whether each is a
/// tombstone (gaps left by compaction are not listed), and the end offset.
async fn records_in(bootstrap: &str, topic: &str) -> (Vec<(i64, bool)>, i64) {
    let client = hubgate_tests::kafka_client(bootstrap).await;
    let pc = client
        .partition_client(topic, 0, UnknownTopicHandling::Error)
        .await
        .unwrap();
    let end = pc.get_offset(OffsetAt::Latest).await.unwrap();
    let (mut offset, mut left) = (0, Vec::new());
    while offset < end {
        let (records, _) = pc.fetch_records(offset, 1..1_000_000, 100).await.unwrap();
        if records.is_empty() {
            break;
        }
        for r in records {
            if r.offset >= offset {
                offset = r.offset + 1;
                left.push((r.offset, r.record.value.is_none()));
            }
        }
    }
    (left, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_survive_compaction_and_restart_ok() {
    let cluster = KafkaCluster::start_spec(hubgate_tests::ClusterSpec {
        nodes: 1,
        properties: "log.cleaner.backoff.ms=100\nlog.retention.check.interval.ms=100\n",
        ..Default::default()
    });
    let bootstrap = cluster.bootstrap();
    let toml = test_config_toml(&bootstrap, "");
    let config = Config::from_toml(&toml).unwrap();
    // The stores exist before hubgate starts, compacted, with settings that make the cleaner
    // run within a second or two.
    let admin = hubgate_tests::kafka_with(&bootstrap, |_| {});
    let aggressive: Vec<(String, String)> = [
        ("cleanup.policy", "compact"),
        ("segment.ms", "100"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "100"),
        ("min.compaction.lag.ms", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for topic in [&config.revocation_topic, &config.consumer_group_topic] {
        admin.create_topic(topic, 1, 1, &aggressive).await.unwrap();
    }

    let mut hg = HubgateProcess::start(&toml);
    let client = http();
    let manage = token_1h(&config, "manage", "");
    let call = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let mut req = client
            .request(method, hg.url(&path))
            .header("authorization", &manage);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    use reqwest::Method as M;
    assert_eq!(
        call(
            M::PUT,
            "/v1/topics/hub".into(),
            Some(json!({"partition_count": 1}))
        )
        .await,
        201
    );
    // p0..p19 revoked; p0..p9 resumed again (tombstones); p20 revoked and resumed five
    // times, ending revoked.
    for p in 0..20 {
        assert_eq!(
            call(M::PUT, format!("/hub/revokedpublishers/p{p}"), None).await,
            201
        );
    }
    for p in 0..10 {
        assert_eq!(
            call(M::DELETE, format!("/hub/revokedpublishers/p{p}"), None).await,
            200
        );
    }
    for _ in 0..5 {
        assert_eq!(
            call(M::PUT, "/hub/revokedpublishers/p20".into(), None).await,
            201
        );
        assert_eq!(
            call(M::DELETE, "/hub/revokedpublishers/p20".into(), None).await,
            200
        );
    }
    assert_eq!(
        call(M::PUT, "/hub/revokedpublishers/p20".into(), None).await,
        201
    );
    // Groups g0..g4; g0..g2 deleted; g3's checkpoint moved ten times (ends at 10).
    for g in 0..5 {
        let path = format!("/hub/consumergroups/g{g}");
        assert_eq!(call(M::PUT, path, Some(json!({}))).await, 201);
    }
    for g in 0..3 {
        assert_eq!(
            call(M::DELETE, format!("/hub/consumergroups/g{g}"), None).await,
            200
        );
    }
    for i in 0..10 {
        let r = client
            .post(hg.url("/hub/messages"))
            .header("authorization", &manage)
            .body(format!("e{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let path = "/hub/consumergroups/g3/partitions/0/checkpoint".to_owned();
        assert_eq!(
            call(M::PUT, path, Some(json!({"offset": i + 1}))).await,
            200
        );
    }

    // Wait for the cleaner to have removed, among the records written above, the superseded
    // ones (offset 0 is p0's revocation and g0's creation, both superseded) and the
    // tombstones. Whether it already ran during the writes does not matter: the condition
    // looks at what is left, not at a count taken earlier. Each round writes more records
    // (a throwaway revocation, a checkpoint) so the active segment rolls and gets cleaned.
    let written = [
        (
            config.revocation_topic.clone(),
            records_in(&bootstrap, &config.revocation_topic).await.1,
        ),
        (
            config.consumer_group_topic.clone(),
            records_in(&bootstrap, &config.consumer_group_topic).await.1,
        ),
    ];
    let started = Instant::now();
    for (topic, written_end) in &written {
        loop {
            let (left, end) = records_in(&bootstrap, topic).await;
            let ours: Vec<_> = left.iter().filter(|(o, _)| o < written_end).collect();
            let superseded_gone = ours.first().is_none_or(|(o, _)| *o > 0);
            let tombstones = ours.iter().filter(|(_, t)| *t).count();
            if superseded_gone && tombstones == 0 {
                println!(
                    "compaction: {topic}: {written_end} records written, {} of them left \
                     (end offset now {end}) after {:.1} s",
                    ours.len(),
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{topic} was not compacted: of {written_end} records written, {ours:?} \
                 (offset, tombstone) are left\n{}",
                cluster.log()
            );
            if topic == &config.revocation_topic {
                call(M::PUT, "/hub/revokedpublishers/roll".into(), None).await;
                call(M::DELETE, "/hub/revokedpublishers/roll".into(), None).await;
            } else {
                let path = "/hub/consumergroups/g4/partitions/0/checkpoint".to_owned();
                call(M::PUT, path, Some(json!({"offset": 0}))).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // A hubgate that reads the compacted stores from the start.
    hg.restart();
    let client = http();
    let send = |p: String| {
        let (client, url) = (
            client.clone(),
            hg.url(&format!("/hub/publishers/{p}/messages")),
        );
        let token = token_1h(&config, "send", &format!("hub/publishers/{p}"));
        async move {
            client
                .post(url)
                .header("authorization", token)
                .body("after compaction")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for p in 0..10 {
        assert_eq!(send(format!("p{p}")).await, 201, "p{p} was resumed");
    }
    for p in 10..21 {
        assert_eq!(send(format!("p{p}")).await, 401, "p{p} is revoked");
    }
    let get = |path: String| {
        let (client, url) = (client.clone(), hg.url(&path));
        let manage = manage.clone();
        async move {
            let r = client
                .get(url)
                .header("authorization", manage)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    for g in 0..3 {
        assert_eq!(
            get(format!("/hub/consumergroups/g{g}")).await.0,
            404,
            "g{g} was deleted"
        );
    }
    for g in 3..5 {
        assert_eq!(
            get(format!("/hub/consumergroups/g{g}")).await.0,
            200,
            "g{g} exists"
        );
    }
    let (status, checkpoint) = get("/hub/consumergroups/g3/partitions/0/checkpoint".into()).await;
    assert_eq!(status, 200, "{checkpoint}");
    assert_eq!(checkpoint["offset"], 10, "{checkpoint}");
}
