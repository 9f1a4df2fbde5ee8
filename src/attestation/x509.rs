//! X.509 certificates (RFC 5280) of the attestation chain, limited to what AWS Nitro issues:
//! ECDSA P-384 keys and ecdsa-with-SHA384 signatures. A certificate with another curve, an
//! RSA key or another signature algorithm is rejected, not verified some other way.
//!
//! Parsing is strict DER (the `der` crate's rules), and a certificate must re-encode to the
//! bytes received. Signatures are checked over the `tbsCertificate` bytes as received.

mod cache;
mod chain;
mod name;

pub use cache::{DEFAULT_CAPACITY as DEFAULT_CACHE_CAPACITY, VerifierCache};
pub use chain::{ChainError, VerifiedChain, verify_chain, verify_chain_with_cache};
pub use name::format_name;

use std::fmt;

use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, UnparsedPublicKey};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Reader, SliceReader};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::Certificate;
use x509_cert::name::Name;

use super::cose::SignatureRejected;

/// ecdsa-with-SHA384 (RFC 5758, section 3.2).
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ecPublicKey (RFC 5480, section 2.1.1).
pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1, the NIST P-384 curve (RFC 5480, section 2.1.1.1).
pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Length of an uncompressed P-384 point: 0x04 || x || y.
pub const P384_POINT_LEN: usize = 97;

/// Position of a certificate in the document: an index of `cabundle` (0 is the root), or the
/// leaf (`certificate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePosition {
    Bundle(usize),
    Leaf,
}

impl fmt::Display for CertificatePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificatePosition::Bundle(index) => write!(f, "cabundle[{index}]"),
            CertificatePosition::Leaf => f.write_str("leaf certificate"),
        }
    }
}

