//! Image pinning: an Allow that only attested requests reach must still name the enclave
//! image, or every enclave that any account can launch receives the plaintext.
//!
//! The rule is the one the release-policy loader applies to allow entries: a condition pins
//! the image when it requires `ImageSha384` or `PCR0` (the image digest), `PCR2` (the
//! application) or a non-zero `PCR8` (the signing certificate) to equal given values. `PCR1`
//! (kernel and boot ramdisk), `PCR3` (the parent's IAM role) and `PCR4` (the parent
//! instance) are the same for every image that runs on that parent.

use super::FindingKind;
use super::checks::{
    Report, covers, denied_without_attestation, describe_principals, granted_by,
    requires_attestation_document,
};
use super::document::{Effect, KeyPolicyDocument, Statement};
use super::vocabulary::{AttestationKey, KeyClass, Operator, classify_key};
use crate::policy::key_policy::IMAGE_SHA384_KEY;

/// Actions that return key material or plaintext of this key to an enclave as
/// `CiphertextForRecipient`. `kms:GenerateRandom` also takes a recipient but uses no key, so
/// an unpinned Allow of it gives away nothing.
pub(super) const KEY_RECIPIENT_ACTIONS: [&str; 4] = [
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:DeriveSharedSecret",
];

/// Reports an Allow of a recipient action that attested requests reach without any
/// condition on the image. Attested means that the statement itself requires an attestation
/// document, or that a Deny stops the action for requests without one. Allows that reach
/// requests without a document are reported as plaintext-without-attestation instead.
pub(super) fn check_image_pinned(
    document: &KeyPolicyDocument,
    statement: &Statement,
    report: &mut Report,
) {
    if statement.effect != Effect::Allow
        || pins_image(statement)
        || requires_nitro_tpm_document(statement)
        || never_matches(statement)
    {
        return;
    }

    let attested = requires_attestation_document(statement);
    let exposed: Vec<&str> = KEY_RECIPIENT_ACTIONS
        .iter()
        .copied()
        .filter(|action| covers(&statement.actions, action))
        .filter(|action| attested || denied_without_attestation(document, action))
        .collect();
    let Some(first) = exposed.first() else {
        return;
    };
    report(
        FindingKind::ImageNotPinned,
        format!(
            "allows {} to {} (by {}) with an attestation document of any enclave image: no \
             condition requires ImageSha384, PCR0, PCR2 or a non-zero PCR8 to equal the \
             measurements of your image",
            exposed.join(", "),
            describe_principals(&statement.principal),
            granted_by(&statement.actions, first),
        ),
        format!(
            "add StringEqualsIgnoreCase on {IMAGE_SHA384_KEY} (or PCR8, for images signed \
             with your certificate) to this statement"
        ),
    );
}

/// True when one condition requires an image measurement to equal given values. The check
/// runs only for requests that carry an attestation document, which has every PCR, so
/// `…IfExists` operators pin as well. Wildcards under `StringLike` count as pinning here
/// because pcr-wildcard reports them already.
fn pins_image(statement: &Statement) -> bool {
    statement.conditions.iter().any(|condition| {
        let Some(key) = classify_key(&condition.key).attestation_key() else {
            return false;
        };
        let values_pin = match key {
            AttestationKey::ImageSha384 | AttestationKey::Pcr(0 | 2) => true,
            AttestationKey::Pcr(8) => condition
                .values
                .iter()
                .all(|value| !value.bytes().all(|b| b == b'0')),
            _ => false,
        };
        Operator::parse(&condition.operator).is_positive_match()
            && !condition.values.is_empty()
            && values_pin
    })
}

/// True when the statement applies only to NitroTPM attestation documents (EC2 instances,
/// not enclaves). Which of their PCRs identify an image is outside this audit.
fn requires_nitro_tpm_document(statement: &Statement) -> bool {
    statement.conditions.iter().any(|condition| {
        matches!(
            classify_key(&condition.key).attestation_key(),
            Some(AttestationKey::NitroTpmPcr(_))
        ) && Operator::parse(&condition.operator).requires_key()
    })
}

/// True when a condition compares an undefined `kms:RecipientAttestation` key, which no
/// request carries, so the statement never applies. That is reported as
/// unknown-condition-key.
fn never_matches(statement: &Statement) -> bool {
    statement.conditions.iter().any(|condition| {
        matches!(classify_key(&condition.key), KeyClass::Unknown { .. })
            && Operator::parse(&condition.operator).requires_key()
    })
}
