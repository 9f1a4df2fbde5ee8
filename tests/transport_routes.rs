//! The routed transport: connections to a host name that does not resolve reach KMS
//! through `--route`, TLS runs end to end through the parent-side proxy with the original
//! host as server name, and a destination without a route is refused.

mod support;

use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use enclave_broker::proxy::{Proxy, ProxyConfig};
use enclave_broker::transport::{Route, RoutedHttpClient, SystemConnector, TlsRoots};

async fn setup_policy(dir: &std::path::Path, endpoint: &str) -> (std::path::PathBuf, String) {
    let sim = sim_init(&dir.join("sim"), &[]);
    let client = kms_client(endpoint);
    let key_arn = create_key(&client).await;
    let ciphertext = encrypt(&client, &key_arn, b"routed-secret", &[]).await;
    let policy = json!({
        "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
        "keys": { "app": { "key_id": key_arn, "allow": [ { "pcrs": { "0": sim["pcrs"]["0"] } } ] } },
        "secrets": [ { "name": "db", "key": "app", "ciphertext": ciphertext, "file": "db" } ],
    });
    (write_policy(dir, &policy), key_arn)
}

fn localstack_port(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_secret_through_route_to_unresolvable_host() {
    let endpoint = localstack_endpoint();
    let root = tempfile::tempdir().unwrap();
    let (policy, _) = setup_policy(root.path(), &endpoint).await;
    let route = format!("kms.test:4566=tcp:127.0.0.1:{}", localstack_port(&endpoint));

    let output = fetch_to_files(
        "http://kms.test:4566",
        &root.path().join("sim"),
        &policy,
        &root.path().join("out"),
    )
    .args(["--route", &route])
    .output()
    .unwrap();

    assert_success(&output);
    assert_eq!(
        std::fs::read(root.path().join("out/db")).unwrap(),
        b"routed-secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_destination_without_route() {
    let endpoint = localstack_endpoint();
    let root = tempfile::tempdir().unwrap();
    let (policy, _) = setup_policy(root.path(), &endpoint).await;

    let output = fetch_to_files(
        "http://kms.test:4566",
        &root.path().join("sim"),
        &policy,
        &root.path().join("out"),
    )
    .args(["--route", "other.test:443=tcp:127.0.0.1:9"])
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no route for kms.test:4566"),
        "{}",
        stderr(&output)
    );
    assert!(!root.path().join("out").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_route_target_when_connection_is_refused() {
    let endpoint = localstack_endpoint();
    let root = tempfile::tempdir().unwrap();
    let (policy, _) = setup_policy(root.path(), &endpoint).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let route = format!("kms.test:4566=tcp:127.0.0.1:{closed}");

    let output = fetch_to_files(
        "http://kms.test:4566",
        &root.path().join("sim"),
        &policy,
        &root.path().join("out"),
    )
    .args(["--route", &route])
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("tcp:127.0.0.1:{closed}")),
        "{message}"
    );
    assert!(message.contains("route for kms.test:4566"), "{message}");
}

/// A one-shot HTTPS stand-in for KMS with a certificate for `name`, signed by a test CA.
/// Returns the CA certificate (DER), the port, and a handle yielding the received request.
async fn start_tls_stub(name: &str) -> (Vec<u8>, u16, tokio::task::JoinHandle<String>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return String::new();
        };
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        // Read until the end of the headers plus the body length they announce.
        loop {
            let read = tls.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length || read == 0 {
                    break;
                }
            }
        }
        let body = json!({ "__type": "AccessDeniedException", "message": "stub" }).to_string();
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(response.as_bytes()).await.unwrap();
        tls.shutdown().await.ok();
        String::from_utf8_lossy(&received).into_owned()
    });
    (ca.der().to_vec(), port, handle)
}

fn routed_kms_client(ca: Vec<u8>, route: &str, endpoint: &str) -> aws_sdk_kms::Client {
    let route: Route = route.parse().unwrap();
    let client = RoutedHttpClient::new(
        &[route],
        TlsRoots::Custom(vec![ca]),
        Arc::new(SystemConnector),
    )
    .unwrap();
    let credentials = aws_sdk_kms::config::Credentials::new("test", "test", None, None, "tests");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .http_client(client.into_shared())
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// Starts the parent-side proxy in this process with one TCP route to 127.0.0.1:`port`
/// and returns the port it listens on. It serves until the test ends.
async fn start_proxy_to(port: u16) -> u16 {
    let config = ProxyConfig::from_toml_str(&format!(
        "[[route]]\nlisten = \"tcp:127.0.0.1:0\"\nupstream = \"127.0.0.1:{port}\"\n"
    ))
    .unwrap();
    let bound = Proxy::new().bind(&config).await.unwrap();
    let listen_port = bound.local_addrs()[0].1.as_tcp().unwrap().port();
    tokio::spawn(bound.serve(std::future::pending()));
    listen_port
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_tls_through_proxy_with_original_host_name() {
    let (ca, server_port, server) = start_tls_stub("kms.test").await;
    let port = start_proxy_to(server_port).await;
    let client = routed_kms_client(
        ca,
        &format!("kms.test:443=tcp:127.0.0.1:{port}"),
        "https://kms.test",
    );

    let error = client.list_keys().send().await.unwrap_err();

    let service = error.into_service_error();
    assert_eq!(
        aws_sdk_kms::error::ProvideErrorMetadata::code(&service),
        Some("AccessDeniedException")
    );
    let request = server.await.unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains("\r\nhost: kms.test\r\n"),
        "{request}"
    );
    assert!(
        request.starts_with("POST / HTTP/1.1\r\n"),
        "origin-form request line: {request}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_certificate_for_another_host() {
    let (ca, server_port, _server) = start_tls_stub("other.test").await;
    let port = start_proxy_to(server_port).await;
    let client = routed_kms_client(
        ca,
        &format!("kms.test:443=tcp:127.0.0.1:{port}"),
        "https://kms.test",
    );

    let error = client.list_keys().send().await.unwrap_err();

    // The error names the host the broker requested and the name the certificate covers.
    let message = aws_sdk_kms::error::DisplayErrorContext(&error).to_string();
    assert!(message.contains("TLS with kms.test"), "{message}");
    assert!(
        message.contains("certificate not valid for name \"kms.test\""),
        "{message}"
    );
    assert!(message.contains("other.test"), "{message}");
}

#[test]
fn refuses_empty_root_store() {
    let error = RoutedHttpClient::new(&[], TlsRoots::Custom(Vec::new()), Arc::new(SystemConnector))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no trusted CA roots loaded; TLS to KMS cannot be checked"
    );
}

#[test]
fn refuses_two_routes_for_one_destination() {
    let routes: Vec<Route> = [
        "kms.test:443=tcp:127.0.0.1:1",
        "KMS.test:443=tcp:127.0.0.1:2",
    ]
    .iter()
    .map(|value| value.parse().unwrap())
    .collect();
    let error =
        RoutedHttpClient::new(&routes, TlsRoots::Bundled, Arc::new(SystemConnector)).unwrap_err();
    assert!(error.to_string().contains("two routes for"));
}
