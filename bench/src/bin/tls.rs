//! What HTTPS costs on hubgate's own listener (rustls with aws-lc-rs), against plain HTTP on the
//! same build, broker and run: 1-record produce requests over keep-alive connections at c1 and
//! c64 (`wrk`: requests/s, p50, p99, server CPU per request); full TLS 1.3 handshakes per new
//! connection with an RSA-2048 and an ECDSA P-256 certificate (a rustls client without session
//! resumption: server CPU per handshake) against the bare signature a handshake makes with
//! that key (rustls' aws-lc-rs signer, measured in this process); and HTTP/2 with 64 streams on
//! one connection against 64 HTTP/1.1 connections, both over TLS and driven by one tool
//! (`h2load`). One Apache Kafka node; `benches/run` runs it; BENCHMARKS.md has the results.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hubgate_bench::{Hubgate, cpu_time, parse_ms, produce_script, value, wrk};
use hubgate_tests::pki::TestCa;
use hubgate_tests::{KafkaCluster, test_config_toml, token_1h};
use rustls::SignatureScheme;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt as _;

/// Plain/HTTPS pairs measured per concurrency.
const ROUNDS: usize = 3;

#[derive(Debug, Parser)]
struct Args {
    /// The hubgate binary (a release build).
    #[arg(long, default_value = "target/release/hubgate")]
    hubgate: PathBuf,
    /// Seconds each scenario runs (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where the Markdown report goes (also printed).
    #[arg(long, default_value = "target/bench/tls.md")]
    out: PathBuf,
}

/// A load figure: requests/s, p50 and p99 (ms; NaN where the tool gives none), server CPU per
/// request (µs) and answers that were not 2xx.
#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
    cpu_us: f64,
    errors: u64,
}

/// `measure` (which returns requests/s, p50, p99, non-2xx) against `hg`, after a warm-up run,
/// with the server's CPU per request.
fn load(hg: &Hubgate, seconds: u64, measure: impl Fn(u64) -> (f64, f64, f64, u64)) -> Load {
    measure(1); // warm-up
    let c0 = cpu_time(hg.child.id());
    let (rps, p50, p99, errors) = measure(seconds);
    let cpu = cpu_time(hg.child.id()) - c0;
    Load {
        rps,
        p50,
        p99,
        cpu_us: cpu.as_secs_f64() * 1e6 / (rps * seconds as f64).max(1.0),
        errors,
    }
}

/// `h2load` with `args` (connections, streams, protocol) POSTing `body` to `url`: requests/s,
/// mean time per request (ms) twice (it reports no percentiles), and non-2xx answers.
fn h2load(
    url: &str,
    body: &Path,
    token: &str,
    args: &[&str],
    seconds: u64,
) -> (f64, f64, f64, u64) {
    let out = Command::new("h2load")
        .args(args)
        .args(["-D", &seconds.to_string(), "-d"])
        .arg(body)
        .args(["-H", "content-type: application/json", "-H"])
        .arg(format!("authorization: {token}"))
        .arg(url)
        .output()
        .expect("h2load (apt-get install nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut rps, mut mean, mut errors) = (0.0, f64::NAN, 0);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["finished", "in", _, r, ..] => {
                rps = r.parse().unwrap_or(0.0);
            }
            ["status", "codes:", ok, "2xx,", ..] => {
                let done: u64 = ok.parse().unwrap_or(0);
                let total: u64 = words
                    .chunks(2)
                    .skip(1)
                    .filter_map(|w| w.first()?.parse::<u64>().ok())
                    .sum();
                errors += total.saturating_sub(done);
            }
            ["requests:", ..] => {
                let failed = words
                    .windows(2)
                    .filter(|w| matches!(w[1], "failed," | "errored," | "timeout"))
                    .filter_map(|w| w[0].parse::<u64>().ok())
                    .sum::<u64>();
                errors += failed;
            }
            ["time", "for", "request:", _min, _max, m, ..] => mean = parse_ms(m),
            _ => {}
        }
    }
    assert!(rps > 0.0, "h2load measured nothing:\n{text}");
    (rps, mean, mean, errors)
}

