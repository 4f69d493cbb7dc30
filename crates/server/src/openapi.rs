//! The OpenAPI 3.1 description of every route of every function (spec.openapis.org/oas/v3.1.0),
//! served at `GET /openapi.json`.
//!
//! Built from [`ROUTES`]: every route gets exactly one operation and its path parameters come
//! from its template, so the document cannot list a route the routers lack or miss one they
//! serve (`functions/hubgate/tests/routes.rs` checks both ways). Schemas are checked against
//! live answers by schemathesis (`tests/tests/openapi.rs`).

use serde_json::{Map, Value, json};

use crate::names::{MAX_CONSUMER_GROUP_LEN, MAX_HUB_LEN, MAX_PUBLISHER_LEN};
use crate::routes::{AuthorizerRoute, IssuerRoute, Need, ProxyRoute, ROUTES, Route, RouteId};

/// Who may call an operation, for its `security` and its 401/403 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No credential.
    Public,
    /// A SAS token or a bearer token.
    Credential,
    /// The credential is in the body (`POST /v1/authorize`).
    InBody,
}

/// One operation's details.
#[derive(Debug)]
struct Operation {
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    access: Access,
    query: Vec<Value>,
    body: Option<Value>,
    /// Status → response object.
    responses: Vec<(&'static str, Value)>,
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// `response` that is also an Atom document (`application/atom+xml`) for Event Hubs REST
/// clients: an Atom body, an `api-version` query or `Accept: application/atom+xml`, unless
/// `Accept` asks for JSON.
fn or_atom(mut response: Value, atom_type: &str) -> Value {
    response["content"][format!("application/atom+xml;type={atom_type};charset=utf-8")] = json!({ "schema": { "type": "string", "description": "An Atom (RFC 4287) document as Event Hubs answers it." } });
    response
}

fn empty_response(description: &str) -> Value {
    json!({ "description": description })
}

fn json_body(schema: Value, required: bool) -> Value {
    json!({ "required": required, "content": { "application/json": { "schema": schema } } })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// The `NextOffset` header of reads.
fn next_offset_header() -> Value {
    json!({ "NextOffset": {
        "description": "Where the next read continues.",
        "schema": { "type": "integer", "minimum": 0 }
    }})
}

fn with_headers(mut response: Value, headers: Value) -> Value {
    response["headers"] = headers;
    response
}

/// A hub name: not internal (`__…`), not a path keyword of the gateway, not `.` or `..`.
fn hub_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_HUB_LEN,
        "pattern": r"^(?!__)(?![vV]1$)(?![oO][pP][eE][nN][aA][pP][iI]\.[jJ][sS][oO][nN]$)(?!\.\.?$)[A-Za-z0-9._-]+$"
    })
}

/// A publisher name (`names::validate_publisher`): no control characters, no `/`, not `.`
/// or `..`; percent-encoded in the path, compared with ASCII letters lower-cased.
fn publisher_schema() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_PUBLISHER_LEN,
        "pattern": r"^(?!\.\.?$)[^/\u0000-\u001f\u007f-\u009f]+$"
    })
}

fn consumer_group_schema() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_CONSUMER_GROUP_LEN,
        "pattern": r"^(\$Default|[A-Za-z0-9._-]+)$"
    })
}

/// `schema` or null (an `Option` field: serde takes null as absent).
fn or_null(mut schema: Value) -> Value {
    schema["type"] = json!([schema["type"].clone(), "null"]);
    schema
}

/// The schema of a path parameter, by its name in the templates.
fn path_parameter(name: &str) -> Value {
    let (description, schema) = match name {
        "topic" | "hub" => ("Event hub (Kafka topic) name.", hub_schema()),
        "partition" => (
            "Partition number.",
            json!({ "type": "integer", "minimum": 0, "maximum": i32::MAX }),
        ),
        "offset" => (
            "Offset of the first record to read.",
            json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }),
        ),
        "publisher" => ("Publisher name.", publisher_schema()),
        "consumergroup" => (
            "Consumer group name (`$Default` always exists).",
            consumer_group_schema(),
        ),
        other => ("", json!({ "type": "string", "description": other })),
    };
    let example = match name {
        "topic" | "hub" => json!("hub"),
        "partition" | "offset" => json!(0),
        "publisher" => json!("device-1"),
        "consumergroup" => json!("$Default"),
        _ => Value::Null,
    };
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": schema, "example": example
    })
}

/// `{name}` segments of a template, in order.
fn template_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn error(description: &str) -> Value {
    json_response(description, schema_ref("Error"))
}

