//! Release policy loader: what it accepts, what it rejects, and the path it reports.

use std::path::Path;
use std::time::Duration;

use enclave_broker::attestation::pcr::PcrIndex;
use enclave_broker::policy::{EncryptionAlgorithm, PolicyError, ReleasePolicy, TrustRootSpec};
use serde_json::{Value, json};
use tempfile::TempDir;

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const DB_CIPHERTEXT: &[u8] = b"\x01\x02\x02\x00 ciphertext blob of DB_PASSWORD";
/// A real certificate (the AWS Nitro Enclaves root), since the loader parses dev roots.
const PEM: &str = include_str!("fixtures/nitro/aws_nitro_enclaves_root_g1.pem");

fn pcr(byte: &str) -> String {
    byte.repeat(48)
}

/// A folder holding the files the base policy refers to.
struct Folder {
    dir: TempDir,
}

impl Folder {
    fn new() -> Folder {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/db.kms"), DB_CIPHERTEXT).unwrap();
        std::fs::create_dir(dir.path().join("sim")).unwrap();
        std::fs::write(dir.path().join("sim/root.pem"), PEM).unwrap();
        Folder { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn load(&self, policy: &Value) -> Result<ReleasePolicy, PolicyError> {
        ReleasePolicy::from_json_str(&policy.to_string(), self.path())
    }

    fn load_text(&self, text: &str) -> Result<ReleasePolicy, PolicyError> {
        ReleasePolicy::from_json_str(text, self.path())
    }

    /// Loads a policy that must be rejected, and returns its problems as (path, message).
    fn problems(&self, policy: &Value) -> Vec<(String, String)> {
        problems_of(self.load(policy))
    }
}

fn problems_of(result: Result<ReleasePolicy, PolicyError>) -> Vec<(String, String)> {
    match result {
        Ok(_) => panic!("expected the policy to be rejected"),
        Err(error) => error
            .problems()
            .iter()
            .map(|problem| (problem.path.clone(), problem.message.clone()))
            .collect(),
    }
}

/// Asserts that exactly one problem was reported, at `path`, with a message containing
/// `fragment`.
fn assert_single_problem(problems: &[(String, String)], path: &str, fragment: &str) {
    assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
    assert_eq!(problems[0].0, path, "{problems:#?}");
    assert!(
        problems[0].1.contains(fragment),
        "message {:?} does not contain {fragment:?}",
        problems[0].1
    );
}

/// A valid policy that uses every field.
fn base_policy() -> Value {
    json!({
        "trust": { "roots": ["aws-nitro-enclaves-g1", { "dev_root_pem": "sim/root.pem" }] },
        "keys": {
            "app": {
                "key_id": KEY_ARN,
                "allow": [
                    { "pcrs": { "0": pcr("aa"), "1": pcr("11"), "2": pcr("22"), "8": pcr("88") } },
                    { "pcrs": { "0": pcr("bb"), "8": pcr("88") } }
                ],
                "max_age_seconds": 120,
                "allow_debug": false
            },
            "tls": { "key_id": "alias/tls", "allow": [ { "pcrs": { "0": pcr("aa") } } ] }
        },
        "secrets": [
            {
                "name": "DB_PASSWORD",
                "key": "app",
                "ciphertext_file": "secrets/db.kms",
                "encryption_context": { "app": "billing" },
                "env": "DB_PASSWORD"
            },
            {
                "name": "tls-key",
                "key": "tls",
                "ciphertext": "AQIDBA==",
                "encryption_algorithm": "RSAES_OAEP_SHA_256",
                "file": "tls/server.key"
            }
        ]
    })
}

/// The smallest valid policy.
fn minimal_policy() -> Value {
    json!({
        "keys": { "app": { "key_id": KEY_ARN, "allow": [ { "pcrs": { "0": pcr("aa") } } ] } },
        "secrets": [ { "name": "s", "key": "app", "ciphertext": "AQIDBA==", "env": "S" } ]
    })
}

#[test]
fn loads_policy_using_every_field() {
    let folder = Folder::new();
    let policy = folder.load(&base_policy()).unwrap();

    assert_eq!(policy.trust_roots().len(), 2);
    assert_eq!(policy.trust_roots()[0], TrustRootSpec::AwsNitroEnclavesG1);
    let TrustRootSpec::DevRootPem { path, pem } = &policy.trust_roots()[1] else {
        panic!("expected a development root");
    };
    assert_eq!(path, &folder.path().join("sim/root.pem"));
    assert_eq!(pem, PEM.as_bytes());
    assert!(policy.has_development_root());

    let app = policy.key_rule("app").unwrap();
    assert_eq!(app.key_id(), KEY_ARN);
    assert!(app.is_key_arn());
    assert_eq!(app.allow().len(), 2);
    let pcr8 = PcrIndex::new(8).unwrap();
    assert_eq!(app.allow()[0].pcrs()[&pcr8].to_hex(), pcr("88"));
    assert_eq!(app.max_age(), Duration::from_secs(120));
    assert!(!app.allow_debug());
    assert!(!policy.key_rule("tls").unwrap().is_key_arn());

    let db = policy.secret("DB_PASSWORD").unwrap();
    assert_eq!(db.key(), "app");
    assert_eq!(db.ciphertext(), DB_CIPHERTEXT);
    assert_eq!(
        db.ciphertext_file(),
        Some(folder.path().join("secrets/db.kms").as_path())
    );
    assert_eq!(db.encryption_context()["app"], "billing");
    assert_eq!(db.encryption_algorithm(), None);
    assert_eq!(db.env(), Some("DB_PASSWORD"));
    assert_eq!(db.file(), None);

    let tls = &policy.secrets()[1];
    assert_eq!(tls.ciphertext(), [1, 2, 3, 4]);
    assert_eq!(tls.ciphertext_file(), None);
    assert_eq!(
        tls.encryption_algorithm(),
        Some(EncryptionAlgorithm::RsaesOaepSha256)
    );
    assert_eq!(tls.file().unwrap().as_str(), "tls/server.key");
    assert_eq!(tls.env(), None);
}

#[test]
fn applies_defaults_for_optional_fields() {
    let folder = Folder::new();
    let policy = folder.load(&minimal_policy()).unwrap();

    assert_eq!(policy.trust_roots(), [TrustRootSpec::AwsNitroEnclavesG1]);
    assert!(!policy.has_development_root());
    let rule = policy.key_rule("app").unwrap();
    assert_eq!(rule.max_age(), Duration::from_secs(300));
    assert!(!rule.allow_debug());
    let secret = &policy.secrets()[0];
    assert!(secret.encryption_context().is_empty());
    assert_eq!(secret.encryption_algorithm(), None);
}

#[test]
fn trust_without_roots_uses_aws_root() {
    let folder = Folder::new();
    let mut policy = minimal_policy();
    policy["trust"] = json!({});
    let policy = folder.load(&policy).unwrap();
    assert_eq!(policy.trust_roots(), [TrustRootSpec::AwsNitroEnclavesG1]);
}

#[test]
fn stores_uppercase_pcr_value_as_lowercase() {
    let folder = Folder::new();
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("AB"));
    let policy = folder.load(&policy).unwrap();
    let pcr0 = PcrIndex::new(0).unwrap();
    let value = &policy.key_rule("app").unwrap().allow()[0].pcrs()[&pcr0];
    assert_eq!(value.to_hex(), pcr("ab"));
}

#[test]
fn loads_policy_file_resolving_paths_against_its_folder() {
    let folder = Folder::new();
    let policy_path = folder.path().join("policy.json");
    std::fs::write(&policy_path, base_policy().to_string()).unwrap();

    let policy = ReleasePolicy::load(&policy_path).unwrap();

    assert_eq!(policy.secrets()[0].ciphertext(), DB_CIPHERTEXT);
}

#[test]
fn load_reports_missing_policy_file() {
    let folder = Folder::new();
    let missing = folder.path().join("absent.json");
    let error = ReleasePolicy::load(&missing).unwrap_err();
    assert_eq!(error.file(), Some(missing.as_path()));
    let problems = problems_of(Err(error));
    assert_single_problem(&problems, "(top level)", "failed to read");
}

#[test]
fn accepts_absolute_ciphertext_file() {
    let folder = Folder::new();
    let absolute = folder.path().join("secrets/db.kms");
    let mut policy = minimal_policy();
    let secret = policy["secrets"][0].as_object_mut().unwrap();
    secret.remove("ciphertext");
    secret.insert(
        "ciphertext_file".to_owned(),
        json!(absolute.to_str().unwrap()),
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let policy = ReleasePolicy::from_json_str(&policy.to_string(), elsewhere.path()).unwrap();

    assert_eq!(policy.secrets()[0].ciphertext(), DB_CIPHERTEXT);
    assert_eq!(
        policy.secrets()[0].ciphertext_file(),
        Some(absolute.as_path())
    );
}

// ---- PCR values and indexes ----

fn pcr0_problems(value: &str) -> Vec<(String, String)> {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(value);
    Folder::new().problems(&policy)
}

#[test]
fn rejects_pcr_value_with_0x_prefix() {
    let problems = pcr0_problems(&format!("0x{}", pcr("aa")));
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "0x prefix");
}

#[test]
fn rejects_sha256_sized_pcr_value() {
    let problems = pcr0_problems(&"aa".repeat(32));
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "64 characters");
    assert!(problems[0].1.contains("PCR0"), "{problems:?}");
}

