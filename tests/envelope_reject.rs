//! Envelopes that must be rejected, built by mutating real KMS samples. Each error is checked
//! by variant and, where the wording matters to an operator, by its full message.

mod envelope_support;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use enclave_broker::envelope::{self, EnvelopeError, EnvelopedData};
use envelope_support::*;

fn sample() -> SampleParts {
    SampleParts::from_envelope(&edgebit_envelope())
}

/// Opens `cms` with the sample's key and returns the error. Parsing alone must fail the same
/// way unless `needs_key` is set, which shows that no RSA operation ran before the rejection.
fn open_error(cms: &[u8], needs_key: bool) -> EnvelopeError {
    let error = envelope::open(cms, &edgebit_key()).expect_err("envelope opened");
    let parsed = EnvelopedData::parse(cms);
    if needs_key {
        assert!(parsed.is_ok(), "parse failed: {:?}", parsed.err());
    } else {
        let parse_error = parsed.expect_err("envelope parsed");
        assert_eq!(parse_error.to_string(), error.to_string());
    }
    error
}

fn with_key_encryption_algorithm(algorithm: &[u8]) -> Vec<u8> {
    let parts = sample();
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    envelope.recipient_infos = vec![parts.kms_recipient_info(algorithm)];
    envelope.encode()
}

const OAEP_MESSAGE: &str = "keyEncryptionAlgorithm: unsupported OAEP parameters \
                            (need SHA-256 / MGF1-SHA-256, no label)";

#[test]
fn rejects_trailing_bytes_after_content_info() {
    let mut cms = edgebit_envelope();
    let len = cms.len();
    cms.extend([0x00, 0x00]);
    let error = open_error(&cms, false);
    assert_eq!(
        error.to_string(),
        format!("trailing data after ContentInfo: 2 bytes at offset {len}")
    );
}

#[test]
fn rejects_two_recipient_infos() {
    let parts = sample();
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    let recipient_info = parts.kms_recipient_info(&kms_oaep_algorithm());
    envelope.recipient_infos = vec![recipient_info.clone(), recipient_info];
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "EnvelopedData has 2 recipientInfos; expected exactly 1"
    );
}

#[test]
fn rejects_empty_recipient_infos() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.recipient_infos = vec![];
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "EnvelopedData has 0 recipientInfos; expected exactly 1"
    );
}

#[test]
fn rejects_recipient_infos_other_than_key_transport() {
    for (tag, kind) in [
        (0xa1, "kari [1] (KeyAgreeRecipientInfo)"),
        (0xa2, "kekri [2] (KEKRecipientInfo)"),
        (0xa3, "pwri [3] (PasswordRecipientInfo)"),
        (0xa4, "ori [4] (OtherRecipientInfo)"),
    ] {
        let mut envelope = sample().kms_envelope(Lengths::Indefinite);
        envelope.recipient_infos = vec![constructed(tag, &[&integer(3)], Lengths::Definite)];
        let error = open_error(&envelope.encode(), false);
        assert_eq!(
            error.to_string(),
            format!(
                "EnvelopedData.recipientInfos: {kind} at offset 22 is not supported; \
                 expected a KeyTransRecipientInfo (SEQUENCE)"
            )
        );
    }
}

#[test]
fn rejects_empty_oaep_parameters_meaning_sha1() {
    let error = open_error(&with_key_encryption_algorithm(&oaep_algorithm(&[])), false);
    assert!(
        matches!(error, EnvelopeError::UnsupportedOaepParameters { .. }),
        "{error}"
    );
    assert!(error.to_string().starts_with(OAEP_MESSAGE), "{error}");
    assert!(
        error
            .to_string()
            .contains("hashAlgorithm [0] is absent, which means SHA-1")
    );
}

#[test]
fn rejects_missing_oaep_parameters() {
    let algorithm = algorithm_identifier(oid::RSAES_OAEP, None);
    let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
    assert!(error.to_string().starts_with(OAEP_MESSAGE), "{error}");
    assert!(
        error.to_string().contains("parameters are absent"),
        "{error}"
    );
}

