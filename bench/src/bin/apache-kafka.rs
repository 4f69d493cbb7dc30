//! hubgate's produce on Apache Kafka (one KRaft node from `scripts/install-kafka`) against
//! Kafka's own Java producer writing the same records to the same broker in the same run
//! (`bench/java/ProducerBench.java`: the same number of records in flight), at 1 and 100
//! records per request: records/s, client CPU per record (hubgate's process, or the Java
//! producer's JVM) and broker CPU per record, with `kafka.compression` none and lz4; and from
//! the broker's log (Kafka's `DumpLogSegments`), records per batch (on a one-partition topic,
//! records per produce request) and bytes on disk per record.
//! `benches/run` runs it; BENCHMARKS.md has the results.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use hubgate_bench::{Hubgate, JavaRun, cpu_time, java_producer, perf_during, produce_script, wrk};
use hubgate_tests::{KafkaCluster, test_config_toml, token_1h};

#[derive(Debug, Parser)]
struct Args {
    /// The hubgate binary (a release build).
    #[arg(long, default_value = "target/release/hubgate")]
    hubgate: PathBuf,
    /// Seconds each scenario runs (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/apache-kafka.md")]
    out: PathBuf,
}

/// One measured scenario.
#[derive(Debug)]
struct Row {
    name: String,
    records_per_request: usize,
    in_flight: usize,
    records_per_sec: f64,
    client_cpu_us: f64,
    broker_cpu_us: f64,
    errors: u64,
    log: LogStats,
}

/// What the broker's log of a scenario's topic holds (warm-up included).
#[derive(Debug, Default)]
struct LogStats {
    batches: u64,
    records: u64,
    bytes: u64,
}

/// Batches, records and bytes in partition 0 of `topic`, from `DumpLogSegments`' batch
/// lines (`baseOffset: … count: N … size: S …`).
fn log_stats(kafka: &hubgate_tests::SharedKafka, topic: &str) -> LogStats {
    let mut stats = LogStats::default();
    for line in kafka.dump_log(topic).lines() {
        if !line.starts_with("baseOffset:") {
            continue;
        }
        let field = |name: &str| -> u64 {
            let rest = &line[line
                .find(name)
                .unwrap_or_else(|| panic!("{name} in {line}"))
                + name.len()..];
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        stats.batches += 1;
        stats.records += field(" count: ");
        stats.bytes += field(" size: ");
    }
    assert!(stats.batches > 0, "no batch in {topic}");
    stats
}

/// The Java producer's figures as a row.
fn java_row(run: JavaRun, records: usize, concurrency: usize) -> Row {
    Row {
        name: "Java producer (direct)".into(),
        records_per_request: records,
        in_flight: concurrency,
        records_per_sec: run.records_per_sec,
        client_cpu_us: run.client_cpu_us_per_record,
        broker_cpu_us: run.broker_cpu_us_per_record,
        errors: 0,
        log: LogStats::default(),
    }
}

fn main() {
    let args = Args::parse();
    let cluster = KafkaCluster::start(1);
    let broker_pid = cluster.pid(1).unwrap();
    let bootstrap = cluster.bootstrap();
    let shared = cluster.as_shared();
    let dir = tempfile::tempdir().unwrap();
    let base = test_config_toml(&bootstrap, "");
    let config = hubgate_server::Config::from_toml(&base).unwrap();
    let token = token_1h(&config, "send", "");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kafka = hubgate_server::Kafka::new(&config.kafka).unwrap();
    let mut rows = Vec::new();
    for (records, concurrency) in [(1, 1), (1, 64), (100, 1), (100, 16)] {
        for compression in ["none", "lz4"] {
            let topic = format!("bench-{records}-{concurrency}-{compression}");
            runtime
                .block_on(kafka.create_topic(&topic, 1, 1, &[]))
                .unwrap();
            let toml = base.replace(
                "[kafka]\n",
                &format!("[kafka]\ncompression = \"{compression}\"\nrequest_timeout_ms = 10000\n"),
            );
            let toml = toml.replace("request_timeout_ms = 5000\n", "");
            let path = dir.path().join(format!("{topic}.toml"));
            std::fs::write(&path, toml).unwrap();
            let hg = Hubgate::start(&args.hubgate, &path);
            let script = produce_script(dir.path(), &topic, records, &token);
            let url = format!("http://127.0.0.1:{}/v1/producer/topics/{topic}", hg.port);
            wrk(&url, &script, concurrency, 1); // warm-up
            let (g0, b0) = (cpu_time(hg.child.id()), cpu_time(broker_pid));
            let (rps, _, _, errors) = perf_during(hg.child.id(), &topic, || {
                wrk(&url, &script, concurrency, args.seconds)
            });
            let (g1, b1) = (cpu_time(hg.child.id()), cpu_time(broker_pid));
            let total = rps * args.seconds as f64 * records as f64;
            rows.push(Row {
                name: format!("hubgate (kafka.compression = {compression})"),
                records_per_request: records,
                in_flight: concurrency,
                records_per_sec: total / args.seconds as f64,
                client_cpu_us: (g1 - g0).as_secs_f64() * 1e6 / total,
                broker_cpu_us: (b1 - b0).as_secs_f64() * 1e6 / total,
                errors,
                log: log_stats(&shared, &topic),
            });
            drop(hg);
        }
        let topic = format!("bench-{records}-{concurrency}-java");
        runtime
            .block_on(kafka.create_topic(&topic, 1, 1, &[]))
            .unwrap();
        // `records × concurrency` records in flight, as wrk has.
        let run = java_producer(
            broker_pid,
            &bootstrap,
            &topic,
            records,
            concurrency,
            args.seconds,
        );
        let mut row = java_row(run, records, concurrency);
        row.log = log_stats(&shared, &topic);
        rows.push(row);
    }
    let mut t = format!(
        "## Produce on Apache Kafka ({} s per scenario, one KRaft node, topic with 1 partition, \
         acks=all)\n\n| client | records/req | in flight (req) | records/s | client CPU µs/record | \
         broker CPU µs/record | non-2xx | records/s vs Java | records/batch | bytes on disk/record \
         |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        args.seconds
    );
    for group in rows.chunks(3) {
        let java = group.last().unwrap().records_per_sec;
        for r in group {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {} | {:.2} | {:.1} | {:.1} |",
                r.name,
                r.records_per_request,
                r.in_flight,
                r.records_per_sec,
                r.client_cpu_us,
                r.broker_cpu_us,
                r.errors,
                r.records_per_sec / java,
                r.log.records as f64 / r.log.batches as f64,
                r.log.bytes as f64 / r.log.records as f64,
            );
        }
    }
    println!("{t}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&args.out, t).unwrap();
}