#[test]
fn rejects_short_pcr_value() {
    let problems = pcr0_problems("000000");
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "6 characters");
}

#[test]
fn rejects_pcr_value_with_trailing_newline() {
    let problems = pcr0_problems(&format!("{}\n", pcr("aa")));
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "97 characters");
}

#[test]
fn rejects_pcr_value_with_non_hex_digit() {
    let problems = pcr0_problems(&format!("{}zz", "aa".repeat(47)));
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "non-hex character");
}

#[test]
fn rejects_pcr_value_that_is_not_a_string() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(0);
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "expected a string");
}

#[test]
fn rejects_pcr_index_out_of_range() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["32"] = json!(pcr("aa"));
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.32", "out of range");
}

#[test]
fn rejects_pcr_index_with_leading_zero() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["08"] = json!(pcr("aa"));
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "keys.app.allow[0].pcrs.08",
        "not a decimal number",
    );
}

#[test]
fn reports_bad_pcr_index_and_bad_value_together() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["x"] = json!("0x00");
    let problems = Folder::new().problems(&policy);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems
            .iter()
            .all(|(path, _)| path == "keys.app.allow[0].pcrs.x")
    );
}

#[test]
fn rejects_empty_pcrs_map() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"] = json!({});
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "keys.app.allow[0].pcrs",
        "would match every enclave",
    );
}

