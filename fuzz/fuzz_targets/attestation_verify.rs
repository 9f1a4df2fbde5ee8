//! Attestation document parsing and verification of bytes in the shape NSM returns, checked
//! against the AWS Nitro Enclaves root.
//!
//! A document is verified at its own timestamp (the time [`verify::inspect`] reads), so
//! mutations of the real documents in the seed corpus still reach the chain and signature
//! checks although their leaf certificates expired long ago. Input that does not parse far
//! enough to have a timestamp is verified at a fixed time. Each input is verified twice: once
//! with the defaults, and once expecting the PCRs, nonce and public key that the document
//! itself claims, with NitroTPM documents allowed, which runs the remaining checks.
#![no_main]

use std::time::Duration;

use enclave_broker::attestation::verify::{self, VerifyOptions};
use libfuzzer_sys::fuzz_target;

/// 2024-11-30T00:00:00Z in milliseconds since the UNIX epoch, near the newest real documents
/// in the seed corpus.
const FALLBACK_TIME_MS: u64 = 1_732_924_800_000;

fuzz_target!(|data: &[u8]| {
    let claimed = verify::inspect(data).ok();
    let time_ms = claimed
        .as_ref()
        .map_or(FALLBACK_TIME_MS, |document| document.timestamp_ms());

    if let Err(error) = verify::verify(data, &VerifyOptions::new(time_ms)) {
        let _ = (error.to_string(), error.rule());
    }

    let mut options = VerifyOptions::new(time_ms);
    options.require_enclave = false;
    options.max_age = Some(Duration::from_secs(300));
    if let Some(document) = &claimed {
        options.expected_pcrs = document
            .pcrs()
            .iter()
            .filter(|(_, value)| value.as_bytes().len() == 48)
            .map(|(index, value)| (*index, value.clone()))
            .collect();
        options.expected_nonce = document
            .nonce()
            .filter(|nonce| !nonce.is_empty())
            .map(<[u8]>::to_vec);
        options.expected_public_key = document
            .public_key()
            .filter(|key| !key.is_empty())
            .map(<[u8]>::to_vec);
    }
    match verify::verify(data, &options) {
        Ok(verified) => {
            // Only a document that parses can verify, and the proof keeps the exact bytes.
            assert!(
                claimed.is_some(),
                "verified a document that inspect rejects"
            );
            assert_eq!(verified.bytes(), data);
        }
        Err(error) => {
            let _ = (error.to_string(), error.rule());
        }
    }
});
