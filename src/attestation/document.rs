//! The attestation document payload, as specified in AWS's "Nitro Enclaves attestation
//! process" (aws-nitro-enclaves-nsm-api, docs/attestation_process.md), sections
//! 2.2 and 3.2.2:
//!
//! ```text
//! AttestationDocument = {
//!     module_id:   text,                    ; non-empty
//!     digest:      "SHA384",
//!     timestamp:   uint .size 8,            ; milliseconds since the UNIX epoch
//!     pcrs:        { + index => bstr },     ; 1–32 entries, index 0–31, 48-byte values
//!     certificate: bstr,                    ; DER leaf certificate, 1–1024 bytes
//!     cabundle:    [ + bstr ],              ; DER certificates, root first, 1–1024 bytes each
//!     ? public_key: bstr / null,            ; at most 1024 bytes
//!     ? user_data:  bstr / null,            ; at most 1024 bytes
//!     ? nonce:      bstr / null,            ; at most 1024 bytes
//! }
//! ```
//!
//! EC2 NitroTPM documents have the same shape with `nitrotpm_pcrs` in place of `pcrs`.
//! The map may be definite or indefinite length. Keys other than those above are rejected:
//! no real document carries any, and an unknown field could be one a consumer misreads.

mod fields;

use std::collections::BTreeMap;

use super::cbor::{self, CborError, Value};
use super::pcr::{PcrIndex, PcrValue};
use fields::{
    Fields, bounded_bytes, invalid, optional_bytes, parse_cabundle, parse_pcrs, text, wrong_type,
};

/// Maximum length of `public_key`, `user_data` and `nonce`. NSM's documentation also gives
/// 512 for some fields, but real documents carry 1024-byte values.
pub const MAX_OPTIONAL_FIELD_LEN: usize = 1024;

/// Maximum length of `certificate` and of each `cabundle` entry.
pub const MAX_CERTIFICATE_LEN: usize = 1024;

/// Maximum number of PCRs in `pcrs` (NSM has 32 PCRs).
pub const MAX_PCRS: usize = 32;

/// The only digest NSM uses.
pub const DIGEST_SHA384: &str = "SHA384";

/// Kind of module that produced the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// A Nitro Enclave (`pcrs`).
    Enclave,
    /// An EC2 instance's NitroTPM (`nitrotpm_pcrs`); its PCRs are TPM measurements, not
    /// enclave image measurements.
    NitroTpm,
}

impl DocumentKind {
    /// Lowercase name used in JSON output: `enclave` or `nitrotpm`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Enclave => "enclave",
            DocumentKind::NitroTpm => "nitrotpm",
        }
    }
}

/// A typed attestation document payload. Obtaining one does not mean it is authentic: only
/// `verify::verify` checks the signature and certificate chain.
///
/// `public_key`, `user_data` and `nonce` are `None` when the field is absent or null, and
/// `Some` with the bytes otherwise. An empty byte string stays `Some(empty)`, because that is
/// what was signed, and real documents carry empty strings. An expectation of a non-empty
/// value never matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDocument {
    module_id: String,
    timestamp_ms: u64,
    pcrs: BTreeMap<PcrIndex, PcrValue>,
    kind: DocumentKind,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

impl AttestationDocument {
    /// Parses a payload (the content of the COSE_Sign1 payload byte string).
    pub fn from_payload(payload: &[u8]) -> Result<Self, DocumentError> {
        Self::from_payload_at(payload, 0)
    }

