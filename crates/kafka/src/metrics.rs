//! The Kafka layer's metrics: produce and fetch requests (durations, errors), the size of
//! coalesced produce requests, and the bytes waiting to be produced.
//!
//! Process-wide (one Kafka handle per process), recorded with atomics only, and only after
//! [`enable`]: off, recording is one relaxed load. The server layer registers the families
//! ([`register`]) in its Prometheus registry and reads them for CloudWatch EMF ([`snapshot`]).
//! Names follow the Prometheus conventions (base units, `_seconds`, `_bytes`, `_total`
//! added by the encoder to counters).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::KafkaError;

/// Which Kafka request.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // the label values, as they read in PromQL
pub enum Operation {
    produce,
    fetch,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: Operation,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    operation: Operation,
    /// [`error_kind`]: a closed set.
    error: &'static str,
}

struct Families {
    duration: Family<OperationLabels, Histogram>,
    errors: Family<ErrorLabels, Counter>,
    batch_records: Histogram,
    batch_bytes: Histogram,
    batch_requests: Histogram,
    pending_bytes: Gauge,
    /// Per [`Operation`]: requests, nanoseconds and errors since the start, for [`snapshot`]
    /// (a histogram does not tell its sum and count outside tests).
    totals: [Totals; 2],
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    nanos: AtomicU64,
    errors: AtomicU64,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    // 0.5 ms to ~16 s.
    duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
    errors: Family::default(),
    // 1 to 32768 records; 64 B to 16 MiB; 1 to 4096 HTTP requests.
    batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
    batch_bytes: Histogram::new(exponential_buckets(64.0, 4.0, 10)),
    batch_requests: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
    pending_bytes: Gauge::default(),
    totals: Default::default(),
});

/// Starts recording (for the rest of the process).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

fn families() -> Option<&'static Families> {
    ENABLED.load(Ordering::Relaxed).then(|| &*FAMILIES)
}

/// Registers the families in `registry` (which adds the `hubgate_` prefix).
pub fn register(registry: &mut Registry) {
    let f = &*FAMILIES;
    registry.register_with_unit(
        "kafka_request_duration",
        "Kafka produce and fetch requests, from sending to the broker's answer (or the timeout)",
        Unit::Seconds,
        f.duration.clone(),
    );
    registry.register(
        "kafka_request_errors",
        "Kafka produce and fetch requests that failed, by kind of failure",
        f.errors.clone(),
    );
    registry.register(
        "kafka_produce_batch_records",
        "Records per Kafka produce request (coalesced HTTP requests share one)",
        f.batch_records.clone(),
    );
    registry.register_with_unit(
        "kafka_produce_batch",
        "Bytes per Kafka produce request (record data and per-record overhead, before compression)",
        Unit::Bytes,
        f.batch_bytes.clone(),
    );
    registry.register(
        "kafka_produce_batch_requests",
        "HTTP produce requests carried by one Kafka produce request",
        f.batch_requests.clone(),
    );
    registry.register_with_unit(
        "kafka_produce_pending",
        "Bytes of records waiting behind a produce request in flight (kafka.max_pending_bytes bounds each partition)",
        Unit::Bytes,
        f.pending_bytes.clone(),
    );
}

/// A closed set of names for a failure, for a label.
pub fn error_kind(e: &KafkaError) -> &'static str {
    match e {
        KafkaError::Shared(e) => error_kind(e),
        KafkaError::Timeout => "timeout",
        KafkaError::Client(c) => match c.as_ref() {
            rskafka::client::error::Error::ServerError { .. } => "broker",
            _ => "connection",
        },
        KafkaError::Busy => "busy",
        KafkaError::RecordTooLarge | KafkaError::CombinedTooLarge => "too_large",
        KafkaError::UnknownTopic(_) | KafkaError::UnknownPartition { .. } => "unknown_topic",
        KafkaError::OffsetOutOfRange { .. } => "offset_out_of_range",
        _ => "other",
    }
}

