//! A repeat credential (the same SAS header on every request, as devices send) through
//! `Gate::authenticate` with the verified-credential cache off and on, in the same run, beside
//! one HMAC-SHA256 of the same string-to-sign (the work a SAS check cannot avoid).
//! `cargo bench -p hubgate-server --bench credentials`; the figures are in BENCHMARKS.md.
#![allow(clippy::unwrap_used)] // a benchmark: any failure should stop it loudly

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use hubgate_server::sas::{SasKey, mint};
use hubgate_server::{Config, Gate};
use sha2::Sha256;

const URI: &str = "https://ns.test/telemetry/publishers/device-000001";

fn gate(entries: usize, key: &SasKey) -> Gate {
    let mut config = Config::from_toml(&format!(
        "namespace = 'ns.test'\n[[rules]]\nname = 'send'\nrights = ['Send']\nprimary_key = '{}'\n",
        key.expose()
    ))
    .unwrap();
    config.credential_cache.entries = entries;
    Gate::from_config(&config)
}

fn repeat_credential(c: &mut Criterion) {
    let key = SasKey::generate().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        mint(URI, "send", &key, 4_000_000_000).parse().unwrap(),
    );
    let sts = format!(
        "{}\n4000000000",
        hubgate_server::sas::encode_uri_component(URI)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("repeat_credential");
    g.bench_function("hmac_sha256_baseline", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).unwrap();
            mac.update(black_box(sts.as_bytes()));
            black_box(mac.finalize().into_bytes())
        });
    });
    g.bench_function("credential_key", |b| {
        b.iter(|| hubgate_server::credential_cache::credential_key(black_box(&headers)));
    });
    // What driving an async call costs in this harness (subtracted in BENCHMARKS.md).
    g.bench_function("block_on_empty", |b| {
        b.iter(|| runtime.block_on(async { black_box(1) }));
    });
    for (name, entries) in [("sas_uncached", 0), ("sas_cached", 10_000)] {
        let gate = gate(entries, &key);
        g.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(gate.authenticate(black_box(&headers), None))
                    .unwrap()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, repeat_credential);
criterion_main!(benches);
