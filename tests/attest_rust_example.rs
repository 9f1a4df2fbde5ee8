//! The Rust example of docs/readme-attest.md ("get a report with a public key, data and a
//! nonce"), kept compiling and correct. The README aims it at DEFAULT_ANJUNA_URL inside an
//! enclave; here it talks to a simulator-backed server on an ephemeral 127.0.0.1 port.

mod server_common;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use enclave_broker::attestation::source::{AnjunaAttester, AttestationRequest, Attester};
use server_common::TestServer;

/// The README example, with the endpoint URL as a parameter.
async fn get_report(
    url: &str,
) -> Result<(Vec<u8>, AttestationRequest), Box<dyn std::error::Error>> {
    // A P-384 key pair; the document carries the public key as SubjectPublicKeyInfo DER.
    let key_pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)?;
    let public_key_der = key_pair.public_key().as_der()?.as_ref().to_vec();

    // Application data, and 16 random bytes as the nonce.
    let data = b"Hello World!".to_vec();
    let mut nonce = vec![0u8; 16];
    SystemRandom::new().fill(&mut nonce)?;

    // One document from the attestation endpoint (each field is optional).
    let request = AttestationRequest {
        public_key: Some(public_key_der),
        user_data: Some(data),
        nonce: Some(nonce),
    };
    let attester = AnjunaAttester::new(url)?;
    let report = attester.attest(&request).await?;
    println!("{}", hex::encode(&report));
    Ok((report, request))
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_rust_example_gets_report() {
    let server = TestServer::sim().await;

    let (report, request) = get_report(&server.url()).await.unwrap();

    let verified = server.verify(&report);
    let document = verified.document();
    assert_eq!(document.public_key(), request.public_key.as_deref());
    assert_eq!(document.public_key().map(<[u8]>::len), Some(120));
    assert_eq!(document.user_data(), Some(&b"Hello World!"[..]));
    assert_eq!(document.nonce(), request.nonce.as_deref());
}
