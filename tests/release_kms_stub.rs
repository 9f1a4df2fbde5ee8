//! The main job against a loopback stub KMS, for responses LocalStack cannot return:
//! AccessDenied, throttling, a `KeyId` of another account or none, a corrupted envelope, a
//! body without end. Each must end with the documented exit code and nothing delivered.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::stub_kms::StubKms;
use support::*;

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

struct Setup {
    _root: tempfile::TempDir,
    dir: PathBuf,
    pcr0: String,
    /// PCR map printed by `sim init`: index → hex.
    pcrs: serde_json::Value,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_owned();
    let sim = sim_init(&dir.join("sim"), &[]);
    let pcr0 = sim["pcrs"]["0"].as_str().unwrap().to_owned();
    Setup {
        _root: root,
        dir,
        pcr0,
        pcrs: sim["pcrs"].clone(),
    }
}

fn write_stub_policy(setup: &Setup, secret: serde_json::Value) -> PathBuf {
    write_policy(
        &setup.dir,
        &json!({
            "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
            "keys": { "app": { "key_id": KEY_ARN, "allow": [ { "pcrs": { "0": setup.pcr0 } } ] } },
            "secrets": [ secret ],
        }),
    )
}

fn default_secret() -> serde_json::Value {
    json!({ "name": "db", "key": "app", "ciphertext": "AQIDBA==", "file": "db" })
}

fn fetch(setup: &Setup, stub: &StubKms, policy: &Path) -> std::process::Output {
    fetch_to_files(
        &stub.endpoint(),
        &setup.dir.join("sim"),
        policy,
        &setup.dir.join("out"),
    )
    .output()
    .unwrap()
}

fn error_body(code: &str, message: &str) -> String {
    json!({ "__type": code, "message": message }).to_string()
}

#[test]
fn sends_golden_decrypt_request() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "denied"));
    let policy = write_stub_policy(
        &setup,
        json!({
            "name": "db", "key": "app", "ciphertext": "AQIDBA==", "file": "db",
            "encryption_context": { "app": "billing" },
            "encryption_algorithm": "RSAES_OAEP_SHA_256"
        }),
    );

    fetch(&setup, &stub, &policy);

    // Recipient goes only on Decrypt: the broker makes no other KMS call.
    assert_eq!(*stub.targets.lock().unwrap(), ["TrentService.Decrypt"]);
    let requests = stub.requests.lock().unwrap();
    let body: serde_json::Value = serde_json::from_str(&requests[0]).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CiphertextBlob",
            "EncryptionAlgorithm",
            "EncryptionContext",
            "KeyId",
            "Recipient"
        ]
    );
    assert_eq!(body["CiphertextBlob"], "AQIDBA==");
    assert_eq!(body["KeyId"], KEY_ARN);
    assert_eq!(body["EncryptionContext"], json!({ "app": "billing" }));
    assert_eq!(body["EncryptionAlgorithm"], "RSAES_OAEP_SHA_256");
    assert_eq!(
        body["Recipient"]["KeyEncryptionAlgorithm"],
        "RSAES_OAEP_SHA_256"
    );
    let document = body["Recipient"]["AttestationDocument"].as_str().unwrap();
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, document)
        .expect("AttestationDocument is base64 of the raw document");
    assert_eq!(
        raw[0], 0x84,
        "raw COSE_Sign1 array, not base64 text encoded twice"
    );
}

#[test]
fn leaves_out_encryption_algorithm_when_policy_names_none() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "denied"));
    let policy = write_stub_policy(&setup, default_secret());

    fetch(&setup, &stub, &policy);

    let requests = stub.requests.lock().unwrap();
    let body: serde_json::Value = serde_json::from_str(&requests[0]).unwrap();
    assert!(body.get("EncryptionAlgorithm").is_none());
    assert!(body.get("EncryptionContext").is_none());
}

