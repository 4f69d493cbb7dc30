//! hubgate's load benchmark: the all-in-one server on a real broker (tansu, or Apache Kafka
//! with `--broker kafka`), driven by `wrk`, against a direct rskafka producer sending the same
//! records with the same batching and a parse-only floor server (`src/bin/floor.rs`), in the
//! same run, and on Kafka against Kafka's own Java producer; plus the 40 ms Nagle case, peak
//! RSS, cold start and binary sizes.
//! `benches/run` builds everything and runs this; BENCHMARKS.md has the results.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hubgate_bench::{
    Hubgate, cpu_time, java_producer, peak_rss_mib, perf_during, produce_script, spawn_serve,
    value, wrk,
};
use hubgate_tests::{KafkaCluster, Tansu, free_port, test_config_toml, token_1h};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;

#[derive(Debug, Parser)]
struct Args {
    /// The hubgate binary (a release build).
    #[arg(long, default_value = "target/release/hubgate")]
    hubgate: PathBuf,
    /// Seconds each load scenario runs (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Cold-start runs.
    #[arg(long, default_value_t = 15)]
    cold_runs: usize,
    /// The broker: tansu (in memory unless `--sqlite`), or one Apache Kafka KRaft node
    /// (`scripts/install-kafka`), where Kafka's own Java producer joins each scenario.
    #[arg(long, value_enum, default_value = "tansu")]
    broker: BrokerKind,
    /// Keep the broker's records in SQLite (default: in memory, so the figures are about
    /// the gateway rather than SQLite).
    #[arg(long)]
    sqlite: bool,
    /// The parse-only floor server (`bench/src/bin/floor.rs`); default: next to `--hubgate`.
    #[arg(long)]
    floor: Option<PathBuf>,
    /// Only these load scenarios, as RECORDSxCONCURRENCY (e.g. `1x1,1x64`); default: all of
    /// 1 and 100 records per request at concurrency 1, 16 and 64.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/load.md")]
    out: PathBuf,
}

const TOPIC: &str = "bench";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BrokerKind {
    Tansu,
    Kafka,
}

/// One measured scenario.
#[derive(Debug, Default, Clone)]
struct Row {
    name: String,
    records_per_request: usize,
    concurrency: usize,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    client_cpu_us_per_record: f64,
    broker_cpu_us_per_record: f64,
    errors: u64,
}

impl Row {
    fn records_per_sec(&self) -> f64 {
        self.requests_per_sec * self.records_per_request as f64
    }
}

struct Setup {
    bin: PathBuf,
    bootstrap: String,
    broker_pid: u32,
    dir: tempfile::TempDir,
    token: String,
    seconds: u64,
}

impl Setup {
    fn config(&self, name: &str, kafka_extra: &str) -> PathBuf {
        // test_config_toml's [kafka] table gets the extra keys; keys match `token`'s.
        let base = std::fs::read_to_string(self.dir.path().join("base.toml")).unwrap();
        let toml = base.replace(
            "[kafka]\n",
            &format!("[kafka]\n{kafka_extra}\nrequest_timeout_ms = 10000\n"),
        );
        let toml = toml.replace("request_timeout_ms = 5000\n", "");
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    }

    fn script(&self, records: usize) -> PathBuf {
        produce_script(
            self.dir.path(),
            &format!("produce-{records}"),
            records,
            &self.token,
        )
    }

