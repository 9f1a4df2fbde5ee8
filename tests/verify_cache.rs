//! `verify_with_cache` returns exactly what `verify` returns, for valid documents, at other
//! times and for mutated documents, and a cached intermediate signature never lets an expired
//! certificate or a certificate with another signature through.

mod attestation_common;

use std::collections::BTreeMap;

use attestation_common::{
    encoded, expected_documents, join_sign1, nitro, options_at_document_time, rewrite_payload,
    split_sign1,
};
use enclave_broker::attestation::cose::ES384_PROTECTED_HEADER;
use enclave_broker::attestation::document::AttestationDocument;
use enclave_broker::attestation::sim::{SimSigner, SimulatedEnclave};
use enclave_broker::attestation::verify::{
    VerifiedDocument, VerifierCache, VerifyError, VerifyOptions, inspect, verify, verify_with_cache,
};
use enclave_broker::attestation::x509::{
    CertificatePosition, CertificateSummary, ChainError, ParsedCertificate,
};

const REAL: &str = "eternis_2024-07-31_prod.cbor";

/// 2025-06-01T12:00:00Z, the time of simulator documents.
const SIM_TIME_MS: u64 = 1_748_779_200_000;

/// What a verification returns, in a form that can be compared.
type Comparable = Result<
    (
        AttestationDocument,
        String,
        Vec<CertificateSummary>,
        u64,
        Vec<u8>,
    ),
    VerifyError,
>;

fn comparable(result: Result<VerifiedDocument, VerifyError>) -> Comparable {
    result.map(|verified| {
        (
            verified.document().clone(),
            verified.trust_root_label().to_owned(),
            verified.certificates().to_vec(),
            verified.checked_at_ms(),
            verified.bytes().to_vec(),
        )
    })
}

/// Checks that `bytes` gives the same result without a cache, with an empty cache and with
/// `warm`, and returns that result.
fn assert_same_results(
    bytes: &[u8],
    options: &VerifyOptions,
    warm: &VerifierCache,
    label: &str,
) -> Comparable {
    let cold = comparable(verify(bytes, options));
    let empty = VerifierCache::new();
    assert_eq!(
        comparable(verify_with_cache(bytes, options, &empty)),
        cold,
        "{label}: empty cache"
    );
    assert_eq!(
        comparable(verify_with_cache(bytes, options, warm)),
        cold,
        "{label}: warm cache"
    );
    cold
}

fn options_for(name: &str, time_ms: u64) -> VerifyOptions {
    let mut options = VerifyOptions::new(time_ms);
    options.require_enclave = !name.contains("nitrotpm");
    options
}

/// Returns a cache filled with the intermediates of every real document.
fn warm_cache() -> VerifierCache {
    let cache = VerifierCache::new();
    for (name, expected) in expected_documents() {
        let options = options_for(&name, expected["timestamp_ms"].as_u64().unwrap());
        assert!(
            verify_with_cache(&nitro(&name), &options, &cache).is_ok(),
            "{name}"
        );
    }
    cache
}

fn certificate(bytes: &[u8], position: CertificatePosition) -> CertificateSummary {
    let document = inspect(bytes).unwrap();
    let der = match position {
        CertificatePosition::Bundle(index) => document.cabundle()[index].clone(),
        CertificatePosition::Leaf => document.certificate().to_vec(),
    };
    ParsedCertificate::parse(&der).unwrap().summary()
}

fn with_payload(bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let parts = split_sign1(bytes);
    join_sign1(&parts.protected, payload, &parts.signature)
}

fn with_cabundle(bytes: &[u8], cabundle: &[Vec<u8>]) -> Vec<u8> {
    let payload = rewrite_payload(&split_sign1(bytes).payload, |field, _| {
        (field == "cabundle").then(|| {
            encoded(|encoder| {
                encoder.array(cabundle.len());
                for certificate in cabundle {
                    encoder.bytes(certificate);
                }
                encoder
            })
        })
    });
    with_payload(bytes, &payload)
}

