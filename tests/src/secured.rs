//! The shared cluster behind TLS or SASL (MSK, Confluent Cloud, a cluster of one's own).
//!
//! `HUBGATE_TEST_KAFKA_CONFIG` names a file of hubgate's own `[kafka]` security keys (`tls`,
//! `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `sasl_mechanism`, `sasl_username`,
//! `sasl_password`; README "Pointing the suite at another cluster"). It is the one source:
//! the gateways' configuration takes those lines as they are, the tests' own rskafka clients
//! are built from hubgate's parse of them, and Kafka's Java clients (a `client.properties`)
//! and kafka-python (keyword arguments) get the same settings translated.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hubgate_server::config::{KafkaConfig, SaslMechanism};
use secrecy::ExposeSecret as _;

/// How the tests' clients reach a secured cluster.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    /// hubgate's `[kafka]` lines, as given.
    toml: String,
    /// Those lines as hubgate reads them.
    kafka: KafkaConfig,
}

impl ClientSecurity {
    /// Reads hubgate `[kafka]` security lines (panics, naming the problem, when hubgate
    /// would refuse them).
    pub fn from_toml(toml: &str) -> Self {
        let text = crate::config_text("127.0.0.1:9092", "", toml);
        let config = hubgate_server::Config::from_toml(&text)
            .unwrap_or_else(|e| panic!("Kafka security settings {toml:?}: {e}"));
        config
            .validate()
            .unwrap_or_else(|e| panic!("Kafka security settings {toml:?}: {e}"));
        assert!(
            config.kafka.sasl_mechanism != Some(SaslMechanism::Oauthbearer),
            "HUBGATE_TEST_KAFKA_CONFIG: OAUTHBEARER is not supported for the shared cluster (the \
             tests' independent Kafka clients have no token source); use PLAIN or SCRAM there"
        );
        Self {
            toml: toml.to_owned(),
            kafka: config.kafka,
        }
    }

    /// The lines for hubgate's `[kafka]` section.
    pub fn toml(&self) -> &str {
        &self.toml
    }

    /// hubgate's Kafka configuration for `bootstrap` with these settings.
    pub fn kafka_config(&self, bootstrap: &str) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: bootstrap.split(',').map(str::to_owned).collect(),
            ..self.kafka.clone()
        }
    }

    /// Kafka's `security.protocol` for these settings.
    fn protocol(&self) -> &'static str {
        match (self.kafka.tls, self.kafka.sasl_mechanism.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }

    fn mechanism(&self) -> Option<&'static str> {
        self.kafka.sasl_mechanism.map(|m| match m {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            // Refused in `from_toml`.
            SaslMechanism::Oauthbearer => "OAUTHBEARER",
        })
    }

    fn credentials(&self) -> (String, String) {
        (
            self.kafka.sasl_username.clone().unwrap_or_default(),
            self.kafka
                .sasl_password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default(),
        )
    }

    /// The Java client's properties (for the tools' `--command-config` and the
    /// programs of `tests/java/`, which read `$HUBGATE_KAFKA_CLIENT_PROPERTIES`).
    pub fn java_properties(&self) -> String {
        // A properties value: backslashes escaped, newlines as `\n` (PEM texts).
        let value = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
        let quoted = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let pem = |p: &Path| {
            let text =
                std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            value(text.trim())
        };
        let mut p = format!("security.protocol={}\n", self.protocol());
        if let Some(mechanism) = self.mechanism() {
            let module = match self.kafka.sasl_mechanism {
                Some(SaslMechanism::Plain) => {
                    "org.apache.kafka.common.security.plain.PlainLoginModule"
                }
                _ => "org.apache.kafka.common.security.scram.ScramLoginModule",
            };
            let (user, password) = self.credentials();
            p.push_str(&format!(
                "sasl.mechanism={mechanism}\nsasl.jaas.config={}\n",
                value(&format!(
                    "{module} required username=\"{}\" password=\"{}\";",
                    quoted(&user),
                    quoted(&password)
                ))
            ));
        }
        if let Some(ca) = &self.kafka.tls_ca_file {
            p.push_str(&format!(
                "ssl.truststore.type=PEM\nssl.truststore.certificates={}\n",
                pem(ca)
            ));
        }
        if let (Some(cert), Some(key)) = (&self.kafka.tls_cert_file, &self.kafka.tls_key_file) {
            p.push_str(&format!(
                "ssl.keystore.type=PEM\nssl.keystore.certificate.chain={}\nssl.keystore.key={}\n",
                pem(cert),
                pem(key)
            ));
        }
        p
    }

    /// [`Self::java_properties`] written to `client.properties` in `dir`.
    pub fn java_properties_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("client.properties");
        std::fs::write(&path, self.java_properties()).unwrap();
        path
    }

    /// kafka-python's keyword arguments (`tests/py/*.py` read them as JSON from
    /// `$HUBGATE_KAFKA_PY_CONFIG`).
    pub fn python_kwargs(&self) -> serde_json::Value {
        let mut kw = serde_json::json!({ "security_protocol": self.protocol() });
        if let Some(mechanism) = self.mechanism() {
            let (user, password) = self.credentials();
            kw["sasl_mechanism"] = mechanism.into();
            kw["sasl_plain_username"] = user.into();
            kw["sasl_plain_password"] = password.into();
        }
        let path = |p: &PathBuf| serde_json::Value::from(p.display().to_string());
        if let Some(ca) = &self.kafka.tls_ca_file {
            kw["ssl_cafile"] = path(ca);
        }
        if let Some(cert) = &self.kafka.tls_cert_file {
            kw["ssl_certfile"] = path(cert);
        }
        if let Some(key) = &self.kafka.tls_key_file {
            kw["ssl_keyfile"] = path(key);
        }
        kw
    }
}