#[test]
fn rejects_empty_allow_list() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"] = json!([]);
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow", "at least one PCR set");
}

#[test]
fn rejects_allow_entry_without_pcrs() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"] = json!([{}]);
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "keys.app.allow[0].pcrs",
        "missing required field",
    );
}

// ---- Debug-mode PCRs ----

#[test]
fn rejects_all_zero_pcr0_without_allow_debug() {
    let problems = pcr0_problems(&pcr("00"));
    assert_eq!(
        problems,
        [(
            "keys.app.allow[0].pcrs.0".to_owned(),
            "all-zero PCR0 is what debug-mode enclaves report; set allow_debug: true on this \
             key rule to allow it (never in production)"
                .to_owned()
        )]
    );
}

#[test]
fn rejects_all_zero_pcr1_and_pcr2_without_allow_debug() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["1"] = json!(pcr("00"));
    policy["keys"]["app"]["allow"][0]["pcrs"]["2"] = json!(pcr("00"));
    let problems = Folder::new().problems(&policy);
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        ["keys.app.allow[0].pcrs.1", "keys.app.allow[0].pcrs.2"]
    );
    assert!(problems[0].1.contains("all-zero PCR1"), "{problems:?}");
}

#[test]
fn rejects_all_zero_pcr0_with_explicit_allow_debug_false() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow_debug"] = json!(false);
    policy["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("00"));
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "all-zero PCR0");
}

#[test]
fn accepts_all_zero_pcr0_with_allow_debug() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow_debug"] = json!(true);
    policy["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("00"));
    let policy = Folder::new().load(&policy).unwrap();
    assert!(policy.key_rule("app").unwrap().allow_debug());
}

