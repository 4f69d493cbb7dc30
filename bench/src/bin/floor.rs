//! The parse-only floor of the load benchmark: an axum server that answers
//! `POST /v1/producer/topics/{topic}` as hubgate does, minus authentication, throttling and
//! Kafka. It reads the body, parses it with hubgate's own parser
//! (`hubgate_core::bodies::produce_records`) and answers one offset per record in the same
//! JSON shape. What hubgate costs above this is its credential check and its Kafka write;
//! `hubgate-bench` (`bench/src/main.rs`) runs it in the same run as hubgate.
//!
//! `floor --listen 127.0.0.1:PORT`; runs until killed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use clap::Parser;
use serde::Serialize;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
}

#[derive(Serialize)]
struct OffsetResult {
    partition: i32,
    offset: Option<i64>,
    error_code: Option<u32>,
    error: Option<String>,
}

#[derive(Serialize)]
struct ProduceResponse {
    offsets: Vec<OffsetResult>,
}

static NEXT: AtomicI64 = AtomicI64::new(0);

async fn produce(body: Bytes) -> Response {
    match hubgate_core::bodies::produce_records(&body) {
        Ok(records) => {
            let first = NEXT.fetch_add(records.len() as i64, Ordering::Relaxed);
            let offsets = records
                .iter()
                .zip(first..)
                .map(|(r, offset)| OffsetResult {
                    partition: r.partition.unwrap_or(0),
                    offset: Some(offset),
                    error_code: None,
                    error: None,
                })
                .collect();
            axum::Json(ProduceResponse { offsets }).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.0).into_response(),
    }
}

// The same runtime as hubgate's binaries: `#[tokio::main]`'s multi-thread default.
#[tokio::main]
async fn main() {
    let args = Args::parse();
    let app = Router::new().route("/v1/producer/topics/{topic}", post(produce));
    // TCP_NODELAY on every connection, as hubgate's listener does.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .unwrap()
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app).await.unwrap();
}
