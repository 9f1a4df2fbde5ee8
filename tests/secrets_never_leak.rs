//! Secrets leave the broker only through the delivery the caller asked for.
//!
//! Each run uses the real binary with `RUST_LOG=trace`, so every crate logs everything it
//! logs at all, with `TMPDIR` and `HOME` pointed into the test's work folder. After the run
//! the test searches stdout, stderr and every file in the work folder except the delivered
//! ones for the delivered values, written raw, as hex, as base64 (both alphabets, every byte
//! alignment) and as a Rust byte list.
//!
//! The RSA private key and the content-encryption key never leave the broker's memory, so a
//! test against LocalStack cannot know them. Two checks stand in for them:
//!
//! - The private key: no PEM `PRIVATE KEY` block, and no PKCS #8 RSA key header
//!   (`INTEGER 0, AlgorithmIdentifier rsaEncryption` at the start of a PrivateKeyInfo) as
//!   raw bytes, hex or base64. A public key (SubjectPublicKeyInfo) lacks the version INTEGER,
//!   so the attestation document's public key does not match.
//! - The content key: a loopback KMS stand-in that reads the public key from the attestation
//!   document in the request and seals a content key of the test's choosing to it. The test
//!   then searches for that content key like for the secrets, and checks that every hex or
//!   base64 run of 200 characters or more in the log is part of the envelope it sent.
//!
//! Failed runs (a PCR mismatch, KMS errors, a delivery that fails part-way) must leave the
//! work folder exactly as it was: no output folder, no staged temporary file.
//!
//! LocalStack is started through `tests/support` (`scripts/localstack start`) when not
//! running. Every server here listens on 127.0.0.1.

mod envelope_support;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use enclave_broker::attestation::verify;
use enclave_broker::envelope::RecipientKey;
use enclave_broker::kms::AttestationDocumentBytes;
use enclave_broker::secret::{SecretBytes, SecretString};
use envelope_support::{Lengths, SampleParts};
use serde_json::json;
use support::*;

/// Values released in the tests: distinctive, so that a match cannot be a coincidence.
const FILE_SECRET: &[u8] = b"file-secret-zebra-7d1c0b9a44e2";
const NESTED_FILE_SECRET: &[u8] = b"nested-secret-okapi-0c9f3b51d7";
const ENV_SECRET: &[u8] = b"env-secret-quokka-51f2e8a06c3b";
const JSON_SECRET: &[u8] = b"json-secret-narwhal-9e3a44b1f0";

/// Content key and IV the sealing KMS stand-in uses. The IV is public (it travels in the
/// envelope, which the AWS SDK logs at trace level as part of the `Decrypt` output).
const STUB_CONTENT_KEY: [u8; 32] = *b"content-key-axolotl-1f7b2c9e5d04";
const STUB_IV: [u8; 16] = *b"iv-pangolin-83e1";

/// Start of an RSA PKCS #8 PrivateKeyInfo after its outer SEQUENCE header: version
/// INTEGER 0, AlgorithmIdentifier { rsaEncryption, NULL }, then the OCTET STRING tag.
const PKCS8_RSA_HEADER: &[u8] = &[
    0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    0x05, 0x00, 0x04,
];

/// The work folder of one test: a simulated enclave, a LocalStack key, and the folders the
/// broker gets as `TMPDIR` and `HOME`.
struct Workspace {
    _root: tempfile::TempDir,
    dir: PathBuf,
    endpoint: String,
    key_arn: String,
    pcr0: String,
}

async fn workspace() -> Workspace {
    let endpoint = localstack_endpoint();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_owned();
    let sim = sim_init(&dir.join("sim"), &[]);
    let pcr0 = sim["pcrs"]["0"].as_str().unwrap().to_owned();
    fs::create_dir(dir.join("tmp")).unwrap();
    fs::create_dir(dir.join("home")).unwrap();
    let key_arn = create_key(&kms_client(&endpoint)).await;
    Workspace {
        _root: root,
        dir,
        endpoint,
        key_arn,
        pcr0,
    }
}

