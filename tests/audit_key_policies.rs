//! `policy audit`: one small failing key policy per bypass class, each with exactly the
//! expected finding, policies that are safe in unusual ways, input shapes and exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use enclave_broker::policy::audit::{Finding, KeyPolicyDocument, audit};

/// sha384("audit fixture PCR0"), a value of the right form that belongs to no image.
const PCR: &str = "f045eede19f82a1fe0b707b7def14132016c26f57b31c3a2b39cccaa5237f736959c2452fec1da0e1b03381c8a5eb55e";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/key-policies")
        .join(name)
}

fn audit_fixture(name: &str) -> Vec<Finding> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    audit(&KeyPolicyDocument::parse(&text).unwrap())
}

/// (id, statement index, Sid) of each finding, in order.
fn summary(findings: &[Finding]) -> Vec<(&'static str, usize, Option<String>)> {
    findings
        .iter()
        .map(|f| (f.kind.id(), f.statement.index, f.statement.sid.clone()))
        .collect()
}

fn broker(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_enclave-broker"))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn each_bypass_class_gives_exactly_its_finding() {
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "plaintext-direct",
            "plaintext-without-attestation",
            0,
            "DecryptAnywhere",
        ),
        (
            "plaintext-wildcard",
            "plaintext-without-attestation",
            0,
            "GenerateAnything",
        ),
        (
            "plaintext-notaction",
            "plaintext-without-attestation",
            0,
            "AllButSome",
        ),
        (
            "plaintext-ifexists",
            "plaintext-without-attestation",
            0,
            "OptionalAttestation",
        ),
        ("reencrypt", "reencrypt-allowed", 1, "Rewrap"),
        ("grant", "grant-creation-allowed", 1, "Admins"),
        (
            "unknown-key-bare",
            "unknown-condition-key",
            0,
            "EnclaveDecrypt",
        ),
        (
            "unknown-key-bare-deny",
            "unknown-condition-key",
            1,
            "DenyOutsideEnclave",
        ),
        (
            "unknown-key-no-index",
            "unknown-condition-key",
            0,
            "EnclaveDecrypt",
        ),
        (
            "unknown-key-out-of-range",
            "unknown-condition-key",
            0,
            "EnclaveDecrypt",
        ),
        ("key-wrong-case", "condition-key-case", 0, "EnclaveDecrypt"),
        (
            "unsupported-action",
            "attestation-on-unsupported-action",
            1,
            "EnclaveSign",
        ),
        ("pcr-length", "pcr-value-format", 0, "EnclaveDecrypt"),
        ("pcr-all-zero", "all-zero-pcr", 0, "EnclaveDecrypt"),
        ("pcr-wildcard", "pcr-wildcard", 0, "EnclaveDecrypt"),
        ("pcr-uppercase", "pcr-value-case", 0, "EnclaveDecrypt"),
        (
            "plaintext-deny-other-key",
            "plaintext-without-attestation",
            0,
            "DecryptAnywhere",
        ),
        (
            "plaintext-deny-notresource",
            "plaintext-without-attestation",
            0,
            "DecryptAnywhere",
        ),
        ("image-pcr3-only", "image-not-pinned", 0, "EnclaveDecrypt"),
        ("image-pcr1-only", "image-not-pinned", 0, "EnclaveDecrypt"),
        (
            "image-null-false-pcr3",
            "image-not-pinned",
            0,
            "EnclaveDecrypt",
        ),
        (
            "put-key-policy-same-role",
            "recipient-can-put-key-policy",
            2,
            "KeyAdministration",
        ),
        (
            "put-key-policy-account-root",
            "recipient-can-put-key-policy",
            2,
            "KeyAdministration",
        ),
        (
            "any-principal",
            "any-principal",
            0,
            "AnyAccountRunningTheImage",
        ),
    ];
    for (name, id, index, sid) in cases {
        let findings = audit_fixture(&format!("findings/{name}.json"));
        assert_eq!(
            summary(&findings),
            [(*id, *index, Some((*sid).to_owned()))],
            "fixture {name}"
        );
    }
}

#[test]
fn default_root_kms_star_gives_four_findings() {
    let findings = audit_fixture("findings/plaintext-kms-star-root.json");
    let ids: Vec<&str> = findings.iter().map(|f| f.kind.id()).collect();
    assert_eq!(
        ids,
        [
            "recipient-can-put-key-policy",
            "plaintext-without-attestation",
            "reencrypt-allowed",
            "grant-creation-allowed"
        ]
    );
    assert!(
        findings[1].message.contains("\"kms:*\""),
        "{}",
        findings[1].message
    );
}

