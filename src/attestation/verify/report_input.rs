//! Attestation documents in the forms people pass around: raw CBOR (what NSM returns), base64
//! (standard or URL-safe alphabet, padded or not) and hex. The text forms may contain spaces
//! and line breaks, as `base64` and `xxd -p` wrap their output.
//!
//! Detection, in this order, after a leading UTF-8 byte order mark (EF BB BF, which some
//! Windows editors and PowerShell write) and the whitespace around it are removed:
//!
//! 1. input with any byte that is neither printable ASCII nor ASCII whitespace is raw CBOR and
//!    is passed on unchanged (a COSE_Sign1 starts with 0x84, or 0xD2 when tagged, neither of
//!    which is ASCII);
//! 2. text whose non-whitespace characters are all hex digits, with an optional `0x` prefix,
//!    is hex;
//! 3. any other text must be base64 in one alphabet.
//!
//! Text made of hex digits only is read as hex even though it is also valid base64. A
//! COSE_Sign1 in base64 never looks like that: it starts with `h` (0x84), or `0o` when
//! tagged, and neither `h` nor `o` is a hex digit.

use std::fmt;
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};

use super::MAX_DOCUMENT_LEN;

/// Largest input [`read_bounded`] accepts: room for the hex form of a [`MAX_DOCUMENT_LEN`]
/// document (twice its size) with line breaks.
pub const MAX_REPORT_INPUT_LEN: usize = 4 * MAX_DOCUMENT_LEN;

/// Encoding of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEncoding {
    Cbor,
    Base64,
    Hex,
}

impl InputEncoding {
    /// Lowercase name used in output: `cbor`, `base64` or `hex`.
    pub fn as_str(self) -> &'static str {
        match self {
            InputEncoding::Cbor => "cbor",
            InputEncoding::Base64 => "base64",
            InputEncoding::Hex => "hex",
        }
    }
}

impl fmt::Display for InputEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The document bytes and the encoding they were found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedReport {
    pub bytes: Vec<u8>,
    pub encoding: InputEncoding,
}

/// Error for input that cannot be read or decoded into document bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportInputError {
    #[error("failed to read: {detail}")]
    Read { detail: String },
    #[error(
        "input is larger than {limit} bytes, the limit for an attestation document in any encoding"
    )]
    TooLarge { limit: usize },
    #[error("input is empty; expected an attestation document in raw CBOR, base64 or hex")]
    Empty,
    #[error("input is text but neither hex nor base64: {detail}")]
    Encoding { detail: String },
}

impl ReportInputError {
    /// Stable identifier of the rule that failed: `input.unreadable`, `input.too_large` or
    /// `input.encoding`.
    pub fn rule(&self) -> &'static str {
        match self {
            ReportInputError::Read { .. } => "input.unreadable",
            ReportInputError::TooLarge { .. } => "input.too_large",
            ReportInputError::Empty | ReportInputError::Encoding { .. } => "input.encoding",
        }
    }
}

/// Reads all of `reader`, failing once it yields more than [`MAX_REPORT_INPUT_LEN`] bytes.
pub fn read_bounded(reader: impl Read) -> Result<Vec<u8>, ReportInputError> {
    let mut bytes = Vec::new();
    // usize to u64 widens on every platform Rust supports, so `as` cannot truncate here.
    reader
        .take(MAX_REPORT_INPUT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ReportInputError::Read {
            detail: error.to_string(),
        })?;
    if bytes.len() > MAX_REPORT_INPUT_LEN {
        return Err(ReportInputError::TooLarge {
            limit: MAX_REPORT_INPUT_LEN,
        });
    }
    Ok(bytes)
}

