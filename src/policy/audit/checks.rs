//! The audit checks, statement by statement.

use super::document::{ActionList, Condition, Effect, KeyPolicyDocument, Principals, Statement};
use super::vocabulary::{
    AttestationKey, KeyClass, Operator, action_matches, classify_key, has_wildcard,
    is_plaintext_action,
};
use super::{Finding, FindingKind, StatementRef, control, pinning, principal};
use crate::policy::key_policy::{IMAGE_SHA384_KEY, PLAINTEXT_ACTIONS};

const REENCRYPT_FROM: &str = "kms:ReEncryptFrom";
const CREATE_GRANT: &str = "kms:CreateGrant";

pub(super) fn run(document: &KeyPolicyDocument) -> Vec<Finding> {
    let mut findings = Vec::new();
    for statement in &document.statements {
        let mut report = |kind: FindingKind, message: String, fix: String| {
            findings.push(Finding {
                kind,
                statement: StatementRef {
                    index: statement.index,
                    sid: statement.sid.clone(),
                },
                message,
                fix,
            });
        };

        check_condition_keys(statement, &mut report);
        check_pcr_values(statement, &mut report);
        check_unsupported_actions(statement, &mut report);
        pinning::check_image_pinned(document, statement, &mut report);
        control::check_policy_control(document, statement, &mut report);
        if statement.effect == Effect::Allow && !requires_attestation(statement) {
            check_plaintext(document, statement, &mut report);
            check_reencrypt(document, statement, &mut report);
            check_grants(document, statement, &mut report);
        }
        principal::check_principal_scope(statement, &mut report);
    }
    findings
}

pub(super) type Report<'a> = dyn FnMut(FindingKind, String, String) + 'a;

/// True when the statement applies only to requests that carry an attestation document: one
/// of its conditions compares a `kms:RecipientAttestation` key with an operator that is false
/// for an absent key. An unknown key in that position makes the statement never match, which
/// [`check_condition_keys`] reports.
fn requires_attestation(statement: &Statement) -> bool {
    statement.conditions.iter().any(|condition| {
        classify_key(&condition.key).is_attestation_family()
            && Operator::parse(&condition.operator).requires_key()
    })
}

/// True when the statement applies only to requests that carry an attestation document:
/// [`requires_attestation`], or a `Null` check with value `false` on a
/// `kms:RecipientAttestation` key. Actions other than the plaintext ones never carry one.
pub(super) fn requires_attestation_document(statement: &Statement) -> bool {
    requires_attestation(statement)
        || statement.conditions.iter().any(|condition| {
            Operator::parse(&condition.operator).is_null()
                && classify_key(&condition.key).is_attestation_family()
                && condition
                    .values
                    .iter()
                    .all(|value| value.eq_ignore_ascii_case("false"))
        })
}

/// True when `statement` applies to `action`.
pub(super) fn covers(actions: &ActionList, action: &str) -> bool {
    match actions {
        ActionList::Only(patterns) => patterns.iter().any(|p| action_matches(p, action)),
        ActionList::AllExcept(patterns) => !patterns.iter().any(|p| action_matches(p, action)),
    }
}

/// Describes how the statement's action list reaches `action`, for messages: the matching
/// patterns, or "NotAction".
pub(super) fn granted_by(actions: &ActionList, action: &str) -> String {
    match actions {
        ActionList::Only(patterns) => patterns
            .iter()
            .filter(|p| action_matches(p, action))
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        ActionList::AllExcept(_) => "NotAction".to_owned(),
    }
}

/// True when some Deny stops every request for `action` that carries no attestation
/// document: it applies to everyone and to `"*"` as resource, covers the action and has no
/// condition other than `Null` = true on `kms:RecipientAttestation` keys (or no condition at
/// all).
pub(super) fn denied_without_attestation(document: &KeyPolicyDocument, action: &str) -> bool {
    document
        .statements
        .iter()
        .any(|statement| would_deny_without_attestation(statement, action) && covers_key(statement))
}

/// [`denied_without_attestation`] apart from the resource check.
fn would_deny_without_attestation(statement: &Statement, action: &str) -> bool {
    statement.effect == Effect::Deny
        && statement.principal == Principals::Everyone
        && covers(&statement.actions, action)
        && statement.conditions.iter().all(is_null_attestation_check)
}

fn covers_key(statement: &Statement) -> bool {
    statement.resources.covers_any_key()
}

