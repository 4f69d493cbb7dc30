//! Apache Kafka for the end-to-end tests: KRaft clusters of combined broker+controller nodes
//! started from the jars of `scripts/install-kafka`, and the one cluster a test run shares.
//!
//! The shared cluster is the one named by `HUBGATE_TEST_KAFKA_BOOTSTRAP` (scripts/test starts
//! a 3-node cluster with `kafka-cluster` once per run and exports it; it may also be any
//! reachable PLAINTEXT cluster), else one this test binary starts on first use. Tests on it
//! use names of their own ([`unique`]). Tests that stop brokers start a cluster of their own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{STARTUP, free_port, not_started};

/// The Apache Kafka installation: `$HUBGATE_KAFKA_HOME`, or the default of
/// `scripts/install-kafka`.
pub fn kafka_home() -> PathBuf {
    let home = std::env::var_os("HUBGATE_KAFKA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("hubgate/kafka-4.4.0"))
        });
    match home.filter(|h| h.join(".installed").exists()) {
        Some(h) => h,
        None => panic!(
            "Apache Kafka is not installed: the end-to-end tests need a real Kafka broker. \
             Run scripts/install-kafka (or scripts/test, which does) and try again."
        ),
    }
}

/// The Apache Kafka 3.9 installation of the smoke tests on Kafka 3.x (`tests/tests/kafka39.rs`):
/// `$HUBGATE_KAFKA39_HOME`, or `~/.cache/hubgate/kafka-3.9.1`
/// (`HUBGATE_KAFKA_VERSION=3.9.1 scripts/install-kafka`, which scripts/test runs).
pub fn kafka39_home() -> PathBuf {
    let home = std::env::var_os("HUBGATE_KAFKA39_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hubgate/kafka-3.9.1"))
        });
    match home.filter(|h| h.join(".installed").exists()) {
        Some(h) => h,
        None => panic!(
            "Apache Kafka 3.9.1 is not installed: run HUBGATE_KAFKA_VERSION=3.9.1 \
             scripts/install-kafka (or scripts/test, which does) and try again."
        ),
    }
}

/// Runs `java -cp '<kafka>/libs/*' <args>` in `dir`; its standard output, trimmed. Panics
/// with both outputs when it fails.
pub fn kafka_java(args: &[&str], dir: &Path) -> String {
    kafka_java_in(&kafka_home(), args, dir)
}

/// [`kafka_java`] with the Kafka installation in `home`.
fn kafka_java_in(home: &Path, args: &[&str], dir: &Path) -> String {
    kafka_java_env(home, args, dir, None)
}

/// [`kafka_java_in`] with one more environment variable.
fn kafka_java_env(home: &Path, args: &[&str], dir: &Path, env: Option<(&str, &Path)>) -> String {
    let mut java = Command::new("java");
    if let Some((name, value)) = env {
        java.env(name, value);
    }
    let out = java
        .args(["-cp", &format!("{}/libs/*", home.display())])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run java (Apache Kafka needs Java 17 or newer)");
    assert!(
        out.status.success(),
        "java {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A name no other test of this run uses: `<base>-<process>-<counter>` (Kafka topic and hub
/// name characters only), so tests on the shared cluster never see each other's topics.
pub fn unique(base: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{base}-{}-{n}", std::process::id())
}

/// One node: its id, ports and directory, and its JVM while it runs.
#[derive(Debug)]
struct Node {
    id: i32,
    port: u16,
    controller_port: u16,
    /// The ports of [`ClusterSpec::listeners`], in order.
    listener_ports: Vec<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

/// What a [`KafkaCluster`] looks like beyond its PLAINTEXT listener.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterSpec<'a> {
    /// Number of combined broker+controller nodes.
    pub nodes: usize,
    /// More listeners, as (name, security protocol), e.g. `("SASL_TLS", "SASL_SSL")`; each
    /// gets a free port on every node. Configure them in `properties`
    /// (`listener.name.<name in lower case>.…`).
    pub listeners: &'a [(&'a str, &'a str)],
    /// More `server.properties` lines for every node.
    pub properties: &'a str,
    /// More `StorageTool format` arguments (e.g. `--add-scram`, for SCRAM users).
    pub format_args: &'a [&'a str],
    /// The Kafka installation (another version); default [`kafka_home`].
    pub home: Option<&'a Path>,
    /// More JVM arguments for every node (e.g. `-D` system properties).
    pub jvm_args: &'a [&'a str],
}