#[test]
fn rejects_null_oaep_parameters() {
    let algorithm = algorithm_identifier(oid::RSAES_OAEP, Some(&null()));
    let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
    assert!(error.to_string().starts_with(OAEP_MESSAGE), "{error}");
    assert!(
        error.to_string().contains("parameters are not a SEQUENCE"),
        "{error}"
    );
}

#[test]
fn rejects_oaep_label_even_when_empty() {
    for label in [&b"label"[..], b""] {
        let p_specified = algorithm_identifier(oid::P_SPECIFIED, Some(&octet_string(label)));
        let p_source = constructed(0xa2, &[&p_specified], Lengths::Definite);
        let algorithm = oaep_algorithm(&[
            &oaep_hash_sha256(true),
            &oaep_mask_mgf1(oid::SHA256, true),
            &p_source,
        ]);
        let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
        assert!(error.to_string().starts_with(OAEP_MESSAGE), "{error}");
        assert!(
            error
                .to_string()
                .contains("pSourceAlgorithm [2] is present"),
            "{error}"
        );
    }
}

#[test]
fn rejects_sha1_oaep_hash() {
    let sha1 = algorithm_identifier(oid::SHA1, Some(&null()));
    let hash = constructed(0xa0, &[&sha1], Lengths::Definite);
    let algorithm = oaep_algorithm(&[&hash, &oaep_mask_mgf1(oid::SHA256, true)]);
    let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
    assert_eq!(
        error.to_string(),
        format!(
            "{OAEP_MESSAGE}: hashAlgorithm is 1.3.14.3.2.26 (id-sha1), not id-sha256 at offset 84"
        )
    );
}

#[test]
fn rejects_mgf1_with_sha1() {
    let algorithm = oaep_algorithm(&[&oaep_hash_sha256(true), &oaep_mask_mgf1(oid::SHA1, true)]);
    let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
    assert!(error.to_string().starts_with(OAEP_MESSAGE), "{error}");
    assert!(
        error
            .to_string()
            .contains("maskGenAlgorithm hash is 1.3.14.3.2.26 (id-sha1)")
    );
}

#[test]
fn rejects_absent_mask_generation_meaning_mgf1_sha1() {
    let algorithm = oaep_algorithm(&[&oaep_hash_sha256(true)]);
    let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
    assert!(
        error
            .to_string()
            .contains("maskGenAlgorithm [1] is absent, which means MGF1 with SHA-1")
    );
}

#[test]
fn rejects_rsa_pkcs1_v15_key_encryption() {
    let algorithm = algorithm_identifier(oid::RSA_ENCRYPTION, Some(&null()));
    let error = open_error(&with_key_encryption_algorithm(&algorithm), false);
    assert_eq!(
        error.to_string(),
        "keyEncryptionAlgorithm: unsupported algorithm 1.2.840.113549.1.1.1 (rsaEncryption); \
         expected 1.2.840.113549.1.1.7 (id-RSAES-OAEP)"
    );
}

#[test]
fn rejects_aes128_cbc_content_encryption() {
    let parts = sample();
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    envelope.content_encryption_algorithm =
        algorithm_identifier(oid::AES128_CBC, Some(&octet_string(&parts.iv)));
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "contentEncryptionAlgorithm: unsupported algorithm 2.16.840.1.101.3.4.1.2 \
         (id-aes128-CBC); expected 2.16.840.1.101.3.4.1.42 (id-aes256-CBC)"
    );
}

#[test]
fn rejects_iv_of_wrong_length() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.content_encryption_algorithm =
        algorithm_identifier(oid::AES256_CBC, Some(&octet_string(&[0; 8])));
    let error = open_error(&envelope.encode(), false);
    assert!(
        matches!(error, EnvelopeError::InvalidIvLength { found: 8, .. }),
        "{error}"
    );
}