    fn http(&self, name: &str, hg: &Hubgate, records: usize, concurrency: usize) -> Row {
        let script = self.script(records);
        let url = format!("http://127.0.0.1:{}/v1/producer/topics/{TOPIC}", hg.port);
        wrk(&url, &script, concurrency, 1); // warm-up
        let broker_pid = self.broker_pid;
        let (g0, b0) = (cpu_time(hg.child.id()), cpu_time(broker_pid));
        let profile: String = format!("{name}-{records}-{concurrency}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let (rps, p50, p99, errors) = perf_during(hg.child.id(), &profile, || {
            wrk(&url, &script, concurrency, self.seconds)
        });
        let (g1, b1) = (cpu_time(hg.child.id()), cpu_time(broker_pid));
        let total = rps * self.seconds as f64 * records as f64;
        Row {
            name: name.into(),
            records_per_request: records,
            concurrency,
            requests_per_sec: rps,
            p50_ms: p50,
            p99_ms: p99,
            client_cpu_us_per_record: (g1 - g0).as_secs_f64() * 1e6 / total,
            broker_cpu_us_per_record: (b1 - b0).as_secs_f64() * 1e6 / total,
            errors,
        }
    }

    async fn direct(&self, name: &str, nodelay: bool, records: usize, concurrency: usize) -> Row {
        let client = ClientBuilder::new(vec![self.bootstrap.clone()])
            .build()
            .await
            .unwrap();
        let pc = Arc::new(
            client
                .partition_client(TOPIC, 0, UnknownTopicHandling::Error)
                .await
                .unwrap(),
        );
        if nodelay {
            hubgate_server::kafka::NoDelay::default().sweep();
        }
        let batch: Vec<Record> = (0..records)
            .map(|i| Record {
                key: None,
                value: Some(value(i).to_string().into_bytes()),
                headers: BTreeMap::new(),
                timestamp: chrono::Utc::now(),
            })
            .collect();
        let run = |secs: u64| {
            let (pc, batch) = (Arc::clone(&pc), batch.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(secs);
                let tasks: Vec<_> = (0..concurrency)
                    .map(|_| {
                        let (pc, batch) = (Arc::clone(&pc), batch.clone());
                        tokio::spawn(async move { drive(&pc, &batch, deadline).await })
                    })
                    .collect();
                let mut lat = Vec::new();
                let mut errors = 0;
                for t in tasks {
                    let (l, e) = t.await.unwrap();
                    lat.extend(l);
                    errors += e;
                }
                (lat, errors)
            }
        };
        run(1).await; // warm-up
        let me = std::process::id();
        let broker_pid = self.broker_pid;
        let (c0, b0) = (cpu_time(me), cpu_time(broker_pid));
        let (mut lat, errors) = run(self.seconds).await;
        let (c1, b1) = (cpu_time(me), cpu_time(broker_pid));
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        let total = (lat.len() * records) as f64;
        Row {
            name: name.into(),
            records_per_request: records,
            concurrency,
            requests_per_sec: lat.len() as f64 / self.seconds as f64,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            client_cpu_us_per_record: (c1 - c0).as_secs_f64() * 1e6 / total,
            broker_cpu_us_per_record: (b1 - b0).as_secs_f64() * 1e6 / total,
            errors,
        }
    }
}

async fn drive(pc: &PartitionClient, batch: &[Record], deadline: Instant) -> (Vec<Duration>, u64) {
    let mut lat = Vec::new();
    let mut errors = 0;
    while Instant::now() < deadline {
        let t = Instant::now();
        match pc.produce(batch.to_vec(), Compression::NoCompression).await {
            Ok(_) => lat.push(t.elapsed()),
            Err(_) => errors += 1,
        }
    }
    (lat, errors)
}

/// Process start to the first 2xx answer to `request` (raw HTTP/1.1), with a raw-socket
/// poller (no HTTP client start-up in the figure). `serve` is the all-in-one binary's
/// subcommand; the function binaries take `--config` and `--listen` directly.
fn cold_start(bin: &Path, serve: bool, config: &Path, request: &str) -> Duration {
    let port = free_port();
    let start = Instant::now();
    let mut child = if serve {
        spawn_serve(bin, config, port)
    } else {
        std::process::Command::new(bin)
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
    };
    let mut last = String::new();
    let took = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}: no 2xx; the last answer: {last}",
            bin.display()
        );
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        };
        let mut answer = String::new();
        if s.write_all(request.as_bytes()).is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 2")
        {
            break start.elapsed();
        }
        last = answer;
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    took
}

/// A raw HTTP/1.1 request, the connection closed after it.
fn raw_request(method: &str, path: &str, authorization: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Median, min and max of `runs` cold starts, in ms.
fn cold_starts(runs: usize, mut one: impl FnMut() -> Duration) -> (f64, f64, f64) {
    let mut all: Vec<Duration> = (0..runs).map(|_| one()).collect();
    all.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(all[all.len() / 2]), ms(all[0]), ms(all[all.len() - 1]))
}

fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| scenario | records/req | conc. | req/s | records/s | p50 ms | p99 ms | client CPU µs/record | broker CPU µs/record | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.name,
            r.records_per_request,
            r.concurrency,
            r.requests_per_sec,
            r.records_per_sec(),
            r.p50_ms,
            r.p99_ms,
            r.client_cpu_us_per_record,
            r.broker_cpu_us_per_record,
            r.errors
        );
    }
    t
}

