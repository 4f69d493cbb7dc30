//! Coalesced produce ("group commit"): records of concurrent HTTP requests for the same
//! partition share Kafka produce requests.
//!
//! A broker spends about as much on a produce request with one record as on one with a
//! thousand (tansu: ~0.1-0.25 ms each), so one Kafka request per HTTP request caps a
//! gateway at a few thousand requests per second. Here each partition has a queue with
//! at most one produce request in flight. A request whose queue is idle is sent at once
//! (no added latency when traffic is light); requests arriving meanwhile wait and leave
//! together, in arrival order, as the next produce request, up to `max_batch_bytes`.
//! Batches grow with the load on their own; `linger_ms` can add a fixed wait on top.
//!
//! Guarantees, the same as without coalescing:
//! - an HTTP request is answered only after Kafka acknowledged all of its records, with
//!   its own offsets;
//! - the records of one request stay together in one produce request (all or nothing)
//!   and keep their order; requests to a partition are written in arrival order;
//! - a failed produce request fails every request in it (503, retryable), and nothing
//!   else. If Kafka refuses a shared request as too large (its limit is below
//!   `max_batch_bytes`), that partition's batches are halved from then on.
//!
//! The request that finds its partition's queue idle sends its own records, from its own
//! task: at one request at a time (a device sending event after event) there is no hop to
//! a sender task and back. Requests arriving while it is in flight queue as usual; when it
//! is answered (or dropped) it hands the queue to a sender task. With `linger_ms` every
//! request queues.
//!
//! Why not rskafka's `BatchProducer`: it works per record (a request's records could land
//! in different produce requests, losing all-or-nothing) and lingers before every flush.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rskafka::client::error::ProtocolError;
use rskafka::client::partition::Compression;
use rskafka::record::Record;
use tokio::sync::oneshot;

use crate::KafkaError;
use crate::config::KafkaConfig;

/// The outcome a waiting request receives: its offsets, or the shared error.
/// With the offsets, the number of the produce request that carried them (traces).
pub(super) type Outcome = Result<(Vec<i64>, u64), Arc<KafkaError>>;

/// Per-partition produce queues.
#[derive(Debug)]
pub(super) struct Coalescer {
    /// By topic, then partition.
    queues: Mutex<HashMap<String, HashMap<i32, Arc<Queue>>>>,
    linger: Duration,
    max_batch_bytes: usize,
    max_pending_bytes: usize,
    timeout: Duration,
    compression: Compression,
}

#[derive(Debug, Default)]
struct Queue {
    state: Mutex<State>,
    /// Batch size limit learned from the broker (0: `max_batch_bytes`).
    limit: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    waiting: VecDeque<Waiter>,
    waiting_bytes: usize,
    /// A task is sending this queue's requests.
    running: bool,
}

#[derive(Debug)]
struct Waiter {
    records: Vec<Record>,
    bytes: usize,
    done: oneshot::Sender<Outcome>,
}

/// Approximate size of a record in a produce request.
pub(super) fn record_bytes(r: &Record) -> usize {
    crate::record_data_bytes(r) + 24
}

