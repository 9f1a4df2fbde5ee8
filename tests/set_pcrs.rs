//! `policy set-pcrs`: measurements from a sample `nitro-cli build-enclave` output go into one
//! key rule, the rest of the file stays byte for byte, and bad input changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use enclave_broker::attestation::pcr::PcrIndex;
use enclave_broker::policy::load_key_rules;
use enclave_broker::policy::set_pcrs::{BuildMeasurements, BuildOutputError, set_pcrs_in_text};

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn broker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enclave-broker"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

/// Copies a policy into a fresh folder and returns the folder and the copy's path.
fn copy_policy(relative: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::copy(fixture(relative), &path).unwrap();
    (dir, path)
}

fn set_pcrs(policy: &Path, key: &str, build_output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "policy",
        "set-pcrs",
        policy.to_str().unwrap(),
        "--key",
        key,
        "--from-build-output",
        build_output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    broker(&args)
}

/// Splits `text` around the value of `"allow"` that follows `"<rule>": {`.
fn around_allow<'a>(text: &'a str, rule: &str) -> (&'a str, &'a str) {
    let rule_start = text.find(&format!("\"{rule}\": {{")).unwrap();
    let allow = rule_start + text[rule_start..].find("\"allow\": [").unwrap() + "\"allow\": ".len();
    // The allow arrays in these fixtures end at the first line that is only `]`.
    let close = allow + text[allow..].find("\n      ]").unwrap() + "\n      ]".len();
    (&text[..allow], &text[close..])
}

fn signed() -> BuildMeasurements {
    let text = std::fs::read_to_string(fixture(
        "tests/fixtures/key-policies/build-output/signed.json",
    ))
    .unwrap();
    BuildMeasurements::parse(&text).unwrap()
}

#[test]
fn writes_signed_build_into_example() {
    let (_dir, path) = copy_policy("policies/example.json");
    let before = std::fs::read_to_string(&path).unwrap();
    let build = fixture("tests/fixtures/key-policies/build-output/signed.json");

    let output = set_pcrs(&path, "app", &build, &[]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("pinning PCR0, PCR1, PCR2, PCR8"),
        "{stderr}"
    );
    // The copy has no ciphertext files beside it; the edit neither caused nor hides that.
    assert!(stderr.contains("unrelated to this edit"), "{stderr}");

    let after = std::fs::read_to_string(&path).unwrap();
    let rules = load_key_rules(&path).unwrap();
    let pcrs = rules["app"].allow()[0].pcrs();
    assert_eq!(rules["app"].allow().len(), 1);
    assert_eq!(pcrs, signed().pcrs());

    let (before_prefix, before_suffix) = around_allow(&before, "app");
    let (after_prefix, after_suffix) = around_allow(&after, "app");
    assert_eq!(before_prefix, after_prefix);
    assert_eq!(before_suffix, after_suffix);
}

#[test]
fn rewritten_allow_keeps_indentation() {
    let before = std::fs::read_to_string(fixture("policies/example.json")).unwrap();
    let outcome = set_pcrs_in_text(&before, "app", &signed(), false).unwrap();
    let pcr0 = signed().pcrs()[&PcrIndex::new(0).unwrap()].to_hex();
    let expected_line = format!("\n            \"0\": \"{pcr0}\",\n");
    assert!(outcome.text.contains(&expected_line), "{}", outcome.text);
    assert!(
        outcome
            .text
            .contains("\n      \"allow\": [\n        {\n          \"pcrs\": {\n")
    );
    assert_eq!(before.lines().count(), outcome.text.lines().count());
}

