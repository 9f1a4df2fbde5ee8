//! `policy check`, `fetch` and `policy kms-key-policy` on release policies the loader must
//! reject (entries that pin no image, FIFOs where files belong), the key_id warning of
//! `policy check`, and the principal that must not administer its own key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const PRINCIPAL: &str = "arn:aws:iam::111122223333:role/enclave-parent";

/// Maximum time a command may run before the test treats it as hung.
const HANG_LIMIT: Duration = Duration::from_secs(20);

fn pcr(byte: &str) -> String {
    byte.repeat(48)
}

/// Builds a broker command that cannot reach AWS: credentials are fake, instance metadata
/// is off, and any KMS endpoint is a closed loopback port.
fn broker_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_enclave-broker"));
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child`, killing it and failing the test when it runs past [`HANG_LIMIT`].
fn wait_bounded(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the broker was still running after {HANG_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn broker(args: &[&str]) -> Output {
    let child = broker_command(args).stdin(Stdio::null()).spawn().unwrap();
    wait_bounded(child)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Builds a valid policy with one key rule `app` and one inline secret.
fn policy_with_allow(allow: Value) -> Value {
    json!({
        "keys": { "app": { "key_id": KEY_ARN, "allow": allow } },
        "secrets": [ { "name": "db", "key": "app", "ciphertext": "AQIDBA==", "env": "DB" } ]
    })
}

fn write_policy(dir: &TempDir, policy: &Value) -> PathBuf {
    let path = dir.path().join("policy.json");
    std::fs::write(&path, serde_json::to_string_pretty(policy).unwrap()).unwrap();
    path
}

fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

#[test]
fn rejects_entry_without_image_pcr_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_policy(
        &dir,
        &policy_with_allow(json!([ { "pcrs": { "5": pcr("00") } } ])),
    );
    let policy = path.to_str().unwrap();
    let sim = dir.path().join("sim");
    let sim_arg = format!("sim={}", sim.display());

    let runs = [
        ("policy check", broker(&["policy", "check", policy])),
        (
            "fetch",
            broker(&[
                "fetch",
                "--policy",
                policy,
                "--attester",
                &sim_arg,
                "--format",
                "json",
            ]),
        ),
        (
            "kms-key-policy",
            broker(&[
                "policy",
                "kms-key-policy",
                policy,
                "--key",
                "app",
                "--principal",
                PRINCIPAL,
            ]),
        ),
    ];
    for (name, output) in runs {
        assert_eq!(output.status.code(), Some(2), "{name}: {}", stderr(&output));
        assert!(output.stdout.is_empty(), "{name}");
        let stderr = stderr(&output);
        assert!(
            stderr.contains("keys.app.allow[0]: pins no enclave image (it lists only PCR5)"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn rejects_fifo_ciphertext_file_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    make_fifo(&dir.path().join("fifo.kms"));
    let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
    policy["secrets"][0] =
        json!({ "name": "db", "key": "app", "ciphertext_file": "fifo.kms", "env": "DB" });
    let path = write_policy(&dir, &policy);

    let output = broker(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr(&output);
    assert!(
        stderr.contains("secrets[0].ciphertext_file: failed to read"),
        "{stderr}"
    );
    assert!(stderr.contains("is a FIFO (named pipe)"), "{stderr}");
}

#[test]
fn rejects_fifo_policy_file_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    make_fifo(&path);
    let output = broker(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr(&output);
    assert!(stderr.contains("is a FIFO (named pipe)"), "{stderr}");
    assert!(stderr.contains("process substitution"), "{stderr}");
}

#[test]
fn reads_policy_piped_through_dev_stdin() {
    let policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
    let mut child = broker_command(&["policy", "check", "/dev/stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(policy.to_string().as_bytes()).unwrap();
    drop(input);
    let output = wait_bounded(child);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("/dev/stdin: valid"),
        "{output:?}"
    );
}

#[test]
fn check_warns_about_non_arn_key_ids() {
    let dir = tempfile::tempdir().unwrap();
    for key_id in ["x", "1234", "alias/app"] {
        let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
        policy["keys"]["app"]["key_id"] = json!(key_id);
        let path = write_policy(&dir, &policy);

        let output = broker(&["policy", "check", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{key_id}");
        let stderr = stderr(&output);
        let expected = format!(
            "enclave-broker: warning: key rule app: key_id {key_id:?} names an alias or key \
             id, not a key ARN, so the key in KMS's answer cannot be checked"
        );
        assert!(stderr.contains(&expected), "{key_id}: {stderr}");
    }
}

#[test]
fn check_is_silent_for_key_arn() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_policy(
        &dir,
        &policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ])),
    );
    let output = broker(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "");
}

#[test]
fn rejects_principal_that_is_also_admin() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_policy(
        &dir,
        &policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ])),
    );
    for admin in [PRINCIPAL, "arn:aws:iam::111122223333:role/Enclave-Parent"] {
        let output = broker(&[
            "policy",
            "kms-key-policy",
            path.to_str().unwrap(),
            "--key",
            "app",
            "--principal",
            PRINCIPAL,
            "--admin",
            "arn:aws:iam::111122223333:role/key-admin",
            "--admin",
            admin,
        ]);
        assert_eq!(output.status.code(), Some(2), "{admin}");
        assert!(output.stdout.is_empty(), "{admin}");
        let stderr = stderr(&output);
        let expected = format!(
            "principal {PRINCIPAL} is also a key administrator (as {admin}); administrators \
             hold kms:PutKeyPolicy"
        );
        assert!(stderr.contains(&expected), "{stderr}");
    }
}

#[test]
fn check_warns_about_each_allow_debug_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("00") } } ]));
    policy["keys"]["app"]["allow_debug"] = json!(true);
    policy["keys"]["other"] = json!({
        "key_id": KEY_ARN, "allow": [ { "pcrs": { "0": pcr("aa") } } ], "allow_debug": false
    });
    let path = write_policy(&dir, &policy);

    let output = broker(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = stderr(&output);
    assert!(
        stderr.contains(
            "enclave-broker: warning: key rule app: allow_debug is true, so all-zero PCR0, \
             PCR1 and PCR2 values are accepted"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("every debug-mode enclave"), "{stderr}");
    assert!(!stderr.contains("key rule other"), "{stderr}");
}

#[test]
fn check_rejects_control_characters_in_file() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["tls\nkey", "tls/\u{1b}[31mkey"] {
        let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
        policy["secrets"][0]["file"] = json!(file);
        let path = write_policy(&dir, &policy);

        let output = broker(&["policy", "check", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{file:?}");
        let stderr = stderr(&output);
        assert!(stderr.contains("secrets[0].file"), "{file:?}: {stderr}");
        assert!(stderr.contains("control character"), "{file:?}: {stderr}");
    }
}

#[test]
fn check_rejects_control_characters_in_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
    policy["secrets"][0]["name"] = json!("db\npassword");
    let path = write_policy(&dir, &policy);

    let output = broker(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr(&output);
    assert!(stderr.contains("secrets[0].name"), "{stderr}");
}

#[test]
fn check_rejects_path_and_loader_env_names() {
    let dir = tempfile::tempdir().unwrap();
    for env in ["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH"] {
        let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
        policy["secrets"][0]["env"] = json!(env);
        let path = write_policy(&dir, &policy);

        let output = broker(&["policy", "check", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{env}");
        let stderr = stderr(&output);
        let expected =
            format!("secrets[0].env: environment variable {env:?} is not allowed for secrets");
        assert!(stderr.contains(&expected), "{env}: {stderr}");
    }
}

#[test]
fn verify_ignores_missing_ciphertext_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = policy_with_allow(json!([ { "pcrs": { "0": pcr("aa") } } ]));
    policy["secrets"][0] = json!({
        "name": "db", "key": "app", "ciphertext_file": "not-made-yet.kms", "env": "DB"
    });
    let path = write_policy(&dir, &policy);
    let document = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nitro/eternis_2024-07-31_prod.cbor");

    // The policy loads although the ciphertext file is missing, so the document is compared
    // with the rule and denied for its PCR0 (exit 1), not rejected as input (exit 2).
    let output = broker(&[
        "verify",
        document.to_str().unwrap(),
        "--at",
        "document",
        "--policy",
        path.to_str().unwrap(),
        "--key",
        "app",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("PCR0 mismatch"),
        "{}",
        stderr(&output)
    );
}
