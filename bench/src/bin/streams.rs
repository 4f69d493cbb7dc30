//! Event streams at scale, on Apache Kafka (one node), with the all-in-one server (a release
//! build): N readers (1,000 and 10,000) on one instance, each on one partition of a 4-partition
//! hub, while one event per second per partition is sent, first through the readers' instance
//! and then through a second one. Reported per reader kind (Server-Sent Event streams, and the
//! same readers as long polls, the baseline of the same run): the instance's memory with the
//! readers open, its CPU while events flow, and the delivery latency from the send's
//! acknowledgement to the event's arrival at each reader (p50, p99), with any event missing.
//!
//! `benches/run` runs it; BENCHMARKS.md has the results.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly
#![allow(clippy::cast_precision_loss)] // figures for a report

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use hubgate_bench::{Hubgate, cpu_time, rss_mib};
use hubgate_tests::{KafkaCluster, test_config_toml, token_1h};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// The hubgate binary (a release build).
    #[arg(long, default_value = "target/release/hubgate")]
    hubgate: PathBuf,
    /// Reader counts to measure, comma-separated.
    #[arg(long, default_value = "1000,10000", value_delimiter = ',')]
    readers: Vec<usize>,
    /// Seconds events are sent through each instance.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Reader kinds to measure: `stream`, `long-poll` (comma-separated).
    #[arg(long, default_value = "stream,long-poll", value_delimiter = ',')]
    kinds: Vec<Kind>,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/streams.md")]
    out: PathBuf,
}

const HUB: &str = "live";
const PARTITIONS: i32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Stream,
    LongPoll,
}

/// What the readers saw: `(sequence number, arrival)`.
type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Where a reader reads, and where it reports.
struct Reader {
    kind: Kind,
    client: reqwest::Client,
    base: String,
    token: String,
    partition: i32,
    /// The first offset to read.
    from: i64,
    arrivals: Arrivals,
    /// Counts readers whose request is out.
    opened: Arc<std::sync::atomic::AtomicUsize>,
}

/// One reader until aborted, recording every event's arrival.
async fn reader(r: Reader) {
    let Reader {
        kind,
        client,
        base,
        token,
        partition,
        from,
        arrivals,
        opened,
    } = r;
    let record = |body: &Value| {
        if let Some(seq) = body.as_str().and_then(|b| b.parse::<u64>().ok()) {
            arrivals.lock().unwrap().push((seq, Instant::now()));
        }
    };
    match kind {
        Kind::Stream => {
            let url = format!(
                "{base}/{HUB}/consumergroups/$Default/partitions/{partition}/stream?offset={from}"
            );
            let r = client
                .get(url)
                .header("authorization", &token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "stream: {}", r.status());
            opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let chunks = futures::stream::unfold(r, |mut r| async move {
                match r.chunk().await {
                    Ok(Some(c)) => Some((Ok::<_, reqwest::Error>(c), r)),
                    _ => None,
                }
            });
            let mut events = Box::pin(chunks.eventsource());
            while let Some(Ok(e)) = events.next().await {
                if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
                    record(&v["body"]);
                }
            }
        }
        Kind::LongPoll => {
            let mut offset = from;
            let mut first = true;
            loop {
                let url = format!(
                    "{base}/{HUB}/consumergroups/$Default/partitions/{partition}/messages?offset={offset}&count=100&wait_ms=25000"
                );
                let send = client.get(url).header("authorization", &token).send();
                if first {
                    opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    first = false;
                }
                let Ok(r) = send.await else { return };
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                for e in v["events"].as_array().into_iter().flatten() {
                    record(&e["body"]);
                }
                offset = v["next_offset"].as_i64().unwrap_or(offset);
            }
        }
    }
}

/// What one scenario measured.
struct Measured {
    rss_idle: f64,
    rss_open: f64,
    cpu_per_s: f64,
    same: (f64, f64),
    other: (f64, f64),
    missing: usize,
    expected: usize,
}

/// Sends one event per second per partition through `base` for `seconds`, spread over the
/// second; answers each event's acknowledgement time by sequence number.
async fn send_events(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    seconds: u64,
    first_seq: u64,
) -> HashMap<u64, Instant> {
    let mut acks = HashMap::new();
    let step = Duration::from_millis(1000 / PARTITIONS as u64);
    let mut tick = tokio::time::interval(step);
    let mut seq = first_seq;
    for _ in 0..seconds {
        for p in 0..PARTITIONS {
            tick.tick().await;
            let r = client
                .post(format!("{base}/{HUB}/partitions/{p}/messages"))
                .header("authorization", token)
                .body(seq.to_string())
                .send()
                .await
                .unwrap();
            let acked = Instant::now();
            assert_eq!(r.status(), 201, "send");
            acks.insert(seq, acked);
            seq += 1;
        }
    }
    acks
}

