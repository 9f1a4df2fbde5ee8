//! `enclave-broker verify` end to end: the real binary on the real documents, simulator
//! documents and hand-written policies. Every run gives an explicit verification time
//! (`--at document` or an RFC 3339 time), so no result depends on the wall clock.

mod attestation_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use attestation_common::{expected_documents, fixture_path, nitro};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use enclave_broker::attestation::sim::SimulatedEnclave;
use enclave_broker::attestation::verify::inspect;
use enclave_broker::attestation::x509::{ParsedCertificate, format_time_ms};
use serde_json::{Value, json};

const ENCLAVE_DOC: &str = "eternis_2024-07-31_prod.cbor";
const DEBUG_DOC: &str = "anjuna_2024-01-24_debug_pk-ud-nonce.cbor";
const NITROTPM_DOC: &str = "vaportpm_2026-02-03_nitrotpm_indefinite-map.cbor";

/// 2025-06-01T12:00:00Z, the time of simulator documents.
const SIM_TIME_MS: u64 = 1_748_779_200_000;
const SIM_TIME: &str = "2025-06-01T12:00:00Z";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {}", self.stdout))
    }

    fn rule(&self) -> Value {
        self.json()["error"]["rule"].clone()
    }
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_enclave-broker"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start enclave-broker");
    let mut input = child.stdin.take().expect("stdin pipe");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let output = child.wait_with_output().expect("wait for enclave-broker");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, b"")
}

fn doc_path(name: &str) -> String {
    fixture_path(&format!("nitro/{name}")).display().to_string()
}

fn verify_json(name: &str, extra: &[&str]) -> Run {
    let path = doc_path(name);
    let mut args = vec!["verify", path.as_str(), "--json"];
    args.extend_from_slice(extra);
    run(&args)
}

fn pcr_hex(name: &str, index: u64) -> String {
    let document = inspect(&nitro(name)).unwrap();
    document
        .pcrs()
        .iter()
        .find(|(key, _)| u64::from(key.get()) == index)
        .map(|(_, value)| value.to_hex())
        .unwrap()
}

fn timestamp_ms(name: &str) -> u64 {
    inspect(&nitro(name)).unwrap().timestamp_ms()
}

