//! Identical fetches issued at the same moment share one Kafka request.
//!
//! When an append wakes many long-polling readers of a partition, they are usually all at the
//! partition's end, at the same offset: each would send the same fetch on the shared
//! connection, one after another (a broker answers a connection's requests in order). Here
//! the first reader's fetch runs as its own task, which first lets the other readers that are
//! ready run: those with the same topic, partition, offset and byte limit join it. Then it
//! stops taking joiners and sends the request. So every reader's answer was asked for after
//! that reader called (a record acknowledged before a read is in that read's answer), and a
//! reader that goes away (its client disconnected) does not cancel the others' fetch.
//!
//! Answers are shared, and so is a timeout (the broker did not answer in time: asking again
//! at once would only double the wait). A reader whose shared fetch failed otherwise fetches
//! again on its own, so errors (offset out of range, unknown partition) are reported to each
//! exactly as before.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt as _, Shared};
use rskafka::record::RecordAndOffset;

/// A fetch's records and the partition's high watermark.
pub(super) type Answer = Arc<(Vec<RecordAndOffset>, i64)>;

/// What identifies identical fetches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: i32,
}

/// Why a shared fetch has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    /// The broker did not answer in time.
    TimedOut,
    /// The broker does not know the topic or partition (the client must not be used again).
    UnknownTopic,
    /// Anything else (or the fetch's task panicked): ask again to learn what.
    Other,
}

type InFlight = Shared<BoxFuture<'static, Result<Answer, Failed>>>;

/// The fetches in flight of one Kafka handle.
#[derive(Default)]
pub(super) struct Fetches {
    /// Only ever locked briefly, never across an await.
    in_flight: Arc<Mutex<HashMap<Key, InFlight>>>,
}

impl std::fmt::Debug for Fetches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetches").finish_non_exhaustive()
    }
}

impl Fetches {
    /// The answer of the fetch with these parameters that is about to be sent, or of `fetch`,
    /// started now as a task, when there is none.
    pub(super) async fn share<F>(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        fetch: F,
    ) -> Result<Answer, Failed>
    where
        F: Future<Output = Result<Answer, Failed>> + Send + 'static,
    {
        let key = Key {
            topic: topic.to_owned(),
            partition,
            offset,
            max_bytes,
        };
        let shared = {
            let mut map = self.in_flight.lock();
            match map.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let in_flight = Arc::clone(&self.in_flight);
                    let key_done = key.clone();
                    let task = tokio::spawn(async move {
                        // Readers woken with this one run first and join; then no one joins
                        // a request already sent.
                        tokio::task::yield_now().await;
                        in_flight.lock().remove(&key_done);
                        fetch.await
                    });
                    let f = task
                        .map(|r| r.unwrap_or(Err(Failed::Other)))
                        .boxed()
                        .shared();
                    map.insert(key, f.clone());
                    f
                }
            }
        };
        shared.await
    }

    /// How many fetches are in flight (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.in_flight.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn answer(offset: i64) -> Answer {
        Arc::new((vec![], offset))
    }

    #[tokio::test]
    async fn share_identical_fetches_run_once_ok() {
        let fetches = Arc::new(Fetches::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let (fetches, runs) = (Arc::clone(&fetches), Arc::clone(&runs));
                tokio::spawn(async move {
                    fetches
                        .share("hub", 0, 7, 1024, async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(answer(7))
                        })
                        .await
                })
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap().unwrap().1, 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one fetch for 50 readers");
        assert_eq!(fetches.len(), 0, "the finished fetch removed itself");
    }

    #[tokio::test]
    async fn share_lone_reader_owns_the_answer_ok() {
        let fetches = Fetches::default();
        let a = fetches
            .share("hub", 0, 0, 1024, async { Ok(answer(4)) })
            .await
            .unwrap();
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "nothing else holds it: no copy needed"
        );
    }

    #[tokio::test]
    async fn share_different_offsets_or_later_fetches_not_shared_ok() {
        let fetches = Fetches::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let run = |o: i64| {
            let runs = Arc::clone(&runs);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(answer(o))
            }
        };
        let (a, b) = tokio::join!(
            fetches.share("hub", 0, 1, 1024, run(1)),
            fetches.share("hub", 0, 2, 1024, run(2)),
        );
        assert_eq!((a.unwrap().1, b.unwrap().1), (1, 2));
        // Done fetches are gone: the same parameters later fetch again.
        assert_eq!(fetches.share("hub", 0, 1, 1024, run(1)).await.unwrap().1, 1);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn share_reader_gone_fetch_goes_on_ok() {
        let fetches = Fetches::default();
        let gate = Arc::new(tokio::sync::Notify::new());
        let g = Arc::clone(&gate);
        let mut first = Box::pin(fetches.share("hub", 0, 0, 1024, async move {
            g.notified().await;
            Ok(answer(3))
        }));
        let mut second = Box::pin(fetches.share("hub", 0, 0, 1024, async {
            unreachable!("joins the first fetch")
        }));
        assert!(futures::poll!(first.as_mut()).is_pending());
        assert!(futures::poll!(second.as_mut()).is_pending());
        drop(first); // its client went away
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.notify_one();
        assert_eq!(second.await.unwrap().1, 3);
    }

    #[tokio::test]
    async fn share_fetch_already_sent_not_joined_ok() {
        let fetches = Arc::new(Fetches::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let (g, r) = (Arc::clone(&gate), Arc::clone(&runs));
        let f = Arc::clone(&fetches);
        let first = tokio::spawn(async move {
            f.share("hub", 0, 0, 1024, async move {
                r.fetch_add(1, Ordering::SeqCst);
                g.notified().await;
                Ok(answer(1))
            })
            .await
        });
        // The first fetch is sent (and waits for its answer).
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(fetches.len(), 0, "a sent fetch takes no joiners");
        let r = Arc::clone(&runs);
        let later = fetches
            .share("hub", 0, 0, 1024, async move {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(answer(2))
            })
            .await;
        assert_eq!(
            later.unwrap().1,
            2,
            "asked after the first was sent: its own answer"
        );
        gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap().1, 1);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn share_failed_fetch_reports_why_fails() {
        let fetches = Fetches::default();
        for why in [Failed::Other, Failed::TimedOut] {
            let got = fetches
                .share("hub", 0, 0, 1024, async move { Err(why) })
                .await;
            assert_eq!(got.unwrap_err(), why);
        }
        let panicked = fetches
            .share("hub", 0, 0, 1024, async {
                panic!("the fetch task panicked")
            })
            .await;
        assert_eq!(panicked.unwrap_err(), Failed::Other);
        assert_eq!(fetches.len(), 0);
    }
}