/// A certificate accepted by this profile's parser: strict DER, a P-384 public key and an
/// ecdsa-with-SHA384 signature. Its signature, validity and extensions are not yet checked.
#[derive(Debug, Clone)]
pub struct ParsedCertificate<'a> {
    der: &'a [u8],
    tbs: &'a [u8],
    certificate: Certificate,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a certificate was not accepted by [`ParsedCertificate::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("is not a valid DER certificate: {detail}")]
    Malformed { detail: String },
    #[error("{detail}")]
    Algorithm { detail: String },
}

impl<'a> ParsedCertificate<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, CertificateError> {
        let malformed = |detail: String| CertificateError::Malformed { detail };

        let certificate =
            Certificate::from_der(der).map_err(|error| malformed(error.to_string()))?;
        let reencoded = certificate
            .to_der()
            .map_err(|error| malformed(error.to_string()))?;
        if reencoded != der {
            return Err(malformed("encoding is not canonical DER".to_owned()));
        }
        let tbs = tbs_bytes(der).map_err(|error| malformed(error.to_string()))?;
        let signature = certificate
            .signature()
            .as_bytes()
            .ok_or_else(|| malformed("signature BIT STRING has unused bits".to_owned()))?
            .to_vec();

        check_signature_algorithm(&certificate)?;
        let public_key = p384_public_key(&certificate)?.to_vec();

        Ok(Self {
            der,
            tbs,
            certificate,
            public_key,
            signature,
        })
    }

    pub fn der(&self) -> &'a [u8] {
        self.der
    }

    /// Returns the `tbsCertificate` bytes as received, which the issuer signed.
    pub fn tbs(&self) -> &'a [u8] {
        self.tbs
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Returns the subject's public key as an uncompressed P-384 point.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    pub fn subject(&self) -> &Name {
        self.certificate.tbs_certificate().subject()
    }

    pub fn issuer(&self) -> &Name {
        self.certificate.tbs_certificate().issuer()
    }

    /// Returns the subject's common name for messages, or the whole subject when it has none.
    pub fn subject_label(&self) -> String {
        match self.subject().common_name() {
            Ok(Some(common_name)) => format!("CN={}", common_name.value()),
            _ => self.subject().to_string(),
        }
    }

    /// notBefore in milliseconds since the UNIX epoch.
    pub fn not_before_ms(&self) -> u64 {
        let validity = self.certificate.tbs_certificate().validity();
        duration_ms(validity.not_before.to_unix_duration())
    }

    /// notAfter in milliseconds since the UNIX epoch.
    pub fn not_after_ms(&self) -> u64 {
        let validity = self.certificate.tbs_certificate().validity();
        duration_ms(validity.not_after.to_unix_duration())
    }

    /// Checks that `issuer`'s key signed this certificate.
    pub fn verify_signed_by(
        &self,
        issuer: &ParsedCertificate<'_>,
    ) -> Result<(), SignatureRejected> {
        verify_ecdsa_p384_sha384_der(&issuer.public_key, self.tbs, &self.signature)
    }

    pub fn summary(&self) -> CertificateSummary {
        CertificateSummary {
            subject: format_name(self.subject()),
            not_before_ms: self.not_before_ms(),
            not_after_ms: self.not_after_ms(),
        }
    }
}

/// Subject and validity of a certificate, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// RFC 4514 form, like `CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US`.
    pub subject: String,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

/// Checks an ECDSA P-384 / SHA-384 signature in ASN.1 DER form (`Ecdsa-Sig-Value`), as X.509
/// carries it. `public_key` is an uncompressed point (0x04 || x || y).
pub fn verify_ecdsa_p384_sha384_der(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureRejected> {
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, public_key)
        .verify(message, signature)
        .map_err(|_| SignatureRejected)
}

/// Formats milliseconds since the UNIX epoch as RFC 3339 UTC, like `2024-01-24T12:00:00Z`.
pub fn format_time_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms after 1970-01-01T00:00:00Z"))
}

fn duration_ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Returns the encoded `tbsCertificate`, the first element of
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`.
fn tbs_bytes(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let tbs = reader.sequence(|sequence: &mut SliceReader<'_>| {
        let tbs = sequence.tlv_bytes()?;
        let _algorithm = sequence.tlv_bytes()?;
        let _signature = sequence.tlv_bytes()?;
        Ok::<_, der::Error>(tbs)
    })?;
    reader.finish()?;
    Ok(tbs)
}

fn check_signature_algorithm(certificate: &Certificate) -> Result<(), CertificateError> {
    let algorithm = certificate.signature_algorithm();
    if algorithm.oid != ECDSA_WITH_SHA384 || algorithm.parameters.is_some() {
        return Err(CertificateError::Algorithm {
            detail: format!(
                "is signed with algorithm {}; expected ecdsa-with-SHA384 ({ECDSA_WITH_SHA384})",
                algorithm.oid
            ),
        });
    }
    if certificate.tbs_certificate().signature() != algorithm {
        return Err(CertificateError::Algorithm {
            detail: "names different signature algorithms inside and outside tbsCertificate"
                .to_owned(),
        });
    }
    Ok(())
}

/// Returns the subject public key if it is an uncompressed point on P-384.
fn p384_public_key(certificate: &Certificate) -> Result<&[u8], CertificateError> {
    let info = certificate.tbs_certificate().subject_public_key_info();
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
    if info.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(SECP384R1) {
        let found = match curve {
            Some(curve) if info.algorithm.oid == ID_EC_PUBLIC_KEY => format!("EC curve {curve}"),
            _ => format!("algorithm {}", info.algorithm.oid),
        };
        return Err(CertificateError::Algorithm {
            detail: format!("has a public key of {found}; expected EC P-384 ({SECP384R1})"),
        });
    }
    match info.subject_public_key.as_bytes() {
        Some(point) if point.len() == P384_POINT_LEN && point[0] == 0x04 => Ok(point),
        _ => Err(CertificateError::Algorithm {
            detail: "has a P-384 public key that is not an uncompressed point".to_owned(),
        }),
    }
}
