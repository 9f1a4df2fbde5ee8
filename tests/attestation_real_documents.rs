//! Real AWS Nitro attestation documents: each verifies at its own timestamp with the AWS root
//! and decodes to the values in expected.json.

mod attestation_common;

use attestation_common::{expected_documents, nitro};
use enclave_broker::attestation::document::DocumentKind;
use enclave_broker::attestation::pcr::PcrIndex;
use enclave_broker::attestation::verify::{VerifyOptions, inspect, verify};

fn optional_hex(value: &serde_json::Value) -> Option<Vec<u8>> {
    value.as_str().map(|text| hex::decode(text).unwrap())
}

#[test]
fn real_documents_verify_at_their_timestamp() {
    let documents = expected_documents();
    assert_eq!(documents.len(), 13);
    for (name, expected) in documents {
        let bytes = nitro(&name);
        let timestamp_ms = expected["timestamp_ms"].as_u64().unwrap();
        let is_enclave = expected["kind"] == "enclave";
        let mut options = VerifyOptions::new(timestamp_ms);
        options.require_enclave = is_enclave;

        let verified = verify(&bytes, &options).unwrap_or_else(|error| panic!("{name}: {error}"));
        let document = verified.document();

        let kind = if is_enclave {
            DocumentKind::Enclave
        } else {
            DocumentKind::NitroTpm
        };
        assert_eq!(document.kind(), kind, "{name}");
        assert_eq!(document.module_id(), expected["module_id"], "{name}");
        assert_eq!(document.timestamp_ms(), timestamp_ms, "{name}");
        assert_eq!(document.digest(), "SHA384", "{name}");
        assert_eq!(
            verified.trust_root_label(),
            "aws-nitro-enclaves-g1",
            "{name}"
        );
        assert_eq!(verified.checked_at_ms(), timestamp_ms, "{name}");
        assert_eq!(verified.bytes(), bytes.as_slice(), "{name}");
        assert_eq!(
            verified.certificates().len(),
            document.cabundle().len() + 1,
            "{name}"
        );

        let expected_pcrs = expected["pcrs"].as_object().unwrap();
        assert_eq!(document.pcrs().len(), expected_pcrs.len(), "{name}");
        for (index, value) in expected_pcrs {
            let index = PcrIndex::parse_decimal(index).unwrap();
            let found = document
                .pcr(index)
                .unwrap_or_else(|| panic!("{name}: no PCR{index}"));
            assert_eq!(found.to_hex(), value.as_str().unwrap(), "{name} PCR{index}");
        }

        assert_eq!(
            document.public_key().map(<[u8]>::to_vec),
            optional_hex(&expected["public_key_hex"]),
            "{name} public_key"
        );
        assert_eq!(
            document.user_data().map(<[u8]>::to_vec),
            optional_hex(&expected["user_data_hex"]),
            "{name} user_data"
        );
        assert_eq!(
            document.nonce().map(<[u8]>::to_vec),
            optional_hex(&expected["nonce_hex"]),
            "{name} nonce"
        );
    }
}

#[test]
fn empty_optional_fields_decode_as_empty_bytes() {
    let document = inspect(&nitro("blocky_2024-05-07_prod_empty-ud-nonce.cbor")).unwrap();
    assert_eq!(document.user_data(), Some(&[][..]));
    assert_eq!(document.nonce(), Some(&[][..]));
    assert_eq!(document.public_key().map(<[u8]>::len), Some(426));
}

#[test]
fn null_optional_fields_decode_as_none() {
    let document = inspect(&nitro("anjuna_2021-03-17_prod_no-optionals.cbor")).unwrap();
    assert_eq!(document.public_key(), None);
    assert_eq!(document.user_data(), None);
    assert_eq!(document.nonce(), None);
}

#[test]
fn accepts_1024_byte_optional_fields() {
    let bytes = nitro("blocky_2024-09-07_prod_1024B-fields.cbor");
    let document = inspect(&bytes).unwrap();
    let mut options = VerifyOptions::new(document.timestamp_ms());
    options.expected_nonce = document.nonce().map(<[u8]>::to_vec);
    options.expected_public_key = document.public_key().map(<[u8]>::to_vec);
    let verified = verify(&bytes, &options).unwrap();
    assert_eq!(verified.document().user_data().map(<[u8]>::len), Some(1024));
}

#[test]
fn debug_document_with_pcr4_set_is_debug_mode() {
    let document = inspect(&nitro("evervault_2023-09-18_debug.cbor")).unwrap();
    let pcr = |index| document.pcr(PcrIndex::new(index).unwrap()).unwrap();
    assert!(pcr(0).is_zero());
    assert!(pcr(1).is_zero());
    assert!(pcr(2).is_zero());
    assert!(!pcr(4).is_zero());
    assert!(document.is_debug_mode());
}

#[test]
fn debug_mode_matches_fixture_names() {
    for (name, _) in expected_documents() {
        let document = inspect(&nitro(&name)).unwrap();
        assert_eq!(document.is_debug_mode(), name.contains("_debug"), "{name}");
    }
}

#[test]
fn tag_18_document_verifies() {
    let bytes = nitro("eternis_2024-07-31_prod.cbor");
    let tagged = [&[0xd2][..], &bytes].concat();
    let options = attestation_common::options_at_document_time(&bytes);
    assert!(verify(&tagged, &options).is_ok());
}

#[test]
fn nitrotpm_document_verifies_when_enclave_not_required() {
    let bytes = nitro("vaportpm_2026-02-03_nitrotpm_indefinite-map.cbor");
    let mut options = attestation_common::options_at_document_time(&bytes);
    options.require_enclave = false;
    let verified = verify(&bytes, &options).unwrap();
    assert_eq!(verified.document().kind(), DocumentKind::NitroTpm);
    assert_eq!(verified.document().pcrs().len(), 24);
    assert!(!verified.document().is_debug_mode());
}

#[test]
fn nitrotpm_document_rejected_when_enclave_required() {
    let bytes = nitro("vaportpm_2026-02-03_nitrotpm_indefinite-map.cbor");
    let options = attestation_common::options_at_document_time(&bytes);
    let error = verify(&bytes, &options).unwrap_err();
    assert_eq!(error.rule(), "kind.not_enclave");
    assert!(
        error.to_string().starts_with("not an enclave document"),
        "{error}"
    );
}

#[test]
fn nitrotpm_document_rejected_when_pcrs_expected() {
    let bytes = nitro("vaportpm_2026-02-03_nitrotpm_indefinite-map.cbor");
    let document = inspect(&bytes).unwrap();
    let mut options = VerifyOptions::new(document.timestamp_ms());
    options.require_enclave = false;
    let index = PcrIndex::new(0).unwrap();
    options
        .expected_pcrs
        .insert(index, document.pcr(index).unwrap().clone());
    assert_eq!(
        verify(&bytes, &options).unwrap_err().rule(),
        "kind.not_enclave"
    );
}