#[test]
fn rejects_zero_debug_pcrs_beside_pcr8() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"] =
        json!({ "0": pcr("00"), "1": pcr("00"), "2": pcr("00"), "8": pcr("88") });
    let problems = Folder::new().problems(&policy);
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "keys.app.allow[0].pcrs.0",
            "keys.app.allow[0].pcrs.1",
            "keys.app.allow[0].pcrs.2"
        ]
    );
}

#[test]
fn accepts_all_zero_pcr_outside_debug_set() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["3"] = json!(pcr("00"));
    assert!(Folder::new().load(&policy).is_ok());
}

// ---- Image pinning ----

#[test]
fn rejects_entry_pinning_only_pcr5() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"] = json!({ "5": pcr("00") });
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "keys.app.allow[0]",
        "pins no enclave image (it lists only PCR5)",
    );
    assert!(
        problems[0]
            .1
            .contains("Add PCR0 (image), PCR2 (application) or a non-zero PCR8"),
        "{problems:?}"
    );
}

#[test]
fn rejects_entry_pinning_only_parent_pcrs() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"] = json!([
        { "pcrs": { "0": pcr("aa") } },
        { "pcrs": { "3": pcr("33"), "4": pcr("44") } },
        { "pcrs": { "1": pcr("11") } }
    ]);
    let problems = Folder::new().problems(&policy);
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["keys.app.allow[1]", "keys.app.allow[2]"]);
    assert!(
        problems[0].1.contains("(it lists only PCR3, PCR4)"),
        "{problems:?}"
    );
}

#[test]
fn accepts_each_image_pcr_alone() {
    for index in ["0", "2", "8"] {
        let mut policy = minimal_policy();
        policy["keys"]["app"]["allow"][0]["pcrs"] = json!({ index: pcr("ab") });
        assert!(Folder::new().load(&policy).is_ok(), "PCR{index}");
    }
}

#[test]
fn accepts_baked_policy_pinning_pcr1_and_pcr8() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"] = json!({ "1": pcr("11"), "8": pcr("88") });
    assert!(Folder::new().load(&policy).is_ok());
}

#[test]
fn rejects_all_zero_pcr8_without_allow_debug() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["8"] = json!(pcr("00"));
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "keys.app.allow[0].pcrs.8",
        "all-zero PCR8 is what unsigned images and debug-mode enclaves report",
    );
}

#[test]
fn rejects_zero_pcr8_as_only_pin() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow_debug"] = json!(true);
    policy["keys"]["app"]["allow"][0]["pcrs"] = json!({ "4": pcr("44"), "8": pcr("00") });
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow[0]", "pins no enclave image");
}

#[test]
fn accepts_debug_zero_pcr8_beside_pcr0() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow_debug"] = json!(true);
    policy["keys"]["app"]["allow"][0]["pcrs"]["8"] = json!(pcr("00"));
    assert!(Folder::new().load(&policy).is_ok());
}

#[test]
fn reports_invalid_image_pcr_once() {
    // The invalid PCR0 is the only problem: the entry is not also reported as unpinned.
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"] = json!({ "0": "000000", "4": pcr("44") });
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "invalid PCR0 value");
}

#[test]
fn image_pin_rule_applies_to_key_rules_loader() {
    let text = json!({
        "keys": { "app": { "key_id": KEY_ARN, "allow": [ { "pcrs": { "3": pcr("33") } } ] } }
    })
    .to_string();
    let error = enclave_broker::policy::key_rules_from_str(&text).unwrap_err();
    assert_eq!(error.problems().len(), 1, "{error}");
    assert_eq!(error.problems()[0].path, "keys.app.allow[0]");
}

// ---- Key rules ----

#[test]
fn rejects_malformed_key_arn() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["key_id"] = json!("arn:aws:kms:us-east-1:11112222333:key/abcd");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.key_id", "is not 12 digits");
}

#[test]
fn accepts_alias_and_key_id_forms() {
    for key_id in [
        "alias/app",
        "arn:aws:kms:eu-west-1:111122223333:alias/app",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ] {
        let mut policy = minimal_policy();
        policy["keys"]["app"]["key_id"] = json!(key_id);
        let policy = Folder::new().load(&policy).unwrap();
        assert!(!policy.key_rule("app").unwrap().is_key_arn(), "{key_id}");
    }
}