#[test]
fn cache_holds_intermediates_only() {
    let cache = VerifierCache::new();
    let bytes = nitro(REAL);
    let options = options_at_document_time(&bytes);
    verify_with_cache(&bytes, &options, &cache).unwrap();
    assert_eq!(cache.len(), 3, "regional, zonal and instance CA");
    verify_with_cache(&bytes, &options, &cache).unwrap();
    assert_eq!(cache.len(), 3);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn real_documents_same_with_cache() {
    let warm = warm_cache();
    for (name, expected) in expected_documents() {
        let bytes = nitro(&name);
        let timestamp_ms = expected["timestamp_ms"].as_u64().unwrap();

        let result = assert_same_results(&bytes, &options_for(&name, timestamp_ms), &warm, &name);
        assert!(result.is_ok(), "{name}");

        let later = options_for(&name, timestamp_ms + 4 * 3600 * 1000);
        let result = assert_same_results(&bytes, &later, &warm, &format!("{name} 4 h later"));
        assert_eq!(result.unwrap_err().rule(), "chain.validity", "{name}");

        let leaf = certificate(&bytes, CertificatePosition::Leaf);
        let before = options_for(&name, leaf.not_before_ms - 120_000);
        let result = assert_same_results(&bytes, &before, &warm, &format!("{name} before leaf"));
        assert!(result.is_err(), "{name}");
    }
}

#[test]
fn mutations_same_with_cache() {
    let warm = warm_cache();
    let bytes = nitro(REAL);
    let options = options_at_document_time(&bytes);
    let document = inspect(&bytes).unwrap();
    let other = inspect(&nitro("evervault_2023-09-18_debug.cbor")).unwrap();

    let mut reversed = document.cabundle().to_vec();
    reversed.reverse();
    let mut foreign_zonal = document.cabundle().to_vec();
    foreign_zonal[2] = other.cabundle()[2].clone();
    let other_leaf = rewrite_payload(&split_sign1(&bytes).payload, |field, _| {
        (field == "certificate").then(|| encoded(|encoder| encoder.bytes(other.certificate())))
    });
    let parts = split_sign1(&bytes);

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("cabundle reversed".into(), with_cabundle(&bytes, &reversed)),
        (
            "root removed".into(),
            with_cabundle(&bytes, &document.cabundle()[1..]),
        ),
        (
            "zonal CA of another document".into(),
            with_cabundle(&bytes, &foreign_zonal),
        ),
        (
            "leaf of another document".into(),
            with_payload(&bytes, &other_leaf),
        ),
        ("tag 98".into(), [&[0xd8, 0x62][..], &bytes].concat()),
        (
            "ES256 header".into(),
            join_sign1(&[0xa1, 0x01, 0x26], &parts.payload, &parts.signature),
        ),
        ("trailing byte".into(), [&bytes[..], &[0x00]].concat()),
    ];
    for length in (0..bytes.len()).step_by(97) {
        cases.push((format!("truncated to {length}"), bytes[..length].to_vec()));
    }
    for position in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[position] ^= 0xff;
        cases.push((format!("byte {position} flipped"), flipped));
    }

    for (label, mutated) in &cases {
        let cold = comparable(verify(mutated, &options));
        assert_eq!(
            comparable(verify_with_cache(mutated, &options, &warm)),
            cold,
            "{label}"
        );
        assert!(cold.is_err(), "{label}");
    }
    for (label, mutated) in cases.iter().take(7) {
        assert!(assert_same_results(mutated, &options, &warm, label).is_err());
    }
}

