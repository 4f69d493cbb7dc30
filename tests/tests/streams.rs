//! End-to-end: Server-Sent Event streams on the real broker. Events arrive in order with ids
//! a second instance resumes from (nothing lost, nothing repeated), for one partition and a
//! whole hub; the credential may come in the query and is never logged; a stream ends with a
//! final event when its token expires or its group is deleted; the per-instance cap answers
//! 429; checkpoints take event ids; CORS preflights are answered as configured.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource as _};
use futures::{Stream, StreamExt as _};
use hubgate_tests::{HubgateProcess, SharedKafka, http, test_config_toml, token, token_1h, unique};
use reqwest::Client;
use serde_json::{Value, json};

/// Most time any one expected event may take.
const PATIENCE: Duration = Duration::from_secs(20);

struct Setup {
    a: HubgateProcess,
    b: HubgateProcess,
    client: Client,
    config: hubgate_server::Config,
    hub: String,
    send: String,
    listen: String,
}

async fn setup(extra: &str, partitions: i32) -> Setup {
    let hub = unique("hub");
    let broker = SharedKafka::get();
    let toml = test_config_toml(&broker.bootstrap(), extra);
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let (a, b) = (HubgateProcess::start(&toml), HubgateProcess::start(&toml));
    let client = http();
    let manage = token_1h(&config, "manage", "");
    let r = client
        .put(a.url(&format!("/v1/topics/{hub}")))
        .header("authorization", &manage)
        .json(&json!({"partition_count": partitions}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let send = token_1h(&config, "send", &hub);
    let listen = token_1h(&config, "listen", &hub);
    Setup {
        a,
        b,
        client,
        config,
        hub,
        send,
        listen,
    }
}

impl Setup {
    async fn send_to(&self, partition: i32, body: &str) {
        let r = self
            .client
            .post(
                self.a
                    .url(&format!("/{}/partitions/{partition}/messages", self.hub)),
            )
            .header("authorization", &self.send)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "send: {}", r.text().await.unwrap());
    }

    /// Opens a stream at `url` with these headers.
    async fn open(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> impl Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Unpin + use<> {
        let mut request = self.client.get(url).timeout(Duration::from_secs(120));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200, "stream: {}", r.text().await.unwrap());
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let chunks = futures::stream::unfold(r, |mut r| async move {
            match r.chunk().await {
                Ok(Some(c)) => Some((Ok(c), r)),
                Ok(None) => None,
                Err(e) => Some((Err(e), r)),
            }
        });
        Box::pin(chunks.eventsource())
    }
}

/// The next `n` events (not comments), each within [`PATIENCE`].
async fn take(
    stream: &mut (impl Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Unpin),
    n: usize,
) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        out.push(e);
    }
    out
}

