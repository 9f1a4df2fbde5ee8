//! The library example of the README's `verify` section, compiled and run on a real document:
//! check a report against expected PCRs, then read its user data.

use enclave_broker::attestation::verify::{VerifyError, VerifyOptions, inspect, verify};

const REPORT: &[u8] = include_bytes!("fixtures/nitro/eternis_2024-07-31_prod.cbor");
const PCR0: &str = "a6cdfede5b1e7950de33218995add7d8f1f6e059c9cccd204316e69feaa2ce54f6f9ff6f5992db0f1ca6135f9b095b85";
const PCR1: &str = "4b4d5b3661b3efc12920900c80e126e4ce783c522de6c02a2a5bf7af3a2b9327b86776f188e4be1c1c404a129dbda493";

/// Runs the README's lines, with the document's own timestamp in place of `clock::now_ms()`.
fn user_data_hex(report: &[u8], now_ms: u64) -> Result<String, VerifyError> {
    let options = VerifyOptions::new(now_ms).expect_pcrs_hex([(0, PCR0), (1, PCR1)])?;
    let verified = verify(report, &options)?;
    let user_data = hex::encode(verified.document().user_data().unwrap_or_default());
    Ok(user_data)
}

#[test]
fn readme_example_reads_user_data() {
    let now_ms = inspect(REPORT).unwrap().timestamp_ms();
    let user_data = user_data_hex(REPORT, now_ms).unwrap();
    assert!(user_data.starts_with("1220a7cb599648b8"), "{user_data}");
}

#[test]
fn readme_example_rejects_other_pcr() {
    let now_ms = inspect(REPORT).unwrap().timestamp_ms();
    let mut other = REPORT.to_vec();
    let position = other
        .windows(48)
        .position(|window| window == hex::decode(PCR1).unwrap())
        .unwrap();
    other[position] ^= 1;
    assert!(user_data_hex(&other, now_ms).is_err());
}

#[test]
fn expect_pcrs_hex_rejects_bad_input() {
    let options = VerifyOptions::new(1);
    let error = options.clone().expect_pcrs_hex([(32, PCR0)]).unwrap_err();
    assert_eq!(error.rule(), "options.invalid");
    assert!(
        error.to_string().contains("PCR index 32 is out of range"),
        "{error}"
    );

    let error = options
        .clone()
        .expect_pcrs_hex([(0, "000000")])
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expected PCR0: PCR value has 6 characters"),
        "{error}"
    );

    let error = options.expect_pcrs_hex([(1, PCR0), (1, PCR1)]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid verification options: expected PCR1 is given twice"
    );
}
