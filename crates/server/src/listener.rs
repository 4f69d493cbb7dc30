//! The HTTP listener of the standalone and Azure modes (`[server]`, `[tls]`): HTTP/1.1, and
//! HTTP/2 over TLS (ALPN, [`tls`]) or, with `server.h2c`, cleartext HTTP/2 with prior
//! knowledge (RFC 9113 §3.3) next to HTTP/1.1 on the same port. Every connection
//! gets a header-read deadline, a whole-body read deadline and an idle keep-alive timeout,
//! and the process holds at most `max_connections` connections, so that slow or silent
//! clients cannot hold descriptors without limit (slowloris). On Lambda the front end owns
//! connections and none of this applies.
//!
//! A watch over each connection keeps two clocks. The head clock runs from the accept, and
//! then from the first byte after each answer, until the request's head is complete: past
//! `header_read_timeout_ms` the connection is dropped. (hyper's own header timeout is off: in
//! hyper 1.12 it also runs while a keep-alive connection waits for its next request, which
//! would close every idle connection at the header timeout.) The idle clock runs while no
//! request is in flight (a long poll is in flight; an answer being sent moves bytes) and no
//! byte moves: past `idle_timeout_ms` the connection is shut down gracefully, and dropped if it
//! is still open another `idle_timeout_ms` later. The body deadline wraps each
//! request body ([`DeadlineBody`], 408 when it passes). At the cap, accepting waits: new
//! clients queue in the kernel's backlog instead of taking a descriptor the process lacks.
//!
//! Over TLS the head clock starts at the accept too, so the handshake and the first head
//! together get `header_read_timeout_ms`. On an HTTP/2 connection only that first head is
//! timed: streams are many and frames (pings, window updates) come between them, so once a
//! request has arrived the idle clock alone watches the connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use hubgate_core::units::millis;

use crate::header_case::CasePreserved;

pub mod tls;

use tls::{ClientCertificate, Tls};

/// `[server]`: connection limits of the standalone and Azure listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Longest time a client may take to send a request's head (request line and headers),
    /// from the accept (first request) or the head's first byte (later requests) (ms).
    #[serde(rename = "header_read_timeout_ms", deserialize_with = "millis")]
    pub header_read_timeout: Duration,
    /// Longest time a client may take to send a request's whole body, from the end of its
    /// head (ms). Past it the request is answered 408 and the connection closed.
    #[serde(rename = "body_read_timeout_ms", deserialize_with = "millis")]
    pub body_read_timeout: Duration,
    /// A keep-alive connection with no request in flight and no traffic for this long is
    /// closed (ms). Keep it above the idle timeout of a load balancer in front (ALB: 60 s).
    #[serde(rename = "idle_timeout_ms", deserialize_with = "millis")]
    pub idle_timeout: Duration,
    /// Most client connections held at once; unset: three quarters of the process's
    /// open-file limit (`ulimit -n`), leaving the rest for Kafka connections and files.
    pub max_connections: Option<usize>,
    /// On SIGTERM / Ctrl-C: how long requests in flight may take to finish (their coalesced
    /// produce requests included) before the remaining connections are dropped unanswered
    /// (ms). Keep it below the platform's grace period (Kubernetes: 30 s, ECS: 30 s).
    #[serde(rename = "shutdown_timeout_ms", deserialize_with = "millis")]
    pub shutdown_timeout: Duration,
    /// Also accept cleartext HTTP/2 with prior knowledge (h2c) on a plain-HTTP listener,
    /// for a proxy in front that speaks it (Envoy, an ALB with HTTP/2 targets). HTTPS
    /// offers HTTP/2 by ALPN whatever this says.
    pub h2c: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            max_connections: None,
            shutdown_timeout: Duration::from_secs(25),
            h2c: false,
        }
    }
}

