//! The KMS key policy that demands, through attestation conditions, the PCRs of one key rule.
//!
//! KMS releases plaintext to an enclave only as `CiphertextForRecipient`, and only when the
//! attestation document in the request satisfies the key policy's
//! `kms:RecipientAttestation:ImageSha384` and `kms:RecipientAttestation:PCR<n>` conditions. The
//! rendered policy contains, in this order and with these statement ids:
//!
//! | Sid | effect | who | actions |
//! |---|---|---|---|
//! | `AllowAttestedEnclave<i>` | Allow | the principal | [`PLAINTEXT_ACTIONS`], when the document's PCRs equal those of allow entry `i` (PCR0 as `ImageSha384`, the others as `PCR<n>`, `StringEqualsIgnoreCase`, lowercase hex) |
//! | `DenyPlaintextWithoutAttestation` | Deny | everyone | [`PLAINTEXT_ACTIONS`], when `kms:RecipientAttestation:ImageSha384` is absent |
//! | `DenyReEncrypt` | Deny | everyone | `kms:ReEncrypt*`, because re-encryption moves a ciphertext to a key without these conditions |
//! | `AllowKeyAdministration` | Allow | the admins (if any) | [`KEY_ADMIN_ACTIONS`] |
//! | `AllowEncryptForDeployers` | Allow | the deployers (if any) | `kms:Encrypt` |
//!
//! Several allow entries give several Allow statements, so any one entry's PCR set suffices.
//! The Terraform module `terraform/modules/key-policy` renders the same document.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::key_rule::{DEBUG_MODE_ZERO_PCRS, KeyRule};

/// KMS actions that return plaintext, or return it as `CiphertextForRecipient` when the
/// request carries an attestation document. These are the only actions that evaluate the
/// `kms:RecipientAttestation:*` condition keys.
pub const PLAINTEXT_ACTIONS: [&str; 5] = [
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateRandom",
    "kms:DeriveSharedSecret",
];

/// Condition key for the enclave image digest, the same value as PCR0.
pub const IMAGE_SHA384_KEY: &str = "kms:RecipientAttestation:ImageSha384";

/// Prefix of the per-PCR condition keys of Nitro Enclaves: `kms:RecipientAttestation:PCR<n>`.
pub const PCR_KEY_PREFIX: &str = "kms:RecipientAttestation:PCR";

/// Key administration without any plaintext-returning action, without `kms:CreateGrant` (a
/// grant can hand `kms:Decrypt` to another principal without attestation conditions) and
/// without `kms:ReEncrypt*`. Administrators can still replace the key policy
/// (`kms:PutKeyPolicy`); that is what administering a key means, and CloudTrail records it.
pub const KEY_ADMIN_ACTIONS: [&str; 27] = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DeleteImportedKeyMaterial",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
];

/// An IAM principal ARN as a key policy names it: `arn:PARTITION:iam::ACCOUNT:RESOURCE` or
/// `arn:PARTITION:sts::ACCOUNT:RESOURCE`, with a 12-digit account, no wildcard and no
/// whitespace. The Terraform module checks inputs with the same rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalArn(String);

impl PrincipalArn {
    pub fn parse(text: &str) -> Result<PrincipalArn, InvalidPrincipal> {
        let invalid = |reason: &'static str| InvalidPrincipal {
            value: text.to_owned(),
            reason,
        };