/// Creates a work folder like [`workspace`] for runs against the sealing KMS stand-in only.
/// It needs no LocalStack, and its key ARN is made up.
fn local_workspace() -> Workspace {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_owned();
    let sim = sim_init(&dir.join("sim"), &[]);
    let pcr0 = sim["pcrs"]["0"].as_str().unwrap().to_owned();
    fs::create_dir(dir.join("tmp")).unwrap();
    fs::create_dir(dir.join("home")).unwrap();
    Workspace {
        _root: root,
        dir,
        endpoint: String::new(),
        key_arn: "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
            .to_owned(),
        pcr0,
    }
}

impl Workspace {
    /// Encrypts `plaintext` with LocalStack under the workspace key.
    async fn encrypt(&self, plaintext: &[u8]) -> String {
        encrypt(&kms_client(&self.endpoint), &self.key_arn, plaintext, &[]).await
    }

    /// Writes a policy whose rule `app` expects `pcr0` and returns its path.
    fn policy(&self, pcr0: &str, secrets: serde_json::Value) -> PathBuf {
        write_policy(
            &self.dir,
            &json!({
                "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
                "keys": { "app": { "key_id": self.key_arn, "allow": [ { "pcrs": { "0": pcr0 } } ] } },
                "secrets": secrets,
            }),
        )
    }

    /// Runs `enclave-broker fetch` against `endpoint` with full tracing, from the work folder.
    fn fetch(&self, endpoint: &str, policy: &Path, extra: &[&str]) -> Output {
        self.fetch_command(endpoint, policy, extra)
            .output()
            .unwrap()
    }

    /// Builds the command [`Workspace::fetch`] runs, for tests that start it themselves.
    fn fetch_command(&self, endpoint: &str, policy: &Path, extra: &[&str]) -> Command {
        let mut command = broker(endpoint);
        command
            .current_dir(&self.dir)
            .env("RUST_LOG", "trace")
            .env("TMPDIR", self.dir.join("tmp"))
            .env("HOME", self.dir.join("home"))
            .args(["fetch", "--attester"])
            .arg(format!("sim={}", self.dir.join("sim").display()))
            .arg("--policy")
            .arg(policy)
            .args(extra);
        command
    }

    fn out_dir(&self) -> PathBuf {
        self.dir.join("out")
    }
}

/// Lists every file and folder under `dir`, relative, with its mode and content (empty for
/// folders).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let relative = path.strip_prefix(dir).unwrap().to_owned();
            if metadata.is_dir() {
                pending.push(path);
                entries.insert(relative, (mode, Vec::new()));
            } else {
                entries.insert(relative, (mode, fs::read(&path).unwrap()));
            }
        }
    }
    entries
}

/// Returns the forms in which `secret` could appear in a log or file.
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut forms = vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("upper-case hex", hex::encode_upper(secret).into_bytes()),
    ];
    // Inside a longer buffer the secret starts at one of three offsets modulo 3, which
    // decides how base64 groups its bytes. Dropping the first one or two bytes and the
    // trailing partial group leaves text that appears in the encoding of any such buffer.
    for skip in 0..3 {
        let aligned = &secret[skip..];
        let whole_groups = &aligned[..aligned.len() / 3 * 3];
        let standard = STANDARD_NO_PAD.encode(whole_groups);
        forms.push(("base64", standard.clone().into_bytes()));
        forms.push((
            "base64url",
            URL_SAFE_NO_PAD.encode(whole_groups).into_bytes(),
        ));
    }
    let byte_list: Vec<String> = secret.iter().take(12).map(u8::to_string).collect();
    forms.push(("Rust byte list", byte_list.join(", ").into_bytes()));
    forms
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Returns up to 150 bytes of `text` on each side of `position`, for failure messages.
fn context(text: &[u8], position: usize) -> String {
    let start = position.saturating_sub(150);
    let end = (position + 150).min(text.len());
    String::from_utf8_lossy(&text[start..end]).into_owned()
}

