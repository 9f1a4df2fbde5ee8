//! `policy kms-key-policy`: the rendered key policy for the example policies parses, carries
//! the condition keys and values of each allow entry, passes the audit, and matches the
//! committed documents that the Terraform module's tests compare against as well.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use enclave_broker::policy::audit::{KeyPolicyDocument, audit};
use enclave_broker::policy::key_policy::{
    KEY_ADMIN_ACTIONS, KeyPolicyError, KeyPolicyPrincipals, PLAINTEXT_ACTIONS, PrincipalArn,
    render_key_policy,
};
use enclave_broker::policy::{key_rules_from_str, load_key_rules};
use serde_json::{Value, json};

const PRINCIPAL: &str = "arn:aws:iam::111122223333:role/enclave-parent";
const ADMIN: &str = "arn:aws:iam::111122223333:role/key-admin";
const ADMIN_2: &str = "arn:aws:iam::111122223333:user/terraform";
const DEPLOYER: &str = "arn:aws:iam::111122223333:role/secrets-deployer";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn broker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enclave-broker"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn render_cli(policy: &str, key: &str, extra: &[&str]) -> (Value, String) {
    let policy = repo_path(policy);
    let mut args = vec![
        "policy",
        "kms-key-policy",
        policy.to_str().unwrap(),
        "--key",
        key,
        "--principal",
        PRINCIPAL,
    ];
    args.extend_from_slice(extra);
    let output = broker(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    (serde_json::from_slice(&output.stdout).unwrap(), stderr)
}

fn read_json(relative: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_path(relative)).unwrap()).unwrap()
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

/// The `StringEqualsIgnoreCase` conditions each allow entry should render to.
fn expected_conditions(policy: &str, key: &str) -> Vec<Value> {
    let rules = load_key_rules(&repo_path(policy)).unwrap();
    rules[key]
        .allow()
        .iter()
        .map(|entry| {
            let mut keys = serde_json::Map::new();
            for (index, value) in entry.pcrs() {
                let name = if index.get() == 0 {
                    "kms:RecipientAttestation:ImageSha384".to_owned()
                } else {
                    format!("kms:RecipientAttestation:PCR{index}")
                };
                keys.insert(name, Value::String(value.to_hex()));
            }
            json!({ "StringEqualsIgnoreCase": keys })
        })
        .collect()
}

fn assert_attested_statements(rendered: &Value, policy: &str, key: &str) {
    let expected = expected_conditions(policy, key);
    for (entry, condition) in expected.iter().enumerate() {
        let allow = statement(rendered, &format!("AllowAttestedEnclave{entry}"));
        assert_eq!(allow["Effect"], "Allow");
        assert_eq!(allow["Principal"], json!({"AWS": PRINCIPAL}));
        assert_eq!(allow["Action"], json!(PLAINTEXT_ACTIONS));
        assert_eq!(&allow["Condition"], condition, "allow entry {entry}");
    }
    let allows = rendered["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["Sid"]
                .as_str()
                .unwrap()
                .starts_with("AllowAttestedEnclave")
        })
        .count();
    assert_eq!(allows, expected.len());
}

fn assert_audit_clean(rendered: &Value) {
    let document = KeyPolicyDocument::parse(&rendered.to_string()).unwrap();
    assert_eq!(audit(&document), []);
}

#[test]
fn example_renders_one_attested_statement() {
    let (rendered, _) = render_cli(
        "policies/example.json",
        "app",
        &["--admin", ADMIN, "--admin", ADMIN_2, "--deployer", DEPLOYER],
    );

    assert_eq!(rendered["Version"], "2012-10-17");
    assert_attested_statements(&rendered, "policies/example.json", "app");
    let condition = &statement(&rendered, "AllowAttestedEnclave0")["Condition"];
    let keys: Vec<&String> = condition["StringEqualsIgnoreCase"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "kms:RecipientAttestation:ImageSha384",
            "kms:RecipientAttestation:PCR1",
            "kms:RecipientAttestation:PCR2",
            "kms:RecipientAttestation:PCR8"
        ]
    );
    assert_audit_clean(&rendered);
}

#[test]
fn example_matches_committed_document() {
    let (rendered, _) = render_cli(
        "policies/example.json",
        "app",
        &["--admin", ADMIN, "--admin", ADMIN_2, "--deployer", DEPLOYER],
    );
    assert_eq!(
        rendered,
        read_json("tests/fixtures/key-policies/rendered/example-app.json")
    );
}

