//! The main job end to end: simulated enclave, LocalStack's KMS over HTTP (real `Decrypt`
//! with `Recipient`, real CMS envelope), the real binary. LocalStack verifies nothing, so
//! PCR denials here prove the broker's own release gate, not a KMS key policy.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use support::*;

struct Setup {
    _root: tempfile::TempDir,
    dir: std::path::PathBuf,
    endpoint: String,
    key_arn: String,
    pcr0: String,
}

async fn setup() -> Setup {
    let endpoint = localstack_endpoint();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_owned();
    let sim = sim_init(&dir.join("sim"), &[]);
    let pcr0 = sim["pcrs"]["0"].as_str().unwrap().to_owned();
    let client = kms_client(&endpoint);
    let key_arn = create_key(&client).await;
    Setup {
        _root: root,
        dir,
        endpoint,
        key_arn,
        pcr0,
    }
}

fn policy(setup: &Setup, pcr0: &str, secrets: serde_json::Value) -> serde_json::Value {
    json!({
        "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
        "keys": { "app": { "key_id": setup.key_arn, "allow": [ { "pcrs": { "0": pcr0 } } ] } },
        "secrets": secrets,
    })
}

fn fetch_files(setup: &Setup, policy_path: &Path, out: &Path) -> std::process::Output {
    fetch_to_files(&setup.endpoint, &setup.dir.join("sim"), policy_path, out)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_one_secret_to_file() {
    let setup = setup().await;
    let client = kms_client(&setup.endpoint);
    let ciphertext = encrypt(&client, &setup.key_arn, b"s3cr3t-password", &[]).await;
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([{ "name": "db", "key": "app", "ciphertext": ciphertext, "file": "db.txt" }]),
        ),
    );
    let out = setup.dir.join("out");

    let output = fetch_files(&setup, &policy_path, &out);

    assert_success(&output);
    assert_eq!(fs::read(out.join("db.txt")).unwrap(), b"s3cr3t-password");
    assert_eq!(
        fs::metadata(out.join("db.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(
        !stderr(&output).contains("s3cr3t-password"),
        "secret leaked to the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_several_secrets_with_context_and_file_ciphertext() {
    let setup = setup().await;
    let client = kms_client(&setup.endpoint);
    let first = encrypt(&client, &setup.key_arn, b"first", &[("app", "billing")]).await;
    let second = encrypt(&client, &setup.key_arn, b"second", &[]).await;
    let second_raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, second).unwrap();
    fs::write(setup.dir.join("second.kms"), second_raw).unwrap();
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([
                { "name": "one", "key": "app", "ciphertext": first, "encryption_context": { "app": "billing" }, "file": "one" },
                { "name": "two", "key": "app", "ciphertext_file": "second.kms", "file": "nested/two" },
                { "name": "env-only", "key": "app", "ciphertext": "AAAA", "env": "NOT_FETCHED" }
            ]),
        ),
    );
    let out = setup.dir.join("out");

    let output = fetch_files(&setup, &policy_path, &out);

    assert_success(&output);
    assert_eq!(fs::read(out.join("one")).unwrap(), b"first");
    assert_eq!(fs::read(out.join("nested/two")).unwrap(), b"second");
}

