//! The attestation endpoint's query string (`GET /api/v1/attestation/report?…`), parsed by
//! hand in `server::query`.
//!
//! Besides "no panic", each input checks what the endpoint promises its callers:
//! - an accepted field is 1 to 1024 bytes, and the same bytes sent again as unpadded or
//!   padded base64url are accepted as the same request;
//! - a rejection names one of the three parameters, and its message starts with that name.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use enclave_broker::attestation::source::{AttestationRequest, MAX_FIELD_LEN};
use enclave_broker::server::query::{NONCE, PUBLIC_KEY, USER_DATA, parse_report_query};
use libfuzzer_sys::fuzz_target;

/// Builds the query string that sends `request` with the given base64url engine.
fn encode(request: &AttestationRequest, engine: &impl Engine) -> String {
    let fields = [
        (PUBLIC_KEY, &request.public_key),
        (USER_DATA, &request.user_data),
        (NONCE, &request.nonce),
    ];
    let parts: Vec<String> = fields
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .as_ref()
                .map(|bytes| format!("{name}={}", engine.encode(bytes)))
        })
        .collect();
    parts.join("&")
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    match parse_report_query(query) {
        Ok(request) => {
            for value in [&request.public_key, &request.user_data, &request.nonce]
                .into_iter()
                .flatten()
            {
                assert!(
                    (1..=MAX_FIELD_LEN).contains(&value.len()),
                    "accepted a field of {} bytes",
                    value.len()
                );
            }
            for engine in [&URL_SAFE_NO_PAD, &URL_SAFE] {
                let again = parse_report_query(&encode(&request, engine))
                    .expect("a re-encoded accepted request parses");
                assert_eq!(again, request, "re-encoding changed the request");
            }
        }
        Err(error) => {
            let name = error.parameter();
            assert!([PUBLIC_KEY, USER_DATA, NONCE].contains(&name));
            assert!(
                error.to_string().starts_with(name),
                "message does not start with {name}: {error}"
            );
        }
    }
});
