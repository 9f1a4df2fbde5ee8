//! Decryption of the encryptedContent with AES-256-CBC and PKCS #7 padding.

use std::fmt;

use aws_lc_rs::cipher::{AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use super::EnvelopeError;
use super::algorithm::{AES_BLOCK_LEN, AES_CBC_IV_LEN};
use crate::secret::SecretBytes;

/// Length of an AES-256 key in bytes.
pub(crate) const CONTENT_KEY_LEN: usize = 32;

/// The AES-256 content-encryption key recovered from encryptedKey. It is wiped on drop, has no
/// `Clone`, and its `Debug` output is the type name only.
pub(crate) struct ContentEncryptionKey(Zeroizing<[u8; CONTENT_KEY_LEN]>);

impl ContentEncryptionKey {
    /// Copies a decrypted key, which must be 32 bytes long.
    pub(crate) fn from_slice(key: &[u8]) -> Result<Self, EnvelopeError> {
        let mut bytes = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        if key.len() != CONTENT_KEY_LEN {
            return Err(EnvelopeError::InvalidContentKeyLength { found: key.len() });
        }
        bytes.copy_from_slice(key);
        Ok(ContentEncryptionKey(bytes))
    }
}

impl fmt::Debug for ContentEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentEncryptionKey")
    }
}

/// Decrypts `ciphertext` with AES-256-CBC and removes the PKCS #7 padding.
///
/// Fails with [`EnvelopeError::InvalidCiphertextLength`] unless the ciphertext is a non-zero
/// multiple of 16 bytes, and with [`EnvelopeError::ContentDecryptionFailed`] when the padding
/// is invalid, which is what a wrong key or corrupted ciphertext usually produces.
pub(crate) fn decrypt_aes256_cbc(
    key: &ContentEncryptionKey,
    iv: &[u8; AES_CBC_IV_LEN],
    ciphertext: &[u8],
) -> Result<SecretBytes, EnvelopeError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(AES_BLOCK_LEN) {
        return Err(EnvelopeError::InvalidCiphertextLength {
            len: ciphertext.len(),
        });
    }

    // Any failure below means the key or padding was rejected. aws-lc-rs wipes its copy of the
    // key when `decrypting_key` is dropped.
    let unbound = UnboundCipherKey::new(&AES_256, key.0.as_slice())
        .map_err(|_| EnvelopeError::ContentDecryptionFailed)?;
    let decrypting_key = PaddedBlockDecryptingKey::cbc_pkcs7(unbound)
        .map_err(|_| EnvelopeError::ContentDecryptionFailed)?;

    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let context = DecryptionContext::Iv128(FixedLength::from(*iv));
    let plaintext_len = decrypting_key
        .decrypt(buffer.as_mut_slice(), context)
        .map_err(|_| EnvelopeError::ContentDecryptionFailed)?
        .len();
    buffer.truncate(plaintext_len);

    // `take` moves the plaintext out without copying; the empty vector left behind is harmless.
    Ok(SecretBytes::new(std::mem::take(&mut *buffer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AES cases from Wycheproof `aes_cbc_pkcs5_test.json` (C2SP/wycheproof, Apache-2.0).
    fn wycheproof_aes256_cases() -> Vec<serde_json::Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/wycheproof/aes_cbc_pkcs5_test.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        file["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|group| group["keySize"] == 256)
            .flat_map(|group| group["tests"].as_array().unwrap().clone())
            .collect()
    }

    fn hex_field(case: &serde_json::Value, name: &str) -> Vec<u8> {
        hex::decode(case[name].as_str().unwrap()).unwrap()
    }

    #[test]
    fn decrypts_wycheproof_aes256_cbc_vectors() {
        let cases = wycheproof_aes256_cases();
        assert_eq!(cases.len(), 72, "AES-256 cases in the Wycheproof file");

        for case in &cases {
            let id = &case["tcId"];
            let key = ContentEncryptionKey::from_slice(&hex_field(case, "key")).unwrap();
            let iv: [u8; 16] = hex_field(case, "iv").try_into().unwrap();
            let result = decrypt_aes256_cbc(&key, &iv, &hex_field(case, "ct"));
            match case["result"].as_str().unwrap() {
                "valid" => {
                    let plaintext = result.unwrap_or_else(|error| panic!("tcId {id}: {error}"));
                    assert_eq!(plaintext.expose(), hex_field(case, "msg"), "tcId {id}");
                }
                "invalid" => assert!(result.is_err(), "tcId {id} decrypted but is invalid"),
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }

    #[test]
    fn rejects_content_key_of_wrong_length() {
        let error = ContentEncryptionKey::from_slice(&[0u8; 16]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "content-encryption key is 16 bytes; aes256-CBC needs 32"
        );
    }

    #[test]
    fn rejects_ciphertext_not_a_block_multiple() {
        let key = ContentEncryptionKey::from_slice(&[7u8; 32]).unwrap();
        for len in [0, 15, 17] {
            let error = decrypt_aes256_cbc(&key, &[0u8; 16], &vec![0u8; len]).unwrap_err();
            assert!(
                matches!(error, EnvelopeError::InvalidCiphertextLength { len: found } if found == len),
                "length {len}: {error}"
            );
        }
    }

    #[test]
    fn content_key_debug_prints_type_name_only() {
        let key = ContentEncryptionKey::from_slice(&[0x41u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "ContentEncryptionKey");
    }
}