        if text.contains('*') {
            return Err(invalid(
                "wildcards are not allowed; name one role, user or account",
            ));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(invalid("contains whitespace"));
        }
        if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "a bare account id names the whole account; give a role or user ARN such as \
                 arn:aws:iam::ACCOUNT:role/NAME",
            ));
        }

        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(invalid(
                "expected arn:aws:iam::ACCOUNT:role/NAME (or :root, :user/NAME)",
            ));
        };

        if arn != "arn" {
            return Err(invalid("does not start with arn:"));
        }
        let partition_ok = partition
            .strip_prefix("aws")
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        if !partition_ok {
            return Err(invalid(
                "partition is not aws, aws-cn, aws-us-gov or similar",
            ));
        }
        if service != "iam" && service != "sts" {
            return Err(invalid("service is not iam or sts"));
        }
        if !region.is_empty() {
            return Err(invalid("IAM ARNs have an empty region field"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("account is not 12 digits"));
        }
        if resource.is_empty() {
            return Err(invalid("resource part is empty"));
        }
        Ok(PrincipalArn(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the 12-digit account id.
    pub fn account(&self) -> &str {
        // `parse` checked that the fifth colon-separated part is the account.
        self.0.split(':').nth(4).unwrap_or_default()
    }

    /// True for `arn:PARTITION:iam::ACCOUNT:root`, which names the account itself. A key
    /// policy that names the account delegates access to IAM policies, so every identity in
    /// the account that an IAM policy allows an action gets it.
    ///
    /// The resource part is compared ignoring ASCII case and trailing `/`, so `:ROOT` and
    /// `:root/` count as the account root too. Every root check, in rendering and in the
    /// audit, goes through this function.
    pub fn is_account_root(&self) -> bool {
        let parts: Vec<&str> = self.0.splitn(6, ':').collect();
        let [_, _, "iam", _, _, resource] = parts[..] else {
            return false;
        };
        resource.trim_end_matches('/').eq_ignore_ascii_case("root")
    }

    /// True when both ARNs name the same IAM identity. IAM role and user names are unique
    /// within an account regardless of letter case and path, so those are ignored, and an STS
    /// assumed-role ARN names a session of its role.
    pub fn same_identity(&self, other: &PrincipalArn) -> bool {
        self.identity() == other.identity()
    }

    /// `PARTITION:ACCOUNT:KIND/NAME` in lowercase, where KIND/NAME is `role/NAME`,
    /// `user/NAME`, `root` or, for other resource types, the resource as written.
    fn identity(&self) -> String {
        // `parse` checked that there are six colon-separated parts.
        let parts: Vec<&str> = self.0.splitn(6, ':').collect();
        let [_, partition, service, _, account, resource] = parts[..] else {
            return self.0.to_ascii_lowercase();
        };
        if self.is_account_root() {
            return format!("{partition}:{account}:root").to_ascii_lowercase();
        }
        let segments: Vec<&str> = resource.split('/').collect();
        let name = match (service, segments.as_slice()) {
            ("iam", ["role", .., name]) => format!("role/{name}"),
            ("iam", ["user", .., name]) => format!("user/{name}"),
            ("sts", ["assumed-role", role, _session]) => format!("role/{role}"),
            _ => resource.to_owned(),
        };
        format!("{partition}:{account}:{name}").to_ascii_lowercase()
    }
}

impl fmt::Display for PrincipalArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A principal ARN that [`PrincipalArn::parse`] rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid principal ARN {value:?}: {reason}")]
pub struct InvalidPrincipal {
    pub value: String,
    pub reason: &'static str,
}

/// Principals named by the rendered key policy.
#[derive(Debug, Clone)]
pub struct KeyPolicyPrincipals {
    /// The role that calls KMS for the enclave (the parent instance's role).
    pub principal: PrincipalArn,
    /// Key administrators. Without any, nobody can change or delete the key.
    pub admins: Vec<PrincipalArn>,
    /// Principals allowed `kms:Encrypt`, to create the ciphertexts the enclave receives.
    pub deployers: Vec<PrincipalArn>,
}

/// Reason a key policy could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyPolicyError {
    #[error(
        "key rule {rule:?}, allow entry {entry}: PCR{index} is all zeros, which every debug-mode \
         enclave reports; a KMS key policy must pin the measurements of a production image"
    )]
    DebugModePcr {
        rule: String,
        entry: usize,
        index: u8,
    },
    #[error(
        "key rule {rule:?}, allow entry {entry}: PCR8 is all zeros, which unsigned images and \
         debug-mode enclaves report; a KMS key policy must pin the signing certificate of a \
         production image"
    )]
    ZeroSigningCertificatePcr { rule: String, entry: usize },
    #[error(
        "principal {principal} is also a key administrator (as {admin}); administrators \
         hold kms:PutKeyPolicy, so the principal could remove the attestation conditions. \
         Name a separate administrator role"
    )]
    PrincipalIsAdmin { principal: String, admin: String },
    #[error(
        "administrator {admin} is the account root, which hands control of the key to IAM \
         policies: any identity in the account, the enclave's own role included, could be \
         granted kms:PutKeyPolicy and remove the attestation conditions. Name administrator \
         roles instead, such as arn:aws:iam::ACCOUNT:role/key-admin"
    )]
    AdminIsAccountRoot { admin: String },
    #[error(
        "principal {principal} is the account root, so every IAM identity in the account \
         that an IAM policy allows kms:Decrypt could decrypt, and the root can change the key \
         policy and remove the attestation conditions. Name the role that calls KMS for the \
         enclave, such as arn:aws:iam::ACCOUNT:role/enclave-parent"
    )]
    PrincipalIsAccountRoot { principal: String },
}

/// A rendered KMS key policy. Serializes to the JSON document KMS accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPolicy {
    version: &'static str,
    id: String,
    statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    sid: String,
    effect: &'static str,
    principal: Principal,
    action: Vec<&'static str>,
    resource: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<BTreeMap<&'static str, BTreeMap<String, String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Principal {
    #[serde(rename = "AWS")]
    aws: PrincipalValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
enum PrincipalValue {
    One(String),
    Many(Vec<String>),
}