/// One Kafka request ended after `took`.
pub(crate) fn request<T>(operation: Operation, took: Duration, result: &Result<T, KafkaError>) {
    let Some(f) = families() else { return };
    f.duration
        .get_or_create(&OperationLabels { operation })
        .observe(took.as_secs_f64());
    let totals = &f.totals[operation as usize];
    totals.requests.fetch_add(1, Ordering::Relaxed);
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    totals.nanos.fetch_add(nanos, Ordering::Relaxed);
    if let Err(e) = result {
        totals.errors.fetch_add(1, Ordering::Relaxed);
        f.errors
            .get_or_create(&ErrorLabels {
                operation,
                error: error_kind(e),
            })
            .inc();
    }
}

/// A produce request carried `records` records of about `bytes()` bytes (counted only while
/// recording) from `requests` HTTP requests.
pub(crate) fn batch(records: usize, bytes: impl FnOnce() -> usize, requests: usize) {
    let Some(f) = families() else { return };
    f.batch_records.observe(records as f64);
    f.batch_bytes.observe(bytes() as f64);
    f.batch_requests.observe(requests as f64);
}

/// `bytes` more (positive) or fewer (negative) bytes wait to be produced.
pub(crate) fn pending(bytes: i64) {
    if let Some(f) = families() {
        f.pending_bytes.inc_by(bytes);
    }
}

/// Totals since the process started, for CloudWatch EMF (which wants deltas per invocation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub produce_requests: u64,
    pub produce_seconds: f64,
    pub fetch_requests: u64,
    pub fetch_seconds: f64,
    pub errors: u64,
}

/// The totals now (zero while not enabled).
pub fn snapshot() -> Snapshot {
    let Some(f) = families() else {
        return Snapshot::default();
    };
    let get = |operation: Operation| {
        let t = &f.totals[operation as usize];
        let nanos = t.nanos.load(Ordering::Relaxed);
        (
            t.requests.load(Ordering::Relaxed),
            Duration::from_nanos(nanos).as_secs_f64(),
            t.errors.load(Ordering::Relaxed),
        )
    };
    let (produce_requests, produce_seconds, produce_errors) = get(Operation::produce);
    let (fetch_requests, fetch_seconds, fetch_errors) = get(Operation::fetch);
    let errors = produce_errors + fetch_errors;
    Snapshot {
        produce_requests,
        produce_seconds,
        fetch_requests,
        fetch_seconds,
        errors,
    }
}

/// Every value [`error_kind`] returns.
pub const ERROR_KINDS: [&str; 8] = [
    "timeout",
    "broker",
    "connection",
    "busy",
    "too_large",
    "unknown_topic",
    "offset_out_of_range",
    "other",
];

impl Snapshot {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            produce_requests: self.produce_requests
                - earlier.produce_requests.min(self.produce_requests),
            produce_seconds: (self.produce_seconds - earlier.produce_seconds).max(0.0),
            fetch_requests: self.fetch_requests - earlier.fetch_requests.min(self.fetch_requests),
            fetch_seconds: (self.fetch_seconds - earlier.fetch_seconds).max(0.0),
            errors: self.errors - earlier.errors.min(self.errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kind_closed_set_ok() {
        for e in [
            KafkaError::Timeout,
            KafkaError::Busy,
            KafkaError::CombinedTooLarge,
            KafkaError::UnknownTopic("t".into()),
            KafkaError::Shared(std::sync::Arc::new(KafkaError::Timeout)),
            KafkaError::Admin("x".into()),
        ] {
            assert!(ERROR_KINDS.contains(&error_kind(&e)), "{e:?}");
        }
    }

    #[test]
    fn snapshot_since_counts_deltas_ok() {
        enable();
        let before = snapshot();
        request(
            Operation::produce,
            Duration::from_millis(5),
            &Ok::<(), KafkaError>(()),
        );
        request::<()>(
            Operation::fetch,
            Duration::from_millis(1),
            &Err(KafkaError::Timeout),
        );
        let d = snapshot().since(&before);
        // Other tests in this process may record too: at least ours.
        assert!(
            d.produce_requests >= 1 && d.fetch_requests >= 1 && d.errors >= 1,
            "{d:?}"
        );
        assert!(d.produce_seconds >= 0.005);
    }
}