#[test]
fn rejects_missing_key_id() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]
        .as_object_mut()
        .unwrap()
        .remove("key_id");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.key_id", "missing required field");
}

#[test]
fn rejects_non_positive_or_fractional_max_age() {
    for (value, found) in [
        (json!(0), "0"),
        (json!(-5), "-5"),
        (json!(300.5), "300.5"),
        (json!("300"), "a string"),
    ] {
        let mut policy = minimal_policy();
        policy["keys"]["app"]["max_age_seconds"] = value;
        let problems = Folder::new().problems(&policy);
        assert_single_problem(
            &problems,
            "keys.app.max_age_seconds",
            &format!("positive whole number of seconds, found {found}"),
        );
    }
}

#[test]
fn rejects_non_boolean_allow_debug() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["allow_debug"] = json!("yes");
    // The zero PCR0 is not reported as well: with allow_debug unreadable the loader cannot
    // tell whether it is allowed.
    policy["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("00"));
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "keys.app.allow_debug", "expected true or false");
}

#[test]
fn rejects_empty_keys_object() {
    let mut policy = minimal_policy();
    policy["keys"] = json!({});
    let problems = Folder::new().problems(&policy);
    assert_eq!(problems[0].0, "keys");
    assert!(problems[0].1.contains("no key rules"), "{problems:?}");
}

#[test]
fn rejects_rule_name_with_space() {
    let mut policy = minimal_policy();
    let rule = policy["keys"]["app"].clone();
    policy["keys"]["my app"] = rule;
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, r#"keys["my app"]"#, "invalid key rule name");
}

// ---- Unknown fields, duplicate keys, document shape ----

#[test]
fn rejects_unknown_field_with_json_path() {
    let mut policy = minimal_policy();
    policy["keys"]["app"]["alow"] = json!([]);
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "keys.app.alow",
        "unknown field; expected one of key_id, allow, max_age_seconds, allow_debug",
    );
}

#[test]
fn rejects_unknown_fields_at_every_level() {
    let mut policy = base_policy();
    policy["version"] = json!(1);
    policy["trust"]["pinned"] = json!(true);
    policy["trust"]["roots"][1]["sha256"] = json!("00");
    policy["keys"]["app"]["allow"][0]["image_sha384"] = json!("00");
    policy["secrets"][1]["mode"] = json!("0400");
    let problems = Folder::new().problems(&policy);
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "version",
            "trust.pinned",
            "trust.roots[1].sha256",
            "keys.app.allow[0].image_sha384",
            "secrets[1].mode"
        ]
    );
}

#[test]
fn rejects_duplicate_json_key() {
    let pcr0 = pcr("aa");
    let text = format!(
        r#"{{"keys": {{"app": {{"key_id": "alias/app",
             "allow": [{{"pcrs": {{"0": "{pcr0}", "0": "{pcr0}"}}}}]}}}},
            "secrets": [{{"name": "s", "key": "app", "ciphertext": "AQIDBA==", "env": "S"}}]}}"#
    );
    let problems = problems_of(Folder::new().load_text(&text));
    assert_single_problem(&problems, "keys.app.allow[0].pcrs.0", "duplicate key");
}

#[test]
fn rejects_missing_keys_and_secrets() {
    let problems = Folder::new().problems(&json!({}));
    assert_eq!(
        problems,
        [
            ("keys".to_owned(), "missing required field".to_owned()),
            ("secrets".to_owned(), "missing required field".to_owned()),
        ]
    );
}

#[test]
fn rejects_document_that_is_not_an_object() {
    let problems = Folder::new().problems(&json!([]));
    assert_single_problem(
        &problems,
        "(top level)",
        "expected an object, found an array",
    );
}

#[test]
fn reports_invalid_json_syntax() {
    let problems = problems_of(Folder::new().load_text("{\"keys\": "));
    assert_single_problem(&problems, "(top level)", "invalid JSON");
}

// ---- Trust roots ----