#[test]
fn bare_key_message_suggests_documented_keys() {
    let findings = audit_fixture("findings/unknown-key-bare.json");
    assert_eq!(
        findings[0].message,
        "unknown condition key kms:RecipientAttestation (did you mean \
         kms:RecipientAttestation:ImageSha384 or :PCR0?)"
    );
}

#[test]
fn unsupported_action_message_names_action() {
    let findings = audit_fixture("findings/unsupported-action.json");
    assert!(
        findings[0]
            .message
            .starts_with("kms:Sign does not support RecipientAttestation conditions"),
        "{}",
        findings[0].message
    );
}

#[test]
fn pcr_length_message_gives_found_length() {
    let findings = audit_fixture("findings/pcr-length.json");
    assert!(
        findings[0].message.contains("has 64 characters"),
        "{}",
        findings[0].message
    );
}

#[test]
fn null_deny_covering_pinned_allow_is_clean() {
    assert_eq!(
        audit_fixture("clean/null-deny-covers-pinned-allow.json"),
        []
    );
}

#[test]
fn null_deny_leaves_broad_allow_unpinned() {
    // The Deny stops requests without an attestation document, so the Allow without
    // conditions releases to every enclave image, and the account root may rewrite the policy.
    let findings = audit_fixture("findings/null-deny-broad-allow.json");
    assert_eq!(
        summary(&findings),
        [
            ("image-not-pinned", 1, None),
            ("recipient-can-put-key-policy", 2, None)
        ]
    );
    assert!(
        findings[0].message.starts_with(
            "allows kms:Decrypt, kms:GenerateDataKey, kms:GenerateDataKeyPair, \
                          kms:DeriveSharedSecret to arn:aws:iam::111122223333:role/enclave-parent"
        ),
        "{}",
        findings[0].message
    );
    assert!(
        findings[1]
            .message
            .contains("to arn:aws:iam::111122223333:root (by \"kms:PutKeyPolicy\")"),
        "{}",
        findings[1].message
    );
}

#[test]
fn image_pinned_by_pcr8_or_pcr2_is_clean() {
    for key in ["PCR8", "PCR2", "PCR0"] {
        let text = format!(
            r#"{{"Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
             "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:{key}": "{PCR}",
                                                      "kms:RecipientAttestation:PCR3": "{PCR}"}}}}}}]}}"#
        );
        assert_eq!(
            audit(&KeyPolicyDocument::parse(&text).unwrap()),
            [],
            "{key}"
        );
    }
}

#[test]
fn if_exists_pin_behind_null_deny_is_clean() {
    // The Deny guarantees an attestation document, so the IfExists comparison always runs.
    let text = format!(
        r#"{{"Statement": [
        {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCaseIfExists": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}}}}}},
        {{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {{"Null": {{"kms:RecipientAttestation:ImageSha384": "true"}}}}}}]}}"#
    );
    assert_eq!(audit(&KeyPolicyDocument::parse(&text).unwrap()), []);
}

#[test]
fn zero_pcr8_does_not_pin_image() {
    let zero = "0".repeat(96);
    let text = format!(
        r#"{{"Statement": [
        {{"Sid": "EnclaveDecrypt", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:PCR8": "{zero}"}}}}}}]}}"#
    );
    let findings = audit(&KeyPolicyDocument::parse(&text).unwrap());
    assert_eq!(
        summary(&findings),
        [
            ("all-zero-pcr", 0, Some("EnclaveDecrypt".to_owned())),
            ("image-not-pinned", 0, Some("EnclaveDecrypt".to_owned()))
        ]
    );
}

#[test]
fn generate_random_alone_needs_no_pinning() {
    let text = r#"{"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "kms:GenerateRandom",
         "Condition": {"StringEquals": {"kms:RecipientAttestation:PCR3": "3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a"}}}]}"#;
    assert_eq!(audit(&KeyPolicyDocument::parse(text).unwrap()), []);
}

#[test]
fn deny_of_put_key_policy_clears_control_finding() {
    let text = format!(
        r#"{{"Statement": [
        {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
         "Action": "kms:*", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}}}}}},
        {{"Effect": "Deny", "Principal": "*", "Action": "kms:PutKeyPolicy", "Resource": "*"}}]}}"#
    );
    let findings = audit(&KeyPolicyDocument::parse(&text).unwrap());
    let ids: Vec<&str> = findings.iter().map(|f| f.kind.id()).collect();
    assert!(!ids.contains(&"recipient-can-put-key-policy"), "{ids:?}");
}

