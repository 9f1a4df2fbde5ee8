//! The certificate chain of an attestation document: `cabundle` (root first) followed by the
//! leaf `certificate`, checked from the root outward.
//!
//! `cabundle[0]` must be byte-equal to a trusted root; the root is never searched for
//! elsewhere in the list. Every later certificate must name the previous one's subject as its
//! issuer and carry its signature. Every certificate before the leaf must be a CA
//! (basicConstraints CA=true) within its pathLenConstraint, the leaf must not be a CA, no
//! certificate may carry a critical extension this module does not process, and every
//! certificate, the root included, must be valid at the verification time, give or take the
//! allowed clock skew. The root's self-signature is not checked: its bytes are trusted.

use std::collections::BTreeSet;

use der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::Version;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use super::cache::{SignatureFact, VerifierCache};
use super::{
    CertificateError, CertificatePosition, CertificateSummary, ParsedCertificate, format_time_ms,
};
use crate::attestation::roots::TrustRoot;

/// A chain that passed every check: which root anchored it, and the leaf's key.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    root_label: String,
    leaf_public_key: Vec<u8>,
    certificates: Vec<CertificateSummary>,
}

impl VerifiedChain {
    pub fn root_label(&self) -> &str {
        &self.root_label
    }

    /// Returns the leaf's public key, an uncompressed P-384 point.
    pub fn leaf_public_key(&self) -> &[u8] {
        &self.leaf_public_key
    }

    /// Subject and validity of each certificate, root first, leaf last.
    pub fn certificates(&self) -> &[CertificateSummary] {
        &self.certificates
    }
}

/// Error for a certificate chain that was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("cabundle is empty; expected the root certificate first")]
    EmptyBundle,
    #[error("cabundle[0] is not a trusted root (SHA-256 {sha256}); trusted roots: {trusted}")]
    UntrustedRoot { sha256: String, trusted: String },
    #[error("{position} {error}")]
    Certificate {
        position: CertificatePosition,
        error: CertificateError,
    },
    #[error("{position} has issuer {issuer}, but {issuer_position} has subject {expected}")]
    IssuerMismatch {
        position: CertificatePosition,
        issuer: String,
        issuer_position: CertificatePosition,
        expected: String,
    },
    #[error("{position} ({subject}) is not signed by the key of {issuer_position}")]
    Signature {
        position: CertificatePosition,
        subject: String,
        issuer_position: CertificatePosition,
    },
    #[error("{position} ({subject}) {detail}")]
    Extension {
        position: CertificatePosition,
        subject: String,
        detail: String,
    },
    #[error(
        "{position} ({subject}) expired at {} (notAfter), checked at {} with {} s clock skew allowed",
        format_time_ms(*.not_after_ms), format_time_ms(*.checked_at_ms), .skew_ms / 1000
    )]
    Expired {
        position: CertificatePosition,
        subject: String,
        not_after_ms: u64,
        checked_at_ms: u64,
        skew_ms: u64,
    },
    #[error(
        "{position} ({subject}) is not valid before {} (notBefore), checked at {} with {} s clock skew allowed",
        format_time_ms(*.not_before_ms), format_time_ms(*.checked_at_ms), .skew_ms / 1000
    )]
    NotYetValid {
        position: CertificatePosition,
        subject: String,
        not_before_ms: u64,
        checked_at_ms: u64,
        skew_ms: u64,
    },
}

impl ChainError {
    /// Stable identifier of the rule that failed.
    pub fn rule(&self) -> &'static str {
        match self {
            ChainError::EmptyBundle | ChainError::UntrustedRoot { .. } => "chain.root",
            ChainError::Certificate {
                error: CertificateError::Malformed { .. },
                ..
            } => "chain.certificate",
            ChainError::Certificate {
                error: CertificateError::Algorithm { .. },
                ..
            } => "chain.algorithm",
            ChainError::IssuerMismatch { .. } => "chain.issuer",
            ChainError::Signature { .. } => "chain.signature",
            ChainError::Extension { .. } => "chain.extension",
            ChainError::Expired { .. } | ChainError::NotYetValid { .. } => "chain.validity",
        }
    }

    /// True when a certificate could not be parsed at all.
    pub fn is_malformed(&self) -> bool {
        self.rule() == "chain.certificate"
    }
}