fn write_file(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// Writes a release policy with one key rule `app` allowing `pcrs`.
fn write_policy(dir: &Path, pcrs: &BTreeMap<String, String>, extra_rule: Value) -> String {
    let mut rule = json!({
        "key_id": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "allow": [ { "pcrs": pcrs } ],
    });
    if let (Some(rule), Some(extra)) = (rule.as_object_mut(), extra_rule.as_object()) {
        rule.extend(extra.clone());
    }
    let policy = json!({
        "keys": { "app": rule },
        "secrets": [ { "name": "s", "key": "app", "ciphertext": "AQIDBA==", "env": "S" } ],
    });
    write_file(dir, "policy.json", policy.to_string().as_bytes())
}

#[test]
fn real_documents_match_expected_json() {
    for (name, expected) in expected_documents() {
        let run = verify_json(&name, &["--at", "document"]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let report = run.json();

        assert_eq!(report["valid"], true, "{name}");
        assert_eq!(report["error"], Value::Null, "{name}");
        assert_eq!(report["kind"], expected["kind"], "{name}");
        assert_eq!(report["module_id"], expected["module_id"], "{name}");
        assert_eq!(report["timestamp_ms"], expected["timestamp_ms"], "{name}");
        assert_eq!(report["digest"], "SHA384", "{name}");
        assert_eq!(report["pcrs"], expected["pcrs"], "{name}");
        assert_eq!(report["public_key"], expected["public_key_hex"], "{name}");
        assert_eq!(report["user_data"], expected["user_data_hex"], "{name}");
        assert_eq!(report["nonce"], expected["nonce_hex"], "{name}");
        assert_eq!(report["input_encoding"], "cbor", "{name}");
        assert_eq!(
            report["debug_mode"],
            name.contains("_debug"),
            "{name}: file names mark debug-mode documents"
        );

        let timestamp = expected["timestamp_ms"].as_u64().unwrap();
        assert_eq!(report["checked_at"], format_time_ms(timestamp), "{name}");

        let certificates = report["certificates"].as_array().unwrap();
        assert_eq!(certificates.len(), 5, "{name}");
        assert_eq!(
            certificates[0]["subject"], "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US",
            "{name}"
        );
        let leaf = ParsedCertificate::parse(inspect(&nitro(&name)).unwrap().certificate())
            .unwrap()
            .summary();
        assert_eq!(certificates[4]["subject"], leaf.subject, "{name}");
        assert_eq!(
            certificates[4]["not_after"],
            format_time_ms(leaf.not_after_ms),
            "{name}"
        );
    }
}

#[test]
fn at_keywords_ignore_letter_case() {
    let lower = verify_json(ENCLAVE_DOC, &["--at", "document"]).json();

    for keyword in ["DOCUMENT", "Document"] {
        let run = verify_json(ENCLAVE_DOC, &["--at", keyword]);

        assert_eq!(run.code, 0, "--at {keyword}: {}", run.stderr);
        assert_eq!(
            run.json()["checked_at"],
            lower["checked_at"],
            "--at {keyword}"
        );
    }
    let run = verify_json(ENCLAVE_DOC, &["--at", "NOW"]);
    assert_ne!(run.code, 2, "--at NOW is not a usage error: {}", run.stderr);
}

#[test]
fn json_keys_follow_the_contract() {
    let report = verify_json(ENCLAVE_DOC, &["--at", "document"]).json();
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "valid",
        "kind",
        "module_id",
        "timestamp_ms",
        "digest",
        "debug_mode",
        "pcrs",
        "public_key",
        "user_data",
        "nonce",
        "certificates",
        "checked_at",
        "input_encoding",
        "error",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn right_pcr_accepted() {
    let pcr0 = format!("0={}", pcr_hex(ENCLAVE_DOC, 0));
    let pcr4 = format!("4={}", pcr_hex(ENCLAVE_DOC, 4));
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", "document", "--pcr", &pcr0, "--pcr", &pcr4],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["valid"], true);
}

#[test]
fn wrong_pcr_rejected_with_fields_filled() {
    let wrong = format!("0={}", "ab".repeat(48));
    let run = verify_json(ENCLAVE_DOC, &["--at", "document", "--pcr", &wrong]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["error"]["rule"], "pcr.mismatch");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("PCR0 mismatch: expected {}", "ab".repeat(48))),
        "{message}"
    );
    assert!(message.contains(&pcr_hex(ENCLAVE_DOC, 0)), "{message}");
    assert_eq!(
        report["module_id"],
        "i-0809070ca8037095f-enc01910a70380dca7e"
    );
    assert_eq!(report["certificates"].as_array().unwrap().len(), 5);
    assert!(
        run.stderr
            .contains("attestation document rejected (pcr.mismatch)"),
        "{}",
        run.stderr
    );
}

#[test]
fn human_output_lists_fields_and_verdict() {
    let path = doc_path(DEBUG_DOC);
    let run = run(&["verify", &path, "--at", "document"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"VALID"));
    for expected in [
        "module_id       i-0e4fe5de7ee5abe78-enc018d3cadd7d66279",
        "timestamp       2024-01-24T18:14:25.635Z (1706120065635 ms)",
        "kind            enclave",
        "debug_mode      true",
        "digest          SHA384",
        "  zero          0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        "user_data       13 bytes 48656c6c6f20576f726c64210a",
        "nonce           6 bytes 4e6f6e63650a",
        "  cabundle[0]   CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US",
        "                valid 2019-10-28T13:28:05Z to 2049-10-28T14:28:05Z",
        "trust_root      aws-nitro-enclaves-g1",
        "checked_at      2024-01-24T18:14:25.635Z",
        "input_encoding  cbor",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("\n  PCR3          a466a207"),
        "{}",
        run.stdout
    );
}

#[test]
fn human_output_ends_with_failed_rule() {
    let path = doc_path(ENCLAVE_DOC);
    let wrong = format!("8={}", "cd".repeat(48));
    let run = run(&["verify", &path, "--at", "document", "--pcr", &wrong]);
    assert_eq!(run.code, 1);
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("INVALID (pcr.mismatch): PCR8 mismatch: expected cdcd"),
        "{last}"
    );
    assert!(
        run.stdout.contains("trust_root      aws-nitro-enclaves-g1"),
        "{}",
        run.stdout
    );
}

