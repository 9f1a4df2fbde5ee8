//! The two AlgorithmIdentifiers of an envelope, read into types that can only hold the
//! algorithms this module implements.

use super::EnvelopeError;
use super::ber::{Reader, Tag};
use super::oid::{ID_AES256_CBC, ID_MGF1, ID_RSAES_OAEP, ID_SHA256, ObjectIdentifier};

/// AES block size in bytes. CBC ciphertext with PKCS #7 padding is a non-zero multiple of it.
pub(crate) const AES_BLOCK_LEN: usize = 16;

/// Size of an AES-CBC initialization vector in bytes: one block.
pub(crate) const AES_CBC_IV_LEN: usize = AES_BLOCK_LEN;

/// keyEncryptionAlgorithm of a KeyTransRecipientInfo (RFC 5652 section 6.2.1).
///
/// The only value is RSAES-OAEP (RFC 8017 appendix A.2.1) with parameters written out in full:
///
/// ```text
/// RSAES-OAEP-params ::= SEQUENCE {
///     hashAlgorithm      [0] HashAlgorithm     DEFAULT sha1,
///     maskGenAlgorithm   [1] MaskGenAlgorithm  DEFAULT mgf1SHA1,
///     pSourceAlgorithm   [2] PSourceAlgorithm  DEFAULT pSpecifiedEmpty }
/// ```
///
/// hashAlgorithm must be id-sha256 and maskGenAlgorithm id-mgf1 with id-sha256, each digest
/// identifier with NULL or absent parameters. Omitted hash or mask generation fields mean SHA-1
/// by definition, so they are rejected, as are absent parameters. pSourceAlgorithm must be
/// absent: an explicit empty label is equivalent but never sent by KMS or LocalStack, and any
/// label is rejected rather than interpreted.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEncryptionAlgorithm {
    /// RSAES-OAEP with SHA-256, MGF1 with SHA-256 and an empty label.
    RsaesOaepSha256,
}

/// contentEncryptionAlgorithm of an EncryptedContentInfo (RFC 5652 section 6.1).
///
/// The only value is id-aes256-CBC (RFC 3565 section 4.1), whose parameters are the IV as an
/// OCTET STRING of 16 bytes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncryptionAlgorithm {
    /// AES-256 in CBC mode with PKCS #7 padding.
    Aes256Cbc { iv: [u8; AES_CBC_IV_LEN] },
}

impl KeyEncryptionAlgorithm {
    /// Reads the keyEncryptionAlgorithm AlgorithmIdentifier.
    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, EnvelopeError> {
        reader.read_constructed("keyEncryptionAlgorithm", Tag::SEQUENCE, |identifier| {
            let algorithm = identifier.read_oid("keyEncryptionAlgorithm.algorithm")?;
            if algorithm != ID_RSAES_OAEP {
                return Err(EnvelopeError::UnsupportedKeyEncryptionAlgorithm {
                    found: algorithm.describe(),
                });
            }

            let offset = identifier.position();
            match identifier.peek_tag() {
                Some(Tag::SEQUENCE) => read_oaep_parameters(identifier)?,
                Some(_) => return Err(unsupported_oaep("parameters are not a SEQUENCE", offset)),
                None => return Err(unsupported_oaep("parameters are absent", offset)),
            }
            Ok(KeyEncryptionAlgorithm::RsaesOaepSha256)
        })
    }
}

impl ContentEncryptionAlgorithm {
    /// Reads the contentEncryptionAlgorithm AlgorithmIdentifier.
    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, EnvelopeError> {
        reader.read_constructed("contentEncryptionAlgorithm", Tag::SEQUENCE, |identifier| {
            let algorithm = identifier.read_oid("contentEncryptionAlgorithm.algorithm")?;
            if algorithm != ID_AES256_CBC {
                return Err(EnvelopeError::UnsupportedContentEncryptionAlgorithm {
                    found: algorithm.describe(),
                });
            }

            let (iv, offset) = identifier
                .read_octet_string("contentEncryptionAlgorithm.parameters", Tag::OCTET_STRING)?;
            let iv = <[u8; AES_CBC_IV_LEN]>::try_from(iv.as_ref()).map_err(|_| {
                EnvelopeError::InvalidIvLength {
                    found: iv.len(),
                    offset,
                }
            })?;
            Ok(ContentEncryptionAlgorithm::Aes256Cbc { iv })
        })
    }
}