/// The parse-only floor server on a free port, once it listens.
fn start_floor(bin: &Path) -> Hubgate {
    let port = free_port();
    let child = std::process::Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the floor server did not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
    Hubgate { child, port }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    // Kept alive (and stopped when dropped) by `_broker`.
    let (_broker, bootstrap, broker_pid): (Box<dyn std::any::Any>, String, u32) = match args.broker
    {
        BrokerKind::Tansu => {
            let t = if args.sqlite {
                Tansu::start()
            } else {
                Tansu::start_in_memory()
            };
            let (bootstrap, pid) = (t.bootstrap(), t.pid().unwrap());
            (Box::new(t), bootstrap, pid)
        }
        BrokerKind::Kafka => {
            let c = KafkaCluster::start(1);
            let (bootstrap, pid) = (c.bootstrap(), c.pid(1).unwrap());
            (Box::new(c), bootstrap, pid)
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let base = test_config_toml(&bootstrap, "");
    std::fs::write(dir.path().join("base.toml"), &base).unwrap();
    let config = hubgate_server::Config::from_toml(&base).unwrap();
    let token = token_1h(&config, "send", TOPIC);
    let kafka = hubgate_server::Kafka::new(&config.kafka).unwrap();
    kafka.create_topic(TOPIC, 1, 1, &[]).await.unwrap();
    let setup = Setup {
        bin: args.hubgate.clone(),
        bootstrap,
        broker_pid,
        dir,
        token,
        seconds: args.seconds,
    };

    let main_config = setup.config("main", "");
    let hg = Hubgate::start(&setup.bin, &main_config);
    let floor_bin = args
        .floor
        .clone()
        .unwrap_or_else(|| args.hubgate.with_file_name("floor"));
    let floor = start_floor(&floor_bin);
    if args.broker == BrokerKind::Kafka {
        // The broker's JIT warms up first: otherwise the first scenario measures it.
        let script = setup.script(1);
        let url = format!("http://127.0.0.1:{}/v1/producer/topics/{TOPIC}", hg.port);
        wrk(&url, &script, 16, 10);
    }
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for records in [1, 100] {
        for c in [1, 16, 64] {
            if !args.only.is_empty() && !args.only.contains(&format!("{records}x{c}")) {
                continue;
            }
            let mut group = vec![
                setup.http("hubgate", &hg, records, c),
                setup.direct("direct rskafka", true, records, c).await,
                setup.http("parse-only floor", &floor, records, c),
            ];
            if args.broker == BrokerKind::Kafka {
                let run = java_producer(
                    setup.broker_pid,
                    &setup.bootstrap,
                    TOPIC,
                    records,
                    c,
                    setup.seconds,
                );
                group.push(Row {
                    name: "Java producer (direct)".into(),
                    records_per_request: records,
                    concurrency: c,
                    requests_per_sec: run.records_per_sec / records as f64,
                    p50_ms: f64::NAN,
                    p99_ms: f64::NAN,
                    client_cpu_us_per_record: run.client_cpu_us_per_record,
                    broker_cpu_us_per_record: run.broker_cpu_us_per_record,
                    errors: 0,
                });
            }
            eprintln!("{}", table(&group));
            groups.push(group);
        }
    }
    let rows: Vec<Row> = groups.iter().flatten().cloned().collect();
    let rss = peak_rss_mib(hg.child.id());
    drop(hg);
    drop(floor);

    // What coalescing buys, and the Nagle stall (both sides without TCP_NODELAY).
    let mut extra = Vec::new();
    let plain = setup.config("no-coalesce", "coalesce = false");
    let hg = Hubgate::start(&setup.bin, &plain);
    extra.push(setup.http("hubgate, coalesce = false", &hg, 1, 64));
    drop(hg);
    let nagle = setup.config("nagle", "tcp_nodelay = false");
    let hg = Hubgate::start(&setup.bin, &nagle);
    extra.push(setup.http("hubgate, tcp_nodelay = false", &hg, 100, 1));
    drop(hg);
    extra.push(
        setup
            .direct("direct rskafka as is (Nagle on)", false, 100, 1)
            .await,
    );

    // Each binary: its size, and process start to its first answer (one that reaches Kafka
    // where the function does: the status check, a revocation-checked decision).
    let release = setup.bin.parent().unwrap().to_path_buf();
    let functions_config = setup.config("functions", "");
    let toml = std::fs::read_to_string(&functions_config).unwrap();
    std::fs::write(
        &functions_config,
        format!("{toml}\n[authorizer]\nhttp_endpoint = true\n"),
    )
    .unwrap();
    let manage = token_1h(&config, "manage", "");
    let status = raw_request("GET", "/v1/status", &setup.token, "");
    let mint = raw_request(
        "POST",
        "/v1/tokens",
        &manage,
        &format!(r#"{{"hub":"{TOPIC}","publisher":"device-1","ttl_secs":60}}"#),
    );
    let authorize = raw_request(
        "POST",
        "/v1/authorize",
        &manage,
        &serde_json::json!({"authorization": setup.token, "method": "POST",
            "path": format!("/v1/producer/topics/{TOPIC}")})
        .to_string(),
    );
    let binaries: [(&str, bool, &str, &String); 4] = [
        ("hubgate", true, "GET /v1/status", &status),
        ("kafka-proxy", false, "GET /v1/status", &status),
        ("token-issuer", false, "POST /v1/tokens", &mint),
        ("authorizer", false, "POST /v1/authorize", &authorize),
    ];
    // tansu 0.6 drops the connection on DescribeConfigs of an existing topic, which the token
    // issuer and the authorizer send at start-up (the store topics' settings): on tansu they
    // answer 503 until the request timeout, so they are measured on Kafka only.
    let measured = match args.broker {
        BrokerKind::Kafka => &binaries[..],
        BrokerKind::Tansu => &binaries[..2],
    };
    let process: Vec<String> = measured
        .iter()
        // Only the binaries built next to `--hubgate` (e.g. not beside a copied binary).
        .filter(|(name, ..)| release.join(name).exists())
        .map(|(name, serve, what, request)| {
            let bin = release.join(name);
            let size = std::fs::metadata(&bin).map_or(0, |m| m.len()) as f64 / 1_048_576.0;
            let config = if *serve {
                &main_config
            } else {
                &functions_config
            };
            let (median, min, max) =
                cold_starts(args.cold_runs, || cold_start(&bin, *serve, config, request));
            format!("| {name} | {size:.1} MiB | {what} | {median:.1} ms | {min:.1}–{max:.1} ms |")
        })
        .collect();

    let mut report = String::new();
    let _ = writeln!(
        report,
        "## Produce load ({} s per scenario, topic with 1 partition, {})\n\n{}",
        args.seconds,
        match (args.broker, args.sqlite) {
            (BrokerKind::Kafka, _) => "one Apache Kafka KRaft node",
            (BrokerKind::Tansu, true) => "tansu with SQLite storage",
            (BrokerKind::Tansu, false) => "tansu with in-memory storage",
        },
        table(&rows)
    );
    let ratios: Vec<String> = groups
        .iter()
        .map(|group| {
            let (hubgate, direct, floor) = (&group[0], &group[1], &group[2]);
            let java = group.get(3).map_or("—".to_owned(), |j| {
                format!("{:.2}", hubgate.records_per_sec() / j.records_per_sec())
            });
            format!(
                "| {} | {} | {:.2} | {:+.3} | {:+.3} | {:.2} | {:.2} | {java} |",
                hubgate.records_per_request,
                hubgate.concurrency,
                hubgate.records_per_sec() / direct.records_per_sec(),
                hubgate.p50_ms - direct.p50_ms,
                hubgate.p99_ms - direct.p99_ms,
                hubgate.requests_per_sec / floor.requests_per_sec,
                floor.client_cpu_us_per_record,
            )
        })
        .collect();
    let _ = writeln!(
        report,
        "### hubgate / direct rskafka, / the parse-only floor, / Kafka's Java producer\n\n| records/req | conc. | records/s vs direct | p50 added ms | p99 added ms | req/s vs floor | floor CPU µs/record | records/s vs Java |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n{}\n",
        ratios.join("\n")
    );
    let _ = writeln!(
        report,
        "## Coalescing off, and the Nagle stall\n\n{}",
        table(&extra)
    );
    let _ = writeln!(
        report,
        "## Process\n\n- peak RSS of hubgate after all the load above: {rss:.1} MiB\n\n\
         | binary (stripped release build) | size | first answer | cold start, median of {} | min–max |\n\
         |---|---:|---|---:|---:|\n{}\n",
        args.cold_runs,
        process.join("\n")
    );
    println!("{report}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&args.out, report).unwrap();
}