impl Coalescer {
    pub(super) fn new(config: &KafkaConfig) -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
            linger: config.linger,
            max_batch_bytes: config.max_batch_bytes.max(1),
            max_pending_bytes: config.max_pending_bytes,
            timeout: config.request_timeout,
            compression: config.compression.rskafka(),
        }
    }

    /// Queues `records` for the partition behind `pc`, or hands them back to be sent at
    /// once by the caller when the queue is idle ([`Submitted::Lead`]). `Err(Busy)` when too
    /// much is waiting already.
    pub(super) fn submit(
        &self,
        topic: &str,
        partition: i32,
        pc: Arc<crate::Partition>,
        records: Vec<Record>,
        sent: &Arc<AtomicU64>,
    ) -> Result<Submitted, KafkaError> {
        let queue = {
            let mut queues = self.queues.lock();
            // Looked up by `&str`: no topic name copied per request.
            match queues.get_mut(topic) {
                Some(partitions) => Arc::clone(partitions.entry(partition).or_default()),
                None => Arc::clone(
                    queues
                        .entry(topic.to_owned())
                        .or_default()
                        .entry(partition)
                        .or_default(),
                ),
            }
        };
        let sender = |queue| Sender {
            queue,
            pc,
            sent: Arc::clone(sent),
            linger: self.linger,
            max_batch_bytes: self.max_batch_bytes,
            timeout: self.timeout,
            compression: self.compression,
        };
        let mut state = queue.state.lock();
        if !state.running && self.linger.is_zero() {
            debug_assert!(state.waiting.is_empty(), "an idle queue has no waiters");
            state.running = true;
            drop(state);
            return Ok(Submitted::Lead(Lead {
                sender: Some(sender(Arc::clone(&queue))),
                records,
            }));
        }
        let bytes = records.iter().map(record_bytes).sum();
        if !state.waiting.is_empty() && state.waiting_bytes + bytes > self.max_pending_bytes {
            return Err(KafkaError::Busy);
        }
        let (done, rx) = oneshot::channel();
        state.waiting_bytes += bytes;
        crate::metrics::pending(i64::try_from(bytes).unwrap_or(i64::MAX));
        state.waiting.push_back(Waiter {
            records,
            bytes,
            done,
        });
        if !state.running {
            state.running = true;
            tokio::spawn(sender(Arc::clone(&queue)).run());
        }
        Ok(Submitted::Queued(rx))
    }
}

/// What [`Coalescer::submit`] did with a request's records.
#[derive(Debug)]
pub(super) enum Submitted {
    /// Queued behind a produce request in flight: the receiver gets the offsets.
    Queued(oneshot::Receiver<Outcome>),
    /// The queue was idle: send them now with [`Lead::send`], in the caller's task.
    Lead(Lead),
}

/// The request that found its queue idle; it sends its records itself, then hands the queue
/// (and whatever queued meanwhile) to a sender task. Dropped unsent or mid-flight (the HTTP
/// client went away, a timeout), it hands the queue over all the same: rskafka finishes a
/// request it started writing (its requests are cancellation-safe), so the connection is
/// unharmed. For that moment two produce requests of the partition may be in flight; they
/// share one broker connection, whose requests Kafka handles in order.
#[derive(Debug)]
pub(super) struct Lead {
    sender: Option<Sender>,
    records: Vec<Record>,
}

impl Lead {
    /// Produces the records as one request; their offsets, or the error.
    pub(super) async fn send(mut self) -> Result<Vec<i64>, KafkaError> {
        let records = std::mem::take(&mut self.records);
        let result = match &self.sender {
            Some(sender) => {
                crate::metrics::batch(records.len(), || records.iter().map(record_bytes).sum(), 1);
                let (result, number) = sender.write(records).await;
                tracing::Span::current().record("kafka.produce_request", number);
                result
            }
            None => Err(KafkaError::Timeout), // not reached: `sender` is taken only in drop
        };
        self.hand_off();
        result
    }

    /// Lets requests queued meanwhile leave with a sender task, or marks the queue idle.
    fn hand_off(&mut self) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        let queue = Arc::clone(&sender.queue);
        let mut state = queue.state.lock();
        if state.waiting.is_empty() {
            state.running = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(sender.run());
            }
            // No runtime left (shutting down): the waiters' receivers see their senders go.
            Err(_) => {
                state.waiting.clear();
                crate::metrics::pending(-i64::try_from(state.waiting_bytes).unwrap_or(i64::MAX));
                state.waiting_bytes = 0;
                state.running = false;
            }
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.hand_off();
    }
}

/// The task that empties one queue, one produce request at a time, and then ends.
#[derive(Debug)]
struct Sender {
    queue: Arc<Queue>,
    pc: Arc<crate::Partition>,
    /// Counts produce requests (`Kafka::produce_requests`).
    sent: Arc<AtomicU64>,
    linger: Duration,
    max_batch_bytes: usize,
    timeout: Duration,
    compression: Compression,
}

