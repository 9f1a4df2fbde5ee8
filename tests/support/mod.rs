//! Shared harness for the end-to-end tests: LocalStack's KMS on 127.0.0.1, a simulated
//! enclave made by the real binary, policy files, and a loopback stub KMS for responses
//! LocalStack cannot be made to return.
#![allow(dead_code)]

pub mod stub_kms;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use aws_sdk_kms::primitives::Blob;
use base64::Engine;

pub const REGION: &str = "us-east-1";

/// Base URL of LocalStack's gateway (`LOCALSTACK_PORT`, default 4566), started once per
/// test binary through `scripts/localstack start`, which returns at once when it runs.
pub fn localstack_endpoint() -> String {
    static STARTED: OnceLock<String> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let port = std::env::var("LOCALSTACK_PORT").unwrap_or_else(|_| "4566".to_owned());
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/localstack");
            let status = Command::new(script)
                .arg("start")
                .env("LOCALSTACK_PORT", &port)
                .status()
                .expect("run scripts/localstack start");
            assert!(status.success(), "scripts/localstack start failed");
            format!("http://127.0.0.1:{port}")
        })
        .clone()
}

/// A KMS client for test setup (create keys, encrypt), aimed at `endpoint`.
pub fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    let credentials = aws_sdk_kms::config::Credentials::new("test", "test", None, None, "tests");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// Creates a symmetric key in LocalStack and returns its ARN.
pub async fn create_key(client: &aws_sdk_kms::Client) -> String {
    let created = client.create_key().send().await.expect("CreateKey");
    created
        .key_metadata()
        .expect("key metadata")
        .arn()
        .expect("key ARN")
        .to_owned()
}

/// Encrypts `plaintext` under `key_id` with an optional encryption context; returns the
/// `CiphertextBlob` as base64.
pub async fn encrypt(
    client: &aws_sdk_kms::Client,
    key_id: &str,
    plaintext: &[u8],
    context: &[(&str, &str)],
) -> String {
    let mut call = client
        .encrypt()
        .key_id(key_id)
        .plaintext(Blob::new(plaintext));
    for (key, value) in context {
        call = call.encryption_context(*key, *value);
    }
    let output = call.send().await.expect("Encrypt");
    base64::engine::general_purpose::STANDARD.encode(output.ciphertext_blob().expect("blob"))
}

pub fn broker_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_enclave-broker"))
}

/// A broker command with a clean AWS environment aimed at `endpoint`.
pub fn broker(endpoint: &str) -> Command {
    let mut command = Command::new(broker_path());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("RUST_LOG", "enclave_broker=debug");
    command
}

/// `enclave-broker fetch` of the files in `policy` to `out_dir`, with the simulator in
/// `sim_dir` as attester and KMS at `endpoint`. Callers add flags such as `--route`.
pub fn fetch_to_files(endpoint: &str, sim_dir: &Path, policy: &Path, out_dir: &Path) -> Command {
    let mut command = broker(endpoint);
    command
        .arg("fetch")
        .arg("--attester")
        .arg(format!("sim={}", sim_dir.display()))
        .arg("--policy")
        .arg(policy)
        .arg("--out-dir")
        .arg(out_dir);
    command
}

/// Runs `enclave-broker sim init --dir DIR [--pcr …]` and returns the PCR map it prints.
pub fn sim_init(dir: &Path, pcrs: &[(u8, &str)]) -> serde_json::Value {
    let mut command = Command::new(broker_path());
    command.args(["sim", "init", "--dir"]).arg(dir);
    for (index, value) in pcrs {
        command.arg("--pcr").arg(format!("{index}={value}"));
    }
    let output = command.output().expect("run sim init");
    assert_success(&output);
    serde_json::from_slice(&output.stdout).expect("sim init prints JSON")
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `policy` as JSON into `dir/policy.json` and returns the path.
pub fn write_policy(dir: &Path, policy: &serde_json::Value) -> PathBuf {
    let path = dir.join("policy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    path
}

/// A 96-hex PCR value made of one repeated byte.
pub fn pcr_hex(byte: u8) -> String {
    format!("{byte:02x}").repeat(48)
}