#[test]
fn reports_unreadable_dev_root_pem_at_its_path() {
    let mut policy = base_policy();
    policy["trust"]["roots"][1]["dev_root_pem"] = json!("sim/missing.pem");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "trust.roots[1].dev_root_pem", "failed to read");
}

#[test]
fn rejects_dev_root_file_without_pem_certificate() {
    let folder = Folder::new();
    std::fs::write(folder.path().join("sim/root.pem"), b"not a certificate").unwrap();
    let problems = folder.problems(&base_policy());
    assert_single_problem(&problems, "trust.roots[1].dev_root_pem", "PEM certificate");
}

#[test]
fn rejects_unknown_trust_root_name() {
    let mut policy = minimal_policy();
    policy["trust"] = json!({ "roots": ["aws-nitro-enclaves-g2"] });
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "trust.roots[0]", "unknown root");
}

#[test]
fn rejects_empty_trust_roots() {
    let mut policy = minimal_policy();
    policy["trust"] = json!({ "roots": [] });
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "trust.roots",
        "would trust no attestation document",
    );
}

#[test]
fn rejects_repeated_trust_root() {
    let mut policy = minimal_policy();
    policy["trust"] = json!({ "roots": ["aws-nitro-enclaves-g1", "aws-nitro-enclaves-g1"] });
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "trust.roots[1]", "repeats trust.roots[0]");
}

// ---- Secrets ----

#[test]
fn rejects_secret_with_undefined_key() {
    let mut policy = base_policy();
    policy["secrets"][1]["key"] = json!("tsl");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "secrets[1].key",
        "no key rule named \"tsl\" under keys; defined rules: app, tls",
    );
}

#[test]
fn rejects_duplicate_secret_names() {
    let mut policy = base_policy();
    policy["secrets"][1]["name"] = json!("DB_PASSWORD");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[1].name", "already used by secrets[0]");
}

#[test]
fn rejects_two_secrets_with_same_file() {
    let mut policy = base_policy();
    policy["secrets"][0]["file"] = json!("tls/server.key");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[1].file", "already used by secrets[0]");
}

#[test]
fn rejects_file_inside_another_secrets_file() {
    for (first, second) in [
        ("tls", "tls/server.key"),
        ("tls/server.key/x", "tls/server.key"),
    ] {
        let mut policy = base_policy();
        policy["secrets"][0]["file"] = json!(first);
        policy["secrets"][1]["file"] = json!(second);
        let problems = Folder::new().problems(&policy);
        assert_single_problem(&problems, "secrets[1].file", "one is inside the other");
    }
}

#[test]
fn accepts_files_sharing_a_name_prefix() {
    let mut policy = base_policy();
    policy["secrets"][0]["file"] = json!("tls/server");
    assert!(Folder::new().load(&policy).is_ok());
}

#[test]
fn rejects_two_secrets_with_same_env() {
    let mut policy = base_policy();
    policy["secrets"][1]["env"] = json!("DB_PASSWORD");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[1].env", "already used by secrets[0]");
}

#[test]
fn rejects_file_with_parent_component() {
    let mut policy = base_policy();
    policy["secrets"][1]["file"] = json!("tls/../../etc/shadow");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[1].file", "..");
}

#[test]
fn rejects_absolute_file() {
    let mut policy = base_policy();
    policy["secrets"][1]["file"] = json!("/etc/shadow");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[1].file", "absolute");
}

#[test]
fn rejects_empty_file_and_file_with_nul() {
    for (file, fragment) in [("", "empty"), ("a\0b", "NUL")] {
        let mut policy = base_policy();
        policy["secrets"][1]["file"] = json!(file);
        let problems = Folder::new().problems(&policy);
        assert_single_problem(&problems, "secrets[1].file", fragment);
    }
}

#[test]
fn rejects_invalid_env_name() {
    for env in ["DB-PASSWORD", "1DB", "", "A=B"] {
        let mut policy = base_policy();
        policy["secrets"][0]["env"] = json!(env);
        let problems = Folder::new().problems(&policy);
        assert_single_problem(
            &problems,
            "secrets[0].env",
            "invalid environment variable name",
        );
    }
}

