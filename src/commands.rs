//! One module per command: each validates its raw arguments (second stage) and runs.

pub mod attest;
pub mod policy;
pub mod proxy;
pub mod release;
pub mod sim;
pub mod verify;

use std::collections::BTreeMap;

use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};

/// An error with the exit code it maps to: 1 denied, 2 usage or input, 3 upstream.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: i32, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: u8::try_from(code).unwrap_or(3),
            error: error.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(2, anyhow::anyhow!(message.into()))
    }
}

/// Parses repeated `--pcr N=HEX` values into a map; a repeated index is an error.
pub fn parse_pcr_flags(values: &[String]) -> Result<BTreeMap<PcrIndex, PcrValue>, Failure> {
    let mut pcrs = BTreeMap::new();
    for value in values {
        let (index, hex) = value.split_once('=').ok_or_else(|| {
            Failure::usage(format!(
                "--pcr {value:?}: expected N=HEX (e.g. 0=<96 hex digits>)"
            ))
        })?;
        let index = PcrIndex::parse_decimal(index)
            .map_err(|error| Failure::usage(format!("--pcr {value:?}: {error}")))?;
        let pcr = PcrValue::parse_sha384_hex(hex)
            .map_err(|error| Failure::usage(format!("--pcr {value:?}: {error}")))?;
        if pcrs.insert(index, pcr).is_some() {
            return Err(Failure::usage(format!(
                "--pcr: PCR{index} is given more than once"
            )));
        }
    }
    Ok(pcrs)
}

/// Builds the multi-threaded tokio runtime the async commands run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::new(3, error))
}
