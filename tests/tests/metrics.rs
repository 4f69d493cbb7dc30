//! Metrics end to end: Debian's Prometheus scrapes a `hubgate serve` process (with the
//! metrics bearer token) after a known mix of traffic (accepted, throttled, unauthorized,
//! Kafka down), and PromQL over its HTTP API returns the expected counts and rates;
//! `promtool check metrics` accepts the exposition.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubgate_server::Config;
use hubgate_tests::{
    HubgateProcess, KafkaCluster, free_port, http, test_config_toml, token_1h, unique,
};

/// Prometheus: `HUBGATE_PROMETHEUS`, else Debian's (`promtool` beside it).
fn prometheus() -> PathBuf {
    let path = std::env::var("HUBGATE_PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "no Prometheus at {}: install Debian's prometheus (scripts/test does) or set HUBGATE_PROMETHEUS",
        path.display()
    );
    path
}

/// A Prometheus server scraping one target every second.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str, bearer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: hubgate\n    authorization:\n      credentials: {bearer}\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(prometheus())
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The value of an instant PromQL query returning one sample (`None`: no sample).
    async fn query(&self, promql: &str) -> Option<f64> {
        let r = http()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = r.json().await.ok()?;
        let result = body["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{promql}: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Whether Prometheus evaluates `promql` without an error (`status: success`).
    async fn evaluates(&self, promql: &str) -> Result<(), String> {
        let body: serde_json::Value = http()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(())
        } else {
            Err(body.to_string())
        }
    }

    /// Waits until `promql` returns `want` (Prometheus scrapes every second).
    async fn wait_for(&self, promql: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.query(promql).await;
            if got == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: {got:?}, expected {want}\n{}",
                std::fs::read_to_string(self._dir.path().join("prometheus.log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_prometheus_scrapes_traffic_mix_ok() {
    let prometheus_bin = prometheus();
    let mut kafka = KafkaCluster::start(1);
    let hub = unique("metered");
    let metrics_port = free_port();
    let bearer = "scrape-secret-1";
    // The hub is configured (a hub label); 2 events of burst, refilled at 1 event/s.
    let toml = test_config_toml(
        &kafka.bootstrap(),
        &format!(
            "hubs = [\"{hub}\"]\n[[throttle]]\nevents_per_sec = 1\nburst = 2\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:{metrics_port}\"\nbearer_token = \"{bearer}\"\n"
        ),
    );
    let config = Config::from_toml(&toml).unwrap();
    let gateway = HubgateProcess::start(&toml);
    let client = http();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");

    // Scraping from the start, so rates see the traffic arrive.
    let prometheus = Prometheus::start(&format!("127.0.0.1:{metrics_port}"), bearer);
    prometheus.wait_for("up{job=\"hubgate\"}", 1.0).await;

    // Without the bearer token: 401.
    let r = client.get(&metrics_url).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let create = client
        .put(gateway.url(&format!("/v1/topics/{hub}")))
        .header("authorization", token_1h(&config, "manage", ""))
        .json(&serde_json::json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 201, "{}", create.text().await.unwrap());

    let send = |publisher: &str, auth: Option<String>| {
        let mut r = client
            .post(gateway.url(&format!("/{hub}/publishers/{publisher}/messages")))
            .body("event");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    // Accepted and throttled: one publisher sends 6 at once with a burst of 2.
    let token = token_1h(&config, "send", &format!("{hub}/publishers/p1"));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(send("p1", Some(token.clone())).await);
    }
    let mut accepted = statuses.iter().filter(|s| **s == 201).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(accepted + throttled, 6, "{statuses:?}");
    assert!(accepted >= 2 && throttled >= 1, "{statuses:?}");
    // Unauthorized: 3 without a token, 2 with a token for another publisher.
    for _ in 0..3 {
        assert_eq!(send("p2", None).await, 401);
    }
    for _ in 0..2 {
        assert_eq!(send("p2", Some(token.clone())).await, 401);
    }

    // One more after the series were scraped, so that rate() sees an increase.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = token_1h(&config, "send", &format!("{hub}/publishers/p4"));
    assert_eq!(send("p4", Some(later)).await, 201);
    accepted += 1;

    // The exposition is valid for promtool (Prometheus text format without an Accept).
    let text = client
        .get(&metrics_url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let promtool = prometheus_bin.with_file_name("promtool");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(check.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for family in [
        "hubgate_http_request_duration_seconds_bucket",
        "hubgate_kafka_request_duration_seconds_bucket",
        "hubgate_kafka_produce_batch_records_bucket",
        "hubgate_kafka_produce_pending_bytes",
        "hubgate_store_entries{store=\"revocations\"}",
        "hubgate_store_refresh_age_seconds{store=\"consumer_groups\"}",
        "hubgate_long_polls_waiting",
        "hubgate_streams_open",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(
        !text.contains("\"p1\"") && !text.contains("\"p4\""),
        "a publisher name in a label:\n{text}"
    );

    // Kafka down: the next sends fail with 503 (after the request timeout).
    for id in kafka.ids() {
        kafka.kill(id);
    }
    let other = token_1h(&config, "send", &format!("{hub}/publishers/p3"));
    let down = send("p3", Some(other.clone())).await;
    assert_eq!(down, 503);

    let count = |route: &str, status: &str| {
        format!(
            "sum(hubgate_http_request_duration_seconds_count{{route=\"{route}\",status=\"{status}\"}})"
        )
    };
    prometheus
        .wait_for(&count("SendAsPublisher", "2xx"), accepted as f64)
        .await;
    // 429 and 401 are both 4xx: the throttled and the refused.
    prometheus
        .wait_for(&count("SendAsPublisher", "4xx"), (throttled + 5) as f64)
        .await;
    prometheus
        .wait_for(&count("SendAsPublisher", "5xx"), 1.0)
        .await;
    prometheus.wait_for(&count("CreateTopic", "2xx"), 1.0).await;
    prometheus
        .wait_for(
            &format!("sum(hubgate_throttled_requests_total{{hub=\"{hub}\"}})"),
            throttled as f64,
        )
        .await;
    prometheus
        .wait_for(
            "sum(hubgate_credential_failures_total{reason=\"missing_token\"})",
            3.0,
        )
        .await;
    prometheus
        .wait_for(
            "sum(hubgate_credential_failures_total{reason=\"invalid_audience\"})",
            2.0,
        )
        .await;
    // Every produce request sent counts, the one that failed too.
    prometheus
        .wait_for(
            "sum(hubgate_kafka_produce_batch_records_sum)",
            (accepted + 1) as f64,
        )
        .await;
    // Kafka down shows as produce errors (the partition's client was known: the produce
    // request itself failed).
    prometheus
        .wait_for(
            "sum(hubgate_kafka_request_errors_total{operation=\"produce\"}) >= bool 1",
            1.0,
        )
        .await;
    // The Grafana dashboard (ops/grafana/hubgate.json): every query is valid PromQL for this
    // Prometheus, and every hubgate metric it names is in the exposition.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/grafana/hubgate.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // Now that every family has samples (an empty family is not written).
    let text = client
        .get(&metrics_url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let promql = expr.replace("$__rate_interval", "1m").replace("$job", ".*");
            prometheus
                .evaluates(&promql)
                .await
                .unwrap_or_else(|e| panic!("{}: {expr}: {e}", panel["title"]));
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("hubgate_") || w.starts_with("process_"))
            {
                let family = ["_bucket", "_count", "_sum", "_total"]
                    .iter()
                    .fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
                assert!(
                    text.contains(family),
                    "the dashboard's {name} is not exposed"
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 12, "{queries} queries");

    // A rate over the scrapes: requests happened in the last minute.
    let rate = prometheus
        .query("sum(rate(hubgate_http_request_duration_seconds_count[1m]))")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rate = rate;
    while rate.is_none_or(|r| r <= 0.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rate = prometheus
            .query("sum(rate(hubgate_http_request_duration_seconds_count[1m]))")
            .await;
    }
    assert!(rate.is_some_and(|r| r > 0.0), "rate: {rate:?}");
    drop(gateway);
}