#[test]
fn expired_cached_intermediate_rejected() {
    let warm = warm_cache();
    let bytes = nitro(REAL);
    let zonal = certificate(&bytes, CertificatePosition::Bundle(2));
    let regional = certificate(&bytes, CertificatePosition::Bundle(1));
    assert!(zonal.not_after_ms < regional.not_after_ms);

    // Two minutes after the zonal CA's notAfter: past the 60 s skew, regional still valid.
    let options = VerifyOptions::new(zonal.not_after_ms + 120_000);
    let error = assert_same_results(&bytes, &options, &warm, "zonal CA expired").unwrap_err();
    let VerifyError::Chain(ChainError::Expired {
        position,
        not_after_ms,
        ..
    }) = &error
    else {
        panic!("expected an expired certificate, got {error}");
    };
    assert_eq!(*position, CertificatePosition::Bundle(2));
    assert_eq!(*not_after_ms, zonal.not_after_ms);
}

#[test]
fn real_intermediate_with_other_signature_not_cache_hit() {
    let warm = warm_cache();
    let bytes = nitro(REAL);
    let document = inspect(&bytes).unwrap();

    // Same subject, issuer and key; the last byte of the signature differs.
    let mut cabundle = document.cabundle().to_vec();
    let regional = &mut cabundle[1];
    let last = regional.len() - 1;
    regional[last] ^= 0x01;
    let original = ParsedCertificate::parse(&document.cabundle()[1]).unwrap();
    let altered = ParsedCertificate::parse(&cabundle[1]).unwrap();
    assert_eq!(altered.subject(), original.subject());

    let mutated = with_cabundle(&bytes, &cabundle);
    let options = options_at_document_time(&bytes);
    let error = assert_same_results(&mutated, &options, &warm, "altered signature").unwrap_err();
    assert_eq!(error.rule(), "chain.signature", "{error}");
    assert!(error.to_string().starts_with("cabundle[1] ("), "{error}");
}

/// Signs a minimal payload with `signer`'s leaf key, carrying `cabundle` as given.
fn sim_document(signer: &SimSigner, cabundle: &[Vec<u8>]) -> Vec<u8> {
    let payload = encoded(|encoder| {
        encoder.map(6);
        encoder
            .text("module_id")
            .text("i-sim0000000000000-enc0000000000000000");
        encoder.text("digest").text("SHA384");
        encoder.text("timestamp").unsigned(SIM_TIME_MS);
        encoder.text("pcrs").map(1).unsigned(0).bytes(&[7; 48]);
        encoder.text("certificate").bytes(signer.certificate());
        encoder.text("cabundle").array(cabundle.len());
        for certificate in cabundle {
            encoder.bytes(certificate);
        }
        encoder
    });
    signer.sign(&ES384_PROTECTED_HEADER, &payload).unwrap()
}

#[test]
fn same_subject_other_issuer_key_not_cache_hit() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let mut options = VerifyOptions::new(SIM_TIME_MS);
    options.trust_roots = vec![sim.trust_root().unwrap()];

    // Two chains under one root: every certificate has the same subject as its counterpart,
    // but each was signed by a different key.
    let first = sim.issue_signer(SIM_TIME_MS).unwrap();
    let second = sim.issue_signer(SIM_TIME_MS).unwrap();
    let cache = VerifierCache::new();
    for signer in [&first, &second] {
        let document = sim_document(signer, signer.cabundle());
        verify_with_cache(&document, &options, &cache).unwrap();
    }
    assert_eq!(cache.len(), 6);

    // The second chain's zonal CA under the first chain's regional CA: names chain, and both
    // certificates are in the cache, but never as this pair.
    let mut mixed = first.cabundle().to_vec();
    mixed[2] = second.cabundle()[2].clone();
    mixed[3] = second.cabundle()[3].clone();
    assert_eq!(
        ParsedCertificate::parse(&mixed[2]).unwrap().subject(),
        ParsedCertificate::parse(&first.cabundle()[2])
            .unwrap()
            .subject()
    );
    let document = sim_document(&second, &mixed);
    let error = assert_same_results(&document, &options, &cache, "mixed chains").unwrap_err();
    assert_eq!(
        error,
        VerifyError::Chain(ChainError::Signature {
            position: CertificatePosition::Bundle(2),
            subject: "CN=simulator zonal CA".to_owned(),
            issuer_position: CertificatePosition::Bundle(1),
        })
    );
}