/// Checks the chain `cabundle` + `leaf` against `roots` at `time_ms` (UNIX milliseconds),
/// accepting validity periods that miss that time by at most `skew_ms`.
pub fn verify_chain(
    cabundle: &[Vec<u8>],
    leaf: &[u8],
    roots: &[TrustRoot],
    time_ms: u64,
    skew_ms: u64,
) -> Result<VerifiedChain, ChainError> {
    verify_chain_with_cache(cabundle, leaf, roots, time_ms, skew_ms, None)
}

/// Like [`verify_chain`], but skips the signature check of an intermediate certificate whose
/// signature by the same issuer is in `cache`, and records the intermediate signatures that
/// verify. Every other check runs as in [`verify_chain`], in the same order, so both return
/// the same result for the same input.
pub fn verify_chain_with_cache(
    cabundle: &[Vec<u8>],
    leaf: &[u8],
    roots: &[TrustRoot],
    time_ms: u64,
    skew_ms: u64,
    cache: Option<&VerifierCache>,
) -> Result<VerifiedChain, ChainError> {
    let first = cabundle.first().ok_or(ChainError::EmptyBundle)?;
    let Some(root) = roots.iter().find(|root| root.matches(first)) else {
        let trusted: Vec<&str> = roots.iter().map(TrustRoot::label).collect();
        return Err(ChainError::UntrustedRoot {
            sha256: hex::encode(TrustRoot::sha256_of(first)),
            trusted: if trusted.is_empty() {
                "none".to_owned()
            } else {
                trusted.join(", ")
            },
        });
    };

    let positions: Vec<CertificatePosition> = (0..cabundle.len())
        .map(CertificatePosition::Bundle)
        .chain([CertificatePosition::Leaf])
        .collect();
    let encoded = cabundle.iter().map(Vec::as_slice).chain([leaf]);
    let certificates = positions
        .iter()
        .zip(encoded)
        .map(|(position, der)| {
            ParsedCertificate::parse(der).map_err(|error| ChainError::Certificate {
                position: *position,
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    // SHA-256 of each cabundle certificate, only when there is a cache to look them up in.
    let bundle_sha256: Vec<[u8; 32]> = match cache {
        Some(_) => cabundle
            .iter()
            .map(|der| TrustRoot::sha256_of(der))
            .collect(),
        None => Vec::new(),
    };

    for (index, certificate) in certificates.iter().enumerate() {
        let position = positions[index];
        if index > 0 {
            let issuer = &certificates[index - 1];
            let issuer_position = positions[index - 1];
            check_names(certificate, position, issuer, issuer_position)?;

            // Intermediates only: the leaf is new in every document.
            let cached = match (cache, position) {
                (Some(cache), CertificatePosition::Bundle(_)) => Some((
                    cache,
                    SignatureFact {
                        certificate_sha256: bundle_sha256[index],
                        issuer_sha256: bundle_sha256[index - 1],
                    },
                )),
                _ => None,
            };
            if !cached.is_some_and(|(cache, fact)| cache.contains(&fact)) {
                check_signature(certificate, position, issuer, issuer_position)?;
                if let Some((cache, fact)) = cached {
                    cache.insert(fact, certificate.not_after_ms(), time_ms, skew_ms);
                }
            }
        }
        check_extensions(certificate, position, index, certificates.len())?;
        check_validity(certificate, position, time_ms, skew_ms)?;
    }

    // `certificates` ends with the leaf, so the default below is never used.
    Ok(VerifiedChain {
        root_label: root.label().to_owned(),
        leaf_public_key: certificates
            .last()
            .map(|leaf| leaf.public_key().to_vec())
            .unwrap_or_default(),
        certificates: certificates
            .iter()
            .map(ParsedCertificate::summary)
            .collect(),
    })
}

fn check_names(
    certificate: &ParsedCertificate<'_>,
    position: CertificatePosition,
    issuer: &ParsedCertificate<'_>,
    issuer_position: CertificatePosition,
) -> Result<(), ChainError> {
    if certificate.issuer() != issuer.subject() {
        return Err(ChainError::IssuerMismatch {
            position,
            issuer: certificate.issuer().to_string(),
            issuer_position,
            expected: issuer.subject().to_string(),
        });
    }
    Ok(())
}

fn check_signature(
    certificate: &ParsedCertificate<'_>,
    position: CertificatePosition,
    issuer: &ParsedCertificate<'_>,
    issuer_position: CertificatePosition,
) -> Result<(), ChainError> {
    certificate
        .verify_signed_by(issuer)
        .map_err(|_| ChainError::Signature {
            position,
            subject: certificate.subject_label(),
            issuer_position,
        })
}

/// Extensions this module processes, so they may be critical.
const UNDERSTOOD_CRITICAL: [ObjectIdentifier; 2] = [BasicConstraints::OID, KeyUsage::OID];

fn check_extensions(
    certificate: &ParsedCertificate<'_>,
    position: CertificatePosition,
    index: usize,
    count: usize,
) -> Result<(), ChainError> {
    let fail = |detail: String| ChainError::Extension {
        position,
        subject: certificate.subject_label(),
        detail,
    };
    let tbs = certificate.certificate().tbs_certificate();
    if tbs.version() != Version::V3 {
        return Err(fail(format!("is X.509 {:?}; expected V3", tbs.version())));
    }

    let extensions = tbs.extensions().map(Vec::as_slice).unwrap_or_default();
    let mut seen = BTreeSet::new();
    for extension in extensions {
        if !seen.insert(extension.extn_id) {
            return Err(fail(format!("has extension {} twice", extension.extn_id)));
        }
        if extension.critical && !UNDERSTOOD_CRITICAL.contains(&extension.extn_id) {
            return Err(fail(format!(
                "has unknown critical extension {}",
                extension.extn_id
            )));
        }
    }

    let basic_constraints = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|error| {
            fail(format!(
                "has an invalid basicConstraints extension: {error}"
            ))
        })?
        .map(|(_, constraints)| constraints);
    let key_usage = tbs
        .get_extension::<KeyUsage>()
        .map_err(|error| fail(format!("has an invalid keyUsage extension: {error}")))?
        .map(|(_, usage)| usage);

    let leaf_index = count - 1;
    if index < leaf_index {
        let Some(constraints) = basic_constraints.filter(|constraints| constraints.ca) else {
            return Err(fail(
                "issues a certificate but basicConstraints does not have CA=true".to_owned(),
            ));
        };
        // CA certificates between this one and the leaf.
        let below = leaf_index - index - 1;
        if let Some(limit) = constraints.path_len_constraint
            && below > usize::from(limit)
        {
            return Err(fail(format!(
                "has pathLenConstraint {limit}, but {below} CA certificates follow it"
            )));
        }
        if key_usage.is_some_and(|usage| !usage.key_cert_sign()) {
            return Err(fail(
                "issues a certificate but keyUsage lacks keyCertSign".to_owned(),
            ));
        }
    } else {
        if basic_constraints.is_some_and(|constraints| constraints.ca) {
            return Err(fail(
                "is a CA (basicConstraints CA=true); expected an end-entity certificate".to_owned(),
            ));
        }
        if key_usage.is_some_and(|usage| !usage.digital_signature()) {
            return Err(fail(
                "has keyUsage without digitalSignature, so it cannot sign the document".to_owned(),
            ));
        }
    }
    Ok(())
}

fn check_validity(
    certificate: &ParsedCertificate<'_>,
    position: CertificatePosition,
    time_ms: u64,
    skew_ms: u64,
) -> Result<(), ChainError> {
    let not_before_ms = certificate.not_before_ms();
    let not_after_ms = certificate.not_after_ms();
    if time_ms.saturating_add(skew_ms) < not_before_ms {
        return Err(ChainError::NotYetValid {
            position,
            subject: certificate.subject_label(),
            not_before_ms,
            checked_at_ms: time_ms,
            skew_ms,
        });
    }
    if time_ms.saturating_sub(skew_ms) > not_after_ms {
        return Err(ChainError::Expired {
            position,
            subject: certificate.subject_label(),
            not_after_ms,
            checked_at_ms: time_ms,
            skew_ms,
        });
    }
    Ok(())
}