fn data(e: &Event) -> Value {
    serde_json::from_str(&e.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_partition_in_order_resumes_on_other_instance_ok() {
    let s = setup("[streams]\nheartbeat_ms = 300", 2).await;
    for i in 0..3 {
        s.send_to(1, &format!("e{i}")).await;
    }
    let path = format!("/{}/consumergroups/$Default/partitions/1/stream", s.hub);
    let mut a = s
        .open(&s.a.url(&path), &[("authorization", &s.listen)])
        .await;
    let first = take(&mut a, 3).await;
    let ids: Vec<&str> = first.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["0", "1", "2"]);
    let d = data(&first[2]);
    assert_eq!(d["body"], "e2");
    assert_eq!(d["partition"], 1);
    assert_eq!(d["offset"], 2);
    assert!(d["enqueued_time_utc"].is_string());
    // Events sent while the stream is open arrive on it.
    s.send_to(1, "e3").await;
    assert_eq!(data(&take(&mut a, 1).await[0])["body"], "e3");
    drop(a);
    // Meanwhile, two more; the other instance resumes after the last id seen, with the
    // credential in the query.
    s.send_to(1, "e4").await;
    s.send_to(1, "e5").await;
    let query = with_token(&s.b.url(&path), &s.listen);
    let mut b = s.open(&query, &[("last-event-id", "3")]).await;
    let resumed = take(&mut b, 2).await;
    let bodies: Vec<Value> = resumed.iter().map(|e| data(e)["body"].clone()).collect();
    assert_eq!(bodies, [json!("e4"), json!("e5")]);
    // The credential in the URL is nowhere in the log.
    let sig = s
        .listen
        .split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!s.b.log().contains(sig), "the query credential was logged");
    assert!(!s.b.log().contains("access_token"), "the query was logged");
    // Idle: heartbeats (comments) keep coming; the parser skips them, the raw stream has them.
    let raw = s
        .client
        .get(s.a.url(&path))
        .header("authorization", &s.listen)
        .header("last-event-id", "5")
        .send()
        .await
        .unwrap();
    let mut raw = raw;
    let mut text = String::new();
    while !text.contains(": heartbeat") {
        let c = tokio::time::timeout(PATIENCE, raw.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&c).unwrap());
    }
    assert!(text.starts_with("retry: 1000\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_hub_ids_resume_every_partition_ok() {
    let s = setup("", 3).await;
    for (p, body) in [(0, "a0"), (1, "b0"), (2, "c0"), (1, "b1")] {
        s.send_to(p, body).await;
    }
    let path = format!("/{}/consumergroups/$Default/stream", s.hub);
    let mut a = s
        .open(&s.a.url(&path), &[("authorization", &s.listen)])
        .await;
    let got = take(&mut a, 4).await;
    let mut bodies: Vec<String> = got
        .iter()
        .map(|e| data(e)["body"].as_str().unwrap().to_owned())
        .collect();
    // In order within a partition.
    let b_order: Vec<&String> = bodies.iter().filter(|b| b.starts_with('b')).collect();
    assert_eq!(b_order, ["b0", "b1"]);
    bodies.sort();
    assert_eq!(bodies, ["a0", "b0", "b1", "c0"]);
    let last = got.last().unwrap().id.clone();
    // Every partition's position is in the id.
    let mut positions: Vec<&str> = last.split(',').collect();
    positions.sort_unstable();
    assert_eq!(positions, ["0:0", "1:1", "2:0"], "{last}");
    drop(a);
    s.send_to(2, "c1").await;
    s.send_to(0, "a1").await;
    let mut b = s
        .open(
            &s.b.url(&path),
            &[("authorization", &s.listen), ("last-event-id", &last)],
        )
        .await;
    let mut resumed: Vec<String> = take(&mut b, 2)
        .await
        .iter()
        .map(|e| data(e)["body"].as_str().unwrap().to_owned())
        .collect();
    resumed.sort();
    assert_eq!(resumed, ["a1", "c1"]);
    // An offset does not apply to a hub stream; a one-partition id is not a hub id.
    for q in ["?offset=1", "?last_event_id=4"] {
        let r = s
            .client
            .get(format!("{}{q}", s.a.url(&path)))
            .header("authorization", &s.listen)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ends_with_event_when_token_expires_or_group_deleted_ok() {
    let s = setup("[streams]\ngroup_check_ms = 200", 1).await;
    let manage = token_1h(&s.config, "manage", "");
    s.send_to(0, "x").await;
    // A token valid for 3 more seconds.
    let short = token(&s.config, "listen", &s.hub, hubgate_tests::now() + 3);
    let path = format!("/{}/consumergroups/$Default/partitions/0/stream", s.hub);
    let mut a = s.open(&s.a.url(&path), &[("authorization", &short)]).await;
    assert_eq!(take(&mut a, 1).await[0].id, "0");
    let end = take(&mut a, 1).await.remove(0);
    assert_eq!(end.event, "end");
    assert_eq!(data(&end)["reason"], "credential_expired");
    assert!(
        tokio::time::timeout(PATIENCE, a.next())
            .await
            .unwrap()
            .is_none(),
        "closed after the final event"
    );

    // A group deleted through the other instance ends the stream.
    let group = unique("g");
    let r = s
        .client
        .put(s.b.url(&format!("/{}/consumergroups/{group}", s.hub)))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let path = format!("/{}/consumergroups/{group}/partitions/0/stream", s.hub);
    let mut a = s
        .open(&s.a.url(&path), &[("authorization", &s.listen)])
        .await;
    assert_eq!(take(&mut a, 1).await[0].id, "0");
    // A checkpoint from the event id.
    let r = s
        .client
        .put(s.b.url(&format!(
            "/{}/consumergroups/{group}/partitions/0/checkpoint",
            s.hub
        )))
        .header("authorization", &s.listen)
        .json(&json!({"last_event_id": "0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["offset"], 1);
    let r = s
        .client
        .delete(s.b.url(&format!("/{}/consumergroups/{group}", s.hub)))
        .header("authorization", &manage)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let end = take(&mut a, 1).await.remove(0);
    assert_eq!(end.event, "end");
    assert_eq!(data(&end)["reason"], "consumer_group_deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_limits_and_credentials_fails() {
    let s = setup("[streams]\nmax_open = 1", 1).await;
    let path = format!("/{}/consumergroups/$Default/partitions/0/stream", s.hub);
    let _open = s
        .open(&s.a.url(&path), &[("authorization", &s.listen)])
        .await;
    let get = |url: String, auth: Option<&str>| {
        let mut r = s.client.get(url);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    // The cap is per instance.
    let r = get(s.a.url(&path), Some(&s.listen)).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // A credential in both places, or a Send token, is refused.
    let both = with_token(&s.b.url(&path), &s.listen);
    assert_eq!(get(both, Some(&s.listen)).await.unwrap().status(), 400);
    let wrong = with_token(&s.b.url(&path), &s.send);
    assert_eq!(get(wrong, None).await.unwrap().status(), 401);
    // Only stream routes take a query credential.
    let read = with_token(
        &s.b.url(&format!(
            "/{}/consumergroups/$Default/partitions/0/messages",
            s.hub
        )),
        &s.listen,
    );
    assert_eq!(get(read, None).await.unwrap().status(), 401);
    // Bad ids and positions.
    for (q, want) in [
        ("?last_event_id=x", 400),
        ("?offset=5", 404), // past the (empty) partition's end, as reads answer
        ("?offset=0&start=latest", 400),
        ("?start=middle", 400),
    ] {
        let url = format!("{}{q}", s.b.url(&path));
        let status = get(url, Some(&s.listen)).await.unwrap().status();
        assert_eq!(status, want, "{q}");
    }
    // A credential that expires in centuries (a SAS `se` may be any number) opens a stream,
    // and the instance lives on (the expiry once overflowed a clock: a panic, the process
    // gone).
    let forever = token(&s.config, "listen", &s.hub, u64::MAX);
    let r = get(s.b.url(&path), Some(&forever)).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = get(s.b.url("/v1/status"), Some(&s.listen)).await.unwrap();
    assert_eq!(r.status(), 200, "the instance still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_cors_preflight_and_origins_ok() {
    let s = setup(
        "[cors]\nallowed_origins = [\"http://app.test\", \"https://*.example.org\"]\nmax_age_secs = 60\n\
         [cors.hubs.locked]\nallowed_origins = []",
        1,
    )
    .await;
    let url = s.a.url(&format!("/{}/messages", s.hub));
    let preflight = |origin: &'static str, url: String| {
        s.client
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,brokerproperties,content-type",
            )
            .send()
    };
    let r = preflight("http://app.test", url.clone()).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "http://app.test");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for name in ["authorization", "brokerproperties", "content-type"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert_eq!(h["access-control-max-age"], "60");
    let r = preflight("https://a.b.example.org", url.clone())
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://a.b.example.org"
    );
    let r = preflight("https://evil.test", url.clone()).await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    // A hub of its own with no origins: no CORS.
    let r = preflight("http://app.test", s.a.url("/locked/messages"))
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    // Actual answers, errors included, carry the headers and expose hubgate's own.
    let r = s
        .client
        .post(&url)
        .header("origin", "http://app.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.test"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "nextoffset",
        "retry-after",
        "x-request-id",
        "idempotent-replayed",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }
}

/// `url` with the credential in its query.
fn with_token(url: &str, token: &str) -> String {
    reqwest::Url::parse_with_params(url, &[("access_token", token)])
        .unwrap()
        .to_string()
}
