//! `Idempotency-Key` on produce: a retry with the same key and the same request, within
//! `idempotency_window_secs`, gets the original answer and writes nothing again (the model
//! of Stripe's API and the IETF `Idempotency-Key` header draft).
//!
//! Keys are scoped to the sender and the hub (a key of one publisher never matches
//! another's) and stored with a SHA-256 of the request (method, path, body). The same key
//! with a different request is refused with 422; a retry while the first is still running
//! gets 409. Only final answers are kept: success and client errors. After a 5xx nothing
//! is kept, so the retry runs again (a produce that failed acknowledged nothing, except a
//! partial multi-partition produce, whose answer lists what was written).
//!
//! The store lives in one process: a retry that reaches another instance (another Lambda
//! instance, another container behind the load balancer) is not recognised. Bounded by
//! `MAX_ENTRIES` and `MAX_BYTES`; the oldest answers go first.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;
const MAX_ENTRIES: usize = 100_000;
const MAX_BYTES: usize = 64 * 1024 * 1024;

type Id = [u8; 32];

#[derive(Debug)]
enum Slot {
    InFlight,
    Done {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
}

#[derive(Debug)]
struct Entry {
    request: Id,
    slot: Slot,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Id, Entry>,
    /// Insertion order, for expiry and eviction (may hold ids already removed).
    order: VecDeque<(Instant, Id)>,
    bytes: usize,
}

/// The per-process store of recent answers.
#[derive(Debug)]
pub struct Idempotency {
    window: Duration,
    state: Mutex<State>,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Begin {
    /// No key: just run it.
    Untracked,
    /// First time: run it, then hand the answer to [`Guard::finish`].
    Fresh(Guard),
    /// Seen before: send this answer.
    Replay(Response),
}

/// Why a request with an `Idempotency-Key` cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError {
    #[error("Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters")]
    BadKey,
    #[error("this Idempotency-Key was used with a different request")]
    OtherRequest,
    #[error("a request with this Idempotency-Key is still in progress; retry later")]
    InProgress,
}

impl Idempotency {
    pub fn new(window: Duration) -> Arc<Self> {
        Arc::new(Self {
            window,
            state: Mutex::new(State::default()),
        })
    }

