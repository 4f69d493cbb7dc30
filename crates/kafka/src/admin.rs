//! Cluster metadata and topic creation with configs, which rskafka 0.6's public client
//! does not offer (no broker list, no leader/replicas/ISR, `create_topic` takes no configs).
//!
//! This uses rskafka's own protocol types and `Messenger` (exposed by its
//! `unstable-fuzzing` feature; the version is pinned exactly in the workspace) over a
//! connection this module opens itself, with `TCP_NODELAY` set. Nothing of rskafka is copied.
//! Keep every use of that feature inside this module.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rskafka::messenger::Messenger;
use rskafka::protocol::messages::{
    CreateTopicConfig, CreateTopicRequest, CreateTopicsRequest, MetadataRequest, MetadataResponse,
};
use rskafka::protocol::primitives::{Int16, Int32, NullableString, String_};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::KafkaError;
use crate::security::Security;

/// A broker as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// The cluster: brokers, controller, topics with their partitions.
#[derive(Debug, Clone, Default)]
pub struct ClusterInfo {
    pub brokers: Vec<BrokerInfo>,
    pub controller: Option<i32>,
    /// Non-internal topics → partitions sorted by id.
    pub topics: HashMap<String, Vec<PartitionInfo>>,
}

const MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

/// A plain or TLS connection to a broker.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

type Connection = Messenger<Box<dyn Stream>>;

/// Opens a connection to one broker (TLS and SASL as configured) and negotiates API versions.
async fn connect(
    addr: &str,
    client_id: &Arc<str>,
    security: &Security,
) -> Result<Connection, KafkaError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| KafkaError::Admin(format!("connect {addr}: {e}")))?;
    tcp.set_nodelay(true)
        .map_err(|e| KafkaError::Admin(format!("set TCP_NODELAY: {e}")))?;
    let stream: Box<dyn Stream> = match &security.tls {
        None => Box::new(tcp),
        Some(tls) => Box::new(
            tokio_rustls::TlsConnector::from(Arc::clone(tls))
                .connect(Security::server_name(addr)?, tcp)
                .await
                .map_err(|e| KafkaError::Admin(format!("TLS with {addr}: {e}")))?,
        ),
    };
    let mut messenger = Messenger::new(stream, MAX_MESSAGE_SIZE, Arc::clone(client_id));
    messenger
        .sync_versions()
        .await
        .map_err(|e| KafkaError::Admin(format!("api versions with {addr}: {e}")))?;
    if let Some((_, sasl)) = &security.sasl {
        messenger
            .do_sasl(sasl.clone())
            .await
            .map_err(|e| KafkaError::Admin(format!("SASL with {addr}: {e}")))?;
    }
    Ok(messenger)
}

/// Where and how admin connections connect.
#[derive(Debug, Clone, Copy)]
pub(super) struct Connector<'a> {
    pub(super) bootstrap: &'a [String],
    pub(super) client_id: &'a Arc<str>,
    pub(super) security: &'a Security,
}

/// Connects to the first bootstrap broker that answers.
async fn connect_any(c: Connector<'_>) -> Result<Connection, KafkaError> {
    let mut last = KafkaError::Admin("no bootstrap servers".into());
    for addr in c.bootstrap {
        match connect(addr, c.client_id, c.security).await {
            Ok(m) => return Ok(m),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn request_metadata(m: &Connection) -> Result<MetadataResponse, KafkaError> {
    m.request(MetadataRequest {
        topics: None,
        allow_auto_topic_creation: None,
    })
    .await
    .map_err(|e| KafkaError::Admin(format!("metadata: {e}")))
}

fn cluster_info(r: MetadataResponse) -> ClusterInfo {
    let brokers = r
        .brokers
        .into_iter()
        .map(|b| BrokerInfo {
            id: b.node_id.0,
            host: b.host.0,
            port: b.port.0,
            rack: b.rack.and_then(|r| r.0),
        })
        .collect();
    let topics = r
        .topics
        .into_iter()
        .filter(|t| t.error.is_none() && !matches!(t.is_internal, Some(b) if b.0))
        .map(|t| {
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index.0,
                    leader: p.leader_id.0,
                    replicas: p
                        .replica_nodes
                        .0
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.0)
                        .collect(),
                    isr: p
                        .isr_nodes
                        .0
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.0)
                        .collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            (t.name.0, partitions)
        })
        .collect();
    ClusterInfo {
        brokers,
        controller: r.controller_id.map(|c| c.0),
        topics,
    }
}

/// The metadata connection: opened on first use and kept, so metadata requests do not each
/// pay for a connection, version negotiation, TLS and SASL. A request that fails or is
/// abandoned (timed out) drops it, and the next one connects again.
#[derive(Default)]
pub(super) struct AdminConnection {
    /// Never held across an await.
    kept: parking_lot::Mutex<Option<Arc<Connection>>>,
    /// One connect at a time.
    connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AdminConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConnection").finish_non_exhaustive()
    }
}

