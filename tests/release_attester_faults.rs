//! The main job when the attester fails or hangs: the run stops before KMS with exit
//! code 3 and a message naming the attester, and nothing is delivered.

use std::time::Duration;

use enclave_broker::attestation::source::{
    AttestFuture, AttestationRequest, Attester, AttesterError,
};
use enclave_broker::envelope::RsaBits;
use enclave_broker::kms::KmsSettings;
use enclave_broker::policy::ReleasePolicy;
use enclave_broker::release::{self, Delivery, ReleaseError, ReleaseOptions};

/// An attester whose document never arrives, like a stuck device.
struct HangingAttester;

impl Attester for HangingAttester {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(std::future::pending())
    }

    fn name(&self) -> &'static str {
        "hanging"
    }
}

/// An attester that fails at once.
struct FailingAttester;

impl Attester for FailingAttester {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async { Err(AttesterError::NsmUnavailable) })
    }

    fn name(&self) -> &'static str {
        "failing"
    }
}

fn options(dir: &std::path::Path, attester: Box<dyn Attester>) -> ReleaseOptions {
    let policy = serde_json::json!({
        "keys": { "app": { "key_id": "alias/app", "allow": [ { "pcrs": { "0": "11".repeat(48) } } ] } },
        "secrets": [ { "name": "db", "key": "app", "ciphertext": "AQIDBA==", "file": "db" } ],
    });
    let policy_path = dir.join("policy.json");
    std::fs::write(&policy_path, policy.to_string()).unwrap();
    ReleaseOptions {
        policy: ReleasePolicy::load(&policy_path).unwrap(),
        policy_path,
        attester,
        rsa_bits: RsaBits::Rsa2048,
        delivery: Delivery::Files {
            out_dir: dir.join("out"),
        },
        kms: KmsSettings {
            // Set here so the test does not depend on AWS_REGION; nothing reaches KMS.
            region: Some("us-east-1".to_owned()),
            ..KmsSettings::default()
        },
        routes: None,
        keygen_deadline: Duration::from_secs(60),
        attest_deadline: Duration::from_millis(200),
        skew: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stops_when_attester_hangs_past_deadline() {
    let dir = tempfile::tempdir().unwrap();

    let error = release::run(options(dir.path(), Box::new(HangingAttester)))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ReleaseError::AttesterTimeout { .. }),
        "{error}"
    );
    assert_eq!(error.exit_code(), 3);
    assert_eq!(
        error.to_string(),
        "attester hanging returned no document within 0.2 s"
    );
    assert!(!dir.path().join("out").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn stops_when_attester_fails() {
    let dir = tempfile::tempdir().unwrap();

    let error = release::run(options(dir.path(), Box::new(FailingAttester)))
        .await
        .unwrap_err();

    assert!(
        error.to_string().starts_with("attester failing failed: "),
        "{error}"
    );
    assert_eq!(error.exit_code(), 3);
    assert!(!dir.path().join("out").exists());
}
