//! Consumer groups over HTTP, measured against baselines of the same run, on a real tansu
//! broker with the all-in-one server (a release build):
//!
//! - reads through a consumer group (`…/messages?offset=O&count=100`) against the HDInsight
//!   read of the same records (`/v1/consumer/…/offsets/O?count=100`);
//! - a checkpoint against a one-record produce (both one Kafka produce request);
//! - 1000 long polls waiting at once: the server's memory against idle, and the latency of
//!   produce requests meanwhile against none waiting (a waiting read must not hold up a
//!   produce: a broker answers one connection's requests in order);
//! - how long the 1000 waiting reads take to answer once one event arrives.
//!
//! `benches/run` runs it; BENCHMARKS.md has the results.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use hubgate_bench::{Hubgate, rss_mib};
use hubgate_tests::{Tansu, test_config_toml, token_1h};
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    /// The hubgate binary (a release build).
    #[arg(long, default_value = "target/release/hubgate")]
    hubgate: PathBuf,
    /// Seconds each throughput scenario runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent long polls in the waiting scenarios.
    #[arg(long, default_value_t = 1000)]
    waiters: usize,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/consumer-groups.md")]
    out: PathBuf,
}

const HUB: &str = "listen";
const EVENTS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Requests/s and p50 ms of `make(i)` requests from `concurrency` loops for `seconds`.
async fn load<F>(seconds: u64, concurrency: usize, make: F) -> (f64, f64, u64)
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|c| {
            let make = std::sync::Arc::clone(&make);
            tokio::spawn(async move {
                let (mut lat, mut errors, mut i) = (Vec::new(), 0u64, c * 7919);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match make(i).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                    i += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    (
        all.len() as f64 / seconds as f64,
        percentile(&all, 0.5),
        errors,
    )
}

/// Creates the one-partition hub `name`.
async fn create_hub(client: &reqwest::Client, base: &str, token: &str, name: &str) {
    let r = client
        .put(format!("{base}/v1/topics/{name}"))
        .header("authorization", token)
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create hub {name}");
}

/// p50 and p99 ms of `n` sequential one-record produce requests.
async fn produce_latency(client: &reqwest::Client, url: &str, token: &str, n: usize) -> (f64, f64) {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = client
            .post(url)
            .header("authorization", token)
            .json(&json!({"records": [{"value": {"i": i}}]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "produce: {}", r.status());
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let broker = Tansu::start_in_memory();
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config_toml(
        &broker.bootstrap(),
        &format!("[limits]\nmax_waiting_reads = {}", args.waiters + 10),
    );
    let config_path = dir.path().join("hubgate.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let manage = token_1h(&config, "manage", "");
    let server = Hubgate::start(&args.hubgate, &config_path);
    let port = server.port;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.waiters + 64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    create_hub(&client, &base, &manage, HUB).await;
    let produce_url = format!("{base}/v1/producer/topics/{HUB}");
    for chunk in 0..EVENTS / 100 {
        let records: Vec<_> = (0..100)
            .map(|i| json!({"key": format!("dev-{}", i % 10), "value": {"n": chunk * 100 + i, "temperature": 21.5, "site": "plant-7"}}))
            .collect();
        let r = client
            .post(&produce_url)
            .header("authorization", &manage)
            .json(&json!({ "records": records }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let r = client
        .put(format!("{base}/{HUB}/consumergroups/bench"))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let mut report =
        String::from("| scenario | baseline | measured | ratio |\n|---|---|---|---|\n");
    let mut row = |name: &str, base: String, measured: String, ratio: f64| {
        let line = format!("| {name} | {base} | {measured} | {ratio:.2} |\n");
        eprint!("{line}");
        report.push_str(&line);
    };

    // Reads of 100 events from random offsets, 8 at once.
    let last = (EVENTS - 100) as u64;
    let offset = move |i: usize| (i as u64 * 2_654_435_761) % last;
    let (c, b, t) = (client.clone(), base.clone(), manage.clone());
    let v1 = load(args.seconds, 8, move |i| {
        c.get(format!(
            "{b}/v1/consumer/topics/{HUB}/partitions/0/offsets/{}?count=100",
            offset(i)
        ))
        .header("authorization", &t)
    })
    .await;
    let (c, b, t) = (client.clone(), base.clone(), manage.clone());
    let group = load(args.seconds, 8, move |i| {
        c.get(format!(
            "{b}/{HUB}/consumergroups/bench/partitions/0/messages?offset={}&count=100",
            offset(i)
        ))
        .header("authorization", &t)
    })
    .await;
    assert_eq!(v1.2 + group.2, 0, "errors during the read scenarios");
    row(
        "read 100 events, 8 concurrent (req/s): /v1 consume vs consumer group",
        format!("{:.0} (p50 {:.1} ms)", v1.0, v1.1),
        format!("{:.0} (p50 {:.1} ms)", group.0, group.1),
        group.0 / v1.0,
    );

    // A checkpoint against a one-record produce. The produce goes to a hub of its own: tansu's
    // ListOffsets (which a checkpoint asks) takes time growing with the partition, so the
    // checkpointed partition keeps its size whatever the produce rate.
    create_hub(&client, &base, &manage, "scratch").await;
    let (c, b, t) = (client.clone(), base.clone(), manage.clone());
    let produce = load(args.seconds, 8, move |i| {
        c.post(format!("{b}/v1/producer/topics/scratch"))
            .header("authorization", &t)
            .json(&json!({"records": [{"value": {"i": i}}]}))
    })
    .await;
    let (c, b, t) = (client.clone(), base.clone(), manage.clone());
    let checkpoint = load(args.seconds, 8, move |i| {
        c.put(format!(
            "{b}/{HUB}/consumergroups/bench/partitions/0/checkpoint"
        ))
        .header("authorization", &t)
        .json(&json!({"offset": i % 1000}))
    })
    .await;
    assert_eq!(
        produce.2 + checkpoint.2,
        0,
        "errors during the write scenarios"
    );
    row(
        "8 concurrent (req/s): one-record produce vs checkpoint",
        format!("{:.0} (p50 {:.1} ms)", produce.0, produce.1),
        format!("{:.0} (p50 {:.1} ms)", checkpoint.0, checkpoint.1),
        checkpoint.0 / produce.0,
    );

    // Cluster metadata: `/v1/status` (answered from the topic cache, no Kafka request) against
    // `/v1/metadata/brokers` (one metadata request, on the kept metadata connection).
    let (c, b, t) = (client.clone(), base.clone(), manage.clone());
    let status = load(args.seconds, 8, move |_| {
        c.get(format!("{b}/v1/status")).header("authorization", &t)
    })
    .await;
    let (c, b, t) = (client.clone(), base.clone(), manage.clone());
    let brokers = load(args.seconds, 8, move |_| {
        c.get(format!("{b}/v1/metadata/brokers"))
            .header("authorization", &t)
    })
    .await;
    assert_eq!(
        status.2 + brokers.2,
        0,
        "errors during the metadata scenarios"
    );
    row(
        "8 concurrent (req/s): /v1/status (no Kafka request) vs /v1/metadata/brokers",
        format!("{:.0} (p50 {:.2} ms)", status.0, status.1),
        format!("{:.0} (p50 {:.2} ms)", brokers.0, brokers.1),
        brokers.0 / status.0,
    );

    // Long polls: memory, and produce latency while they wait.
    let pid = server.child.id();
    let idle_rss = rss_mib(pid);
    // Waiters watch their own hub, so the produce requests below do not wake them.
    create_hub(&client, &base, &manage, "quiet").await;
    // Baseline for waking: one waiting read on a hub of its own.
    create_hub(&client, &base, &manage, "single").await;
    let one = {
        let (c, t) = (client.clone(), manage.clone());
        let url = format!(
            "{base}/single/consumergroups/$Default/partitions/0/messages?offset=0&wait_ms=30000"
        );
        tokio::spawn(async move {
            let r = c.get(url).header("authorization", t).send().await.unwrap();
            assert_eq!(r.status(), 200);
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let woken = Instant::now();
    let r = client
        .post(format!("{base}/single/messages"))
        .header("authorization", &manage)
        .body("wake up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    one.await.unwrap();
    let wake_one = woken.elapsed();

    let (p50_before, p99_before) = produce_latency(&client, &produce_url, &manage, 300).await;
    let started = Instant::now();
    let waiters: Vec<_> = (0..args.waiters)
        .map(|_| {
            let (c, url, t) = (
                client.clone(),
                format!("{base}/quiet/consumergroups/$Default/partitions/0/messages?offset=0&wait_ms=30000"),
                manage.clone(),
            );
            tokio::spawn(async move {
                let r = c.get(url).header("authorization", t).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let v: serde_json::Value = r.json().await.unwrap();
                v["events"].as_array().map_or(0, Vec::len)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "a long poll answered early"
    );
    let waiting_rss = rss_mib(pid);
    let (p50_waiting, p99_waiting) = produce_latency(&client, &produce_url, &manage, 300).await;
    let woken = Instant::now();
    let r = client
        .post(format!("{base}/quiet/messages"))
        .header("authorization", &manage)
        .body("wake up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut got = 0;
    for w in waiters {
        got += w.await.unwrap();
    }
    let wake_all = woken.elapsed();
    assert_eq!(got, args.waiters, "every waiting read got the event");
    assert!(started.elapsed() < Duration::from_secs(30));
    row(
        &format!(
            "server RSS (MiB): idle vs {} long polls waiting",
            args.waiters
        ),
        format!("{idle_rss:.1}"),
        format!("{waiting_rss:.1}"),
        waiting_rss / idle_rss,
    );
    row(
        &format!(
            "produce p50 / p99 (ms): none waiting vs {} waiting",
            args.waiters
        ),
        format!("{p50_before:.2} / {p99_before:.2}"),
        format!("{p50_waiting:.2} / {p99_waiting:.2}"),
        p50_waiting / p50_before,
    );
    row(
        &format!(
            "send to last answer (ms), through the same instance: 1 waiting read vs {}",
            args.waiters
        ),
        format!("{:.1}", wake_one.as_secs_f64() * 1000.0),
        format!("{:.1}", wake_all.as_secs_f64() * 1000.0),
        wake_all.as_secs_f64() / wake_one.as_secs_f64(),
    );
    drop(server);
    drop(broker);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&args.out, &report).unwrap();
    println!("{report}");
}