    /// Like [`AttestationDocument::from_payload`], with CBOR error offsets counted from
    /// `offset`, the payload's position in the whole document.
    pub fn from_payload_at(payload: &[u8], offset: usize) -> Result<Self, DocumentError> {
        let item = cbor::decode_at(payload, offset).map_err(DocumentError::Cbor)?;
        let fields = Fields::collect(&item)?;

        let module_id = text(fields.required(MODULE_ID)?, MODULE_ID)?;
        if module_id.is_empty() {
            return Err(invalid(
                MODULE_ID,
                "is empty; expected a module id".to_owned(),
            ));
        }

        let digest = text(fields.required(DIGEST)?, DIGEST)?;
        if digest != DIGEST_SHA384 {
            return Err(invalid(
                DIGEST,
                format!("is {digest:?}; expected \"{DIGEST_SHA384}\""),
            ));
        }

        let timestamp_ms = match fields.required(TIMESTAMP)?.value() {
            Value::Unsigned(0) => {
                return Err(invalid(
                    TIMESTAMP,
                    "is 0; expected milliseconds since 1970".into(),
                ));
            }
            Value::Unsigned(value) => *value,
            other => return Err(wrong_type(TIMESTAMP, "an unsigned integer", other)),
        };

        let (kind, pcrs) = match (fields.get(PCRS), fields.get(NITROTPM_PCRS)) {
            (Some(pcrs), None) => (DocumentKind::Enclave, parse_pcrs(pcrs, PCRS)?),
            (None, Some(pcrs)) => (DocumentKind::NitroTpm, parse_pcrs(pcrs, NITROTPM_PCRS)?),
            (None, None) => return Err(DocumentError::MissingField { field: PCRS }),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    NITROTPM_PCRS,
                    "appears together with pcrs; expected one of them".to_owned(),
                ));
            }
        };

        let certificate = bounded_bytes(
            fields.required(CERTIFICATE)?,
            CERTIFICATE,
            1,
            MAX_CERTIFICATE_LEN,
        )?;
        let cabundle = parse_cabundle(fields.required(CABUNDLE)?)?;

        Ok(Self {
            module_id: module_id.to_owned(),
            timestamp_ms,
            pcrs,
            kind,
            certificate: certificate.to_vec(),
            cabundle,
            public_key: optional_bytes(fields.get(PUBLIC_KEY), PUBLIC_KEY)?,
            user_data: optional_bytes(fields.get(USER_DATA), USER_DATA)?,
            nonce: optional_bytes(fields.get(NONCE), NONCE)?,
        })
    }

    /// Identifier of the issuing module, like `i-0123456789abcdef0-enc0123456789abcdef`.
    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    /// Digest used for the PCRs; always `"SHA384"`, the only value accepted.
    pub fn digest(&self) -> &'static str {
        DIGEST_SHA384
    }

    /// Creation time in milliseconds since the UNIX epoch, as the module's clock had it.
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// PCRs from `pcrs`, or from `nitrotpm_pcrs` for a NitroTPM document.
    pub fn pcrs(&self) -> &BTreeMap<PcrIndex, PcrValue> {
        &self.pcrs
    }

    pub fn pcr(&self, index: PcrIndex) -> Option<&PcrValue> {
        self.pcrs.get(&index)
    }

    pub fn kind(&self) -> DocumentKind {
        self.kind
    }

    /// Returns the leaf certificate (DER) whose key signed the document.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Returns the CA certificates (DER), root first. Each one issued the next, and the last
    /// one issued [`AttestationDocument::certificate`].
    pub fn cabundle(&self) -> &[Vec<u8>] {
        &self.cabundle
    }

    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    pub fn user_data(&self) -> Option<&[u8]> {
        self.user_data.as_deref()
    }

    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// True for an enclave started in debug mode: NSM then reports PCR0, PCR1 and PCR2 as
    /// zero, while other PCRs (PCR4, the parent instance) may still be set. False when any of
    /// the three is missing, and always false for NitroTPM documents.
    pub fn is_debug_mode(&self) -> bool {
        if self.kind != DocumentKind::Enclave {
            return false;
        }
        (0..=2).all(|index| {
            PcrIndex::new(index)
                .ok()
                .and_then(|index| self.pcrs.get(&index))
                .is_some_and(PcrValue::is_zero)
        })
    }
}

const MODULE_ID: &str = "module_id";
const DIGEST: &str = "digest";
const TIMESTAMP: &str = "timestamp";
const PCRS: &str = "pcrs";
const NITROTPM_PCRS: &str = "nitrotpm_pcrs";
const CERTIFICATE: &str = "certificate";
const CABUNDLE: &str = "cabundle";
const PUBLIC_KEY: &str = "public_key";
const USER_DATA: &str = "user_data";
const NONCE: &str = "nonce";

const KNOWN_FIELDS: [&str; 10] = [
    MODULE_ID,
    DIGEST,
    TIMESTAMP,
    PCRS,
    NITROTPM_PCRS,
    CERTIFICATE,
    CABUNDLE,
    PUBLIC_KEY,
    USER_DATA,
    NONCE,
];

/// Error for a payload that is not a valid attestation document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("payload: {0}")]
    Cbor(CborError),
    #[error("payload is {found}; expected a map")]
    NotAMap { found: &'static str },
    #[error("payload key at byte {offset} is {found}; expected a text string")]
    NonTextKey { offset: usize, found: &'static str },
    #[error("payload has unknown field {name:?}; expected only the fields NSM defines")]
    UnknownField { name: String },
    #[error("payload field {field} is missing")]
    MissingField { field: &'static str },
    #[error("payload field {field} is {found}; expected {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("payload field {field} is {length} bytes; the limit is {limit}")]
    TooLong {
        field: String,
        length: usize,
        limit: usize,
    },
    #[error("payload field {field} {detail}")]
    Invalid { field: String, detail: String },
}

impl DocumentError {
    /// Stable identifier of the rule that failed.
    pub fn rule(&self) -> &'static str {
        match self {
            DocumentError::Cbor(_) => "payload.cbor",
            DocumentError::NotAMap { .. } | DocumentError::NonTextKey { .. } => "payload.structure",
            DocumentError::UnknownField { .. } => "payload.unknown_field",
            DocumentError::MissingField { .. }
            | DocumentError::WrongType { .. }
            | DocumentError::TooLong { .. }
            | DocumentError::Invalid { .. } => "payload.field",
        }
    }
}
