//! Verification of an AWS Nitro attestation document, following AWS's "Nitro Enclaves
//! attestation process" (aws-nitro-enclaves-nsm-api, docs/attestation_process.md) plus what
//! real documents do. [`verify`] runs the checks in this order and stops at the first failure:
//!
//! 1. size: at most [`MAX_DOCUMENT_LEN`] bytes;
//! 2. COSE_Sign1 structure, protected header `{1: -35}` (ES384), 96-byte signature;
//! 3. payload fields and their types ([`AttestationDocument::from_payload`]);
//! 4. certificate chain from a trusted root at `time_ms` ([`x509::verify_chain`]);
//! 5. COSE signature with the leaf certificate's key, over the bytes as received;
//! 6. document kind (NitroTPM documents where an enclave is required);
//! 7. document time: not later than `time_ms` + skew, and not older than `max_age` + skew;
//! 8. expected nonce and public key, byte for byte;
//! 9. expected PCRs: each one present and equal.
//!
//! The verification time is always a parameter: re-verifying a stored document at its own
//! timestamp is how audits and tests check documents whose leaf certificate (valid for about
//! three hours) has long expired.
//!
//! [`verify_with_cache`] runs the same checks but takes the signatures of intermediate
//! certificates that verified before from a [`VerifierCache`] the caller holds.

mod error;
pub mod report_input;

pub use super::roots::{TrustRoot, TrustRootError};
pub use super::x509::VerifierCache;
pub use error::{ErrorCause, PcrMismatch, VerifyError};

use std::collections::BTreeMap;
use std::time::Duration;

use super::cose::CoseSign1;
use super::document::{AttestationDocument, DocumentKind};
use super::pcr::{PcrIndex, PcrValue, SHA384_LEN};
use super::x509::{self, CertificateSummary};

/// Largest document accepted. NSM documents are at most about 12 KiB (the driver's response
/// limit); the bound leaves room and keeps parsing cheap.
pub const MAX_DOCUMENT_LEN: usize = 64 * 1024;

/// Clock skew [`VerifyOptions::new`] allows.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(60);

/// Largest clock skew accepted. The skew widens every certificate's validity and the
/// document's age limit, so an unbounded one would accept expired chains. An hour covers
/// any clock that is still synchronised at all.
pub const MAX_SKEW: Duration = Duration::from_secs(3600);

/// Verification settings: trust roots, verification time and expectations.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Certificates accepted as `cabundle[0]`; at least one.
    pub trust_roots: Vec<TrustRoot>,
    /// Verification time in milliseconds since the UNIX epoch.
    pub time_ms: u64,
    /// Clock difference tolerated on certificate validity and document time, at most
    /// [`MAX_SKEW`].
    pub skew: Duration,
    /// Oldest document accepted, measured from its timestamp to `time_ms`.
    pub max_age: Option<Duration>,
    /// Nonce the document must carry, byte for byte. Must not be empty.
    pub expected_nonce: Option<Vec<u8>>,
    /// Public key the document must carry, byte for byte. Must not be empty.
    pub expected_public_key: Option<Vec<u8>>,
    /// PCRs the document must carry with these exact values (48 bytes each).
    pub expected_pcrs: BTreeMap<PcrIndex, PcrValue>,
    /// Rejects NitroTPM documents. They are rejected anyway when `expected_pcrs` is not empty,
    /// because NitroTPM PCRs measure an EC2 instance, not an enclave image.
    pub require_enclave: bool,
}

impl VerifyOptions {
    /// Trusts only the AWS root, allows [`DEFAULT_SKEW`], requires an enclave document and
    /// expects nothing else.
    pub fn new(time_ms: u64) -> Self {
        Self {
            trust_roots: vec![TrustRoot::aws_nitro_enclaves_g1()],
            time_ms,
            skew: DEFAULT_SKEW,
            max_age: None,
            expected_nonce: None,
            expected_public_key: None,
            expected_pcrs: BTreeMap::new(),
            require_enclave: true,
        }
    }

    /// Adds expected PCRs, replacing earlier expectations of the same index.
    pub fn expect_pcrs(mut self, pcrs: impl IntoIterator<Item = (PcrIndex, PcrValue)>) -> Self {
        self.expected_pcrs.extend(pcrs);
        self
    }

