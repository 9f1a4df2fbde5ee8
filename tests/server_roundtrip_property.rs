//! Property: any byte strings of 0 to 1024 bytes for `publicKey`, `userData` and `nonce`
//! survive base64url encoding, the HTTP request, the simulator's document and verification
//! unchanged.
//!
//! Length 0 means the parameter is left out and the document field is null. The endpoint
//! rejects an empty value, because some verifiers read a present-but-empty field as "none" and
//! others as an error.

mod server_common;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use proptest::collection::vec;
use proptest::prelude::*;
use server_common::TestServer;

/// How one value is written into the query string.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Padded,
    Unpadded,
    /// Padded, with `=` sent as `%3D`, as form encoders write it.
    PaddedPercentEncoded,
}

fn encode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Padded => URL_SAFE.encode(bytes),
        Encoding::Unpadded => URL_SAFE_NO_PAD.encode(bytes),
        Encoding::PaddedPercentEncoded => URL_SAFE.encode(bytes).replace('=', "%3D"),
    }
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Padded),
        Just(Encoding::Unpadded),
        Just(Encoding::PaddedPercentEncoded),
    ]
}

/// A field value of 0 to 1024 bytes; the empty and full-size ends get extra weight because a
/// uniform length would almost never pick them.
fn field() -> impl Strategy<Value = (Vec<u8>, Encoding)> {
    let bytes = prop_oneof![
        1 => Just(Vec::new()),
        1 => vec(any::<u8>(), 1024),
        6 => vec(any::<u8>(), 1..=1024),
    ];
    (bytes, encoding())
}

/// The document field expected for `bytes`: none when empty, otherwise the bytes.
fn expected(bytes: &[u8]) -> Option<&[u8]> {
    (!bytes.is_empty()).then_some(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fields_survive_request_and_verification(
        public_key in field(),
        user_data in field(),
        nonce in field(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = TestServer::sim().await;
            let names = ["publicKey", "userData", "nonce"];
            let values = [&public_key, &user_data, &nonce];
            let query: Vec<String> = names
                .iter()
                .zip(values)
                .filter(|(_, (bytes, _))| !bytes.is_empty())
                .map(|(name, (bytes, encoding))| format!("{name}={}", encode(bytes, *encoding)))
                .collect();

            let response = server.report(&query.join("&")).await;

            prop_assert_eq!(response.status, 200);
            let verified = server.verify(&response.body);
            let document = verified.document();
            prop_assert_eq!(document.public_key(), expected(&public_key.0));
            prop_assert_eq!(document.user_data(), expected(&user_data.0));
            prop_assert_eq!(document.nonce(), expected(&nonce.0));
            Ok(())
        })?;
    }
}
