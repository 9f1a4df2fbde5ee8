//! The measurements that `nitro-cli build-enclave` prints.
//!
//! The AWS Nitro Enclaves User Guide (the `nitro-cli build-enclave` command reference)
//! documents the output as:
//!
//! ```json
//! { "Measurements": { "HashAlgorithm": "Sha384 { ... }",
//!                     "PCR0": "<96 hex>", "PCR1": "<96 hex>", "PCR2": "<96 hex>" } }
//! ```
//!
//! with `"PCR8"` added when the image is signed. `nitro-cli describe-eif` prints the same
//! `Measurements` object. The bare inner object, as teams often save it, is accepted too, and
//! so are progress lines before the JSON when stdout and stderr were captured together.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::attestation::pcr::{PcrError, PcrIndex, PcrValue};
use crate::policy::json::Node;

/// PCRs that a build measures: image, kernel and boot ramfs, application, signing
/// certificate (signed images only).
pub const BUILD_PCRS: [u8; 4] = [0, 1, 2, 8];

/// PCRs every build output carries.
const REQUIRED_PCRS: [u8; 3] = [0, 1, 2];

/// Measurements of one enclave image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildMeasurements {
    pcrs: BTreeMap<PcrIndex, PcrValue>,
}

/// Reason a build output was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildOutputError {
    #[error("build output is not JSON: {0}")]
    InvalidJson(String),
    #[error(
        "build output has no Measurements object; expected the JSON that nitro-cli \
         build-enclave prints"
    )]
    NoMeasurements,
    #[error("build output: HashAlgorithm is {0:?}; Nitro Enclaves measure with SHA-384")]
    HashAlgorithm(String),
    #[error("build output: unexpected member {0:?} in Measurements")]
    UnexpectedMember(String),
    #[error("build output: {0} is not a string")]
    NotAString(String),
    #[error("build output: missing {0}")]
    MissingPcr(String),
    #[error("build output: invalid PCR{index}: {error}")]
    InvalidPcr { index: u8, error: PcrError },
    #[error(
        "build output: duplicate key at {}; JSON parsers disagree on which value wins, so \
         each key may appear only once",
        paths.join(", ")
    )]
    DuplicateKeys { paths: Vec<String> },
    #[error(
        "build output: PCR{0} is all zeros, which is what a debug-mode enclave reports; take the \
         measurements from nitro-cli build-enclave, not from describe-enclaves"
    )]
    DebugModeZero(u8),
}

impl BuildMeasurements {
    /// Parses and checks a build output.
    pub fn parse(text: &str) -> Result<BuildMeasurements, BuildOutputError> {
        let json = skip_progress_lines(text)?;
        let value: Value = serde_json::from_str(json)
            .map_err(|error| BuildOutputError::InvalidJson(error.to_string()))?;
        reject_duplicate_keys(json)?;

        let measurements = match value.get("Measurements") {
            Some(inner) => inner,
            None if value.get("PCR0").is_some() => &value,
            None => return Err(BuildOutputError::NoMeasurements),
        };
        let Value::Object(members) = measurements else {
            return Err(BuildOutputError::NoMeasurements);
        };

        let mut pcrs = BTreeMap::new();
        for (name, value) in members {
            if name == "HashAlgorithm" {
                let algorithm = value
                    .as_str()
                    .ok_or_else(|| BuildOutputError::NotAString(name.clone()))?;
                if !algorithm.to_ascii_lowercase().starts_with("sha384") {
                    return Err(BuildOutputError::HashAlgorithm(algorithm.to_owned()));
                }
                continue;
            }
            let index = name
                .strip_prefix("PCR")
                .and_then(|digits| PcrIndex::parse_decimal(digits).ok())
                .filter(|index| BUILD_PCRS.contains(&index.get()))
                .ok_or_else(|| BuildOutputError::UnexpectedMember(name.clone()))?;
            let text = value
                .as_str()
                .ok_or_else(|| BuildOutputError::NotAString(name.clone()))?;
            let pcr =
                PcrValue::parse_sha384_hex(text).map_err(|error| BuildOutputError::InvalidPcr {
                    index: index.get(),
                    error,
                })?;
            if REQUIRED_PCRS.contains(&index.get()) && pcr.is_zero() {
                return Err(BuildOutputError::DebugModeZero(index.get()));
            }
            pcrs.insert(index, pcr);
        }

        for required in REQUIRED_PCRS {
            let present = pcrs.keys().any(|index| index.get() == required);
            if !present {
                return Err(BuildOutputError::MissingPcr(format!("PCR{required}")));
            }
        }
        Ok(BuildMeasurements { pcrs })
    }

