//! What recording metrics costs the produce path: the same release build, broker and run with
//! `[metrics] enabled = false` and `true` (the exposition scraped every second meanwhile, as
//! Prometheus would), 1-record and 100-record produce requests at c1 and c64 (`wrk`:
//! requests/s, p99, server CPU per request), in alternating pairs; the pair with the median
//! ratio is reported. Goal: on ≥ 0.97× off. One Apache Kafka node; `benches/run` runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use hubgate_bench::{Hubgate, cpu_time, produce_script, wrk};
use hubgate_tests::{KafkaCluster, free_port, test_config_toml, token_1h};

/// Off/on pairs measured per scenario.
const ROUNDS: usize = 5;

#[derive(Debug, Parser)]
struct Args {
    /// The hubgate binary (a release build).
    #[arg(long, default_value = "target/release/hubgate")]
    hubgate: PathBuf,
    /// Seconds each measurement runs (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/metrics.md")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p99: f64,
    cpu_us: f64,
    errors: u64,
}

fn load(hg: &Hubgate, url: &str, script: &std::path::Path, c: usize, seconds: u64) -> Load {
    wrk(url, script, c, 1); // warm-up
    let c0 = cpu_time(hg.child.id());
    let (rps, _, p99, errors) = wrk(url, script, c, seconds);
    let cpu = cpu_time(hg.child.id()) - c0;
    Load {
        rps,
        p99,
        cpu_us: cpu.as_secs_f64() * 1e6 / (rps * seconds as f64).max(1.0),
        errors,
    }
}

fn main() {
    let args = Args::parse();
    let cluster = KafkaCluster::start(1);
    let bootstrap = cluster.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let off_toml = test_config_toml(&bootstrap, "");
    let on_toml = test_config_toml(
        &bootstrap,
        &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    let config = hubgate_server::Config::from_toml(&off_toml).unwrap();
    let topic = "metrics-bench";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kafka = hubgate_server::Kafka::new(&config.kafka).unwrap();
    runtime
        .block_on(kafka.create_topic(topic, 1, 1, &[]))
        .unwrap();
    let start = |name: &str, toml: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        Hubgate::start(&args.hubgate, &path)
    };
    let off = start("off", &off_toml);
    let on = start("on", &on_toml);
    // The same token works on both: the rules and keys come from one file each, equal.
    let on_config = hubgate_server::Config::from_toml(&on_toml).unwrap();
    let tokens = [
        token_1h(&config, "send", ""),
        token_1h(&on_config, "send", ""),
    ];
    let path = format!("/v1/producer/topics/{topic}");

    // A scraper, as Prometheus: every second, the whole exposition.
    let (stop, scrapes) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let scraper = {
        let (stop, scrapes) = (Arc::clone(&stop), Arc::clone(&scrapes));
        std::thread::spawn(move || {
            let url = format!("http://127.0.0.1:{metrics_port}/metrics");
            while !stop.load(Ordering::Relaxed) {
                let out = std::process::Command::new("curl")
                    .args(["-sf", "-o", "/dev/null", "-H"])
                    .arg("accept: application/openmetrics-text")
                    .arg(&url)
                    .status();
                if out.is_ok_and(|s| s.success()) {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };

    let mut rows = Vec::new();
    for records in [1, 100] {
        let scripts = [
            produce_script(dir.path(), &format!("off-{records}"), records, &tokens[0]),
            produce_script(dir.path(), &format!("on-{records}"), records, &tokens[1]),
        ];
        for c in [1, 64] {
            // Warm both (and the broker's JIT) before measuring.
            for (hg, script) in [(&off, &scripts[0]), (&on, &scripts[1])] {
                wrk(&format!("http://127.0.0.1:{}{path}", hg.port), script, c, 2);
            }
            let mut pairs: Vec<(Load, Load)> = (0..ROUNDS)
                .map(|round| {
                    let measure = |hg: &Hubgate, script| {
                        load(
                            hg,
                            &format!("http://127.0.0.1:{}{path}", hg.port),
                            script,
                            c,
                            args.seconds,
                        )
                    };
                    // Alternate which goes first: drift favours neither.
                    if round % 2 == 0 {
                        let a = measure(&off, &scripts[0]);
                        (a, measure(&on, &scripts[1]))
                    } else {
                        let b = measure(&on, &scripts[1]);
                        (measure(&off, &scripts[0]), b)
                    }
                })
                .collect();
            pairs.sort_by(|a, b| (a.1.rps / a.0.rps).total_cmp(&(b.1.rps / b.0.rps)));
            let ratios: Vec<String> = pairs
                .iter()
                .map(|(off, on)| format!("{:.3}", on.rps / off.rps))
                .collect();
            let (o, n) = pairs[pairs.len() / 2];
            rows.push((records, c, o, n, ratios.join(", ")));
        }
    }
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();

    let mut t = format!(
        "## Metrics on against off ({} s per measurement, one Apache Kafka node, the exposition \
         scraped every second while on: {} scrapes; median of {ROUNDS} alternating pairs, every \
         pair's ratio in brackets)\n\n\
         | records/request | conc. | off req/s | on req/s | on / off | off p99 ms | on p99 ms \
         | CPU µs/req off | on | non-2xx |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        args.seconds,
        scrapes.load(Ordering::Relaxed)
    );
    for (records, c, o, n, ratios) in &rows {
        t.push_str(&format!(
            "| {records} | {c} | {:.0} | {:.0} | **{:.3}** ({ratios}) | {:.2} | {:.2} | {:.1} | {:.1} | {} |\n",
            o.rps,
            n.rps,
            n.rps / o.rps,
            o.p99,
            n.p99,
            o.cpu_us,
            n.cpu_us,
            o.errors + n.errors
        ));
    }
    println!("{t}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&args.out, t).unwrap();
}
