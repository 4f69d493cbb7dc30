//! jsonwebtoken's aws-lc crypto provider, with RSA public keys parsed once instead of on
//! every verification.
//!
//! jsonwebtoken's provider rebuilds the aws-lc key from the JWK's `n` and `e` for each
//! token, which costs about a quarter of an RS256 verification (~5 µs of ~20). This
//! provider hands out verifiers around a cached, parsed key (`ParsedPublicKey`); every
//! other decision (algorithm pinning, claims, HMAC/EC/EdDSA keys, signing) stays with
//! jsonwebtoken's own aws-lc provider. Keys come only from the provider's JWKS; the cache
//! holds at most [`MAX_KEYS`] and starts over when full.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::Error;
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

const MAX_KEYS: usize = 64;

/// The provider [`install_crypto_provider`](super::install_crypto_provider) installs.
pub(super) static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    verifier_factory: new_verifier,
    ..DEFAULT_PROVIDER.clone()
});

type Parsed = Arc<ParsedPublicKey>;

/// Parsed keys by modulus; each entry lists (algorithm, exponent, key).
type KeysByModulus = HashMap<Vec<u8>, Vec<(Algorithm, Vec<u8>, Parsed)>>;

static KEYS: LazyLock<Mutex<KeysByModulus>> = LazyLock::new(Mutex::default);

fn rsa_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    if let (Some(verification), DecodingKeyKind::RsaModulusExponent { n, e }) =
        (rsa_algorithm(*alg), key.kind())
        && let Some(parsed) = parsed(*alg, verification, n, e)
    {
        return Ok(Box::new(CachedRsa {
            alg: *alg,
            key: parsed,
        }));
    }
    (DEFAULT_PROVIDER.verifier_factory)(alg, key)
}

/// The parsed key for (alg, n, e), parsed now if new; `None` if aws-lc rejects it (the
/// default provider then reports the error its own way).
fn parsed(
    alg: Algorithm,
    verification: &'static dyn VerificationAlgorithm,
    n: &[u8],
    e: &[u8],
) -> Option<Parsed> {
    let mut keys = KEYS.lock();
    if let Some(found) = keys
        .get(n)
        .and_then(|list| list.iter().find(|(a, x, _)| *a == alg && x == e))
    {
        return Some(Arc::clone(&found.2));
    }
    let der = PublicKeyComponents { n, e }.as_der().ok()?;
    let key = Arc::new(ParsedPublicKey::new(verification, der.as_ref()).ok()?);
    if keys.len() >= MAX_KEYS {
        keys.clear();
    }
    keys.entry(n.to_vec())
        .or_default()
        .push((alg, e.to_vec(), Arc::clone(&key)));
    Some(key)
}

struct CachedRsa {
    alg: Algorithm,
    key: Parsed,
}

impl Verifier<Vec<u8>> for CachedRsa {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        self.key
            .verify_sig(msg, signature)
            .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for CachedRsa {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}
