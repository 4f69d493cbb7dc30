//! Credential checks against the cryptography they cannot avoid, in the same run:
//! SAS verify vs one HMAC-SHA256, JWT verify vs one RSA-2048 verify, the group check, and
//! the route table's lookup vs the same HMAC.
//! `cargo bench -p hubgate-core --bench auth`; the ratios are in BENCHMARKS.md.
#![allow(clippy::unwrap_used)] // a benchmark: any failure should stop it loudly

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use hubgate_core::Right;
use hubgate_core::groups::{GroupGrantConfig, GroupPolicy};
use hubgate_core::jwt::{JwtAlgorithm, Verifier, parse_jwks};
use hubgate_core::routes::{Lookup, lookup};
use hubgate_core::sas::{SasKey, SasToken, mint};
use sha2::Sha256;

const URI: &str = "https://ns.servicebus.windows.net/telemetry/publishers/device-000001";

fn sas(c: &mut Criterion) {
    let key = SasKey::generate().unwrap();
    let header = mint(URI, "send", &key, 4_000_000_000);
    let token = SasToken::parse(&header).unwrap();
    let sts = format!(
        "{}\n4000000000",
        hubgate_core::sas::encode_uri_component(URI)
    );
    let mut g = c.benchmark_group("sas");
    g.bench_function("hmac_sha256_baseline", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).unwrap();
            mac.update(black_box(sts.as_bytes()));
            black_box(mac.finalize().into_bytes())
        })
    });
    g.bench_function("verify", |b| {
        b.iter(|| black_box(&token).verify([&key], 1_700_000_000).unwrap())
    });
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            let t = SasToken::parse(black_box(&header)).unwrap();
            t.verify([&key], 1_700_000_000).unwrap();
            black_box(t)
        })
    });
    // The route table's work per request, against the same HMAC baseline: the path matched
    // (twice: the normalizing layer and the route's layer) and its parameters validated.
    g.bench_function("route_lookup_and_params", |b| {
        let path = "/telemetry/publishers/device-000001/messages";
        b.iter(|| {
            let m = hubgate_core::routes::match_path(black_box(path)).unwrap();
            black_box(m.is_canonical());
            let Lookup::Found(route, raw) = lookup(black_box("POST"), black_box(path)) else {
                panic!("no route")
            };
            black_box((route, raw.parse().unwrap()))
        })
    });
    g.finish();
}

/// 100 GUIDs in the token; 10 configured grants, 5 of them among the token's groups.
fn groups(c: &mut Criterion) {
    let guid = |i: u32| format!("{i:08x}-1a2b-4c3d-8e9f-0123456789ab");
    let token_groups: Vec<String> = (0..100).map(|i| guid(1000 + i * 7)).collect();
    let grants: Vec<GroupGrantConfig> = (0..10)
        .map(|i| GroupGrantConfig {
            // Every other grant is one of the token's groups.
            group: if i % 2 == 0 {
                token_groups[i * 9].clone()
            } else {
                guid(5_000_000 + u32::try_from(i).unwrap())
            },
            rights: vec![Right::Send],
            hub: None,
        })
        .collect();
    let policy = GroupPolicy::new(&grants).unwrap();
    assert_eq!(
        policy
            .mask(token_groups.iter().map(String::as_str))
            .count_ones(),
        5
    );
    c.bench_function("groups/mask_100_in_token_10_granted", |b| {
        b.iter(|| black_box(policy.mask(black_box(&token_groups).iter().map(String::as_str))))
    });
}

/// An Entra-shaped access token signed with a fresh RSA-2048 key, the validator holding the
/// key (fetched once from a loopback JWKS server), and the bare verify baselines.
fn jwt(c: &mut Criterion) {
    hubgate_core::jwt::install_crypto_provider();
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": B64URL.encode(&n), "e": B64URL.encode(&e),
    }]})
    .to_string();
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let iss = format!("https://login.microsoftonline.com/{tid}/v2.0");
    let claims = serde_json::json!({
        "aud": "api://hubgate", "iss": iss, "iat": 1_700_000_000u64, "nbf": 1_700_000_000u64,
        "exp": 4_000_000_000u64, "aio": "E2ZgYJj8+Pl1GpsAAAA=", "azp": "0f0e0d0c-0b0a-0908-0706-050403020100",
        "azpacr": "1", "idtyp": "app", "oid": "11111111-2222-3333-4444-555555555555",
        "rh": "0.AAAA", "roles": ["Telemetry.Send"], "sub": "11111111-2222-3333-4444-555555555555",
        "tid": tid, "uti": "AbCdEfGhIjKlMnOpQrStUv", "ver": "2.0",
        "groups": ["aaaaaaaa-1111-2222-3333-444444444444", "bbbbbbbb-1111-2222-3333-444444444444"],
    });
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(r#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#),
        B64URL.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let token = format!("{signing_input}.{}", B64URL.encode(&sig));

    let keys = parse_jwks(jwks.as_bytes(), &[JwtAlgorithm::RS256]).unwrap();
    assert_eq!(keys.len(), 1);
    let verifier = Verifier::new(
        &[iss],
        &["api://hubgate".to_owned()],
        &[JwtAlgorithm::RS256],
        60,
    )
    .unwrap();
    verifier.verify_with(&token, &keys).unwrap();

    let components = RsaPublicKeyComponents { n: &n, e: &e };
    let parsed = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public.as_ref()).unwrap();
    let mut g = c.benchmark_group("jwt");
    g.bench_function("rsa2048_verify_baseline_parsed_key", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(signing_input.as_bytes()), &sig)
                .unwrap()
        })
    });
    g.bench_function("rsa2048_verify_baseline_from_n_e", |b| {
        b.iter(|| {
            components
                .verify(
                    &RSA_PKCS1_2048_8192_SHA256,
                    black_box(signing_input.as_bytes()),
                    &sig,
                )
                .unwrap()
        })
    });
    g.bench_function("verify_rs256_given_keys", |b| {
        b.iter(|| black_box(verifier.verify_with(black_box(&token), &keys).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, sas, groups, jwt);
criterion_main!(benches);