#[test]
fn reports_invalid_file_and_env_together() {
    let mut policy = base_policy();
    policy["secrets"][1]["file"] = json!("../tls.key");
    policy["secrets"][1]["env"] = json!("TLS-KEY");
    let problems = Folder::new().problems(&policy);
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["secrets[1].file", "secrets[1].env"]);
}

#[test]
fn rejects_secret_without_file_or_env() {
    let mut policy = base_policy();
    policy["secrets"][0].as_object_mut().unwrap().remove("env");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[0]", "no delivery target");
}

#[test]
fn accepts_secret_with_file_and_env() {
    let mut policy = base_policy();
    policy["secrets"][0]["file"] = json!("db-password");
    let policy = Folder::new().load(&policy).unwrap();
    assert_eq!(policy.secrets()[0].file().unwrap().as_str(), "db-password");
    assert_eq!(policy.secrets()[0].env(), Some("DB_PASSWORD"));
}

#[test]
fn rejects_both_ciphertext_and_ciphertext_file() {
    let mut policy = base_policy();
    policy["secrets"][0]["ciphertext"] = json!("AQIDBA==");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "secrets[0]",
        "both ciphertext and ciphertext_file",
    );
}

#[test]
fn rejects_secret_without_ciphertext() {
    let mut policy = base_policy();
    policy["secrets"][0]
        .as_object_mut()
        .unwrap()
        .remove("ciphertext_file");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[0]", "missing ciphertext");
}

#[test]
fn rejects_invalid_base64_ciphertext() {
    for text in ["AQID BA==", "AQIDBA", "AQ-_BA==", "%%%%"] {
        let mut policy = base_policy();
        policy["secrets"][1]["ciphertext"] = json!(text);
        let problems = Folder::new().problems(&policy);
        assert_single_problem(
            &problems,
            "secrets[1].ciphertext",
            "invalid standard base64",
        );
    }
}

#[test]
fn rejects_empty_ciphertext() {
    let mut policy = base_policy();
    policy["secrets"][1]["ciphertext"] = json!("");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[1].ciphertext", "0 bytes");
}

#[test]
fn reports_unreadable_ciphertext_file_at_its_path() {
    let mut policy = base_policy();
    policy["secrets"][0]["ciphertext_file"] = json!("secrets/missing.kms");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[0].ciphertext_file", "failed to read");
    assert!(
        problems[0].1.contains("secrets/missing.kms"),
        "{problems:?}"
    );
}

fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

#[test]
fn rejects_fifo_ciphertext_file_without_opening_it() {
    let folder = Folder::new();
    make_fifo(&folder.path().join("secrets/fifo.kms"));
    let mut policy = base_policy();
    policy["secrets"][0]["ciphertext_file"] = json!("secrets/fifo.kms");
    // A blocking open or read would hang here; the check runs on the metadata first.
    let problems = folder.problems(&policy);
    assert_single_problem(
        &problems,
        "secrets[0].ciphertext_file",
        "is a FIFO (named pipe), which can block a reader forever, not a regular file",
    );
}

#[test]
fn rejects_fifo_dev_root_pem() {
    let folder = Folder::new();
    make_fifo(&folder.path().join("sim/fifo.pem"));
    let mut policy = base_policy();
    policy["trust"]["roots"][1]["dev_root_pem"] = json!("sim/fifo.pem");
    let problems = folder.problems(&policy);
    assert_single_problem(&problems, "trust.roots[1].dev_root_pem", "is a FIFO");
}

#[test]
fn rejects_directory_and_device_as_ciphertext_file() {
    for (file, kind) in [
        ("secrets", "is a directory"),
        ("/dev/zero", "is a character device"),
    ] {
        let mut policy = base_policy();
        policy["secrets"][0]["ciphertext_file"] = json!(file);
        let problems = Folder::new().problems(&policy);
        assert_single_problem(&problems, "secrets[0].ciphertext_file", kind);
    }
}

#[test]
fn load_rejects_fifo_policy_file() {
    let folder = Folder::new();
    let path = folder.path().join("policy.json");
    make_fifo(&path);
    let error = ReleasePolicy::load(&path).unwrap_err();
    assert!(error.to_string().contains("is a FIFO"), "{error}");
}

