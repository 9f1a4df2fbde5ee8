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
//! After criterion's report, a paired measurement runs the four variants back to back and
//! prints the ratios to the floor (see [`print_paired_ratios`]).

use std::path::Path;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use criterion::{Criterion, Throughput};
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

/// The documents, their prepared signature checks and a filled cache.
struct Workload {
    documents: Vec<Document>,
    checks: Vec<Vec<SignatureCheck>>,
    cache: VerifierCache,
}

impl Workload {
    fn new() -> Self {
        let documents = load_documents();
        let checks: Vec<Vec<SignatureCheck>> = documents
            .iter()
            .map(|document| signature_checks(&document.bytes))
            .collect();
        let cache = VerifierCache::new();
        for (document, checks) in documents.iter().zip(&checks) {
            assert!(verify(&document.bytes, &document.options).is_ok());
            assert!(verify_with_cache(&document.bytes, &document.options, &cache).is_ok());
            assert_eq!(checks.len(), 5, "real documents have three intermediates");
        }
        Self {
            documents,
            checks,
            cache,
        }
    }

    fn cold(&self) {
        for document in &self.documents {
            assert!(verify(&document.bytes, &document.options).is_ok());
        }
    }

    fn warm(&self) {
        for document in &self.documents {
            assert!(verify_with_cache(&document.bytes, &document.options, &self.cache).is_ok());
        }
    }

    fn floor_5_signatures(&self) {
        for document_checks in &self.checks {
            document_checks.iter().for_each(SignatureCheck::run);
        }
    }

    /// Runs the leaf certificate's signature check and the COSE signature check, the two
    /// that the warm path still runs.
    fn floor_2_signatures(&self) {
        for document_checks in &self.checks {
            document_checks[3..].iter().for_each(SignatureCheck::run);
        }
    }
}

/// A named measurement: one pass over every document.
type Variant = (&'static str, fn(&Workload));

/// The four measurements, in the order they run.
const VARIANTS: [Variant; 4] = [
    ("cold", Workload::cold),
    ("warm", Workload::warm),
    ("floor_5_signatures", Workload::floor_5_signatures),
    ("floor_2_signatures", Workload::floor_2_signatures),
];

fn bench_verify(c: &mut Criterion, workload: &Workload) {
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(workload.documents.len() as u64));
    for (name, run) in VARIANTS {
        group.bench_function(name, |b| b.iter(|| run(workload)));
    }
    group.finish();
}

/// Rounds of the paired measurement.
const PAIRED_ROUNDS: usize = 200;

/// Runs the four variants back to back in each of [`PAIRED_ROUNDS`] rounds and prints the
/// median of each and the ratios to the floor. Criterion measures one variant for seconds
/// before the next, so on a shared machine a change of load between them skews the ratios.
/// Variants measured within milliseconds of each other see the same load.
fn print_paired_ratios(workload: &Workload) {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(PAIRED_ROUNDS); VARIANTS.len()];
    for _ in 0..PAIRED_ROUNDS {
        for (index, (_, run)) in VARIANTS.iter().enumerate() {
            let start = Instant::now();
            run(workload);
            times[index].push(start.elapsed());
        }
    }

    let documents = workload.documents.len() as f64;
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|samples| {
            samples.sort_unstable();
            samples[samples.len() / 2].as_secs_f64()
        })
        .collect();
    println!("paired medians over {PAIRED_ROUNDS} rounds of {documents} documents:");
    for ((name, _), median) in VARIANTS.iter().zip(&medians) {
        println!("  {name:<20} {:>8.0} documents/s", documents / median);
    }
    println!(
        "  cold / floor_5_signatures = {:.3} (target 1.25 or less)",
        medians[0] / medians[2]
    );
    println!(
        "  warm / floor_2_signatures = {:.3} (target 1.5 or less)",
        medians[1] / medians[3]
    );
}

fn main() {
    let workload = Workload::new();
    let mut criterion = Criterion::default().configure_from_args();
    bench_verify(&mut criterion, &workload);
    criterion.final_summary();

    // `cargo test --all-targets` runs this binary without --bench, to check that each
    // benchmark runs once. The paired measurement is for benchmark runs only.
    if std::env::args().any(|argument| argument == "--bench") {
        print_paired_ratios(&workload);
    }
}