    /// Returns the measured PCRs: 0, 1 and 2, and 8 for signed images.
    pub fn pcrs(&self) -> &BTreeMap<PcrIndex, PcrValue> {
        &self.pcrs
    }
}

/// Returns the JSON text in `text`, skipping lines before the first line that starts with
/// `{` (nitro-cli prints progress messages such as "Start building the Enclave Image...").
fn skip_progress_lines(text: &str) -> Result<&str, BuildOutputError> {
    let error = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => return Ok(text),
        Err(error) => error,
    };
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('{') && offset > 0 {
            return Ok(&text[offset..]);
        }
        offset += line.len();
    }
    Err(BuildOutputError::InvalidJson(error.to_string()))
}

/// Rejects JSON text in which any object repeats a key, because `serde_json::Value` would
/// silently keep the last value (a second "PCR0" would replace the first).
fn reject_duplicate_keys(json: &str) -> Result<(), BuildOutputError> {
    let root =
        Node::parse(json).map_err(|error| BuildOutputError::InvalidJson(error.to_string()))?;
    let paths = root.duplicate_key_paths();
    if paths.is_empty() {
        return Ok(());
    }
    Err(BuildOutputError::DuplicateKeys { paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(byte: &str) -> String {
        byte.repeat(48)
    }

    #[test]
    fn parses_signed_build_output() {
        let text = format!(
            r#"{{"Measurements": {{"HashAlgorithm": "Sha384 {{ ... }}", "PCR0": "{}",
                "PCR1": "{}", "PCR2": "{}", "PCR8": "{}"}}}}"#,
            hex("a0"),
            hex("a1"),
            hex("a2"),
            hex("a8")
        );
        let measurements = BuildMeasurements::parse(&text).unwrap();
        let indexes: Vec<u8> = measurements.pcrs().keys().map(|i| i.get()).collect();
        assert_eq!(indexes, [0, 1, 2, 8]);
    }

    #[test]
    fn skips_progress_lines() {
        let text = format!(
            "Start building the Enclave Image...\nEnclave Image successfully created.\n\
             {{\"Measurements\": {{\"PCR0\": \"{}\", \"PCR1\": \"{}\", \"PCR2\": \"{}\"}}}}\n",
            hex("b0"),
            hex("b1"),
            hex("b2")
        );
        assert!(BuildMeasurements::parse(&text).is_ok());
    }

    #[test]
    fn rejects_sha256_hash_algorithm() {
        let text = format!(
            r#"{{"HashAlgorithm": "Sha256 {{ ... }}", "PCR0": "{}", "PCR1": "{}", "PCR2": "{}"}}"#,
            hex("c0"),
            hex("c1"),
            hex("c2")
        );
        assert!(matches!(
            BuildMeasurements::parse(&text),
            Err(BuildOutputError::HashAlgorithm(_))
        ));
    }

    #[test]
    fn rejects_repeated_pcr_key_by_path() {
        let text = format!(
            r#"{{"Measurements": {{"PCR0": "{}", "PCR1": "{}", "PCR2": "{}", "PCR0": "{}"}}}}"#,
            hex("d0"),
            hex("d1"),
            hex("d2"),
            hex("e0")
        );
        assert_eq!(
            BuildMeasurements::parse(&text),
            Err(BuildOutputError::DuplicateKeys {
                paths: vec!["Measurements.PCR0".to_owned()]
            })
        );
    }

    #[test]
    fn rejects_repeated_key_after_progress_lines() {
        let text = format!(
            "Start building the Enclave Image...\n\
             {{\"Measurements\": {{\"PCR0\": \"{}\", \"PCR1\": \"{}\", \"PCR2\": \"{}\"}},\n\
             \"Measurements\": {{}}}}\n",
            hex("f0"),
            hex("f1"),
            hex("f2")
        );
        assert_eq!(
            BuildMeasurements::parse(&text),
            Err(BuildOutputError::DuplicateKeys {
                paths: vec!["Measurements".to_owned()]
            })
        );
    }

    #[test]
    fn rejects_pcr_that_builds_do_not_measure() {
        let text = format!(
            r#"{{"PCR0": "{}", "PCR1": "{}", "PCR2": "{}", "PCR4": "{}"}}"#,
            hex("c0"),
            hex("c1"),
            hex("c2"),
            hex("c4")
        );
        assert_eq!(
            BuildMeasurements::parse(&text),
            Err(BuildOutputError::UnexpectedMember("PCR4".to_owned()))
        );
    }
}
