//! Envelopes that must open: real KMS samples, their DER re-encoding, the LocalStack shape,
//! segmented encrypted content, and envelopes for freshly generated keys.

mod envelope_support;

use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use enclave_broker::envelope::{
    self, ContentEncryptionAlgorithm, EnvelopedData, KeyEncryptionAlgorithm, RecipientIdentifier,
    RecipientKey, RsaBits,
};
use envelope_support::*;

#[test]
fn opens_kms_ber_envelope_from_nitro_sdk_go() {
    let plaintext = envelope::open(&edgebit_envelope(), &edgebit_key()).unwrap();
    assert_eq!(plaintext.expose(), edgebit_plaintext());
}

#[test]
fn opens_kms_ber_envelope_from_enclaver() {
    let plaintext = envelope::open(&enclaver_envelope(), &enclaver_key()).unwrap();
    assert_eq!(plaintext.expose(), b"Hello, World");
    assert_eq!(plaintext.expose(), enclaver_plaintext());
}

#[test]
fn parses_kms_envelope_fields() {
    let cms = edgebit_envelope();
    let enveloped_data = EnvelopedData::parse(&cms).unwrap();
    assert_eq!(enveloped_data.version(), 2);

    let recipient_info = enveloped_data.recipient_info();
    assert_eq!(recipient_info.version(), 2);
    assert_eq!(
        *recipient_info.rid(),
        RecipientIdentifier::SubjectKeyIdentifier(edgebit_key().subject_key_identifier())
    );
    assert_eq!(
        recipient_info.key_encryption_algorithm(),
        KeyEncryptionAlgorithm::RsaesOaepSha256
    );
    assert_eq!(recipient_info.encrypted_key().len(), 256);
}

/// Expected values from `awssdkc_cms_test_expected.json`, which records what the
/// aws-nitro-enclaves-sdk-c test asserts for its two KMS samples.
fn check_aws_sdk_c_sample(envelope_file: &str, expected_key: &str) {
    let expected: serde_json::Value =
        serde_json::from_slice(&fixture("awssdkc_cms_test_expected.json")).unwrap();
    let expected = &expected[expected_key];
    let hex_field = |name: &str| hex::decode(expected[name].as_str().unwrap()).unwrap();

    let cms = fixture(envelope_file);
    let enveloped_data = EnvelopedData::parse(&cms).unwrap();
    assert_eq!(
        enveloped_data.recipient_info().encrypted_key(),
        hex_field("encrypted_key")
    );

    let content_info = enveloped_data.encrypted_content_info();
    let ContentEncryptionAlgorithm::Aes256Cbc { iv } = content_info.content_encryption_algorithm()
    else {
        panic!("not aes256-CBC");
    };
    assert_eq!(iv.as_slice(), hex_field("iv"));
    assert_eq!(content_info.encrypted_content(), hex_field("ciphertext"));
}

#[test]
fn parses_aws_sdk_c_sample_with_segmented_content() {
    check_aws_sdk_c_sample("awssdkc_cms_test_input_ber.ber", "input_ber");
}

#[test]
fn parses_aws_sdk_c_sample_with_primitive_content() {
    check_aws_sdk_c_sample("awssdkc_cms_test_input_ber_w_ctx.ber", "input_ber_w_ctx");
}

#[test]
fn test_encoder_reproduces_kms_sample_bytes() {
    // The mutation tests build on this encoder, so it must rebuild a real sample exactly.
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    assert_eq!(
        parts.kms_envelope(Lengths::Indefinite).encode(),
        edgebit_envelope()
    );
}

#[test]
fn opens_der_reencoding_of_kms_envelope() {
    // OpenSSL's DER output for the same envelope (see tests/fixtures/kms/SOURCES.md).
    let der = fixture("edgebit_sdkgo_ciphertext_for_recipient.der");
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    assert_eq!(parts.kms_envelope(Lengths::Definite).encode(), der);
    assert_eq!(der[..2], [0x30, 0x82]);

    let plaintext = envelope::open(&der, &edgebit_key()).unwrap();
    assert_eq!(plaintext.expose(), edgebit_plaintext());
}

