//! Properties of PCR value parsing: the policy form is exactly 96 hex digits in either case,
//! it parses to the same 48 bytes whatever the case, and its canonical text is lowercase.

use enclave_broker::attestation::pcr::{PcrError, PcrIndex, PcrValue, SHA384_LEN};
use enclave_broker::policy::ReleasePolicy;
use proptest::prelude::*;
use serde_json::json;

/// Writes `bytes` as hex, choosing upper or lower case for each letter from `upper`.
fn hex_with_case(bytes: &[u8], upper: &[bool]) -> String {
    hex::encode(bytes)
        .chars()
        .zip(upper.iter().cycle())
        .map(|(digit, &upper)| {
            if upper {
                digit.to_ascii_uppercase()
            } else {
                digit
            }
        })
        .collect()
}

fn is_canonical_text(text: &str) -> bool {
    text.len() == 2 * SHA384_LEN && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

fn sha384_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), SHA384_LEN)
}

/// Hex digits of any length except 96.
fn hex_of_wrong_length() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{0,200}".prop_filter("not 96 digits", |text| text.len() != 2 * SHA384_LEN)
}

proptest! {
    #[test]
    fn lowercase_hex_round_trips(bytes in sha384_bytes()) {
        let text = hex::encode(&bytes);

        let value = PcrValue::parse_sha384_hex(&text).unwrap();

        prop_assert_eq!(value.as_bytes(), bytes.as_slice());
        prop_assert_eq!(value.to_hex(), text);
    }

    #[test]
    fn uppercase_hex_parses_to_same_bytes(bytes in sha384_bytes()) {
        let value = PcrValue::parse_sha384_hex(&hex::encode_upper(&bytes)).unwrap();

        prop_assert_eq!(value.as_bytes(), bytes.as_slice());
        prop_assert_eq!(value.to_hex(), hex::encode(&bytes));
    }

    #[test]
    fn mixed_case_hex_has_lowercase_canonical_form(
        bytes in sha384_bytes(),
        upper in proptest::collection::vec(any::<bool>(), 1..=96),
    ) {
        let text = hex_with_case(&bytes, &upper);

        let value = PcrValue::parse_sha384_hex(&text).unwrap();

        prop_assert_eq!(value.as_bytes(), bytes.as_slice());
        prop_assert_eq!(value.to_hex(), text.to_ascii_lowercase());
        prop_assert_eq!(value.to_string(), text.to_ascii_lowercase());
    }

    #[test]
    fn rejects_any_text_not_96_hex_digits(text in "\\PC{0,120}") {
        prop_assume!(!is_canonical_text(&text));

        prop_assert!(PcrValue::parse_sha384_hex(&text).is_err());
    }

    #[test]
    fn rejects_hex_of_wrong_length(text in hex_of_wrong_length()) {
        let result = PcrValue::parse_sha384_hex(&text);

        if text.starts_with("0x") || text.starts_with("0X") {
            prop_assert_eq!(result, Err(PcrError::HexPrefix));
        } else {
            prop_assert_eq!(result, Err(PcrError::InvalidHexLength { length: text.len() }));
        }
    }

    #[test]
    fn rejects_one_non_hex_character(
        bytes in sha384_bytes(),
        position in 0..2 * SHA384_LEN,
        replacement in "[^0-9a-fA-F]",
    ) {
        prop_assume!(replacement.len() == 1);
        let mut text = hex::encode(&bytes);
        text.replace_range(position..=position, &replacement);
        prop_assume!(!text.starts_with("0x") && !text.starts_with("0X"));

        prop_assert_eq!(
            PcrValue::parse_sha384_hex(&text),
            Err(PcrError::InvalidHexDigit { position })
        );
    }

    #[test]
    fn rejects_0x_prefix_of_any_hex(bytes in sha384_bytes(), upper_x in any::<bool>()) {
        let prefix = if upper_x { "0X" } else { "0x" };
        let full = format!("{prefix}{}", hex::encode(&bytes));
        let kept_length = format!("{prefix}{}", &hex::encode(&bytes)[2..]);

        prop_assert_eq!(PcrValue::parse_sha384_hex(&full), Err(PcrError::HexPrefix));
        prop_assert_eq!(PcrValue::parse_sha384_hex(&kept_length), Err(PcrError::HexPrefix));
    }

    #[test]
    fn policy_stores_pcr_in_canonical_form(
        bytes in sha384_bytes(),
        upper in proptest::collection::vec(any::<bool>(), 1..=96),
        index in 0u8..=31,
    ) {
        let text = hex_with_case(&bytes, &upper);
        // PCR2 pins the image when `index` does not, as the loader requires.
        let image_pin = if index == 2 { "0" } else { "2" };
        let document = json!({
            "keys": { "app": { "key_id": "alias/app", "allow": [ { "pcrs": {
                index.to_string(): text, image_pin: "ab".repeat(48) } } ] } },
            "secrets": [ { "name": "db", "key": "app", "ciphertext": "AQID", "env": "DB" } ],
        });

        let policy = ReleasePolicy::from_json_str(&document.to_string(), std::path::Path::new("."))
            .unwrap();

        let stored = &policy.key_rule("app").unwrap().allow()[0].pcrs()
            [&PcrIndex::new(u64::from(index)).unwrap()];
        prop_assert_eq!(stored.as_bytes(), bytes.as_slice());
        prop_assert_eq!(stored.to_hex(), text.to_ascii_lowercase());
    }

    #[test]
    fn policy_rejects_pcr_not_96_hex_digits(text in "\\PC{0,120}") {
        prop_assume!(!is_canonical_text(&text));
        let document = json!({
            "keys": { "app": { "key_id": "alias/app", "allow": [ { "pcrs": { "0": text } } ] } },
            "secrets": [ { "name": "db", "key": "app", "ciphertext": "AQID", "env": "DB" } ],
        });

        let error = ReleasePolicy::from_json_str(&document.to_string(), std::path::Path::new("."))
            .unwrap_err();

        let paths: Vec<&str> = error.problems().iter().map(|problem| problem.path.as_str()).collect();
        prop_assert_eq!(paths, vec!["keys.app.allow[0].pcrs.0"]);
    }
}