#[test]
fn denies_on_access_denied_and_logs_sent_pcrs() {
    let setup = setup();
    let stub = StubKms::start(
        400,
        error_body(
            "AccessDeniedException",
            "not authorized to perform kms:Decrypt",
        ),
    );
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("KMS denied Decrypt"), "{message}");
    for index in ["0", "1", "2"] {
        let value = setup.pcrs[index].as_str().unwrap();
        assert!(
            message.contains(&format!("pcr{index}={value}")),
            "sent PCR{index} is logged: {message}"
        );
    }
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn suggests_encryption_algorithm_on_invalid_ciphertext() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("InvalidCiphertextException", ""));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("encryption_algorithm"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn retries_throttling_then_fails_with_exit_3() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("ThrottlingException", "Rate exceeded"));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("throttling"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        stub.requests.lock().unwrap().len(),
        5,
        "five attempts in all"
    );
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn denies_answer_for_key_of_another_account() {
    let setup = setup();
    let other = "arn:aws:kms:us-east-1:444455556666:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let stub = StubKms::start(
        200,
        json!({ "KeyId": other, "CiphertextForRecipient": "MIAGCSqGSIb3DQEHA6CAMIACAQIxggFr" })
            .to_string(),
    );
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("444455556666"),
        "{}",
        stderr(&output)
    );
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn rejects_corrupted_envelope_with_exit_3() {
    let setup = setup();
    let stub = StubKms::start(
        200,
        json!({ "KeyId": KEY_ARN, "CiphertextForRecipient": "MIAGCSqGSIb3DQEHA6CAMIACAQIxggFr" })
            .to_string(),
    );
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("CiphertextForRecipient"),
        "{}",
        stderr(&output)
    );
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn rejects_envelope_for_other_key() {
    // A genuine KMS envelope (see tests/fixtures/kms/SOURCES.md), sealed to a recipient key
    // that is not the one this run generated.
    let envelope = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kms/edgebit_sdkgo_ciphertext_for_recipient.ber"),
    )
    .unwrap();
    let answer = json!({
        "KeyId": KEY_ARN,
        "CiphertextForRecipient": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            envelope,
        ),
    });
    let setup = setup();
    let stub = StubKms::start(200, answer.to_string());
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("encrypted for another recipient key"),
        "{}",
        stderr(&output)
    );
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn reports_missing_nsm_device_and_suggests_sim() {
    let setup = setup();
    let policy = write_stub_policy(&setup, default_secret());

    // Without --attester the broker uses nsm; this machine has no /dev/nsm.
    let output = broker("http://127.0.0.1:9")
        .args(["fetch", "--policy"])
        .arg(&policy)
        .arg("--out-dir")
        .arg(setup.dir.join("out"))
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("/dev/nsm"), "{}", stderr(&output));
    assert!(stderr(&output).contains("sim=DIR"), "{}", stderr(&output));
}

#[test]
fn denies_debug_mode_enclave_before_kms() {
    let setup = setup();
    let zero = "0".repeat(96);
    // A debug-mode enclave reports zero PCR0/1/2 while PCR4 (the parent instance) stays set.
    let sim = sim_init(
        &setup.dir.join("sim"),
        &[(0, &zero), (1, &zero), (2, &zero)],
    );
    assert_ne!(sim["pcrs"]["4"].as_str().unwrap(), zero);
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("debug-mode enclave"),
        "{}",
        stderr(&output)
    );
    assert!(
        stub.requests.lock().unwrap().is_empty(),
        "KMS is never called"
    );
    assert!(!setup.dir.join("out").exists());
}

/// Starts a stand-in that reads each request, starts a response and closes the connection
/// half-way through the body; returns its URL.
fn start_resetting_stub() -> String {
    use std::io::{Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                  content-length: 4000\r\n\r\n{\"KeyId\": \"arn:aws:kms:",
            );
            // Dropping the stream closes it with 3,900-odd body bytes still missing.
        }
    });
    format!("http://{address}")
}

#[test]
fn fails_with_exit_3_when_kms_connection_resets_mid_response() {
    let setup = setup();
    let endpoint = start_resetting_stub();
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch_to_files(
        &endpoint,
        &setup.dir.join("sim"),
        &policy,
        &setup.dir.join("out"),
    )
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains(&endpoint), "{}", stderr(&output));
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn rejects_missing_exec_program_before_kms() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(
        &setup,
        json!({ "name": "db", "key": "app", "ciphertext": "AQIDBA==", "env": "DB" }),
    );

    let output = broker(&stub.endpoint())
        .args(["exec", "--attester"])
        .arg(format!("sim={}", setup.dir.join("sim").display()))
        .arg("--policy")
        .arg(&policy)
        .args(["--", "no-such-program-enclave-broker"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no-such-program-enclave-broker"),
        "{}",
        stderr(&output)
    );
    assert!(
        stub.requests.lock().unwrap().is_empty(),
        "KMS is never called"
    );
}

