//! Mutations of valid documents, each rejected with its own error. Changes to the signed
//! payload are made on simulator-signed documents (re-signed under a simulator CA whose root
//! is trusted), so that they reach the payload checks rather than failing on the signature.

mod attestation_common;

use std::collections::BTreeMap;

use attestation_common::{
    encoded, join_sign1, nitro, options_at_document_time, payload_field, rewrite_payload,
    split_sign1,
};
use enclave_broker::attestation::cbor::{CborErrorKind, Encoder};
use enclave_broker::attestation::cose::{CoseError, ES384_PROTECTED_HEADER};
use enclave_broker::attestation::pcr::PcrIndex;
use enclave_broker::attestation::sim::{SimSigner, SimulatedEnclave};
use enclave_broker::attestation::verify::{TrustRoot, VerifyError, VerifyOptions, inspect, verify};

/// A production document with public_key, user_data and nonce set.
const REAL: &str = "eternis_2024-07-31_prod.cbor";

/// 2025-06-01T12:00:00Z, the time of simulator-signed documents.
const NOW_MS: u64 = 1_748_779_200_000;

fn rejected(bytes: &[u8], options: &VerifyOptions) -> VerifyError {
    match verify(bytes, options) {
        Ok(_) => panic!("document was accepted"),
        Err(error) => error,
    }
}

fn real_rejected(bytes: &[u8]) -> VerifyError {
    rejected(bytes, &options_at_document_time(&nitro(REAL)))
}

fn with_payload(bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let parts = split_sign1(bytes);
    join_sign1(&parts.protected, payload, &parts.signature)
}