fn event_body() -> Value {
    json!({
        "description": "The event body, sent as is (an empty body is an empty event). With `Content-Type: application/vnd.microsoft.servicebus.json`, a batch of events.",
        "required": false,
        "content": {
            "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } },
            "text/plain": { "schema": { "type": "string" } },
            "application/json": { "schema": {} },
            "application/vnd.microsoft.servicebus.json": { "schema": schema_ref("Batch") }
        }
    })
}

fn count_query(default: u64) -> Value {
    query(
        "count",
        "Most records to return (at most `limits.max_consume_count`).",
        json!({ "type": "integer", "minimum": 1, "maximum": 10_000, "default": default }),
    )
}

#[allow(clippy::too_many_lines)] // one arm per route: the table is the point
fn operation(route: &Route) -> Operation {
    let access = match route.need {
        Need::Public => Access::Public,
        Need::InBody => Access::InBody,
        _ => Access::Credential,
    };
    let op = |id, tag, summary, description| Operation {
        id,
        tag,
        summary,
        description,
        access,
        query: Vec::new(),
        body: None,
        responses: Vec::new(),
    };
    let ok = |o: Operation, status: &'static str, response: Value| Operation {
        responses: vec![(status, response)],
        ..o
    };
    match route.id {
        RouteId::KafkaProxy(ProxyRoute::OpenApi) => ok(
            op(
                "getOpenApi",
                "meta",
                "This document",
                "The OpenAPI 3.1 description of the gateway.",
            ),
            "200",
            json_response("The document.", json!({ "type": "object" })),
        ),
        RouteId::KafkaProxy(ProxyRoute::Status) => ok(
            op(
                "getStatus",
                "hdinsight",
                "Gateway status",
                "Any valid credential. Reports whether Kafka answers within 1 s.",
            ),
            "200",
            json_response("Status.", schema_ref("Status")),
        ),
        RouteId::KafkaProxy(ProxyRoute::Brokers) => ok(
            op(
                "listBrokers",
                "hdinsight",
                "Kafka brokers",
                "Listen on the namespace.",
            ),
            "200",
            json_response("The brokers.", schema_ref("Brokers")),
        ),
        RouteId::KafkaProxy(ProxyRoute::Topics) => ok(
            op(
                "listTopics",
                "hdinsight",
                "Topics",
                "The topics the credential may Listen to.",
            ),
            "200",
            json_response("The topics.", schema_ref("Topics")),
        ),
        RouteId::KafkaProxy(ProxyRoute::TopicPartitions) => ok(
            op(
                "listPartitions",
                "hdinsight",
                "Partitions of a topic",
                "Listen on the hub.",
            ),
            "200",
            json_response("Partition placement.", schema_ref("TopicPartitions")),
        ),
        RouteId::KafkaProxy(ProxyRoute::TopicPartition) => ok(
            op(
                "getPartition",
                "hdinsight",
                "One partition",
                "Listen on the hub. Placement and earliest/latest offsets.",
            ),
            "200",
            json_response("The partition.", schema_ref("PartitionMetadata")),
        ),
        RouteId::KafkaProxy(ProxyRoute::CreateTopic) => Operation {
            body: Some(json_body(schema_ref("CreateTopic"), true)),
            responses: vec![
                ("201", json_response("Created.", schema_ref("CreatedTopic"))),
                (
                    "409",
                    error("The topic exists (names are case-insensitive)."),
                ),
            ],
            ..op(
                "createTopic",
                "hdinsight",
                "Create a topic",
                "Manage on the hub. Topic properties are Kafka topic configs.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::Produce) => Operation {
            body: Some(json_body(schema_ref("ProduceRequest"), true)),
            responses: vec![
                (
                    "200",
                    json_response(
                        "Every record acknowledged by Kafka.",
                        schema_ref("ProduceResponse"),
                    ),
                ),
                (
                    "413",
                    error("The body is larger than `limits.max_publication_bytes`."),
                ),
            ],
            ..op(
                "produce",
                "hdinsight",
                "Produce records",
                "Send on the hub. 200 only when Kafka acknowledged every record. `Idempotency-Key` makes retries safe.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::Consume) => Operation {
            query: vec![count_query(1)],
            responses: vec![(
                "200",
                with_headers(
                    json_response("The records.", schema_ref("ConsumeResponse")),
                    next_offset_header(),
                ),
            )],
            ..op(
                "consume",
                "hdinsight",
                "Read records from an offset",
                "Listen on the hub. At most `count` records and `limits.max_consume_bytes` of them.",
            )
        },
        RouteId::TokenIssuer(IssuerRoute::MintToken) => Operation {
            body: Some(json_body(schema_ref("MintRequest"), true)),
            responses: vec![(
                "200",
                json_response("The token.", schema_ref("MintResponse")),
            )],
            ..op(
                "mintToken",
                "tokens",
                "Mint a SAS token",
                "Manage on the hub named in the body. A publisher token can Send as that publisher only; a consumer-group token can Listen through that group only.",
            )
        },
        RouteId::Authorizer(AuthorizerRoute::Authorize) => Operation {
            body: Some(json_body(schema_ref("AuthorizeRequest"), true)),
            responses: vec![(
                "200",
                json_response("The decision (200 whatever it is).", schema_ref("Decision")),
            )],
            ..op(
                "authorize",
                "authorizer",
                "Decide a request",
                "The authorizer's decision for a credential, method and path, for gateways other than API Gateway. Off unless `authorizer.http_endpoint` is true: 404.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::SendToHub) => Operation {
            body: Some(event_body()),
            responses: vec![
                ("201", empty_response("Acknowledged by Kafka.")),
                ("413", error("Larger than the limit.")),
            ],
            ..op(
                "sendEvent",
                "eventhubs",
                "Send an event or a batch",
                "Send on the hub. `BrokerProperties: {\"PartitionKey\": …}` picks the partition; other custom headers become properties.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::SendToPartition) => Operation {
            body: Some(event_body()),
            responses: vec![
                ("201", empty_response("Acknowledged by Kafka.")),
                ("413", error("Larger than the limit.")),
            ],
            ..op(
                "sendToPartition",
                "eventhubs",
                "Send to a partition",
                "Send on the hub.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::SendAsPublisher) => Operation {
            body: Some(event_body()),
            responses: vec![
                ("201", empty_response("Acknowledged by Kafka.")),
                ("413", error("Larger than the limit.")),
            ],
            ..op(
                "sendAsPublisher",
                "eventhubs",
                "Send as a publisher",
                "Send on that publisher (a publisher token). Refused once the publisher is revoked.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::SendAsPublisherSingular) => Operation {
            body: Some(event_body()),
            responses: vec![
                ("201", empty_response("Acknowledged by Kafka.")),
                ("413", error("Larger than the limit.")),
            ],
            ..op(
                "sendAsPublisherSingular",
                "eventhubs",
                "Send as a publisher (singular path)",
                "As `/publishers/`.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::RevokePublisher) => Operation {
            responses: vec![
                (
                    "201",
                    or_atom(
                        json_response(
                            "Revoked: the entry written to the revocation list (as JSON, or as the Atom entry Event Hubs answers).",
                            schema_ref("RevokedPublisher"),
                        ),
                        "entry",
                    ),
                ),
                ("409", error("Already revoked.")),
            ],
            ..op(
                "revokePublisher",
                "eventhubs",
                "Revoke a publisher",
                "Manage on the hub. Every instance refuses the publisher within `revocation_refresh_ms`.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::ResumePublisher) => Operation {
            responses: vec![("200", empty_response("Resumed."))],
            ..op(
                "resumePublisher",
                "eventhubs",
                "Resume a publisher",
                "Manage on the hub. 404 when it was not revoked.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::ListRevokedPublishers) => ok(
            op(
                "listRevokedPublishers",
                "eventhubs",
                "Revoked publishers",
                "Manage on the hub.",
            ),
            "200",
            or_atom(
                json_response("The revoked publishers.", schema_ref("RevokedPublishers")),
                "feed",
            ),
        ),
        RouteId::KafkaProxy(ProxyRoute::ListAudit) => Operation {
            query: vec![
                query(
                    "since_ms",
                    "Entries written at or after this time (ms since the Unix epoch).",
                    json!({ "type": "integer" }),
                ),
                query(
                    "until_ms",
                    "Entries written before this time (ms since the Unix epoch).",
                    json!({ "type": "integer" }),
                ),
                query(
                    "hub",
                    "Entries about this hub.",
                    json!({ "type": "string" }),
                ),
                query(
                    "principal",
                    "Entries by this principal (as the entries name it).",
                    json!({ "type": "string" }),
                ),
                query(
                    "action",
                    "Entries of this action.",
                    json!({ "type": "string", "enum": hubgate_core::audit::ACTIONS }),
                ),
                query(
                    "from_offset",
                    "Start here: the `next_offset` of the previous page.",
                    json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }),
                ),
                query(
                    "limit",
                    "At most this many entries.",
                    json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 }),
                ),
            ],
            responses: vec![
                (
                    "200",
                    json_response("The entries.", schema_ref("AuditPage")),
                ),
                ("404", error("The audit log is off (`[audit]` has no key).")),
            ],
            ..op(
                "listAudit",
                "hdinsight",
                "Audit log",
                "Manage on the namespace. Management actions in the order written; \
                 `hubgate audit verify` checks the chain.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::ListConsumerGroups) => ok(
            op(
                "listConsumerGroups",
                "consumergroups",
                "Consumer groups",
                "Manage on the hub. `$Default` first.",
            ),
            "200",
            json_response("The groups.", schema_ref("ConsumerGroups")),
        ),
        RouteId::KafkaProxy(ProxyRoute::CreateConsumerGroup) => Operation {
            body: Some(json_body(schema_ref("CreateConsumerGroup"), false)),
            responses: vec![
                (
                    "201",
                    json_response("Created.", schema_ref("ConsumerGroup")),
                ),
                (
                    "403",
                    error("The hub has `limits.max_consumer_groups_per_hub` groups already."),
                ),
                ("409", error("The group exists.")),
            ],
            ..op(
                "createConsumerGroup",
                "consumergroups",
                "Create a consumer group",
                "Manage on the hub.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::GetConsumerGroup) => ok(
            op(
                "getConsumerGroup",
                "consumergroups",
                "One consumer group",
                "Manage on the hub.",
            ),
            "200",
            json_response("The group.", schema_ref("ConsumerGroup")),
        ),
        RouteId::KafkaProxy(ProxyRoute::DeleteConsumerGroup) => ok(
            op(
                "deleteConsumerGroup",
                "consumergroups",
                "Delete a consumer group",
                "Manage on the hub. Its checkpoints go with it. `$Default` cannot be deleted.",
            ),
            "200",
            empty_response("Deleted."),
        ),
        RouteId::KafkaProxy(ProxyRoute::GroupPartitions) => ok(
            op(
                "listGroupPartitions",
                "consumergroups",
                "Partition runtime information",
                "Listen on the hub or the group. Offsets, last enqueued event and the group's lag, for every partition.",
            ),
            "200",
            json_response("Every partition.", schema_ref("GroupPartitions")),
        ),
        RouteId::KafkaProxy(ProxyRoute::GroupPartition) => ok(
            op(
                "getGroupPartition",
                "consumergroups",
                "One partition's runtime information",
                "Listen on the hub or the group.",
            ),
            "200",
            json_response("The partition.", schema_ref("PartitionRuntime")),
        ),
        RouteId::KafkaProxy(ProxyRoute::ReadEvents) => Operation {
            query: vec![
                count_query(100),
                query(
                    "offset",
                    "Where to start. Without it: the group's checkpoint, else the earliest event.",
                    json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }),
                ),
                query(
                    "wait_ms",
                    "Long poll: wait this long (at most `limits.max_wait_ms`) for the first event.",
                    json!({ "type": "integer", "minimum": 0, "maximum": 30_000, "default": 0 }),
                ),
            ],
            responses: vec![
                (
                    "200",
                    with_headers(
                        json_response("The events (maybe none).", schema_ref("ReadResponse")),
                        next_offset_header(),
                    ),
                ),
                (
                    "429",
                    error(
                        "Too many reads are waiting on this instance (`limits.max_waiting_reads`).",
                    ),
                ),
            ],
            ..op(
                "readEvents",
                "consumergroups",
                "Read events through a consumer group",
                "Listen on the hub or the group. Stateless: checkpoint the answer's `next_offset` to continue from any instance.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::GetCheckpoint) => ok(
            op(
                "getCheckpoint",
                "consumergroups",
                "The group's checkpoint",
                "Listen on the hub or the group. 404 when there is none.",
            ),
            "200",
            json_response("The checkpoint.", schema_ref("Checkpoint")),
        ),
        RouteId::KafkaProxy(ProxyRoute::PutCheckpoint) => Operation {
            body: Some(json_body(schema_ref("SetCheckpoint"), true)),
            responses: vec![(
                "200",
                json_response("Stored (acknowledged by Kafka).", schema_ref("Checkpoint")),
            )],
            ..op(
                "setCheckpoint",
                "consumergroups",
                "Store the group's checkpoint",
                "Listen on the hub or the group. `offset` is the next offset to read: a read's `next_offset`; or `last_event_id`, the id of the last stream event processed.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::StreamPartition) => Operation {
            query: stream_query(true),
            responses: stream_responses(),
            ..op(
                "streamPartition",
                "consumergroups",
                "Stream one partition's events (Server-Sent Events)",
                "Listen on the hub or the group. `text/event-stream`: each event's `data` is an `Event` with its `partition`, its `id` the event's offset. Starts after `Last-Event-ID` (header, or `last_event_id`), else at `offset` or `start`, else the group's checkpoint, else the earliest event. Ends with an `end` event when the credential expires, the group is deleted or the hub is gone.",
            )
        },
        RouteId::KafkaProxy(ProxyRoute::StreamHub) => Operation {
            query: stream_query(false),
            responses: stream_responses(),
            ..op(
                "streamHub",
                "consumergroups",
                "Stream every partition's events (Server-Sent Events)",
                "Listen on the hub or the group. As the one-partition stream; each event's `id` lists every partition's last delivered offset (`0:41,1:-1`), so any instance resumes the whole stream from it.",
            )
        },
    }
}

/// The query of a stream route.
fn stream_query(one_partition: bool) -> Vec<Value> {
    let mut q = vec![
        query(
            "start",
            "Where to start without an event id (and `offset`): `earliest` or `latest`. Default: the group's checkpoints, else the earliest event.",
            json!({ "type": "string", "enum": ["earliest", "latest"] }),
        ),
        query(
            "last_event_id",
            "Resume after this event id (a new `EventSource` cannot send `Last-Event-ID`; the header wins).",
            json!({ "type": "string", "maxLength": hubgate_core::streams::MAX_QUERY_ID_LEN }),
        ),
        query(
            "access_token",
            "The credential, for clients that cannot set `Authorization` (`EventSource`): a SAS token or a bearer token. Never logged; only on stream routes.",
            json!({ "type": "string" }),
        ),
    ];
    if one_partition {
        q.insert(
            0,
            query(
                "offset",
                "The next offset to read (not with `start`).",
                json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }),
            ),
        );
    }
    q
}

fn stream_responses() -> Vec<(&'static str, Value)> {
    vec![
        (
            "200",
            json!({
                "description": "An event stream (`retry:` first, `: heartbeat` comments while idle). The schema is one event's (OpenAPI 3.2 calls it `itemSchema`): `data` is JSON, a `StreamEvent`, or a `StreamEnd` in the final `end` event.",
                "content": { "text/event-stream": { "schema": {
                    "type": "object", "required": ["data"],
                    "properties": {
                        "event": { "type": "string", "enum": ["message", "end"] },
                        "id": { "type": "string", "pattern": r"^(-1|0|[1-9][0-9]*)$|^((0|[1-9][0-9]*):(-1|0|[1-9][0-9]*))(,(0|[1-9][0-9]*):(-1|0|[1-9][0-9]*))*$" },
                        "retry": { "type": "integer", "minimum": 0 },
                        "data": {
                            "type": "string", "contentMediaType": "application/json",
                            "contentSchema": { "oneOf": [schema_ref("StreamEvent"), schema_ref("StreamEnd")] }
                        }
                    }
                } } }
            }),
        ),
        (
            "429",
            error("Too many streams are open on this instance (`streams.max_open`)."),
        ),
    ]
}

fn operation_object(route: &Route) -> Value {
    let o = operation(route);
    let mut parameters: Vec<Value> = template_parameters(route.path)
        .into_iter()
        .map(path_parameter)
        .collect();
    parameters.extend(o.query);
    let mut responses = Map::new();
    for (status, response) in o.responses {
        responses.insert(status.to_owned(), response);
    }
    if o.access == Access::Credential {
        responses.insert("401".into(), error("No credential, or not valid for this request (Event Hubs answers every SAS problem with 401)."));
        responses.insert(
            "403".into(),
            error("A valid bearer token whose groups do not allow this request."),
        );
    }
    if o.access != Access::Public {
        responses.insert("default".into(), error("Any other error: 400 bad input, 404 unknown hub, partition or resource, 409 (40904) a hub matching Kafka topics that differ only in case, 413, 415, 429, 503 Kafka unavailable (with Retry-After)."));
    }
    let mut out = json!({
        "operationId": o.id,
        "tags": [o.tag],
        "summary": o.summary,
        "description": o.description,
        "x-hubgate-function": route.function().name(),
        "responses": responses,
    });
    if !parameters.is_empty() {
        out["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = o.body {
        out["requestBody"] = body;
    }
    out["security"] = match o.access {
        Access::Credential => json!([{ "sas": [] }, { "bearer": [] }]),
        Access::Public | Access::InBody => json!([]),
    };
    out
}

#[allow(clippy::too_many_lines)] // the schemas, one after another
fn schemas() -> Value {
    let nullable_string = json!({ "type": ["string", "null"] });
    let encoding = json!({ "type": "string", "enum": ["base64"] });
    let string_map = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let offset = json!({ "type": "integer", "minimum": 0 });
    let partition = json!({ "type": "integer", "minimum": 0 });
    let time = json!({ "type": "string", "format": "date-time" });
    let broker = json!({
        "type": "object", "required": ["hostName", "port", "id", "rack"],
        "description": "A broker. In a partition's replicas, one missing from the cluster's metadata (offline) has null hostName and port.",
        "properties": { "hostName": nullable_string, "port": { "type": ["integer", "null"] }, "id": { "type": "integer" }, "rack": nullable_string }
    });
    let partition_metadata = json!({
        "type": "object", "required": ["partition_id", "leader", "replicas", "isr", "earliest_offset", "latest_offset"],
        "properties": {
            "partition_id": partition,
            "leader": { "oneOf": [schema_ref("Broker"), { "type": "null" }], "description": "Null while the partition has no leader." },
            "replicas": { "type": "array", "items": schema_ref("Broker") },
            "isr": { "type": "array", "items": schema_ref("Broker") },
            "earliest_offset": offset,
            "latest_offset": { "type": "integer", "minimum": 0, "description": "The next offset to be written (the high watermark)." }
        }
    });
    let mut schemas = json!({
        "Error": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {
                "error_code": { "type": "integer", "description": "Confluent-style code: 40101 bad credential, 40301 forbidden, 40401 unknown topic, 41301 too large, 42901 throttled, 50301 Kafka unavailable, …" },
                "message": { "type": "string" },
                "offsets": { "type": "array", "items": schema_ref("OffsetResult"), "description": "Per-record results when a produce request was partly written." }
            }
        },
        "Status": {
            "type": "object", "required": ["status", "kafka"],
            "properties": { "status": { "const": "ok" }, "kafka": { "enum": ["ok", "unavailable"] } }
        },
        "Brokers": {
            "type": "object", "required": ["brokers"],
            "properties": { "brokers": { "type": "array", "items": schema_ref("Broker") } }
        },
        "Topics": {
            "type": "object", "required": ["topics"],
            "properties": { "topics": { "type": "array", "items": { "type": "string" } } }
        },
        "TopicPartitions": {
            "type": "object", "required": ["topic", "partitions"],
            "properties": { "topic": { "type": "string" }, "partitions": { "type": "array", "items": schema_ref("PartitionMetadata") } }
        },
        "CreateTopic": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "partition_count": { "type": "integer", "minimum": 1, "maximum": 10_000, "default": 1 },
                "replication_factor": { "type": "integer", "minimum": 1, "maximum": i16::MAX, "default": 1 },
                "topic_properties": { "type": "object", "description": "Kafka topic configs (`retention.ms`, …); the broker validates them.",
                    "additionalProperties": { "type": ["string", "number", "boolean"] } }
            }
        },
        "CreatedTopic": {
            "type": "object", "required": ["topic", "partition_count", "replication_factor", "topic_properties"],
            "properties": {
                "topic": { "type": "string" }, "partition_count": { "type": "integer" },
                "replication_factor": { "type": "integer" }, "topic_properties": { "type": "object" }
            }
        },
        "ProduceRequest": {
            "type": "object", "required": ["records"], "additionalProperties": false,
            "properties": { "records": { "type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "key": { "description": "Any JSON: a string is sent as its UTF-8 bytes, other JSON as its text." },
                    "value": { "description": "Any JSON, as `key`." },
                    "partition": { "type": ["integer", "null"], "minimum": 0, "maximum": i32::MAX },
                    "headers": string_map
                }
            }}}
        },
        "OffsetResult": {
            "type": "object", "required": ["partition", "offset", "error_code", "error"],
            "properties": {
                "partition": { "type": "integer" }, "offset": { "type": ["integer", "null"] },
                "error_code": { "type": ["integer", "null"] }, "error": nullable_string
            }
        },
        "ProduceResponse": {
            "type": "object", "required": ["offsets"],
            "properties": { "offsets": { "type": "array", "items": schema_ref("OffsetResult") } }
        },
        "ConsumedRecord": {
            "type": "object",
            "required": ["key", "value", "partition", "offset", "timestamp", "timestampType", "headers"],
            "properties": {
                "key": nullable_string, "keyEncoding": encoding,
                "value": nullable_string, "valueEncoding": encoding,
                "partition": partition, "offset": offset,
                "timestamp": { "type": "integer", "description": "Milliseconds since the Unix epoch." },
                "timestampType": { "const": "CreateTime" },
                "headers": string_map, "headersEncoding": encoding
            }
        },
        "ConsumeResponse": {
            "type": "object", "required": ["records"],
            "properties": { "records": { "type": "array", "items": schema_ref("ConsumedRecord") } }
        },
        "MintRequest": {
            "type": "object", "required": ["hub", "ttl_secs"], "additionalProperties": false,
            "description": "Give `publisher` (a Send token), `consumer_group` (a Listen token), or neither with `rights` (a hub token).",
            "properties": {
                "hub": hub_schema(), "publisher": or_null(publisher_schema()), "consumer_group": or_null(consumer_group_schema()),
                "rights": { "type": ["array", "null"], "items": { "enum": ["Send", "Listen", "Manage"] } },
                "ttl_secs": { "type": "integer", "minimum": 1, "description": "At most `issuer.max_ttl_secs`." }
            }
        },
        "MintResponse": {
            "type": "object", "required": ["token", "resource", "expires_at"],
            "properties": {
                "token": { "type": "string", "description": "`SharedAccessSignature sr=…&sig=…&se=…&skn=…`" },
                "resource": { "type": "string" }, "expires_at": { "type": "integer", "description": "Unix seconds." }
            }
        },
        "AuthorizeRequest": {
            "type": "object", "required": ["method", "path"], "additionalProperties": false,
            "properties": { "authorization": { "type": ["string", "null"] }, "method": { "type": "string" }, "path": { "type": "string" } }
        },
        "Decision": {
            "type": "object", "required": ["isAuthorized", "context"],
            "properties": { "isAuthorized": { "type": "boolean" }, "context": string_map }
        },
        "Batch": {
            "type": "array", "minItems": 1,
            "items": { "type": "object", "required": ["Body"], "properties": {
                "Body": { "description": "A string (base64 when IsBodyBase64) or any JSON." },
                "UserProperties": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
                "BrokerProperties": { "type": "object", "properties": { "PartitionKey": { "type": "string" } } },
                "IsBodyBase64": { "type": "boolean" }
            }}
        },
        "RevokedPublishers": {
            "type": "object", "required": ["hub", "revoked_publishers"],
            "properties": { "hub": { "type": "string" }, "revoked_publishers": { "type": "array", "items": schema_ref("RevokedPublisher") } }
        },
        "RevokedPublisher": {
            "type": "object", "required": ["hub", "publisher", "revoked_at", "revoked_by"],
            "properties": {
                "hub": { "type": "string" }, "publisher": { "type": "string", "description": "The canonical (ASCII lower-case) name." },
                "revoked_at": { "type": "integer", "description": "Unix seconds." }, "revoked_by": { "type": "string" }
            }
        },
        "CreateConsumerGroup": {
            "type": "object", "additionalProperties": false,
            "properties": { "user_metadata": { "type": ["string", "null"], "maxLength": 1024 } }
        },
        "ConsumerGroup": {
            "type": "object", "required": ["hub", "name", "created_at", "created_by", "user_metadata"],
            "properties": {
                "hub": { "type": "string" }, "name": { "type": "string" },
                "created_at": { "type": ["string", "null"], "format": "date-time", "description": "null for the implicit `$Default`." },
                "created_by": nullable_string, "user_metadata": nullable_string
            }
        },
        "ConsumerGroups": {
            "type": "object", "required": ["hub", "consumer_groups"],
            "properties": { "hub": { "type": "string" }, "consumer_groups": { "type": "array", "items": schema_ref("ConsumerGroup") } }
        },
        "PartitionRuntime": {
            "type": "object",
            "required": ["hub", "consumer_group", "partition", "begin_offset", "end_offset", "last_enqueued_offset", "last_enqueued_time_utc", "is_empty", "checkpoint_offset", "lag"],
            "properties": {
                "hub": { "type": "string" }, "consumer_group": { "type": "string" }, "partition": partition,
                "begin_offset": { "type": "integer", "description": "Earliest offset still held." },
                "end_offset": { "type": "integer", "description": "The offset the next event gets." },
                "last_enqueued_offset": { "type": ["integer", "null"] },
                "last_enqueued_time_utc": { "type": ["string", "null"], "format": "date-time" },
                "is_empty": { "type": "boolean" },
                "checkpoint_offset": { "type": ["integer", "null"] },
                "lag": { "type": "integer", "minimum": 0, "description": "Events from where the group's next read begins to the end." }
            }
        },
        "GroupPartitions": {
            "type": "object", "required": ["hub", "consumer_group", "partitions"],
            "properties": {
                "hub": { "type": "string" }, "consumer_group": { "type": "string" },
                "partitions": { "type": "array", "items": schema_ref("PartitionRuntime") }
            }
        },
        "Event": {
            "type": "object", "required": ["offset", "enqueued_time_utc", "partition_key", "body", "properties"],
            "properties": {
                "offset": offset, "enqueued_time_utc": time,
                "partition_key": nullable_string, "partition_key_encoding": encoding,
                "publisher": { "type": "string" },
                "body": nullable_string, "body_encoding": encoding,
                "properties": string_map, "properties_encoding": encoding
            }
        },
        "ReadResponse": {
            "type": "object", "required": ["hub", "consumer_group", "partition", "events", "next_offset"],
            "properties": {
                "hub": { "type": "string" }, "consumer_group": { "type": "string" }, "partition": partition,
                "events": { "type": "array", "items": schema_ref("Event") },
                "next_offset": { "type": "integer", "minimum": 0, "description": "Checkpoint this once the events are processed." }
            }
        },
        "SetCheckpoint": {
            "type": "object", "additionalProperties": false,
            "oneOf": [{ "required": ["offset"] }, { "required": ["last_event_id"] }],
            "properties": {
                "offset": { "type": "integer", "minimum": 0, "maximum": i64::MAX, "description": "The next offset to read; at most the partition's end offset." },
                "last_event_id": { "type": "string", "description": "The id of the last stream event processed: the checkpoint is the partition's next offset after it." }
            }
        },
        "Checkpoint": {
            "type": "object", "required": ["hub", "consumer_group", "partition", "offset", "updated_at", "updated_by"],
            "properties": {
                "hub": { "type": "string" }, "consumer_group": { "type": "string" }, "partition": partition,
                "offset": offset, "updated_at": time, "updated_by": { "type": "string" },
                "generation": { "type": "integer", "description": "The group generation the checkpoint belongs to." }
            }
        }
    });
    // The audit log's (a json! of its own: one literal this large exceeds the macro's recursion limit).
    let audit = json!({
        "AuditPage": {
            "type": "object", "required": ["entries", "next_offset"],
            "properties": {
                "entries": { "type": "array", "items": schema_ref("AuditEntry") },
                "next_offset": { "type": "integer" }
            }
        },
        "AuditEntry": {
            "type": "object",
            "required": ["offset", "writer", "seq", "time_ms", "action", "principal", "request_id", "prev", "mac"],
            "properties": {
                "offset": { "type": "integer" },
                "writer": { "type": "string", "description": "The chain: instance and process." },
                "seq": { "type": "integer", "minimum": 0 },
                "time_ms": { "type": "integer", "minimum": 0 },
                "action": { "type": "string" },
                "principal": { "type": "string" },
                "request_id": { "type": "string" },
                "hub": { "type": "string" },
                "target": { "type": "string" },
                "details": { "type": "object", "additionalProperties": { "type": "string" } },
                "prev": { "type": "string", "description": "The predecessor's MAC (hex)." },
                "mac": { "type": "string", "description": "HMAC-SHA256 of the entry (hex)." }
            }
        }
    });
    if let (Some(all), Some(audit)) = (schemas.as_object_mut(), audit.as_object()) {
        all.extend(audit.clone());
    }
    // Added after: one `json!` this large exceeds the macro's recursion limit.
    schemas["Broker"] = broker;
    schemas["PartitionMetadata"] = partition_metadata;
    schemas["StreamEvent"] = json!({
        "allOf": [
            schema_ref("Event"),
            { "type": "object", "required": ["partition"], "properties": { "partition": partition } }
        ]
    });
    schemas["StreamEnd"] = json!({
        "type": "object", "required": ["reason", "message"],
        "properties": {
            "reason": { "type": "string", "enum": ["credential_expired", "consumer_group_deleted", "hub_deleted"] },
            "message": { "type": "string" }
        }
    });
    schemas
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation_object(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hubgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A secure HTTPS front door to Kafka: the HDInsight Kafka REST proxy API (`/v1`), the Event Hubs REST API (send, publishers, revocation) and consumer groups with checkpoints over stateless HTTP. Credentials: an Event Hubs shared access signature (`Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…`) or an OAuth bearer token. Functions: kafka-proxy, token-issuer, authorizer (`x-hubgate-function`).",
            "license": { "name": "See the repository" }
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "sas": { "type": "apiKey", "in": "header", "name": "Authorization", "description": "`SharedAccessSignature sr=<url-encoded resource>&sig=<signature>&se=<expiry>&skn=<rule>` (Event Hubs SAS)." },
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An OAuth 2.0 access token from the configured issuer, for members of the configured groups." }
            },
            "schemas": schemas()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_every_route_described_ok() {
        let doc = document();
        let mut ids = std::collections::HashSet::new();
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, template_parameters(r.path), "{}", r.path);
        }
    }

    #[test]
    fn openapi_references_resolve_ok() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "missing schema {name}"
            );
        }
    }
}