    /// Adds expected PCRs given as index and 96 hex digits (SHA-384), as release policies
    /// and `nitro-cli describe-eif` write them.
    ///
    /// Fails with [`VerifyError::InvalidOptions`] on an index above 31, a value that is not
    /// exactly 96 hex digits, or an index given twice.
    ///
    /// ```
    /// use enclave_broker::attestation::verify::{VerifyOptions, inspect, verify};
    /// # fn main() -> Result<(), enclave_broker::attestation::verify::VerifyError> {
    /// # let report = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"),
    /// #     "/tests/fixtures/nitro/eternis_2024-07-31_prod.cbor")).unwrap();
    /// # let now_ms = inspect(&report)?.timestamp_ms();
    /// # let pcr0 = inspect(&report)?.pcrs().values().next().unwrap().to_hex();
    /// let options = VerifyOptions::new(now_ms).expect_pcrs_hex([(0, pcr0.as_str())])?;
    /// let verified = verify(&report, &options)?;
    /// println!("{}", hex::encode(verified.document().user_data().unwrap_or_default()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn expect_pcrs_hex<'a>(
        mut self,
        pcrs: impl IntoIterator<Item = (u64, &'a str)>,
    ) -> Result<Self, VerifyError> {
        let invalid = |detail: String| VerifyError::InvalidOptions { detail };
        let mut parsed = BTreeMap::new();
        for (index, text) in pcrs {
            let index = PcrIndex::new(index).map_err(|error| invalid(error.to_string()))?;
            let value = PcrValue::parse_sha384_hex(text)
                .map_err(|error| invalid(format!("expected PCR{index}: {error}")))?;
            if parsed.insert(index, value).is_some() {
                return Err(invalid(format!("expected PCR{index} is given twice")));
            }
        }
        self.expected_pcrs.extend(parsed);
        Ok(self)
    }
}

/// A document that passed [`verify`]. Only [`verify`] constructs one.
#[derive(Debug, Clone)]
pub struct VerifiedDocument {
    document: AttestationDocument,
    bytes: Vec<u8>,
    trust_root_label: String,
    checked_at_ms: u64,
    certificates: Vec<CertificateSummary>,
}

impl VerifiedDocument {
    pub fn document(&self) -> &AttestationDocument {
        &self.document
    }

    /// Label of the root that anchored the chain (`aws-nitro-enclaves-g1` for AWS's).
    pub fn trust_root_label(&self) -> &str {
        &self.trust_root_label
    }

    /// Returns the verification time used, in milliseconds since the UNIX epoch.
    pub fn checked_at_ms(&self) -> u64 {
        self.checked_at_ms
    }

    /// Returns the COSE_Sign1 bytes that were verified.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Subject and validity of each certificate, root first, leaf last.
    pub fn certificates(&self) -> &[CertificateSummary] {
        &self.certificates
    }
}

/// Verifies `bytes` (an untagged or tag-18 COSE_Sign1) against `options`.
pub fn verify(bytes: &[u8], options: &VerifyOptions) -> Result<VerifiedDocument, VerifyError> {
    verify_logged(bytes, options, None)
}

/// Verifies like [`verify`], with the same checks in the same order and the same result,
/// but takes intermediate-certificate signatures that verified before from `cache` and adds
/// the ones it verifies. Validity times are checked at every call.
pub fn verify_with_cache(
    bytes: &[u8],
    options: &VerifyOptions,
    cache: &VerifierCache,
) -> Result<VerifiedDocument, VerifyError> {
    verify_logged(bytes, options, Some(cache))
}

fn verify_logged(
    bytes: &[u8],
    options: &VerifyOptions,
    cache: Option<&VerifierCache>,
) -> Result<VerifiedDocument, VerifyError> {
    let result = verify_checked(bytes, options, cache);
    match &result {
        Ok(verified) => tracing::debug!(
            root = verified.trust_root_label(),
            module_id = verified.document().module_id(),
            checked_at_ms = options.time_ms,
            pcrs_compared = ?options.expected_pcrs.keys().map(|index| index.get()).collect::<Vec<_>>(),
            "attestation document verified"
        ),
        Err(error) => tracing::debug!(
            rule = error.rule(),
            checked_at_ms = options.time_ms,
            "attestation document rejected"
        ),
    }
    result
}

fn verify_checked(
    bytes: &[u8],
    options: &VerifyOptions,
    cache: Option<&VerifierCache>,
) -> Result<VerifiedDocument, VerifyError> {
    check_options(options)?;
    let skew_ms = duration_ms(options.skew);

    let (sign1, document) = parse(bytes)?;

    let chain = x509::verify_chain_with_cache(
        document.cabundle(),
        document.certificate(),
        &options.trust_roots,
        options.time_ms,
        skew_ms,
        cache,
    )
    .map_err(VerifyError::Chain)?;

    if sign1.verify_signature(chain.leaf_public_key()).is_err() {
        let subject = chain
            .certificates()
            .last()
            .map(|leaf| leaf.subject.clone())
            .unwrap_or_default();
        return Err(VerifyError::Signature { subject });
    }

    if document.kind() == DocumentKind::NitroTpm
        && (options.require_enclave || !options.expected_pcrs.is_empty())
    {
        return Err(VerifyError::NotEnclave {
            module_id: document.module_id().to_owned(),
        });
    }

    check_time(&document, options, skew_ms)?;
    check_expectations(&document, options)?;
    check_pcrs(&document, &options.expected_pcrs)?;

    Ok(VerifiedDocument {
        document,
        bytes: bytes.to_vec(),
        trust_root_label: chain.root_label().to_owned(),
        checked_at_ms: options.time_ms,
        certificates: chain.certificates().to_vec(),
    })
}