/// New connections one after another against `port` for `seconds`, each closed at once: with
/// `ca`, after a full TLS 1.3 handshake (no resumption) verifying the server against it, the
/// key exchange rustls' default first choice (X25519MLKEM768, post-quantum hybrid, as current
/// browsers and curl builds offer) or, with `x25519_only`, X25519 alone; without `ca`, plain
/// TCP (what a connection costs the server without TLS). How many.
async fn handshakes(port: u16, ca: Option<&Path>, x25519_only: bool, seconds: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut n = 0;
    let Some(ca) = ca else {
        while Instant::now() < deadline {
            let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let _ = tcp.shutdown().await;
            n += 1;
        }
        return n;
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if x25519_only {
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider.into())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    while Instant::now() < deadline {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        let _ = tls.shutdown().await;
        n += 1;
    }
    n
}

/// One signature of a TLS 1.3 CertificateVerify (130 bytes signed with `scheme`) by rustls'
/// aws-lc-rs signer with the key in `key_file`: the mean over about a second.
fn signature_cost(key_file: &Path, scheme: SignatureScheme) -> Duration {
    let key = PrivateKeyDer::from_pem_file(key_file).unwrap();
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .unwrap()
        .choose_scheme(&[scheme])
        .expect("the key signs with this scheme");
    let message = [0x20u8; 130];
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(1) {
        signer.sign(&message).unwrap();
        n += 1;
    }
    start.elapsed() / n
}

fn main() {
    let args = Args::parse();
    let cluster = KafkaCluster::start(1);
    let bootstrap = cluster.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("hubgate bench CA");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let ecdsa = ca.server().write(dir.path(), "ecdsa");
    let rsa = ca
        .server_with(&rcgen::PKCS_RSA_SHA256)
        .write(dir.path(), "rsa");

    let base = test_config_toml(&bootstrap, "");
    let config = hubgate_server::Config::from_toml(&base).unwrap();
    let token = token_1h(&config, "send", "");
    let topic = "tls-bench";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kafka = hubgate_server::Kafka::new(&config.kafka).unwrap();
    runtime
        .block_on(kafka.create_topic(topic, 1, 1, &[]))
        .unwrap();
    let start = |name: &str, tls: Option<&(PathBuf, PathBuf)>| {
        let toml = match tls {
            None => base.clone(),
            Some((cert, key)) => base.replace(
                "[kafka]\n",
                &format!(
                    "[tls]\ncert_file = {:?}\nkey_file = {:?}\n[kafka]\n",
                    cert.display().to_string(),
                    key.display().to_string()
                ),
            ),
        };
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        Hubgate::start(&args.hubgate, &path)
    };
    let plain = start("plain", None);
    let https = start("ecdsa", Some(&ecdsa));
    let script = produce_script(dir.path(), "one", 1, &token);
    let path = format!("/v1/producer/topics/{topic}");
    let secs = args.seconds;
    // The broker's JVM compiles its hot paths during the first seconds of load: warm it (and
    // both servers) before anything is measured.
    for (scheme, hg) in [("http", &plain), ("https", &https)] {
        wrk(
            &format!("{scheme}://127.0.0.1:{}{path}", hg.port),
            &script,
            16,
            5,
        );
    }

    // Keep-alive HTTP/1.1: plain against TLS, same load generator, in ROUNDS alternating
    // pairs (this VM's latency drifts between runs of seconds); the pair with the median
    // ratio is reported.
    let mut keepalive = Vec::new();
    for c in [1, 64] {
        let mut pairs: Vec<(Load, Load)> = (0..ROUNDS)
            .map(|_| {
                let http = load(&plain, secs, |s| {
                    wrk(
                        &format!("http://127.0.0.1:{}{path}", plain.port),
                        &script,
                        c,
                        s,
                    )
                });
                let tls = load(&https, secs, |s| {
                    wrk(
                        &format!("https://127.0.0.1:{}{path}", https.port),
                        &script,
                        c,
                        s,
                    )
                });
                (http, tls)
            })
            .collect();
        pairs.sort_by(|a, b| (a.1.rps / a.0.rps).total_cmp(&(b.1.rps / b.0.rps)));
        let ratios: Vec<String> = pairs
            .iter()
            .map(|(h, t)| format!("{:.2}", t.rps / h.rps))
            .collect();
        let (http, tls) = pairs[pairs.len() / 2];
        keepalive.push((c, http, tls, ratios.join(", ")));
    }

    // HTTP/2 multiplexing against HTTP/1.1 connections, both over TLS, both with h2load.
    let body = dir.path().join("one.json");
    std::fs::write(
        &body,
        serde_json::json!({"records": [{"value": value(0)}]}).to_string(),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}{path}", https.port);
    let h2 = load(&https, secs, |s| {
        h2load(&url, &body, &token, &["-c1", "-m64"], s)
    });
    let h1 = load(&https, secs, |s| {
        h2load(&url, &body, &token, &["--h1", "-c64", "-m1"], s)
    });
    drop(https);

    // Full handshakes per certificate type, against the bare signature; and what a plain
    // connection costs the server.
    runtime.block_on(handshakes(plain.port, None, false, 1)); // warm-up
    let c0 = cpu_time(plain.child.id());
    let n = runtime.block_on(handshakes(plain.port, None, false, secs));
    let plain_connection_us = (cpu_time(plain.child.id()) - c0).as_secs_f64() * 1e6 / n as f64;
    let plain_per_sec = n as f64 / secs as f64;
    drop(plain);
    let mut handshake_rows = Vec::new();
    for (name, pair, scheme, x25519_only) in [
        ("RSA-2048", &rsa, SignatureScheme::RSA_PSS_SHA256, false),
        (
            "ECDSA P-256",
            &ecdsa,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            false,
        ),
        (
            "ECDSA P-256, client offers X25519 only",
            &ecdsa,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            true,
        ),
    ] {
        let hg = start("handshakes", Some(pair));
        runtime.block_on(handshakes(hg.port, Some(&ca_file), x25519_only, 1)); // warm-up
        let c0 = cpu_time(hg.child.id());
        let n = hubgate_bench::perf_during(hg.child.id(), &format!("handshakes-{name}"), || {
            runtime.block_on(handshakes(hg.port, Some(&ca_file), x25519_only, secs))
        });
        let server_us = (cpu_time(hg.child.id()) - c0).as_secs_f64() * 1e6 / n as f64;
        let sign_us = signature_cost(&pair.1, scheme).as_secs_f64() * 1e6;
        handshake_rows.push((name, n as f64 / secs as f64, server_us, sign_us));
    }

    let mut t = format!(
        "## HTTPS ({secs} s per scenario, one Apache Kafka node, 1-record produce requests)\n\n\
         ### Keep-alive HTTP/1.1: HTTPS (TLS 1.3, ECDSA P-256) against plain HTTP (wrk; the \
         median of {ROUNDS} alternating pairs, every pair's ratio in brackets)\n\n\
         | conc. | plain req/s | HTTPS req/s | HTTPS / plain | plain p50 ms | HTTPS p50 ms | p50 added ms \
         | plain p99 ms | HTTPS p99 ms | p99 added ms | server CPU µs/req plain | HTTPS | non-2xx |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (c, http, tls, ratios) in &keepalive {
        let _ = writeln!(
            t,
            "| {c} | {:.0} | {:.0} | **{:.2}** ({ratios}) | {:.2} | {:.2} | {:+.2} | {:.2} | {:.2} | {:+.2} | {:.1} | {:.1} | {} |",
            http.rps,
            tls.rps,
            tls.rps / http.rps,
            http.p50,
            tls.p50,
            tls.p50 - http.p50,
            http.p99,
            tls.p99,
            tls.p99 - http.p99,
            http.cpu_us,
            tls.cpu_us,
            http.errors + tls.errors,
        );
    }
    let _ = write!(
        t,
        "\n### New connections: full TLS 1.3 handshakes, no resumption, key exchange \
         X25519MLKEM768 unless said (one client, one after another)\n\n| server certificate | connections/s | server CPU µs/connection | bare \
         signature µs (aws-lc-rs) | handshake / signature | TLS added µs (over plain) |\n\
         |---|---:|---:|---:|---:|---:|\n| none (plain TCP connect and close) | \
         {plain_per_sec:.0} | {plain_connection_us:.0} | | | |\n"
    );
    for (name, per_sec, server_us, sign_us) in &handshake_rows {
        let _ = writeln!(
            t,
            "| {name} | {per_sec:.0} | {server_us:.0} | {sign_us:.0} | {:.1}× | {:.0} |",
            server_us / sign_us,
            server_us - plain_connection_us
        );
    }
    let _ = write!(
        t,
        "\n### HTTP/2 with 64 streams on one connection against 64 HTTP/1.1 connections, over \
         TLS (h2load)\n\n| client | req/s | mean ms/request | server CPU µs/req | non-2xx |\n\
         |---|---:|---:|---:|---:|\n"
    );
    for (name, l) in [
        ("HTTP/2, 1 connection × 64 streams", h2),
        ("HTTP/1.1, 64 connections", h1),
    ] {
        let _ = writeln!(
            t,
            "| {name} | {:.0} | {:.2} | {:.1} | {} |",
            l.rps, l.p50, l.cpu_us, l.errors
        );
    }
    let _ = writeln!(t, "\nHTTP/2 / HTTP/1.1 req/s: **{:.2}**", h2.rps / h1.rps);
    println!("{t}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&args.out, t).unwrap();
}