fn unsupported_oaep(reason: impl Into<String>, offset: usize) -> EnvelopeError {
    EnvelopeError::UnsupportedOaepParameters {
        reason: reason.into(),
        offset,
    }
}

/// Reads RSAES-OAEP-params and accepts only SHA-256, MGF1 with SHA-256 and no label.
fn read_oaep_parameters(reader: &mut Reader<'_>) -> Result<(), EnvelopeError> {
    reader.read_constructed("RSAES-OAEP-params", Tag::SEQUENCE, |fields| {
        let hash_tag = Tag::context(0, true);
        if fields.peek_tag() != Some(hash_tag) {
            let reason = "hashAlgorithm [0] is absent, which means SHA-1";
            return Err(unsupported_oaep(reason, fields.position()));
        }
        fields.read_constructed("RSAES-OAEP-params.hashAlgorithm", hash_tag, |hash| {
            read_sha256_identifier(hash, "RSAES-OAEP-params.hashAlgorithm", "hashAlgorithm")
        })?;

        let mask_tag = Tag::context(1, true);
        if fields.peek_tag() != Some(mask_tag) {
            let reason = "maskGenAlgorithm [1] is absent, which means MGF1 with SHA-1";
            return Err(unsupported_oaep(reason, fields.position()));
        }
        fields.read_constructed("RSAES-OAEP-params.maskGenAlgorithm", mask_tag, |mask| {
            read_mgf1_sha256_identifier(mask)
        })?;

        let label_tag = Tag::context(2, true);
        if fields.peek_tag() == Some(label_tag) {
            let reason = "pSourceAlgorithm [2] is present (OAEP labels are not supported)";
            return Err(unsupported_oaep(reason, fields.position()));
        }
        Ok(())
    })
}

/// Reads `AlgorithmIdentifier { id-mgf1, AlgorithmIdentifier { id-sha256, NULL } }`.
fn read_mgf1_sha256_identifier(reader: &mut Reader<'_>) -> Result<(), EnvelopeError> {
    const STRUCTURE: &str = "RSAES-OAEP-params.maskGenAlgorithm";
    reader.read_constructed(STRUCTURE, Tag::SEQUENCE, |identifier| {
        let offset = identifier.position();
        let algorithm = identifier.read_oid(STRUCTURE)?;
        if algorithm != ID_MGF1 {
            let reason = format!("maskGenAlgorithm is {}, not id-mgf1", algorithm.describe());
            return Err(unsupported_oaep(reason, offset));
        }
        if identifier.is_at_end() {
            let reason = "maskGenAlgorithm parameters are absent";
            return Err(unsupported_oaep(reason, identifier.position()));
        }
        read_sha256_identifier(identifier, STRUCTURE, "maskGenAlgorithm hash")
    })
}

/// Reads `AlgorithmIdentifier { id-sha256, NULL }`, where the NULL may also be absent
/// (RFC 5754 section 2 allows both).
fn read_sha256_identifier(
    reader: &mut Reader<'_>,
    structure: &'static str,
    field: &str,
) -> Result<(), EnvelopeError> {
    reader.read_constructed(structure, Tag::SEQUENCE, |identifier| {
        let offset = identifier.position();
        let algorithm: ObjectIdentifier<'_> = identifier.read_oid(structure)?;
        if algorithm != ID_SHA256 {
            let reason = format!("{field} is {}, not id-sha256", algorithm.describe());
            return Err(unsupported_oaep(reason, offset));
        }
        if identifier.peek_tag() == Some(Tag::NULL) {
            identifier.read_null(structure)?;
        }
        Ok(())
    })
}