#[test]
fn rejects_content_type_other_than_data() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.encrypted_content_type = oid(oid::ENVELOPED_DATA);
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "EncryptedContentInfo.contentType: expected 1.2.840.113549.1.7.1 (id-data), \
         found 1.2.840.113549.1.7.3 (id-envelopedData)"
    );
}

#[test]
fn rejects_outer_content_type_other_than_enveloped_data() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.content_type = oid(oid::DATA);
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "ContentInfo.contentType: expected 1.2.840.113549.1.7.3 (id-envelopedData), \
         found 1.2.840.113549.1.7.1 (id-data)"
    );
}

#[test]
fn rejects_detached_encrypted_content() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.encrypted_content = vec![];
    let error = open_error(&envelope.encode(), false);
    assert!(
        matches!(error, EnvelopeError::MissingEncryptedContent),
        "{error}"
    );
}

#[test]
fn rejects_ciphertext_not_a_block_multiple() {
    let parts = sample();
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    envelope.encrypted_content = primitive(0x80, &parts.ciphertext[..47]);
    let error = open_error(&envelope.encode(), false);
    assert!(
        matches!(error, EnvelopeError::InvalidCiphertextLength { len: 47 }),
        "{error}"
    );
}

#[test]
fn rejects_unsupported_enveloped_data_version() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.version = 3;
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "EnvelopedData.version: version 3 at offset 19 is not supported; expected 0 or 2"
    );
}

#[test]
fn rejects_enveloped_data_version_that_contradicts_recipient() {
    let mut envelope = sample().kms_envelope(Lengths::Indefinite);
    envelope.version = 0;
    let error = open_error(&envelope.encode(), false);
    assert_eq!(
        error.to_string(),
        "EnvelopedData.version: version 0 at offset 19 is not supported; \
         expected 2 (the recipientInfo is version 2)"
    );
}

#[test]
fn rejects_recipient_version_that_contradicts_rid() {
    let parts = sample();
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    let rid = primitive(0x80, &parts.subject_key_identifier);
    envelope.recipient_infos = vec![key_trans_recipient_info(
        0,
        &rid,
        &kms_oaep_algorithm(),
        &parts.encrypted_key,
    )];
    let error = open_error(&envelope.encode(), false);
    assert!(
        error
            .to_string()
            .contains("expected 2 (rid is subjectKeyIdentifier)"),
        "{error}"
    );
}

#[test]
fn rejects_subject_key_identifier_not_32_bytes() {
    let parts = sample();
    let mut envelope = parts.kms_envelope(Lengths::Indefinite);
    let rid = primitive(0x80, &parts.subject_key_identifier[..20]);
    envelope.recipient_infos = vec![key_trans_recipient_info(
        2,
        &rid,
        &kms_oaep_algorithm(),
        &parts.encrypted_key,
    )];
    let error = open_error(&envelope.encode(), false);
    assert!(
        matches!(
            error,
            EnvelopeError::InvalidSubjectKeyIdentifierLength { found: 20, .. }
        ),
        "{error}"
    );
}

