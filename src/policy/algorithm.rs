//! KMS encryption algorithms that a secret may name for `Decrypt`.

use std::fmt;

use super::json::{JsonPath, Node, Problems};

/// A KMS `EncryptionAlgorithmSpec` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncryptionAlgorithm {
    SymmetricDefault,
    RsaesOaepSha1,
    RsaesOaepSha256,
    Sm2Pke,
}

impl EncryptionAlgorithm {
    pub const ALL: [EncryptionAlgorithm; 4] = [
        EncryptionAlgorithm::SymmetricDefault,
        EncryptionAlgorithm::RsaesOaepSha1,
        EncryptionAlgorithm::RsaesOaepSha256,
        EncryptionAlgorithm::Sm2Pke,
    ];

    /// The KMS API name, such as `RSAES_OAEP_SHA_256`.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionAlgorithm::SymmetricDefault => "SYMMETRIC_DEFAULT",
            EncryptionAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            EncryptionAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            EncryptionAlgorithm::Sm2Pke => "SM2PKE",
        }
    }

    /// Looks up a KMS API name. Matching is exact, as in the KMS API.
    pub fn from_kms_name(name: &str) -> Option<EncryptionAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
    }
}

impl fmt::Display for EncryptionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn parse_algorithm(
    node: &Node,
    path: &JsonPath,
    problems: &mut Problems,
) -> Option<EncryptionAlgorithm> {
    let name = problems.expect_str(node, path)?;
    let algorithm = EncryptionAlgorithm::from_kms_name(name);
    if algorithm.is_none() {
        let valid: Vec<&str> = EncryptionAlgorithm::ALL
            .iter()
            .map(|algorithm| algorithm.as_str())
            .collect();
        problems.push(
            path,
            format!(
                "unknown encryption algorithm {name:?}; expected one of {}",
                valid.join(", ")
            ),
        );
    }
    algorithm
}
