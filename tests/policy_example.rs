//! `policies/example.json` loads in the layout the local demo uses: the policy file with
//! `sim/root.pem` and `secrets/*.kms` beside it.

use std::path::Path;

use enclave_broker::attestation::pcr::PcrIndex;
use enclave_broker::policy::{Decision, ReleasePolicy, TrustRootSpec, evaluate};

/// A real certificate (the AWS Nitro Enclaves root), since the loader parses dev roots.
const PEM: &str = include_str!("fixtures/nitro/aws_nitro_enclaves_root_g1.pem");

/// Copies the example into a fresh folder with the files it names, and loads it from there.
fn load_example_copy() -> (tempfile::TempDir, ReleasePolicy) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/example.json");
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.json");
    std::fs::copy(&example, &policy_path).unwrap();
    std::fs::create_dir(dir.path().join("sim")).unwrap();
    std::fs::write(dir.path().join("sim/root.pem"), PEM).unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/db-password.kms"), b"db blob").unwrap();
    std::fs::write(dir.path().join("secrets/api-token.kms"), b"api blob").unwrap();

    let policy = ReleasePolicy::load(&policy_path).unwrap();
    (dir, policy)
}

#[test]
fn example_loads_with_demo_files_beside_it() {
    let (dir, policy) = load_example_copy();

    assert!(policy.has_development_root());
    assert_eq!(
        policy.trust_roots(),
        [TrustRootSpec::DevRootPem {
            path: dir.path().join("sim/root.pem"),
            pem: PEM.as_bytes().to_vec(),
        }]
    );
    let rule = policy.key_rule("app").unwrap();
    assert!(rule.is_key_arn());
    assert!(!rule.allow_debug());

    let names: Vec<&str> = policy.secrets().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["DB_PASSWORD", "api-token"]);
    assert_eq!(policy.secrets()[0].ciphertext(), b"db blob");
    assert_eq!(policy.secrets()[0].env(), Some("DB_PASSWORD"));
    assert_eq!(policy.secrets()[1].file().unwrap().as_str(), "api/token");
}

#[test]
fn example_allows_its_own_pcrs() {
    let (_dir, policy) = load_example_copy();
    let rule = policy.key_rule("app").unwrap();

    let mut pcrs = rule.allow()[0].pcrs().clone();
    pcrs.insert(
        PcrIndex::new(4).unwrap(),
        enclave_broker::attestation::pcr::PcrValue::from_bytes(&[4; 48]).unwrap(),
    );

    assert_eq!(
        evaluate("app", rule, &pcrs, false),
        Decision::Allow { entry: 0 }
    );
}

#[test]
fn example_fails_without_its_files() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/example.json");
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.json");
    std::fs::copy(&example, &policy_path).unwrap();

    let error = ReleasePolicy::load(&policy_path).unwrap_err();

    let paths: Vec<&str> = error.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "trust.roots[0].dev_root_pem",
            "secrets[0].ciphertext_file",
            "secrets[1].ciphertext_file"
        ]
    );
}
