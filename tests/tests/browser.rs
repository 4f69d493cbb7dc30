//! End-to-end in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright's
//! `playwright-core`, tests/js/browser.mjs) on a page from one origin opens an `EventSource` on
//! hubgate at another origin. Events sent meanwhile appear in order; the connection is dropped
//! on the server side and the browser's own reconnect, sent by the proxy in front to a second
//! hubgate instance, resumes with nothing lost and nothing repeated; a preflighted `fetch` POST
//! with `Authorization` and `BrokerProperties` sends an event; a page from a disallowed origin
//! is refused by the browser's CORS check.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::process::Command;

use hubgate_tests::{
    HubgateProcess, SharedKafka, free_port, http, test_config_toml, token_1h, unique,
};
use serde_json::json;

/// The browser: `HUBGATE_CHROMIUM`, else Debian's.
fn chromium() -> String {
    let path = std::env::var("HUBGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "no browser at {path}: install Debian's chromium (scripts/test does) or set HUBGATE_CHROMIUM"
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_event_source_resumes_and_cors_ok() {
    let chromium = chromium();
    let node_dir =
        std::env::var("HUBGATE_NODE_DIR").expect("HUBGATE_NODE_DIR (scripts/test sets it)");
    let (page_port, proxy_port) = (free_port(), free_port());
    let hub = unique("hub");
    let broker = SharedKafka::get();
    let toml = test_config_toml(
        &broker.bootstrap(),
        &format!("[cors]\nallowed_origins = [\"http://localhost:{page_port}\"]"),
    );
    let config = hubgate_server::Config::from_toml(&toml).unwrap();
    let (a, b) = (HubgateProcess::start(&toml), HubgateProcess::start(&toml));
    let r = http()
        .put(a.url(&format!("/v1/topics/{hub}")))
        .header("authorization", token_1h(&config, "manage", ""))
        .json(&json!({"partition_count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let input = json!({
        "pagePort": page_port,
        "proxyPort": proxy_port,
        "a": a.url(""),
        "b": b.url(""),
        "hub": hub,
        "listen": token_1h(&config, "listen", &hub),
        "send": token_1h(&config, "send", &hub),
        "chromium": chromium,
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(format!("{node_dir}/browser.mjs"))
            .env("HUBGATE_BROWSER_CONFIG", input.to_string())
            .output()
            .expect("run node browser.mjs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}\nhubgate A:\n{}\nhubgate B:\n{}",
        a.log(),
        b.log()
    );
    for step in [
        "events in order",
        "resumed on the second instance",
        "preflighted POST sent an event",
        "disallowed origin refused",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
    assert!(
        b.log().contains("event stream opened"),
        "the second instance served the resumed stream"
    );
}
