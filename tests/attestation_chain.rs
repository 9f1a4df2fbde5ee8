//! Certificate chain profile: chains built here with rcgen, each breaking one rule, are
//! rejected with the rule and the certificate named.

mod attestation_common;

use attestation_common::encoded;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use enclave_broker::attestation::cbor::Encoder;
use enclave_broker::attestation::cose::{ES384_PROTECTED_HEADER, signature_input};
use enclave_broker::attestation::verify::{TrustRoot, VerifyError, VerifyOptions, verify};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
    PKCS_ECDSA_P521_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, RsaKeySize, SignatureAlgorithm,
};

/// 2025-06-01T12:00:00Z; rcgen's default validity (1975 to 4096) covers it.
const NOW_MS: u64 = 1_748_779_200_000;

struct Node {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn key(algorithm: &'static SignatureAlgorithm) -> KeyPair {
    if algorithm == &PKCS_RSA_SHA256 {
        return KeyPair::generate_rsa_for(algorithm, RsaKeySize::_2048).unwrap();
    }
    KeyPair::generate_for(algorithm).unwrap()
}

fn params(common_name: &str, is_ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.is_ca = is_ca;
    params
}

fn ca(path_length: Option<u8>) -> IsCa {
    IsCa::Ca(match path_length {
        Some(length) => BasicConstraints::Constrained(length),
        None => BasicConstraints::Unconstrained,
    })
}

fn root() -> Node {
    let params = params("test root", ca(None));
    let key = key(&PKCS_ECDSA_P384_SHA384);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Node { params, key, der }
}

fn issue(parent: &Node, params: CertificateParams, algorithm: &'static SignatureAlgorithm) -> Node {
    let key = key(algorithm);
    let issuer = Issuer::from_params(&parent.params, &parent.key);
    let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
    Node { params, key, der }
}

fn leaf_params() -> CertificateParams {
    params("test leaf", IsCa::ExplicitNoCa)
}

/// Builds a document whose cabundle is `chain` without its last element, the leaf. It is signed
/// with the leaf key when that is a P-384 key, and carries a zero signature otherwise.
fn document(chain: &[&Node]) -> Vec<u8> {
    let (leaf, bundle) = chain.split_last().unwrap();
    let mut payload = Encoder::new();
    payload.map(9);
    payload
        .text("module_id")
        .text("i-test0000000000000-enc0000000000000000");
    payload.text("digest").text("SHA384");
    payload.text("timestamp").unsigned(NOW_MS);
    payload.text("pcrs").map(1).unsigned(0).bytes(&[1; 48]);
    payload.text("certificate").bytes(&leaf.der);
    payload.text("cabundle").array(bundle.len());
    for node in bundle {
        payload.bytes(&node.der);
    }
    payload.text("public_key").null();
    payload.text("user_data").null();
    payload.text("nonce").null();
    let payload = payload.into_bytes();

    let signature =
        match EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, leaf.key.serialized_der())
        {
            Ok(key) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let input = signature_input(&ES384_PROTECTED_HEADER, &payload);
                key.sign(&rng, &input).unwrap().as_ref().to_vec()
            }
            Err(_) => vec![0; 96],
        };
    attestation_common::join_sign1(&ES384_PROTECTED_HEADER, &payload, &signature)
}

fn options(root: &Node) -> VerifyOptions {
    let mut options = VerifyOptions::new(NOW_MS);
    options.trust_roots =
        vec![TrustRoot::from_der(root.der.clone(), "test root".to_owned()).unwrap()];
    options
}

fn rejected(chain: &[&Node], root: &Node) -> VerifyError {
    match verify(&document(chain), &options(root)) {
        Ok(_) => panic!("chain was accepted"),
        Err(error) => error,
    }
}

#[test]
fn well_formed_chain_verifies() {
    let root = root();
    let intermediate = issue(
        &root,
        params("intermediate", ca(Some(0))),
        &PKCS_ECDSA_P384_SHA384,
    );
    let leaf = issue(&intermediate, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    let verified = verify(&document(&[&root, &intermediate, &leaf]), &options(&root)).unwrap();
    assert_eq!(verified.trust_root_label(), "test root");
    assert_eq!(verified.certificates().len(), 3);
}

#[test]
fn root_alone_can_issue_leaf() {
    let root = root();
    let leaf = issue(&root, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    assert!(verify(&document(&[&root, &leaf]), &options(&root)).is_ok());
}

#[test]
fn other_key_types_rejected() {
    let root = root();
    let cases = [
        (&PKCS_ECDSA_P256_SHA256, "EC curve 1.2.840.10045.3.1.7"),
        (&PKCS_ECDSA_P521_SHA384, "EC curve 1.3.132.0.35"),
        (&PKCS_ED25519, "algorithm 1.3.101.112"),
        (&PKCS_RSA_SHA256, "algorithm 1.2.840.113549.1.1.1"),
    ];
    for (algorithm, found) in cases {
        let leaf = issue(&root, leaf_params(), algorithm);
        let error = rejected(&[&root, &leaf], &root);
        assert_eq!(error.rule(), "chain.algorithm", "{found}: {error}");
        assert_eq!(
            error.to_string(),
            format!(
                "leaf certificate has a public key of {found}; expected EC P-384 (1.3.132.0.34)"
            )
        );
    }
}

#[test]
fn signature_algorithm_other_than_ecdsa_sha384_rejected() {
    let root = root();
    // A P-256 intermediate signs the leaf with ecdsa-with-SHA256; the intermediate is
    // rejected first, for its key.
    let intermediate = issue(
        &root,
        params("p256 intermediate", ca(None)),
        &PKCS_ECDSA_P256_SHA256,
    );
    let leaf = issue(&intermediate, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &intermediate, &leaf], &root);
    assert_eq!(error.rule(), "chain.algorithm");
    assert!(
        error
            .to_string()
            .starts_with("cabundle[1] has a public key of EC curve")
    );
}

#[test]
fn development_root_must_use_p384() {
    let params = params("p256 root", ca(None));
    let key = key(&PKCS_ECDSA_P256_SHA256);
    let pem = params.self_signed(&key).unwrap().pem();
    let error = TrustRoot::from_pem(pem.as_bytes(), "dev".to_owned()).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "trust root dev: certificate is signed with algorithm 1.2.840.10045.4.3.2"
        ),
        "{error}"
    );
}