#[test]
fn opens_kms_ber_envelope_with_chunked_content() {
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    assert_eq!(parts.ciphertext.len(), 48);

    for (segment_len, lengths) in [
        (16, Lengths::Indefinite),
        (5, Lengths::Indefinite),
        (1, Lengths::Indefinite),
        (16, Lengths::Definite),
    ] {
        let mut envelope = parts.kms_envelope(Lengths::Indefinite);
        envelope.encrypted_content = parts.segmented_content(segment_len, lengths);
        let cms = envelope.encode();

        let parsed = EnvelopedData::parse(&cms).unwrap();
        assert_eq!(
            parsed.encrypted_content_info().encrypted_content(),
            parts.ciphertext
        );
        let plaintext = envelope::open(&cms, &edgebit_key())
            .unwrap_or_else(|error| panic!("{segment_len}-byte segments, {lengths:?}: {error}"));
        assert_eq!(plaintext.expose(), edgebit_plaintext());
    }
}

#[test]
fn opens_envelope_with_nested_constructed_segments() {
    // BER lets a segment itself be a constructed OCTET STRING (`24`).
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    let (head, tail) = parts.ciphertext.split_at(20);
    let nested = constructed(
        0x24,
        &[&octet_string(&tail[..10]), &octet_string(&tail[10..])],
        Lengths::Indefinite,
    );
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    envelope.encrypted_content =
        constructed(0xa0, &[&octet_string(head), &nested], Lengths::Indefinite);

    let plaintext = envelope::open(&envelope.encode(), &edgebit_key()).unwrap();
    assert_eq!(plaintext.expose(), edgebit_plaintext());
}

#[test]
fn opens_kms_ber_envelope_with_primitive_content() {
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    envelope.encrypted_content = parts.primitive_content();

    let plaintext = envelope::open(&envelope.encode(), &edgebit_key()).unwrap();
    assert_eq!(plaintext.expose(), edgebit_plaintext());
}

#[test]
fn opens_localstack_shaped_envelope() {
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    let cms = parts.localstack_envelope().encode();
    assert_eq!(cms[..2], [0x30, 0x82]);

    let parsed = EnvelopedData::parse(&cms).unwrap();
    assert_eq!(parsed.version(), 0);
    assert_eq!(parsed.recipient_info().version(), 0);
    assert_eq!(
        *parsed.recipient_info().rid(),
        RecipientIdentifier::IssuerAndSerialNumber
    );

    // The same 32-byte plaintext opens from both shapes.
    let from_localstack = envelope::open(&cms, &edgebit_key()).unwrap();
    let from_kms = envelope::open(&edgebit_envelope(), &edgebit_key()).unwrap();
    assert_eq!(from_localstack.expose(), edgebit_plaintext());
    assert_eq!(from_kms.expose(), from_localstack.expose());
}

#[test]
fn parses_envelope_captured_from_localstack() {
    // No private key was kept for this capture, so it is checked by parsing and by rebuilding.
    let cms = fixture("localstack_4.13.1_ciphertext_for_recipient.der");
    let parsed = EnvelopedData::parse(&cms).unwrap();
    assert_eq!(parsed.version(), 0);

    let recipient_info = parsed.recipient_info();
    assert_eq!(recipient_info.version(), 0);
    assert_eq!(
        *recipient_info.rid(),
        RecipientIdentifier::IssuerAndSerialNumber
    );
    assert_eq!(
        recipient_info.key_encryption_algorithm(),
        KeyEncryptionAlgorithm::RsaesOaepSha256
    );
    assert_eq!(recipient_info.encrypted_key().len(), 256);

    let content_info = parsed.encrypted_content_info();
    let ContentEncryptionAlgorithm::Aes256Cbc { iv } = content_info.content_encryption_algorithm()
    else {
        panic!("not aes256-CBC");
    };
    assert_eq!(content_info.encrypted_content().len(), 48);

    // The LocalStack shape used by the other tests must match the capture byte for byte.
    let parts = SampleParts {
        subject_key_identifier: [0; 32], // not part of the LocalStack shape
        encrypted_key: recipient_info.encrypted_key().to_vec(),
        iv,
        ciphertext: content_info.encrypted_content().to_vec(),
    };
    assert_eq!(parts.localstack_envelope().encode(), cms);
}