#[test]
fn admin_in_other_account_is_not_recipient() {
    let text = format!(
        r#"{{"Statement": [
        {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}}}}}},
        {{"Effect": "Allow", "Principal": {{"AWS": ["arn:aws:iam::444455556666:root", "111122223333-not-an-account",
                                              "arn:aws:iam::111122223333:role/key-admin"]}},
         "Action": "kms:PutKeyPolicy", "Resource": "*"}}]}}"#
    );
    assert_eq!(audit(&KeyPolicyDocument::parse(&text).unwrap()), []);
}

#[test]
fn bare_account_id_admin_contains_recipient() {
    let text = format!(
        r#"{{"Statement": [
        {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}}}}}},
        {{"Effect": "Allow", "Principal": {{"AWS": "111122223333"}}, "Action": "kms:PutKeyPolicy", "Resource": "*"}}]}}"#
    );
    let findings = audit(&KeyPolicyDocument::parse(&text).unwrap());
    assert_eq!(
        summary(&findings),
        [("recipient-can-put-key-policy", 1, None)]
    );
}

#[test]
fn uppercase_root_admin_contains_recipient() {
    for admin in [
        "arn:aws:iam::111122223333:ROOT",
        "arn:aws:iam::111122223333:root/",
    ] {
        let text = format!(
            r#"{{"Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}},
             "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}}}}}},
            {{"Effect": "Allow", "Principal": {{"AWS": "{admin}"}}, "Action": "kms:PutKeyPolicy", "Resource": "*"}}]}}"#
        );
        let findings = audit(&KeyPolicyDocument::parse(&text).unwrap());
        assert_eq!(
            summary(&findings),
            [("recipient-can-put-key-policy", 1, None)],
            "{admin}"
        );
    }
}

#[test]
fn single_statement_object_is_clean() {
    assert_eq!(audit_fixture("clean/single-statement-object.json"), []);
}

#[test]
fn deny_limited_to_one_principal_does_not_cover() {
    let text = r#"{"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:Decrypt"},
        {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:role/other"}, "Action": "kms:Decrypt",
         "Condition": {"Null": {"kms:RecipientAttestation:ImageSha384": "true"}}}]}"#;
    let findings = audit(&KeyPolicyDocument::parse(text).unwrap());
    assert_eq!(
        summary(&findings),
        [("plaintext-without-attestation", 0, None)]
    );
}

#[test]
fn deny_with_extra_condition_does_not_cover() {
    let text = r#"{"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}, "Action": "kms:Decrypt"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:*",
         "Condition": {"Null": {"kms:RecipientAttestation:ImageSha384": "true"},
                       "StringEquals": {"aws:PrincipalAccount": "111122223333"}}}]}"#;
    let findings = audit(&KeyPolicyDocument::parse(text).unwrap());
    assert_eq!(
        summary(&findings),
        [("plaintext-without-attestation", 0, None)]
    );
}

#[test]
fn conditioned_reencrypt_and_grant_clean() {
    let text = r#"{"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "kms:ReEncrypt*",
         "Condition": {"Bool": {"kms:ReEncryptOnSameKey": true}}},
        {"Effect": "Allow", "Principal": "*", "Action": "kms:CreateGrant",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]}"#;
    assert_eq!(audit(&KeyPolicyDocument::parse(text).unwrap()), []);
}

#[test]
fn rendered_policies_are_clean() {
    for name in [
        "rendered/example-app.json",
        "rendered/multi-entry-app.json",
        "rendered/multi-entry-batch-no-admin.json",
    ] {
        assert_eq!(audit_fixture(name), [], "{name}");
    }
}