/// Fails when `text` contains any encoding of any of `secrets`.
fn assert_no_secret(text: &[u8], place: &str, secrets: &[(&str, &[u8])]) {
    for (name, secret) in secrets {
        for (form, needle) in encodings(secret) {
            if let Some(position) = find(text, &needle) {
                panic!(
                    "{place} contains {name} ({form}) at byte {position}: …{}…",
                    context(text, position)
                );
            }
        }
    }
}

/// Fails when `text` contains a PEM private key or the PKCS #8 RSA header in any encoding.
fn assert_no_private_key(text: &[u8], place: &str) {
    let text_lossy = String::from_utf8_lossy(text);
    assert!(
        !text_lossy.contains("PRIVATE KEY"),
        "{place} contains a PEM private key"
    );
    for (form, needle) in encodings(PKCS8_RSA_HEADER) {
        if let Some(position) = find(text, &needle) {
            panic!(
                "{place} contains a PKCS #8 RSA private key header ({form}) at byte \
                 {position}: …{}…",
                context(text, position)
            );
        }
    }
}

/// Checks stdout, stderr and every file of the work folder that the run did not deliver.
fn assert_nothing_leaked(
    workspace: &Workspace,
    output: &Output,
    delivered: &[PathBuf],
    secrets: &[(&str, &[u8])],
) {
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "stderr has no debug or trace lines, so RUST_LOG=trace did not take effect"
    );
    assert_no_secret(&output.stderr, "stderr", secrets);
    assert_no_private_key(&output.stderr, "stderr");
    assert_no_private_key(&output.stdout, "stdout");
    for (path, (_, content)) in snapshot(&workspace.dir) {
        let place = format!("file {}", path.display());
        if delivered.contains(&path) {
            continue;
        }
        assert_no_secret(&content, &place, secrets);
        // `sim init` writes the simulator's CA key into its state folder before any run, so
        // only files outside that folder are checked for a private key.
        if !path.starts_with("sim") {
            assert_no_private_key(&content, &place);
        }
    }
    assert_eq!(
        fs::read_dir(workspace.dir.join("tmp")).unwrap().count(),
        0,
        "files left in TMPDIR"
    );
    assert_eq!(
        fs::read_dir(workspace.dir.join("home")).unwrap().count(),
        0,
        "files left in HOME"
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_to_files_writes_secrets_nowhere_else() {
    let workspace = workspace().await;
    let first = workspace.encrypt(FILE_SECRET).await;
    let second = workspace.encrypt(NESTED_FILE_SECRET).await;
    let policy = workspace.policy(
        &workspace.pcr0,
        json!([
            { "name": "first", "key": "app", "ciphertext": first, "file": "first.txt" },
            { "name": "second", "key": "app", "ciphertext": second, "file": "nested/second.txt" }
        ]),
    );
    let out = workspace.out_dir();

    let output = workspace.fetch(&workspace.endpoint, &policy, &["--out-dir", "out"]);

    assert_success(&output);
    assert_eq!(fs::read(out.join("first.txt")).unwrap(), FILE_SECRET);
    assert_eq!(
        fs::read(out.join("nested/second.txt")).unwrap(),
        NESTED_FILE_SECRET
    );
    assert_eq!(mode(&out.join("first.txt")), 0o400);
    assert_eq!(mode(&out.join("nested/second.txt")), 0o400);
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("nested")), 0o700);
    assert!(output.stdout.is_empty(), "fetch to files prints nothing");
    let out_entries: Vec<PathBuf> = snapshot(&out).into_keys().collect();
    assert_eq!(
        out_entries,
        vec![
            PathBuf::from("first.txt"),
            PathBuf::from("nested"),
            PathBuf::from("nested/second.txt"),
        ],
        "only the delivered files are in the output folder"
    );
    assert_nothing_leaked(
        &workspace,
        &output,
        &[
            PathBuf::from("out/first.txt"),
            PathBuf::from("out/nested/second.txt"),
        ],
        &[("first", FILE_SECRET), ("second", NESTED_FILE_SECRET)],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn format_env_prints_secret_only_in_its_line() {
    let workspace = workspace().await;
    let ciphertext = workspace.encrypt(ENV_SECRET).await;
    let policy = workspace.policy(
        &workspace.pcr0,
        json!([{ "name": "db", "key": "app", "ciphertext": ciphertext, "env": "DB_PASSWORD" }]),
    );
    let before = snapshot(&workspace.dir);

    let output = workspace.fetch(&workspace.endpoint, &policy, &["--format", "env"]);

    assert_success(&output);
    let expected = format!("DB_PASSWORD='{}'\n", String::from_utf8_lossy(ENV_SECRET));
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "--format env writes no file"
    );
    assert_nothing_leaked(&workspace, &output, &[], &[("db", ENV_SECRET)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn format_json_prints_secret_only_in_its_object() {
    let workspace = workspace().await;
    let ciphertext = workspace.encrypt(JSON_SECRET).await;
    let policy = workspace.policy(
        &workspace.pcr0,
        json!([{ "name": "token", "key": "app", "ciphertext": ciphertext, "file": "token" }]),
    );
    let before = snapshot(&workspace.dir);

    let output = workspace.fetch(&workspace.endpoint, &policy, &["--format", "json"]);

    assert_success(&output);
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        printed,
        json!({ "token": String::from_utf8_lossy(JSON_SECRET) })
    );
    let occurrences = String::from_utf8_lossy(&output.stdout)
        .matches(&*String::from_utf8_lossy(JSON_SECRET))
        .count();
    assert_eq!(occurrences, 1, "the value appears once on stdout");
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "--format json writes no file"
    );
    assert_nothing_leaked(&workspace, &output, &[], &[("token", JSON_SECRET)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pcr_mismatch_leaves_work_folder_unchanged() {
    let workspace = workspace().await;
    let ciphertext = workspace.encrypt(FILE_SECRET).await;
    let policy = workspace.policy(
        &pcr_hex(0xab),
        json!([{ "name": "db", "key": "app", "ciphertext": ciphertext, "file": "db" }]),
    );
    let before = snapshot(&workspace.dir);

    let output = workspace.fetch(&workspace.endpoint, &policy, &["--out-dir", "out"]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(snapshot(&workspace.dir), before);
    assert_nothing_leaked(&workspace, &output, &[], &[("db", FILE_SECRET)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_errors_leave_work_folder_unchanged() {
    let workspace = workspace().await;
    let policy = workspace.policy(
        &workspace.pcr0,
        json!([{ "name": "db", "key": "app", "ciphertext": "AQIDBA==", "file": "db" }]),
    );
    let denied = stub_kms::StubKms::start(
        400,
        json!({ "__type": "AccessDeniedException", "message": "not allowed by the key policy" })
            .to_string(),
    );
    let failing = stub_kms::StubKms::start(
        500,
        json!({ "__type": "KMSInternalException", "message": "internal" }).to_string(),
    );
    let before = snapshot(&workspace.dir);

    for (stub, expected_code) in [(&denied, 1), (&failing, 3)] {
        let output = workspace.fetch(&stub.endpoint(), &policy, &["--out-dir", "out"]);

        assert_eq!(
            output.status.code(),
            Some(expected_code),
            "{}",
            stderr(&output)
        );
        assert_eq!(snapshot(&workspace.dir), before);
        assert_nothing_leaked(&workspace, &output, &[], &[]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_delivery_removes_every_staged_file() {
    let workspace = workspace().await;
    let first = workspace.encrypt(FILE_SECRET).await;
    let second = workspace.encrypt(NESTED_FILE_SECRET).await;
    let policy = workspace.policy(
        &workspace.pcr0,
        json!([
            { "name": "first", "key": "app", "ciphertext": first, "file": "first.txt" },
            { "name": "second", "key": "app", "ciphertext": second, "file": "blocked" }
        ]),
    );
    // A non-empty folder where the second file should go makes its rename fail after the
    // first file has been renamed into place.
    let out = workspace.out_dir();
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(out.join("blocked")).unwrap();
    fs::write(out.join("blocked/keep"), b"").unwrap();
    let before = snapshot(&workspace.dir);

    let output = workspace.fetch(&workspace.endpoint, &policy, &["--out-dir", "out"]);

    assert!(!output.status.success(), "{}", stderr(&output));
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "neither secret stays delivered, and no temporary file is left"
    );
    assert_nothing_leaked(
        &workspace,
        &output,
        &[],
        &[("first", FILE_SECRET), ("second", NESTED_FILE_SECRET)],
    );
}

/// A loopback KMS stand-in for `Decrypt` with `Recipient`, listening on 127.0.0.1.
struct SealingKms {
    endpoint: String,
    /// Every envelope sent, in order.
    envelopes: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Starts a [`SealingKms`]. It takes the RSA public key from the attestation document in
/// each request and returns an envelope sealed to it, holding `plaintext` under
/// [`STUB_CONTENT_KEY`] and [`STUB_IV`].
fn start_sealing_kms(key_arn: String, plaintext: &'static [u8]) -> SealingKms {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let envelopes = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::clone(&envelopes);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut content_length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; content_length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let document = STANDARD
                .decode(
                    request["Recipient"]["AttestationDocument"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap();
            let public_key = verify::inspect(&document)
                .unwrap()
                .public_key()
                .unwrap()
                .to_vec();
            let envelope = seal(&public_key, plaintext);
            sent.lock().unwrap().push(envelope.clone());
            let answer = json!({
                "KeyId": key_arn,
                "CiphertextForRecipient": STANDARD.encode(envelope),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            })
            .to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    SealingKms {
        endpoint: format!("http://{address}"),
        envelopes,
    }
}

/// Returns every run of at least `min_len` characters that hex or base64 (either alphabet)
/// can produce.
fn long_encoded_runs(text: &[u8], min_len: usize) -> Vec<String> {
    let is_encoding_char = |byte: &u8| {
        byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'-' | b'_')
    };
    text.split(|byte| !is_encoding_char(byte))
        .filter(|run| run.len() >= min_len)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

/// Builds a KMS-shaped BER envelope for the SubjectPublicKeyInfo DER `spki`.
fn seal(spki: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let public_key = PublicEncryptingKey::from_der(spki).unwrap();
    let public_key = OaepPublicEncryptingKey::new(public_key).unwrap();
    let mut encrypted_key = vec![0u8; public_key.ciphertext_size()];
    let written = public_key
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &STUB_CONTENT_KEY,
            &mut encrypted_key,
            None,
        )
        .unwrap()
        .len();
    encrypted_key.truncate(written);

    let cipher_key = UnboundCipherKey::new(&AES_256, &STUB_CONTENT_KEY).unwrap();
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(cipher_key).unwrap();
    let mut ciphertext = plaintext.to_vec();
    cipher
        .less_safe_encrypt(
            &mut ciphertext,
            EncryptionContext::Iv128(FixedLength::from(STUB_IV)),
        )
        .unwrap();

    // KMS names the recipient by SHA-256 of its SubjectPublicKeyInfo DER.
    let subject_key_identifier = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki)
        .as_ref()
        .try_into()
        .unwrap();
    SampleParts {
        subject_key_identifier,
        encrypted_key,
        iv: STUB_IV,
        ciphertext,
    }
    .kms_envelope(Lengths::Indefinite)
    .encode()
}

#[tokio::test(flavor = "multi_thread")]
async fn content_key_never_reaches_log_or_files() {
    let workspace = workspace().await;
    let kms = start_sealing_kms(workspace.key_arn.clone(), FILE_SECRET);
    let policy = workspace.policy(
        &workspace.pcr0,
        json!([{ "name": "db", "key": "app", "ciphertext": "AQIDBA==", "file": "db" }]),
    );

    let output = workspace.fetch(&kms.endpoint, &policy, &["--out-dir", "out"]);

    assert_success(&output);
    assert_eq!(
        fs::read(workspace.out_dir().join("db")).unwrap(),
        FILE_SECRET
    );
    // The only long encoded data in the log may be the envelope, which is encrypted to a key
    // that never leaves the broker's memory. The AWS SDK logs it in the `Decrypt` output at
    // trace level (aws-sdk-kms 1.129).
    let envelopes = kms.envelopes.lock().unwrap();
    let public_forms: Vec<String> = envelopes
        .iter()
        .flat_map(|envelope| [hex::encode(envelope), STANDARD.encode(envelope)])
        .collect();
    for run in long_encoded_runs(&output.stderr, 200) {
        assert!(
            public_forms.iter().any(|form| form.contains(&run)),
            "stderr contains {} characters of encoded data that are not the envelope: {}…",
            run.len(),
            &run[..80]
        );
    }
    assert_nothing_leaked(
        &workspace,
        &output,
        &[PathBuf::from("out/db")],
        &[("db", FILE_SECRET), ("content key", &STUB_CONTENT_KEY)],
    );
}

/// The search itself: each encoding of a secret, embedded in a longer buffer at any byte
/// offset, is found.
#[test]
fn leak_search_finds_every_encoding() {
    for offset in 0..3 {
        let mut buffer = vec![b'x'; offset];
        buffer.extend_from_slice(FILE_SECRET);
        buffer.extend_from_slice(b"tail");
        let logs = [
            buffer.clone(),
            hex::encode(&buffer).into_bytes(),
            STANDARD.encode(&buffer).into_bytes(),
            URL_SAFE_NO_PAD.encode(&buffer).into_bytes(),
            format!("{buffer:?}").into_bytes(),
        ];
        for log in logs {
            let found = std::panic::catch_unwind(|| {
                assert_no_secret(&log, "log", &[("value", FILE_SECRET)]);
            });
            assert!(
                found.is_err(),
                "missed at offset {offset}: {}",
                String::from_utf8_lossy(&log)
            );
        }
    }
    let mut pkcs8 = vec![0x30, 0x82, 0x04, 0xbd];
    pkcs8.extend_from_slice(PKCS8_RSA_HEADER);
    let found = std::panic::catch_unwind(|| {
        assert_no_private_key(STANDARD.encode(&pkcs8).as_bytes(), "log");
    });
    assert!(found.is_err(), "missed a base64 PKCS #8 header");
}

#[test]
fn debug_of_secret_types_prints_no_content() {
    let bytes = SecretBytes::from_slice(FILE_SECRET);
    let text = SecretString::try_from(&bytes).unwrap();
    let pem = String::from_utf8(envelope_support::fixture(
        "enclaver_recipient_rsa2048_pkcs8.pem",
    ))
    .unwrap();
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let key_der = STANDARD.decode(body).unwrap();
    let key = RecipientKey::from_pkcs8_der(&key_der).unwrap();
    let document = AttestationDocumentBytes::new(FILE_SECRET.to_vec());

    let printed = [
        ("SecretBytes", format!("{bytes:?}"), format!("{bytes:#?}")),
        ("SecretString", format!("{text:?}"), format!("{text:#?}")),
        ("RecipientKey", format!("{key:?}"), format!("{key:#?}")),
        (
            "AttestationDocumentBytes",
            format!("{document:?}"),
            format!("{document:#?}"),
        ),
    ];

    for (name, plain, alternate) in &printed {
        assert!(plain.starts_with(name), "{name}: {plain}");
        assert_no_secret(plain.as_bytes(), name, &[("value", FILE_SECRET)]);
        assert_no_secret(alternate.as_bytes(), name, &[("value", FILE_SECRET)]);
    }
    assert_eq!(printed[0].1, "SecretBytes");
    assert_eq!(printed[1].1, "SecretString");
    assert_eq!(printed[2].1, "RecipientKey");
    assert_eq!(
        printed[3].1,
        format!("AttestationDocumentBytes({} bytes)", FILE_SECRET.len())
    );
    assert_no_private_key(format!("{key:?}").as_bytes(), "RecipientKey");
    assert_no_secret(
        format!("{:?}", Some(&bytes)).as_bytes(),
        "Option<&SecretBytes>",
        &[("value", FILE_SECRET)],
    );
    assert_no_secret(
        format!("{key:?}").as_bytes(),
        "RecipientKey",
        &[("private key", &key_der)],
    );
}

/// Sends `signal` (a `kill` name such as `TERM`) to the process `pid`.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Waits up to 60 s for `path` to exist.
fn wait_for_file(path: &Path) {
    for _ in 0..6000 {
        if path.exists() {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} did not appear within 60 s", path.display());
}

/// Names of the staged files of any run in `folder`.
fn staged_files(folder: &Path) -> Vec<String> {
    fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".enclave-broker-") && name.ends_with(".tmp"))
        .collect()
}

/// Writes a policy of two file secrets, `first.txt` and `nested/second.txt`, for the sealing
/// KMS stand-in, which ignores the ciphertext.
fn two_file_policy(workspace: &Workspace) -> PathBuf {
    workspace.policy(
        &workspace.pcr0,
        json!([
            { "name": "first", "key": "app", "ciphertext": "AQIDBA==", "file": "first.txt" },
            { "name": "second", "key": "app", "ciphertext": "AQIDBA==", "file": "nested/second.txt" }
        ]),
    )
}

/// Runs a fetch of `policy` (a [`two_file_policy`]) that pauses before renaming staged
/// file `position`, sends `signal` there and returns the run's output.
fn fetch_interrupted_before_rename(
    workspace: &Workspace,
    kms: &SealingKms,
    policy: &Path,
    position: usize,
    signal: &str,
) -> Output {
    let markers = tempfile::tempdir().unwrap();
    let marker = markers.path().join("paused");
    let child = workspace
        .fetch_command(&kms.endpoint, policy, &["--out-dir", "out"])
        .env(
            "ENCLAVE_BROKER_TEST_PAUSE_BEFORE_RENAME",
            format!("{position}:{}", marker.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    wait_for_file(&marker);
    let out = workspace.out_dir();
    let staged = staged_files(&out).len() + staged_files(&out.join("nested")).len();
    assert_eq!(
        staged,
        2 - position,
        "the broker paused with its remaining files staged"
    );
    send_signal(child.id(), signal);
    child.wait_with_output().unwrap()
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the pause before renaming exists in debug builds only"
)]
fn sigterm_between_staging_and_renaming_removes_staged_files() {
    let workspace = local_workspace();
    let kms = start_sealing_kms(workspace.key_arn.clone(), FILE_SECRET);
    let policy = two_file_policy(&workspace);
    let before = snapshot(&workspace.dir);

    let output = fetch_interrupted_before_rename(&workspace, &kms, &policy, 0, "TERM");

    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "interrupted by SIGTERM during delivery; every staged file was removed and \
             nothing was delivered"
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "no staged file, no delivered file and no created folder remains"
    );
    assert_nothing_leaked(&workspace, &output, &[], &[("secret", FILE_SECRET)]);
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the pause before renaming exists in debug builds only"
)]
fn sigint_after_first_rename_restores_earlier_files() {
    let workspace = local_workspace();
    let kms = start_sealing_kms(workspace.key_arn.clone(), FILE_SECRET);
    let out = workspace.out_dir();
    fs::create_dir_all(out.join("nested")).unwrap();
    for folder in [&out, &out.join("nested")] {
        fs::set_permissions(folder, fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::write(out.join("first.txt"), b"earlier value").unwrap();
    let policy = two_file_policy(&workspace);
    let before = snapshot(&workspace.dir);

    let output = fetch_interrupted_before_rename(&workspace, &kms, &policy, 1, "INT");

    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted by SIGINT during delivery"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "the file renamed before the signal is replaced by the earlier one again"
    );
    assert_nothing_leaked(&workspace, &output, &[], &[("secret", FILE_SECRET)]);
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the pause before renaming exists in debug builds only"
)]
fn sighup_between_staging_and_renaming_removes_staged_files() {
    let workspace = local_workspace();
    let kms = start_sealing_kms(workspace.key_arn.clone(), FILE_SECRET);
    let policy = two_file_policy(&workspace);
    let before = snapshot(&workspace.dir);

    let output = fetch_interrupted_before_rename(&workspace, &kms, &policy, 0, "HUP");

    assert_eq!(output.status.code(), Some(129), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "interrupted by SIGHUP during delivery; every staged file was removed and \
             nothing was delivered"
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "no staged file, no delivered file and no created folder remains"
    );
    assert_nothing_leaked(&workspace, &output, &[], &[("secret", FILE_SECRET)]);
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the pause before renaming exists in debug builds only"
)]
fn sigquit_after_first_rename_restores_earlier_files() {
    let workspace = local_workspace();
    let kms = start_sealing_kms(workspace.key_arn.clone(), FILE_SECRET);
    let out = workspace.out_dir();
    fs::create_dir_all(out.join("nested")).unwrap();
    for folder in [&out, &out.join("nested")] {
        fs::set_permissions(folder, fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::write(out.join("first.txt"), b"earlier value").unwrap();
    let policy = two_file_policy(&workspace);
    let before = snapshot(&workspace.dir);

    let output = fetch_interrupted_before_rename(&workspace, &kms, &policy, 1, "QUIT");

    assert_eq!(output.status.code(), Some(131), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted by SIGQUIT during delivery"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        snapshot(&workspace.dir),
        before,
        "the file renamed before the signal is replaced by the earlier one again"
    );
    assert_nothing_leaked(&workspace, &output, &[], &[("secret", FILE_SECRET)]);
}

#[test]
fn sigterm_before_delivery_exits_143_with_nothing_written() {
    let workspace = local_workspace();
    // A KMS stand-in that accepts the connection and never responds, so the broker is
    // waiting for KMS when the signal comes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let policy = two_file_policy(&workspace);
    let before = snapshot(&workspace.dir);
    let child = workspace
        .fetch_command(&endpoint, &policy, &["--out-dir", "out"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    listener.set_nonblocking(true).unwrap();
    let mut connection = None;
    for _ in 0..6000 {
        match listener.accept() {
            Ok((stream, _)) => {
                connection = Some(stream);
                break;
            }
            Err(_) => thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    assert!(
        connection.is_some(),
        "the broker did not connect to KMS within 60 s"
    );
    send_signal(child.id(), "TERM");
    let output = child.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted by SIGTERM before delivery; nothing was delivered"),
        "{}",
        stderr(&output)
    );
    assert_eq!(snapshot(&workspace.dir), before);
}

#[test]
fn stale_staged_files_of_ended_runs_removed() {
    let workspace = local_workspace();
    let kms = start_sealing_kms(workspace.key_arn.clone(), FILE_SECRET);
    let policy = two_file_policy(&workspace);
    let out = workspace.out_dir();
    let nested = out.join("nested");
    fs::create_dir_all(&nested).unwrap();
    for folder in [&out, &nested] {
        fs::set_permissions(folder, fs::Permissions::from_mode(0o700)).unwrap();
    }
    // Process ids stay below 2^22 on Linux, so 4194305 never runs. This test's own process
    // runs while the broker does, so its staged files must stay.
    let dead = [
        out.join(".enclave-broker-4194305-0.tmp"),
        out.join(".enclave-broker-4194305-1.old"),
        nested.join(".enclave-broker-4194305-1.tmp"),
    ];
    let live = nested.join(format!(".enclave-broker-{}-0.tmp", std::process::id()));
    for path in dead.iter().chain([&live]) {
        fs::write(path, NESTED_FILE_SECRET).unwrap();
    }

    let output = workspace.fetch(&kms.endpoint, &policy, &["--out-dir", "out"]);

    assert_success(&output);
    for path in &dead {
        assert!(!path.exists(), "{} is removed", path.display());
    }
    assert!(live.exists(), "a running process's staged file stays");
    assert_eq!(fs::read(out.join("first.txt")).unwrap(), FILE_SECRET);
    assert_eq!(fs::read(nested.join("second.txt")).unwrap(), FILE_SECRET);
    let log = stderr(&output);
    assert!(
        log.contains("removed temporary files left by broker runs that no longer run"),
        "{log}"
    );
    assert!(log.contains("removed=2"), "two in the output folder: {log}");
    assert!(log.contains("removed=1"), "one in its subfolder: {log}");
}