#[test]
fn out_dir_with_text_format_exits_2() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(
        &setup,
        json!({ "name": "db", "key": "app", "ciphertext": "AQIDBA==", "env": "DB", "file": "db" }),
    );

    for format in ["env", "json"] {
        let output = broker(&stub.endpoint())
            .args(["fetch", "--attester"])
            .arg(format!("sim={}", setup.dir.join("sim").display()))
            .arg("--policy")
            .arg(&policy)
            .args(["--format", format, "--out-dir"])
            .arg(setup.dir.join("out"))
            .output()
            .unwrap();

        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.contains(&format!(
                "is used only with --format files, but --format is {format}"
            )),
            "{message}"
        );
        assert!(message.contains("--out-dir"), "{message}");
        assert!(output.stdout.is_empty(), "--format {format}");
    }
    assert!(!setup.dir.join("out").exists());
    assert!(
        stub.requests.lock().unwrap().is_empty(),
        "KMS is never called"
    );
}

/// Route that sends what would go to AWS KMS in us-east-1 to `stub` instead, so a broker
/// that fell back to AWS would be seen by the stub and nothing would leave the machine.
fn aws_kms_route(stub: &StubKms) -> String {
    format!("kms.us-east-1.amazonaws.com:443=tcp:{}", stub.address)
}

/// Asserts that the run stopped with exit 2 before the recipient key was generated and
/// before any connection reached `stub`.
fn assert_stopped_before_kms(output: &std::process::Output, stub: &StubKms, setup: &Setup) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        !message.contains("recipient key pair generated"),
        "no key is generated: {message}"
    );
    assert_eq!(
        stub.connection_count(),
        0,
        "no connection is made: {message}"
    );
    assert!(!setup.dir.join("out").exists());
}

#[test]
fn rejects_invalid_aws_endpoint_url_before_any_connection() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());
    let without_scheme = stub.address.to_string();
    let values = [
        "not a url",
        "",
        without_scheme.as_str(),
        "http://127.0.0.1:99999",
    ];

    for value in values {
        let output = fetch_to_files(
            value,
            &setup.dir.join("sim"),
            &policy,
            &setup.dir.join("out"),
        )
        .args(["--route", &aws_kms_route(&stub)])
        .output()
        .unwrap();

        assert_stopped_before_kms(&output, &stub, &setup);
        let message = stderr(&output);
        assert!(
            message.contains(&format!("AWS_ENDPOINT_URL={value:?}")),
            "names variable and value: {message}"
        );
        assert!(
            message.contains("expected an absolute http:// or https:// URL"),
            "{message}"
        );
    }
}

#[test]
fn rejects_invalid_aws_endpoint_url_with_anjuna_attester() {
    // A real attester must not fall back to AWS KMS either. The Anjuna endpoint is a stub
    // too, so its count shows that the run stops before the attester is called.
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let attester = StubKms::start(500, String::new());
    let policy = write_stub_policy(&setup, default_secret());

    let output = broker("not a url")
        .args(["fetch", "--attester"])
        .arg(format!("anjuna={}", attester.endpoint()))
        .arg("--policy")
        .arg(&policy)
        .arg("--out-dir")
        .arg(setup.dir.join("out"))
        .args(["--route", &aws_kms_route(&stub)])
        .output()
        .unwrap();

    assert_stopped_before_kms(&output, &stub, &setup);
    assert_eq!(attester.connection_count(), 0);
    assert!(
        stderr(&output).contains("AWS_ENDPOINT_URL=\"not a url\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn rejects_empty_aws_endpoint_url_kms() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the stub works: {}",
        stderr(&output)
    );
    let connections_before = stub.connection_count();

    let output = fetch_to_files(
        &stub.endpoint(),
        &setup.dir.join("sim"),
        &policy,
        &setup.dir.join("out"),
    )
    .env("AWS_ENDPOINT_URL_KMS", "")
    .output()
    .unwrap();

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("AWS_ENDPOINT_URL_KMS=\"\""),
        "names variable and value: {message}"
    );
    assert!(message.contains("the value is empty"), "{message}");
    assert_eq!(stub.connection_count(), connections_before);
}

