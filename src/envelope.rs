//! Opening `CiphertextForRecipient`: the CMS EnvelopedData that KMS `Decrypt` returns when the
//! request carries a `Recipient` attestation document.
//!
//! The envelope contains the plaintext encrypted with AES-256-CBC under a fresh content-encryption
//! key, and that key encrypted with RSAES-OAEP (SHA-256, MGF1-SHA-256) to the public key from
//! the attestation document. [`open`] reverses both steps with the matching [`RecipientKey`].
//!
//! Two shapes open: real KMS output (BER with indefinite lengths, EnvelopedData version 2, the
//! recipient named by a 32-byte subjectKeyIdentifier, encrypted content primitive or split into
//! OCTET STRING segments) and LocalStack output (DER, version 0, a placeholder
//! issuerAndSerialNumber). Anything else is rejected with an error naming the field.

mod algorithm;
mod ber;
mod content;
mod enveloped_data;
mod error;
mod oid;
mod recipient_key;

pub use algorithm::{ContentEncryptionAlgorithm, KeyEncryptionAlgorithm};
pub use ber::Tag;
pub use enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier,
};
pub use error::EnvelopeError;
pub use recipient_key::{RecipientKey, RsaBits};

use crate::secret::SecretBytes;

/// Opens a CMS EnvelopedData (BER or DER) addressed to `key` and returns the plaintext.
///
/// The envelope is parsed and checked completely before any RSA operation: exactly one
/// KeyTransRecipientInfo, RSAES-OAEP with SHA-256 and MGF1-SHA-256 and no label, aes256-CBC
/// with a 16-byte IV, no trailing bytes. A subjectKeyIdentifier must equal SHA-256 of the key's
/// SubjectPublicKeyInfo, so an envelope for another key fails with
/// [`EnvelopeError::RecipientMismatch`] instead of a decryption error. An issuerAndSerialNumber
/// is accepted without comparison because LocalStack fills it with a placeholder.
pub fn open(cms: &[u8], key: &RecipientKey) -> Result<SecretBytes, EnvelopeError> {
    let enveloped_data = EnvelopedData::parse(cms)?;
    let recipient_info = enveloped_data.recipient_info();

    if let RecipientIdentifier::SubjectKeyIdentifier(found) = recipient_info.rid() {
        let expected = key.subject_key_identifier();
        if *found != expected {
            return Err(EnvelopeError::RecipientMismatch {
                expected: hex::encode(expected),
                found: hex::encode(found),
            });
        }
    }

    let content_key = key.unwrap_content_key(
        recipient_info.key_encryption_algorithm(),
        recipient_info.encrypted_key(),
    )?;

    let encrypted_content_info = enveloped_data.encrypted_content_info();
    match encrypted_content_info.content_encryption_algorithm() {
        ContentEncryptionAlgorithm::Aes256Cbc { iv } => content::decrypt_aes256_cbc(
            &content_key,
            &iv,
            encrypted_content_info.encrypted_content(),
        ),
    }
}
