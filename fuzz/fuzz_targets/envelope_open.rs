//! CMS EnvelopedData parsing and opening (`CiphertextForRecipient`), with the published RSA
//! test key from edgebitio/enclaver that opens the `enclaver` envelope of the seed corpus.
//! Mutations of that envelope reach the RSA-OAEP unwrap and the AES-256-CBC decryption.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enclave_broker::envelope::{self, EnvelopedData, RecipientKey};
use libfuzzer_sys::fuzz_target;

const KEY_PEM: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/kms/enclaver_recipient_rsa2048_pkcs8.pem"
));

fn recipient_key() -> &'static RecipientKey {
    static KEY: OnceLock<RecipientKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let body: String = KEY_PEM
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD
            .decode(body)
            .expect("the enclaver test key fixture is base64 PKCS #8");
        RecipientKey::from_pkcs8_der(&der).expect("the enclaver test key fixture is RSA-2048")
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = EnvelopedData::parse(data);
    if let Err(error) = &parsed {
        let _ = error.to_string();
    }

    match envelope::open(data, recipient_key()) {
        Ok(plaintext) => {
            assert!(parsed.is_ok(), "opened an envelope that does not parse");
            assert!(plaintext.len() < data.len());
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