#[test]
fn rejects_simulator_without_kms_endpoint() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch_to_files(
        "unused",
        &setup.dir.join("sim"),
        &policy,
        &setup.dir.join("out"),
    )
    .env_remove("AWS_ENDPOINT_URL")
    .args(["--route", &aws_kms_route(&stub)])
    .output()
    .unwrap();

    assert_stopped_before_kms(&output, &stub, &setup);
    let message = stderr(&output);
    assert!(
        message.contains("https://kms.us-east-1.amazonaws.com"),
        "{message}"
    );
    assert!(
        message.contains("set AWS_ENDPOINT_URL to a local KMS such as LocalStack"),
        "{message}"
    );
}

#[test]
fn rejects_simulator_with_aws_kms_endpoint() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch_to_files(
        "https://kms.us-east-1.amazonaws.com",
        &setup.dir.join("sim"),
        &policy,
        &setup.dir.join("out"),
    )
    .args(["--route", &aws_kms_route(&stub)])
    .output()
    .unwrap();

    assert_stopped_before_kms(&output, &stub, &setup);
    assert!(
        stderr(&output).contains("AWS KMS accepts only attestation documents signed by AWS"),
        "{}",
        stderr(&output)
    );
}

/// Runs `fetch` against a stub that responds to every request with `status` and `body`.
/// Returns the output and the number of requests the stub received.
fn fetch_with_answer(status: u16, body: &str) -> (std::process::Output, usize) {
    let setup = setup();
    let stub = StubKms::start(status, body.to_owned());
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch(&setup, &stub, &policy);

    assert!(!setup.dir.join("out").exists());
    let requests = stub.requests.lock().unwrap().len();
    (output, requests)
}

#[test]
fn rejects_kms_response_that_is_not_json() {
    for (status, body) in [(200, "not json at all"), (400, "<html>Bad Gateway</html>")] {
        let (output, requests) = fetch_with_answer(status, body);

        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{message}");
        assert!(message.contains(&format!("HTTP {status}")), "{message}");
        assert!(message.contains("the body is not JSON"), "{message}");
        assert!(!message.contains("no message"), "{message}");
        assert!(!message.contains(body), "the body is not quoted: {message}");
        assert_eq!(requests, 1, "not retried");
    }
}

#[test]
fn rejects_ciphertext_for_recipient_that_is_not_base64() {
    let body = json!({ "KeyId": KEY_ARN, "CiphertextForRecipient": "@@not-base64@@" });

    let (output, _) = fetch_with_answer(200, &body.to_string());

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("HTTP 200"), "{message}");
    assert!(
        message.contains("CiphertextForRecipient is not base64"),
        "{message}"
    );
}

#[test]
fn rejects_error_response_without_error_code() {
    let (output, _) = fetch_with_answer(400, r#"{"message": "something"}"#);

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(message.contains("names no error code"), "{message}");
}

#[test]
fn strips_control_characters_from_kms_message() {
    let message = format!(
        "denied\n\u{1b}[32mrelease approved by policy\u{1b}[0m\r\n{}",
        "x".repeat(2000)
    );
    let (output, _) = fetch_with_answer(400, &error_body("AccessDeniedException", &message));

    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains('\u{1b}'), "no escape sequence: {text:?}");
    let error_line = text
        .lines()
        .find(|line| line.contains("KMS denied Decrypt"))
        .expect("error line");
    assert!(
        error_line.contains("denied release approved by policy xxx"),
        "one line: {error_line:?}"
    );
    assert!(error_line.contains('…'), "{error_line:?}");
    assert!(
        !error_line.contains(&"x".repeat(400)),
        "message is capped: {error_line:?}"
    );
}