/// The security of the cluster at `bootstrap`: that of `HUBGATE_TEST_KAFKA_CONFIG` when
/// `bootstrap` is the shared cluster of `HUBGATE_TEST_KAFKA_BOOTSTRAP`, else none (the
/// clusters tests start themselves are PLAINTEXT unless the test says otherwise).
pub fn security_for(bootstrap: &str) -> Option<&'static ClientSecurity> {
    static SHARED: OnceLock<Option<(String, ClientSecurity)>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let bootstrap = std::env::var("HUBGATE_TEST_KAFKA_BOOTSTRAP").ok()?;
            let file = std::env::var_os("HUBGATE_TEST_KAFKA_CONFIG")?;
            let toml = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "HUBGATE_TEST_KAFKA_CONFIG {}: {e}",
                    Path::new(&file).display()
                )
            });
            Some((bootstrap, ClientSecurity::from_toml(&toml)))
        })
        .as_ref()
        .filter(|(shared, _)| shared == bootstrap)
        .map(|(_, security)| security)
}

/// The SASL user of [`SecuredCluster`] and `tests/tests/kafka_security.rs`.
pub const TEST_USER: &str = "hubgate-svc";
/// Its password.
pub const TEST_PASSWORD: &str = "correct-horse-battery-staple";

/// Extra listeners of a secured test cluster, as (name, security protocol): SASL over
/// plaintext (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SASL over TLS, and mutual TLS.
pub const SECURED_LISTENERS: &[(&str, &str)] = &[
    ("SASL_PLAIN", "SASL_PLAINTEXT"),
    ("SASL_TLS", "SASL_SSL"),
    ("MTLS", "SSL"),
];

/// PEM texts of a test CA, a broker certificate for 127.0.0.1 signed by it (with its key),
/// and a client certificate signed by it (with its key).
#[derive(Debug)]
pub struct TestPki {
    pub ca: String,
    pub broker: (String, String),
    pub client: (String, String),
}