#[test]
fn multi_entry_renders_one_statement_per_entry() {
    let (rendered, _) = render_cli(
        "tests/fixtures/key-policies/release/multi-entry.json",
        "app",
        &["--admin", ADMIN, "--deployer", DEPLOYER],
    );

    assert_attested_statements(
        &rendered,
        "tests/fixtures/key-policies/release/multi-entry.json",
        "app",
    );
    // The second entry is written in uppercase in the release policy.
    let second =
        &statement(&rendered, "AllowAttestedEnclave1")["Condition"]["StringEqualsIgnoreCase"];
    for value in second.as_object().unwrap().values() {
        let text = value.as_str().unwrap();
        assert_eq!(text, text.to_ascii_lowercase());
        assert_eq!(text.len(), 96);
    }
    assert!(second.get("kms:RecipientAttestation:PCR3").is_some());
    assert_audit_clean(&rendered);
    assert_eq!(
        rendered,
        read_json("tests/fixtures/key-policies/rendered/multi-entry-app.json")
    );
}

#[test]
fn rule_without_pcr0_still_denies_unattested_requests() {
    let (rendered, stderr) = render_cli(
        "tests/fixtures/key-policies/release/multi-entry.json",
        "batch",
        &[],
    );
    let allow = statement(&rendered, "AllowAttestedEnclave0");
    assert_eq!(
        allow["Condition"],
        json!({"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR8": expected_conditions(
            "tests/fixtures/key-policies/release/multi-entry.json", "batch")[0]
            ["StringEqualsIgnoreCase"]["kms:RecipientAttestation:PCR8"]}})
    );
    assert_audit_clean(&rendered);
    assert!(stderr.contains("no --admin given"), "{stderr}");
    assert_eq!(
        rendered,
        read_json("tests/fixtures/key-policies/rendered/multi-entry-batch-no-admin.json")
    );
}

#[test]
fn deny_and_admin_statements() {
    let (rendered, stderr) = render_cli(
        "policies/example.json",
        "app",
        &["--admin", ADMIN, "--admin", ADMIN, "--deployer", DEPLOYER],
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    let deny = statement(&rendered, "DenyPlaintextWithoutAttestation");
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], json!({"AWS": "*"}));
    assert_eq!(deny["Action"], json!(PLAINTEXT_ACTIONS));
    assert_eq!(
        deny["Condition"],
        json!({"Null": {"kms:RecipientAttestation:ImageSha384": "true"}})
    );

    let reencrypt = statement(&rendered, "DenyReEncrypt");
    assert_eq!(reencrypt["Effect"], "Deny");
    assert_eq!(reencrypt["Principal"], json!({"AWS": "*"}));
    assert_eq!(reencrypt["Action"], json!(["kms:ReEncrypt*"]));
    assert!(reencrypt.get("Condition").is_none());

    let admin = statement(&rendered, "AllowKeyAdministration");
    assert_eq!(
        admin["Principal"],
        json!({"AWS": [ADMIN]}),
        "duplicates are dropped"
    );
    assert_eq!(admin["Action"], json!(KEY_ADMIN_ACTIONS));

    let deployers = statement(&rendered, "AllowEncryptForDeployers");
    assert_eq!(deployers["Principal"], json!({"AWS": [DEPLOYER]}));
    assert_eq!(deployers["Action"], json!(["kms:Encrypt"]));
}

#[test]
fn statement_ids_are_stable() {
    let rules = load_key_rules(&repo_path(
        "tests/fixtures/key-policies/release/multi-entry.json",
    ))
    .unwrap();
    let principals = KeyPolicyPrincipals {
        principal: PrincipalArn::parse(PRINCIPAL).unwrap(),
        admins: vec![PrincipalArn::parse(ADMIN).unwrap()],
        deployers: vec![PrincipalArn::parse(DEPLOYER).unwrap()],
    };
    let policy = render_key_policy("app", &rules["app"], &principals).unwrap();
    assert_eq!(
        policy.statement_ids(),
        [
            "AllowAttestedEnclave0",
            "AllowAttestedEnclave1",
            "DenyPlaintextWithoutAttestation",
            "DenyReEncrypt",
            "AllowKeyAdministration",
            "AllowEncryptForDeployers"
        ]
    );
}

