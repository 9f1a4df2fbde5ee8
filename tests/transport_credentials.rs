//! Credentials inside the enclave come from instance metadata reached through a route,
//! and are fetched again when they expire instead of being kept from boot. Credentials
//! without a session token, or an instance without a role, stop the run before any KMS
//! call. A fake IMDSv2 server hands out short-lived credentials, each with a new access key
//! id. A recording relay in front of LocalStack shows which key signed each KMS call.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::*;

/// Request line, headers (lowercased names) and body of one HTTP/1.1 request.
type Request = (String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, headers, body))
}

fn respond(stream: &mut TcpStream, status: &str, extra_headers: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra_headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// One request the fake instance metadata service received.
#[derive(Debug, Clone)]
struct ImdsRequest {
    method: String,
    path: String,
    /// Whether the request carried an IMDSv2 session token (`x-aws-ec2-metadata-token`).
    has_token: bool,
}

/// A fake instance metadata service (IMDSv2) on 127.0.0.1 for the role
/// `enclave-parent-role`.
struct FakeImds {
    port: u16,
    /// Role credentials handed out so far.
    issued: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<ImdsRequest>>>,
}

/// What the fake instance metadata service hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImdsRole {
    /// Role credentials that expire two seconds after they are issued.
    Credentials,
    /// The same credentials without their `Token` field.
    CredentialsWithoutToken,
    /// No role: the instance has no instance profile, so the role listing is a 404.
    None,
}

/// Starts a fake IMDSv2 that serves what `role` describes.
fn start_fake_imds(role: ImdsRole) -> FakeImds {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let issued = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (counter, log) = (Arc::clone(&issued), Arc::clone(&requests));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((line, headers, _)) = read_request(&mut stream) else {
                continue;
            };
            let method = line.split_whitespace().next().unwrap_or("").to_owned();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let has_token = headers.iter().any(|(name, value)| {
                name == "x-aws-ec2-metadata-token" && value == "fake-imds-token"
            });
            log.lock().unwrap().push(ImdsRequest {
                method: method.clone(),
                path: path.clone(),
                has_token,
            });
            if method == "PUT" && path == "/latest/api/token" {
                respond(
                    &mut stream,
                    "200 OK",
                    "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n",
                    "fake-imds-token",
                );
            } else if !has_token {
                respond(&mut stream, "401 Unauthorized", "", "");
            } else if role == ImdsRole::None {
                respond(&mut stream, "404 Not Found", "", "");
            } else if path == "/latest/meta-data/iam/security-credentials/" {
                respond(&mut stream, "200 OK", "", "enclave-parent-role");
            } else if path == "/latest/meta-data/iam/security-credentials/enclave-parent-role" {
                let number = counter.fetch_add(1, Ordering::SeqCst);
                let expiration = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
                let mut body = json!({
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": format!("ASIAFAKEIMDS{number:08}"),
                    "SecretAccessKey": "fake-secret",
                    "Token": "fake-session-token",
                    "Expiration": expiration
                        .replace_nanosecond(0)
                        .unwrap()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap(),
                });
                if role == ImdsRole::CredentialsWithoutToken {
                    body.as_object_mut().unwrap().remove("Token");
                }
                respond(&mut stream, "200 OK", "", &body.to_string());
            } else {
                respond(&mut stream, "404 Not Found", "", "");
            }
        }
    });
    FakeImds {
        port,
        issued,
        requests,
    }
}

/// Builds a broker command whose only credentials source is instance metadata, reached
/// through a route to `imds_port`. KMS is `http://kms.test:80`, routed to `kms_port`.
fn broker_with_instance_credentials(
    dir: &std::path::Path,
    policy: &std::path::Path,
    imds_port: u16,
    kms_port: u16,
) -> std::process::Command {
    // No static credentials: the default chain reaches instance metadata, and only through
    // the route (the routed client refuses every destination without one).
    let mut command = broker("http://kms.test:80");
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "false")
        .args(["fetch", "--attester"])
        .arg(format!("sim={}", dir.join("sim").display()))
        .arg("--policy")
        .arg(policy)
        .arg("--out-dir")
        .arg(dir.join("out"))
        .arg("--route")
        .arg(format!("169.254.169.254:80=tcp:127.0.0.1:{imds_port}"))
        .arg("--route")
        .arg(format!("kms.test:80=tcp:127.0.0.1:{kms_port}"));
    command
}

