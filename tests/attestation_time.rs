//! Verification time is a parameter: real documents are rejected once a certificate has
//! expired or before the leaf is valid, and documents are checked for age and future dates.

mod attestation_common;

use std::time::Duration;

use attestation_common::{expected_documents, nitro};
use enclave_broker::attestation::verify::{MAX_SKEW, VerifyError, VerifyOptions, inspect, verify};
use enclave_broker::attestation::x509::{
    CertificatePosition, ChainError, ParsedCertificate, format_time_ms,
};

const FOUR_HOURS_MS: u64 = 4 * 3600 * 1000;

fn certificate_at(bytes: &[u8], position: CertificatePosition) -> Vec<u8> {
    let document = inspect(bytes).unwrap();
    match position {
        CertificatePosition::Bundle(index) => document.cabundle()[index].clone(),
        CertificatePosition::Leaf => document.certificate().to_vec(),
    }
}

fn options_for(name: &str, time_ms: u64) -> VerifyOptions {
    let mut options = VerifyOptions::new(time_ms);
    options.require_enclave = !name.contains("nitrotpm");
    options
}

#[test]
fn real_documents_rejected_four_hours_later() {
    for (name, expected) in expected_documents() {
        let bytes = nitro(&name);
        let timestamp_ms = expected["timestamp_ms"].as_u64().unwrap();
        let checked_at_ms = timestamp_ms + FOUR_HOURS_MS;
        let error = verify(&bytes, &options_for(&name, checked_at_ms)).unwrap_err();

        assert_eq!(error.rule(), "chain.validity", "{name}: {error}");
        let VerifyError::Chain(ChainError::Expired {
            position,
            not_after_ms,
            ..
        }) = &error
        else {
            panic!("{name}: expected an expired certificate, got {error}");
        };
        let certificate = certificate_at(&bytes, *position);
        let parsed = ParsedCertificate::parse(&certificate).unwrap();
        assert_eq!(parsed.not_after_ms(), *not_after_ms, "{name}");

        let message = error.to_string();
        let expected_start = format!(
            "{position} ({}) expired at {} (notAfter), checked at {}",
            parsed.subject_label(),
            format_time_ms(*not_after_ms),
            format_time_ms(checked_at_ms)
        );
        assert!(message.starts_with(&expected_start), "{name}: {message}");
    }
}

#[test]
fn real_documents_rejected_before_leaf_not_before() {
    for (name, _) in expected_documents() {
        let bytes = nitro(&name);
        let leaf = ParsedCertificate::parse(&certificate_at(&bytes, CertificatePosition::Leaf))
            .unwrap()
            .not_before_ms();
        let options = options_for(&name, leaf - 60_000 - 1_000);
        let error = verify(&bytes, &options).unwrap_err();

        assert_eq!(error.rule(), "chain.validity", "{name}: {error}");
        let message = error.to_string();
        assert!(
            message.starts_with("leaf certificate ("),
            "{name}: {message}"
        );
        assert!(
            message.contains(&format!(
                "is not valid before {} (notBefore)",
                format_time_ms(leaf)
            )),
            "{name}: {message}"
        );
    }
}

#[test]
fn leaf_accepted_until_not_after_and_rejected_after() {
    let bytes = nitro("evervault_2023-09-18_debug.cbor");
    let not_after = ParsedCertificate::parse(&certificate_at(&bytes, CertificatePosition::Leaf))
        .unwrap()
        .not_after_ms();
    let without_skew = |time_ms| {
        let mut options = VerifyOptions::new(time_ms);
        options.skew = Duration::ZERO;
        options
    };

    assert!(verify(&bytes, &without_skew(not_after - 1_000)).is_ok());
    assert!(verify(&bytes, &without_skew(not_after)).is_ok());
    let error = verify(&bytes, &without_skew(not_after + 1_000)).unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "expired at {} (notAfter)",
            format_time_ms(not_after)
        )),
        "{error}"
    );

    // The default 60 s skew accepts one second past notAfter.
    assert!(verify(&bytes, &VerifyOptions::new(not_after + 1_000)).is_ok());
}

#[test]
fn audit_at_document_time_records_check_time() {
    let bytes = nitro("anjuna_2021-03-17_prod_no-optionals.cbor");
    let timestamp_ms = inspect(&bytes).unwrap().timestamp_ms();
    let verified = verify(&bytes, &VerifyOptions::new(timestamp_ms)).unwrap();
    assert_eq!(verified.checked_at_ms(), timestamp_ms);
}

#[test]
fn root_expiry_named_after_2049() {
    let bytes = nitro("evervault_2023-09-18_debug.cbor");
    // 2050-01-01T00:00:00Z
    let error = verify(&bytes, &VerifyOptions::new(2_524_608_000_000)).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cabundle[0] (CN=aws.nitro-enclaves) expired at 2049-10-28T14:28:05Z"),
        "{error}"
    );
}

#[test]
fn rejects_document_older_than_max_age() {
    let bytes = nitro("evervault_2023-09-18_debug.cbor");
    let timestamp_ms = inspect(&bytes).unwrap().timestamp_ms();
    let mut options = VerifyOptions::new(timestamp_ms + 10 * 60 * 1000);
    options.max_age = Some(Duration::from_secs(300));
    let error = verify(&bytes, &options).unwrap_err();
    assert_eq!(error.rule(), "age.too_old");
    assert!(
        error.to_string().starts_with(&format!(
            "document is too old: created at {}",
            format_time_ms(timestamp_ms)
        )),
        "{error}"
    );

    // Within max age plus skew.
    options.time_ms = timestamp_ms + 300_000 + 59_000;
    assert!(verify(&bytes, &options).is_ok());
}

#[test]
fn rejects_document_from_the_future() {
    let bytes = nitro("evervault_2023-09-18_debug.cbor");
    let timestamp_ms = inspect(&bytes).unwrap().timestamp_ms();
    let error = verify(&bytes, &VerifyOptions::new(timestamp_ms - 2 * 60 * 1000)).unwrap_err();
    assert_eq!(error.rule(), "age.future");
    assert!(verify(&bytes, &VerifyOptions::new(timestamp_ms - 59_000)).is_ok());
}

#[test]
fn skew_above_one_hour_is_invalid_option() {
    let bytes = nitro("evervault_2023-09-18_debug.cbor");
    let timestamp_ms = inspect(&bytes).unwrap().timestamp_ms();
    let mut options = VerifyOptions::new(timestamp_ms);
    options.skew = MAX_SKEW + Duration::from_secs(1);

    let error = verify(&bytes, &options).unwrap_err();

    assert!(
        matches!(error, VerifyError::InvalidOptions { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("the limit is 3600 s"), "{error}");
    options.skew = MAX_SKEW;
    assert!(verify(&bytes, &options).is_ok());
}