#[test]
fn refuses_debug_mode_pcr_values() {
    let zero = "0".repeat(96);
    let text = format!(
        r#"{{"keys": {{"dev": {{"key_id": "alias/dev", "allow_debug": true,
            "allow": [{{"pcrs": {{"0": "{zero}"}}}}]}}}}, "secrets": []}}"#
    );
    let rules = key_rules_from_str(&text).unwrap();
    let principals = KeyPolicyPrincipals {
        principal: PrincipalArn::parse(PRINCIPAL).unwrap(),
        admins: Vec::new(),
        deployers: Vec::new(),
    };
    assert_eq!(
        render_key_policy("dev", &rules["dev"], &principals),
        Err(KeyPolicyError::DebugModePcr {
            rule: "dev".to_owned(),
            entry: 0,
            index: 0
        })
    );
}

#[test]
fn rejects_all_zero_pcr8_in_key_policy() {
    let zero = "0".repeat(96);
    let image = "ab".repeat(48);
    let text = format!(
        r#"{{"keys": {{"dev": {{"key_id": "alias/dev", "allow_debug": true,
            "allow": [{{"pcrs": {{"0": "{image}", "8": "{zero}"}}}}]}}}}, "secrets": []}}"#
    );
    let rules = key_rules_from_str(&text).unwrap();
    let principals = KeyPolicyPrincipals {
        principal: PrincipalArn::parse(PRINCIPAL).unwrap(),
        admins: Vec::new(),
        deployers: Vec::new(),
    };
    assert_eq!(
        render_key_policy("dev", &rules["dev"], &principals),
        Err(KeyPolicyError::ZeroSigningCertificatePcr {
            rule: "dev".to_owned(),
            entry: 0,
        })
    );
}

#[test]
fn rejects_principal_listed_as_admin() {
    let rules =
        key_rules_from_str(&std::fs::read_to_string(repo_path("policies/example.json")).unwrap())
            .unwrap();
    let session = "arn:aws:sts::111122223333:assumed-role/enclave-parent/i-0123456789abcdef0";
    let principals = KeyPolicyPrincipals {
        principal: PrincipalArn::parse(PRINCIPAL).unwrap(),
        admins: vec![PrincipalArn::parse(session).unwrap()],
        deployers: Vec::new(),
    };
    assert_eq!(
        render_key_policy("app", &rules["app"], &principals),
        Err(KeyPolicyError::PrincipalIsAdmin {
            principal: PRINCIPAL.to_owned(),
            admin: session.to_owned(),
        })
    );
}

#[test]
fn cli_rejects_unpinned_and_zero_pcr8_like_terraform() {
    for (file, key, fragment) in [
        (
            "unpinned.json",
            "parent-only",
            "keys.parent-only.allow[0]: pins no enclave image",
        ),
        ("zero-pcr8.json", "unsigned", "PCR8 is all zeros"),
    ] {
        let policy = repo_path(&format!("tests/fixtures/key-policies/release/{file}"));
        let output = broker(&[
            "policy",
            "kms-key-policy",
            policy.to_str().unwrap(),
            "--key",
            key,
            "--principal",
            PRINCIPAL,
        ]);
        assert_eq!(output.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(fragment), "{file}: {stderr}");
    }
}

