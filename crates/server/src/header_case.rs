//! Header names in the case an HTTP/1.1 client wrote them, for the headers whose names are
//! data (Event Hubs sends carry custom properties as headers: `Alert: 1` is the property
//! `Alert`). The `http` crate keeps every name lower-case; hyper keeps the written case only
//! when the connection is built with `preserve_header_case` (hubgate's listener does, see
//! [`crate::listener`]), and then only in a private request extension that its own HTTP/1
//! client reads when it writes a request (hyper#2695 tracks a public API). So the names are
//! recovered through that public path: the headers, with the request's extensions, are
//! written by hyper's HTTP/1 client into memory and read back with `httparse`.
//!
//! HTTP/2 names are lower-case by definition (RFC 9113 §8.2.1), and front ends that
//! terminate HTTP (API Gateway, the Functions host) may fold them: there, and on any
//! failure, the names stay lower-case.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use bytes::Bytes;
use http::request::Parts;
use http::{Extensions, HeaderMap, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;

/// Set by the listener on requests of HTTP/1 connections, where hyper keeps the written case.
#[derive(Debug, Clone, Copy)]
pub struct CasePreserved;

/// The request's extensions when its header case is known ([`CasePreserved`]): an extractor
/// that takes them out of the request (a move, no copy; later extractors see none).
#[derive(Debug, Default)]
pub struct HeaderCase(Option<Extensions>);

impl<S: Send + Sync> FromRequestParts<S> for HeaderCase {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(
            parts
                .extensions
                .get::<CasePreserved>()
                .is_some()
                .then(|| std::mem::take(&mut parts.extensions)),
        ))
    }
}

/// Largest head written back (hyper's own limit on a request head is ~400 KB).
const MAX_HEAD: usize = 512 * 1024;

impl HeaderCase {
    /// Every header of `headers` (a subset of the request's) as (name as written, value), in
    /// order, one pair per value; the lower-case name where the case is not known.
    pub async fn pairs(self, headers: HeaderMap) -> Vec<(String, Vec<u8>)> {
        let lower = |h: &HeaderMap| {
            h.iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect()
        };
        match self.0 {
            Some(extensions) if !headers.is_empty() => {
                let count = headers.len();
                match written(headers.clone(), extensions).await {
                    Some(pairs) if pairs.len() == count => pairs,
                    _ => lower(&headers),
                }
            }
            _ => lower(&headers),
        }
    }
}

/// `headers` written as a request head by hyper's HTTP/1 client with `extensions` (where hyper
/// keeps the names' case), read back as (name, value) pairs.
async fn written(headers: HeaderMap, extensions: Extensions) -> Option<Vec<(String, Vec<u8>)>> {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(client))
        .await
        .ok()?;
    let mut request = Request::new(Empty::new());
    let expected = headers.len();
    *request.headers_mut() = headers;
    *request.extensions_mut() = extensions;
    // Queued at once; the answer never comes (nothing answers), the head is all we want.
    let _answer = sender.send_request(request);
    let read = async {
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = server.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Some(head)
    };
    let head = tokio::select! {
        head = read => head?,
        _ = conn => return None,
    };
    // Room for what the client adds itself (none for a bodiless GET, but be generous).
    let mut slots = vec![httparse::EMPTY_HEADER; expected + 8];
    let mut parsed = httparse::Request::new(&mut slots);
    parsed.parse(&head).ok()?;
    Some(
        parsed
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tokio::io::AsyncWriteExt as _;

    /// A router that answers the written names of the request's `x-*` headers, served on a
    /// connection built like the listener's (case preserved, marker set).
    async fn names_over_http1(raw: &[u8], preserve: bool) -> String {
        let app = Router::new().route(
            "/",
            post(|case: HeaderCase, headers: HeaderMap| async move {
                let custom: HeaderMap = headers
                    .iter()
                    .filter(|(n, _)| n.as_str().starts_with("x-"))
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect();
                let pairs = case.pairs(custom).await;
                pairs
                    .iter()
                    .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        );
        let (client, server) = tokio::io::duplex(64 * 1024);
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                if preserve {
                    request.extensions_mut().insert(CasePreserved);
                }
                tower::ServiceExt::oneshot(app.clone(), request)
            });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .preserve_header_case(preserve)
                .serve_connection(TokioIo::new(server), service),
        );
        let (mut read, mut write) = tokio::io::split(client);
        write.write_all(raw).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            read.read_to_end(&mut answer),
        )
        .await;
        let answer = String::from_utf8(answer).unwrap();
        answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    const REQUEST: &[u8] = b"POST / HTTP/1.1\r\nHost: h\r\nX-Alert: 1\r\nx-lower: 2\r\nX-MiXeD-Case: 3\r\nX-Alert: 4\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn header_case_http1_names_as_written_ok() {
        assert_eq!(
            names_over_http1(REQUEST, true).await,
            "X-Alert=1,X-Alert=4,x-lower=2,X-MiXeD-Case=3"
        );
    }

    #[tokio::test]
    async fn header_case_not_preserved_lower_case_ok() {
        assert_eq!(
            names_over_http1(REQUEST, false).await,
            "x-alert=1,x-alert=4,x-lower=2,x-mixed-case=3"
        );
    }

    #[tokio::test]
    async fn header_case_no_headers_ok() {
        assert!(
            HeaderCase::default()
                .pairs(HeaderMap::new())
                .await
                .is_empty()
        );
    }
}