impl ServerConfig {
    /// `max_connections`, or the default derived from the open-file limit.
    #[must_use]
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
            default_cap(limit)
        })
    }

    /// Refuses values that would disable a protection or stop all service.
    pub fn validate(&self) -> Result<(), String> {
        for (name, d) in [
            ("server.header_read_timeout_ms", self.header_read_timeout),
            ("server.body_read_timeout_ms", self.body_read_timeout),
            ("server.idle_timeout_ms", self.idle_timeout),
            ("server.shutdown_timeout_ms", self.shutdown_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.max_connections == Some(0) {
            return Err("server.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

/// Three quarters of the open-file limit (`None`: unlimited), at least 16 and at most
/// 1,000,000.
fn default_cap(open_files: Option<u64>) -> usize {
    let limit = open_files.unwrap_or(1_000_000).min(1_000_000);
    usize::try_from(limit / 4 * 3).unwrap_or(1_000_000).max(16)
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes. The timer is
/// made only when the body has to wait for bytes: a request without a body, or whose body
/// came with its head, costs none.
///
/// It also hands back a body the router leaves unread (see [`Unread`]).
#[derive(Debug)]
pub struct DeadlineBody {
    /// `None` only once dropped.
    inner: Option<Incoming>,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    unread: Option<Unread>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration, unread: Option<Unread>) -> Self {
        Self {
            inner: Some(inner),
            deadline: tokio::time::Instant::now() + timeout,
            sleep: None,
            timeout,
            unread,
        }
    }
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        use hyper::body::Body as _;
        if let (Some(unread), Some(inner)) = (self.unread.take(), self.inner.take())
            && !inner.is_end_stream()
            && let Ok(mut slot) = unread.lock()
        {
            *slot = Some(inner);
        }
    }
}

/// Where a [`DeadlineBody`] dropped before its end leaves the rest of the body.
///
/// A router that answers before reading the body (a refusal: 401, 403, 404, 429) would make
/// hyper reset the HTTP/2 stream while the client still uploads (RST_STREAM(NO_ERROR), allowed
/// by RFC 9113 §8.1) and close an HTTP/1.1 connection. Clients that take the reset as a
/// failure lose the answer: curl 7.88 exits 92 without a status about one time in three, so a
/// device never sees its 401 or 429 and retries at once. So the listener reads the rest of a
/// small body ([`DRAIN_BYTES`], within [`DRAIN_TIME`]) before the answer goes out.
type Unread = Arc<std::sync::Mutex<Option<Incoming>>>;

/// Bodies that declare more than this are not read after an early answer.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long the rest of a body may take to arrive before an early answer goes out anyway.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// A place for the rest of `request`'s body if it has one of at most [`DRAIN_BYTES`].
fn unread_slot(request: &hyper::Request<Incoming>) -> Option<Unread> {
    use hyper::body::Body as _;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    (!request.body().is_end_stream() && declared.is_none_or(|n| n <= DRAIN_BYTES))
        .then(Unread::default)
}

/// Reads and drops the rest of a body, up to [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(mut rest: Incoming) {
    use http_body_util::BodyExt as _;
    let read = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = rest.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > DRAIN_BYTES {
                return;
            }
        }
    };
    // Either way the answer goes out next.
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// The request body did not arrive within `server.body_read_timeout_ms`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimeout(pub Duration);

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            // Too slow already: not worth waiting for after the answer either.
            self.unread = None;
            return Poll::Ready(Some(Err(BodyTimeout(self.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), hyper::body::Body::size_hint)
    }
}

/// `Activity::head_since` while no request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// One connection's activity: requests in flight, the time of its last byte, and since when
/// a request head is being waited for.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last byte read or written.
    last: AtomicU64,
    /// Milliseconds since `start` at which the head now being read began: the accept for the
    /// first request, the first byte after an answer for the others; [`NO_HEAD`] otherwise.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    /// An HTTP/2 connection that has had its first request: no more head clocks.
    multiplexed: AtomicBool,
    /// Wakes the watch when a head clock starts.
    head_started: tokio::sync::Notify,
}

/// What the watch decides about a connection.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Fine,
    /// A head took longer than `header_read_timeout_ms`: drop the connection.
    HeadTooSlow,
    /// Nothing in flight and nothing moved for `idle_timeout_ms`: close it gracefully.
    Idle,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    /// Bytes were read (`read`) or written.
    fn touch(&self, read: bool) {
        let now = self.now_ms();
        self.last.store(now, Ordering::Relaxed);
        if read
            && self.in_flight.load(Ordering::Acquire) == 0
            && !self.multiplexed.load(Ordering::Relaxed)
        {
            // The first byte of a new head starts its clock (a later byte keeps it).
            if self
                .head_since
                .compare_exchange(NO_HEAD, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.head_started.notify_one();
            }
        }
    }

    /// The watch's decision, and how long until it should look again.
    fn verdict(&self, header: Duration, idle: Duration) -> (Verdict, Duration) {
        let now = Duration::from_millis(self.now_ms());
        let head = self.head_since.load(Ordering::Acquire);
        if head != NO_HEAD {
            let waited = now.saturating_sub(Duration::from_millis(head));
            if waited >= header {
                return (Verdict::HeadTooSlow, header);
            }
            return (Verdict::Fine, header - waited);
        }
        match self.idle_for() {
            Some(quiet) if quiet >= idle => (Verdict::Idle, idle),
            Some(quiet) => (Verdict::Fine, idle - quiet),
            None => (Verdict::Fine, idle.min(header)),
        }
    }

    /// How long nothing has happened, or `None` while a request is in flight.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        Some(self.start.elapsed().saturating_sub(last))
    }
}