#[test]
fn intermediate_without_ca_flag_rejected() {
    let root = root();
    for is_ca in [IsCa::ExplicitNoCa, IsCa::NoCa] {
        let intermediate = issue(&root, params("not a CA", is_ca), &PKCS_ECDSA_P384_SHA384);
        let leaf = issue(&intermediate, leaf_params(), &PKCS_ECDSA_P384_SHA384);
        let error = rejected(&[&root, &intermediate, &leaf], &root);
        assert_eq!(error.rule(), "chain.extension");
        assert_eq!(
            error.to_string(),
            "cabundle[1] (CN=not a CA) issues a certificate but basicConstraints does not have CA=true"
        );
    }
}

#[test]
fn path_length_constraint_enforced() {
    let root = root();
    let first = issue(&root, params("first", ca(Some(0))), &PKCS_ECDSA_P384_SHA384);
    let second = issue(&first, params("second", ca(None)), &PKCS_ECDSA_P384_SHA384);
    let leaf = issue(&second, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &first, &second, &leaf], &root);
    assert_eq!(error.rule(), "chain.extension");
    assert_eq!(
        error.to_string(),
        "cabundle[1] (CN=first) has pathLenConstraint 0, but 1 CA certificates follow it"
    );
}

#[test]
fn leaf_that_is_ca_rejected() {
    let root = root();
    let leaf = issue(&root, params("ca leaf", ca(None)), &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &leaf], &root);
    assert_eq!(
        error.to_string(),
        "leaf certificate (CN=ca leaf) is a CA (basicConstraints CA=true); expected an end-entity certificate"
    );
}

#[test]
fn unknown_critical_extension_rejected() {
    let root = root();
    let mut params = leaf_params();
    let mut extension =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);
    extension.set_criticality(true);
    params.custom_extensions = vec![extension];
    let leaf = issue(&root, params, &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &leaf], &root);
    assert_eq!(error.rule(), "chain.extension");
    assert!(
        error
            .to_string()
            .ends_with("has unknown critical extension 1.3.6.1.4.1.55555.1"),
        "{error}"
    );
}

#[test]
fn unknown_non_critical_extension_accepted() {
    let root = root();
    let mut params = leaf_params();
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 55555, 2],
        vec![0x05, 0x00],
    )];
    let leaf = issue(&root, params, &PKCS_ECDSA_P384_SHA384);
    assert!(verify(&document(&[&root, &leaf]), &options(&root)).is_ok());
}

#[test]
fn key_usage_must_allow_role() {
    let root = root();
    let mut intermediate_params = params("crl signer", ca(None));
    intermediate_params.key_usages = vec![KeyUsagePurpose::CrlSign];
    let intermediate = issue(&root, intermediate_params, &PKCS_ECDSA_P384_SHA384);
    let leaf = issue(&intermediate, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &intermediate, &leaf], &root);
    assert_eq!(
        error.to_string(),
        "cabundle[1] (CN=crl signer) issues a certificate but keyUsage lacks keyCertSign"
    );

    let mut leaf_params = leaf_params();
    leaf_params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let leaf = issue(&root, leaf_params, &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &leaf], &root);
    assert_eq!(error.rule(), "chain.extension");
    assert!(
        error
            .to_string()
            .contains("keyUsage without digitalSignature"),
        "{error}"
    );
}

#[test]
fn impostor_issuer_key_rejected() {
    let root = root();
    let impostor = {
        let key = key(&PKCS_ECDSA_P384_SHA384);
        let der = root.params.self_signed(&key).unwrap().der().to_vec();
        Node {
            params: root.params.clone(),
            key,
            der,
        }
    };
    let leaf = issue(&impostor, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &leaf], &root);
    assert_eq!(error.rule(), "chain.signature");
    assert_eq!(
        error.to_string(),
        "leaf certificate (CN=test leaf) is not signed by the key of cabundle[0]"
    );
}

#[test]
fn intermediate_not_yet_valid_rejected() {
    let root = root();
    let mut later = params("later", ca(None));
    later.not_before = rcgen::date_time_ymd(2030, 1, 1);
    let intermediate = issue(&root, later, &PKCS_ECDSA_P384_SHA384);
    let leaf = issue(&intermediate, leaf_params(), &PKCS_ECDSA_P384_SHA384);
    let error = rejected(&[&root, &intermediate, &leaf], &root);
    assert_eq!(error.rule(), "chain.validity");
    assert!(
        error.to_string().starts_with(
            "cabundle[1] (CN=later) is not valid before 2030-01-01T00:00:00Z (notBefore)"
        ),
        "{error}"
    );
}

#[test]
fn garbage_certificate_is_malformed() {
    let root = root();
    let leaf = Node {
        params: leaf_params(),
        key: key(&PKCS_ECDSA_P384_SHA384),
        der: encoded(|encoder| encoder.text("not DER")),
    };
    let error = rejected(&[&root, &leaf], &root);
    assert_eq!(error.rule(), "chain.certificate");
    assert!(error.is_malformed());
    assert!(
        error
            .to_string()
            .starts_with("leaf certificate is not a valid DER certificate")
    );
}
