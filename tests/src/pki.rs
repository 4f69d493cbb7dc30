//! A throw-away certificate authority for the HTTPS tests (rcgen): a server certificate for
//! `localhost` / `127.0.0.1`, and device or service client certificates with a chosen
//! subject CN, SANs and validity.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// A CA that signs what the tests ask for.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl Pem {
    /// Writes `<name>.pem` and `<name>.key` to `dir` (each by a rename, so a reader never
    /// sees half a file); their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        for (path, text) in [(&cert, &self.cert), (&key, &self.key)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (cert, key)
    }

    /// Certificate then key, as reqwest's `Identity::from_pem` wants them.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}\n{}", self.cert, self.key).as_bytes()).unwrap()
    }
}

impl TestCa {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and `127.0.0.1` (ECDSA P-256).
    pub fn server(&self) -> Pem {
        self.server_with(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// A server certificate for `localhost` and `127.0.0.1` with a key of `alg` (e.g.
    /// `rcgen::PKCS_RSA_SHA256` for RSA-2048).
    pub fn server_with(&self, alg: &'static rcgen::SignatureAlgorithm) -> Pem {
        self.leaf(
            KeyPair::generate_for(alg).unwrap(),
            None,
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
            None,
        )
    }

    /// A client certificate with subject `cn`, the SAN DNS names `dns` and, when `expired`,
    /// a validity that ended in 2020.
    pub fn client(&self, cn: Option<&str>, dns: &[&str], expired: bool) -> Pem {
        let names = dns.iter().map(|d| (*d).to_owned()).collect();
        self.leaf(
            KeyPair::generate().unwrap(),
            cn,
            names,
            ExtendedKeyUsagePurpose::ClientAuth,
            Some(expired),
        )
    }

    fn leaf(
        &self,
        key: KeyPair,
        cn: Option<&str>,
        names: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
        expired: Option<bool>,
    ) -> Pem {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = names
            .into_iter()
            .map(|n| match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.try_into().unwrap()),
            })
            .collect();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.extended_key_usages = vec![usage];
        if expired == Some(true) {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}
