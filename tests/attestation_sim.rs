//! The development simulator: documents it issues verify with its root only, its directory
//! keeps the CA across `init`, and its defaults are not debug mode.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};
use enclave_broker::attestation::sim::{SIM_MODULE_ID, SimError, SimulatedEnclave};
use enclave_broker::attestation::verify::{TrustRoot, VerifyError, VerifyOptions, verify};

/// 2025-06-01T12:00:00Z, the document time used throughout.
const NOW_MS: u64 = 1_748_779_200_000;

fn pcr(index: u64) -> PcrIndex {
    PcrIndex::new(index).unwrap()
}

fn sim_options(sim: &SimulatedEnclave, time_ms: u64) -> VerifyOptions {
    let pem = std::fs::read(sim.root_pem_path()).unwrap();
    let root = TrustRoot::from_pem(&pem, "sim".to_owned()).unwrap();
    let mut options = VerifyOptions::new(time_ms);
    options.trust_roots = vec![root];
    options
}

#[test]
fn simulated_document_verifies_with_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let public_key = vec![0x30; 294];
    let nonce = vec![7; 32];
    let bytes = sim
        .attest(Some(&public_key), Some(b"hello"), Some(&nonce), NOW_MS)
        .unwrap();

    let mut options = sim_options(&sim, NOW_MS + 1_000);
    options.expected_nonce = Some(nonce.clone());
    options.expected_public_key = Some(public_key.clone());
    options.max_age = Some(std::time::Duration::from_secs(300));
    options.expected_pcrs = sim
        .pcrs()
        .iter()
        .filter(|(index, _)| [0, 1, 2, 8].contains(&index.get()))
        .map(|(index, value)| (*index, value.clone()))
        .collect();
    let verified = verify(&bytes, &options).unwrap();

    let document = verified.document();
    assert_eq!(verified.trust_root_label(), "sim");
    assert_eq!(document.module_id(), SIM_MODULE_ID);
    assert_eq!(document.timestamp_ms(), NOW_MS);
    assert_eq!(document.pcrs(), sim.pcrs());
    assert_eq!(document.public_key(), Some(public_key.as_slice()));
    assert_eq!(document.user_data(), Some(&b"hello"[..]));
    assert_eq!(document.nonce(), Some(nonce.as_slice()));
    assert_eq!(document.cabundle().len(), 4);
    assert!(!document.is_debug_mode());
}

#[test]
fn simulated_document_has_nsm_shape() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let bytes = sim.attest(None, None, None, NOW_MS).unwrap();
    // Untagged array of 4, protected header A1 01 38 22, empty unprotected map.
    assert_eq!(bytes[..7], [0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0]);
    // Definite-length payload map of 9 entries, module_id first.
    let payload_start = 7 + 3;
    assert_eq!(bytes[payload_start], 0xa9);
    let document = verify(&bytes, &sim_options(&sim, NOW_MS)).unwrap();
    assert_eq!(document.document().public_key(), None);
    assert_eq!(document.document().user_data(), None);
    assert_eq!(document.document().nonce(), None);
    assert_eq!(document.document().pcrs().len(), 16);
    assert!(
        document
            .document()
            .pcrs()
            .values()
            .all(|value| value.as_bytes().len() == 48)
    );
}

#[test]
fn simulated_leaf_lives_three_hours() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let bytes = sim.attest(None, None, None, NOW_MS).unwrap();
    let verified = verify(&bytes, &sim_options(&sim, NOW_MS)).unwrap();
    let leaf = verified.certificates().last().unwrap();
    assert_eq!(leaf.not_before_ms, NOW_MS - 60_000);
    assert_eq!(leaf.not_after_ms, NOW_MS + 3 * 3600 * 1000);

    let mut options = sim_options(&sim, NOW_MS + 3 * 3600 * 1000 + 61_000);
    options.skew = std::time::Duration::from_secs(60);
    let error = verify(&bytes, &options).unwrap_err();
    assert_eq!(error.rule(), "chain.validity");
    assert!(error.to_string().starts_with("leaf certificate"), "{error}");
}

#[test]
fn simulated_document_rejected_with_aws_root() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let bytes = sim.attest(None, None, None, NOW_MS).unwrap();
    let error = verify(&bytes, &VerifyOptions::new(NOW_MS)).unwrap_err();
    assert_eq!(error.rule(), "chain.root");
    assert!(
        error
            .to_string()
            .starts_with("cabundle[0] is not a trusted root (SHA-256 "),
        "{error}"
    );
}

#[test]
fn reinit_keeps_root_replaces_pcrs() {
    let dir = tempfile::tempdir().unwrap();
    let first = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let root_before = std::fs::read(first.root_pem_path()).unwrap();
    let pcrs_before = first.pcrs().clone();

    let new_pcr8 = PcrValue::parse_sha384_hex(&"87".repeat(48)).unwrap();
    let second =
        SimulatedEnclave::init(dir.path(), &BTreeMap::from([(pcr(8), new_pcr8.clone())])).unwrap();

    assert_eq!(std::fs::read(second.root_pem_path()).unwrap(), root_before);
    assert_eq!(second.pcrs()[&pcr(8)], new_pcr8);
    for (index, value) in &pcrs_before {
        if index.get() != 8 {
            assert_eq!(&second.pcrs()[index], value, "PCR{index}");
        }
    }

    // A document from a fresh load verifies with the root written by the first init.
    let loaded = SimulatedEnclave::load(dir.path()).unwrap();
    assert_eq!(loaded.pcrs(), second.pcrs());
    let bytes = loaded.attest(None, None, None, NOW_MS).unwrap();
    let verified = verify(&bytes, &sim_options(&first, NOW_MS)).unwrap();
    assert_eq!(verified.document().pcr(pcr(8)), Some(&new_pcr8));
}

