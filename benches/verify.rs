//! Attestation verification speed over the real documents in `tests/fixtures/nitro/`, each
//! checked at its own timestamp, beside the cost of the signature checks themselves.
//!
//! - `cold`: `verify`, nothing cached: four certificate signatures and the COSE signature.
//! - `warm`: `verify_with_cache` with every intermediate signature cached: the leaf
//!   certificate's signature and the COSE signature remain.
//! - `floor_5_signatures` and `floor_2_signatures`: the same five (or two) ECDSA P-384
//!   verifications done directly with aws-lc-rs on each document's own keys, messages and
//!   signatures, prepared before the timing starts.
//!
//! Each iteration goes through every document once, so throughput is in documents per second.

use std::path::Path;

use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enclave_broker::attestation::cose::CoseSign1;
use enclave_broker::attestation::verify::{
    VerifierCache, VerifyOptions, inspect, verify, verify_with_cache,
};
use enclave_broker::attestation::x509::ParsedCertificate;

/// One real document and the options that verify it.
struct Document {
    bytes: Vec<u8>,
    options: VerifyOptions,
}

/// The inputs of one ECDSA verification.
struct SignatureCheck {
    asn1: bool,
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl SignatureCheck {
    fn run(&self) {
        let algorithm = if self.asn1 {
            &ECDSA_P384_SHA384_ASN1
        } else {
            &ECDSA_P384_SHA384_FIXED
        };
        let verified = UnparsedPublicKey::new(algorithm, &self.public_key)
            .verify(&self.message, &self.signature);
        assert!(verified.is_ok());
    }
}

fn load_documents() -> Vec<Document> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nitro");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "cbor")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("fixture file");
            let mut options =
                VerifyOptions::new(inspect(&bytes).expect("real document").timestamp_ms());
            // The NitroTPM document is one of the real documents, and it verifies as kind nitrotpm.
            options.require_enclave = false;
            Document { bytes, options }
        })
        .collect()
}

/// Prepares the four certificate signature checks (cabundle[1..] and the leaf) and the COSE
/// signature check of a document, in the order the verifier runs them.
fn signature_checks(bytes: &[u8]) -> Vec<SignatureCheck> {
    let document = inspect(bytes).expect("real document");
    let ders: Vec<&[u8]> = document
        .cabundle()
        .iter()
        .map(Vec::as_slice)
        .chain([document.certificate()])
        .collect();
    let certificates: Vec<ParsedCertificate<'_>> = ders
        .iter()
        .map(|der| ParsedCertificate::parse(der).expect("real certificate"))
        .collect();

    let mut checks: Vec<SignatureCheck> = certificates
        .windows(2)
        .map(|pair| SignatureCheck {
            asn1: true,
            public_key: pair[0].public_key().to_vec(),
            message: pair[1].tbs().to_vec(),
            signature: pair[1]
                .certificate()
                .signature()
                .as_bytes()
                .expect("signature without unused bits")
                .to_vec(),
        })
        .collect();
    let sign1 = CoseSign1::parse(bytes).expect("real COSE_Sign1");
    let leaf = certificates.last().expect("leaf certificate");
    checks.push(SignatureCheck {
        asn1: false,
        public_key: leaf.public_key().to_vec(),
        message: sign1.signature_input(),
        signature: sign1.signature().to_vec(),
    });
    checks
}

fn bench_verify(c: &mut Criterion) {
    let documents = load_documents();
    let checks: Vec<Vec<SignatureCheck>> = documents
        .iter()
        .map(|document| signature_checks(&document.bytes))
        .collect();
    for (document, checks) in documents.iter().zip(&checks) {
        assert!(verify(&document.bytes, &document.options).is_ok());
        assert_eq!(checks.len(), 5, "real documents have three intermediates");
    }

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(documents.len() as u64));

    group.bench_function("cold", |b| {
        b.iter(|| {
            for document in &documents {
                assert!(verify(&document.bytes, &document.options).is_ok());
            }
        })
    });

    let cache = VerifierCache::new();
    for document in &documents {
        assert!(verify_with_cache(&document.bytes, &document.options, &cache).is_ok());
    }
    group.bench_function("warm", |b| {
        b.iter(|| {
            for document in &documents {
                assert!(verify_with_cache(&document.bytes, &document.options, &cache).is_ok());
            }
        })
    });

    group.bench_function("floor_5_signatures", |b| {
        b.iter(|| {
            for document_checks in &checks {
                document_checks.iter().for_each(SignatureCheck::run);
            }
        })
    });

    // The leaf certificate's signature and the COSE signature: what the warm path checks.
    group.bench_function("floor_2_signatures", |b| {
        b.iter(|| {
            for document_checks in &checks {
                document_checks[3..].iter().for_each(SignatureCheck::run);
            }
        })
    });

    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
