use super::*;

/// Reads `input` as one OCTET STRING (primitive or constructed) that fills the whole input.
fn read_whole_octet_string(input: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut reader = Reader::ber(input);
    let (value, _) = reader.read_octet_string("test", Tag::OCTET_STRING)?;
    reader.finish_input("test")?;
    Ok(value.into_owned())
}

/// Skips one element that fills the whole input.
fn skip_whole(input: &[u8]) -> Result<Tag, EnvelopeError> {
    let mut reader = Reader::ber(input);
    let tag = reader.skip("test")?;
    reader.finish_input("test")?;
    Ok(tag)
}

#[test]
fn reads_nested_indefinite_sequences() {
    let input = [
        0x30, 0x80, 0x30, 0x80, 0x05, 0x00, 0x00, 0x00, 0x02, 0x01, 0x07, 0x00, 0x00,
    ];
    let mut reader = Reader::ber(&input);
    let version = reader
        .read_constructed("outer", Tag::SEQUENCE, |outer| {
            outer.read_constructed("inner", Tag::SEQUENCE, |inner| inner.read_null("null"))?;
            outer.read_small_unsigned("version")
        })
        .unwrap();
    assert_eq!(version, (7, 10));
    assert!(reader.finish_input("outer").is_ok());
}

#[test]
fn joins_nested_constructed_octet_string_segments() {
    let input = [
        0x24, 0x80, 0x04, 0x02, 0xaa, 0xbb, 0x24, 0x03, 0x04, 0x01, 0xcc, 0x04, 0x00, 0x00, 0x00,
    ];
    assert_eq!(read_whole_octet_string(&input).unwrap(), [0xaa, 0xbb, 0xcc]);
}

#[test]
fn reads_non_minimal_long_form_length() {
    assert_eq!(
        read_whole_octet_string(&[0x04, 0x82, 0x00, 0x01, 0x5a]).unwrap(),
        [0x5a]
    );
}

#[test]
fn rejects_length_beyond_input() {
    let error = read_whole_octet_string(&[0x04, 0x05, 0x01]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "test: truncated at offset 2: 5 bytes needed, 1 left"
    );
}

#[test]
fn rejects_length_beyond_enclosing_element() {
    // The inner OCTET STRING claims 3 bytes but its SEQUENCE holds only 2 content bytes.
    let input = [0x30, 0x02, 0x04, 0x03, 0x01, 0x02, 0x03];
    let mut reader = Reader::ber(&input);
    let error = reader
        .read_constructed("outer", Tag::SEQUENCE, |outer| {
            outer.read_primitive("inner", Tag::OCTET_STRING).map(|_| ())
        })
        .unwrap_err();
    assert!(
        matches!(
            error,
            EnvelopeError::Truncated {
                offset: 4,
                needed: 3,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn rejects_more_than_four_length_octets() {
    let error = read_whole_octet_string(&[0x04, 0x85, 0, 0, 0, 0, 1, 0x00]).unwrap_err();
    assert!(
        matches!(error, EnvelopeError::InvalidEncoding { offset: 0, .. }),
        "{error}"
    );
}

#[test]
fn rejects_indefinite_length_on_primitive() {
    let error = read_whole_octet_string(&[0x04, 0x80, 0x01, 0x00, 0x00]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "test: invalid encoding at offset 0: indefinite length on a primitive element"
    );
}

#[test]
fn rejects_missing_end_of_contents() {
    let error = skip_whole(&[0x30, 0x80, 0x05, 0x00]).unwrap_err();
    assert!(
        matches!(
            error,
            EnvelopeError::Truncated {
                offset: 4,
                available: 0,
                ..
            }
        ),
        "{error}"
    );
    let error = skip_whole(&[0x30, 0x80, 0x05, 0x00, 0x00]).unwrap_err();
    assert!(
        matches!(
            error,
            EnvelopeError::Truncated {
                offset: 4,
                available: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn rejects_end_of_contents_in_definite_element() {
    let error = skip_whole(&[0x30, 0x02, 0x00, 0x00]).unwrap_err();
    assert!(
        matches!(error, EnvelopeError::InvalidEncoding { offset: 2, .. }),
        "{error}"
    );
}

#[test]
fn rejects_multi_byte_tag_number() {
    let error = skip_whole(&[0x1f, 0x81, 0x00, 0x00]).unwrap_err();
    assert!(
        matches!(error, EnvelopeError::InvalidEncoding { offset: 0, .. }),
        "{error}"
    );
}

#[test]
fn rejects_nesting_beyond_max_depth() {
    let levels = MAX_DEPTH + 1;
    let mut input = [0x30, 0x80].repeat(levels);
    input.extend([0x00, 0x00].repeat(levels));
    let error = skip_whole(&input).unwrap_err();
    assert!(
        matches!(
            error,
            EnvelopeError::TooDeep {
                max: MAX_DEPTH,
                offset: 64,
                ..
            }
        ),
        "{error}"
    );

    let mut allowed = [0x30, 0x80].repeat(MAX_DEPTH);
    allowed.extend([0x00, 0x00].repeat(MAX_DEPTH));
    assert_eq!(skip_whole(&allowed).unwrap(), Tag::SEQUENCE);
}

#[test]
fn rejects_trailing_data_after_outer_element() {
    let error = skip_whole(&[0x05, 0x00, 0x00, 0x00]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "trailing data after test: 2 bytes at offset 2"
    );
}

#[test]
fn rejects_unread_element_inside_constructed() {
    let input = [0x30, 0x04, 0x05, 0x00, 0x05, 0x00];
    let mut reader = Reader::ber(&input);
    let error = reader
        .read_constructed("outer", Tag::SEQUENCE, |outer| outer.read_null("null"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "outer: unexpected NULL (0x05) at offset 4 after the last field"
    );
}

#[test]
fn rejects_unexpected_tag_naming_both_tags() {
    let mut reader = Reader::ber(&[0xa0, 0x00]);
    let error = reader
        .read_primitive("field", Tag::OCTET_STRING)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "field: expected OCTET STRING (0x04) at offset 0, found [0] constructed (0xa0)"
    );
}

#[test]
fn rejects_non_minimal_and_negative_integers() {
    for (content, reason) in [
        (&[][..], "INTEGER has no content octets"),
        (
            &[0x00, 0x02][..],
            "INTEGER has a redundant leading zero octet",
        ),
        (&[0x80][..], "INTEGER is negative"),
        (
            &[0x01, 0x00, 0x00, 0x00, 0x00][..],
            "INTEGER does not fit in 32 bits",
        ),
    ] {
        let mut input = vec![0x02, content.len() as u8];
        input.extend_from_slice(content);
        let error = Reader::ber(&input)
            .read_small_unsigned("version")
            .unwrap_err();
        assert!(
            matches!(error, EnvelopeError::InvalidEncoding { reason: found, .. } if found == reason),
            "{content:02x?}: {error}"
        );
    }
}

#[test]
fn reads_integer_with_leading_zero_for_high_bit() {
    let (value, _) = Reader::ber(&[0x02, 0x02, 0x00, 0x80])
        .read_small_unsigned("v")
        .unwrap();
    assert_eq!(value, 128);
}
