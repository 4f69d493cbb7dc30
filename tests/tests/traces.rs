//! Traces end to end: a `hubgate serve` process exports to a test OTLP/HTTP receiver that
//! decodes with the official `opentelemetry-proto` definitions; a client's `traceparent`
//! becomes the parent of hubgate's request span, with `authenticate`, `throttle` and
//! `kafka.produce` spans inside it, and the record kafka-python reads back carries the trace
//! in its `traceparent` header, as does the event read through hubgate.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hubgate_server::Config;
use hubgate_tests::{
    HubgateProcess, SharedKafka, free_port, http, kafka_python_read, test_config_toml, token_1h,
    unique,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// Every span the receiver got.
type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on a free port.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let spans = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let spans = Arc::clone(&spans);
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .map(|a| format!("{:?}", a.value));
                    assert!(service.unwrap().contains("hubgate-test"));
                    for scope in resource.scope_spans {
                        spans.lock().unwrap().extend(scope.spans);
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}/v1/traces"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| format!("{:?}", a.value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_client_traceparent_continues_into_kafka_ok() {
    let bootstrap = SharedKafka::get().bootstrap();
    let (endpoint, received) = receiver().await;
    let hub = unique("traced");
    let toml = test_config_toml(
        &bootstrap,
        &format!(
            "[traces]\nenabled = true\nendpoint = \"{endpoint}\"\nservice_name = \"hubgate-test\"\nsample_ratio = 0.0\n"
        ),
    );
    let config = Config::from_toml(&toml).unwrap();
    let gateway = HubgateProcess::start(&toml);
    let client = http();
    let r = client
        .put(gateway.url(&format!("/v1/topics/{hub}")))
        .header("authorization", token_1h(&config, "manage", ""))
        .json(&serde_json::json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // The client's trace, sampled: hubgate follows it although its own ratio is 0.
    let (trace_id, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let send = client
        .post(gateway.url(&format!("/{hub}/messages")))
        .header("authorization", token_1h(&config, "send", &hub))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .header("tracestate", "vendor=1")
        .header("sensor", "s-1")
        .body("traced event")
        .send()
        .await
        .unwrap();
    assert_eq!(send.status(), 201, "{}", send.text().await.unwrap());
    // A client may not set the trace headers as event properties.
    let refused = client
        .post(gateway.url(&format!("/{hub}/messages")))
        .header("authorization", token_1h(&config, "send", &hub))
        .header("content-type", "application/vnd.microsoft.servicebus.json")
        .body(r#"[{"Body": "x", "UserProperties": {"traceparent": "00-1-2-01"}}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // For the reserved name, not for anything else in the batch.
    let why = refused.text().await.unwrap();
    assert!(why.contains("'traceparent' is reserved"), "{why}");
    // A request without a trace is not sampled (ratio 0): no spans of another trace.
    let untraced = client
        .post(gateway.url(&format!("/{hub}/messages")))
        .header("authorization", token_1h(&config, "send", &hub))
        .body("untraced event")
        .send()
        .await
        .unwrap();
    assert_eq!(untraced.status(), 201);

    // The spans arrive (batched: within seconds).
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans: Vec<Span> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        if ["request", "authenticate", "throttle", "kafka.produce"]
            .iter()
            .all(|n| names.contains(n))
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans of the trace: {names:?}\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let request = spans.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(
        hex(&request.parent_span_id),
        client_span,
        "the client's span is the parent"
    );
    let request_id = hex(&request.span_id);
    for name in ["authenticate", "throttle", "kafka.produce"] {
        let s = spans.iter().find(|s| s.name == name).unwrap();
        assert_eq!(s.trace_id, request.trace_id, "{name}");
        assert!(
            s.start_time_unix_nano >= request.start_time_unix_nano,
            "{name}"
        );
    }
    let produce = spans.iter().find(|s| s.name == "kafka.produce").unwrap();
    assert!(
        attribute(produce, "kafka.produce_request").is_some(),
        "which Kafka request carried the records: {produce:?}"
    );
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|s| hex(&s.trace_id) == trace_id),
        "only the client's trace is sampled"
    );

    // kafka-python reads the trace in the record's headers: hubgate's request span is the
    // parent a consumer continues from; tracestate passes through.
    let records = kafka_python_read(&bootstrap, &hub).await;
    assert_eq!(records.len(), 2);
    let headers = records[0].headers();
    let traceparent = headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .unwrap();
    assert_eq!(traceparent, format!("00-{trace_id}-{request_id}-01"));
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "tracestate" && v == b"vendor=1"),
        "{headers:?}"
    );
    assert!(
        headers.iter().any(|(k, v)| k == "sensor" && v == b"s-1"),
        "{headers:?}"
    );
    // The untraced event carries its own (unsampled) context, not the client's.
    assert!(
        !records[1]
            .headers()
            .iter()
            .any(|(_, v)| v.windows(32).any(|w| w == trace_id.as_bytes()))
    );

    // And a read through hubgate returns it with the event.
    let read: serde_json::Value = client
        .get(gateway.url(&format!(
            "/v1/consumer/topics/{hub}/partitions/0/offsets/0?count=1"
        )))
        .header("authorization", token_1h(&config, "listen", &hub))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(read.to_string().contains(&traceparent), "{read}");
}