impl Sender {
    async fn run(self) {
        loop {
            if !self.linger.is_zero() {
                tokio::time::sleep(self.linger).await;
            }
            let batch = self.take();
            if batch.is_empty() {
                return; // `take` cleared `running` under the lock
            }
            self.send(batch).await;
        }
    }

    /// The next batch: waiting requests in order, up to `max_batch_bytes` (at least one).
    /// Requests whose HTTP client went away are dropped unsent.
    fn take(&self) -> Vec<Waiter> {
        let mut state = self.queue.state.lock();
        let max = match self.queue.limit.load(Ordering::Relaxed) {
            0 => self.max_batch_bytes,
            learned => learned.min(self.max_batch_bytes),
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(w) = state.waiting.front() {
            if !batch.is_empty() && bytes + w.bytes > max {
                break;
            }
            let Some(w) = state.waiting.pop_front() else {
                break;
            };
            state.waiting_bytes -= w.bytes;
            crate::metrics::pending(-i64::try_from(w.bytes).unwrap_or(i64::MAX));
            if w.done.is_closed() {
                continue;
            }
            bytes += w.bytes;
            batch.push(w);
        }
        if batch.is_empty() {
            state.running = false;
        }
        batch
    }

    async fn send(&self, batch: Vec<Waiter>) {
        let (outcomes, senders) = self.produce(batch).await;
        for (done, outcome) in senders.into_iter().zip(outcomes) {
            let _ = done.send(outcome); // the HTTP client may have gone
        }
    }

    /// Produces the batch as one request. If Kafka refuses a request combined from several
    /// as too large, the broker's limit is below `max_batch_bytes`: every request in it
    /// fails with a retryable error and this partition's batches are halved from now on.
    async fn produce(&self, batch: Vec<Waiter>) -> (Vec<Outcome>, Vec<oneshot::Sender<Outcome>>) {
        let counts: Vec<usize> = batch.iter().map(|w| w.records.len()).collect();
        let bytes: usize = batch.iter().map(|w| w.bytes).sum();
        let mut records = Vec::with_capacity(counts.iter().sum());
        let mut senders = Vec::with_capacity(batch.len());
        for w in batch {
            records.extend(w.records);
            senders.push(w.done);
        }
        crate::metrics::batch(records.len(), || bytes, senders.len());
        let (written, number) = self.write(records).await;
        let outcome = match written {
            Err(e) if senders.len() > 1 && too_large(&e) => {
                let halved = (bytes / 2).max(1);
                self.queue.limit.store(halved, Ordering::Relaxed);
                tracing::error!(
                    bytes,
                    halved,
                    "Kafka refused a combined produce request as too large; lower kafka.max_batch_bytes below the broker's message.max.bytes"
                );
                Err(Arc::new(KafkaError::CombinedTooLarge))
            }
            other => other.map_err(Arc::new),
        };
        let outcomes = match outcome {
            Ok(offsets) => {
                let mut offsets = offsets.into_iter();
                counts
                    .iter()
                    .map(|&n| Ok((offsets.by_ref().take(n).collect(), number)))
                    .collect()
            }
            Err(e) => senders.iter().map(|_| Err(Arc::clone(&e))).collect(),
        };
        (outcomes, senders)
    }

    /// Sends one produce request; its result and its number (1, 2, … per Kafka handle).
    async fn write(&self, records: Vec<Record>) -> (Result<Vec<i64>, KafkaError>, u64) {
        let number = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let fut = Box::pin(self.pc.produce(records, self.compression));
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(KafkaError::from),
            Err(_) => Err(KafkaError::Timeout),
        };
        crate::metrics::request(
            crate::metrics::Operation::produce,
            started.elapsed(),
            &result,
        );
        (result, number)
    }
}

fn too_large(e: &KafkaError) -> bool {
    matches!(
        e.protocol(),
        Some(ProtocolError::MessageTooLarge | ProtocolError::RecordListTooLarge)
    )
}
