//! Project Wycheproof ECDSA P-384 / SHA-384 vectors through the signature functions the
//! verifier uses: P1363 (r || s) for COSE, ASN.1 DER for X.509.

mod attestation_common;

use attestation_common::read_fixture;
use enclave_broker::attestation::cose::verify_es384;
use enclave_broker::attestation::x509::verify_ecdsa_p384_sha384_der;

type VerifyFn =
    fn(&[u8], &[u8], &[u8]) -> Result<(), enclave_broker::attestation::cose::SignatureRejected>;

/// Runs every vector and returns (valid, invalid) counts; fails on the first disagreement.
fn run(file: &str, verify_signature: VerifyFn) -> (usize, usize) {
    let json: serde_json::Value = serde_json::from_slice(&read_fixture(file)).unwrap();
    let mut counts = (0, 0);
    for group in json["testGroups"].as_array().unwrap() {
        assert_eq!(group["sha"], "SHA-384");
        assert_eq!(group["publicKey"]["curve"], "secp384r1");
        let public_key = hex::decode(group["publicKey"]["uncompressed"].as_str().unwrap()).unwrap();
        for test in group["tests"].as_array().unwrap() {
            let id = &test["tcId"];
            let message = hex::decode(test["msg"].as_str().unwrap()).unwrap();
            let signature = hex::decode(test["sig"].as_str().unwrap()).unwrap();
            let result = verify_signature(&public_key, &message, &signature);
            match test["result"].as_str().unwrap() {
                "valid" => {
                    assert!(
                        result.is_ok(),
                        "{file} tcId {id} ({}) rejected",
                        test["comment"]
                    );
                    counts.0 += 1;
                }
                "invalid" => {
                    assert!(
                        result.is_err(),
                        "{file} tcId {id} ({}) accepted",
                        test["comment"]
                    );
                    counts.1 += 1;
                }
                other => panic!("{file} tcId {id}: unexpected result {other}"),
            }
        }
    }
    counts
}

#[test]
fn p1363_vectors_match_cose_verifier() {
    let counts = run(
        "wycheproof/ecdsa_secp384r1_sha384_p1363_test.json",
        verify_es384,
    );
    assert_eq!(counts, (193, 87));
}

#[test]
fn der_vectors_match_certificate_verifier() {
    let counts = run(
        "wycheproof/ecdsa_secp384r1_sha384_test.json",
        verify_ecdsa_p384_sha384_der,
    );
    assert_eq!(counts, (194, 310));
}