/// Decrements the in-flight count when the answer is ready (or the request is dropped).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    /// A request's head is complete: it is in flight, and no head is being waited for.
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(NO_HEAD, Ordering::Release);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch(false);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The TCP stream, noting each byte read or written in its [`Activity`].
#[derive(Debug)]
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch(true);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        r
    }

    // Forwarded, so that hyper writes a response's head and body chunks with one writev
    // instead of copying each chunk into its own buffer first (it checks
    // `is_write_vectored`).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` with `config`'s limits until `shutdown` completes; then stops
/// accepting, lets every connection finish its requests in flight for up to
/// `shutdown_timeout_ms`, and returns. A request still running then is never answered (its
/// connection is dropped with the process), so no client sees a 2xx for records Kafka did
/// not acknowledge.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    let cap = config.connection_cap();
    let permits = Arc::new(Semaphore::new(cap));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tracing::info!(
        max_connections = cap,
        header_read_timeout_ms = config.header_read_timeout.as_millis(),
        body_read_timeout_ms = config.body_read_timeout.as_millis(),
        idle_timeout_ms = config.idle_timeout.as_millis(),
        tls = tls.is_some(),
        h2c = config.h2c,
        "accepting connections"
    );
    tokio::pin!(shutdown);
    let mut at_cap_logged = false;
    loop {
        // At the cap, wait for a connection to end before accepting another.
        let permit = if let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
            at_cap_logged = false;
            p
        } else {
            if !at_cap_logged {
                tracing::warn!(
                    max_connections = cap,
                    "connection cap reached; new connections wait (server.max_connections)"
                );
                at_cap_logged = true;
            }
            tokio::select! {
                () = &mut shutdown => break,
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            }
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (router, config, stop, tls) = (router.clone(), *config, stop_rx.clone(), tls.clone());
        tokio::spawn(async move {
            connection(stream, peer, router, &config, tls, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        shutdown_timeout_ms = config.shutdown_timeout.as_millis(),
        "no longer accepting; finishing requests in flight"
    );
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(config.shutdown_timeout, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = cap.saturating_sub(permits.available_permits()),
            "connections still busy after server.shutdown_timeout_ms; dropping them unanswered"
        );
    }
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// HTTP/1.1, or HTTP/2 when the connection opens with its preface (h2c).
    Either,
}

/// What every request of a TLS connection carries: the client certificate's caller, and the
/// HSTS header of its answers.
#[derive(Debug, Clone, Default)]
struct Secure {
    certificate: Option<ClientCertificate>,
    hsts: Option<http::HeaderValue>,
}

/// Serves one connection until it ends, is idle too long, or the server stops; over TLS,
/// after a handshake that must finish within the head clock.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    config: &ServerConfig,
    tls: Option<Arc<Tls>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        start: Instant::now(),
        last: AtomicU64::new(0),
        head_since: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        multiplexed: AtomicBool::new(false),
        head_started: tokio::sync::Notify::new(),
    });
    let tracked = Tracked {
        stream,
        activity: Arc::clone(&activity),
    };
    let Some(tls) = tls else {
        let protocol = if config.h2c {
            Protocol::Either
        } else {
            Protocol::Http1
        };
        let io = TokioIo::new(tracked);
        return serve_connection(
            io,
            peer,
            router,
            config,
            protocol,
            Secure::default(),
            activity,
            stop,
        )
        .await;
    };
    let stream = match tokio::time::timeout(
        config.header_read_timeout,
        tls.acceptor().accept(tracked),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake too slow; closing the connection");
            return;
        }
    };
    let session = stream.get_ref().1;
    let protocol = if session.alpn_protocol() == Some(b"h2") {
        Protocol::Http2
    } else {
        Protocol::Http1
    };
    let secure = Secure {
        certificate: tls.client_certificate(session.peer_certificates()),
        hsts: tls.hsts().cloned(),
    };
    let io = TokioIo::new(stream);
    serve_connection(io, peer, router, config, protocol, secure, activity, stop).await;
}

