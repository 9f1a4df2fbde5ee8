//! Principal scope: an Allow of a recipient action to every principal lets any AWS account
//! that runs the pinned image decrypt, because attestation conditions name the image, not
//! the caller.

use super::FindingKind;
use super::checks::{Report, covers, describe_principals, granted_by};
use super::document::{Condition, Effect, Principals, Statement};
use super::pinning::KEY_RECIPIENT_ACTIONS;
use super::vocabulary::Operator;

/// Global and KMS condition keys that name the calling principal or its account. A positive
/// condition on one of them limits who an Allow to everyone applies to.
const CALLER_KEYS: [&str; 4] = [
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:PrincipalOrgID",
    "kms:CallerAccount",
];

/// Reports an Allow of a recipient action whose principal is everyone (`"*"`, `{"AWS": "*"}`
/// or `NotPrincipal`) and that has no positive condition on a [`CALLER_KEYS`] key. Whether
/// the condition's values name the right account is not checked, and a Deny that excludes
/// other accounts is not credited.
pub(super) fn check_principal_scope(statement: &Statement, report: &mut Report) {
    if statement.effect != Effect::Allow
        || matches!(statement.principal, Principals::Listed(_))
        || statement.conditions.iter().any(limits_caller)
    {
        return;
    }

    let exposed: Vec<&str> = KEY_RECIPIENT_ACTIONS
        .iter()
        .copied()
        .filter(|action| covers(&statement.actions, action))
        .collect();
    let Some(first) = exposed.first() else {
        return;
    };
    report(
        FindingKind::AnyPrincipal,
        format!(
            "allows {} to {} (by {}) with no condition on {}: a principal of any AWS \
             account that passes the other conditions, such as one running the same enclave \
             image, can use the key",
            exposed.join(", "),
            describe_principals(&statement.principal),
            granted_by(&statement.actions, first),
            CALLER_KEYS.join(", "),
        ),
        "name the role that calls KMS for the enclave in Principal (for example \
         {\"AWS\": \"arn:aws:iam::ACCOUNT:role/NAME\"}), or add a StringEquals condition on \
         aws:PrincipalArn or aws:PrincipalAccount"
            .to_owned(),
    );
}

/// True when `condition` holds only for callers whose key value matches a listed value: a
/// positive string or ARN comparison, without `IfExists` or `ForAllValues`, on a
/// [`CALLER_KEYS`] key, with no value that is only wildcards.
fn limits_caller(condition: &Condition) -> bool {
    let is_caller_key = CALLER_KEYS
        .iter()
        .any(|key| key.eq_ignore_ascii_case(&condition.key));
    let operator = Operator::parse(&condition.operator);
    let positive = operator.requires_key()
        || (matches!(operator.base.as_str(), "ArnEquals" | "ArnLike")
            && !operator.if_exists
            && operator.set_qualifier.is_none());
    let any_value = condition
        .values
        .iter()
        .any(|value| value.chars().all(|c| c == '*' || c == '?'));
    is_caller_key && positive && !condition.values.is_empty() && !any_value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::audit::{Finding, KeyPolicyDocument, audit};

    fn ids(policy: &str) -> Vec<&'static str> {
        let findings: Vec<Finding> = audit(&KeyPolicyDocument::parse(policy).unwrap());
        findings.iter().map(|f| f.kind.id()).collect()
    }

    fn caller_condition(operator: &str, key: &str, value: &str) -> Condition {
        Condition {
            operator: operator.to_owned(),
            key: key.to_owned(),
            values: vec![value.to_owned()],
        }
    }

    #[test]
    fn caller_conditions_that_limit() {
        for (operator, key, value) in [
            ("StringEquals", "aws:PrincipalAccount", "111122223333"),
            ("StringEquals", "kms:CallerAccount", "111122223333"),
            ("StringEqualsIgnoreCase", "AWS:PrincipalOrgID", "o-abc"),
            (
                "StringLike",
                "aws:PrincipalArn",
                "arn:aws:iam::111122223333:*",
            ),
            (
                "ArnEquals",
                "aws:PrincipalArn",
                "arn:aws:iam::111122223333:role/a",
            ),
            (
                "ArnLike",
                "aws:PrincipalArn",
                "arn:aws:iam::111122223333:role/*",
            ),
        ] {
            let condition = caller_condition(operator, key, value);
            assert!(limits_caller(&condition), "{operator} {key} {value}");
        }
    }

    #[test]
    fn caller_conditions_that_do_not_limit() {
        for (operator, key, value) in [
            ("StringNotEquals", "aws:PrincipalAccount", "111122223333"),
            (
                "StringEqualsIfExists",
                "aws:PrincipalAccount",
                "111122223333",
            ),
            (
                "ArnLikeIfExists",
                "aws:PrincipalArn",
                "arn:aws:iam::111122223333:*",
            ),
            ("ForAllValues:StringEquals", "aws:PrincipalOrgID", "o-abc"),
            ("StringLike", "aws:PrincipalArn", "*"),
            ("StringEquals", "aws:SourceAccount", "111122223333"),
            (
                "StringEquals",
                "kms:ViaService",
                "s3.us-east-1.amazonaws.com",
            ),
        ] {
            let condition = caller_condition(operator, key, value);
            assert!(!limits_caller(&condition), "{operator} {key} {value}");
        }
    }

    #[test]
    fn pinned_decrypt_to_everyone_is_reported() {
        let pcr = "ab".repeat(48);
        for principal in [r#""*""#, r#"{"AWS": "*"}"#, r#"{"AWS": ["*"]}"#] {
            let policy = format!(
                r#"{{"Statement": [{{"Effect": "Allow", "Principal": {principal},
                "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{pcr}"}}}}}}]}}"#
            );
            assert_eq!(ids(&policy), ["any-principal"], "{principal}");
        }
    }

    #[test]
    fn decrypt_to_everyone_with_account_condition_is_clean() {
        let pcr = "ab".repeat(48);
        let policy = format!(
            r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "*"}},
            "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{pcr}"}},
                           "StringEquals": {{"kms:CallerAccount": "111122223333"}}}}}}]}}"#
        );
        assert_eq!(ids(&policy), Vec::<&str>::new());
    }

    #[test]
    fn not_principal_allow_is_reported() {
        let pcr = "ab".repeat(48);
        let policy = format!(
            r#"{{"Statement": [{{"Effect": "Allow",
            "NotPrincipal": {{"AWS": "arn:aws:iam::111122223333:role/other"}},
            "Action": "kms:GenerateDataKey", "Resource": "*",
            "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{pcr}"}}}}}}]}}"#
        );
        assert_eq!(ids(&policy), ["any-principal"]);
    }

    #[test]
    fn deny_and_encrypt_to_everyone_are_not_reported() {
        let policy = r#"{"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"Null": {"kms:RecipientAttestation:ImageSha384": "true"}}},
            {"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}]}"#;
        assert_eq!(ids(policy), Vec::<&str>::new());
    }
}