#[test]
fn default_pcrs_are_nonzero_for_image_and_signer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    assert_eq!(sim.pcrs().len(), 16);
    for (index, value) in sim.pcrs() {
        let expected_nonzero = [0, 1, 2, 3, 4, 8].contains(&index.get());
        assert_eq!(!value.is_zero(), expected_nonzero, "PCR{index}");
    }
    let expected_pcr0 =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, b"enclave-broker sim PCR0");
    assert_eq!(sim.pcrs()[&pcr(0)].as_bytes(), expected_pcr0.as_ref());
}

#[test]
fn debug_pcrs_given_to_init_make_debug_document() {
    let dir = tempfile::tempdir().unwrap();
    let zero = PcrValue::from_bytes(&[0; 48]).unwrap();
    let pcrs = BTreeMap::from([
        (pcr(0), zero.clone()),
        (pcr(1), zero.clone()),
        (pcr(2), zero),
    ]);
    let sim = SimulatedEnclave::init(dir.path(), &pcrs).unwrap();
    let bytes = sim.attest(None, None, None, NOW_MS).unwrap();
    let verified = verify(&bytes, &sim_options(&sim, NOW_MS)).unwrap();
    assert!(verified.document().is_debug_mode());
    assert!(!verified.document().pcr(pcr(4)).unwrap().is_zero());
}

#[test]
fn sim_signed_1025_byte_user_data_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let bytes = sim.attest(None, Some(&[1; 1025]), None, NOW_MS).unwrap();
    let error = verify(&bytes, &sim_options(&sim, NOW_MS)).unwrap_err();
    assert_eq!(error.rule(), "payload.field");
    assert_eq!(
        error.to_string(),
        "payload field user_data is 1025 bytes; the limit is 1024"
    );

    let accepted = sim.attest(Some(&[2; 1024]), Some(&[1; 1024]), Some(&[3; 1024]), NOW_MS);
    assert!(verify(&accepted.unwrap(), &sim_options(&sim, NOW_MS)).is_ok());
}

#[test]
fn load_of_missing_dir_suggests_init() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let error = SimulatedEnclave::load(&missing).err().unwrap();
    assert!(matches!(error, SimError::NotInitialized { .. }));
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "enclave-broker sim init --dir {}",
            missing.display()
        )),
        "{message}"
    );
}

#[test]
fn init_creates_private_files() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sim");
    SimulatedEnclave::init(&dir, &BTreeMap::new()).unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("root-key.pem"), 0o600);
    assert_eq!(mode("pcrs.json"), 0o600);
    assert_eq!(mode("root.pem"), 0o644);
    let key = std::fs::read_to_string(dir.join("root-key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn load_rejects_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let key = dir.path().join("root-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = SimulatedEnclave::load(dir.path()).err().unwrap();
    assert!(
        matches!(error, SimError::InsecurePermissions { .. }),
        "{error}"
    );
}

#[test]
fn init_rejects_sha256_sized_pcr() {
    let dir = tempfile::tempdir().unwrap();
    let short = PcrValue::from_bytes(&[1; 32]).unwrap();
    let error = SimulatedEnclave::init(dir.path(), &BTreeMap::from([(pcr(0), short)]))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "PCR0 is 32 bytes; the simulator uses 48-byte (SHA-384) PCRs"
    );
}

#[test]
fn untrusted_sim_root_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
    let bytes = sim.attest(None, None, None, NOW_MS).unwrap();
    let error: VerifyError = verify(&bytes, &VerifyOptions::new(NOW_MS)).unwrap_err();
    assert!(!error.is_malformed());
}

#[test]
fn init_error_on_corrupt_pcrs_names_repair() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sim");
    SimulatedEnclave::init(&dir, &BTreeMap::new()).unwrap();
    let pcrs_file = dir.join("pcrs.json");
    std::fs::write(&pcrs_file, b"{\"0\": \"not hex\"").unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_enclave-broker"))
        .args(["sim", "init", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("delete {}", pcrs_file.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("or the whole folder {}", dir.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("enclave-broker sim init --dir {}", dir.display())),
        "{stderr}"
    );

    // Following the advice repairs the folder and keeps the CA.
    let root = std::fs::read(dir.join("root.pem")).unwrap();
    std::fs::remove_file(&pcrs_file).unwrap();
    SimulatedEnclave::init(&dir, &BTreeMap::new()).unwrap();
    assert_eq!(std::fs::read(dir.join("root.pem")).unwrap(), root);
}

#[test]
fn load_error_on_corrupt_pcrs_names_repair() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sim");
    SimulatedEnclave::init(&dir, &BTreeMap::new()).unwrap();
    std::fs::write(dir.join("pcrs.json"), b"[]").unwrap();

    let error = SimulatedEnclave::load(&dir).err().unwrap();

    let message = error.to_string();
    assert!(message.contains("pcrs.json"), "{message}");
    assert!(
        message.contains("run `enclave-broker sim init"),
        "{message}"
    );
}
