//! What the benchmark binaries share: a quiet `hubgate serve` process on a free port, and
//! memory readings from `/proc`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubgate_tests::free_port;

/// A `/proc/<pid>/status` figure (`VmHWM:`, `VmRSS:`) in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of a process so far (MiB).
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// Resident memory of a process now (MiB).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// `hubgate serve` with `config` on `port`, quiet.
pub fn spawn_serve(bin: &Path, config: &Path, port: u16) -> Child {
    Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hubgate")
}

/// A `hubgate serve` process, killed when dropped.
#[derive(Debug)]
pub struct Hubgate {
    pub child: Child,
    pub port: u16,
}

impl Hubgate {
    /// Starts `bin serve --config config` on a free port and waits until it listens.
    pub fn start(bin: &Path, config: &Path) -> Self {
        let port = free_port();
        let child = spawn_serve(bin, config, port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "hubgate did not listen");
            std::thread::sleep(Duration::from_millis(5));
        }
        Self { child, port }
    }
}

impl Drop for Hubgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A record value of ~100 bytes, as a device would send.
pub fn value(i: usize) -> serde_json::Value {
    serde_json::json!({"id": format!("dev-{:04}-{i:06}", i % 1000), "temperature": 21.5,
        "humidity": 40.25, "site": "plant-7", "ts": 1_700_000_000_000u64 + i as u64})
}

/// CPU time (user + system) of a process so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// A wrk latency figure (`812.00us`, `1.20ms`, `2.01s`) in milliseconds.
pub fn parse_ms(s: &str) -> f64 {
    let num = |suffix: &str| s.strip_suffix(suffix).and_then(|n| n.parse::<f64>().ok());
    num("us")
        .map(|v| v / 1000.0)
        .or_else(|| num("ms"))
        .or_else(|| num("s").map(|v| v * 1000.0))
        .unwrap_or(f64::NAN)
}

/// Runs wrk against `url` and reads requests/s, p50, p99 and non-2xx answers.
pub fn wrk(url: &str, script: &Path, concurrency: usize, seconds: u64) -> (f64, f64, f64, u64) {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{concurrency}"), &format!("-d{seconds}s")])
        .args(["--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rps = 0.0;
    let (mut p50, mut p99, mut errors) = (f64::NAN, f64::NAN, 0);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse().unwrap_or(0.0),
            ["50%", v] => p50 = parse_ms(v),
            ["99%", v] => p99 = parse_ms(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", ..] => errors += 1,
            _ => {}
        }
    }
    (rps, p50, p99, errors)
}

/// Writes `<dir>/<name>.lua`, a wrk script that POSTs an HDInsight produce body of `records`
/// records ([`value`]s) with `token`, and returns its path.
pub fn produce_script(dir: &Path, name: &str, records: usize, token: &str) -> std::path::PathBuf {
    let body = serde_json::json!({"records": (0..records).map(|i| serde_json::json!({"value": value(i)})).collect::<Vec<_>>()});
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = [==[{token}]==]\n"
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua).unwrap();
    path
}

/// Runs `f` while `perf record` samples process `pid` (call graphs, 499 Hz) into
/// `$HUBGATE_BENCH_PERF_DIR/<name>.data`, when that variable is set; else just runs `f`.
/// `perf report -i <file> --no-children` then shows where the process spent its CPU.
pub fn perf_during<T>(pid: u32, name: &str, f: impl FnOnce() -> T) -> T {
    let Some(dir) = std::env::var_os("HUBGATE_BENCH_PERF_DIR") else {
        return f();
    };
    std::fs::create_dir_all(&dir).unwrap();
    let out = Path::new(&dir).join(format!("{name}.data"));
    let mut perf = Command::new("perf")
        .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("perf (HUBGATE_BENCH_PERF_DIR is set)");
    std::thread::sleep(Duration::from_millis(300)); // perf attaches
    let result = f();
    let _ = Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status();
    let _ = perf.wait();
    eprintln!(">> perf profile of {name}: {}", out.display());
    result
}

/// What Kafka's own Java producer (`bench/java/ProducerBench.java`) measured in one run.
#[derive(Debug, Clone, Copy)]
pub struct JavaRun {
    pub records_per_sec: f64,
    /// The producer JVM's CPU (user + system) per acknowledged record, in its measured window.
    pub client_cpu_us_per_record: f64,
    /// The broker's CPU per acknowledged record, in the same window.
    pub broker_cpu_us_per_record: f64,
}

/// Kafka's Java producer writing `records`-record batches with `records × concurrency` records
/// in flight to `topic` for `seconds` (after its own warm-up), `linger.ms=0`, no idempotence;
/// the broker process `broker_pid` is measured over the same window.
pub fn java_producer(
    broker_pid: u32,
    bootstrap: &str,
    topic: &str,
    records: usize,
    concurrency: usize,
    seconds: u64,
) -> JavaRun {
    use std::io::BufRead as _;
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/java/ProducerBench.java");
    let mut child = Command::new("java")
        .args([
            "-cp",
            &format!("{}/libs/*", hubgate_tests::kafka_home().display()),
        ])
        .args([source, bootstrap, topic])
        .args([
            records.to_string(),
            concurrency.to_string(),
            seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("java (Java 17+)");
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut b0 = Duration::ZERO;
    let mut result = None;
    for line in lines {
        let line = line.unwrap();
        if line == "START" {
            b0 = cpu_time(broker_pid);
        } else if let Some(rest) = line.strip_prefix("END ") {
            let b1 = cpu_time(broker_pid);
            let f: Vec<f64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            result = Some((f[0], f[1] / 1e3, f[2] / 1e9, (b1 - b0).as_secs_f64() * 1e6));
        }
    }
    assert!(child.wait().unwrap().success(), "ProducerBench failed");
    let (acked, cpu_us, elapsed, broker_us) = result.expect("ProducerBench printed no END");
    JavaRun {
        records_per_sec: acked / elapsed,
        client_cpu_us_per_record: cpu_us / acked,
        broker_cpu_us_per_record: broker_us / acked,
    }
}
