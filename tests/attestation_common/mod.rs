//! Helpers shared by the attestation integration tests: fixture loading and payload rewriting.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use enclave_broker::attestation::cbor::{self, Encoder, Item, Value};
use enclave_broker::attestation::verify::{VerifyOptions, inspect};

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

pub fn nitro(name: &str) -> Vec<u8> {
    read_fixture(&format!("nitro/{name}"))
}

/// Names of the real documents listed in expected.json, with their expected values.
pub fn expected_documents() -> Vec<(String, serde_json::Value)> {
    let text = read_fixture("nitro/expected.json");
    let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
    json.as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Options with the AWS root at the document's own timestamp.
pub fn options_at_document_time(bytes: &[u8]) -> VerifyOptions {
    let document = inspect(bytes).unwrap();
    VerifyOptions::new(document.timestamp_ms())
}

/// The parts of a COSE_Sign1: protected header, payload and signature contents.
pub struct Sign1Parts {
    pub protected: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

pub fn split_sign1(bytes: &[u8]) -> Sign1Parts {
    let item = cbor::decode(bytes).unwrap();
    let Value::Array { items, .. } = item.value() else {
        panic!("not an array");
    };
    let content = |item: &Item<'_>| match item.value() {
        Value::Bytes { content, .. } => content.to_vec(),
        other => panic!("expected bytes, found {}", other.type_name()),
    };
    Sign1Parts {
        protected: content(&items[0]),
        payload: content(&items[2]),
        signature: content(&items[3]),
    }
}

pub fn join_sign1(protected: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    encoder
        .array(4)
        .bytes(protected)
        .map(0)
        .bytes(payload)
        .bytes(signature);
    encoder.into_bytes()
}

/// Re-encodes a payload map as a definite-length map, replacing the value of each field for
/// which `replace` returns encoded CBOR (other values are copied as received).
pub fn rewrite_payload(
    payload: &[u8],
    replace: impl Fn(&str, &Item<'_>) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let item = cbor::decode(payload).unwrap();
    let Value::Map { entries, .. } = item.value() else {
        panic!("payload is not a map");
    };
    let mut encoder = Encoder::new();
    encoder.map(entries.len());
    for (key, value) in entries {
        let Value::Text { content, .. } = key.value() else {
            panic!("non-text key");
        };
        encoder.raw(key.raw());
        match replace(content, value) {
            Some(encoded) => encoder.raw(&encoded),
            None => encoder.raw(value.raw()),
        };
    }
    encoder.into_bytes()
}

/// Encodes the items the closure writes.
pub fn encoded(write: impl FnOnce(&mut Encoder) -> &mut Encoder) -> Vec<u8> {
    let mut encoder = Encoder::new();
    write(&mut encoder);
    encoder.into_bytes()
}

/// Returns the encoded value of payload field `name`, as received.
pub fn payload_field(payload: &[u8], name: &str) -> Vec<u8> {
    let item = cbor::decode(payload).unwrap();
    let Value::Map { entries, .. } = item.value() else {
        panic!("payload is not a map");
    };
    entries
        .iter()
        .find(|(key, _)| matches!(key.value(), Value::Text { content, .. } if content == name))
        .map(|(_, value)| value.raw().to_vec())
        .unwrap_or_else(|| panic!("payload has no {name}"))
}