impl TestPki {
    /// A fresh CA and certificates (rcgen).
    pub fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "hubgate test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        Self {
            broker: leaf(
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            client: leaf(
                vec!["hubgate".to_owned()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            ca: ca.pem(),
        }
    }

    /// Writes `ca.pem`, `client.pem` and `client.key` (what clients need) to `dir`.
    pub fn write_client_files(&self, dir: &Path) {
        std::fs::write(dir.join("ca.pem"), &self.ca).unwrap();
        std::fs::write(dir.join("client.pem"), &self.client.0).unwrap();
        std::fs::write(dir.join("client.key"), &self.client.1).unwrap();
    }

    /// `server.properties` lines for [`SECURED_LISTENERS`]: the SASL mechanisms with
    /// [`TEST_USER`] (PLAIN in the JAAS config; SCRAM users come from
    /// [`Self::format_args`]), the broker's certificate, and client certificates required
    /// on `MTLS`.
    pub fn broker_properties(&self) -> String {
        // A PEM text as one properties value.
        let inline = |pem: &str| pem.trim().replace('\n', "\\n");
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        let plain = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_{TEST_USER}=\"{TEST_PASSWORD}\";"
        );
        let mut p = String::from("sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n");
        for listener in ["sasl_plain", "sasl_tls"] {
            p.push_str(&format!(
                "listener.name.{listener}.plain.sasl.jaas.config={plain}\n\
                 listener.name.{listener}.scram-sha-256.sasl.jaas.config={scram}\n\
                 listener.name.{listener}.scram-sha-512.sasl.jaas.config={scram}\n"
            ));
        }
        p.push_str(&format!(
            "ssl.keystore.type=PEM\nssl.keystore.certificate.chain={}\nssl.keystore.key={}\n\
             ssl.truststore.type=PEM\nssl.truststore.certificates={}\n\
             listener.name.mtls.ssl.client.auth=required\n",
            inline(&self.broker.0),
            inline(&self.broker.1),
            inline(&self.ca),
        ));
        p
    }

    /// `StorageTool format` arguments that create [`TEST_USER`]'s SCRAM credentials.
    pub fn format_args() -> Vec<String> {
        ["SCRAM-SHA-256", "SCRAM-SHA-512"]
            .iter()
            .flat_map(|m| {
                [
                    "--add-scram".to_owned(),
                    format!("{m}=[name={TEST_USER},password={TEST_PASSWORD}]"),
                ]
            })
            .collect()
    }
}

/// A cluster whose clients connect over SASL_SSL (SCRAM-SHA-512, a private CA): what
/// `kafka-cluster --secured` starts to run the shared tests as against MSK or Confluent.
#[derive(Debug)]
pub struct SecuredCluster {
    pub cluster: crate::KafkaCluster,
    /// The `HUBGATE_TEST_KAFKA_CONFIG` file for it (in the cluster's data directory).
    pub config_file: PathBuf,
}

impl SecuredCluster {
    pub fn start(nodes: usize) -> Self {
        let pki = TestPki::generate();
        let properties = pki.broker_properties();
        let format_args = TestPki::format_args();
        let format_args: Vec<&str> = format_args.iter().map(String::as_str).collect();
        let cluster = crate::KafkaCluster::start_spec(crate::ClusterSpec {
            nodes,
            listeners: SECURED_LISTENERS,
            properties: &properties,
            format_args: &format_args,
            ..crate::ClusterSpec::default()
        });
        let dir = cluster.data_dir().join("client");
        std::fs::create_dir_all(&dir).unwrap();
        pki.write_client_files(&dir);
        let config_file = cluster.data_dir().join("client-security.toml");
        std::fs::write(
            &config_file,
            format!(
                "tls = true\ntls_ca_file = {:?}\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
                 sasl_username = {TEST_USER:?}\nsasl_password = {TEST_PASSWORD:?}\n",
                dir.join("ca.pem").display().to_string()
            ),
        )
        .unwrap();
        Self {
            cluster,
            config_file,
        }
    }

    /// The SASL_SSL listeners, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.cluster.listener_bootstrap("SASL_TLS")
    }
}