#[test]
fn rejects_empty_ciphertext_file() {
    let folder = Folder::new();
    std::fs::write(folder.path().join("secrets/db.kms"), b"").unwrap();
    let problems = folder.problems(&base_policy());
    assert_single_problem(&problems, "secrets[0].ciphertext_file", "0 bytes");
}

#[test]
fn rejects_ciphertext_file_larger_than_kms_accepts() {
    let folder = Folder::new();
    std::fs::write(folder.path().join("secrets/db.kms"), vec![7u8; 6145]).unwrap();
    let problems = folder.problems(&base_policy());
    assert_single_problem(
        &problems,
        "secrets[0].ciphertext_file",
        "more than 6144 bytes",
    );
}

#[test]
fn accepts_ciphertext_of_kms_maximum_size() {
    let folder = Folder::new();
    std::fs::write(folder.path().join("secrets/db.kms"), vec![7u8; 6144]).unwrap();
    let policy = folder.load(&base_policy()).unwrap();
    assert_eq!(policy.secrets()[0].ciphertext().len(), 6144);
}

#[test]
fn rejects_misspelled_encryption_algorithm() {
    let mut policy = base_policy();
    policy["secrets"][1]["encryption_algorithm"] = json!("RSAES_OAEP_SHA256");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "secrets[1].encryption_algorithm",
        "unknown encryption algorithm \"RSAES_OAEP_SHA256\"; expected one of SYMMETRIC_DEFAULT, \
         RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE",
    );
}

#[test]
fn accepts_each_kms_encryption_algorithm() {
    for algorithm in EncryptionAlgorithm::ALL {
        let mut policy = base_policy();
        policy["secrets"][1]["encryption_algorithm"] = json!(algorithm.as_str());
        let policy = Folder::new().load(&policy).unwrap();
        assert_eq!(policy.secrets()[1].encryption_algorithm(), Some(algorithm));
    }
}

#[test]
fn rejects_non_string_encryption_context_value() {
    let mut policy = base_policy();
    policy["secrets"][0]["encryption_context"]["tenant"] = json!(42);
    let problems = Folder::new().problems(&policy);
    assert_single_problem(
        &problems,
        "secrets[0].encryption_context.tenant",
        "expected a string, found a number",
    );
}

#[test]
fn rejects_empty_secrets() {
    let mut policy = minimal_policy();
    policy["secrets"] = json!([]);
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets", "no secrets");
}

#[test]
fn rejects_secret_name_with_control_character() {
    let mut policy = base_policy();
    policy["secrets"][0]["name"] = json!("DB\nPASSWORD");
    let problems = Folder::new().problems(&policy);
    assert_single_problem(&problems, "secrets[0].name", "invalid secret name");
}

// ---- Reporting ----

#[test]
fn lists_every_problem_in_one_error() {
    let mut policy = base_policy();
    policy["keys"]["app"]["allow"][0]["pcrs"]["8"] = json!("0x88");
    policy["keys"]["app"]["max_age_seconds"] = json!(0);
    policy["secrets"][0]["key"] = json!("missing");
    policy["secrets"][1]["file"] = json!("../tls.key");
    policy["secrets"][1]["encryption_algorithm"] = json!("RSA");

    let error = Folder::new().load(&policy).unwrap_err();

    let paths: Vec<&str> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "keys.app.max_age_seconds",
            "keys.app.allow[0].pcrs.8",
            "secrets[0].key",
            "secrets[1].encryption_algorithm",
            "secrets[1].file",
        ]
    );
    let display = error.to_string();
    let lines: Vec<&str> = display.lines().collect();
    assert_eq!(lines.len(), 6, "{display}");
    assert_eq!(lines[0], "invalid release policy (5 problems):");
    assert!(
        lines[2].starts_with("  keys.app.allow[0].pcrs.8: "),
        "{display}"
    );
}

#[test]
fn display_names_policy_file() {
    let folder = Folder::new();
    let policy_path = folder.path().join("policy.json");
    std::fs::write(&policy_path, "{}").unwrap();
    let error = ReleasePolicy::load(&policy_path).unwrap_err();
    let first_line = error.to_string().lines().next().unwrap().to_owned();
    assert_eq!(
        first_line,
        format!(
            "invalid release policy {} (2 problems):",
            policy_path.display()
        )
    );
}