/// Parses a document's structure and payload without checking that it is authentic: no
/// chain, no signature, no time. For displaying what a rejected document claims.
pub fn inspect(bytes: &[u8]) -> Result<AttestationDocument, VerifyError> {
    parse(bytes).map(|(_, document)| document)
}

fn parse(bytes: &[u8]) -> Result<(CoseSign1<'_>, AttestationDocument), VerifyError> {
    if bytes.len() > MAX_DOCUMENT_LEN {
        return Err(VerifyError::TooLarge {
            length: bytes.len(),
            limit: MAX_DOCUMENT_LEN,
        });
    }
    let sign1 = CoseSign1::parse(bytes).map_err(VerifyError::Cose)?;
    let document = AttestationDocument::from_payload_at(sign1.payload(), sign1.payload_offset())
        .map_err(VerifyError::Payload)?;
    Ok((sign1, document))
}

fn check_options(options: &VerifyOptions) -> Result<(), VerifyError> {
    let invalid = |detail: String| Err(VerifyError::InvalidOptions { detail });
    if options.trust_roots.is_empty() {
        return invalid("no trust roots given".to_owned());
    }
    if options.skew > MAX_SKEW {
        return invalid(format!(
            "clock skew is {} s; the limit is {} s",
            options.skew.as_secs(),
            MAX_SKEW.as_secs()
        ));
    }
    if options.expected_nonce.as_ref().is_some_and(Vec::is_empty) {
        return invalid("expected nonce is empty; give at least one byte or none".to_owned());
    }
    if options
        .expected_public_key
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        return invalid("expected public key is empty; give at least one byte or none".to_owned());
    }
    for (index, value) in &options.expected_pcrs {
        if value.as_bytes().len() != SHA384_LEN {
            return invalid(format!(
                "expected PCR{index} is {} bytes; attestation documents carry {SHA384_LEN}-byte (SHA-384) PCRs",
                value.as_bytes().len()
            ));
        }
    }
    Ok(())
}

fn check_time(
    document: &AttestationDocument,
    options: &VerifyOptions,
    skew_ms: u64,
) -> Result<(), VerifyError> {
    let timestamp_ms = document.timestamp_ms();
    if timestamp_ms > options.time_ms.saturating_add(skew_ms) {
        return Err(VerifyError::FromFuture {
            timestamp_ms,
            checked_at_ms: options.time_ms,
            skew_ms,
        });
    }
    if let Some(max_age) = options.max_age {
        let max_age_ms = duration_ms(max_age);
        let oldest_allowed = options
            .time_ms
            .saturating_sub(max_age_ms)
            .saturating_sub(skew_ms);
        if timestamp_ms < oldest_allowed {
            return Err(VerifyError::TooOld {
                timestamp_ms,
                checked_at_ms: options.time_ms,
                max_age_ms,
                skew_ms,
            });
        }
    }
    Ok(())
}

fn check_expectations(
    document: &AttestationDocument,
    options: &VerifyOptions,
) -> Result<(), VerifyError> {
    if let Some(expected) = &options.expected_nonce
        && document.nonce() != Some(expected.as_slice())
    {
        return Err(VerifyError::NonceMismatch {
            expected: expected.clone(),
            found: document.nonce().map(<[u8]>::to_vec),
        });
    }
    if let Some(expected) = &options.expected_public_key
        && document.public_key() != Some(expected.as_slice())
    {
        return Err(VerifyError::PublicKeyMismatch {
            expected: expected.clone(),
            found: document.public_key().map(<[u8]>::to_vec),
        });
    }
    Ok(())
}

/// Compares every expected PCR and reports all mismatches at once. A PCR the document lacks
/// is a mismatch.
fn check_pcrs(
    document: &AttestationDocument,
    expected: &BTreeMap<PcrIndex, PcrValue>,
) -> Result<(), VerifyError> {
    let mut mismatches = Vec::new();
    let mut matched = Vec::new();
    for (index, value) in expected {
        match document.pcr(*index) {
            Some(found) if found == value => matched.push(*index),
            found => mismatches.push(PcrMismatch {
                index: *index,
                expected: value.clone(),
                found: found.cloned(),
            }),
        }
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(VerifyError::PcrMismatch {
        mismatches,
        matched,
    })
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
