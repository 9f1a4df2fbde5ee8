use super::*;

fn decode_hex(text: &str) -> Result<Item<'static>, CborError> {
    let bytes: &'static [u8] = Box::leak(hex::decode(text).unwrap().into_boxed_slice());
    decode(bytes)
}

fn error_kind(text: &str) -> CborErrorKind {
    decode_hex(text).unwrap_err().kind().clone()
}

#[test]
fn decodes_integers_of_every_head_size() {
    assert_eq!(decode_hex("17").unwrap().value(), &Value::Unsigned(23));
    assert_eq!(decode_hex("1818").unwrap().value(), &Value::Unsigned(24));
    assert_eq!(decode_hex("190100").unwrap().value(), &Value::Unsigned(256));
    assert_eq!(
        decode_hex("1b000001913ab1e5c9").unwrap().value(),
        &Value::Unsigned(0x0191_3ab1_e5c9)
    );
    assert_eq!(decode_hex("3822").unwrap().value(), &Value::Negative(34));
}

#[test]
fn keeps_raw_bytes_and_offsets_of_nested_items() {
    let item = decode_hex("a1013822").unwrap();
    let Value::Map {
        entries,
        indefinite,
    } = item.value()
    else {
        panic!("expected a map");
    };
    assert!(!indefinite);
    assert_eq!(item.raw(), [0xa1, 0x01, 0x38, 0x22]);
    assert_eq!(entries[0].0.offset(), 1);
    assert_eq!(entries[0].1.offset(), 2);
    assert_eq!(entries[0].1.raw(), [0x38, 0x22]);
}

#[test]
fn decodes_indefinite_length_map_and_strings() {
    // {_ "a": (_ h'01', h'0203'), "b": (_ "x", "yz")}
    let item = decode_hex("bf61615f4101420203ff61627f6178627a79ffff").unwrap();
    let Value::Map {
        entries,
        indefinite: true,
    } = item.value()
    else {
        panic!("expected an indefinite-length map");
    };
    assert_eq!(
        entries[0].1.value(),
        &Value::Bytes {
            content: Cow::Owned(vec![1, 2, 3]),
            indefinite: true
        }
    );
    assert_eq!(
        entries[1].1.value(),
        &Value::Text {
            content: Cow::Owned("xzy".to_owned()),
            indefinite: true
        }
    );
}

#[test]
fn rejects_duplicate_map_key() {
    assert_eq!(
        error_kind("a2616101616102"),
        CborErrorKind::DuplicateKey {
            key: "\"a\"".to_owned()
        }
    );
}

#[test]
fn rejects_duplicate_key_with_longer_head() {
    // Keys 1 and 1 written as 0x01 and 0x1801.
    assert!(matches!(
        error_kind("a201f61801f6"),
        CborErrorKind::DuplicateKey { .. }
    ));
}

#[test]
fn rejects_duplicate_key_in_indefinite_map() {
    assert!(matches!(
        error_kind("bf0102010fff"),
        CborErrorKind::DuplicateKey { .. }
    ));
}

#[test]
fn rejects_trailing_bytes() {
    let error = decode_hex("0000").unwrap_err();
    assert_eq!(error.kind(), &CborErrorKind::TrailingBytes { count: 1 });
    assert_eq!(error.offset(), 1);
}

#[test]
fn rejects_length_beyond_input_before_allocating() {
    // An array head announcing 2^64 - 1 items, followed by nothing.
    assert!(matches!(
        error_kind("9bffffffffffffffff"),
        CborErrorKind::LengthExceedsInput { .. }
    ));
    // A map of 3 entries needs at least 6 bytes.
    assert!(matches!(
        error_kind("a30102"),
        CborErrorKind::LengthExceedsInput { .. }
    ));
    assert!(matches!(
        error_kind("5a7fffffff00"),
        CborErrorKind::UnexpectedEnd { .. }
    ));
}

#[test]
fn rejects_nesting_deeper_than_limit() {
    let deep = "81".repeat(MAX_NESTING + 1) + "00";
    assert_eq!(
        error_kind(&deep),
        CborErrorKind::TooDeep { limit: MAX_NESTING }
    );
    let allowed = "81".repeat(MAX_NESTING) + "00";
    assert!(decode_hex(&allowed).is_ok());
}

#[test]
fn rejects_reserved_additional_information() {
    assert_eq!(
        error_kind("1c"),
        CborErrorKind::ReservedAdditionalInfo { initial_byte: 0x1c }
    );
}

#[test]
fn rejects_break_outside_indefinite_item() {
    assert_eq!(error_kind("ff"), CborErrorKind::UnexpectedBreak);
    assert_eq!(error_kind("82ff00"), CborErrorKind::UnexpectedBreak);
}

#[test]
fn rejects_indefinite_integer_and_tag() {
    assert_eq!(
        error_kind("1f"),
        CborErrorKind::IndefiniteNotAllowed { major: 0 }
    );
    assert_eq!(
        error_kind("df00"),
        CborErrorKind::IndefiniteNotAllowed { major: 6 }
    );
}

#[test]
fn rejects_chunk_of_other_type() {
    assert!(matches!(
        error_kind("5f6161ff"),
        CborErrorKind::InvalidChunk { .. }
    ));
    assert!(matches!(
        error_kind("5f5f4100ffff"),
        CborErrorKind::InvalidChunk { .. }
    ));
}

#[test]
fn rejects_unclosed_indefinite_items() {
    for text in ["5f41", "9f00", "bf0000", "7f"] {
        assert!(
            matches!(error_kind(text), CborErrorKind::UnexpectedEnd { .. }),
            "{text}"
        );
    }
}

#[test]
fn rejects_invalid_utf8_text() {
    assert_eq!(error_kind("62c328"), CborErrorKind::InvalidUtf8);
}

#[test]
fn rejects_two_byte_simple_value_below_32() {
    assert_eq!(
        error_kind("f814"),
        CborErrorKind::InvalidSimpleValue { value: 20 }
    );
    assert_eq!(decode_hex("f820").unwrap().value(), &Value::Simple(32));
}

#[test]
fn reports_offsets_relative_to_base() {
    let error = decode_at(&[0x82, 0x00, 0x41], 100).unwrap_err();
    assert_eq!(error.offset(), 103);
    assert_eq!(
        error.to_string(),
        "invalid CBOR at byte 103: input ends early; 1 more bytes expected"
    );
}

#[test]
fn encoder_output_decodes_to_same_values() {
    let mut encoder = Encoder::new();
    encoder
        .map(4)
        .int(1)
        .int(-35)
        .text("big")
        .unsigned(u64::MAX)
        .bytes(&[0; 300])
        .array(2)
        .null()
        .bool(true)
        .tag(18)
        .indefinite_array()
        .int(-1000)
        .end()
        .null();
    let bytes = encoder.into_bytes();
    assert_eq!(&bytes[..5], [0xa4, 0x01, 0x38, 0x22, 0x63]);

    let item = decode(&bytes).unwrap();
    let Value::Map { entries, .. } = item.value() else {
        panic!("expected a map");
    };
    assert_eq!(entries[1].1.value(), &Value::Unsigned(u64::MAX));
    assert_eq!(entries[2].0.raw()[..3], [0x59, 0x01, 0x2c]);

    let Value::Tag { tag: 18, item } = entries[3].0.value() else {
        panic!("expected tag 18");
    };
    let Value::Array { items, indefinite } = item.value() else {
        panic!("expected an array");
    };
    assert!(indefinite);
    assert_eq!(items[0].value(), &Value::Negative(999));
}