#[test]
fn cli_exits_zero_for_clean_policy() {
    let path = fixture("rendered/example-app.json");
    let output = broker(&["policy", "audit", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no findings"));
}

#[test]
fn cli_exits_one_with_sid_and_fix() {
    let path = fixture("findings/reencrypt.json");
    let output = broker(&["policy", "audit", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Statement[1] (Sid \"Rewrap\") [reencrypt-allowed]"),
        "{stdout}"
    );
    assert!(stdout.contains("\n  fix: "), "{stdout}");
}

#[test]
fn cli_json_lists_findings_by_id() {
    let path = fixture("findings/plaintext-kms-star-root.json");
    let output = broker(&["policy", "audit", "--json", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["clean"], false);
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "recipient-can-put-key-policy",
            "plaintext-without-attestation",
            "reencrypt-allowed",
            "grant-creation-allowed"
        ]
    );
    let first = &report["findings"][1];
    assert_eq!(first["statement"]["index"], 0);
    assert_eq!(first["statement"]["sid"], "Enable IAM User Permissions");
    assert!(first["fix"].as_str().unwrap().contains("Null"));
}

#[test]
fn cli_json_clean_report() {
    let path = fixture("rendered/multi-entry-app.json");
    let output = broker(&["policy", "audit", "--json", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report, serde_json::json!({"clean": true, "findings": []}));
}

#[test]
fn cli_reads_get_key_policy_output_from_stdin() {
    let finding = std::fs::read_to_string(fixture("findings/grant.json")).unwrap();
    let wrapped = serde_json::json!({"Policy": finding, "PolicyName": "default"}).to_string();
    let output = broker(&["policy", "audit", "-"], Some(wrapped.as_bytes()));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("[grant-creation-allowed]"));

    let clean = std::fs::read_to_string(fixture("rendered/example-app.json")).unwrap();
    let wrapped = serde_json::json!({"Policy": clean, "PolicyName": "default"}).to_string();
    let output = broker(&["policy", "audit", "-"], Some(wrapped.as_bytes()));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn cli_exits_two_for_unreadable_input() {
    let missing = broker(&["policy", "audit", "/nonexistent/key-policy.json"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("failed to read"));

    let not_json = broker(&["policy", "audit", "-"], Some(b"Statement: none"));
    assert_eq!(not_json.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_json.stderr).contains("not valid JSON"));

    let bad_wrapper = broker(
        &["policy", "audit", "-"],
        Some(br#"{"Policy": "{not json"}"#),
    );
    assert_eq!(bad_wrapper.status.code(), Some(2));

    let no_effect = br#"{"Statement": [{"Principal": "*", "Action": "kms:Decrypt"}]}"#;
    let output = broker(&["policy", "audit", "-"], Some(no_effect));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Statement[0]: Effect"));

    let binary = broker(&["policy", "audit", "-"], Some(&[0xff, 0xfe, 0x00]));
    assert_eq!(binary.status.code(), Some(2));
}

#[test]
fn rejects_unknown_and_miscased_keys_naming_each() {
    for (name, key) in [
        ("unknown-key-bare-deny", "kms:RecipientAttestation"),
        ("unknown-key-no-index", "kms:RecipientAttestation:PCR"),
        ("unknown-key-out-of-range", "kms:RecipientAttestation:PCR32"),
    ] {
        let findings = audit_fixture(&format!("findings/{name}.json"));
        assert!(
            findings[0]
                .message
                .starts_with(&format!("unknown condition key {key} (")),
            "{name}: {}",
            findings[0].message
        );
    }

    let findings = audit_fixture("findings/key-wrong-case.json");
    assert!(
        findings[0].message.starts_with(
            "condition key kms:RecipientAttestation:Pcr0 is not spelled as documented"
        ),
        "{}",
        findings[0].message
    );
    assert_eq!(findings[0].fix, "write kms:RecipientAttestation:PCR0");
}

#[test]
fn cli_fails_on_bare_attestation_key_in_deny() {
    let path = fixture("findings/unknown-key-bare-deny.json");
    let output = broker(&["policy", "audit", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "Statement[1] (Sid \"DenyOutsideEnclave\") [unknown-condition-key]: \
             unknown condition key kms:RecipientAttestation (did you mean"
        ),
        "{stdout}"
    );
}

#[test]
fn cli_fails_on_pinned_allow_to_everyone() {
    let path = fixture("findings/any-principal.json");
    let output = broker(&["policy", "audit", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "Statement[0] (Sid \"AnyAccountRunningTheImage\") [any-principal]: allows \
             kms:Decrypt to everyone (\"*\")"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("aws:PrincipalArn"), "{stdout}");
}

#[test]
fn everyone_with_caller_account_is_clean() {
    assert_eq!(audit_fixture("clean/any-principal-caller-account.json"), []);
}

#[test]
fn everyone_with_principal_arn_is_clean() {
    let text = format!(
        r#"{{"Statement": [
        {{"Effect": "Allow", "Principal": {{"AWS": ["*"]}}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}},
                        "ArnEquals": {{"aws:PrincipalArn": "arn:aws:iam::111122223333:role/enclave-parent"}}}}}}]}}"#
    );
    assert_eq!(audit(&KeyPolicyDocument::parse(&text).unwrap()), []);
}