/// Serves HTTP on one connection's byte stream `io` (tracked by `activity`).
#[allow(clippy::too_many_arguments)] // one private call site each; a struct would only rename them
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    config: &ServerConfig,
    protocol: Protocol,
    secure: Secure,
    activity: Arc<Activity>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let body_timeout = config.body_read_timeout;
    let service_activity = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let guard = InFlight::new(&service_activity);
        if request.version() == http::Version::HTTP_2 {
            service_activity.multiplexed.store(true, Ordering::Relaxed);
        } else {
            request.extensions_mut().insert(CasePreserved);
        }
        if let Some(certificate) = &secure.certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        let unread = unread_slot(&request);
        let request =
            request.map(|inner| Body::new(DeadlineBody::new(inner, body_timeout, unread.clone())));
        let (router, hsts) = (router.clone(), secure.hsts.clone());
        async move {
            // In flight until the answer is ready (its head goes out next). Not while its body
            // is sent: hyper may read the next head's first bytes before it drops a sent body,
            // and they must start the head clock. An answer still being sent keeps the
            // connection busy by its writes.
            let mut response = router.oneshot(request).await;
            let rest = unread.and_then(|u| u.lock().ok()?.take());
            if let Some(rest) = rest {
                drain(rest).await;
            }
            drop(guard);
            if let (Ok(r), Some(hsts)) = (&mut response, hsts) {
                r.headers_mut()
                    .insert(http::header::STRICT_TRANSPORT_SECURITY, hsts);
            }
            response
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // The watch below keeps the head clock (see the module doc).
    // Header names keep the case they were written in (for Event Hubs property headers,
    // crate::header_case); HTTP/1 only, HTTP/2 names are lower-case.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .preserve_header_case(true);
    builder.http2().timer(TokioTimer::new());
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
        Protocol::Either => builder,
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let (header, idle) = (config.header_read_timeout, config.idle_timeout);
    let mut closing = false;
    loop {
        let (_, wait) = activity.verdict(header, idle);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            // A head clock that starts brings the next look forward.
            () = activity.head_started.notified() => {}
            () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {
                match activity.verdict(header, idle).0 {
                    Verdict::HeadTooSlow => {
                        tracing::debug!(%peer, "request head too slow; closing the connection");
                        return;
                    }
                    Verdict::Idle if !closing => {
                        tracing::debug!(%peer, "closing an idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    // Still open an idle timeout after the graceful close (a head that
                    // came pipelined and stopped half-way): drop it.
                    Verdict::Idle => return,
                    Verdict::Fine => {}
                }
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