#[test]
fn detects_base64_hex_and_stdin() {
    let bytes = nitro(ENCLAVE_DOC);
    let dir = tempfile::tempdir().unwrap();
    let wrapped: String = STANDARD
        .encode(&bytes)
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
        .collect();
    let cases = [
        ("standard.b64", wrapped.into_bytes(), "base64"),
        (
            "url.b64",
            URL_SAFE_NO_PAD.encode(&bytes).into_bytes(),
            "base64",
        ),
        (
            "doc.hex",
            format!("{}\n", hex::encode(&bytes)).into_bytes(),
            "hex",
        ),
        ("doc.cbor", bytes.clone(), "cbor"),
    ];
    for (name, contents, encoding) in cases {
        let path = write_file(dir.path(), name, &contents);
        let run = run(&["verify", &path, "--at", "document", "--json"]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.json()["input_encoding"], encoding, "{name}");

        let from_stdin = run_with_stdin(&["verify", "-", "--at", "document", "--json"], &contents);
        assert_eq!(from_stdin.code, 0, "{name} on stdin: {}", from_stdin.stderr);
        assert_eq!(
            from_stdin.json()["input_encoding"],
            encoding,
            "{name} on stdin"
        );
    }
}

#[test]
fn text_in_no_encoding_is_input_error() {
    let run = run_with_stdin(
        &["verify", "-", "--at", "document", "--json"],
        b"{\"doc\": 1}\n",
    );
    assert_eq!(run.code, 2);
    let report = run.json();
    assert_eq!(report["error"]["rule"], "input.encoding");
    assert_eq!(report["input_encoding"], Value::Null);
    assert_eq!(report["module_id"], Value::Null);
    assert!(
        run.stderr
            .contains("REPORT - (stdin): input is text but neither hex nor base64"),
        "{}",
        run.stderr
    );
}

#[test]
fn unreadable_report_is_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.cbor").display().to_string();
    let run = run(&["verify", &missing, "--at", "document", "--json"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.rule(), "input.unreadable");
    assert!(
        run.stderr
            .contains(&format!("REPORT {missing}: failed to read")),
        "{}",
        run.stderr
    );

    let human = self::run(&["verify", &missing]);
    assert_eq!(human.code, 2);
    assert_eq!(human.stdout, "");
}

#[test]
fn rejects_fifo_report_and_trust_root_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.display().to_string();

    // No process writes to the FIFO, so a read would block until the test harness times out.
    let report = run(&["verify", &fifo, "--at", "document", "--json"]);
    assert_eq!(report.code, 2, "{}", report.stderr);
    assert_eq!(report.rule(), "input.unreadable");
    assert!(report.stderr.contains("FIFO"), "{}", report.stderr);

    let root = run(&["verify", &doc_path(ENCLAVE_DOC), "--trust-root", &fifo]);
    assert_eq!(root.code, 2, "{}", root.stderr);
    assert!(root.stderr.contains("--trust-root"), "{}", root.stderr);
}

#[test]
fn expired_at_given_time() {
    let after_expiry = format_time_ms(timestamp_ms(ENCLAVE_DOC) + 4 * 3600 * 1000);
    let run = verify_json(ENCLAVE_DOC, &["--at", &after_expiry]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["error"]["rule"], "chain.validity");
    assert_eq!(report["checked_at"], after_expiry);
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("leaf certificate (CN="), "{message}");
    assert!(
        message.contains("expired at 2024-07-31T23:18:27Z (notAfter)"),
        "{message}"
    );
}