/// A KRaft cluster of `n` combined broker+controller nodes on free loopback ports, data in a
/// temp dir (kept across node restarts), each JVM with `-Xmx384m`. Nodes are killed when the
/// cluster is dropped, and by a watchdog when the test process dies without dropping it.
#[derive(Debug)]
pub struct KafkaCluster {
    home: PathBuf,
    /// [`ClusterSpec::jvm_args`].
    jvm_args: Vec<String>,
    nodes: Vec<Node>,
    /// The names of [`ClusterSpec::listeners`], in order.
    listeners: Vec<String>,
    dir: tempfile::TempDir,
}

impl KafkaCluster {
    /// Starts `n` nodes and waits until each accepts connections.
    pub fn start(n: usize) -> Self {
        Self::start_spec(ClusterSpec {
            nodes: n,
            ..ClusterSpec::default()
        })
    }

    /// Starts a cluster as `spec` says and waits until every node accepts connections.
    pub fn start_spec(spec: ClusterSpec<'_>) -> Self {
        let (n, extra_properties) = (spec.nodes, spec.properties);
        let home = spec.home.map_or_else(kafka_home, Path::to_owned);
        let dir = tempfile::Builder::new()
            .prefix("hubgate-kafka-")
            .tempdir()
            .expect("temp dir for the Kafka cluster");
        let nodes: Vec<Node> = (1..=n)
            .map(|i| Node {
                id: i32::try_from(i).unwrap(),
                port: free_port(),
                controller_port: free_port(),
                listener_ports: spec.listeners.iter().map(|_| free_port()).collect(),
                dir: dir.path().join(format!("node-{i}")),
                child: None,
            })
            .collect();
        let voters = nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let replicas = n.min(3);
        let min_isr = n.min(2);
        let cluster_id = kafka_java_in(
            &home,
            &["kafka.tools.StorageTool", "random-uuid"],
            dir.path(),
        );
        for node in &nodes {
            std::fs::create_dir_all(&node.dir).unwrap();
            let more: String = spec
                .listeners
                .iter()
                .zip(&node.listener_ports)
                .map(|((name, _), port)| format!(",{name}://127.0.0.1:{port}"))
                .collect();
            let protocols: String = spec
                .listeners
                .iter()
                .map(|(name, protocol)| format!(",{name}:{protocol}"))
                .collect();
            let properties = format!(
                "process.roles=broker,controller\nnode.id={id}\n\
                 controller.quorum.voters={voters}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}{more}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}{more}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{protocols}\n\
                 inter.broker.listener.name=PLAINTEXT\nlog.dirs={data}\n\
                 offsets.topic.replication.factor={replicas}\n\
                 transaction.state.log.replication.factor={replicas}\n\
                 transaction.state.log.min.isr={min_isr}\n\
                 group.initial.rebalance.delay.ms=0\n\
                 auto.create.topics.enable=true\n{extra_properties}\n",
                id = node.id,
                port = node.port,
                controller = node.controller_port,
                data = node.dir.join("data").display(),
            );
            std::fs::write(node.dir.join("server.properties"), properties).unwrap();
            let mut format = vec![
                "kafka.tools.StorageTool",
                "format",
                "-t",
                &cluster_id,
                "-c",
                "server.properties",
            ];
            format.extend_from_slice(spec.format_args);
            kafka_java_in(&home, &format, &node.dir);
        }
        let listeners = spec
            .listeners
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect();
        let mut cluster = Self {
            home,
            jvm_args: spec.jvm_args.iter().map(|a| (*a).to_owned()).collect(),
            nodes,
            listeners,
            dir,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_ready(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let home = self.home.clone();
        let jvm_args = self.jvm_args.clone();
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("kafka.log"))
            .unwrap();
        let child = Command::new("java")
            .args([
                "-Xmx384m",
                &format!(
                    "-Dlog4j2.configurationFile={}/log4j2.properties",
                    home.display()
                ),
            ])
            .args(&jvm_args)
            .args([
                "-cp",
                &format!("{}/libs/*", home.display()),
                "kafka.Kafka",
                "server.properties",
            ])
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start Apache Kafka (java)");
        watchdog(child.id());
        node.child = Some(child);
    }

    /// Waits until node `i` listens; panics with its log if it exits or takes too long.
    fn wait_ready(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], node.port));
        let started = Instant::now();
        let log = || std::fs::read_to_string(node.dir.join("kafka.log")).unwrap_or_default();
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let child = node.child.as_mut().expect("node started");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("Kafka node {} exited with {status}: {}", node.id, log());
            }
            assert!(
                started.elapsed() < STARTUP,
                "{}",
                not_started(child, &format!("Kafka node {}", node.id), started, &log())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>` of every node, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `127.0.0.1:<port>` of listener `name` (of [`ClusterSpec::listeners`]) on every node,
    /// comma-separated.
    pub fn listener_bootstrap(&self, name: &str) -> String {
        let i = self
            .listeners
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no listener {name}"));
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.listener_ports[i]))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node ids (1..=n).
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    fn index(&self, id: i32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("no Kafka node {id}"))
    }

    /// Kills node `id` at once (SIGKILL), as a crash or a lost machine would.
    pub fn kill(&mut self, id: i32) {
        let i = self.index(id);
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops node `id` cleanly (SIGTERM: it hands over leadership and flushes), waiting up to
    /// a minute before killing it.
    pub fn stop(&mut self, id: i32) {
        let i = self.index(id);
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let started = Instant::now();
            while matches!(c.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `id` again (same ports and data) and waits until it listens.
    pub fn start_node(&mut self, id: i32) {
        let i = self.index(id);
        assert!(self.nodes[i].child.is_none(), "node {id} is running");
        self.spawn(i);
        self.wait_ready(i);
    }

    /// Kills every node (SIGKILL) and starts them all again on the same ports and data.
    pub fn restart(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
        for i in 0..self.nodes.len() {
            self.spawn(i);
        }
        for i in 0..self.nodes.len() {
            self.wait_ready(i);
        }
    }

    /// Whether node `id` runs.
    pub fn running(&mut self, id: i32) -> bool {
        let i = self.index(id);
        self.nodes[i]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Node `id`'s process id while it runs (benchmarks read its CPU time).
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.nodes[self.index(id)].child.as_ref().map(Child::id)
    }

    /// Node `id`'s log so far.
    pub fn node_log(&self, id: i32) -> String {
        let i = self.index(id);
        std::fs::read_to_string(self.nodes[i].dir.join("kafka.log")).unwrap_or_default()
    }

    /// Every node's log, headed by its id (for assertion messages).
    pub fn log(&self) -> String {
        self.ids()
            .into_iter()
            .map(|id| format!("--- Kafka node {id} ---\n{}", self.node_log(id)))
            .collect()
    }

    /// The directory holding every node's data (`node-<id>/data`).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The bootstrap and data directory to hand to another process (`kafka-cluster`).
    pub fn as_shared(&self) -> SharedKafka {
        SharedKafka {
            bootstrap: self.bootstrap(),
            dir: Some(self.dir.path().to_owned()),
        }
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut c) = node.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Kills process `pid` (SIGKILL) within a second of this test process ending, however it
/// ends: a static cluster is never dropped, and a crashed test runs no destructor.
fn watchdog(pid: u32) {
    let _ = Command::new("bash")
        .args([
            "-c",
            "while kill -0 \"$1\" 2>/dev/null && kill -0 \"$2\" 2>/dev/null; do sleep 1; done; \
             kill -9 \"$2\" 2>/dev/null",
            "watchdog",
            &std::process::id().to_string(),
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// The Kafka cluster the tests of a run share: its bootstrap servers and, when it runs on
/// this machine, its data directory (for `DumpLogSegments`).
#[derive(Debug, Clone)]
pub struct SharedKafka {
    bootstrap: String,
    dir: Option<PathBuf>,
}

impl SharedKafka {
    /// The shared cluster: `HUBGATE_TEST_KAFKA_BOOTSTRAP` (with `HUBGATE_TEST_KAFKA_DIR`),
    /// else a 3-node cluster this test process starts on first use and keeps to its end.
    pub fn get() -> &'static Self {
        static SHARED: OnceLock<SharedKafka> = OnceLock::new();
        static OWN: OnceLock<KafkaCluster> = OnceLock::new();
        SHARED.get_or_init(|| match std::env::var("HUBGATE_TEST_KAFKA_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => Self {
                bootstrap,
                dir: std::env::var_os("HUBGATE_TEST_KAFKA_DIR").map(PathBuf::from),
            },
            _ => OWN.get_or_init(|| KafkaCluster::start(3)).as_shared(),
        })
    }

    /// The bootstrap servers, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// What Kafka's `DumpLogSegments` says of partition 0's first segment of `topic` (on the
    /// first node holding a replica): one line per batch (`compresscodec: …`, offsets).
    pub fn dump_log(&self, topic: &str) -> String {
        let dir = self.dir.as_ref().expect(
            "DumpLogSegments reads the broker's files: HUBGATE_TEST_KAFKA_DIR must name the \
             shared cluster's data directory",
        );
        let segment = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|node| {
                node.path()
                    .join(format!("data/{topic}-0/00000000000000000000.log"))
            })
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no replica of {topic}-0 under {}", dir.display()));
        kafka_java(
            &[
                "org.apache.kafka.tools.DumpLogSegments",
                "--files",
                segment.to_str().unwrap(),
            ],
            dir,
        )
    }

    /// The first `count` records of `topic` as Kafka's `ConsoleConsumer` prints them:
    /// `headers<TAB>key<TAB>value` per line.
    pub fn console_consume(&self, topic: &str, count: usize) -> Vec<String> {
        console_consume(&self.bootstrap, topic, count)
    }

    /// Runs the one-file Java program `tests/java/<program>.java` with Kafka's jars on the
    /// classpath and `args`; returns its standard output, panics on failure.
    pub fn java_program(&self, program: &str, args: &[&str]) -> String {
        java_program(program, crate::security_for(&self.bootstrap), args)
    }
}

/// The first `count` records of `topic` on `bootstrap` as Kafka's `ConsoleConsumer` prints
/// them: `headers<TAB>key<TAB>value` per line.
pub fn console_consume(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    console_consume_secured(bootstrap, crate::security_for(bootstrap), topic, count)
}

/// [`console_consume`] with `security`.
pub fn console_consume_secured(
    bootstrap: &str,
    security: Option<&crate::ClientSecurity>,
    topic: &str,
    count: usize,
) -> Vec<String> {
    let count = count.to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = security.map(|s| s.java_properties_file(dir.path()));
    let config_args = config
        .iter()
        .flat_map(|c| ["--command-config", c.to_str().unwrap()]);
    let args: Vec<&str> = [
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        &count,
        "--timeout-ms",
        "30000",
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.headers=true",
    ]
    .into_iter()
    .chain(config_args)
    .collect();
    kafka_java(&args, dir.path())
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs the one-file Java program `tests/java/<program>.java` with Kafka's jars on the
/// classpath and `args`; returns its standard output, panics on failure. Programs that
/// connect to Kafka load `$HUBGATE_KAFKA_CLIENT_PROPERTIES` when it is set: `security`'s.
pub fn java_program(
    program: &str,
    security: Option<&crate::ClientSecurity>,
    args: &[&str],
) -> String {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("java/{program}.java"));
    let mut all = vec![source.to_str().unwrap()];
    all.extend_from_slice(args);
    let dir = tempfile::tempdir().unwrap();
    let properties = security.map(|s| s.java_properties_file(dir.path()));
    kafka_java_env(
        &kafka_home(),
        &all,
        dir.path(),
        properties
            .as_ref()
            .map(|p| ("HUBGATE_KAFKA_CLIENT_PROPERTIES", p.as_path())),
    )
}