fn with_cabundle(bytes: &[u8], cabundle: &[Vec<u8>]) -> Vec<u8> {
    let payload = split_sign1(bytes).payload;
    let new_payload = rewrite_payload(&payload, |field, _| {
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
    with_payload(bytes, &new_payload)
}

#[test]
fn real_document_mutations_rejected() {
    let bytes = nitro(REAL);
    let document = inspect(&bytes).unwrap();
    assert!(verify(&bytes, &options_at_document_time(&bytes)).is_ok());

    // Signature byte flipped.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    assert_eq!(real_rejected(&flipped).rule(), "cose.signature");

    // Payload byte flipped inside the PCR0 value.
    let pcr0 = document.pcr(PcrIndex::new(0).unwrap()).unwrap().as_bytes();
    let position = bytes.windows(48).position(|window| window == pcr0).unwrap();
    let mut flipped = bytes.clone();
    flipped[position + 10] ^= 0x80;
    assert_eq!(real_rejected(&flipped).rule(), "cose.signature");

    // cabundle reversed: the instance CA is now first, and is not a trusted root.
    let mut reversed = document.cabundle().to_vec();
    reversed.reverse();
    let error = real_rejected(&with_cabundle(&bytes, &reversed));
    assert_eq!(error.rule(), "chain.root");
    let expected = format!(
        "cabundle[0] is not a trusted root (SHA-256 {}); trusted roots: aws-nitro-enclaves-g1",
        hex::encode(TrustRoot::sha256_of(&reversed[0]))
    );
    assert_eq!(error.to_string(), expected);

    // Root removed.
    let error = real_rejected(&with_cabundle(&bytes, &document.cabundle()[1..]));
    assert_eq!(error.rule(), "chain.root");

    // Another self-signed P-384 root in place of AWS's.
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let other_root = sim.trust_root().unwrap().der().to_vec();
    let mut replaced = document.cabundle().to_vec();
    replaced[0] = other_root;
    let error = real_rejected(&with_cabundle(&bytes, &replaced));
    assert_eq!(error.rule(), "chain.root");

    // Leaf replaced by the leaf of another document.
    let other_leaf = inspect(&nitro("evervault_2023-09-18_debug.cbor"))
        .unwrap()
        .certificate()
        .to_vec();
    let payload = rewrite_payload(&split_sign1(&bytes).payload, |field, _| {
        (field == "certificate").then(|| encoded(|encoder| encoder.bytes(&other_leaf)))
    });
    let error = real_rejected(&with_payload(&bytes, &payload));
    assert_eq!(error.rule(), "chain.issuer");
    assert!(
        error
            .to_string()
            .starts_with("leaf certificate has issuer "),
        "{error}"
    );

    // Tag other than 18.
    let tagged = [&[0xd8, 0x62][..], &bytes].concat();
    assert_eq!(
        real_rejected(&tagged),
        VerifyError::Cose(CoseError::Tag { found: 98 })
    );

    // ES256 protected header {1: -7}.
    let parts = split_sign1(&bytes);
    let es256 = join_sign1(&[0xa1, 0x01, 0x26], &parts.payload, &parts.signature);
    let error = real_rejected(&es256);
    assert_eq!(error.rule(), "cose.algorithm");
    assert_eq!(
        error.to_string(),
        "unsupported COSE algorithm -7 (ES256); expected -35 (ES384)"
    );

    // Trailing bytes after the COSE array.
    let trailing = [&bytes[..], &[0x00]].concat();
    let error = real_rejected(&trailing);
    let VerifyError::Cose(CoseError::Cbor(cbor)) = &error else {
        panic!("expected a CBOR error, got {error}");
    };
    assert_eq!(cbor.kind(), &CborErrorKind::TrailingBytes { count: 1 });
    assert_eq!(cbor.offset(), bytes.len());
}

#[test]
fn truncated_documents_rejected_without_panic() {
    let bytes = nitro(REAL);
    let options = options_at_document_time(&bytes);
    for length in (0..bytes.len()).step_by(97) {
        let error = rejected(&bytes[..length], &options);
        assert!(error.is_malformed(), "length {length}: {error}");
    }
}

#[test]
fn single_byte_flips_rejected() {
    let bytes = nitro(REAL);
    let options = options_at_document_time(&bytes);
    for position in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[position] ^= 0xff;
        assert!(verify(&flipped, &options).is_err(), "byte {position}");
    }
}

#[test]
fn high_s_and_low_s_forms_both_verify() {
    // n, the order of the P-384 group.
    let order = hex::decode(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    )
    .unwrap();
    for name in [
        "eternis_2024-07-31_prod.cbor",
        "evervault_2022-10-13_prod.cbor",
    ] {
        let bytes = nitro(name);
        let parts = split_sign1(&bytes);
        let s = &parts.signature[48..];
        // n - s, big-endian subtraction with borrow.
        let mut negated = vec![0u8; 48];
        let mut borrow = 0i16;
        for i in (0..48).rev() {
            let mut difference = i16::from(order[i]) - i16::from(s[i]) - borrow;
            borrow = i16::from(difference < 0);
            if difference < 0 {
                difference += 256;
            }
            negated[i] = difference as u8;
        }
        let signature = [&parts.signature[..48], &negated].concat();
        let malleated = join_sign1(&parts.protected, &parts.payload, &signature);
        let options = options_at_document_time(&bytes);
        assert!(verify(&bytes, &options).is_ok(), "{name}");
        assert!(verify(&malleated, &options).is_ok(), "{name} with n - s");
    }
}

/// Payload fields in NSM order, each an encoded value, for simulator-signed mutations.
struct Payload {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Payload {
    fn valid(signer: &SimSigner) -> Self {
        let pcrs = encoded(|encoder| {
            encoder.map(16);
            for index in 0..16u64 {
                encoder.unsigned(index).bytes(&[index as u8; 48]);
            }
            encoder
        });
        let cabundle = encoded(|encoder| {
            encoder.array(signer.cabundle().len());
            for certificate in signer.cabundle() {
                encoder.bytes(certificate);
            }
            encoder
        });
        let mut payload = Self { entries: vec![] };
        payload.set(
            "module_id",
            encoded(|e| e.text("i-sim0000000000000-enc0000000000000000")),
        );
        payload.set("digest", encoded(|e| e.text("SHA384")));
        payload.set("timestamp", encoded(|e| e.unsigned(NOW_MS)));
        payload.set("pcrs", pcrs);
        payload.set("certificate", encoded(|e| e.bytes(signer.certificate())));
        payload.set("cabundle", cabundle);
        payload.set("public_key", encoded(|e| e.null()));
        payload.set("user_data", encoded(|e| e.null()));
        payload.set("nonce", encoded(|e| e.bytes(&[1, 2, 3])));
        payload
    }

    fn set(&mut self, name: &str, value: Vec<u8>) -> &mut Self {
        let key = encoded(|e| e.text(name));
        match self
            .entries
            .iter_mut()
            .find(|(existing, _)| *existing == key)
        {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
        self
    }

    fn remove(&mut self, name: &str) -> &mut Self {
        let key = encoded(|e| e.text(name));
        self.entries.retain(|(existing, _)| *existing != key);
        self
    }

    fn push_raw(&mut self, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.entries.push((key, value));
        self
    }

    fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::new();
        encoder.map(self.entries.len());
        for (key, value) in &self.entries {
            encoder.raw(key).raw(value);
        }
        encoder.into_bytes()
    }

    fn encode_indefinite(&self) -> Vec<u8> {
        let mut encoder = Encoder::new();
        encoder.indefinite_map();
        for (key, value) in &self.entries {
            encoder.raw(key).raw(value);
        }
        encoder.end();
        encoder.into_bytes()
    }
}

struct SimFixture {
    _dir: tempfile::TempDir,
    signer: SimSigner,
    options: VerifyOptions,
}

fn sim_fixture() -> SimFixture {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let signer = sim.issue_signer(NOW_MS).unwrap();
    let mut options = VerifyOptions::new(NOW_MS);
    options.trust_roots = vec![sim.trust_root().unwrap()];
    SimFixture {
        _dir: dir,
        signer,
        options,
    }
}

impl SimFixture {
    fn sign(&self, payload: &[u8]) -> Vec<u8> {
        self.signer.sign(&ES384_PROTECTED_HEADER, payload).unwrap()
    }

    fn error(&self, payload: &Payload) -> VerifyError {
        rejected(&self.sign(&payload.encode()), &self.options)
    }
}

#[test]
fn sim_signed_valid_payload_verifies() {
    let fixture = sim_fixture();
    let payload = Payload::valid(&fixture.signer);
    assert!(verify(&fixture.sign(&payload.encode()), &fixture.options).is_ok());
    assert!(
        verify(
            &fixture.sign(&payload.encode_indefinite()),
            &fixture.options
        )
        .is_ok()
    );
}

#[test]
fn sim_signed_field_mutations_rejected() {
    let fixture = sim_fixture();
    let valid = || Payload::valid(&fixture.signer);
    let pcrs_with = |key: Vec<u8>, value: Vec<u8>| {
        encoded(|encoder| {
            encoder
                .map(2)
                .unsigned(0)
                .bytes(&[0; 48])
                .raw(&key)
                .raw(&value)
        })
    };
    let cases: Vec<(&str, Payload, &str, &str)> = vec![
        (
            "digest SHA256",
            {
                let mut p = valid();
                p.set("digest", encoded(|e| e.text("SHA256")));
                p
            },
            "payload.field",
            "payload field digest is \"SHA256\"; expected \"SHA384\"",
        ),
        (
            "PCR value of 32 bytes",
            {
                let mut p = valid();
                p.set(
                    "pcrs",
                    pcrs_with(encoded(|e| e.unsigned(3)), encoded(|e| e.bytes(&[9; 32]))),
                );
                p
            },
            "payload.field",
            "payload field pcrs[3] is 32 bytes; expected 48 (SHA384)",
        ),
        (
            "PCR index 32",
            {
                let mut p = valid();
                p.set(
                    "pcrs",
                    pcrs_with(encoded(|e| e.unsigned(32)), encoded(|e| e.bytes(&[9; 48]))),
                );
                p
            },
            "payload.field",
            "payload field pcrs has PCR index 32; expected 0 to 31",
        ),
        (
            "PCR index as text",
            {
                let mut p = valid();
                p.set(
                    "pcrs",
                    pcrs_with(encoded(|e| e.text("1")), encoded(|e| e.bytes(&[9; 48]))),
                );
                p
            },
            "payload.field",
            "payload field pcrs key is a text string; expected an unsigned integer",
        ),
        (
            "empty pcrs",
            {
                let mut p = valid();
                p.set("pcrs", encoded(|e| e.map(0)));
                p
            },
            "payload.field",
            "payload field pcrs has 0 entries; expected 1 to 32",
        ),
        (
            "empty module_id",
            {
                let mut p = valid();
                p.set("module_id", encoded(|e| e.text("")));
                p
            },
            "payload.field",
            "payload field module_id is empty; expected a module id",
        ),
        (
            "1025-byte nonce",
            {
                let mut p = valid();
                p.set("nonce", encoded(|e| e.bytes(&[7; 1025])));
                p
            },
            "payload.field",
            "payload field nonce is 1025 bytes; the limit is 1024",
        ),
        (
            "1025-byte public_key",
            {
                let mut p = valid();
                p.set("public_key", encoded(|e| e.bytes(&[7; 1025])));
                p
            },
            "payload.field",
            "payload field public_key is 1025 bytes; the limit is 1024",
        ),
        (
            "public_key as text",
            {
                let mut p = valid();
                p.set("public_key", encoded(|e| e.text("key")));
                p
            },
            "payload.field",
            "payload field public_key is a text string; expected a byte string or null",
        ),
        (
            "timestamp zero",
            {
                let mut p = valid();
                p.set("timestamp", encoded(|e| e.unsigned(0)));
                p
            },
            "payload.field",
            "payload field timestamp is 0; expected milliseconds since 1970",
        ),
        (
            "negative timestamp",
            {
                let mut p = valid();
                p.set("timestamp", encoded(|e| e.int(-1)));
                p
            },
            "payload.field",
            "payload field timestamp is a negative integer; expected an unsigned integer",
        ),
        (
            "empty cabundle",
            {
                let mut p = valid();
                p.set("cabundle", encoded(|e| e.array(0)));
                p
            },
            "payload.field",
            "payload field cabundle is empty; expected at least the root certificate",
        ),
        (
            "empty certificate",
            {
                let mut p = valid();
                p.set("certificate", encoded(|e| e.bytes(&[])));
                p
            },
            "payload.field",
            "payload field certificate is 0 bytes; expected at least 1",
        ),
        (
            "1025-byte certificate",
            {
                let mut p = valid();
                p.set("certificate", encoded(|e| e.bytes(&[0x30; 1025])));
                p
            },
            "payload.field",
            "payload field certificate is 1025 bytes; the limit is 1024",
        ),
        (
            "both pcrs and nitrotpm_pcrs",
            {
                let mut p = valid();
                let pcrs = payload_field(&p.encode(), "pcrs");
                p.set("nitrotpm_pcrs", pcrs);
                p
            },
            "payload.field",
            "payload field nitrotpm_pcrs appears together with pcrs; expected one of them",
        ),
        (
            "unknown field",
            {
                let mut p = valid();
                p.set("debug", encoded(|e| e.bool(false)));
                p
            },
            "payload.unknown_field",
            "payload has unknown field \"debug\"; expected only the fields NSM defines",
        ),
        (
            "integer key",
            {
                let mut p = valid();
                p.push_raw(encoded(|e| e.unsigned(1)), encoded(|e| e.null()));
                p
            },
            "payload.structure",
            "payload key at byte ",
        ),
    ];
    for (case, payload, rule, message) in cases {
        let error = fixture.error(&payload);
        assert_eq!(error.rule(), rule, "{case}: {error}");
        assert!(error.to_string().starts_with(message), "{case}: {error}");
        assert!(error.is_malformed(), "{case}");
    }
}

#[test]
fn sim_signed_payload_missing_fields_named() {
    let fixture = sim_fixture();
    for field in [
        "module_id",
        "digest",
        "timestamp",
        "pcrs",
        "certificate",
        "cabundle",
    ] {
        let mut payload = Payload::valid(&fixture.signer);
        payload.remove(field);
        let error = fixture.error(&payload);
        assert_eq!(error.rule(), "payload.field", "{field}");
        assert_eq!(
            error.to_string(),
            format!("payload field {field} is missing")
        );
    }
}

#[test]
fn sim_signed_absent_optional_fields_accepted() {
    let fixture = sim_fixture();
    let mut payload = Payload::valid(&fixture.signer);
    payload.remove("public_key").remove("user_data");
    payload.set("nonce", encoded(|e| e.bytes(&[])));
    let verified = verify(&fixture.sign(&payload.encode()), &fixture.options).unwrap();
    assert_eq!(verified.document().public_key(), None);
    assert_eq!(verified.document().user_data(), None);
    assert_eq!(verified.document().nonce(), Some(&[][..]));
}

#[test]
fn accepts_sparse_pcrs_and_absent_or_empty_optionals() {
    // Fields a verifier must tolerate: protected header exactly {1: -35}, PCRs 0-4 and 8
    // only, public_key absent, user_data null, nonce an empty byte string.
    let fixture = sim_fixture();
    let mut payload = Payload::valid(&fixture.signer);
    let indexes = [0u64, 1, 2, 3, 4, 8];
    let pcrs = encoded(|encoder| {
        encoder.map(indexes.len());
        for index in indexes {
            encoder.unsigned(index).bytes(&[index as u8 + 1; 48]);
        }
        encoder
    });
    payload.set("pcrs", pcrs);
    payload.remove("public_key");
    payload.set("user_data", encoded(|e| e.null()));
    payload.set("nonce", encoded(|e| e.bytes(&[])));
    let bytes = fixture.sign(&payload.encode());
    assert_eq!(split_sign1(&bytes).protected, [0xa1, 0x01, 0x38, 0x22]);

    let verified = verify(&bytes, &fixture.options).unwrap();
    let document = verified.document();
    let found: Vec<u8> = document.pcrs().keys().map(|index| index.get()).collect();
    assert_eq!(found, [0, 1, 2, 3, 4, 8]);
    assert_eq!(document.public_key(), None);
    assert_eq!(document.user_data(), None);
    assert_eq!(document.nonce(), Some(&[][..]));
}

#[test]
fn sim_signed_duplicate_key_rejected() {
    let fixture = sim_fixture();
    let mut payload = Payload::valid(&fixture.signer);
    payload.push_raw(encoded(|e| e.text("nonce")), encoded(|e| e.bytes(&[4])));
    let error = fixture.error(&payload);
    assert_eq!(error.rule(), "payload.cbor");
    let VerifyError::Payload(enclave_broker::attestation::document::DocumentError::Cbor(cbor)) =
        &error
    else {
        panic!("expected a payload CBOR error, got {error}");
    };
    assert_eq!(
        cbor.kind(),
        &CborErrorKind::DuplicateKey {
            key: "\"nonce\"".to_owned()
        }
    );
}

#[test]
fn sim_signed_trailing_bytes_after_payload_rejected() {
    let fixture = sim_fixture();
    let payload = [Payload::valid(&fixture.signer).encode(), vec![0xf6]].concat();
    let error = rejected(&fixture.sign(&payload), &fixture.options);
    assert_eq!(error.rule(), "payload.cbor");
    assert!(
        error
            .to_string()
            .contains("1 bytes after the end of the item"),
        "{error}"
    );
}

#[test]
fn non_map_payload_rejected() {
    let fixture = sim_fixture();
    let error = rejected(&fixture.sign(&[0x80]), &fixture.options);
    assert_eq!(error.rule(), "payload.structure");
    assert_eq!(error.to_string(), "payload is an array; expected a map");
}

#[test]
fn document_over_size_limit_rejected() {
    let bytes = vec![0u8; 64 * 1024 + 1];
    let error = rejected(&bytes, &VerifyOptions::new(NOW_MS));
    assert_eq!(error.rule(), "input.too_large");
    assert_eq!(
        error.to_string(),
        "attestation document is 65537 bytes; the limit is 65536"
    );
}
