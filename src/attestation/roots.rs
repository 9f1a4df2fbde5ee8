//! Trust roots for the attestation certificate chain: the AWS Nitro Enclaves root (G1),
//! embedded and pinned by its SHA-256, and development roots loaded from PEM.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};

use super::x509::{CertificateError, ParsedCertificate};

/// Label of the embedded AWS root, as release policies name it.
pub const AWS_NITRO_ENCLAVES_G1_LABEL: &str = "aws-nitro-enclaves-g1";

/// SHA-256 of the DER of the AWS Nitro Enclaves Root-G1 certificate (CN=aws.nitro-enclaves,
/// P-384, valid 2019-10-28 to 2049-10-28), as AWS publishes it.
pub const AWS_NITRO_ENCLAVES_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// The root certificate from AWS_NitroEnclaves_Root-G1.zip, converted from PEM to DER.
const AWS_NITRO_ENCLAVES_G1_DER: &[u8] = include_bytes!("roots/aws_nitro_enclaves_root_g1.der");

/// A certificate that may stand at `cabundle[0]`, matched by its exact DER bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustRoot {
    label: String,
    der: Vec<u8>,
    sha256: [u8; 32],
}

impl TrustRoot {
    /// Returns the AWS Nitro Enclaves root (G1). Its pinned SHA-256 is not computed from the embedded
    /// bytes: a root matches only when a certificate equals the embedded DER and also hashes to
    /// the pin, so embedded bytes that drifted from the pin would match nothing.
    pub fn aws_nitro_enclaves_g1() -> Self {
        Self {
            label: AWS_NITRO_ENCLAVES_G1_LABEL.to_owned(),
            der: AWS_NITRO_ENCLAVES_G1_DER.to_vec(),
            sha256: AWS_NITRO_ENCLAVES_G1_SHA256,
        }
    }

    /// Loads a development root from a PEM file holding exactly one CERTIFICATE block. The
    /// certificate must use the same profile as AWS's (P-384 key, ecdsa-with-SHA384).
    pub fn from_pem(pem: &[u8], label: String) -> Result<Self, TrustRootError> {
        let (pem_label, der) = der::pem::decode_vec(pem).map_err(|error| TrustRootError::Pem {
            label: label.clone(),
            detail: error.to_string(),
        })?;
        if pem_label != "CERTIFICATE" {
            return Err(TrustRootError::PemLabel {
                label,
                found: pem_label.to_owned(),
            });
        }
        Self::from_der(der, label)
    }

    /// Accepts a DER root certificate under `label`.
    pub fn from_der(der: Vec<u8>, label: String) -> Result<Self, TrustRootError> {
        if let Err(error) = ParsedCertificate::parse(&der) {
            return Err(TrustRootError::Certificate { label, error });
        }
        let sha256 = Self::sha256_of(&der);
        Ok(Self { label, der, sha256 })
    }

    /// Name of the root in messages and results: `aws-nitro-enclaves-g1` for AWS's root,
    /// the caller's label for a development root.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// True for the embedded AWS root; false for development roots.
    pub fn is_aws_nitro_enclaves_g1(&self) -> bool {
        self.sha256 == AWS_NITRO_ENCLAVES_G1_SHA256 && self.der == AWS_NITRO_ENCLAVES_G1_DER
    }

    /// True when `candidate` is this root: same SHA-256 and same bytes.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        Self::sha256_of(candidate) == self.sha256 && candidate == self.der.as_slice()
    }

    pub fn sha256_of(der: &[u8]) -> [u8; 32] {
        let mut output = [0; 32];
        output.copy_from_slice(digest(&SHA256, der).as_ref());
        output
    }
}

impl fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustRoot")
            .field("label", &self.label)
            .field("sha256", &hex::encode(self.sha256))
            .finish()
    }
}

/// Error from loading a development root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustRootError {
    #[error("trust root {label}: not a valid PEM file: {detail}")]
    Pem { label: String, detail: String },
    #[error("trust root {label}: PEM block is {found:?}; expected \"CERTIFICATE\"")]
    PemLabel { label: String, found: String },
    #[error("trust root {label}: certificate {error}")]
    Certificate {
        label: String,
        error: CertificateError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_ROOT_PEM: &[u8] =
        include_bytes!("../../tests/fixtures/nitro/aws_nitro_enclaves_root_g1.pem");

    #[test]
    fn embedded_aws_root_hashes_to_pin() {
        assert_eq!(
            TrustRoot::sha256_of(AWS_NITRO_ENCLAVES_G1_DER),
            AWS_NITRO_ENCLAVES_G1_SHA256
        );
        let root = TrustRoot::aws_nitro_enclaves_g1();
        assert!(root.matches(AWS_NITRO_ENCLAVES_G1_DER));
        assert!(root.is_aws_nitro_enclaves_g1());
    }

    #[test]
    fn embedded_aws_root_equals_published_pem() {
        let loaded = TrustRoot::from_pem(AWS_ROOT_PEM, "published".to_owned()).unwrap();
        assert_eq!(loaded.der(), AWS_NITRO_ENCLAVES_G1_DER);
        assert_eq!(loaded.sha256(), AWS_NITRO_ENCLAVES_G1_SHA256);
    }

    #[test]
    fn root_with_other_bytes_does_not_match() {
        let root = TrustRoot::aws_nitro_enclaves_g1();
        let mut altered = AWS_NITRO_ENCLAVES_G1_DER.to_vec();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(!root.matches(&altered));
    }

    #[test]
    fn rejects_pem_with_two_certificates() {
        let pem = [AWS_ROOT_PEM, AWS_ROOT_PEM].concat();
        let error = TrustRoot::from_pem(&pem, "bundle".to_owned()).unwrap_err();
        assert!(matches!(error, TrustRootError::Pem { .. }), "{error}");
    }

    #[test]
    fn rejects_pem_of_private_key() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let error = TrustRoot::from_pem(pem, "dev".to_owned()).unwrap_err();
        assert!(matches!(error, TrustRootError::PemLabel { .. }), "{error}");
    }

    #[test]
    fn rejects_text_that_is_not_pem() {
        let error = TrustRoot::from_pem(b"not a certificate", "dev".to_owned()).unwrap_err();
        assert!(matches!(error, TrustRootError::Pem { .. }));
    }
}
