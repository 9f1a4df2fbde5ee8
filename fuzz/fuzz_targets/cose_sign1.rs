//! COSE_Sign1 alone: the CBOR structure, tag handling and header checks, without the
//! attestation payload or any certificate.
#![no_main]

use enclave_broker::attestation::cose::{CoseSign1, ES384_SIGNATURE_LEN, signature_input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sign1 = match CoseSign1::parse(data) {
        Ok(sign1) => sign1,
        Err(error) => {
            let _ = (error.to_string(), error.rule());
            return;
        }
    };

    // The payload offset must point at the payload's bytes in the input, because the
    // document parser reports positions relative to the whole input through it.
    let offset = sign1.payload_offset();
    let payload = sign1.payload();
    assert_eq!(data.get(offset..offset + payload.len()), Some(payload));
    assert_eq!(sign1.signature().len(), ES384_SIGNATURE_LEN);

    // The signed bytes are built from the bytes received, never re-encoded.
    assert_eq!(
        sign1.signature_input(),
        signature_input(sign1.protected(), payload)
    );
});