/// Deny statements that would stop requests for `action` without an attestation document if
/// their `Resource` covered the key, for the message that explains why they do not count.
fn denies_for_other_resources<'a>(
    document: &'a KeyPolicyDocument,
    action: &str,
) -> Vec<&'a Statement> {
    document
        .statements
        .iter()
        .filter(|statement| {
            would_deny_without_attestation(statement, action) && !covers_key(statement)
        })
        .collect()
}

fn is_null_attestation_check(condition: &Condition) -> bool {
    Operator::parse(&condition.operator).is_null()
        && classify_key(&condition.key).is_attestation_family()
        && condition
            .values
            .iter()
            .all(|value| value.eq_ignore_ascii_case("true"))
}

/// True when a condition `key` (compared ignoring case) has the boolean value `true` under
/// `Bool`.
fn has_bool_true(statement: &Statement, key: &str) -> bool {
    statement.conditions.iter().any(|condition| {
        Operator::parse(&condition.operator).base == "Bool"
            && condition.key.eq_ignore_ascii_case(key)
            && condition
                .values
                .iter()
                .all(|value| value.eq_ignore_ascii_case("true"))
    })
}

pub(super) fn describe_principals(principal: &Principals) -> String {
    match principal {
        Principals::Everyone => "everyone (\"*\")".to_owned(),
        Principals::Listed(names) => names.join(", "),
        Principals::AllExcept(names) => format!("everyone except {}", names.join(", ")),
    }
}

fn check_plaintext(document: &KeyPolicyDocument, statement: &Statement, report: &mut Report) {
    let exposed: Vec<&str> = PLAINTEXT_ACTIONS
        .iter()
        .copied()
        .filter(|action| covers(&statement.actions, action))
        .filter(|action| !denied_without_attestation(document, action))
        .collect();
    let Some(first) = exposed.first() else {
        return;
    };
    report(
        FindingKind::PlaintextWithoutAttestation,
        format!(
            "allows {} to {} (by {}) without a RecipientAttestation condition, and no Deny \
             stops requests that carry no attestation document{}",
            exposed.join(", "),
            describe_principals(&statement.principal),
            granted_by(&statement.actions, first),
            ignored_denies_note(document, first),
        ),
        format!(
            "add StringEqualsIgnoreCase on {IMAGE_SHA384_KEY} to this statement, or a Deny of \
             these actions to \"*\" when {IMAGE_SHA384_KEY} is Null"
        ),
    );
}

/// Names the Deny statements that do not count only because of their resource, or returns
/// an empty string when there are none.
fn ignored_denies_note(document: &KeyPolicyDocument, action: &str) -> String {
    let ignored = denies_for_other_resources(document, action);
    if ignored.is_empty() {
        return String::new();
    }
    let names: Vec<String> = ignored
        .iter()
        .map(|statement| {
            StatementRef {
                index: statement.index,
                sid: statement.sid.clone(),
            }
            .to_string()
        })
        .collect();
    format!(
        " ({} would, but only a Deny with \"Resource\": \"*\" and no NotResource is certain \
         to apply to this key)",
        names.join(", ")
    )
}

fn check_reencrypt(document: &KeyPolicyDocument, statement: &Statement, report: &mut Report) {
    if !covers(&statement.actions, REENCRYPT_FROM)
        || has_bool_true(statement, "kms:ReEncryptOnSameKey")
        || denied_without_attestation(document, REENCRYPT_FROM)
    {
        return;
    }
    report(
        FindingKind::ReEncryptAllowed,
        format!(
            "allows {REENCRYPT_FROM} to {} (by {}); re-encryption moves a ciphertext to a key \
             without attestation conditions",
            describe_principals(&statement.principal),
            granted_by(&statement.actions, REENCRYPT_FROM),
        ),
        "remove kms:ReEncrypt* from this statement and add a Deny of kms:ReEncrypt* to \"*\""
            .to_owned(),
    );
}

fn check_grants(document: &KeyPolicyDocument, statement: &Statement, report: &mut Report) {
    if !covers(&statement.actions, CREATE_GRANT)
        || has_bool_true(statement, "kms:GrantIsForAWSResource")
        || denied_without_attestation(document, CREATE_GRANT)
    {
        return;
    }
    report(
        FindingKind::GrantCreationAllowed,
        format!(
            "allows {CREATE_GRANT} to {} (by {}); a grant can give kms:Decrypt to any \
             principal without PCR conditions",
            describe_principals(&statement.principal),
            granted_by(&statement.actions, CREATE_GRANT),
        ),
        "list administration actions without kms:CreateGrant (not kms:* or kms:Create*), or \
         require kms:GrantIsForAWSResource"
            .to_owned(),
    );
}