impl AdminConnection {
    fn kept(&self) -> Option<Arc<Connection>> {
        self.kept.lock().clone()
    }

    /// The kept connection, or a new one; `true` when it was kept.
    async fn get(&self, c: Connector<'_>) -> Result<(Arc<Connection>, bool), KafkaError> {
        if let Some(m) = self.kept() {
            return Ok((m, true));
        }
        let _one = self.connecting.lock().await;
        if let Some(m) = self.kept() {
            return Ok((m, false));
        }
        let m = Arc::new(connect_any(c).await?);
        *self.kept.lock() = Some(Arc::clone(&m));
        Ok((m, false))
    }

    /// Drops `m` if it is still the kept connection.
    fn forget(&self, m: &Arc<Connection>) {
        let mut kept = self.kept.lock();
        if kept.as_ref().is_some_and(|k| Arc::ptr_eq(k, m)) {
            *kept = None;
        }
    }

    /// A metadata request on `m`, forgetting `m` unless it answers (an error, or the future
    /// dropped by a timeout, leaves no connection in an unknown state behind).
    async fn request(&self, m: &Arc<Connection>) -> Result<MetadataResponse, KafkaError> {
        struct ForgetUnlessAnswered<'a>(&'a AdminConnection, Option<&'a Arc<Connection>>);
        impl Drop for ForgetUnlessAnswered<'_> {
            fn drop(&mut self) {
                if let Some(m) = self.1 {
                    self.0.forget(m);
                }
            }
        }
        let mut guard = ForgetUnlessAnswered(self, Some(m));
        let r = request_metadata(m).await?;
        guard.1 = None;
        Ok(r)
    }

    /// A metadata request on the kept connection. If that connection fails (the broker
    /// restarted, or closed an idle connection), it is sent once more on a new one.
    async fn metadata(&self, c: Connector<'_>) -> Result<MetadataResponse, KafkaError> {
        let (m, kept) = self.get(c).await?;
        match self.request(&m).await {
            Err(e) if kept => {
                tracing::debug!(error = %e, "kept metadata connection failed; connecting again");
                let (m, _) = self.get(c).await?;
                self.request(&m).await
            }
            r => r,
        }
    }
}

/// Reads the cluster's metadata, on the kept connection to a bootstrap broker.
pub(super) async fn cluster(
    admin: &AdminConnection,
    c: Connector<'_>,
) -> Result<ClusterInfo, KafkaError> {
    Ok(cluster_info(admin.metadata(c).await?))
}

/// Creates a topic with configs, on the controller.
pub(super) async fn create_topic(
    c: Connector<'_>,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
    timeout: Duration,
) -> Result<(), KafkaError> {
    let bootstrap_conn = connect_any(c).await?;
    let info = cluster_info(request_metadata(&bootstrap_conn).await?);
    let controller_addr = info
        .controller
        .and_then(|id| info.brokers.iter().find(|b| b.id == id))
        .map(|b| format!("{}:{}", b.host, b.port));
    let controller = match controller_addr {
        Some(addr) => connect(&addr, c.client_id, c.security)
            .await
            .unwrap_or(bootstrap_conn),
        None => bootstrap_conn,
    };
    let response = controller
        .request(CreateTopicsRequest {
            topics: vec![CreateTopicRequest {
                name: String_(name.to_owned()),
                num_partitions: Int32(partitions),
                replication_factor: Int16(replication_factor),
                assignments: vec![],
                configs: configs
                    .iter()
                    .map(|(k, v)| CreateTopicConfig {
                        name: String_(k.clone()),
                        value: NullableString(Some(v.clone())),
                        tagged_fields: None,
                    })
                    .collect(),
                tagged_fields: None,
            }],
            timeout_ms: Int32(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)),
            validate_only: None,
            tagged_fields: None,
        })
        .await
        .map_err(|e| KafkaError::Admin(format!("create topic: {e}")))?;
    let topic = response
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| KafkaError::Admin("create topic: empty response".into()))?;
    match topic.error {
        None => Ok(()),
        Some(e) => Err(KafkaError::from_protocol(
            e,
            topic.error_message.and_then(|m| m.0),
            name,
        )),
    }
}