#[test]
fn negated_account_condition_does_not_limit() {
    let text = format!(
        r#"{{"Statement": [
        {{"Effect": "Allow", "Principal": "*", "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {{"StringEqualsIgnoreCase": {{"kms:RecipientAttestation:ImageSha384": "{PCR}"}},
                        "StringNotEquals": {{"aws:PrincipalAccount": "444455556666"}}}}}}]}}"#
    );
    let findings = audit(&KeyPolicyDocument::parse(&text).unwrap());
    assert_eq!(summary(&findings), [("any-principal", 0, None)]);
    assert!(
        findings[0]
            .message
            .starts_with("allows kms:GenerateDataKey, kms:GenerateDataKeyPair to everyone"),
        "{}",
        findings[0].message
    );
}

#[test]
fn rejects_attestation_condition_on_encrypt() {
    let text = r#"{"Statement": [
        {"Sid": "EnclaveEncrypt", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::111122223333:role/enclave-parent"},
         "Action": ["kms:Encrypt"], "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0":
            "f045eede19f82a1fe0b707b7def14132016c26f57b31c3a2b39cccaa5237f736959c2452fec1da0e1b03381c8a5eb55e"}}}]}"#;
    let findings = audit(&KeyPolicyDocument::parse(text).unwrap());
    assert_eq!(
        summary(&findings),
        [(
            "attestation-on-unsupported-action",
            0,
            Some("EnclaveEncrypt".to_owned())
        )]
    );
    assert!(
        findings[0]
            .message
            .starts_with("kms:Encrypt does not support RecipientAttestation conditions"),
        "{}",
        findings[0].message
    );
}

#[test]
fn deny_on_other_resource_is_named_as_ignored() {
    for (name, sid) in [
        (
            "plaintext-deny-other-key",
            "DenyWithoutAttestationOnOtherKey",
        ),
        (
            "plaintext-deny-notresource",
            "DenyWithoutAttestationNowhere",
        ),
    ] {
        let findings = audit_fixture(&format!("findings/{name}.json"));
        let expected = format!(
            "(Statement[1] (Sid {sid:?}) would, but only a Deny with \"Resource\": \"*\" and \
             no NotResource is certain to apply to this key)"
        );
        assert!(
            findings[0].message.ends_with(&expected),
            "{name}: {}",
            findings[0].message
        );
    }
}

#[test]
fn deny_without_resource_does_not_cover() {
    let text = r#"{"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/enclave-parent"}, "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
         "Condition": {"Null": {"kms:RecipientAttestation:ImageSha384": "true"}}}]}"#;
    let findings = audit(&KeyPolicyDocument::parse(text).unwrap());
    assert_eq!(
        summary(&findings),
        [("plaintext-without-attestation", 0, None)]
    );
}

#[test]
fn rejects_statement_with_resource_and_not_resource() {
    let text = r#"{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
        "Resource": "*", "NotResource": "*"}]}"#;
    let error = KeyPolicyDocument::parse(text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Statement[0]: a statement may have Resource or NotResource, not both"
    );
}

#[test]
fn rejects_duplicate_effect_with_exit_two() {
    let path = fixture("invalid/duplicate-effect.json");
    let output = broker(&["policy", "audit", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("duplicate key at Statement[0].Effect;"),
        "{stderr}"
    );
}

#[test]
fn rejects_duplicate_key_in_get_key_policy_output() {
    let inner = std::fs::read_to_string(fixture("invalid/duplicate-effect.json")).unwrap();
    let wrapped = serde_json::json!({"Policy": inner, "PolicyName": "default"}).to_string();
    let output = broker(&["policy", "audit", "-"], Some(wrapped.as_bytes()));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("duplicate key at Policy (the JSON string) Statement[0].Effect;"),
        "{stderr}"
    );
}

#[test]
fn rejects_duplicate_top_level_key() {
    let text = r#"{"Statement": [], "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "kms:Decrypt", "Resource": "*"}]}"#;
    let error = KeyPolicyDocument::parse(text).unwrap_err();
    assert!(
        error.to_string().starts_with("duplicate key at Statement;"),
        "{error}"
    );
}

#[test]
fn rejects_fifo_key_policy_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key-policy.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let output = broker(&["policy", "audit", fifo.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is a FIFO (named pipe)"), "{stderr}");
}