impl KeyPolicy {
    /// Returns the statement ids, in document order.
    pub fn statement_ids(&self) -> Vec<&str> {
        self.statement.iter().map(|s| s.sid.as_str()).collect()
    }

    /// Serializes the document as pretty-printed JSON, two-space indented.
    pub fn to_json_pretty(&self) -> String {
        // Serializing this type cannot fail: every map key is a string and the writer is a
        // String, so serde_json has no error to report.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Converts the document to a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        // Cannot fail, for the same reason as `to_json_pretty`.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Renders the key policy for key rule `rule_name`. Repeated admins or deployers are listed
/// once, in first-seen order.
pub fn render_key_policy(
    rule_name: &str,
    rule: &KeyRule,
    principals: &KeyPolicyPrincipals,
) -> Result<KeyPolicy, KeyPolicyError> {
    // The principal must not be able to rewrite the conditions that bind it, neither as an
    // administrator itself nor through an IAM policy that the account root would honour.
    if principals.principal.is_account_root() {
        return Err(KeyPolicyError::PrincipalIsAccountRoot {
            principal: principals.principal.to_string(),
        });
    }
    if let Some(admin) = principals
        .admins
        .iter()
        .find(|admin| admin.is_account_root())
    {
        return Err(KeyPolicyError::AdminIsAccountRoot {
            admin: admin.to_string(),
        });
    }
    if let Some(admin) = principals
        .admins
        .iter()
        .find(|admin| admin.same_identity(&principals.principal))
    {
        return Err(KeyPolicyError::PrincipalIsAdmin {
            principal: principals.principal.to_string(),
            admin: admin.to_string(),
        });
    }

    let mut statements = Vec::new();

    // One Allow per allow entry: any entry's complete PCR set lets the enclave in.
    for (entry_index, entry) in rule.allow().iter().enumerate() {
        let mut keys = BTreeMap::new();
        for (index, value) in entry.pcrs() {
            if DEBUG_MODE_ZERO_PCRS.contains(&index.get()) && value.is_zero() {
                return Err(KeyPolicyError::DebugModePcr {
                    rule: rule_name.to_owned(),
                    entry: entry_index,
                    index: index.get(),
                });
            }
            if index.get() == 8 && value.is_zero() {
                return Err(KeyPolicyError::ZeroSigningCertificatePcr {
                    rule: rule_name.to_owned(),
                    entry: entry_index,
                });
            }
            keys.insert(pcr_condition_key(index.get()), value.to_hex());
        }
        statements.push(Statement {
            sid: format!("AllowAttestedEnclave{entry_index}"),
            effect: "Allow",
            principal: Principal {
                aws: PrincipalValue::One(principals.principal.to_string()),
            },
            action: PLAINTEXT_ACTIONS.to_vec(),
            resource: "*",
            condition: Some(BTreeMap::from([("StringEqualsIgnoreCase", keys)])),
        });
    }

    // KMS adds ImageSha384 to the request context only when the request carries a valid
    // Nitro Enclaves attestation document, so this Deny catches every other caller, including
    // those that some other policy (IAM, grants) would allow.
    statements.push(Statement {
        sid: "DenyPlaintextWithoutAttestation".to_owned(),
        effect: "Deny",
        principal: everyone(),
        action: PLAINTEXT_ACTIONS.to_vec(),
        resource: "*",
        condition: Some(BTreeMap::from([(
            "Null",
            BTreeMap::from([(IMAGE_SHA384_KEY.to_owned(), "true".to_owned())]),
        )])),
    });
    statements.push(Statement {
        sid: "DenyReEncrypt".to_owned(),
        effect: "Deny",
        principal: everyone(),
        action: vec!["kms:ReEncrypt*"],
        resource: "*",
        condition: None,
    });

    let admins = distinct(&principals.admins);
    if !admins.is_empty() {
        statements.push(Statement {
            sid: "AllowKeyAdministration".to_owned(),
            effect: "Allow",
            principal: Principal {
                aws: PrincipalValue::Many(admins),
            },
            action: KEY_ADMIN_ACTIONS.to_vec(),
            resource: "*",
            condition: None,
        });
    }
    let deployers = distinct(&principals.deployers);
    if !deployers.is_empty() {
        statements.push(Statement {
            sid: "AllowEncryptForDeployers".to_owned(),
            effect: "Allow",
            principal: Principal {
                aws: PrincipalValue::Many(deployers),
            },
            action: vec!["kms:Encrypt"],
            resource: "*",
            condition: None,
        });
    }

    Ok(KeyPolicy {
        version: "2012-10-17",
        id: format!("enclave-broker-{rule_name}"),
        statement: statements,
    })
}

/// Returns the condition key that KMS compares with PCR `index`. PCR0 is the image digest.
pub fn pcr_condition_key(index: u8) -> String {
    if index == 0 {
        IMAGE_SHA384_KEY.to_owned()
    } else {
        format!("{PCR_KEY_PREFIX}{index}")
    }
}

fn everyone() -> Principal {
    Principal {
        aws: PrincipalValue::One("*".to_owned()),
    }
}

fn distinct(principals: &[PrincipalArn]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::with_capacity(principals.len());
    for principal in principals {
        if !seen.iter().any(|known| known == principal.as_str()) {
            seen.push(principal.to_string());
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_role_root_and_assumed_role_arns() {
        for arn in [
            "arn:aws:iam::111122223333:role/parent",
            "arn:aws:iam::111122223333:root",
            "arn:aws-cn:iam::111122223333:user/ops/alice",
            "arn:aws:sts::111122223333:assumed-role/deploy/session",
        ] {
            assert!(PrincipalArn::parse(arn).is_ok(), "{arn}");
        }
    }

    #[test]
    fn rejects_malformed_principal_arns() {
        for arn in [
            "*",
            "111122223333",
            "arn:aws:iam::111122223333:role/*",
            "arn:aws:iam::1111:role/parent",
            "arn:aws:kms:us-east-1:111122223333:key/abc",
            "arn:aws:iam:us-east-1:111122223333:role/parent",
            "arn:aws:iam::111122223333:",
            "arn:aws:iam::111122223333:role/a b",
            "arn:gcp:iam::111122223333:role/parent",
        ] {
            assert!(PrincipalArn::parse(arn).is_err(), "{arn}");
        }
    }

    #[test]
    fn same_identity_ignores_case_path_and_session() {
        let parent = PrincipalArn::parse("arn:aws:iam::111122223333:role/parent").unwrap();
        for arn in [
            "arn:aws:iam::111122223333:role/parent",
            "arn:aws:iam::111122223333:role/Parent",
            "arn:aws:iam::111122223333:role/service/parent",
            "arn:aws:sts::111122223333:assumed-role/parent/i-0123456789abcdef0",
        ] {
            let other = PrincipalArn::parse(arn).unwrap();
            assert!(parent.same_identity(&other), "{arn}");
        }
        for arn in [
            "arn:aws:iam::111122223333:role/parent-admin",
            "arn:aws:iam::444455556666:role/parent",
            "arn:aws:iam::111122223333:user/parent",
            "arn:aws:iam::111122223333:root",
        ] {
            let other = PrincipalArn::parse(arn).unwrap();
            assert!(!parent.same_identity(&other), "{arn}");
        }
    }

    #[test]
    fn bare_account_id_message_names_role_arn() {
        let error = PrincipalArn::parse("111122223333").unwrap_err();
        assert!(error.reason.contains("bare account id"), "{error}");
    }

    #[test]
    fn account_root_is_recognised() {
        let root = PrincipalArn::parse("arn:aws:iam::111122223333:root").unwrap();
        assert!(root.is_account_root());
        assert_eq!(root.account(), "111122223333");
        let role = PrincipalArn::parse("arn:aws:iam::111122223333:role/root").unwrap();
        assert!(!role.is_account_root());
    }

    #[test]
    fn account_root_ignores_case_and_trailing_slash() {
        for text in [
            "arn:aws:iam::111122223333:ROOT",
            "arn:aws:iam::111122223333:Root",
            "arn:aws:iam::111122223333:root/",
            "arn:aws:iam::111122223333:ROOT//",
        ] {
            let root = PrincipalArn::parse(text).unwrap();
            assert!(root.is_account_root(), "{text}");
        }
        for text in [
            "arn:aws:iam::111122223333:role/root",
            "arn:aws:iam::111122223333:rooter",
            "arn:aws:sts::111122223333:root",
        ] {
            let other = PrincipalArn::parse(text).unwrap();
            assert!(!other.is_account_root(), "{text}");
        }
    }

    #[test]
    fn root_spellings_are_one_identity() {
        let root = PrincipalArn::parse("arn:aws:iam::111122223333:root").unwrap();
        for text in [
            "arn:aws:iam::111122223333:ROOT",
            "arn:aws:iam::111122223333:root/",
        ] {
            let other = PrincipalArn::parse(text).unwrap();
            assert!(root.same_identity(&other), "{text}");
        }
    }

    #[test]
    fn pcr0_becomes_image_sha384() {
        assert_eq!(pcr_condition_key(0), IMAGE_SHA384_KEY);
        assert_eq!(pcr_condition_key(8), "kms:RecipientAttestation:PCR8");
    }

    #[test]
    fn admin_actions_exclude_dangerous_actions() {
        for action in KEY_ADMIN_ACTIONS {
            assert!(!PLAINTEXT_ACTIONS.contains(&action), "{action}");
            assert!(!action.contains('*'), "{action}");
            assert_ne!(action, "kms:CreateGrant");
            assert!(!action.starts_with("kms:ReEncrypt"), "{action}");
        }
    }
}