    /// Looks the request up. `scope` names the sender and hub; `body` is the request body.
    pub fn begin(
        self: &Arc<Self>,
        headers: &HeaderMap,
        scope: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Begin, IdempotencyError> {
        let Some(key) = headers.get(HEADER) else {
            return Ok(Begin::Untracked);
        };
        let key = key
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
            .ok_or(IdempotencyError::BadKey)?;
        let id: Id = Sha256::new()
            .chain_update(scope.as_bytes())
            .chain_update([0])
            .chain_update(key.as_bytes())
            .finalize()
            .into();
        let request: Id = Sha256::new()
            .chain_update(method.as_bytes())
            .chain_update([0])
            .chain_update(path.as_bytes())
            .chain_update([0])
            .chain_update(body)
            .finalize()
            .into();
        let now = Instant::now();
        let mut state = self.state.lock();
        self.expire(&mut state, now);
        if let Some(e) = state.entries.get(&id) {
            if e.request != request {
                return Err(IdempotencyError::OtherRequest);
            }
            return match &e.slot {
                Slot::InFlight => Err(IdempotencyError::InProgress),
                Slot::Done {
                    status,
                    content_type,
                    body,
                } => {
                    let mut r = (*status, body.clone()).into_response();
                    if let Some(ct) = content_type {
                        r.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
                    }
                    r.headers_mut()
                        .insert(REPLAYED, HeaderValue::from_static("true"));
                    Ok(Begin::Replay(r))
                }
            };
        }
        state.entries.insert(
            id,
            Entry {
                request,
                slot: Slot::InFlight,
                at: now,
            },
        );
        state.order.push_back((now, id));
        Ok(Begin::Fresh(Guard {
            store: Arc::clone(self),
            id,
            done: false,
        }))
    }

    /// Drops answers older than the window, and the oldest while over the bounds.
    fn expire(&self, state: &mut State, now: Instant) {
        while let Some(&(at, id)) = state.order.front() {
            let over = state.entries.len() > MAX_ENTRIES || state.bytes > MAX_BYTES;
            if now.duration_since(at) < self.window && !over {
                break;
            }
            state.order.pop_front();
            if state.entries.get(&id).is_some_and(|e| e.at == at) {
                Self::remove(state, &id);
            }
        }
    }

    fn remove(state: &mut State, id: &Id) {
        if let Some(Entry {
            slot: Slot::Done { body, .. },
            ..
        }) = state.entries.remove(id)
        {
            state.bytes -= body.len();
        }
    }
}

/// A request being run under a key. Dropped without [`finish`](Self::finish) (the client
/// went away mid-request), the key is released.
#[derive(Debug)]
pub struct Guard {
    store: Arc<Idempotency>,
    id: Id,
    done: bool,
}

impl Guard {
    /// Keeps a final answer (2xx, 4xx) for replays and returns it; after a 5xx, forgets.
    pub async fn finish(mut self, response: Response) -> Response {
        let status = response.status();
        if status.is_server_error() {
            return response; // `drop` releases the key
        }
        let (parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BYTES).await else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
        };
        {
            let mut state = self.store.state.lock();
            if let Some(e) = state.entries.get_mut(&self.id) {
                e.slot = Slot::Done {
                    status,
                    content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
                    body: bytes.clone(),
                };
                state.bytes += bytes.len();
                self.done = true;
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.store.state.lock();
            Idempotency::remove(&mut state, &self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(key).unwrap());
        h
    }

    #[tokio::test]
    async fn idempotency_replay_conflict_and_mismatch_ok() {
        let store = Idempotency::new(Duration::from_secs(60));
        let h = headers("k1");
        let Begin::Fresh(g) = store
            .begin(&h, "pub:a", "POST", "/hub/messages", b"x")
            .unwrap()
        else {
            panic!("first use is fresh");
        };
        // While running: 409.
        let e = store
            .begin(&h, "pub:a", "POST", "/hub/messages", b"x")
            .unwrap_err();
        assert_eq!(e, IdempotencyError::InProgress);
        let r = g
            .finish((StatusCode::CREATED, "done").into_response())
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let Begin::Replay(r) = store
            .begin(&h, "pub:a", "POST", "/hub/messages", b"x")
            .unwrap()
        else {
            panic!("second use replays");
        };
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()[REPLAYED], "true");
        assert_eq!(
            axum::body::to_bytes(r.into_body(), 100).await.unwrap(),
            "done"
        );
        // Same key, other body: 422. Other sender: its own key space.
        let e = store
            .begin(&h, "pub:a", "POST", "/hub/messages", b"y")
            .unwrap_err();
        assert_eq!(e, IdempotencyError::OtherRequest);
        assert!(matches!(
            store
                .begin(&h, "pub:b", "POST", "/hub/messages", b"y")
                .unwrap(),
            Begin::Fresh(_)
        ));
        assert!(matches!(
            store
                .begin(&HeaderMap::new(), "pub:a", "POST", "/", b"")
                .unwrap(),
            Begin::Untracked
        ));
    }

    #[tokio::test]
    async fn idempotency_server_error_or_drop_releases_key_ok() {
        let store = Idempotency::new(Duration::from_secs(60));
        let h = headers("k");
        let Begin::Fresh(g) = store.begin(&h, "s", "POST", "/", b"x").unwrap() else {
            panic!()
        };
        let _ = g
            .finish(StatusCode::SERVICE_UNAVAILABLE.into_response())
            .await;
        let Begin::Fresh(g) = store.begin(&h, "s", "POST", "/", b"x").unwrap() else {
            panic!("a 5xx is not kept")
        };
        drop(g);
        assert!(matches!(
            store.begin(&h, "s", "POST", "/", b"x").unwrap(),
            Begin::Fresh(_)
        ));
    }

    #[tokio::test]
    async fn idempotency_window_expires_and_bad_key_fails() {
        let store = Idempotency::new(Duration::ZERO);
        let h = headers("k");
        let Begin::Fresh(g) = store.begin(&h, "s", "POST", "/", b"x").unwrap() else {
            panic!()
        };
        let _ = g.finish(StatusCode::CREATED.into_response()).await;
        assert!(matches!(
            store.begin(&h, "s", "POST", "/", b"x").unwrap(),
            Begin::Fresh(_)
        ));
        let long = headers(&"k".repeat(300));
        assert_eq!(
            store.begin(&long, "s", "POST", "/", b"x").unwrap_err(),
            IdempotencyError::BadKey
        );
    }
}
