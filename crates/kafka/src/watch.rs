//! Waiting for a partition to grow, for long-polling reads, without holding a fetch open.
//!
//! A broker handles one connection's requests in order, so a fetch held open with
//! `max_wait_ms` on the shared client would hold up every produce and metadata request of the
//! process behind it (measured with tansu: a send took the whole 500 ms wait). Instead, one
//! poller per watched partition asks for the partition's end offset (ListOffsets, answered at
//! once) every [`POLL_EVERY`] while anyone waits, and wakes the waiters when it moved. Appends
//! made by this process wake them at once. Kafka's load is one small request per watched
//! partition per interval, however many reads wait.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How often a watched partition's end offset is asked for.
pub(super) const POLL_EVERY: Duration = Duration::from_millis(100);

/// One watched partition.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// The end offset (high watermark) last seen; -1 before the first look.
    end: AtomicI64,
    changed: Notify,
    waiters: AtomicUsize,
    polling: AtomicBool,
}

impl Watch {
    /// The end offset last seen (-1 before the first look).
    pub(super) fn end(&self) -> i64 {
        self.end.load(Ordering::Acquire)
    }

    /// Records an end offset an append of this process reached, and wakes waiters when it
    /// grew.
    pub(super) fn saw(&self, end: i64) {
        if self.end.fetch_max(end, Ordering::AcqRel) < end {
            self.changed.notify_waiters();
        }
    }

    /// Records the end offset the broker answered: it may also have shrunk (the topic was
    /// created again), which must not leave waiters believing there is something to read.
    fn polled(&self, end: i64) {
        if self.end.swap(end, Ordering::AcqRel) < end {
            self.changed.notify_waiters();
        }
    }
}

/// The watched partitions of one Kafka handle.
#[derive(Debug, Default)]
pub(super) struct Watches {
    map: Mutex<HashMap<String, HashMap<i32, Arc<Watch>>>>,
    /// Whether any partition was ever watched: until then an append costs one load.
    any: AtomicBool,
}

impl Watches {
    /// The partition's watch, if anyone ever waited on it (appends need not create one).
    pub(super) fn existing(&self, topic: &str, partition: i32) -> Option<Arc<Watch>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let map = self.map.lock();
        map.get(topic).and_then(|t| t.get(&partition)).cloned()
    }

    pub(super) fn get(&self, topic: &str, partition: i32) -> Arc<Watch> {
        let mut map = self.map.lock();
        self.any.store(true, Ordering::Release);
        Arc::clone(
            map.entry(topic.to_owned())
                .or_default()
                .entry(partition)
                .or_insert_with(|| {
                    Arc::new(Watch {
                        end: AtomicI64::new(-1),
                        ..Watch::default()
                    })
                }),
        )
    }
}

/// Counts a waiter for as long as it lives.
struct Waiting<'a>(&'a Watch);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Waits until `watch` has seen an end offset above `offset`, or `deadline`. `start_poller`
/// is called whenever no poller runs; it must spawn one running [`poll`].
pub(super) async fn wait(
    watch: &Arc<Watch>,
    offset: i64,
    deadline: Instant,
    start_poller: impl Fn(Weak<Watch>),
) {
    watch.waiters.fetch_add(1, Ordering::AcqRel);
    let _waiting = Waiting(watch);
    loop {
        let changed = watch.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if watch.end.load(Ordering::Acquire) > offset || Instant::now() >= deadline {
            return;
        }
        if !watch.polling.swap(true, Ordering::AcqRel) {
            start_poller(Arc::downgrade(watch));
        }
        // Re-checked at least once a second, so a poller that just stopped is restarted.
        let until = deadline.min(Instant::now() + Duration::from_secs(1));
        let _ = tokio::time::timeout_at(until, changed).await;
    }
}

/// What one look at a partition's end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Polled {
    /// The end offset (high watermark).
    End(i64),
    /// No answer this time: look again at the next tick.
    Failed,
    /// Not to be asked again (the topic is unknown): the poller ends, and a waiter that
    /// still waits starts another after at most a second.
    Stop,
}

/// The poller: asks `end_offset` every [`POLL_EVERY`] while anyone waits on `watch`.
pub(super) async fn poll<F, Fut>(watch: Weak<Watch>, end_offset: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Polled>,
{
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(w) = watch.upgrade() else { return };
        if w.waiters.load(Ordering::Acquire) == 0 {
            w.polling.store(false, Ordering::Release);
            return;
        }
        drop(w);
        // A failed look is retried at the next tick; waiters time out on their own.
        match end_offset().await {
            Polled::End(end) => {
                if let Some(w) = watch.upgrade() {
                    w.polled(end);
                }
            }
            Polled::Failed => {}
            Polled::Stop => {
                if let Some(w) = watch.upgrade() {
                    w.polling.store(false, Ordering::Release);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watch_wakes_waiter_on_append_ok() {
        let watches = Watches::default();
        let w = watches.get("t", 0);
        w.saw(3);
        let waiter = {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                wait(&w, 3, Instant::now() + Duration::from_secs(30), |_| {}).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        w.saw(4);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(watches.existing("t", 0).is_some());
        assert!(watches.existing("t", 1).is_none());
    }

    #[test]
    fn watch_poll_may_shrink_the_end_ok() {
        let w = Watch::default();
        w.saw(10);
        w.polled(3); // the topic was created again
        assert_eq!(w.end.load(Ordering::Acquire), 3);
        w.saw(2); // an older append's answer arriving late changes nothing
        assert_eq!(w.end.load(Ordering::Acquire), 3);
    }

    #[tokio::test]
    async fn watch_poller_stops_when_told_ok() {
        let w = Arc::new(Watch::default());
        w.polling.store(true, Ordering::Release);
        w.waiters.store(1, Ordering::Release);
        let asked = AtomicUsize::new(0);
        // The topic is unknown: one look, then the poller ends (while someone still waits).
        poll(Arc::downgrade(&w), || {
            asked.fetch_add(1, Ordering::Relaxed);
            async { Polled::Stop }
        })
        .await;
        assert_eq!(asked.load(Ordering::Relaxed), 1);
        assert!(!w.polling.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn watch_poller_stops_without_waiters_ok() {
        let w = Arc::new(Watch::default());
        w.polling.store(true, Ordering::Release);
        // Nobody waits: the poller ends at its first tick and says so.
        poll(Arc::downgrade(&w), || async { Polled::End(1) }).await;
        assert!(!w.polling.load(Ordering::Acquire));
    }
}