#[test]
fn adds_localstack_restart_hint_to_not_found() {
    let (output, _) = fetch_with_answer(
        400,
        &error_body("NotFoundException", "Key 'alias/app' does not exist"),
    );

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(
        message.contains("LocalStack") && message.contains("restart"),
        "{message}"
    );
}

#[test]
fn fails_with_exit_3_on_incorrect_key() {
    let (output, _) = fetch_with_answer(
        400,
        &error_body("IncorrectKeyException", "encrypted under another key"),
    );

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("IncorrectKeyException"), "{message}");
}

/// Starts a stand-in that responds to every request with 200 and a body of `len` bytes, with
/// a `content-length` header or, when `chunked`, in chunks of 64 KiB without one. It stops
/// writing when the broker closes the connection, so `usize::MAX` gives an endless body.
/// Returns its address and a counter of requests.
fn start_large_response_stub(
    len: usize,
    chunked: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            counted.fetch_add(1, Ordering::SeqCst);
            let chunk = vec![b' '; 64 * 1024];
            if chunked {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                      transfer-encoding: chunked\r\n\r\n",
                );
                for _ in 0..len.div_ceil(chunk.len()) {
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    if stream.write_all(&framed).is_err() {
                        break;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            } else {
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     content-length: {len}\r\n\r\n"
                );
                let _ = stream.write_all(header.as_bytes());
                for _ in 0..len.div_ceil(chunk.len()) {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (address, requests)
}

#[test]
fn rejects_routed_response_over_limit_without_retry() {
    for chunked in [false, true] {
        let setup = setup();
        let (address, requests) = start_large_response_stub(2 * 1024 * 1024, chunked);
        let policy = write_stub_policy(&setup, default_secret());

        let output = fetch_to_files(
            "http://kms.test:80",
            &setup.dir.join("sim"),
            &policy,
            &setup.dir.join("out"),
        )
        .args(["--route", &format!("kms.test:80=tcp:{address}")])
        .output()
        .unwrap();

        let message = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(3),
            "chunked={chunked}: {message}"
        );
        assert!(
            message.contains("exceeds the 1 MiB limit"),
            "chunked={chunked}: {message}"
        );
        assert!(!message.contains("unreachable"), "{message}");
        assert_eq!(
            requests.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "not retried (chunked={chunked})"
        );
        assert!(!setup.dir.join("out").exists());
    }
}

#[test]
fn rejects_direct_response_over_limit_without_retry() {
    // Without --route the SDK's own HTTP client is used; it must stop at the same limit.
    let cases = [(usize::MAX, true), (300 * 1024 * 1024, false)];
    for (len, chunked) in cases {
        let setup = setup();
        let (address, requests) = start_large_response_stub(len, chunked);
        let policy = write_stub_policy(&setup, default_secret());

        let output = fetch_to_files(
            &format!("http://{address}"),
            &setup.dir.join("sim"),
            &policy,
            &setup.dir.join("out"),
        )
        .output()
        .unwrap();

        let message = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(3),
            "chunked={chunked}: {message}"
        );
        assert!(
            message.contains("exceeds the 1 MiB limit"),
            "chunked={chunked}: {message}"
        );
        assert!(message.contains("did not retry"), "{message}");
        assert!(!message.contains("unreachable"), "{message}");
        assert_eq!(
            requests.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "not retried (chunked={chunked})"
        );
        assert!(!setup.dir.join("out").exists());
    }
}

#[test]
fn rejects_kms_response_with_empty_key_id() {
    let body = json!({ "KeyId": "", "CiphertextForRecipient": "MIAGCSqGSIb3DQEHA6CAMIACAQIxggFr" });

    let (output, _requests) = fetch_with_answer(200, &body.to_string());

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("without a KeyId"), "{message}");
}

#[test]
fn rejects_kms_response_without_key_id() {
    let body = json!({ "CiphertextForRecipient": "MIAGCSqGSIb3DQEHA6CAMIACAQIxggFr" });

    let (output, requests) = fetch_with_answer(200, &body.to_string());

    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("without a KeyId"), "{message}");
    assert!(!message.contains("(none)"), "{message}");
    assert!(!message.contains("another account"), "{message}");
    assert_eq!(requests, 1, "not retried");
}