#[test]
fn rejects_unprotected_attributes() {
    let parts = sample();
    let envelope = parts.kms_envelope(Lengths::Definite);
    // Rebuild the EnvelopedData by hand with an unprotectedAttrs [1] after encryptedContentInfo.
    let recipient_infos = constructed(0x31, &[&envelope.recipient_infos[0]], Lengths::Definite);
    let encrypted_content_info = constructed(
        0x30,
        &[
            &envelope.encrypted_content_type,
            &envelope.content_encryption_algorithm,
            &envelope.encrypted_content,
        ],
        Lengths::Definite,
    );
    let unprotected_attrs = constructed(0xa1, &[], Lengths::Definite);
    let enveloped_data = constructed(
        0x30,
        &[
            &integer(2),
            &recipient_infos,
            &encrypted_content_info,
            &unprotected_attrs,
        ],
        Lengths::Definite,
    );
    let content = constructed(0xa0, &[&enveloped_data], Lengths::Definite);
    let cms = constructed(0x30, &[&envelope.content_type, &content], Lengths::Definite);

    let error = open_error(&cms, false);
    assert!(
        matches!(
            error,
            EnvelopeError::UnsupportedField {
                field: "EnvelopedData.unprotectedAttrs",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn rejects_envelope_for_another_recipient_key() {
    let cms = edgebit_envelope();
    let key = enclaver_key();
    let error = envelope::open(&cms, &key).unwrap_err();
    let ours = hex::encode(key.subject_key_identifier());
    let theirs = hex::encode(sample().subject_key_identifier);
    assert_eq!(
        error.to_string(),
        format!(
            "the envelope was encrypted for another recipient key: its subjectKeyIdentifier is \
             {theirs}, but this key's is {ours}"
        )
    );
}

#[test]
fn rejects_wrong_key_with_clean_error() {
    let parts = sample();
    let key = enclaver_key();

    // LocalStack names no key, so the RSA operation itself must fail cleanly.
    let localstack = parts.localstack_envelope().encode();
    let error = envelope::open(&localstack, &key).unwrap_err();
    assert!(
        matches!(error, EnvelopeError::KeyDecryptionFailed),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "could not decrypt the content-encryption key with the recipient private key"
    );

    // A subjectKeyIdentifier that names our key over a key encrypted for another one.
    let mut relabelled = parts;
    relabelled.subject_key_identifier = key.subject_key_identifier();
    let error =
        envelope::open(&relabelled.kms_envelope(Lengths::Indefinite).encode(), &key).unwrap_err();
    assert!(
        matches!(error, EnvelopeError::KeyDecryptionFailed),
        "{error}"
    );
}

#[test]
fn rejects_content_key_that_is_not_32_bytes() {
    let key = edgebit_key();
    let public_key = PublicEncryptingKey::from_der(&key.public_key_der()).unwrap();
    let public_key = OaepPublicEncryptingKey::new(public_key).unwrap();
    let mut encrypted_key = vec![0u8; public_key.ciphertext_size()];
    public_key
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &[0x11; 16],
            &mut encrypted_key,
            None,
        )
        .unwrap();

    let mut parts = sample();
    parts.encrypted_key = encrypted_key;
    let cms = parts.kms_envelope(Lengths::Indefinite).encode();
    let error = open_error(&cms, true);
    assert_eq!(
        error.to_string(),
        "content-encryption key is 16 bytes; aes256-CBC needs 32"
    );
}

#[test]
fn rejects_ciphertext_with_invalid_padding() {
    // The sample's plaintext is 32 bytes, so its last block is all padding (0x10). Flipping the
    // last bit of the second-to-last ciphertext block turns the final padding byte into 0x11.
    let mut parts = sample();
    parts.ciphertext[31] ^= 0x01;
    let cms = parts.kms_envelope(Lengths::Indefinite).encode();
    let error = open_error(&cms, true);
    assert!(
        matches!(error, EnvelopeError::ContentDecryptionFailed),
        "{error}"
    );
}

#[test]
fn rejects_truncated_envelope_naming_structure_and_offset() {
    let cms = edgebit_envelope();
    let error = open_error(&cms[..cms.len() - 2], false);
    assert_eq!(
        error.to_string(),
        "ContentInfo: truncated at offset 491: 2 bytes needed, 0 left"
    );

    let error = open_error(&cms[..200], false);
    assert_eq!(
        error.to_string(),
        "EnvelopedData.recipientInfos: truncated at offset 24: 363 bytes needed, 176 left"
    );
}

#[test]
fn rejects_unexpected_tag_naming_expected_and_found() {
    let mut cms = edgebit_envelope();
    cms[20] = 0x30; // the recipientInfos SET becomes a SEQUENCE
    let error = open_error(&cms, false);
    assert_eq!(
        error.to_string(),
        "EnvelopedData.recipientInfos: expected SET (0x31) at offset 20, found SEQUENCE (0x30)"
    );
}