#[test]
fn cli_rejects_unknown_key_rule() {
    let policy = repo_path("policies/example.json");
    let output = broker(&[
        "policy",
        "kms-key-policy",
        policy.to_str().unwrap(),
        "--key",
        "nope",
        "--principal",
        PRINCIPAL,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--key \"nope\": no such key rule"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn cli_rejects_wildcard_admin_naming_flag() {
    let policy = repo_path("policies/example.json");
    let output = broker(&[
        "policy",
        "kms-key-policy",
        policy.to_str().unwrap(),
        "--key",
        "app",
        "--principal",
        PRINCIPAL,
        "--admin",
        "*",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--admin: invalid principal ARN \"*\""),
        "{stderr}"
    );
}

#[test]
fn cli_rejects_account_root_admin() {
    let policy = repo_path("policies/example.json");
    for admin in ["arn:aws:iam::111122223333:root", "111122223333"] {
        let output = broker(&[
            "policy",
            "kms-key-policy",
            policy.to_str().unwrap(),
            "--key",
            "app",
            "--principal",
            PRINCIPAL,
            "--admin",
            admin,
        ]);
        assert_eq!(output.status.code(), Some(2), "{admin}");
        assert!(output.stdout.is_empty(), "{admin}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--admin: "), "{admin}: {stderr}");
        assert!(stderr.contains("role"), "{admin}: {stderr}");
    }
    let output = broker(&[
        "policy",
        "kms-key-policy",
        policy.to_str().unwrap(),
        "--key",
        "app",
        "--principal",
        PRINCIPAL,
        "--admin",
        "arn:aws:iam::111122223333:root",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("kms:PutKeyPolicy"), "{stderr}");
}

#[test]
fn cli_rejects_account_root_principal() {
    let policy = repo_path("policies/example.json");
    for principal in [
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:ROOT",
        "arn:aws:iam::111122223333:root/",
    ] {
        let output = broker(&[
            "policy",
            "kms-key-policy",
            policy.to_str().unwrap(),
            "--key",
            "app",
            "--principal",
            principal,
            "--admin",
            ADMIN,
        ]);
        assert_eq!(output.status.code(), Some(2), "{principal}");
        assert!(output.stdout.is_empty(), "{principal}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--principal: principal"),
            "{principal}: {stderr}"
        );
        assert!(stderr.contains("account root"), "{principal}: {stderr}");
        assert!(
            stderr.contains("every IAM identity in the account"),
            "{principal}: {stderr}"
        );
        assert!(stderr.contains("role/"), "{principal}: {stderr}");
    }
}

#[test]
fn cli_rejects_account_root_admin_in_any_spelling() {
    let policy = repo_path("policies/example.json");
    for admin in [
        "arn:aws:iam::111122223333:ROOT",
        "arn:aws:iam::111122223333:Root",
        "arn:aws:iam::111122223333:root/",
    ] {
        let output = broker(&[
            "policy",
            "kms-key-policy",
            policy.to_str().unwrap(),
            "--key",
            "app",
            "--principal",
            PRINCIPAL,
            "--admin",
            admin,
        ]);
        assert_eq!(output.status.code(), Some(2), "{admin}");
        assert!(output.stdout.is_empty(), "{admin}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--admin: "), "{admin}: {stderr}");
        assert!(stderr.contains("account root"), "{admin}: {stderr}");
    }
}

#[test]
fn rejects_account_root_principal_when_rendering() {
    let rules =
        key_rules_from_str(&std::fs::read_to_string(repo_path("policies/example.json")).unwrap())
            .unwrap();
    let root = "arn:aws:iam::111122223333:Root/";
    let principals = KeyPolicyPrincipals {
        principal: PrincipalArn::parse(root).unwrap(),
        admins: vec![PrincipalArn::parse(ADMIN).unwrap()],
        deployers: Vec::new(),
    };
    assert_eq!(
        render_key_policy("app", &rules["app"], &principals),
        Err(KeyPolicyError::PrincipalIsAccountRoot {
            principal: root.to_owned()
        })
    );
}

#[test]
fn rejects_account_root_admin_when_rendering() {
    let rules =
        key_rules_from_str(&std::fs::read_to_string(repo_path("policies/example.json")).unwrap())
            .unwrap();
    let root = "arn:aws:iam::111122223333:root";
    let principals = KeyPolicyPrincipals {
        principal: PrincipalArn::parse(PRINCIPAL).unwrap(),
        admins: vec![
            PrincipalArn::parse(ADMIN).unwrap(),
            PrincipalArn::parse(root).unwrap(),
        ],
        deployers: Vec::new(),
    };
    assert_eq!(
        render_key_policy("app", &rules["app"], &principals),
        Err(KeyPolicyError::AdminIsAccountRoot {
            admin: root.to_owned()
        })
    );
}

#[test]
fn cli_rejects_invalid_release_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::write(
        &path,
        r#"{"keys": {"app": {"key_id": "alias/app", "allow": [{"pcrs": {"0": "000000"}}]}}}"#,
    )
    .unwrap();
    let output = broker(&[
        "policy",
        "kms-key-policy",
        path.to_str().unwrap(),
        "--key",
        "app",
        "--principal",
        PRINCIPAL,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keys.app.allow[0].pcrs.0"), "{stderr}");
}

#[test]
fn cli_rejects_malformed_pcr_values_like_terraform() {
    // The Terraform module's tests reject each rule of this file as well.
    let policy = repo_path("tests/fixtures/key-policies/release/malformed-pcrs.json");
    let output = broker(&[
        "policy",
        "kms-key-policy",
        policy.to_str().unwrap(),
        "--key",
        "prefixed",
        "--principal",
        PRINCIPAL,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (rule, problem) in [
        ("prefixed", "has a 0x prefix"),
        ("short", "has 6 characters"),
        ("newline", "has 97 characters"),
    ] {
        let line = stderr
            .lines()
            .find(|line| line.contains(&format!("keys.{rule}.allow[0].pcrs.0")))
            .unwrap_or_else(|| panic!("no problem reported for rule {rule}: {stderr}"));
        assert!(line.contains(problem), "{rule}: {line}");
    }
}
