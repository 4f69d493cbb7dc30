//! End-to-end test harness: Apache Kafka (the cluster a run shares, or a cluster of a test's
//! own; `kafka.rs`), the hubgate server in-process or as a process on a free port, and
//! independent clients (kafka-python, a separate rskafka client, Kafka's Java tools) to
//! check what reached Kafka. tansu ([`Tansu`]) remains for the benchmarks only.
//!
//! A test that cannot find its broker fails; it never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: a panic is a failed test

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hubgate_server::Config;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use serde::Deserialize;

pub mod kafka;
pub mod pki;
pub mod secured;
pub use kafka::{
    ClusterSpec, KafkaCluster, SharedKafka, console_consume, console_consume_secured, java_program,
    kafka_home, kafka39_home, unique,
};
pub use secured::{
    ClientSecurity, SECURED_LISTENERS, SecuredCluster, TEST_PASSWORD, TEST_USER, TestPki,
    security_for,
};

/// A free TCP port on loopback for a helper process to listen on (bound, read, released).
///
/// Ports come from below the kernel's ephemeral range (`ip_local_port_range`), in turn, so
/// no outgoing connection (which takes its local port from that range) and no other
/// `free_port` of this process can take one between this check and the helper's own bind.
/// Test binaries run one after another, so per-process turns suffice.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (first, count) = (10_000, low.saturating_sub(10_000));
    if count >= 1000 {
        let start = std::process::id() % count;
        for _ in 0..count {
            let turn = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let port = u16::try_from(first + (start + turn) % count).unwrap();
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    // No room below the ephemeral range: any port the kernel offers.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The tansu binary: `$HUBGATE_TANSU`, `~/.cargo/bin/tansu`, or `tansu` on the PATH.
fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HUBGATE_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(p) = home.map(|h| h.join("bin/tansu")).filter(|p| p.exists()) {
        return p;
    }
    if Command::new("tansu").arg("--version").output().is_ok() {
        return PathBuf::from("tansu");
    }
    panic!(
        "the tansu broker is not installed: the end-to-end tests need a real Kafka-protocol \
         broker. Run scripts/install-tansu (or scripts/test, which does) and try again."
    );
}

/// How long a helper process (broker, gateway, provider) may take to start. Generous: the
/// waits end as soon as the process is ready or exits, so this only bounds a stuck start on a
/// loaded CI machine.
pub(crate) const STARTUP: Duration = Duration::from_secs(120);

/// What a helper process that did not start in time was doing: its log, and its scheduler
/// state and kernel wait channel (to tell a busy process from a blocked one).
pub(crate) fn not_started(child: &Child, name: &str, started: Instant, log: &str) -> String {
    let proc = |f: &str| std::fs::read_to_string(format!("/proc/{}/{f}", child.id()));
    let state = proc("status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("State:"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let wchan = proc("wchan").unwrap_or_default();
    format!(
        "{name} (pid {}) not ready after {:.1} s ({state}, wchan {wchan}): {log}",
        child.id(),
        started.elapsed().as_secs_f64()
    )
}

/// Waits until `child` (`name`, logging to `<dir>/<name>.log`) listens on 127.0.0.1:`port`;
/// panics with its log if it exits or takes longer than [`STARTUP`].
fn wait_listening(mut child: Child, port: u16, name: &str, dir: &tempfile::TempDir) -> Child {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let log =
        || std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status}: {}", log());
        }
        assert!(
            started.elapsed() < STARTUP,
            "{}",
            not_started(&child, name, started, &log())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Waits until `child` (`name`, logging to `<dir>/<name>.log`) writes a line starting with
/// `prefix`, and returns the rest of that line; panics with its log if it exits first or
/// takes longer than [`STARTUP`].
fn wait_line(child: &mut Child, prefix: &str, name: &str, dir: &tempfile::TempDir) -> String {
    let started = Instant::now();
    loop {
        let log =
            std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default();
        if let Some(rest) = log.lines().find_map(|l| l.strip_prefix(prefix)) {
            return rest.to_owned();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status}: {log}");
        }
        assert!(
            started.elapsed() < STARTUP,
            "{}",
            not_started(child, name, started, &log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tansu broker on a free loopback port with SQLite storage in a temp dir; records survive
/// [`Tansu::restart`]. Killed by PID when dropped. Only the benchmarks (`bench/`) use it: the
/// tests run on Apache Kafka ([`SharedKafka`], [`KafkaCluster`]).
#[derive(Debug)]
pub struct Tansu {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    storage: &'static str,
    /// The port advertised in metadata, when clients reach the broker through a proxy.
    advertised_port: Option<u16>,
    /// More `tansu broker` flags (e.g. `--authentication`).
    args: Vec<String>,
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with_storage("sqlite://tansu.db")
    }

    /// A broker keeping records in memory (benchmarks: measures the gateway, not SQLite).
    pub fn start_in_memory() -> Self {
        Self::start_with_storage("memory://tansu/")
    }

    fn start_with_storage(storage: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let mut b = Self {
            child: None,
            port: free_port(),
            dir,
            storage,
            advertised_port: None,
            args: vec![],
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!(
            "tcp://127.0.0.1:{}",
            self.advertised_port.unwrap_or(self.port)
        );
        let log = std::fs::File::create(self.dir.path().join("tansu.log")).unwrap();
        let child = Command::new(tansu_bin())
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(&self.args)
            // tansu joins the path onto its working directory: keep it relative.
            .args(["--storage-engine", self.storage])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tansu");
        self.child = Some(wait_listening(child, self.port, "tansu", &self.dir));
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// The broker's process id while it runs (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker process (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts the broker again on the same port and storage, advertising `advertised_port`
    /// (a proxy in front of it) and with more `tansu broker` flags.
    pub fn restart_with(&mut self, advertised_port: Option<u16>, args: &[&str]) {
        self.advertised_port = advertised_port;
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self.restart();
    }

    /// Runs `tansu <args>` against this broker (e.g. `user create`); panics on failure.
    pub fn tansu(&self, args: &[&str]) {
        let out = Command::new(tansu_bin())
            .args(args)
            .output()
            .expect("run tansu");
        assert!(
            out.status.success(),
            "tansu {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The namespace host the test configuration uses.
pub const NAMESPACE: &str = "localhost";

/// TOML for a configuration with three namespace rules, `manage`, `send` and `listen`, each
/// with its own fresh key, pointing at `bootstrap` (comma-separated servers, with their
/// security: [`kafka_toml`]), with store topics of its own ([`unique`] names); `extra` TOML
/// goes at the top.
pub fn test_config_toml(bootstrap: &str, extra: &str) -> String {
    test_config_toml_secured(bootstrap, security_for(bootstrap), extra)
}

/// [`test_config_toml`] with `security`'s lines in the `[kafka]` section.
pub fn test_config_toml_secured(
    bootstrap: &str,
    security: Option<&ClientSecurity>,
    extra: &str,
) -> String {
    config_text(bootstrap, extra, security.map_or("", ClientSecurity::toml))
}

/// [`test_config_toml`] with `kafka_lines` (security settings) in its `[kafka]` section.
pub(crate) fn config_text(bootstrap: &str, extra: &str, kafka_lines: &str) -> String {
    let (revocations, groups) = (unique("__hubgate_revocations"), unique("__hubgate_groups"));
    format!(
        r#"
        namespace = "{NAMESPACE}"
        revocation_topic = "{revocations}"
        consumer_group_topic = "{groups}"
        {extra}
        [kafka]
        bootstrap_servers = {}
        request_timeout_ms = 5000
        metadata_ttl_ms = 1000
        {kafka_lines}
        {}
        "#,
        servers_array(bootstrap),
        hubgate_testkit::RULES_TOML
    )
}

/// `bootstrap` (comma-separated servers) as a TOML array.
fn servers_array(bootstrap: &str) -> String {
    let servers: Vec<String> = bootstrap.split(',').map(|s| format!("{s:?}")).collect();
    format!("[{}]", servers.join(", "))
}

/// The `[kafka]` lines that reach `bootstrap` (comma-separated): `bootstrap_servers`, and the
/// shared cluster's security settings when it is secured ([`security_for`]).
pub fn kafka_toml(bootstrap: &str) -> String {
    format!(
        "bootstrap_servers = {}\n{}\n",
        servers_array(bootstrap),
        security_for(bootstrap).map_or("", ClientSecurity::toml)
    )
}

/// [`test_config_toml`], parsed.
pub fn test_config(bootstrap: &str, extra: &str) -> Config {
    Config::from_toml(&test_config_toml(bootstrap, extra)).unwrap()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with `rule`'s primary key for `https://<namespace>/<path>`.
pub fn token(config: &Config, rule: &str, path: &str, expiry: u64) -> String {
    hubgate_testkit::sas(config, rule, path, expiry)
}

/// A valid-for-an-hour token.
pub fn token_1h(config: &Config, rule: &str, path: &str) -> String {
    token(config, rule, path, now() + 3600)
}

/// The hubgate all-in-one server, in-process on a free port.
#[derive(Debug)]
pub struct Gateway {
    pub base: String,
    pub config: Arc<Config>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Serves `hubgate::app(config)` on `127.0.0.1:<free port>`.
    pub async fn start(config: Config) -> Self {
        let config = Arc::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let clients = hubgate_server::Clients::load(&config).await.unwrap();
        clients.warm_up().await.unwrap();
        let app = hubgate::app(Arc::clone(&config), &clients);
        // The listener `hubgate serve` uses, with its limits.
        let server = config.server;
        let task = tokio::spawn(async move {
            hubgate_server::listener::serve(listener, app, &server, None, std::future::pending())
                .await;
        });
        Self { base, config, task }
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP client with a timeout, so no test hangs.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The Kafka a test runs on: the shared cluster, or a cluster of its own (for tests that
/// stop brokers).
#[derive(Debug)]
pub enum Brokers {
    Shared(&'static SharedKafka),
    Own(KafkaCluster),
}

impl Brokers {
    /// The bootstrap servers, comma-separated.
    pub fn bootstrap(&self) -> String {
        match self {
            Self::Shared(s) => s.bootstrap(),
            Self::Own(c) => c.bootstrap(),
        }
    }

    /// The test's own cluster; panics on the shared one, which no test may stop.
    pub fn own(&mut self) -> &mut KafkaCluster {
        match self {
            Self::Own(c) => c,
            Self::Shared(_) => panic!("the shared cluster cannot be stopped: use Env::start_own"),
        }
    }

    /// Kills every node of the test's own cluster (SIGKILL).
    pub fn stop(&mut self) {
        let c = self.own();
        for id in c.ids() {
            c.kill(id);
        }
    }

    /// Kills and starts again every node of the test's own cluster (same ports and data).
    pub fn restart(&mut self) {
        self.own().restart();
    }
}

/// A Kafka cluster, a gateway on it, and an HTTP client.
#[derive(Debug)]
pub struct Env {
    pub broker: Brokers,
    pub gateway: Gateway,
    pub http: reqwest::Client,
}

impl Env {
    /// Starts a gateway with [`test_config`] (`extra` TOML goes at the top) on the shared
    /// cluster ([`SharedKafka::get`]).
    pub async fn start(extra: &str) -> Self {
        Self::on(Brokers::Shared(SharedKafka::get()), extra).await
    }

    /// Like [`start`](Self::start), on a cluster of `nodes` nodes of the test's own.
    pub async fn start_own(nodes: usize, extra: &str) -> Self {
        Self::on(Brokers::Own(KafkaCluster::start(nodes)), extra).await
    }

    async fn on(broker: Brokers, extra: &str) -> Self {
        let gateway = Gateway::start(test_config(&broker.bootstrap(), extra)).await;
        Self {
            broker,
            gateway,
            http: http(),
        }
    }

    /// A token for `rule` on `path`, valid for an hour.
    pub fn token(&self, rule: &str, path: &str) -> String {
        token_1h(&self.gateway.config, rule, path)
    }

    /// The primary key of `rule` (base64), for an SDK to mint a token with.
    pub fn primary_key(&self, rule: &str) -> String {
        self.gateway
            .config
            .rule(rule)
            .unwrap()
            .primary_key
            .expose()
            .to_owned()
    }

    /// Creates `topic` with `partitions` through the gateway's `/v1` API.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let r = self
            .http
            .put(self.gateway.url(&format!("/v1/topics/{topic}")))
            .header("authorization", self.token("manage", ""))
            .json(&serde_json::json!({ "partition_count": partitions }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create topic: {}", r.text().await.unwrap());
    }
}

/// hubgate's Kafka handle for `bootstrap` (comma-separated), its configuration adjusted by
/// `tweak`.
pub fn kafka_with(
    bootstrap: &str,
    tweak: impl FnOnce(&mut hubgate_server::config::KafkaConfig),
) -> hubgate_server::Kafka {
    let mut config = match security_for(bootstrap) {
        Some(security) => security.kafka_config(bootstrap),
        None => hubgate_server::config::KafkaConfig {
            bootstrap_servers: bootstrap.split(',').map(str::to_owned).collect(),
            ..Default::default()
        },
    };
    tweak(&mut config);
    hubgate_server::Kafka::new(&config).unwrap()
}

/// A record with `text` as its value, no key, no headers.
pub fn text_record(text: &str) -> rskafka::record::Record {
    rskafka::record::Record {
        key: None,
        value: Some(text.as_bytes().to_vec()),
        headers: std::collections::BTreeMap::new(),
        timestamp: chrono::Utc::now(),
    }
}

/// An rskafka client of the test's own (not the gateway's), secured as [`security_for`] says.
pub async fn kafka_client(bootstrap: &str) -> Client {
    kafka_client_secured(bootstrap, security_for(bootstrap)).await
}

/// An rskafka client of the test's own for `bootstrap` with `security` (TLS and SASL set up
/// as hubgate's own client does).
pub async fn kafka_client_secured(bootstrap: &str, security: Option<&ClientSecurity>) -> Client {
    let builder = match security {
        Some(s) => hubgate_server::kafka::client_builder(&s.kafka_config(bootstrap)).unwrap(),
        None => ClientBuilder::new(bootstrap.split(',').map(str::to_owned).collect()),
    };
    builder.build().await.unwrap()
}

/// Latest offset of every partition of `topic` (an independent client's view), or an empty
/// list if the topic does not exist. A topic created a moment ago may be missing from the
/// metadata of the broker asked (CI saw `[]` right after a create on a 3-node cluster), so
/// a missing topic is looked up again for up to 3 s.
pub async fn latest_offsets(bootstrap: &str, topic: &str) -> Vec<i64> {
    let client = kafka_client(bootstrap).await;
    let started = Instant::now();
    let t = loop {
        let found = client
            .list_topics()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name == topic);
        match found {
            Some(t) => break t,
            None if started.elapsed() < Duration::from_secs(3) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => return vec![],
        }
    };
    let mut out = vec![];
    for p in t.partitions {
        let pc = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        out.push(pc.get_offset(OffsetAt::Latest).await.unwrap());
    }
    out
}

/// A record as kafka-python read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PyRecord {
    pub partition: i32,
    pub offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

impl PyRecord {
    pub fn key(&self) -> Option<Vec<u8>> {
        self.key.as_ref().map(|k| BASE64.decode(k).unwrap())
    }
    pub fn value(&self) -> Option<Vec<u8>> {
        self.value.as_ref().map(|v| BASE64.decode(v).unwrap())
    }
    /// Header name → value bytes.
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref()
                        .map(|v| BASE64.decode(v).unwrap())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Reads the whole topic with kafka-python (`$HUBGATE_PYTHON`, set up by scripts/test).
pub async fn kafka_python_read(bootstrap: &str, topic: &str) -> Vec<PyRecord> {
    kafka_python_read_secured(bootstrap, security_for(bootstrap), topic).await
}

/// [`kafka_python_read`] with `security`.
pub async fn kafka_python_read_secured(
    bootstrap: &str,
    security: Option<&ClientSecurity>,
    topic: &str,
) -> Vec<PyRecord> {
    let out = kafka_python("read_topic.py", security, &[bootstrap, topic]).await;
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes `count` records to partition 0 of `topic` with kafka-python
/// (`tests/py/produce.py`), compressed with `codec`: key `k<i>`, value `value-<i>-<codec>`,
/// header `n` = i.
pub async fn kafka_python_produce(bootstrap: &str, topic: &str, codec: &str, count: usize) {
    let count = count.to_string();
    let args = [bootstrap, topic, codec, count.as_str()];
    kafka_python("produce.py", security_for(bootstrap), &args).await;
}

/// Runs `tests/py/<script>` with `args` under `$HUBGATE_PYTHON` (kafka-python, set up by
/// scripts/test), with `security`'s settings in `$HUBGATE_KAFKA_PY_CONFIG`; its standard
/// output. Panics with its standard error when it fails.
async fn kafka_python(script: &str, security: Option<&ClientSecurity>, args: &[&str]) -> String {
    let python = std::env::var("HUBGATE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HUBGATE_PYTHON is not set: run the tests with scripts/test (it installs kafka-python)"
        )
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join(script);
    let kwargs = security.map_or_else(String::new, |s| s.python_kwargs().to_string());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(&script)
            .args(&args)
            .env("HUBGATE_KAFKA_PY_CONFIG", kwargs)
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `hubgate` binary: `$HUBGATE_BIN`, or `hubgate` next to the test's `deps/` directory
/// (`cargo build -p hubgate`, which scripts/test runs, puts it there).
pub fn hubgate_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HUBGATE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("hubgate");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p hubgate` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A `hubgate serve` process on a free port, with its own config file. Killed when dropped.
#[derive(Debug)]
pub struct HubgateProcess {
    child: Option<Child>,
    pub base: String,
    port: u16,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// `ulimit -n` of the process, if set.
    open_files: Option<u64>,
}

impl HubgateProcess {
    /// Starts `hubgate serve` with `config_toml` and waits until it listens.
    pub fn start(config_toml: &str) -> Self {
        Self::start_with_env(config_toml, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables (e.g. [`Moto::env`]).
    pub fn start_with_env(config_toml: &str, env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hubgate.toml"), config_toml).unwrap();
        let port = free_port();
        let mut p = Self {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            env: env.to_vec(),
            open_files: None,
        };
        p.spawn();
        p
    }

    /// Like [`start`](Self::start), with at most `open_files` descriptors (`ulimit -n`).
    pub fn start_with_open_files(config_toml: &str, open_files: u64) -> Self {
        let mut p = Self::start(config_toml);
        p.stop();
        p.open_files = Some(open_files);
        p.spawn();
        p
    }

    /// Runs `hubgate invoke` (one token-issuer event) with this process's config and
    /// environment; returns the printed JSON, or the error text.
    pub async fn invoke(&self, event: &serde_json::Value) -> Result<serde_json::Value, String> {
        let mut cmd = Command::new(hubgate_bin());
        cmd.args(["invoke", "--config"])
            .arg(self.dir.path().join("hubgate.toml"))
            .args(["--event", &event.to_string()])
            .env("HUBGATE_LOG_FORMAT", "text")
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("hubgate.log")).unwrap();
        let mut command = match self.open_files {
            None => Command::new(hubgate_bin()),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(hubgate_bin());
                sh
            }
        };
        let child = command
            .args(["serve", "--config"])
            .arg(self.dir.path().join("hubgate.toml"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("HUBGATE_LOG_FORMAT", "text")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start hubgate");
        self.child = Some(wait_listening(child, self.port, "hubgate", &self.dir));
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hubgate.log")).unwrap_or_default()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (it has not crashed).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM and waits for the process to exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the process runs");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        child.wait().unwrap()
    }

    /// Sends SIGHUP (reload the TLS certificate files).
    pub fn hangup(&self) {
        let child = self.child.as_ref().expect("the process runs");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:<port>` + `path` (the name the test certificates carry).
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Stops (SIGKILL) and starts the process again with the same config and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for HubgateProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An Azure SDK whose own SAS code mints a token at run time.
#[derive(Debug, Clone, Copy)]
pub enum Sdk {
    /// Python `azure-eventhub` (`EventHubSharedKeyCredential.get_token`).
    Python,
    /// JavaScript `@azure/core-amqp` (`createSasTokenProvider(...).getToken`).
    JavaScript,
    /// Java `com.azure:azure-messaging-eventhubs` (`EventHubSharedKeyCredential.getToken`,
    /// tests/java/SdkToken.java; the SDK's jars from scripts/java-env).
    Java,
}

/// A token minted by `sdk` for `audience` with `key_name` / `key`.
pub async fn sdk_token(sdk: Sdk, key_name: &str, key: &str, audience: &str) -> String {
    let (program, mut args) = match sdk {
        Sdk::Python => (
            std::env::var("HUBGATE_PYTHON").expect("HUBGATE_PYTHON (scripts/test sets it)"),
            vec![concat!(env!("CARGO_MANIFEST_DIR"), "/py/sdk_token.py").to_owned()],
        ),
        Sdk::JavaScript => (
            "node".to_owned(),
            vec![format!(
                "{}/sdk_token.mjs",
                std::env::var("HUBGATE_NODE_DIR").expect("HUBGATE_NODE_DIR (scripts/test sets it)")
            )],
        ),
        Sdk::Java => (
            "java".to_owned(),
            vec![
                "-cp".to_owned(),
                format!(
                    "{}/*",
                    std::env::var("HUBGATE_JAVA_SDK").expect(
                        "HUBGATE_JAVA_SDK (scripts/test sets it: the jars of scripts/java-env)"
                    )
                ),
                concat!(env!("CARGO_MANIFEST_DIR"), "/java/SdkToken.java").to_owned(),
            ],
        ),
    };
    args.extend([key_name.to_owned(), key.to_owned(), audience.to_owned()]);
    let out =
        tokio::task::spawn_blocking(move || Command::new(program).args(args).output().unwrap())
            .await
            .unwrap();
    assert!(
        out.status.success(),
        "{sdk:?} SDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A moto server (AWS API emulator from PyPI, installed by scripts/python-env) on a free port.
#[derive(Debug)]
pub struct Moto {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts `moto_server` and waits until it listens.
    pub fn start() -> Self {
        let python = PathBuf::from(
            std::env::var("HUBGATE_PYTHON").expect("HUBGATE_PYTHON (scripts/test sets it)"),
        );
        let server = python.with_file_name("moto_server");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {}: {e} (scripts/python-env installs moto)",
                    server.display()
                )
            });
        let child = wait_listening(child, port, "moto", &dir);
        Self {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a process that should talk to this moto with dummy credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Calls a Secrets Manager action (AWS JSON 1.1 protocol) directly.
    pub async fn secretsmanager(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let r = http()
            .post(self.endpoint())
            .header("x-amz-target", format!("secretsmanager.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(status.is_success(), "{action}: {status} {v}");
        v
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A real OpenID provider (npm `oidc-provider`, tests/js/oidc.mjs) on a free port, issuing
/// RS256 client-credentials access tokens under the Entra-shaped issuer
/// `http://127.0.0.1:<port>/<tid>/v2.0`.
#[derive(Debug)]
pub struct Oidc {
    child: Option<Child>,
    port: u16,
    /// Access-token lifetime (s).
    ttl: u64,
    pub tid: String,
    pub kid: String,
    dir: tempfile::TempDir,
}

impl Oidc {
    /// Starts the provider with a fresh RSA key named `kid`, on a port it chooses itself.
    pub fn start(tid: &str, kid: &str) -> Self {
        Self::start_with_ttl(tid, kid, 600)
    }

    /// [`Oidc::start`] with access tokens valid for `ttl` seconds.
    pub fn start_with_ttl(tid: &str, kid: &str, ttl: u64) -> Self {
        let mut o = Self {
            child: None,
            port: 0,
            ttl,
            tid: tid.to_owned(),
            kid: kid.to_owned(),
            dir: tempfile::tempdir().unwrap(),
        };
        o.spawn();
        o
    }

    /// Starts `oidc.mjs` on `self.port` (0: any free port, then remembered so a restart keeps
    /// the issuer) and waits for its `ready` line.
    fn spawn(&mut self) {
        let node_dir =
            std::env::var("HUBGATE_NODE_DIR").expect("HUBGATE_NODE_DIR (scripts/test sets it)");
        let log = std::fs::File::create(self.dir.path().join("oidc.log")).unwrap();
        let mut child = Command::new("node")
            .arg(format!("{node_dir}/oidc.mjs"))
            .args([&self.port.to_string(), &self.tid, &self.kid])
            .arg(self.dir.path())
            .env("OIDC_TOKEN_TTL", self.ttl.to_string())
            // The provider exits when this pipe closes: it never outlives the test process.
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start node oidc.mjs");
        let ready = wait_line(&mut child, "ready ", "oidc", &self.dir);
        self.port = ready
            .split(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("oidc ready line without a port: {ready}"));
        self.child = Some(child);
    }

    /// Restarts with a new signing key named `kid` (a key rotation at the provider).
    pub fn rotate(&mut self, kid: &str) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        kid.clone_into(&mut self.kid);
        self.spawn();
    }

    /// The issuer URL.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}/{}/v2.0", self.port, self.tid)
    }

    /// The provider's signing key (PEM), for forging well-signed bad tokens.
    pub fn key_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("key.pem")).unwrap()
    }

    /// The provider's public key (PEM).
    pub fn public_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("public.pem")).unwrap()
    }

    /// A key the provider does not publish (PEM).
    pub fn other_key_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("other-key.pem")).unwrap()
    }

    /// A client-credentials access token for `client` (`member`, `outsider`, `graph`).
    pub async fn token(&self, client: &str) -> String {
        let r = http()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client, Some("secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "token for {client}: {}",
            r.status()
        );
        let v: serde_json::Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A stand-in for Microsoft Graph: `POST /token` and `POST /v1.0/servicePrincipals/{oid}/
/// checkMemberGroups`, answering that `member_oid` belongs to `groups` (or failing with 500).
#[derive(Debug)]
pub struct GraphStub {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl GraphStub {
    pub async fn start(member_oid: &str, groups: &[&str], fail: bool) -> Self {
        use axum::extract::Path;
        use axum::routing::post;
        let member = member_oid.to_owned();
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let app = axum::Router::new()
            .route(
                "/token",
                post(|| async {
                    axum::Json(
                        serde_json::json!({"access_token": "graph-app-token", "expires_in": 3600}),
                    )
                }),
            )
            .route(
                "/v1.0/{kind}/{oid}/checkMemberGroups",
                post(move |Path((_kind, oid)): Path<(String, String)>| {
                    let (member, groups) = (member.clone(), groups.clone());
                    async move {
                        if fail {
                            return Err(http::StatusCode::INTERNAL_SERVER_ERROR);
                        }
                        let value = if oid == member { groups } else { vec![] };
                        Ok(axum::Json(serde_json::json!({ "value": value })))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, task }
    }
}

impl Drop for GraphStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}
