//! Cluster metadata, topic creation with configs and topic configs (DescribeConfigs), which
//! rskafka 0.6's public client does not offer (no broker list, no leader/replicas/ISR,
//! `create_topic` takes no configs, no DescribeConfigs at all).
//!
//! This uses rskafka's own protocol types and `Messenger` (exposed by its
//! `unstable-fuzzing` feature; the version is pinned exactly in the workspace) over a
//! connection this module opens itself, with `TCP_NODELAY` set. Nothing of rskafka is copied.
//! Keep every use of that feature inside this module.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rskafka::messenger::Messenger;
use rskafka::protocol::api_key::ApiKey;
use rskafka::protocol::api_version::{ApiVersion, ApiVersionRange};
use rskafka::protocol::messages::{
    CreateTopicConfig, CreateTopicRequest, CreateTopicsRequest, MetadataRequest,
    MetadataRequestTopic, MetadataResponse, ReadVersionedError, ReadVersionedType, RequestBody,
    WriteVersionedError, WriteVersionedType,
};
use rskafka::protocol::primitives::{Array, Boolean, Int8, Int16, Int32, NullableString, String_};
use rskafka::protocol::traits::{ReadType, WriteType};
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

/// Whether no broker holding a replica of `topic`'s `partition` (as the kept connection's
/// metadata places it) says it does not know the topic, asked by name without allowing
/// auto-creation (Metadata v4 `allow_auto_topic_creation = false`, KIP-204; rskafka's own
/// lookups leave it true). `false` when one of them, or the kept connection's broker, does
/// not know it. A replica that cannot be asked (down, or no answer within `patience`) does
/// not count: it is not the one rskafka would ask.
///
/// For [`crate::Kafka::partition`]: a topic deleted a moment ago is still listed by a broker
/// that has not caught up yet, while its partition's leader, which rskafka asks by name when
/// a partition client is made, would create it again. Opens a connection per replica.
pub(super) async fn known_to_replicas(
    admin: &AdminConnection,
    c: Connector<'_>,
    topic: &str,
    partition: i32,
    patience: Duration,
) -> Result<bool, KafkaError> {
    let cluster = cluster_info(admin.metadata(c).await?);
    let Some(replicas) = cluster
        .topics
        .get(topic)
        .and_then(|ps| ps.iter().find(|p| p.partition == partition))
        .map(|p| p.replicas.clone())
    else {
        return Ok(false);
    };
    let ask = |id: i32| {
        let addr = cluster
            .brokers
            .iter()
            .find(|b| b.id == id)
            .map(|b| format!("{}:{}", b.host, b.port));
        async move {
            let addr = addr?;
            let answer = async {
                connect(&addr, c.client_id, c.security)
                    .await?
                    .request(MetadataRequest {
                        topics: Some(vec![MetadataRequestTopic {
                            name: String_(topic.to_owned()),
                        }]),
                        allow_auto_topic_creation: Some(Boolean(false)),
                    })
                    .await
                    .map_err(|e| KafkaError::Admin(format!("metadata: {e}")))
            };
            let answer = tokio::time::timeout(patience, answer)
                .await
                .unwrap_or(Err(KafkaError::Timeout));
            match answer {
                Ok(r) => Some(
                    r.topics
                        .iter()
                        .any(|t| t.name.0 == topic && t.error.is_none()),
                ),
                Err(e) => {
                    tracing::debug!(broker = id, %addr, error = %e, "could not ask a replica whether it knows a topic");
                    None
                }
            }
        }
    };
    let answers = futures::future::join_all(replicas.into_iter().map(ask)).await;
    Ok(!answers.contains(&Some(false)))
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

/// DescribeConfigs (API key 32) for one topic, versions 1 to 3: the non-flexible versions
/// Kafka 2.0 to 4.x all accept (KIP-896 removed version 0 in Kafka 4.0). Message layout:
/// <https://kafka.apache.org/protocol#The_Messages_DescribeConfigs>.
#[derive(Debug)]
struct DescribeTopicConfigs {
    topic: String,
    /// `None`: every config.
    keys: Option<Vec<String>>,
}

/// `ConfigResource.Type.TOPIC` in the Java client.
const RESOURCE_TOPIC: i8 = 2;

impl RequestBody for DescribeTopicConfigs {
    type ResponseBody = DescribeConfigsResponse;
    const API_KEY: ApiKey = ApiKey::DescribeConfigs;
    const API_VERSION_RANGE: ApiVersionRange =
        ApiVersionRange::new(ApiVersion(Int16(1)), ApiVersion(Int16(3)));
    // Version 4 is the first flexible one; not sent.
    const FIRST_TAGGED_FIELD_IN_REQUEST_VERSION: ApiVersion = ApiVersion(Int16(4));
}

impl<W: std::io::Write> WriteVersionedType<W> for DescribeTopicConfigs {
    fn write_versioned(
        &self,
        writer: &mut W,
        version: ApiVersion,
    ) -> Result<(), WriteVersionedError> {
        let v = version.0.0;
        Int32(1).write(writer)?; // one resource
        Int8(RESOURCE_TOPIC).write(writer)?;
        String_(self.topic.clone()).write(writer)?;
        Array(
            self.keys
                .as_ref()
                .map(|k| k.iter().cloned().map(String_).collect()),
        )
        .write(writer)?;
        Boolean(false).write(writer)?; // include_synonyms (v1+)
        if v >= 3 {
            Boolean(false).write(writer)?; // include_documentation
        }
        Ok(())
    }
}

#[derive(Debug)]
struct DescribeConfigsResponse {
    results: Vec<DescribeConfigsResult>,
}

#[derive(Debug)]
struct DescribeConfigsResult {
    error_code: i16,
    error_message: Option<String>,
    /// Config name → value (`None`: sensitive or unset).
    configs: Vec<(String, Option<String>)>,
}

impl<R: std::io::Read> ReadVersionedType<R> for DescribeConfigsResponse {
    fn read_versioned(reader: &mut R, version: ApiVersion) -> Result<Self, ReadVersionedError> {
        let v = version.0.0;
        let _throttle_time_ms = Int32::read(reader)?;
        let count = usize::try_from(Int32::read(reader)?.0.max(0))
            .map_err(rskafka::protocol::traits::ReadError::Overflow)?;
        let mut results = Vec::with_capacity(count.min(16));
        for _ in 0..count {
            let error_code = Int16::read(reader)?.0;
            let error_message = NullableString::read(reader)?.0;
            let _resource_type = Int8::read(reader)?;
            let _resource_name = String_::read(reader)?;
            let n = usize::try_from(Int32::read(reader)?.0.max(0))
                .map_err(rskafka::protocol::traits::ReadError::Overflow)?;
            let mut configs = Vec::with_capacity(n.min(256));
            for _ in 0..n {
                let name = String_::read(reader)?.0;
                let value = NullableString::read(reader)?.0;
                let _read_only = Boolean::read(reader)?;
                let _config_source = Int8::read(reader)?;
                let _is_sensitive = Boolean::read(reader)?;
                let synonyms = Int32::read(reader)?.0.max(0);
                for _ in 0..synonyms {
                    let _name = String_::read(reader)?;
                    let _value = NullableString::read(reader)?;
                    let _source = Int8::read(reader)?;
                }
                if v >= 3 {
                    let _config_type = Int8::read(reader)?;
                    let _documentation = NullableString::read(reader)?;
                }
                configs.push((name, value));
            }
            results.push(DescribeConfigsResult {
                error_code,
                error_message,
                configs,
            });
        }
        Ok(Self { results })
    }
}

/// The configs `keys` (all when `None`) of `topic`, as the cluster applies them (explicit or
/// the broker's default).
pub(super) async fn topic_configs(
    c: Connector<'_>,
    topic: &str,
    keys: Option<&[&str]>,
) -> Result<HashMap<String, Option<String>>, KafkaError> {
    let conn = connect_any(c).await?;
    let response = conn
        .request(DescribeTopicConfigs {
            topic: topic.to_owned(),
            keys: keys.map(|k| k.iter().map(|k| (*k).to_owned()).collect()),
        })
        .await
        .map_err(|e| KafkaError::Admin(format!("describe configs: {e}")))?;
    let result = response
        .results
        .into_iter()
        .next()
        .ok_or_else(|| KafkaError::Admin("describe configs: empty response".into()))?;
    match rskafka::protocol::error::Error::new(result.error_code) {
        None => Ok(result.configs.into_iter().collect()),
        Some(e) => Err(KafkaError::from_protocol(e, result.error_message, topic)),
    }
}

/// Whether a client error is a response rskafka could not decode (on a fetch: records in a
/// codec it lacks, or a corrupt batch), as opposed to a connection or broker failure.
/// (A response body is parsed from memory: these variants are never the network's.)
pub(super) fn is_undecodable(e: &rskafka::client::error::Error) -> bool {
    use rskafka::messenger::RequestError as R;
    matches!(
        e,
        rskafka::client::error::Error::Request(
            R::ReadError(_) | R::ReadVersionedError(_) | R::TooMuchData { .. }
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Config = (String, Option<String>, Vec<(String, Option<String>)>);

    /// A DescribeConfigs response body as a broker writes it (one topic resource).
    fn encode(version: i16, error_code: i16, message: Option<&str>, configs: &[Config]) -> Vec<u8> {
        let mut b = Vec::new();
        Int32(0).write(&mut b).unwrap(); // throttle_time_ms
        Int32(1).write(&mut b).unwrap();
        Int16(error_code).write(&mut b).unwrap();
        NullableString(message.map(str::to_owned))
            .write(&mut b)
            .unwrap();
        Int8(RESOURCE_TOPIC).write(&mut b).unwrap();
        String_("t".into()).write(&mut b).unwrap();
        Int32(i32::try_from(configs.len()).unwrap())
            .write(&mut b)
            .unwrap();
        for (name, value, synonyms) in configs {
            String_(name.clone()).write(&mut b).unwrap();
            NullableString(value.clone()).write(&mut b).unwrap();
            Boolean(false).write(&mut b).unwrap();
            Int8(5).write(&mut b).unwrap();
            Boolean(value.is_none()).write(&mut b).unwrap();
            Int32(i32::try_from(synonyms.len()).unwrap())
                .write(&mut b)
                .unwrap();
            for (n, v) in synonyms {
                String_(n.clone()).write(&mut b).unwrap();
                NullableString(v.clone()).write(&mut b).unwrap();
                Int8(4).write(&mut b).unwrap();
            }
            if version >= 3 {
                Int8(2).write(&mut b).unwrap();
                NullableString(Some("doc".into())).write(&mut b).unwrap();
            }
        }
        b
    }

    fn decode(bytes: &[u8], version: i16) -> Result<DescribeConfigsResponse, ReadVersionedError> {
        DescribeConfigsResponse::read_versioned(
            &mut std::io::Cursor::new(bytes),
            ApiVersion(Int16(version)),
        )
    }

    proptest! {
        #[test]
        fn describe_configs_response_round_trip_ok(
            version in 1i16..=3,
            error_code in any::<i16>(),
            message in proptest::option::of("\\PC{0,20}"),
            configs in proptest::collection::vec(
                (
                    "[a-z.]{1,20}",
                    proptest::option::of("\\PC{0,20}"),
                    proptest::collection::vec(("[a-z.]{1,10}", proptest::option::of("[0-9]{0,5}")), 0..3),
                ),
                0..8,
            ),
        ) {
            let bytes = encode(version, error_code, message.as_deref(), &configs);
            let r = decode(&bytes, version).unwrap();
            prop_assert_eq!(r.results.len(), 1);
            let result = &r.results[0];
            prop_assert_eq!(result.error_code, error_code);
            prop_assert_eq!(&result.error_message, &message);
            let want: Vec<(String, Option<String>)> =
                configs.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(&result.configs, &want);
        }

        #[test]
        fn describe_configs_response_arbitrary_bytes_never_panic_ok(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            version in 1i16..=3,
        ) {
            let _ = decode(&bytes, version);
        }

        #[test]
        fn describe_configs_response_truncated_fails(
            version in 1i16..=3,
            cut in 1usize..40,
        ) {
            let bytes = encode(version, 0, None, &[("retention.ms".into(), Some("1".into()), vec![])]);
            let cut = cut.min(bytes.len());
            prop_assert!(decode(&bytes[..bytes.len() - cut], version).is_err());
        }
    }
}
