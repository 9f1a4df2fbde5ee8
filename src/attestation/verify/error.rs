//! Errors of [`super::verify`], grouped by cause, each with a stable rule identifier.

use crate::attestation::cose::CoseError;
use crate::attestation::document::DocumentError;
use crate::attestation::pcr::{PcrIndex, PcrValue};
use crate::attestation::x509::{ChainError, format_time_ms};

/// Error from [`super::verify`], grouped by cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    // Malformed input.
    #[error("attestation document is {length} bytes; the limit is {limit}")]
    TooLarge { length: usize, limit: usize },
    #[error(transparent)]
    Cose(CoseError),
    #[error(transparent)]
    Payload(DocumentError),

    // Not authentic.
    #[error(transparent)]
    Chain(ChainError),
    #[error("COSE signature does not verify with the key of the leaf certificate ({subject})")]
    Signature { subject: String },

    // Authentic, but not what the caller expects.
    #[error(
        "document timestamp {} is later than the verification time {} by more than the {} s clock skew allowed",
        format_time_ms(*.timestamp_ms), format_time_ms(*.checked_at_ms), .skew_ms / 1000
    )]
    FromFuture {
        timestamp_ms: u64,
        checked_at_ms: u64,
        skew_ms: u64,
    },
    #[error(
        "document is too old: created at {}, checked at {}; the maximum age is {} s (plus {} s clock skew)",
        format_time_ms(*.timestamp_ms), format_time_ms(*.checked_at_ms), .max_age_ms / 1000, .skew_ms / 1000
    )]
    TooOld {
        timestamp_ms: u64,
        checked_at_ms: u64,
        max_age_ms: u64,
        skew_ms: u64,
    },
    #[error("nonce mismatch: expected {}, got {}", preview(.expected), preview_optional(.found.as_deref()))]
    NonceMismatch {
        expected: Vec<u8>,
        found: Option<Vec<u8>>,
    },
    #[error("public_key mismatch: expected {}, got {}", preview(.expected), preview_optional(.found.as_deref()))]
    PublicKeyMismatch {
        expected: Vec<u8>,
        found: Option<Vec<u8>>,
    },
    #[error("{}", pcr_report(.mismatches, .matched))]
    PcrMismatch {
        mismatches: Vec<PcrMismatch>,
        matched: Vec<PcrIndex>,
    },
    #[error(
        "not an enclave document: module {module_id} produced a NitroTPM (EC2 instance) attestation"
    )]
    NotEnclave { module_id: String },

    // The caller's mistake.
    #[error("invalid verification options: {detail}")]
    InvalidOptions { detail: String },
}

/// One expected PCR that the document does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrMismatch {
    pub index: PcrIndex,
    pub expected: PcrValue,
    /// The document's value, or `None` when the document lacks that PCR.
    pub found: Option<PcrValue>,
}

/// The broad reason for a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCause {
    /// The bytes are not a well-formed attestation document.
    MalformedInput,
    /// A well-formed document failed a check: chain, signature, time or an expectation.
    Denied,
    /// The verification options are unusable; the document was not examined.
    InvalidOptions,
}

impl VerifyError {
    /// Stable identifier of the rule that failed, like `chain.validity` or `pcr.mismatch`.
    pub fn rule(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. } => "input.too_large",
            VerifyError::Cose(error) => error.rule(),
            VerifyError::Payload(error) => error.rule(),
            VerifyError::Chain(error) => error.rule(),
            VerifyError::Signature { .. } => "cose.signature",
            VerifyError::FromFuture { .. } => "age.future",
            VerifyError::TooOld { .. } => "age.too_old",
            VerifyError::NonceMismatch { .. } => "nonce.mismatch",
            VerifyError::PublicKeyMismatch { .. } => "public_key.mismatch",
            VerifyError::PcrMismatch { .. } => "pcr.mismatch",
            VerifyError::NotEnclave { .. } => "kind.not_enclave",
            VerifyError::InvalidOptions { .. } => "options.invalid",
        }
    }

    pub fn cause(&self) -> ErrorCause {
        match self {
            VerifyError::TooLarge { .. } | VerifyError::Cose(_) | VerifyError::Payload(_) => {
                ErrorCause::MalformedInput
            }
            VerifyError::Chain(error) if error.is_malformed() => ErrorCause::MalformedInput,
            VerifyError::InvalidOptions { .. } => ErrorCause::InvalidOptions,
            _ => ErrorCause::Denied,
        }
    }

    /// True when the bytes are not a well-formed attestation document.
    pub fn is_malformed(&self) -> bool {
        self.cause() == ErrorCause::MalformedInput
    }
}

/// Maximum value length printed in full in messages. Longer values show their first bytes and
/// their length.
const PREVIEW_BYTES: usize = 64;

fn preview(bytes: &[u8]) -> String {
    if bytes.len() <= PREVIEW_BYTES {
        return format!("{} ({} bytes)", hex::encode(bytes), bytes.len());
    }
    format!(
        "{}… ({} bytes)",
        hex::encode(&bytes[..PREVIEW_BYTES / 2]),
        bytes.len()
    )
}

fn preview_optional(bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(bytes) => preview(bytes),
        None => "none (field absent or null)".to_owned(),
    }
}

/// Formats PCR mismatches as "PCR8 mismatch: expected …, got …; PCR0, PCR1 match".
fn pcr_report(mismatches: &[PcrMismatch], matched: &[PcrIndex]) -> String {
    let mut parts: Vec<String> = mismatches
        .iter()
        .map(|mismatch| match &mismatch.found {
            Some(found) => format!(
                "PCR{} mismatch: expected {}, got {found}",
                mismatch.index, mismatch.expected
            ),
            None => format!(
                "PCR{index} mismatch: expected {}, but the document has no PCR{index}",
                mismatch.expected,
                index = mismatch.index
            ),
        })
        .collect();
    if !matched.is_empty() {
        let names: Vec<String> = matched.iter().map(|index| format!("PCR{index}")).collect();
        parts.push(format!("{} match", names.join(", ")));
    }
    parts.join("; ")
}