/// Detects the encoding of `input` as the module documentation describes and decodes it.
pub fn decode_report(input: &[u8]) -> Result<DecodedReport, ReportInputError> {
    let input = strip_byte_order_mark(input);
    if input.is_empty() {
        return Err(ReportInputError::Empty);
    }
    let is_text = input
        .iter()
        .all(|byte| byte.is_ascii_graphic() || byte.is_ascii_whitespace());
    if !is_text {
        return Ok(DecodedReport {
            bytes: input.to_vec(),
            encoding: InputEncoding::Cbor,
        });
    }

    let compact: Vec<u8> = input
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(ReportInputError::Empty);
    }

    let digits = compact
        .strip_prefix(b"0x")
        .or_else(|| compact.strip_prefix(b"0X"))
        .unwrap_or(&compact);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_hexdigit) {
        return decode_hex(digits);
    }
    decode_base64(input, &compact)
}

/// UTF-8 encoding of U+FEFF, the byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Removes a UTF-8 byte order mark at the start of `input`, with any ASCII whitespace before
/// and after it. Input without one is returned unchanged, since raw CBOR may start with any
/// byte. Positions in later messages then count from the first byte after the mark.
fn strip_byte_order_mark(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(input.len());
    match input[start..].strip_prefix(UTF8_BOM) {
        Some(rest) => rest.trim_ascii_start(),
        None => input,
    }
}

fn decode_hex(digits: &[u8]) -> Result<DecodedReport, ReportInputError> {
    if !digits.len().is_multiple_of(2) {
        return Err(encoding(format!(
            "hex text has an odd number of digits ({})",
            digits.len()
        )));
    }
    let bytes = hex::decode(digits).map_err(|error| encoding(format!("invalid hex: {error}")))?;
    Ok(DecodedReport {
        bytes,
        encoding: InputEncoding::Hex,
    })
}

/// Decodes `compact` (`input` without whitespace) as base64. Positions in messages count
/// bytes of `input`, so they point into the file as given.
fn decode_base64(input: &[u8], compact: &[u8]) -> Result<DecodedReport, ReportInputError> {
    let position_of = |wanted: &dyn Fn(u8) -> bool| input.iter().position(|&byte| wanted(byte));

    if let Some(position) = position_of(&|byte| {
        !(byte.is_ascii_alphanumeric() || b"+/-_=".contains(&byte) || byte.is_ascii_whitespace())
    }) {
        return Err(encoding(format!(
            "byte {position} ({:?}) is not a hex digit or a base64 character",
            char::from(input[position])
        )));
    }

    let standard = position_of(&|byte| byte == b'+' || byte == b'/');
    let url_safe = position_of(&|byte| byte == b'-' || byte == b'_');
    if let (Some(standard), Some(url_safe)) = (standard, url_safe) {
        return Err(encoding(format!(
            "base64 mixes the standard alphabet (byte {standard}, {:?}) and the URL-safe \
             alphabet (byte {url_safe}, {:?})",
            char::from(input[standard]),
            char::from(input[url_safe])
        )));
    }

    let (engine, alphabet) = if url_safe.is_some() {
        (&URL_SAFE_PAD_INDIFFERENT, "URL-safe")
    } else {
        (&STANDARD_PAD_INDIFFERENT, "standard")
    };
    let bytes = engine
        .decode(compact)
        .map_err(|error| encoding(format!("invalid {alphabet} base64: {error}")))?;
    Ok(DecodedReport {
        bytes,
        encoding: InputEncoding::Base64,
    })
}

