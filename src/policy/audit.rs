//! Audit of KMS key policies: the ways a policy lets callers get plaintext without
//! attestation or to any enclave image, lets them change the policy, or demands attestation
//! in a way that can never match. The checks are the [`FindingKind`] variants.
//!
//! [`KeyPolicyDocument::parse`] reads any key policy (or `aws kms get-key-policy` output) into
//! normalised statements, and [`audit`] is a pure function from that document to findings.
//! Each [`FindingKind`] has a stable id for machines.
//!
//! Known limits, each on the cautious side. A Deny counts as covering an Allow only when it
//! applies to everyone (`Principal` `"*"`), lists `"*"` under `Resource` without
//! `NotResource`, and has no condition other than `Null` checks (value `true`) on
//! `kms:RecipientAttestation:*` keys. The audit is not given the key's ARN, so a Deny on a
//! named key may be about another key. Other Deny forms are not analysed, so their Allows are
//! still reported. Conditions that do not name a
//! `kms:RecipientAttestation` key are not evaluated, except that a positive condition on a
//! caller key (such as `aws:PrincipalArn`) clears [`FindingKind::AnyPrincipal`] whatever
//! its values.

mod checks;
mod control;
mod document;
mod pinning;
mod principal;
mod vocabulary;

use std::fmt;

use serde::Serialize;

pub use document::{
    ActionList, AuditInputError, Condition, Effect, KeyPolicyDocument, MAX_KEY_POLICY_LEN,
    Principals, ResourceList, Statement,
};
pub use vocabulary::{AttestationKey, KeyClass, MAX_NITRO_TPM_PCR_INDEX, classify_key};

/// The class of a finding. [`FindingKind::id`] is stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// An Allow gives a plaintext-returning action without a RecipientAttestation condition,
    /// and no Deny stops requests that carry no attestation document.
    PlaintextWithoutAttestation,
    /// An Allow gives `kms:ReEncryptFrom`, which moves ciphertexts to a key without
    /// attestation conditions.
    ReEncryptAllowed,
    /// An Allow gives `kms:CreateGrant`; a grant can hand `kms:Decrypt` to a principal with no
    /// PCR conditions at all.
    GrantCreationAllowed,
    /// A `kms:RecipientAttestation…` condition key that KMS does not define.
    UnknownConditionKey,
    /// A documented attestation key written in another letter case.
    ConditionKeyCase,
    /// An attestation condition on an action that does not evaluate it (e.g. `kms:Sign`).
    UnsupportedAction,
    /// A PCR value that is not a hex digest of the right length.
    PcrValueFormat,
    /// A PCR value with uppercase letters under a case-sensitive operator.
    PcrValueCase,
    /// An all-zero PCR value, as debug-mode enclaves report.
    AllZeroPcr,
    /// `StringLike` with `*` or `?` in a PCR value.
    PcrWildcard,
    /// An Allow of a recipient action (`kms:Decrypt`, `kms:GenerateDataKey*`,
    /// `kms:DeriveSharedSecret`) that attested requests reach, with no condition on
    /// `ImageSha384`, `PCR0`, `PCR2` or a non-zero `PCR8`, so any enclave image matches.
    ImageNotPinned,
    /// A principal allowed a recipient action is also allowed `kms:PutKeyPolicy`, directly
    /// or through its account, so it can remove the attestation conditions.
    RecipientCanPutKeyPolicy,
    /// An Allow of a recipient action to every principal (`"*"`, `{"AWS": "*"}` or
    /// `NotPrincipal`) without a condition on the caller's ARN, account or organization, so
    /// any account that runs the pinned image can use the key.
    AnyPrincipal,
}

impl FindingKind {
    /// Stable identifier used in `--json` output.
    pub fn id(self) -> &'static str {
        match self {
            FindingKind::PlaintextWithoutAttestation => "plaintext-without-attestation",
            FindingKind::ReEncryptAllowed => "reencrypt-allowed",
            FindingKind::GrantCreationAllowed => "grant-creation-allowed",
            FindingKind::UnknownConditionKey => "unknown-condition-key",
            FindingKind::ConditionKeyCase => "condition-key-case",
            FindingKind::UnsupportedAction => "attestation-on-unsupported-action",
            FindingKind::PcrValueFormat => "pcr-value-format",
            FindingKind::PcrValueCase => "pcr-value-case",
            FindingKind::AllZeroPcr => "all-zero-pcr",
            FindingKind::PcrWildcard => "pcr-wildcard",
            FindingKind::ImageNotPinned => "image-not-pinned",
            FindingKind::RecipientCanPutKeyPolicy => "recipient-can-put-key-policy",
            FindingKind::AnyPrincipal => "any-principal",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for FindingKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// The statement a finding is about: its position and, when it has one, its `Sid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    pub index: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "Statement[{}] (Sid {sid:?})", self.index),
            None => write!(f, "Statement[{}]", self.index),
        }
    }
}

/// One hole or dead condition in a key policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(rename = "id")]
    pub kind: FindingKind,
    pub statement: StatementRef,
    /// Description of the problem, naming the actions, keys or values involved.
    pub message: String,
    /// One-line fix.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}]: {}\n  fix: {}",
            self.statement, self.kind, self.message, self.fix
        )
    }
}

/// Checks a key policy and returns its findings in statement order.
pub fn audit(document: &KeyPolicyDocument) -> Vec<Finding> {
    checks::run(document)
}