#[test]
fn unsigned_build_unpins_pcr8() {
    let before = std::fs::read_to_string(fixture("policies/example.json")).unwrap();
    let text = std::fs::read_to_string(fixture(
        "tests/fixtures/key-policies/build-output/unsigned.json",
    ))
    .unwrap();
    let outcome = set_pcrs_in_text(
        &before,
        "app",
        &BuildMeasurements::parse(&text).unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(outcome.dropped, [PcrIndex::new(8).unwrap()]);
    assert!(!outcome.text.contains("\"8\":"));
}

#[test]
fn several_entries_need_replace_all() {
    let (_dir, path) = copy_policy("tests/fixtures/key-policies/release/multi-entry.json");
    let before = std::fs::read(&path).unwrap();
    let build = fixture("tests/fixtures/key-policies/build-output/signed.json");

    let refused = set_pcrs(&path, "app", &build, &[]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("has 2 allow entries; pass --replace-all"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let replaced = set_pcrs(&path, "app", &build, &["--replace-all"]);
    let stderr = String::from_utf8_lossy(&replaced.stderr);
    assert_eq!(replaced.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("replaced 2 allow entries"), "{stderr}");
    // PCR3 was pinned by only one of the two entries, so it is reported as dropped.
    assert!(stderr.contains("PCR3 is no longer pinned"), "{stderr}");
    let rules = load_key_rules(&path).unwrap();
    assert_eq!(rules["app"].allow().len(), 1);
    assert_eq!(rules["app"].allow()[0].pcrs(), signed().pcrs());
    // The other rule is untouched.
    let after = std::fs::read_to_string(&path).unwrap();
    let batch_start = after.find("\"batch\"").unwrap();
    let before_text = String::from_utf8(before).unwrap();
    assert_eq!(
        &after[batch_start..],
        &before_text[before_text.find("\"batch\"").unwrap()..]
    );
}

#[test]
fn keeps_pcrs_that_builds_do_not_measure() {
    let pcr4 = "4a".repeat(48);
    let text = format!(
        "{{\"keys\": {{\"app\": {{\"key_id\": \"alias/app\", \"allow\": [{{\"pcrs\": {{\"0\": \"{}\", \"4\": \"{pcr4}\"}}}}]}}}}, \"secrets\": []}}",
        "0a".repeat(48)
    );
    let outcome = set_pcrs_in_text(&text, "app", &signed(), false).unwrap();
    assert_eq!(outcome.kept, [PcrIndex::new(4).unwrap()]);
    // A one-line allow value stays on one line.
    assert_eq!(outcome.text.lines().count(), 1);
    assert!(outcome.text.contains(&format!("\"4\": \"{pcr4}\"")));
    assert!(outcome.text.ends_with("}}]}}, \"secrets\": []}"));
}

#[test]
fn rejects_wrong_length_pcr() {
    let (dir, path) = copy_policy("policies/example.json");
    let before = std::fs::read(&path).unwrap();
    let build = dir.path().join("build.json");
    let text = std::fs::read_to_string(fixture(
        "tests/fixtures/key-policies/build-output/signed.json",
    ))
    .unwrap();
    let pcr1 = signed().pcrs()[&PcrIndex::new(1).unwrap()].to_hex();
    std::fs::write(&build, text.replace(&pcr1, &pcr1[..64])).unwrap();

    let output = set_pcrs(&path, "app", &build, &[]);

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid PCR1"), "{stderr}");
    assert!(stderr.contains("has 64 characters"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn rejects_repeated_pcr0_in_build_output() {
    let (dir, path) = copy_policy("policies/example.json");
    let before = std::fs::read(&path).unwrap();
    let build = dir.path().join("build.json");
    let text = std::fs::read_to_string(fixture(
        "tests/fixtures/key-policies/build-output/signed.json",
    ))
    .unwrap();
    // A second PCR0 after the real one: serde_json alone would keep this value.
    let repeated = text.replacen(
        "\"PCR1\"",
        &format!("\"PCR0\": \"{}\",\n    \"PCR1\"", "ab".repeat(48)),
        1,
    );
    assert_ne!(repeated, text);
    std::fs::write(&build, repeated).unwrap();

    let output = set_pcrs(&path, "app", &build, &[]);

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--from-build-output"), "{stderr}");
    assert!(
        stderr.contains("duplicate key at Measurements.PCR0"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn rejects_build_output_without_pcr0() {
    let text = r#"{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR1": "PLACEHOLDER1", "PCR2": "PLACEHOLDER2"}}"#
        .replace("PLACEHOLDER1", &"11".repeat(48))
        .replace("PLACEHOLDER2", &"22".repeat(48));
    assert_eq!(
        BuildMeasurements::parse(&text),
        Err(BuildOutputError::MissingPcr("PCR0".to_owned()))
    );
}

#[test]
fn rejects_all_zero_pcr0() {
    let text = format!(
        r#"{{"Measurements": {{"PCR0": "{}", "PCR1": "{}", "PCR2": "{}"}}}}"#,
        "0".repeat(96),
        "11".repeat(48),
        "22".repeat(48)
    );
    assert_eq!(
        BuildMeasurements::parse(&text),
        Err(BuildOutputError::DebugModeZero(0))
    );
}

#[test]
fn rejects_unknown_key_rule() {
    let (_dir, path) = copy_policy("policies/example.json");
    let before = std::fs::read(&path).unwrap();
    let build = fixture("tests/fixtures/key-policies/build-output/signed.json");

    let output = set_pcrs(&path, "billing", &build, &[]);

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("key rule \"billing\" not found; the policy defines app"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn reads_build_output_from_stdin_form() {
    // `-` is accepted; here the process gets no stdin, so the read yields empty input.
    let (_dir, path) = copy_policy("policies/example.json");
    let output = set_pcrs(&path, "app", Path::new("-"), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--from-build-output -: build output is not JSON"),
        "{stderr}"
    );
}

#[test]
fn leaves_no_temporary_file() {
    let (dir, path) = copy_policy("policies/example.json");
    let build = fixture("tests/fixtures/key-policies/build-output/signed.json");
    assert_eq!(set_pcrs(&path, "app", &build, &[]).status.code(), Some(0));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["policy.json"]);
}