fn check_condition_keys(statement: &Statement, report: &mut Report) {
    for condition in &statement.conditions {
        match classify_key(&condition.key) {
            KeyClass::Unknown { reason } => report(
                FindingKind::UnknownConditionKey,
                format!("unknown condition key {} ({reason})", condition.key),
                "use kms:RecipientAttestation:ImageSha384 for PCR0 and \
                 kms:RecipientAttestation:PCR<n> for the others"
                    .to_owned(),
            ),
            KeyClass::WrongCase(key) => report(
                FindingKind::ConditionKeyCase,
                format!(
                    "condition key {} is not spelled as documented ({}); IAM ignores case in \
                     key names, but reviews and tools that search for the documented name \
                     miss it",
                    condition.key,
                    key.canonical()
                ),
                format!("write {}", key.canonical()),
            ),
            KeyClass::Other | KeyClass::Attestation(_) => {}
        }
    }
}

fn check_pcr_values(statement: &Statement, report: &mut Report) {
    for condition in &statement.conditions {
        let Some(key) = classify_key(&condition.key).attestation_key() else {
            continue;
        };
        let operator = Operator::parse(&condition.operator);
        if operator.is_null() {
            continue;
        }
        for value in &condition.values {
            check_pcr_value(condition, &operator, key, value, report);
        }
    }
}

fn check_pcr_value(
    condition: &Condition,
    operator: &Operator,
    key: AttestationKey,
    value: &str,
    report: &mut Report,
) {
    let label = &condition.key;
    if operator.is_like() && has_wildcard(value) {
        report(
            FindingKind::PcrWildcard,
            format!(
                "{} on {label} uses a wildcard in {value:?}, which matches measurements of \
                 other images",
                condition.operator
            ),
            "use StringEqualsIgnoreCase with the full 96-hex-digit value".to_owned(),
        );
        return;
    }

    let lengths = key.accepted_hex_lengths();
    let expected = lengths
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    let problem = if value.starts_with("0x") || value.starts_with("0X") {
        Some("has a 0x prefix".to_owned())
    } else if let Some(position) = value.chars().position(|c| !c.is_ascii_hexdigit()) {
        Some(format!("has a non-hex character at position {position}"))
    } else if !lengths.contains(&value.len()) {
        Some(format!("has {} characters", value.len()))
    } else {
        None
    };
    if let Some(problem) = problem {
        report(
            FindingKind::PcrValueFormat,
            format!("{label} value {value:?} {problem}; expected {expected} hex digits"),
            "copy the PCR value from `nitro-cli build-enclave` or `describe-eif` output, as \
             lowercase hex without prefix"
                .to_owned(),
        );
        return;
    }

    if value.bytes().all(|b| b == b'0') {
        let why = if key.is_debug_zeroed() {
            "debug-mode enclaves report this measurement as all zeros, so any debug-mode \
             enclave matches"
        } else {
            "an all-zero value is what an unused PCR holds, so it pins nothing"
        };
        report(
            FindingKind::AllZeroPcr,
            format!("{label} value is all zeros; {why}"),
            "use the measurement of the production image from nitro-cli build-enclave".to_owned(),
        );
        return;
    }

    if operator.is_case_sensitive() && value.bytes().any(|b| b.is_ascii_uppercase()) {
        report(
            FindingKind::PcrValueCase,
            format!(
                "{} on {label} compares case-sensitively, but KMS puts PCR values in the \
                 request context as lowercase hex and {value:?} has uppercase letters, so it \
                 never matches",
                condition.operator
            ),
            "write the value in lowercase, or use StringEqualsIgnoreCase".to_owned(),
        );
    }
}

fn check_unsupported_actions(statement: &Statement, report: &mut Report) {
    if !requires_attestation_document(statement) {
        return;
    }
    let ActionList::Only(patterns) = &statement.actions else {
        return;
    };
    for pattern in patterns {
        let supported = if has_wildcard(pattern) {
            PLAINTEXT_ACTIONS
                .iter()
                .any(|action| action_matches(pattern, action))
        } else {
            is_plaintext_action(pattern)
        };
        if supported {
            continue;
        }
        let consequence = match statement.effect {
            Effect::Allow => "so this Allow never grants it",
            Effect::Deny => "so this Deny never applies to it",
        };
        report(
            FindingKind::UnsupportedAction,
            format!(
                "{pattern} does not support RecipientAttestation conditions; only {} do, \
                 {consequence}",
                PLAINTEXT_ACTIONS.join(", ")
            ),
            format!("move {pattern} to a statement without RecipientAttestation conditions"),
        );
    }
}
