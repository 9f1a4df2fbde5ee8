//! The RSA key pair whose public half goes into the attestation document and whose private half
//! unwraps the content-encryption key.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use zeroize::Zeroizing;

use super::EnvelopeError;
use super::algorithm::KeyEncryptionAlgorithm;
use super::content::ContentEncryptionKey;
use super::enveloped_data::SUBJECT_KEY_IDENTIFIER_LEN;
use crate::secret::SecretBytes;

/// RSA modulus sizes a recipient key may have. Larger keys are not offered because the
/// SubjectPublicKeyInfo of an RSA-8192 key (1062 bytes with exponent 65537) exceeds the 1024
/// bytes an attestation document's `public_key` field may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaBits {
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl RsaBits {
    /// Modulus size in bits.
    pub const fn bits(self) -> u32 {
        match self {
            RsaBits::Rsa2048 => 2048,
            RsaBits::Rsa3072 => 3072,
            RsaBits::Rsa4096 => 4096,
        }
    }

    fn key_size(self) -> KeySize {
        match self {
            RsaBits::Rsa2048 => KeySize::Rsa2048,
            RsaBits::Rsa3072 => KeySize::Rsa3072,
            RsaBits::Rsa4096 => KeySize::Rsa4096,
        }
    }
}

impl TryFrom<u32> for RsaBits {
    type Error = EnvelopeError;

    fn try_from(bits: u32) -> Result<Self, EnvelopeError> {
        match bits {
            2048 => Ok(RsaBits::Rsa2048),
            3072 => Ok(RsaBits::Rsa3072),
            4096 => Ok(RsaBits::Rsa4096),
            _ => Err(EnvelopeError::UnsupportedKeySize { bits }),
        }
    }
}

impl fmt::Display for RsaBits {
    /// Writes `RSA-2048`, `RSA-3072` or `RSA-4096`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RSA-{}", self.bits())
    }
}

/// The recipient's RSA private key, used for RSAES-OAEP with SHA-256 and MGF1-SHA-256.
///
/// The key material lives inside aws-lc, which clears it when the key is freed. The type has no
/// `Clone`, and its `Debug` output is the type name only.
pub struct RecipientKey {
    key: OaepPrivateDecryptingKey,
    bits: RsaBits,
    public_key_der: Vec<u8>,
    subject_key_identifier: [u8; SUBJECT_KEY_IDENTIFIER_LEN],
}

impl RecipientKey {
    /// Generates a new key pair from the system random number generator.
    pub fn generate(bits: RsaBits) -> Result<Self, EnvelopeError> {
        let key = PrivateDecryptingKey::generate(bits.key_size())
            .map_err(|_| EnvelopeError::KeyGenerationFailed { bits })?;
        Self::from_private_key(key)
    }

