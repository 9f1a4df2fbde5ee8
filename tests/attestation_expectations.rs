//! Caller expectations on an authentic document: nonce, public key and PCRs must match byte
//! for byte, and a value the document lacks never matches.

mod attestation_common;

use std::collections::BTreeMap;

use attestation_common::{nitro, options_at_document_time};
use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};
use enclave_broker::attestation::verify::{
    ErrorCause, PcrMismatch, VerifyError, VerifyOptions, inspect, verify,
};

/// A production document with public_key (5 bytes), user_data and nonce (20 bytes) set.
const WITH_FIELDS: &str = "eternis_2024-07-31_prod.cbor";
/// A production document whose public_key, user_data and nonce are null.
const WITHOUT_FIELDS: &str = "anjuna_2021-03-17_prod_no-optionals.cbor";

fn pcr(index: u64) -> PcrIndex {
    PcrIndex::new(index).unwrap()
}

fn expectation_error(name: &str, change: impl FnOnce(&mut VerifyOptions)) -> VerifyError {
    let bytes = nitro(name);
    let mut options = options_at_document_time(&bytes);
    change(&mut options);
    match verify(&bytes, &options) {
        Ok(_) => panic!("{name} was accepted"),
        Err(error) => error,
    }
}

#[test]
fn matching_expectations_accepted() {
    let bytes = nitro(WITH_FIELDS);
    let document = inspect(&bytes).unwrap();
    let mut options = options_at_document_time(&bytes);
    options.expected_nonce = document.nonce().map(<[u8]>::to_vec);
    options.expected_public_key = document.public_key().map(<[u8]>::to_vec);
    options.expected_pcrs = document.pcrs().clone();
    assert!(verify(&bytes, &options).is_ok());
}

#[test]
fn nonce_mismatch_rejected() {
    let error = expectation_error(WITH_FIELDS, |options| {
        options.expected_nonce = Some(vec![0xab; 20]);
    });
    assert_eq!(error.rule(), "nonce.mismatch");
    assert_eq!(error.cause(), ErrorCause::Denied);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "nonce mismatch: expected {} (20 bytes), got ",
            "ab".repeat(20)
        )),
        "{message}"
    );
}

#[test]
fn expected_nonce_absent_from_document_rejected() {
    let error = expectation_error(WITHOUT_FIELDS, |options| {
        options.expected_nonce = Some(vec![1, 2, 3]);
    });
    assert_eq!(
        error,
        VerifyError::NonceMismatch {
            expected: vec![1, 2, 3],
            found: None
        }
    );
    assert_eq!(
        error.to_string(),
        "nonce mismatch: expected 010203 (3 bytes), got none (field absent or null)"
    );
}

#[test]
fn expected_nonce_does_not_match_empty_nonce() {
    let error = expectation_error("blocky_2024-05-07_prod_empty-ud-nonce.cbor", |options| {
        options.expected_nonce = Some(vec![0]);
    });
    assert_eq!(
        error,
        VerifyError::NonceMismatch {
            expected: vec![0],
            found: Some(vec![])
        }
    );
}

#[test]
fn long_nonce_shown_as_prefix_and_length() {
    let error = expectation_error("evervault_2022-10-13_prod.cbor", |options| {
        options.expected_nonce = Some(vec![0; 256]);
    });
    let message = error.to_string();
    assert!(message.contains("… (256 bytes)"), "{message}");
    assert!(message.len() < 300, "{message}");
}

#[test]
fn public_key_mismatch_rejected() {
    let error = expectation_error(WITH_FIELDS, |options| {
        options.expected_public_key = Some(b"other".to_vec());
    });
    assert_eq!(error.rule(), "public_key.mismatch");

    let error = expectation_error(WITHOUT_FIELDS, |options| {
        options.expected_public_key = Some(b"key".to_vec());
    });
    assert_eq!(error.rule(), "public_key.mismatch");
    assert!(
        error
            .to_string()
            .ends_with("got none (field absent or null)")
    );
}

#[test]
fn pcr_mismatch_names_index_and_values() {
    let bytes = nitro(WITH_FIELDS);
    let document = inspect(&bytes).unwrap();
    let zero = PcrValue::from_bytes(&[0; 48]).unwrap();
    let wanted = PcrValue::parse_sha384_hex(&"87".repeat(48)).unwrap();
    let error = expectation_error(WITH_FIELDS, |options| {
        options.expected_pcrs = BTreeMap::from([
            (pcr(0), document.pcr(pcr(0)).unwrap().clone()),
            (pcr(1), document.pcr(pcr(1)).unwrap().clone()),
            (pcr(8), wanted.clone()),
        ]);
    });
    assert_eq!(error.rule(), "pcr.mismatch");
    assert_eq!(
        error,
        VerifyError::PcrMismatch {
            mismatches: vec![PcrMismatch {
                index: pcr(8),
                expected: wanted.clone(),
                found: Some(zero.clone()),
            }],
            matched: vec![pcr(0), pcr(1)],
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "PCR8 mismatch: expected {}, got {}; PCR0, PCR1 match",
            "87".repeat(48),
            "00".repeat(48)
        )
    );
}

#[test]
fn expected_pcr_missing_from_document_is_mismatch() {
    let wanted = PcrValue::parse_sha384_hex(&"11".repeat(48)).unwrap();
    let error = expectation_error(WITH_FIELDS, |options| {
        options.expected_pcrs = BTreeMap::from([(pcr(20), wanted.clone())]);
    });
    assert_eq!(
        error.to_string(),
        format!(
            "PCR20 mismatch: expected {}, but the document has no PCR20",
            "11".repeat(48)
        )
    );
}

#[test]
fn debug_document_rejected_by_production_pcr0() {
    let production = inspect(&nitro(WITH_FIELDS)).unwrap();
    let error = expectation_error("eternis_2024-09-09_debug.cbor", |options| {
        options.expected_pcrs = BTreeMap::from([(pcr(0), production.pcr(pcr(0)).unwrap().clone())]);
    });
    assert_eq!(error.rule(), "pcr.mismatch");
    assert!(
        error
            .to_string()
            .contains(&format!("got {}", "00".repeat(48)))
    );
}

#[test]
fn unusable_options_rejected_before_parsing() {
    type Change = Box<dyn Fn(&mut VerifyOptions)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "no trust roots",
            Box::new(|options| options.trust_roots.clear()),
        ),
        (
            "empty nonce",
            Box::new(|options| options.expected_nonce = Some(vec![])),
        ),
        (
            "empty public key",
            Box::new(|options| options.expected_public_key = Some(vec![])),
        ),
        (
            "SHA-256 sized PCR",
            Box::new(|options| {
                options
                    .expected_pcrs
                    .insert(pcr(0), PcrValue::from_bytes(&[0; 32]).unwrap());
            }),
        ),
    ];
    for (case, change) in cases {
        let mut options = VerifyOptions::new(0);
        change(&mut options);
        let error = verify(b"not even CBOR", &options).unwrap_err();
        assert_eq!(error.rule(), "options.invalid", "{case}: {error}");
        assert_eq!(error.cause(), ErrorCause::InvalidOptions, "{case}");
    }
}