#[test]
fn opens_envelope_with_explicit_and_absent_digest_parameters() {
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    for (hash_null, mask_null) in [(true, false), (false, true), (false, false)] {
        let algorithm = oaep_algorithm(&[
            &oaep_hash_sha256(hash_null),
            &oaep_mask_mgf1(oid::SHA256, mask_null),
        ]);
        let mut envelope = parts.kms_envelope(Lengths::Indefinite);
        envelope.recipient_infos = vec![parts.kms_recipient_info(&algorithm)];

        let plaintext = envelope::open(&envelope.encode(), &edgebit_key()).unwrap();
        assert_eq!(plaintext.expose(), edgebit_plaintext());
    }
}

/// Builds a KMS-shaped envelope for `key` the way KMS does: a random AES-256 key and IV,
/// RSAES-OAEP-SHA256 to the recipient's SubjectPublicKeyInfo, subjectKeyIdentifier = SHA-256
/// of that SubjectPublicKeyInfo.
fn seal_for(key: &RecipientKey, plaintext: &[u8]) -> Vec<u8> {
    let random = SystemRandom::new();
    let mut content_key = [0u8; 32];
    random.fill(&mut content_key).unwrap();
    let mut iv = [0u8; 16];
    random.fill(&mut iv).unwrap();

    let public_key = PublicEncryptingKey::from_der(&key.public_key_der()).unwrap();
    let public_key = OaepPublicEncryptingKey::new(public_key).unwrap();
    let mut encrypted_key = vec![0u8; public_key.ciphertext_size()];
    public_key
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &content_key,
            &mut encrypted_key,
            None,
        )
        .unwrap();

    let cipher = UnboundCipherKey::new(&AES_256, &content_key).unwrap();
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(cipher).unwrap();
    let mut ciphertext = plaintext.to_vec();
    let context = EncryptionContext::Iv128(FixedLength::from(iv));
    cipher.less_safe_encrypt(&mut ciphertext, context).unwrap();

    let parts = SampleParts {
        subject_key_identifier: key.subject_key_identifier(),
        encrypted_key,
        iv,
        ciphertext,
    };
    parts.kms_envelope(Lengths::Indefinite).encode()
}

#[test]
fn opens_envelope_for_generated_keys_of_each_size() {
    for bits in [RsaBits::Rsa2048, RsaBits::Rsa3072, RsaBits::Rsa4096] {
        let key = RecipientKey::generate(bits).unwrap();
        assert_eq!(key.bits(), bits);
        for plaintext in [&b""[..], b"x", &[0x5a; 16], &[0xa5; 4096]] {
            let cms = seal_for(&key, plaintext);
            let opened = envelope::open(&cms, &key)
                .unwrap_or_else(|error| panic!("{bits}, {} bytes: {error}", plaintext.len()));
            assert_eq!(opened.expose(), plaintext, "{bits}");
        }
    }
}

#[test]
fn generated_2048_key_has_294_byte_spki() {
    let key = RecipientKey::generate(RsaBits::Rsa2048).unwrap();
    let public_key_der = key.public_key_der();
    assert_eq!(public_key_der.len(), 294);
    assert_eq!(public_key_der[..4], [0x30, 0x82, 0x01, 0x22]);
}

#[test]
fn loaded_key_identifier_matches_kms_sample() {
    // KMS sets subjectKeyIdentifier to SHA-256 of the recipient SubjectPublicKeyInfo.
    for (cms, key) in [
        (edgebit_envelope(), edgebit_key()),
        (enclaver_envelope(), enclaver_key()),
    ] {
        let parts = SampleParts::from_envelope(&cms);
        assert_eq!(parts.subject_key_identifier, key.subject_key_identifier());
    }
}
