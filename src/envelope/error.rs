//! Errors from opening an envelope or from loading or generating a recipient key.

use super::ber::Tag;
use super::recipient_key::RsaBits;

/// Errors of the envelope module, grouped by cause: malformed BER, a well-formed envelope in a
/// shape that KMS does not produce, an envelope for another key, failed decryption, and
/// recipient key problems.
///
/// Messages name the structure or field (with RFC 5652 field names), the expected and the found
/// value, and a byte offset from the start of the envelope. They never contain key material or
/// plaintext; subjectKeyIdentifier values are hashes of public keys.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    // Malformed input: the bytes are not valid BER for the structure expected.
    #[error("{structure}: truncated at offset {offset}: {needed} bytes needed, {available} left")]
    Truncated {
        structure: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },

    #[error("{structure}: expected {expected} at offset {offset}, found {found}")]
    UnexpectedTag {
        structure: &'static str,
        expected: Tag,
        found: Tag,
        offset: usize,
    },

    #[error("{structure}: expected {expected} at offset {offset}, found {found}")]
    UnexpectedChoice {
        structure: &'static str,
        /// The alternatives of the ASN.1 CHOICE, with their tags.
        expected: &'static str,
        found: Tag,
        offset: usize,
    },

    #[error("{structure}: missing; expected {expected} at offset {offset}")]
    Missing {
        structure: &'static str,
        expected: Tag,
        offset: usize,
    },

    #[error("{structure}: unexpected {found} at offset {offset} after the last field")]
    UnexpectedElement {
        structure: &'static str,
        found: Tag,
        offset: usize,
    },

    #[error("{structure}: invalid encoding at offset {offset}: {reason}")]
    InvalidEncoding {
        structure: &'static str,
        offset: usize,
        reason: &'static str,
    },

    #[error("{structure}: nesting deeper than {max} levels at offset {offset}")]
    TooDeep {
        structure: &'static str,
        offset: usize,
        max: usize,
    },

    #[error("trailing data after {structure}: {len} bytes at offset {offset}")]
    TrailingData {
        structure: &'static str,
        len: usize,
        offset: usize,
    },

    // Well-formed, but not an envelope that KMS or LocalStack produces.
    #[error("{field}: expected {expected}, found {found}")]
    UnexpectedContentType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },

    #[error(
        "{structure}: version {found} at offset {offset} is not supported; expected {expected}"
    )]
    UnsupportedVersion {
        structure: &'static str,
        found: u32,
        expected: &'static str,
        offset: usize,
    },

    #[error("{field} at offset {offset} is not supported: {reason}")]
    UnsupportedField {
        field: &'static str,
        offset: usize,
        reason: &'static str,
    },

    #[error("EnvelopedData has {found} recipientInfos; expected exactly 1")]
    RecipientCount { found: usize },

    #[error(
        "EnvelopedData.recipientInfos: {kind} at offset {offset} is not supported; \
         expected a KeyTransRecipientInfo (SEQUENCE)"
    )]
    UnsupportedRecipientInfo { kind: &'static str, offset: usize },

    #[error(
        "KeyTransRecipientInfo.rid: subjectKeyIdentifier at offset {offset} is {found} bytes; \
         expected 32 (SHA-256 of the recipient SubjectPublicKeyInfo)"
    )]
    InvalidSubjectKeyIdentifierLength { found: usize, offset: usize },

    #[error(
        "keyEncryptionAlgorithm: unsupported algorithm {found}; \
         expected 1.2.840.113549.1.1.7 (id-RSAES-OAEP)"
    )]
    UnsupportedKeyEncryptionAlgorithm { found: String },

    #[error(
        "keyEncryptionAlgorithm: unsupported OAEP parameters \
         (need SHA-256 / MGF1-SHA-256, no label): {reason} at offset {offset}"
    )]
    UnsupportedOaepParameters { reason: String, offset: usize },

    #[error(
        "contentEncryptionAlgorithm: unsupported algorithm {found}; \
         expected 2.16.840.1.101.3.4.1.42 (id-aes256-CBC)"
    )]
    UnsupportedContentEncryptionAlgorithm { found: String },

    #[error(
        "contentEncryptionAlgorithm: IV at offset {offset} is {found} bytes; aes256-CBC needs 16"
    )]
    InvalidIvLength { found: usize, offset: usize },

    #[error("EncryptedContentInfo.encryptedContent is absent; detached content is not supported")]
    MissingEncryptedContent,

    #[error(
        "EncryptedContentInfo.encryptedContent is {len} bytes; \
         AES-CBC ciphertext must be a non-zero multiple of 16 bytes"
    )]
    InvalidCiphertextLength { len: usize },

    // The envelope is for another key, or decryption failed.
    #[error(
        "the envelope was encrypted for another recipient key: its subjectKeyIdentifier is \
         {found}, but this key's is {expected}"
    )]
    RecipientMismatch {
        /// SHA-256 of this key's SubjectPublicKeyInfo, in hex.
        expected: String,
        /// subjectKeyIdentifier from the envelope, in hex.
        found: String,
    },

    #[error("could not decrypt the content-encryption key with the recipient private key")]
    KeyDecryptionFailed,

    #[error("content-encryption key is {found} bytes; aes256-CBC needs 32")]
    InvalidContentKeyLength { found: usize },

    #[error(
        "could not decrypt encryptedContent with aes256-CBC: invalid padding \
         (wrong content-encryption key or corrupted ciphertext)"
    )]
    ContentDecryptionFailed,

    // Recipient key problems.
    #[error("unsupported RSA key size {bits} bits; expected 2048, 3072 or 4096")]
    UnsupportedKeySize { bits: u32 },

    #[error("could not generate an {bits} key pair")]
    KeyGenerationFailed { bits: RsaBits },

    #[error("invalid recipient private key (expected an RSA key in PKCS#8 DER): {reason}")]
    InvalidPrivateKey { reason: &'static str },

    #[error("could not encode the recipient public key as SubjectPublicKeyInfo DER")]
    PublicKeyEncodingFailed,
}
