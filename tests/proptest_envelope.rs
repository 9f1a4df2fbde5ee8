//! Property: the BER and DER encodings of one envelope open to the same plaintext.
//!
//! Each case encrypts a random plaintext with AES-256-CBC under a random content key and IV.
//! It encrypts the content key with RSAES-OAEP (SHA-256, MGF1-SHA-256) to a recipient key
//! made once per run. The result is encoded in the shapes KMS and LocalStack send: DER with
//! primitive content, LocalStack's version 0 DER, and BER with indefinite lengths and the
//! content split into OCTET STRING segments of random size.

mod envelope_support;

use std::sync::OnceLock;

use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use enclave_broker::envelope::{self, EnvelopeError, RecipientKey, RsaBits};
use envelope_support::{Lengths, SampleParts};
use proptest::prelude::*;

/// Returns the recipient key of every case, made once because RSA key generation is too slow
/// to repeat per case.
fn recipient_key() -> &'static RecipientKey {
    static KEY: OnceLock<RecipientKey> = OnceLock::new();
    KEY.get_or_init(|| RecipientKey::generate(RsaBits::Rsa2048).unwrap())
}

/// Encrypts `plaintext` for `key` as KMS does and returns the envelope's parts.
fn seal(key: &RecipientKey, content_key: &[u8; 32], iv: [u8; 16], plaintext: &[u8]) -> SampleParts {
    let public_key = PublicEncryptingKey::from_der(&key.public_key_der()).unwrap();
    let public_key = OaepPublicEncryptingKey::new(public_key).unwrap();
    let mut encrypted_key = vec![0u8; public_key.ciphertext_size()];
    let written = public_key
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            content_key,
            &mut encrypted_key,
            None,
        )
        .unwrap()
        .len();
    encrypted_key.truncate(written);

    let cipher_key = UnboundCipherKey::new(&AES_256, content_key).unwrap();
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(cipher_key).unwrap();
    let mut ciphertext = plaintext.to_vec();
    cipher
        .less_safe_encrypt(
            &mut ciphertext,
            EncryptionContext::Iv128(FixedLength::from(iv)),
        )
        .unwrap();

    SampleParts {
        subject_key_identifier: key.subject_key_identifier(),
        encrypted_key,
        iv,
        ciphertext,
    }
}

/// Opens `cms` with the recipient key and returns the plaintext bytes.
fn open(cms: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    envelope::open(cms, recipient_key()).map(|plaintext| plaintext.expose().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ber_and_der_open_to_same_plaintext(
        content_key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 1..2048),
        segment_len in 1usize..=200,
    ) {
        let parts = seal(recipient_key(), &content_key, iv, &plaintext);
        let der = parts.kms_envelope(Lengths::Definite).encode();
        let localstack_der = parts.localstack_envelope().encode();
        let mut ber = parts.kms_envelope(Lengths::Indefinite);
        ber.encrypted_content = parts.segmented_content(segment_len, Lengths::Indefinite);
        let ber = ber.encode();
        prop_assert_ne!(&ber, &der);

        prop_assert_eq!(open(&der).unwrap(), plaintext.clone());
        prop_assert_eq!(open(&localstack_der).unwrap(), plaintext.clone());
        prop_assert_eq!(open(&ber).unwrap(), plaintext);
    }

    /// BER allows definite and indefinite lengths side by side, and a constructed `[0]` with
    /// a definite length around the segments.
    #[test]
    fn mixed_length_forms_open_to_same_plaintext(
        content_key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 1..512),
        segment_len in 1usize..=64,
        outer_indefinite in any::<bool>(),
        content_indefinite in any::<bool>(),
    ) {
        let parts = seal(recipient_key(), &content_key, iv, &plaintext);
        let outer = if outer_indefinite { Lengths::Indefinite } else { Lengths::Definite };
        let content = if content_indefinite { Lengths::Indefinite } else { Lengths::Definite };
        let mut envelope = parts.kms_envelope(outer);
        envelope.encrypted_content = parts.segmented_content(segment_len, content);

        prop_assert_eq!(open(&envelope.encode()).unwrap(), plaintext);
    }
}