fn encoding(detail: String) -> ReportInputError {
    ReportInputError::Encoding { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a real untagged COSE_Sign1: array of 4, protected header {1: -35}.
    const SIGN1_START: [u8; 7] = [0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0];

    fn decoded(input: &[u8]) -> DecodedReport {
        decode_report(input).unwrap()
    }

    #[test]
    fn strips_byte_order_mark_before_base64() {
        let base64 = STANDARD_PAD_INDIFFERENT.encode(SIGN1_START);
        for input in [
            format!("\u{feff}{base64}\r\n"),
            format!(" \n\u{feff} {base64}"),
        ] {
            let report = decoded(input.as_bytes());
            assert_eq!(report.encoding, InputEncoding::Base64, "input {input:?}");
            assert_eq!(report.bytes, SIGN1_START, "input {input:?}");
        }
    }

    #[test]
    fn strips_byte_order_mark_before_hex() {
        let report = decoded("\u{feff}8444a1013822a0\n".as_bytes());
        assert_eq!(report.encoding, InputEncoding::Hex);
        assert_eq!(report.bytes, SIGN1_START);
    }

    #[test]
    fn rejects_byte_order_mark_alone_as_empty() {
        assert_eq!(
            decode_report("\u{feff}\n".as_bytes()),
            Err(ReportInputError::Empty)
        );
    }

    #[test]
    fn passes_raw_cbor_unchanged() {
        let report = decoded(&SIGN1_START);
        assert_eq!(report.encoding, InputEncoding::Cbor);
        assert_eq!(report.bytes, SIGN1_START);
    }

    #[test]
    fn detects_hex_with_line_breaks_and_prefix() {
        let report = decoded(b"0x8444a101\n3822a0\n");
        assert_eq!(report.encoding, InputEncoding::Hex);
        assert_eq!(report.bytes, SIGN1_START);
        assert_eq!(decoded(b"8444A1013822A0").bytes, SIGN1_START);
    }

    #[test]
    fn detects_base64_in_both_alphabets() {
        let bytes = [0x84, 0xfb, 0xff, 0xfe, 0x3e];
        let standard = STANDARD_PAD_INDIFFERENT.encode(bytes);
        let url_safe = URL_SAFE_PAD_INDIFFERENT.encode(bytes);
        assert!(
            standard.contains('+') || standard.contains('/'),
            "{standard}"
        );
        assert!(
            url_safe.contains('-') || url_safe.contains('_'),
            "{url_safe}"
        );
        for text in [&standard, &url_safe, standard.trim_end_matches('=')] {
            let report = decoded(text.as_bytes());
            assert_eq!(report.encoding, InputEncoding::Base64, "{text}");
            assert_eq!(report.bytes, bytes, "{text}");
        }
    }

    #[test]
    fn tolerates_wrapped_base64() {
        let text = STANDARD_PAD_INDIFFERENT.encode([0x84; 100]);
        let wrapped: String = text
            .as_bytes()
            .chunks(76)
            .map(|line| format!("{}\r\n", String::from_utf8_lossy(line)))
            .collect();
        assert_eq!(decoded(wrapped.as_bytes()).bytes, [0x84; 100]);
    }

    #[test]
    fn rejects_mixed_base64_alphabets() {
        let error = decode_report(b"hE+h-A").unwrap_err();
        assert_eq!(error.rule(), "input.encoding");
        assert!(
            error
                .to_string()
                .contains("mixes the standard alphabet (byte 2, '+')"),
            "{error}"
        );
    }

    #[test]
    fn rejects_odd_hex_digit_count() {
        let error = decode_report(b"8444a").unwrap_err();
        assert_eq!(
            error.to_string(),
            "input is text but neither hex nor base64: hex text has an odd number of digits (5)"
        );
    }

    #[test]
    fn rejects_text_of_other_characters() {
        let error = decode_report(b"{\"document\": \"hEShATgi\"}").unwrap_err();
        assert_eq!(error.rule(), "input.encoding");
        assert!(
            error
                .to_string()
                .ends_with("byte 0 ('{') is not a hex digit or a base64 character"),
            "{error}"
        );
    }

    #[test]
    fn rejects_empty_and_blank_input() {
        assert_eq!(decode_report(b""), Err(ReportInputError::Empty));
        assert_eq!(decode_report(b" \n\t"), Err(ReportInputError::Empty));
    }

    #[test]
    fn bounds_reads() {
        let large = vec![b'a'; MAX_REPORT_INPUT_LEN + 1];
        let error = read_bounded(large.as_slice()).unwrap_err();
        assert_eq!(error.rule(), "input.too_large");
        let limit = vec![b'a'; MAX_REPORT_INPUT_LEN];
        assert_eq!(
            read_bounded(limit.as_slice()).unwrap().len(),
            MAX_REPORT_INPUT_LEN
        );
    }
}