#[test]
fn rejects_simulator_route_to_aws_host() {
    // A local-looking endpoint routed to AWS would send a simulated document to AWS KMS.
    // The check runs before any connection, so no name here is ever resolved.
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());
    let targets = [
        "kms.us-east-1.amazonaws.com:443",
        "KMS.us-east-1.AmazonAWS.com.:443",
        "kms.us-east-1.api.aws:443",
        "kms.cn-north-1.amazonaws.com.cn:443",
    ];

    for target in targets {
        let route = format!("{}=tcp:{target}", stub.address);
        let output = fetch(&setup, &stub, &policy);
        assert_eq!(output.status.code(), Some(1), "the stub works");
        let connections_before = stub.connection_count();

        let output = fetch_to_files(
            &stub.endpoint(),
            &setup.dir.join("sim"),
            &policy,
            &setup.dir.join("out"),
        )
        .args(["--route", &route])
        .output()
        .unwrap();

        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{target}: {message}");
        assert!(message.contains(&route), "names the route: {message}");
        assert!(message.contains("AWS host"), "{message}");
        assert!(
            !message.contains("recipient key pair generated"),
            "{message}"
        );
        assert_eq!(stub.connection_count(), connections_before, "{target}");
        assert!(!setup.dir.join("out").exists());
    }
}

#[test]
fn rejects_simulator_with_dual_stack_aws_kms_endpoint() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());

    let output = fetch_to_files(
        "https://kms.us-east-1.api.aws",
        &setup.dir.join("sim"),
        &policy,
        &setup.dir.join("out"),
    )
    .args([
        "--route",
        &format!("kms.us-east-1.api.aws:443=tcp:{}", stub.address),
    ])
    .output()
    .unwrap();

    assert_stopped_before_kms(&output, &stub, &setup);
    assert!(
        stderr(&output).contains("AWS KMS accepts only attestation documents signed by AWS"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn rejects_empty_or_missing_region_before_key_generation() {
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let policy = write_stub_policy(&setup, default_secret());
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("AWS_REGION", "")], "AWS_REGION=\"\" is set but empty"),
        (
            &[("AWS_DEFAULT_REGION", "")],
            "AWS_DEFAULT_REGION=\"\" is set but empty",
        ),
        (&[], "no AWS region configured"),
    ];

    for (variables, expected) in cases {
        let mut command = fetch_to_files(
            &stub.endpoint(),
            &setup.dir.join("sim"),
            &policy,
            &setup.dir.join("out"),
        );
        command.env_remove("AWS_REGION");
        for (name, value) in variables {
            command.env(name, value);
        }
        let output = command.output().unwrap();

        assert_stopped_before_kms(&output, &stub, &setup);
        let message = stderr(&output);
        assert!(message.contains(expected), "{variables:?}: {message}");
    }
}

#[test]
fn rejects_invalid_profile_endpoint_url_before_any_connection() {
    // The SDK would drop the invalid value and use AWS KMS; the route sends what would go
    // there to the stub, whose count shows that nothing was sent.
    let setup = setup();
    let stub = StubKms::start(400, error_body("AccessDeniedException", "unused"));
    let attester = StubKms::start(500, String::new());
    let policy = write_stub_policy(&setup, default_secret());
    let config = setup.dir.join("aws-config");
    std::fs::write(&config, "[default]\nendpoint_url = 127.0.0.1:4566\n").unwrap();

    let output = broker("unused")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", &config)
        .args(["fetch", "--attester"])
        .arg(format!("anjuna={}", attester.endpoint()))
        .arg("--policy")
        .arg(&policy)
        .arg("--out-dir")
        .arg(setup.dir.join("out"))
        .args(["--route", &aws_kms_route(&stub)])
        .output()
        .unwrap();

    assert_stopped_before_kms(&output, &stub, &setup);
    assert_eq!(attester.connection_count(), 0);
    let message = stderr(&output);
    assert!(
        message.contains("endpoint_url = \"127.0.0.1:4566\""),
        "names key and value: {message}"
    );
    assert!(
        message.contains(&config.display().to_string()),
        "names the file: {message}"
    );
    assert!(message.contains("profile default"), "{message}");
}
