//! `Idempotency-Key` on produce: a retry with the same key and the same request, within
//! `idempotency_window_secs`, gets the original answer and writes nothing again (the model
//! of Stripe's API and the IETF `Idempotency-Key` header draft).
//!
//! Keys are scoped to the sender and the hub (a key of one publisher never matches
//! another's) and stored with a SHA-256 of the request's [`RequestId`]: everything that
//! decides what it writes (route, target, and each event's body, key and properties; the
//! caller names them). The same key with a different request is refused with 422; a retry
//! while the first is still running gets 409. Only final answers are kept ([`is_final`]):
//! success, and the client errors the same request would get again. After any other answer
//! (429, 409, 5xx, ...) nothing is kept and the retry runs again: such a request wrote
//! nothing. The exception is a partial multi-partition produce ([`PartlyWritten`]): its
//! answer lists what was written and is kept, so that a retry does not write that again.
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

    /// Looks the request up. `scope` names the sender and hub; `request` is what the request
    /// writes (see [`RequestId`]).
    pub fn begin(
        self: &Arc<Self>,
        headers: &HeaderMap,
        scope: &str,
        request: RequestId,
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
        let request: Id = request.0.finalize().into();
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

/// Whether an answer is kept for replays: a success, or a client error that the same request
/// would get again whenever it is sent (malformed, too large, wrong media type, invalid).
/// Everything else depends on the moment (throttling, a request in progress, a missing
/// topic or partition, credentials, Kafka): the retry runs again.
#[must_use]
pub fn is_final(status: StatusCode) -> bool {
    status.is_success()
        || matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::UNPROCESSABLE_ENTITY
        )
}

/// Marks an answer (a response extension) after which some records were written although the
/// status is an error: it is kept like a final answer.
#[derive(Debug, Clone, Copy)]
pub struct PartlyWritten;

/// Whether the request carries an `Idempotency-Key` (so its [`RequestId`] is needed).
#[must_use]
pub fn wanted(headers: &HeaderMap) -> bool {
    headers.contains_key(HEADER)
}

/// The identity of a request under a key: a hash of length-prefixed parts, so that no two
/// different sequences of parts give the same identity. The caller adds everything that
/// decides what the request writes, in a fixed order.
#[derive(Debug, Clone)]
pub struct RequestId(Sha256);

impl RequestId {
    /// Starts an identity with the route (method and path, as the caller names them).
    #[must_use]
    pub fn new(route: &str) -> Self {
        Self(Sha256::new()).part(route.as_bytes())
    }

    /// Adds one part.
    #[must_use]
    pub fn part(mut self, bytes: &[u8]) -> Self {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds an optional part (absent and empty differ).
    #[must_use]
    pub fn optional(self, bytes: Option<&[u8]>) -> Self {
        match bytes {
            None => self.part(b"-"),
            Some(b) => self.part(b"+").part(b),
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
    /// Keeps a final answer ([`is_final`]) for replays and returns it; after any other
    /// answer, forgets the key.
    pub async fn finish(mut self, response: Response) -> Response {
        let status = response.status();
        if !is_final(status) && response.extensions().get::<PartlyWritten>().is_none() {
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

    fn id(path: &str, body: &[u8]) -> RequestId {
        RequestId::new(path).part(body)
    }

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(key).unwrap());
        h
    }

    #[tokio::test]
    async fn idempotency_replay_conflict_and_mismatch_ok() {
        let store = Idempotency::new(Duration::from_secs(60));
        let h = headers("k1");
        let Begin::Fresh(g) = store.begin(&h, "pub:a", id("/hub/messages", b"x")).unwrap() else {
            panic!("first use is fresh");
        };
        // While running: 409.
        let e = store
            .begin(&h, "pub:a", id("/hub/messages", b"x"))
            .unwrap_err();
        assert_eq!(e, IdempotencyError::InProgress);
        let r = g
            .finish((StatusCode::CREATED, "done").into_response())
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let Begin::Replay(r) = store.begin(&h, "pub:a", id("/hub/messages", b"x")).unwrap() else {
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
            .begin(&h, "pub:a", id("/hub/messages", b"y"))
            .unwrap_err();
        assert_eq!(e, IdempotencyError::OtherRequest);
        assert!(matches!(
            store.begin(&h, "pub:b", id("/hub/messages", b"y")).unwrap(),
            Begin::Fresh(_)
        ));
        assert!(matches!(
            store
                .begin(&HeaderMap::new(), "pub:a", id("/", b""))
                .unwrap(),
            Begin::Untracked
        ));
    }

    #[tokio::test]
    async fn idempotency_server_error_or_drop_releases_key_ok() {
        let store = Idempotency::new(Duration::from_secs(60));
        let h = headers("k");
        let Begin::Fresh(g) = store.begin(&h, "s", id("/", b"x")).unwrap() else {
            panic!()
        };
        let _ = g
            .finish(StatusCode::SERVICE_UNAVAILABLE.into_response())
            .await;
        let Begin::Fresh(g) = store.begin(&h, "s", id("/", b"x")).unwrap() else {
            panic!("a 5xx is not kept")
        };
        drop(g);
        assert!(matches!(
            store.begin(&h, "s", id("/", b"x")).unwrap(),
            Begin::Fresh(_)
        ));
    }

    #[tokio::test]
    async fn idempotency_throttled_or_conflict_answer_not_kept_ok() {
        let store = Idempotency::new(Duration::from_secs(60));
        let h = headers("k");
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::CONFLICT,
            StatusCode::NOT_FOUND,
            StatusCode::FORBIDDEN,
        ] {
            let Begin::Fresh(g) = store.begin(&h, "s", id("/", b"x")).unwrap() else {
                panic!("{status}: the key was released")
            };
            let _ = g.finish(status.into_response()).await;
        }
        let Begin::Fresh(g) = store.begin(&h, "s", id("/", b"x")).unwrap() else {
            panic!("a 429 is not kept")
        };
        let _ = g.finish(StatusCode::BAD_REQUEST.into_response()).await;
        assert!(matches!(
            store.begin(&h, "s", id("/", b"x")).unwrap(),
            Begin::Replay(_)
        ));
    }

    #[test]
    fn request_id_parts_unambiguous_ok() {
        let a = RequestId::new("/").part(b"ab").part(b"c").0.finalize();
        let b = RequestId::new("/").part(b"a").part(b"bc").0.finalize();
        let c = RequestId::new("/").optional(None).0.finalize();
        let d = RequestId::new("/").optional(Some(b"")).0.finalize();
        assert_ne!(a, b);
        assert_ne!(c, d);
    }

    #[tokio::test]
    async fn idempotency_window_expires_and_bad_key_fails() {
        let store = Idempotency::new(Duration::ZERO);
        let h = headers("k");
        let Begin::Fresh(g) = store.begin(&h, "s", id("/", b"x")).unwrap() else {
            panic!()
        };
        let _ = g.finish(StatusCode::CREATED.into_response()).await;
        assert!(matches!(
            store.begin(&h, "s", id("/", b"x")).unwrap(),
            Begin::Fresh(_)
        ));
        let long = headers(&"k".repeat(300));
        assert_eq!(
            store.begin(&long, "s", id("/", b"x")).unwrap_err(),
            IdempotencyError::BadKey
        );
    }
}
