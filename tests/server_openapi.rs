//! docs/openapi.yaml stays true: its path, parameters, limits and error codes match the
//! server's, and every response status it lists is produced by a request of that kind, with
//! the content type it names. docs/field-failures.md names only tests that exist.

mod server_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use enclave_broker::attestation::source::{
    AttestFuture, AttestationRequest, Attester, AttesterError, MAX_FIELD_LEN,
};
use enclave_broker::server::query::{NONCE, PUBLIC_KEY, USER_DATA};
use enclave_broker::server::{ErrorCode, Limits, REPORT_PATH};
use server_common::{RawResponse, TestServer, get, get_with_host, request};
use yaml_rust2::{Yaml, YamlLoader};

fn spec() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn operation(spec: &Yaml) -> &Yaml {
    let server_url = spec["servers"][0]["url"].as_str().unwrap();
    let base_path = server_url.trim_start_matches("http://127.0.0.1:50123");
    let paths = spec["paths"].as_hash().unwrap();
    assert_eq!(paths.len(), 1);
    let (path, item) = paths.iter().next().unwrap();
    assert_eq!(
        format!("{base_path}{}", path.as_str().unwrap()),
        REPORT_PATH
    );
    let methods: Vec<_> = item.as_hash().unwrap().keys().collect();
    assert_eq!(methods, vec![&Yaml::String("get".to_owned())]);
    &item["get"]
}

#[test]
fn parameters_match_server() {
    let spec = spec();
    let parameters = operation(&spec)["parameters"].as_vec().unwrap();
    let names: Vec<_> = parameters
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![PUBLIC_KEY, USER_DATA, NONCE]);

    let longest = URL_SAFE.encode(vec![0u8; MAX_FIELD_LEN]).len() as i64;
    let shortest = URL_SAFE_NO_PAD.encode([0u8]).len() as i64;
    for parameter in parameters {
        let name = parameter["name"].as_str().unwrap();
        assert_eq!(parameter["in"].as_str(), Some("query"), "{name}");
        assert_eq!(parameter["required"].as_bool(), Some(false), "{name}");
        assert_eq!(
            parameter["schema"]["maxLength"].as_i64(),
            Some(longest),
            "{name}"
        );
        assert_eq!(
            parameter["schema"]["minLength"].as_i64(),
            Some(shortest),
            "{name}"
        );
    }
}

#[test]
fn error_codes_match_server() {
    let spec = spec();
    let pattern = spec["components"]["schemas"]["Error"]["properties"]["error"]["pattern"]
        .as_str()
        .unwrap();
    let inner = pattern
        .strip_prefix("^(")
        .and_then(|rest| rest.strip_suffix("): "))
        .unwrap();
    let documented: BTreeSet<&str> = inner.split('|').collect();
    let served: BTreeSet<&str> = [
        ErrorCode::InvalidParameter,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UriTooLong,
        ErrorCode::MisdirectedRequest,
        ErrorCode::AttestationFailed,
        ErrorCode::AttesterTimeout,
    ]
    .into_iter()
    .map(ErrorCode::as_str)
    .collect();
    assert_eq!(documented, served);
}

struct Fails;

impl Attester for Fails {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async { Err(AttesterError::Simulator("failed".to_owned())) })
    }

    fn name(&self) -> &'static str {
        "fails"
    }
}

struct NeverReturns;

impl Attester for NeverReturns {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(std::future::pending())
    }

    fn name(&self) -> &'static str {
        "never"
    }
}

/// Produces a response of each documented status.
async fn response_for(status: &str) -> RawResponse {
    let server = TestServer::sim().await;
    match status {
        "200" => server.report("nonce=AQ").await,
        "400" => server.report("nonce=").await,
        "404" => get(server.addr, "/elsewhere").await,
        "405" => request(server.addr, "POST", REPORT_PATH).await,
        "414" => server.report(&"a".repeat(9000)).await,
        "421" => get_with_host(server.addr, REPORT_PATH, Some("evil.example:50123")).await,
        "431" => server.report(&"a".repeat(20_000)).await,
        "500" => {
            let failing = TestServer::start(Arc::new(Fails), Limits::default()).await;
            failing.report("").await
        }
        "503" => {
            let limits = Limits {
                request_timeout: Duration::from_millis(100),
                ..Limits::default()
            };
            let hanging = TestServer::start(Arc::new(NeverReturns), limits).await;
            hanging.report("").await
        }
        other => panic!("docs/openapi.yaml lists status {other}, which no test request produces"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_status_is_served() {
    let spec = spec();
    let responses = operation(&spec)["responses"].as_hash().unwrap();
    let statuses: Vec<&str> = responses.keys().map(|key| key.as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        vec![
            "200", "400", "404", "405", "414", "421", "431", "500", "503"
        ]
    );

    for (status, described) in responses {
        let status = status.as_str().unwrap();
        let response = response_for(status).await;
        assert_eq!(response.status.to_string(), status);

        let content_types: Vec<&str> = described["content"]
            .as_hash()
            .map(|content| content.keys().map(|key| key.as_str().unwrap()).collect())
            .unwrap_or_default();
        match content_types.as_slice() {
            [] => assert!(response.body.is_empty(), "{status}"),
            [content_type] => {
                assert_eq!(
                    response.header("content-type"),
                    Some(*content_type),
                    "{status}"
                )
            }
            many => panic!("{status}: more than one content type: {many:?}"),
        }
        if content_types == ["application/json"] {
            let code = response.error();
            let prefix = code.split(':').next().unwrap();
            assert!(
                described["description"].as_str().unwrap().contains(prefix),
                "{status}: description does not name {prefix}"
            );
        }
    }
}

/// Test references in docs/field-failures.md: backticked `PATH::NAME` spans whose PATH
/// contains a `/`, with the line they are on. Spans such as `KmsClient::decrypt_for_recipient`
/// name code, not tests, and are skipped.
fn field_failure_references(text: &str) -> Vec<(usize, String, String)> {
    let mut references = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        // Odd-numbered pieces of a split on backticks are the code spans.
        for span in line.split('`').skip(1).step_by(2) {
            let Some((path, name)) = span.rsplit_once("::") else {
                continue;
            };
            if path.contains('/') {
                references.push((line_index + 1, path.to_owned(), name.to_owned()));
            }
        }
    }
    references
}

#[test]
fn field_failure_map_names_existing_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/field-failures.md")).unwrap();
    let references = field_failure_references(&text);
    assert!(
        references.len() > 50,
        "only {} references found",
        references.len()
    );

    for (line, path, name) in &references {
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        assert!(is_name, "line {line}: {name:?} is not a test name");
        let source = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|error| panic!("line {line}: cannot read {path}: {error}"));
        let found = if path.ends_with(".rs") {
            source.contains(&format!("fn {name}("))
        } else if path.ends_with(".tftest.hcl") {
            source.contains(&format!("run \"{name}\" {{"))
        } else {
            panic!("line {line}: {path} is neither a Rust file nor a Terraform test file");
        };
        assert!(found, "line {line}: {path} has no test {name}");
    }
}

#[test]
fn every_field_failure_names_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/field-failures.md")).unwrap();
    let sections: Vec<&str> = text.split("\n## ").skip(1).collect();
    assert!(
        !sections.is_empty(),
        "no sections in docs/field-failures.md"
    );
    for section in sections {
        let heading = section.lines().next().unwrap_or_default();
        assert!(
            !field_failure_references(section).is_empty(),
            "section {heading:?} names no test"
        );
    }
}