    /// Loads an RSA private key from PKCS #8 DER (PrivateKeyInfo). The key must be 2048, 3072
    /// or 4096 bits.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, EnvelopeError> {
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|rejected| {
            EnvelopeError::InvalidPrivateKey {
                reason: rejected.description_(),
            }
        })?;
        Self::from_private_key(key)
    }

    fn from_private_key(key: PrivateDecryptingKey) -> Result<Self, EnvelopeError> {
        let bits = RsaBits::try_from(u32::try_from(key.key_size_bits()).unwrap_or(u32::MAX))?;

        let public_key_der = key
            .public_key()
            .as_der()
            .map_err(|_| EnvelopeError::PublicKeyEncodingFailed)?
            .as_ref()
            .to_vec();
        let mut subject_key_identifier = [0u8; SUBJECT_KEY_IDENTIFIER_LEN];
        subject_key_identifier.copy_from_slice(digest(&SHA256, &public_key_der).as_ref());

        // In aws-lc-rs 1.19 `new` only stores the key and always succeeds.
        let key =
            OaepPrivateDecryptingKey::new(key).map_err(|_| EnvelopeError::InvalidPrivateKey {
                reason: "not usable for RSA-OAEP",
            })?;
        Ok(RecipientKey {
            key,
            bits,
            public_key_der,
            subject_key_identifier,
        })
    }

    /// Returns the public key as SubjectPublicKeyInfo DER (294 bytes for RSA-2048), the form an
    /// attestation document's `public_key` carries to KMS.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key_der.clone()
    }

    /// Returns SHA-256 of [`Self::public_key_der`], which KMS puts in the envelope as the
    /// recipient's subjectKeyIdentifier.
    pub fn subject_key_identifier(&self) -> [u8; SUBJECT_KEY_IDENTIFIER_LEN] {
        self.subject_key_identifier
    }

    pub fn bits(&self) -> RsaBits {
        self.bits
    }

    /// Decrypts the encryptedKey of a KeyTransRecipientInfo into an AES-256 key.
    pub(crate) fn unwrap_content_key(
        &self,
        algorithm: KeyEncryptionAlgorithm,
        encrypted_key: &[u8],
    ) -> Result<ContentEncryptionKey, EnvelopeError> {
        let content_key = match algorithm {
            KeyEncryptionAlgorithm::RsaesOaepSha256 => self.decrypt_oaep_sha256(encrypted_key)?,
        };
        ContentEncryptionKey::from_slice(content_key.expose())
    }

    /// Decrypts `ciphertext` with RSAES-OAEP, SHA-256, MGF1-SHA-256 and an empty label.
    pub(crate) fn decrypt_oaep_sha256(
        &self,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, EnvelopeError> {
        let mut buffer = Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let plaintext_len = self
            .key
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                ciphertext,
                buffer.as_mut_slice(),
                None,
            )
            .map_err(|_| EnvelopeError::KeyDecryptionFailed)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(SecretBytes::new(std::mem::take(&mut *buffer)))
    }
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecipientKey")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wycheproof_file(bits: u32) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/wycheproof/rsa_oaep_{bits}_sha256_mgf1sha256_test.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn hex_field(case: &serde_json::Value, name: &str) -> Vec<u8> {
        hex::decode(case[name].as_str().unwrap()).unwrap()
    }

    /// Runs the Wycheproof RSA-OAEP-SHA256 vectors (C2SP/wycheproof, Apache-2.0) through the
    /// primitive that unwraps content keys. That primitive always uses the empty label, as
    /// KMS does, so cases encrypted under a non-empty label must fail: they show that the
    /// label hash is checked. Every other case decrypts to `msg` if valid and fails if invalid.
    fn check_wycheproof_oaep(bits: u32) {
        let file = wycheproof_file(bits);
        let mut checked = 0;
        for group in file["testGroups"].as_array().unwrap() {
            let key = RecipientKey::from_pkcs8_der(&hex_field(group, "privateKeyPkcs8")).unwrap();
            assert_eq!(key.bits().bits(), bits);

            for case in group["tests"].as_array().unwrap() {
                let id = &case["tcId"];
                let result = key.decrypt_oaep_sha256(&hex_field(case, "ct"));
                let has_label = !hex_field(case, "label").is_empty();
                match (case["result"].as_str().unwrap(), has_label) {
                    ("valid", false) => {
                        let plaintext = result.unwrap_or_else(|error| panic!("tcId {id}: {error}"));
                        assert_eq!(plaintext.expose(), hex_field(case, "msg"), "tcId {id}");
                    }
                    ("valid" | "invalid", _) => {
                        let error = result
                            .err()
                            .unwrap_or_else(|| panic!("tcId {id} decrypted"));
                        assert!(
                            matches!(error, EnvelopeError::KeyDecryptionFailed),
                            "tcId {id}"
                        );
                    }
                    (other, _) => panic!("tcId {id}: unexpected result {other}"),
                }
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            file["numberOfTests"].as_u64().unwrap(),
            "cases checked"
        );
    }

    #[test]
    fn decrypts_wycheproof_oaep_2048_vectors() {
        check_wycheproof_oaep(2048);
    }

    #[test]
    fn decrypts_wycheproof_oaep_3072_vectors() {
        check_wycheproof_oaep(3072);
    }

    #[test]
    fn decrypts_wycheproof_oaep_4096_vectors() {
        check_wycheproof_oaep(4096);
    }

    #[test]
    fn generated_key_has_spki_and_matching_identifier() {
        let key = RecipientKey::generate(RsaBits::Rsa2048).unwrap();
        let public_key_der = key.public_key_der();
        assert_eq!(public_key_der.len(), 294);
        assert_eq!(key.bits(), RsaBits::Rsa2048);
        assert_eq!(
            key.subject_key_identifier().as_slice(),
            digest(&SHA256, &public_key_der).as_ref()
        );
    }

    #[test]
    fn recipient_key_debug_prints_type_name_only() {
        let key = RecipientKey::generate(RsaBits::Rsa2048).unwrap();
        assert_eq!(format!("{key:?}"), "RecipientKey");
    }

    #[test]
    fn rsa_bits_converts_supported_sizes_only() {
        assert_eq!(RsaBits::try_from(3072).unwrap(), RsaBits::Rsa3072);
        assert_eq!(RsaBits::Rsa4096.to_string(), "RSA-4096");
        let error = RsaBits::try_from(1024).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported RSA key size 1024 bits; expected 2048, 3072 or 4096"
        );
    }

    #[test]
    fn rejects_pkcs8_that_is_not_a_key() {
        let error = RecipientKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap_err();
        assert!(
            matches!(error, EnvelopeError::InvalidPrivateKey { .. }),
            "{error}"
        );
    }
}