#[tokio::test(flavor = "multi_thread")]
async fn delivers_nothing_when_second_secret_fails() {
    let setup = setup().await;
    let client = kms_client(&setup.endpoint);
    let first = encrypt(&client, &setup.key_arn, b"first", &[]).await;
    let second = encrypt(&client, &setup.key_arn, b"second", &[("app", "billing")]).await;
    // The second secret leaves out its encryption context, so KMS cannot decrypt it.
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([
                { "name": "one", "key": "app", "ciphertext": first, "file": "one" },
                { "name": "two", "key": "app", "ciphertext": second, "file": "two" }
            ]),
        ),
    );
    let out = setup.dir.join("out");

    let output = fetch_files(&setup, &policy_path, &out);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("two"), "{}", stderr(&output));
    assert!(!out.exists(), "not even the first secret is delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn prints_env_lines_with_format_env() {
    let setup = setup().await;
    let client = kms_client(&setup.endpoint);
    let ciphertext = encrypt(&client, &setup.key_arn, b"it's here", &[]).await;
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([{ "name": "db", "key": "app", "ciphertext": ciphertext, "env": "DB_PASSWORD" }]),
        ),
    );

    let output = broker(&setup.endpoint)
        .args(["fetch", "--format", "env", "--attester"])
        .arg(format!("sim={}", setup.dir.join("sim").display()))
        .arg("--policy")
        .arg(&policy_path)
        .output()
        .unwrap();

    assert_success(&output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "DB_PASSWORD='it'\\''s here'\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_program_with_secret_in_environment() {
    let setup = setup().await;
    let client = kms_client(&setup.endpoint);
    let ciphertext = encrypt(&client, &setup.key_arn, b"exec-secret", &[]).await;
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([{ "name": "db", "key": "app", "ciphertext": ciphertext, "env": "DB_PASSWORD" }]),
        ),
    );

    let output = broker(&setup.endpoint)
        .args(["exec", "--attester"])
        .arg(format!("sim={}", setup.dir.join("sim").display()))
        .arg("--policy")
        .arg(&policy_path)
        .args(["--", "sh", "-c", "printf %s \"$DB_PASSWORD\" | sha256sum"])
        .output()
        .unwrap();

    assert_success(&output);
    let expected = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        b"exec-secret",
    ));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with(&expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn denies_pcr0_mismatch_and_writes_nothing() {
    let setup = setup().await;
    let client = kms_client(&setup.endpoint);
    let ciphertext = encrypt(&client, &setup.key_arn, b"never", &[]).await;
    let expected_pcr0 = pcr_hex(0xab);
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &expected_pcr0,
            json!([{ "name": "db", "key": "app", "ciphertext": ciphertext, "file": "db" }]),
        ),
    );
    let out = setup.dir.join("out");

    let output = fetch_files(&setup, &policy_path, &out);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("PCR0"), "{message}");
    assert!(message.contains(&expected_pcr0), "{message}");
    assert!(message.contains(&setup.pcr0), "{message}");
    assert!(!out.exists(), "nothing is written on denial");
}

#[tokio::test(flavor = "multi_thread")]
async fn denies_simulator_document_when_policy_trusts_only_aws_root() {
    let setup = setup().await;
    let mut document = policy(
        &setup,
        &setup.pcr0,
        json!([{ "name": "db", "key": "app", "ciphertext": "AAAA", "file": "db" }]),
    );
    document["trust"]["roots"] = json!(["aws-nitro-enclaves-g1"]);
    let policy_path = write_policy(&setup.dir, &document);
    let out = setup.dir.join("out");

    let output = fetch_files(&setup, &policy_path, &out);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("root"), "{}", stderr(&output));
    assert!(!out.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_kms_answer_with_plaintext() {
    let setup = setup().await;
    let stub = stub_kms::StubKms::start(
        200,
        json!({ "KeyId": setup.key_arn, "Plaintext": "c2VjcmV0", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }).to_string(),
    );
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([{ "name": "db", "key": "app", "ciphertext": "AAAA", "file": "db" }]),
        ),
    );
    let out = setup.dir.join("out");

    let output = fetch_to_files(&stub.endpoint(), &setup.dir.join("sim"), &policy_path, &out)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("recipient was ignored"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists());
    let requests = stub.requests.lock().unwrap();
    let body: serde_json::Value = serde_json::from_str(&requests[0]).unwrap();
    assert_eq!(
        body["Recipient"]["KeyEncryptionAlgorithm"],
        "RSAES_OAEP_SHA_256"
    );
    assert_eq!(body["KeyId"], setup.key_arn.as_str());
    assert!(
        body["Recipient"]["AttestationDocument"]
            .as_str()
            .unwrap()
            .starts_with("hES"),
        "attestation document is sent base64-encoded once (COSE array 0x84, protected header 0x44 …)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_unreachable_kms_endpoint_with_exit_3() {
    let setup = setup().await;
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let policy_path = write_policy(
        &setup.dir,
        &policy(
            &setup,
            &setup.pcr0,
            json!([{ "name": "db", "key": "app", "ciphertext": "AAAA", "file": "db" }]),
        ),
    );

    let output = fetch_to_files(
        &endpoint,
        &setup.dir.join("sim"),
        &policy_path,
        &setup.dir.join("out"),
    )
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains(&endpoint), "{}", stderr(&output));
}
