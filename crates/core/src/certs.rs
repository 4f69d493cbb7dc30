//! X.509 client certificates as the third credential (mutual TLS): which field of a
//! certificate names the caller, and the [`Principal`] a certificate stands for under the
//! configured mappings (`[[tls.client_auth.map]]`). The TLS layer has already verified the
//! chain against the configured CA and the validity period at the handshake; this decides
//! *who* it is. Field names follow RFC 5280 (subject `commonName`, `subjectAltName`
//! `dNSName` and `uniformResourceIdentifier`).

use serde::Deserialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::authz::{AuthError, Principal};
use crate::names::{fold, publisher, validate_hub};
use crate::rights::{Resource, Right, Rights};

/// The certificate field that names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertField {
    /// The subject's common name (`CN`).
    SubjectCn,
    /// A `dNSName` of the subject alternative names.
    SanDns,
    /// A `uniformResourceIdentifier` of the subject alternative names.
    SanUri,
}

impl std::fmt::Display for CertField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SubjectCn => "subject CN",
            Self::SanDns => "SAN DNS name",
            Self::SanUri => "SAN URI",
        })
    }
}

/// One mapping from certificates to a caller on a hub. Without `rights`, the field's value
/// is a publisher name and the certificate sends as that publisher only, exactly like a
/// per-publisher SAS token (and the revocation list applies). With `rights` (a backend
/// service), `identity` names the one certificate and it holds those rights on the hub.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertMapping {
    /// The hub the certificate acts on.
    pub hub: String,
    /// Which field names the caller.
    pub field: CertField,
    /// Only a certificate whose field has exactly this value (ASCII case-insensitive);
    /// unset: any certificate with exactly one value of the field.
    #[serde(default)]
    pub identity: Option<String>,
    /// Rights on the hub; unset: the certificate is the publisher its field names.
    #[serde(default)]
    pub rights: Option<Vec<Right>>,
}

impl CertMapping {
    /// Refuses a mapping that could never apply or would grant by accident.
    pub fn validate(&self) -> Result<(), String> {
        validate_hub(&self.hub).map_err(|e| format!("tls.client_auth.map hub: {e}"))?;
        match (&self.rights, &self.identity) {
            (Some(rights), _) if rights.is_empty() => {
                Err("tls.client_auth.map: rights, when given, must name at least one right".into())
            }
            (Some(_), None) => Err(format!(
                "tls.client_auth.map for hub '{}': rights need an identity (the one certificate they are for)",
                self.hub
            )),
            _ => Ok(()),
        }
    }
}

/// The values of `field` in a certificate.
fn field_values<'a>(cert: &'a X509Certificate<'a>, field: CertField) -> Vec<&'a str> {
    match field {
        CertField::SubjectCn => cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .collect(),
        CertField::SanDns | CertField::SanUri => cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match (field, name) {
                        (CertField::SanDns, GeneralName::DNSName(s))
                        | (CertField::SanUri, GeneralName::URI(s)) => Some(*s),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The principal a verified end-entity certificate (DER) stands for: the first mapping
/// that applies, in configuration order. A certificate no mapping applies to, or whose
/// field is not a valid publisher name, is [`AuthError::CertificateNotMapped`].
pub fn certificate_principal(der: &[u8], mappings: &[CertMapping]) -> Result<Principal, AuthError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| {
        AuthError::CertificateNotMapped("it is not a valid X.509 certificate".into())
    })?;
    let expires_at = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    for mapping in mappings {
        let values = field_values(&cert, mapping.field);
        let value = match &mapping.identity {
            Some(want) => values
                .iter()
                .find(|v| v.eq_ignore_ascii_case(want))
                .copied(),
            None => match values.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
        };
        let Some(value) = value else { continue };
        let (rights, scope) = match &mapping.rights {
            Some(rights) => (
                rights.iter().copied().collect(),
                Resource::hub(&mapping.hub),
            ),
            None => {
                let name = publisher(value).map_err(|e| {
                    AuthError::CertificateNotMapped(format!(
                        "its {} is not a valid publisher name ({e})",
                        mapping.field
                    ))
                })?;
                (Rights::SEND, Resource::publisher(&mapping.hub, &name))
            }
        };
        return Ok(Principal::Certificate {
            identity: fold(value),
            rights,
            scope,
            expires_at,
        });
    }
    Err(AuthError::CertificateNotMapped(
        "no tls.client_auth.map entry applies to it".into(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failed test

    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn device_map(field: CertField) -> CertMapping {
        CertMapping {
            hub: "telemetry".into(),
            field,
            identity: None,
            rights: None,
        }
    }

    #[test]
    fn certificate_cn_maps_to_its_publisher_ok() {
        let der = cert(Some("Device-7"), vec![]);
        let p = certificate_principal(&der, &[device_map(CertField::SubjectCn)]).unwrap();
        assert_eq!(p.publisher(), Some(("telemetry", "device-7")));
        assert_eq!(p.rights(), Rights::SEND);
        assert_eq!(p.name(), "cert:device-7@telemetry/publishers/device-7");
    }

    #[test]
    fn certificate_san_uri_and_dns_ok() {
        let der = cert(
            Some("ignored"),
            vec![
                SanType::URI("urn:dev:42".try_into().unwrap()),
                SanType::DnsName("svc.backend.example".try_into().unwrap()),
            ],
        );
        let p = certificate_principal(&der, &[device_map(CertField::SanUri)]).unwrap();
        assert_eq!(p.publisher(), Some(("telemetry", "urn:dev:42")));
        let service = CertMapping {
            identity: Some("SVC.backend.example".into()),
            rights: Some(vec![Right::Listen]),
            ..device_map(CertField::SanDns)
        };
        let p = certificate_principal(&der, &[service]).unwrap();
        assert_eq!(p.publisher(), None);
        assert_eq!(p.rights(), Rights::LISTEN);
        assert_eq!(p.name(), "cert:svc.backend.example@telemetry");
    }

    #[test]
    fn certificate_without_mapping_fails() {
        // No CN; two DNS names where one is wanted; an identity that is not there; a CN
        // that is not a publisher name.
        let two = cert(
            None,
            vec![
                SanType::DnsName("a.example".try_into().unwrap()),
                SanType::DnsName("b.example".try_into().unwrap()),
            ],
        );
        for field in [CertField::SubjectCn, CertField::SanDns, CertField::SanUri] {
            let e = certificate_principal(&two, &[device_map(field)]).unwrap_err();
            assert!(matches!(e, AuthError::CertificateNotMapped(_)), "{e:?}");
        }
        let other = CertMapping {
            identity: Some("c.example".into()),
            rights: Some(vec![Right::Manage]),
            ..device_map(CertField::SanDns)
        };
        assert!(certificate_principal(&two, &[other]).is_err());
        let slash = cert(Some("a/b"), vec![]);
        let e = certificate_principal(&slash, &[device_map(CertField::SubjectCn)]).unwrap_err();
        assert!(e.to_string().contains("not a valid publisher name"), "{e}");
        assert!(certificate_principal(b"not der", &[device_map(CertField::SubjectCn)]).is_err());
    }

    #[test]
    fn cert_mapping_rights_without_identity_fails() {
        let m = CertMapping {
            rights: Some(vec![Right::Send]),
            ..device_map(CertField::SubjectCn)
        };
        assert!(m.validate().is_err());
        let empty = CertMapping {
            identity: Some("x".into()),
            rights: Some(vec![]),
            ..device_map(CertField::SubjectCn)
        };
        assert!(empty.validate().is_err());
        assert!(device_map(CertField::SubjectCn).validate().is_ok());
    }
}