async fn scenario(args: &Args, kafka: &KafkaCluster, kind: Kind, readers: usize) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config_toml(
        &kafka.bootstrap(),
        &format!(
            "[streams]\nmax_open = {0}\nheartbeat_ms = 15000\n[limits]\nmax_waiting_reads = {0}\nmax_wait_ms = 30000",
            readers + 100
        ),
    );
    let path = dir.path().join("hubgate.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let (a, b) = (
        Hubgate::start(&args.hubgate, &path),
        Hubgate::start(&args.hubgate, &path),
    );
    let (base_a, base_b) = (
        format!("http://127.0.0.1:{}", a.port),
        format!("http://127.0.0.1:{}", b.port),
    );
    let manage = token_1h(&config, "manage", "");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(readers + 64)
        .build()
        .unwrap();
    let r = client
        .put(format!("{base_a}/v1/topics/{HUB}"))
        .header("authorization", &manage)
        .json(&json!({"partition_count": PARTITIONS}))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 201 || r.status() == 409, "create hub");
    // Warm both instances' Kafka connections; the readers start after these events.
    for base in [&base_a, &base_b] {
        for p in 0..PARTITIONS {
            let r = client
                .post(format!("{base}/{HUB}/partitions/{p}/messages"))
                .header("authorization", &manage)
                .body("warm-up")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    }
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        let v: Value = client
            .get(format!(
                "{base_a}/{HUB}/consumergroups/$Default/partitions/{p}"
            ))
            .header("authorization", &manage)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ends.push(v["end_offset"].as_i64().unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_mib(a.child.id());

    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(readers);
    for i in 0..readers {
        let p = i32::try_from(i).unwrap() % PARTITIONS;
        tasks.push(tokio::spawn(reader(Reader {
            kind,
            client: client.clone(),
            base: base_a.clone(),
            token: manage.clone(),
            partition: p,
            from: ends[usize::try_from(p).unwrap()],
            arrivals: Arc::clone(&arrivals),
            opened: Arc::clone(&opened),
        })));
        if i % 250 == 249 {
            // Connections ramp up, as browsers arrive; the kernel's backlog stays short.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while opened.load(std::sync::atomic::Ordering::Relaxed) < readers {
        assert!(Instant::now() < deadline, "readers did not all open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_open = rss_mib(a.child.id());

    let cpu_before = cpu_time(a.child.id());
    let t = Instant::now();
    let same = send_events(&client, &base_a, &manage, args.seconds, 1_000_000).await;
    let other = send_events(&client, &base_b, &manage, args.seconds, 2_000_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_per_s = (cpu_time(a.child.id()) - cpu_before).as_secs_f64() / t.elapsed().as_secs_f64();
    for task in &tasks {
        task.abort();
    }
    let seen = std::mem::take(&mut *arrivals.lock().unwrap());
    let mut lat_same = Vec::new();
    let mut lat_other = Vec::new();
    let mut delivered: HashMap<u64, usize> = HashMap::new();
    for (seq, at) in seen {
        *delivered.entry(seq).or_default() += 1;
        let (acks, out) = if seq < 2_000_000 {
            (&same, &mut lat_same)
        } else {
            (&other, &mut lat_other)
        };
        if let Some(acked) = acks.get(&seq) {
            // An event may reach a reader before its sender has the acknowledgement: 0.
            out.push(at.saturating_duration_since(*acked).as_secs_f64() * 1000.0);
        }
    }
    let per_partition = readers / PARTITIONS as usize;
    let expected = (same.len() + other.len()) * per_partition;
    let got: usize = delivered.values().sum();
    lat_same.sort_by(f64::total_cmp);
    lat_other.sort_by(f64::total_cmp);
    Measured {
        rss_idle,
        rss_open,
        cpu_per_s,
        same: (percentile(&lat_same, 0.5), percentile(&lat_same, 0.99)),
        other: (percentile(&lat_other, 0.5), percentile(&lat_other, 0.99)),
        missing: expected.saturating_sub(got),
        expected,
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let kafka = KafkaCluster::start(1);
    let mut report = String::from(
        "| readers | kind | RSS idle → readers open (MiB) | per reader (KiB) | CPU while events flow (cores) | delivery p50 / p99, same instance (ms) | p50 / p99, through another (ms) | events missing |\n|---|---|---|---|---|---|---|---|\n",
    );
    for &n in &args.readers {
        for &kind in &args.kinds {
            let m = scenario(&args, &kafka, kind, n).await;
            let line = format!(
                "| {n} | {} | {:.1} → {:.1} | {:.1} | {:.3} | {:.1} / {:.1} | {:.1} / {:.1} | {} of {} |\n",
                match kind {
                    Kind::Stream => "SSE stream",
                    Kind::LongPoll => "long poll (wait_ms=25000)",
                },
                m.rss_idle,
                m.rss_open,
                (m.rss_open - m.rss_idle) * 1024.0 / n as f64,
                m.cpu_per_s,
                m.same.0,
                m.same.1,
                m.other.0,
                m.other.1,
                m.missing,
                m.expected,
            );
            eprint!("{line}");
            report.push_str(&line);
        }
    }
    let text = format!(
        "One Apache Kafka node, two hubgate instances (release), {PARTITIONS} partitions, one event per second per partition for {} s through the readers' instance, then {} s through the other; each reader on one partition.\n\n{report}",
        args.seconds, args.seconds
    );
    println!("{text}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&args.out, text).unwrap();
}