#[test]
fn nitrotpm_valid_unless_enclave_expected() {
    let run = verify_json(NITROTPM_DOC, &["--at", "document"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["kind"], "nitrotpm");

    let pcr0 = format!("0={}", pcr_hex(NITROTPM_DOC, 0));
    let run = verify_json(NITROTPM_DOC, &["--at", "document", "--pcr", &pcr0]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "kind.not_enclave");
    assert_eq!(run.json()["kind"], "nitrotpm");

    let dir = tempfile::tempdir().unwrap();
    let pcrs = BTreeMap::from([("0".to_owned(), pcr_hex(NITROTPM_DOC, 0))]);
    let policy = write_policy(dir.path(), &pcrs, json!({}));
    let run = verify_json(
        NITROTPM_DOC,
        &["--at", "document", "--policy", &policy, "--key", "app"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "kind.not_enclave");
}

#[test]
fn policy_rule_allows_and_denies() {
    let dir = tempfile::tempdir().unwrap();
    let right = BTreeMap::from([
        ("0".to_owned(), pcr_hex(ENCLAVE_DOC, 0)),
        ("2".to_owned(), pcr_hex(ENCLAVE_DOC, 2)),
    ]);
    let policy = write_policy(dir.path(), &right, json!({}));
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", "document", "--policy", &policy, "--key", "app"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let wrong = BTreeMap::from([("2".to_owned(), "ef".repeat(48))]);
    let policy = write_policy(dir.path(), &wrong, json!({}));
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", "document", "--policy", &policy, "--key", "app"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "policy.denied");
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("key rule app: PCR2 mismatch: expected efef"),
        "{message}"
    );
}

#[test]
fn policy_denies_debug_mode_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // Every allow entry must pin an image PCR, and an all-zero PCR0 loads only with
    // allow_debug, so the rule without allow_debug pins some other PCR0: the debug-mode
    // check comes before any PCR comparison.
    let pcrs = BTreeMap::from([
        ("0".to_owned(), "ab".repeat(48)),
        ("3".to_owned(), pcr_hex(DEBUG_DOC, 3)),
    ]);
    let policy = write_policy(dir.path(), &pcrs, json!({}));
    let run = verify_json(
        DEBUG_DOC,
        &["--at", "document", "--policy", &policy, "--key", "app"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "policy.debug_mode");

    let pcrs = BTreeMap::from([
        ("0".to_owned(), pcr_hex(DEBUG_DOC, 0)),
        ("3".to_owned(), pcr_hex(DEBUG_DOC, 3)),
    ]);
    let policy = write_policy(dir.path(), &pcrs, json!({ "allow_debug": true }));
    let run = verify_json(
        DEBUG_DOC,
        &["--at", "document", "--policy", &policy, "--key", "app"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn policy_max_age_applies() {
    let dir = tempfile::tempdir().unwrap();
    let pcrs = BTreeMap::from([("0".to_owned(), pcr_hex(ENCLAVE_DOC, 0))]);
    let policy = write_policy(dir.path(), &pcrs, json!({ "max_age_seconds": 300 }));
    let ten_minutes_later = format_time_ms(timestamp_ms(ENCLAVE_DOC) + 600_000);
    let run = verify_json(
        ENCLAVE_DOC,
        &[
            "--at",
            &ten_minutes_later,
            "--policy",
            &policy,
            "--key",
            "app",
        ],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "age.too_old");

    // The stricter of --max-age and the rule's max_age_seconds applies.
    let policy = write_policy(dir.path(), &pcrs, json!({ "max_age_seconds": 3600 }));
    let args = [
        "--at",
        &ten_minutes_later,
        "--policy",
        &policy,
        "--key",
        "app",
    ];
    assert_eq!(verify_json(ENCLAVE_DOC, &args).code, 0);
    let run = verify_json(ENCLAVE_DOC, &[&args[..], &["--max-age", "5m"]].concat());
    assert_eq!(run.rule(), "age.too_old");
}

#[test]
fn policy_errors_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pcrs = BTreeMap::from([("0".to_owned(), pcr_hex(ENCLAVE_DOC, 0))]);
    let policy = write_policy(dir.path(), &pcrs, json!({}));
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", "document", "--policy", &policy, "--key", "other"],
    );
    assert_eq!(run.code, 2);
    assert_eq!(run.rule(), "usage.flag");
    assert!(run.stderr.contains("--key \"other\": "), "{}", run.stderr);
    assert!(run.stderr.contains("it defines app"), "{}", run.stderr);

    let invalid = write_file(dir.path(), "invalid.json", b"{\"keys\": {}}");
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", "document", "--policy", &invalid, "--key", "app"],
    );
    assert_eq!(run.code, 2);
    assert_eq!(run.rule(), "policy.invalid");

    let run = verify_json(ENCLAVE_DOC, &["--at", "document", "--policy", &policy]);
    assert_eq!(run.code, 2, "clap requires --key with --policy");
    assert!(run.stderr.contains("--key"), "{}", run.stderr);
}

#[test]
fn bad_flags_exit_2_naming_flag() {
    let cases: [(&[&str], &str); 8] = [
        (&["--skew", "5x"], "--skew \"5x\": unknown unit"),
        (&["--max-age", "300"], "--max-age \"300\": missing unit"),
        (&["--pcr", "0=zz"], "--pcr \"0=zz\""),
        (&["--pcr", "32=00"], "--pcr \"32=00\""),
        (&["--nonce", "xyz"], "--nonce \"xyz\": invalid hex"),
        (&["--at", "yesterday"], "--at \"yesterday\": "),
        (
            &["--public-key", "/nonexistent/key.der"],
            "--public-key /nonexistent/key.der: failed to read",
        ),
        (
            &["--trust-root", "/nonexistent/root.pem"],
            "--trust-root /nonexistent/root.pem: failed to read",
        ),
    ];
    for (flags, expected) in cases {
        let run = verify_json(ENCLAVE_DOC, flags);
        assert_eq!(run.code, 2, "{flags:?}: {}", run.stderr);
        assert_eq!(run.rule(), "usage.flag", "{flags:?}");
        assert!(run.stderr.contains(expected), "{flags:?}: {}", run.stderr);
        assert_eq!(run.json()["valid"], false);
    }

    let run = verify_json(ENCLAVE_DOC, &["--no-such-flag"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--no-such-flag"), "{}", run.stderr);
}

#[test]
fn nonce_and_public_key_compared() {
    let dir = tempfile::tempdir().unwrap();
    let document = inspect(&nitro(DEBUG_DOC)).unwrap();
    let right_key = write_file(dir.path(), "right.der", document.public_key().unwrap());
    let wrong_key = write_file(dir.path(), "wrong.der", b"another key");

    let run = verify_json(
        DEBUG_DOC,
        &[
            "--at",
            "document",
            "--nonce",
            "4e6f6e63650a",
            "--public-key",
            &right_key,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = verify_json(DEBUG_DOC, &["--at", "document", "--nonce", "4e6f6e63650b"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "nonce.mismatch");
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(
        message,
        "nonce mismatch: expected 4e6f6e63650b (6 bytes), got 4e6f6e63650a (6 bytes)"
    );

    let run = verify_json(DEBUG_DOC, &["--at", "document", "--public-key", &wrong_key]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "public_key.mismatch");

    // A document without a nonce never matches an expected one.
    let run = verify_json(
        "anjuna_2021-03-17_prod_no-optionals.cbor",
        &["--at", "document", "--nonce", "00"],
    );
    assert_eq!(run.rule(), "nonce.mismatch");
}

#[test]
fn max_age_compares_document_time() {
    let ten_minutes_later = format_time_ms(timestamp_ms(ENCLAVE_DOC) + 600_000);
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", &ten_minutes_later, "--max-age", "5m"],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "age.too_old");

    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", &ten_minutes_later, "--max-age", "15m"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    // 9 minutes plus the 60 s default skew reaches back exactly 10 minutes.
    let run = verify_json(
        ENCLAVE_DOC,
        &["--at", &ten_minutes_later, "--max-age", "540s"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = verify_json(
        ENCLAVE_DOC,
        &[
            "--at",
            &ten_minutes_later,
            "--max-age",
            "540s",
            "--skew",
            "0s",
        ],
    );
    assert_eq!(run.rule(), "age.too_old");
}

#[test]
fn simulator_documents_need_their_root() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    let init = run(&["sim", "init", "--dir", &sim_dir.display().to_string()]);
    assert_eq!(init.code, 0, "{}", init.stderr);

    let sim = SimulatedEnclave::load(&sim_dir).unwrap();
    let bytes = sim.attest(None, Some(b"hello"), None, SIM_TIME_MS).unwrap();
    let report = write_file(dir.path(), "sim.cbor", &bytes);
    let root = sim_dir.join("root.pem").display().to_string();

    let run = run(&[
        "verify",
        &report,
        "--at",
        SIM_TIME,
        "--trust-root",
        &root,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["user_data"], hex::encode(b"hello"));
    assert_eq!(json["module_id"], "i-sim0000000000000-enc0000000000000000");

    let human = self::run(&["verify", &report, "--at", SIM_TIME, "--trust-root", &root]);
    assert!(
        human.stdout.contains(&format!("trust_root      {root}\n")),
        "{}",
        human.stdout
    );

    let run = self::run(&["verify", &report, "--at", SIM_TIME, "--json"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.rule(), "chain.root");
    assert_eq!(run.json()["user_data"], hex::encode(b"hello"));
}

#[test]
fn policy_dev_root_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    let sim = SimulatedEnclave::init(&sim_dir, &BTreeMap::new()).unwrap();
    let bytes = sim.attest(None, None, None, SIM_TIME_MS).unwrap();
    let report = write_file(dir.path(), "sim.cbor", &bytes);

    let pcr0 = sim.pcrs().values().next().unwrap().to_hex();
    let policy = json!({
        "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
        "keys": { "app": {
            "key_id": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "allow": [ { "pcrs": { "0": pcr0 } } ],
        } },
        "secrets": [ { "name": "s", "key": "app", "ciphertext": "AQIDBA==", "env": "S" } ],
    });
    let policy = write_file(dir.path(), "policy.json", policy.to_string().as_bytes());
    let run = run(&[
        "verify", &report, "--at", SIM_TIME, "--policy", &policy, "--key", "app",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = format!(
        "trust_root      development root {}\n",
        sim_dir.join("root.pem").display()
    );
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
}

#[test]
fn negative_documents_report_what_they_claim() {
    let run = verify_json(
        "negative/eternis_2024-07-23_bad-cose-signature.cbor",
        &["--at", "document"],
    );
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["error"]["rule"], "cose.signature");
    assert_eq!(report["kind"], "enclave");
    assert!(report["module_id"].is_string());
    assert_eq!(report["certificates"].as_array().unwrap().len(), 5);

    let run = verify_json(
        "negative/base_2026-01-03_corrupt-missing-3-bytes.cbor",
        &["--at", "document"],
    );
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["error"]["rule"], "cose.cbor");
    assert_eq!(report["input_encoding"], "cbor");
    assert_eq!(report["module_id"], Value::Null);
    assert_eq!(report["pcrs"], Value::Null);
    assert_eq!(report["certificates"], Value::Null);
    assert_eq!(report["checked_at"], Value::Null);
}

#[test]
fn skew_above_one_hour_exits_2() {
    // The leaf certificate of every real document has expired long ago; a huge skew would
    // make the chain valid again at the current time.
    for skew in ["3601s", "100000000h"] {
        let run = verify_json(ENCLAVE_DOC, &["--at", "now", "--skew", skew]);

        assert_eq!(run.code, 2, "--skew {skew}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("--skew \"{skew}\": the limit is 3600s (1h)")),
            "{}",
            run.stderr
        );
    }

    let run = verify_json(ENCLAVE_DOC, &["--at", "document", "--skew", "1h"]);
    assert_eq!(
        run.code, 0,
        "a skew of exactly 1h is accepted: {}",
        run.stderr
    );
}

#[test]
fn base64_with_byte_order_mark_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = "\u{feff}".as_bytes().to_vec();
    contents.extend_from_slice(STANDARD.encode(nitro(ENCLAVE_DOC)).as_bytes());
    contents.extend_from_slice(b"\r\n");
    let report = write_file(dir.path(), "bom.b64", &contents);

    let run = run(&["verify", &report, "--at", "document", "--json"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["input_encoding"], "base64");
}