/// Forwards each request to LocalStack and records the access key id that signed it.
fn start_recording_relay(upstream_port: u16, signers: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            let Some((line, headers, body)) = read_request(&mut client) else {
                continue;
            };
            if let Some((_, authorization)) =
                headers.iter().find(|(name, _)| name == "authorization")
            {
                let key = authorization
                    .split("Credential=")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .unwrap_or("")
                    .to_owned();
                signers.lock().unwrap().push(key);
            }
            let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
            let mut request = line.into_bytes();
            for (name, value) in &headers {
                if name != "connection" {
                    request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
            }
            request.extend_from_slice(b"connection: close\r\n\r\n");
            request.extend_from_slice(&body);
            upstream.write_all(&request).unwrap();
            let mut response = Vec::new();
            let _ = upstream.read_to_end(&mut response);
            let _ = client.write_all(&response);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshes_expired_instance_credentials_between_kms_calls() {
    let endpoint = localstack_endpoint();
    let localstack_port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let root = tempfile::tempdir().unwrap();
    let sim = sim_init(&root.path().join("sim"), &[]);
    let setup_client = kms_client(&endpoint);
    let key_arn = create_key(&setup_client).await;
    let first = encrypt(&setup_client, &key_arn, b"first", &[]).await;
    let second = encrypt(&setup_client, &key_arn, b"second", &[]).await;
    let policy = write_policy(
        root.path(),
        &json!({
            "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
            "keys": { "app": { "key_id": key_arn, "allow": [ { "pcrs": { "0": sim["pcrs"]["0"] } } ] } },
            "secrets": [
                { "name": "one", "key": "app", "ciphertext": first, "file": "one" },
                { "name": "two", "key": "app", "ciphertext": second, "file": "two" }
            ],
        }),
    );

    let imds = start_fake_imds(ImdsRole::Credentials);
    let signers = Arc::new(Mutex::new(Vec::new()));
    let relay_port = start_recording_relay(localstack_port, Arc::clone(&signers));

    let output = broker_with_instance_credentials(root.path(), &policy, imds.port, relay_port)
        .output()
        .unwrap();

    assert_success(&output);
    assert_eq!(
        std::fs::read(root.path().join("out/two")).unwrap(),
        b"second"
    );
    let signers = signers.lock().unwrap();
    assert_eq!(signers.len(), 2, "{signers:?}");
    assert!(
        signers.iter().all(|key| key.starts_with("ASIAFAKEIMDS")),
        "{signers:?}"
    );
    assert_ne!(
        signers[0], signers[1],
        "the second call used freshly fetched credentials"
    );
    assert!(imds.issued.load(Ordering::SeqCst) >= 2);

    // Only the role credentials path, and only with an IMDSv2 session token: never the
    // instance identity credentials, which KMS rejects.
    for request in imds.requests.lock().unwrap().iter() {
        if request.method == "PUT" {
            assert_eq!(request.path, "/latest/api/token", "{request:?}");
        } else {
            assert!(request.has_token, "{request:?}");
            assert!(
                request
                    .path
                    .starts_with("/latest/meta-data/iam/security-credentials/"),
                "{request:?}"
            );
        }
    }
}

/// Runs a release whose only credentials source is a fake IMDS that serves `role`, with a
/// stub KMS. Asserts that it fails with exit code 3 before any KMS call, and returns stderr.
fn credentials_failure(role: ImdsRole) -> String {
    let root = tempfile::tempdir().unwrap();
    let sim = sim_init(&root.path().join("sim"), &[]);
    let policy = write_policy(
        root.path(),
        &json!({
            "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
            "keys": { "app": {
                "key_id": "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                "allow": [ { "pcrs": { "0": sim["pcrs"]["0"] } } ] } },
            "secrets": [ { "name": "one", "key": "app", "ciphertext": "AQIDBA==", "file": "one" } ],
        }),
    );
    let imds = start_fake_imds(role);
    let kms = stub_kms::StubKms::start(400, "{}".to_owned());

    let output =
        broker_with_instance_credentials(root.path(), &policy, imds.port, kms.address.port())
            .output()
            .unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        kms.requests.lock().unwrap().is_empty(),
        "KMS is never called"
    );
    assert!(!root.path().join("out").exists());
    stderr(&output)
}

#[test]
fn rejects_instance_credentials_without_session_token_before_kms() {
    let message = credentials_failure(ImdsRole::CredentialsWithoutToken);
    assert!(
        message.contains("could not load AWS credentials for KMS"),
        "{message}"
    );
    assert!(message.contains("`Token`"), "{message}");
}

#[test]
fn reports_missing_instance_profile_role_before_kms() {
    let message = credentials_failure(ImdsRole::None);
    assert!(
        message.contains("could not load AWS credentials for KMS"),
        "{message}"
    );
    assert!(message.contains("instance profile role"), "{message}");
}
