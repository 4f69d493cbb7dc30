//! What recording a request's metrics costs on its path: `metrics::request` (the route's
//! duration histogram, a response extension looked up) with metrics off (one relaxed load)
//! and on, in the same run, beside reading the clock once (`Instant::elapsed`, which every
//! request does anyway). The per-request figure to hold it against is the server CPU per
//! request of `target/release/metrics` (BENCHMARKS.md, "Metrics on against off").
//! `cargo bench -p hubgate-server --bench metrics`.
#![allow(clippy::unwrap_used)] // a benchmark: any failure should stop it loudly

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hubgate_server::metrics::{self, MetricsConfig, Sink};

fn per_request(c: &mut Criterion) {
    let ok = axum::response::Response::new(axum::body::Body::empty());
    let mut throttled = axum::response::Response::new(axum::body::Body::empty());
    *throttled.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    throttled
        .extensions_mut()
        .insert(metrics::Failure::Throttled("telemetry".to_owned()));
    let took = Duration::from_micros(150);
    let mut group = c.benchmark_group("metrics per request");
    let started = Instant::now();
    group.bench_function("baseline: Instant::elapsed", |b| {
        b.iter(|| black_box(started.elapsed()))
    });
    // Off first: enabling lasts for the rest of the process.
    group.bench_function("off: 2xx", |b| {
        b.iter(|| metrics::request("SendHubEvent", black_box(&ok), took))
    });
    metrics::enable(
        &MetricsConfig {
            enabled: true,
            ..MetricsConfig::default()
        },
        &["telemetry".to_owned()],
        Sink::Prometheus,
    );
    group.bench_function("on: 2xx", |b| {
        b.iter(|| metrics::request("SendHubEvent", black_box(&ok), took))
    });
    group.bench_function("on: 429 throttled", |b| {
        b.iter(|| metrics::request("SendHubEvent", black_box(&throttled), took))
    });
    group.finish();
}

criterion_group!(benches, per_request);
criterion_main!(benches);
