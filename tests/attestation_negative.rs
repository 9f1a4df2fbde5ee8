//! Documents the source projects keep as must-reject cases.

mod attestation_common;

use attestation_common::{
    encoded, join_sign1, nitro, payload_field, read_fixture, rewrite_payload, split_sign1,
};
use enclave_broker::attestation::verify::{VerifyOptions, verify};

fn negative(name: &str) -> Vec<u8> {
    read_fixture(&format!("nitro/negative/{name}"))
}

#[test]
fn bad_cose_signature_rejected() {
    let bytes = negative("eternis_2024-07-23_bad-cose-signature.cbor");
    // The document's own timestamp, 2024-07-23, read from its payload.
    let timestamp_ms = attestation_common::options_at_document_time(&bytes).time_ms;
    let error = verify(&bytes, &VerifyOptions::new(timestamp_ms)).unwrap_err();
    assert_eq!(error.rule(), "cose.signature", "{error}");
    assert!(
        error
            .to_string()
            .starts_with("COSE signature does not verify with the key of the leaf certificate"),
        "{error}"
    );
    assert!(!error.is_malformed());
}

#[test]
fn document_missing_three_bytes_is_invalid_cbor() {
    let bytes = negative("base_2026-01-03_corrupt-missing-3-bytes.cbor");
    let error = verify(&bytes, &VerifyOptions::new(1_767_472_867_402)).unwrap_err();
    assert_eq!(error.rule(), "cose.cbor", "{error}");
    assert!(error.is_malformed());
    assert!(
        error
            .to_string()
            .starts_with("COSE_Sign1: invalid CBOR at byte "),
        "{error}"
    );
}

#[test]
fn repaired_twin_of_corrupt_document_verifies() {
    let bytes = nitro("base_2026-01-03_prod_indefinite-map.cbor");
    assert!(verify(&bytes, &VerifyOptions::new(1_767_472_867_402)).is_ok());
}

#[test]
fn self_signed_synthetic_document_rejected() {
    let bytes = negative("blocky_selfsigned_synthetic.cbor");
    // Its timestamp is in seconds: 1713379906 s is 2024-04-17T18:51:46Z.
    let options = VerifyOptions::new(1_713_379_906_000);

    // First defect: the unprotected header is null, not a map.
    let error = verify(&bytes, &options).unwrap_err();
    assert_eq!(error.rule(), "cose.structure", "{error}");
    assert_eq!(
        error.to_string(),
        "COSE_Sign1 unprotected header is null; expected a map"
    );

    // With an empty map there instead, the next defect is the null cabundle.
    let parts = split_sign1(&bytes);
    let patched = join_sign1(&parts.protected, &parts.payload, &parts.signature);
    let error = verify(&patched, &options).unwrap_err();
    assert_eq!(
        error.to_string(),
        "payload field cabundle is null; expected an array of byte strings"
    );

    // With the leaf as its own one-entry cabundle, the chain has no trusted root.
    let document = split_sign1(&patched);
    let leaf = payload_field(&document.payload, "certificate");
    let payload = rewrite_payload(&document.payload, |field, _| {
        (field == "cabundle").then(|| encoded(|encoder| encoder.array(1).raw(&leaf)))
    });
    let rebuilt = join_sign1(&document.protected, &payload, &document.signature);
    let error = verify(&rebuilt, &options).unwrap_err();
    assert_eq!(error.rule(), "chain.root", "{error}");
    assert!(
        error
            .to_string()
            .contains("trusted roots: aws-nitro-enclaves-g1"),
        "{error}"
    );
}
