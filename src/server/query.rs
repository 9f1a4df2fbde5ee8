//! The query string of `GET /api/v1/attestation/report`, parsed by hand.
//!
//! Form decoding would turn `+` into a space and keep only one of two repeated parameters, so
//! the raw query is split here instead:
//!
//! - parameters are separated by `&`; a name without `=` has an empty value;
//! - names and values are percent-decoded; `+` stays `+`;
//! - `publicKey`, `userData` and `nonce` are base64url (`A–Z a–z 0–9 - _`), padded with `=` or
//!   unpadded, 1 to 1024 bytes after decoding, and given at most once;
//! - other parameters are ignored.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::attestation::source::{AttestationRequest, MAX_FIELD_LEN};

/// Base64url that accepts canonical padding or none, and rejects set trailing bits.
const BASE64URL_PADDED_OR_NOT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Names of the three fields in the query string, in the order of [`AttestationRequest`].
pub const PUBLIC_KEY: &str = "publicKey";
pub const USER_DATA: &str = "userData";
pub const NONCE: &str = "nonce";

/// Reason a query string was rejected. Every message starts with the parameter name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("{name}: empty value; leave the parameter out instead")]
    Empty { name: &'static str },
    #[error("{name}: given {count} times; give it at most once")]
    Repeated { name: &'static str, count: usize },
    #[error("{name}: invalid percent-encoding at character {position}")]
    PercentEncoding { name: &'static str, position: usize },
    #[error(
        "{name}: not base64url: {found} at character {position} (standard base64's + and / \
         are not allowed; use - and _{space_note})"
    )]
    NotBase64Url {
        name: &'static str,
        found: String,
        position: usize,
        space_note: &'static str,
    },
    #[error("{name}: not base64url: {detail}")]
    InvalidBase64Url { name: &'static str, detail: String },
    #[error("{name}: {length} bytes after decoding, limit {MAX_FIELD_LEN}")]
    TooLarge { name: &'static str, length: usize },
}

impl QueryError {
    /// Returns the parameter the error is about.
    pub fn parameter(&self) -> &'static str {
        match self {
            QueryError::Empty { name }
            | QueryError::Repeated { name, .. }
            | QueryError::PercentEncoding { name, .. }
            | QueryError::NotBase64Url { name, .. }
            | QueryError::InvalidBase64Url { name, .. }
            | QueryError::TooLarge { name, .. } => name,
        }
    }
}

/// Parses a raw query string (without the leading `?`) into the request fields.
pub fn parse_report_query(query: &str) -> Result<AttestationRequest, QueryError> {
    // 1. Collect the raw values of the three known parameters; names are compared after
    //    percent-decoding, so `%6Eonce` is `nonce`.
    let mut raw: [Vec<&str>; 3] = Default::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Ok(name) = percent_decode(name) else {
            continue;
        };
        let slot = match name.as_slice() {
            b"publicKey" => 0,
            b"userData" => 1,
            b"nonce" => 2,
            _ => continue,
        };
        raw[slot].push(value);
    }

    // 2. Decode each one that is present.
    let names = [PUBLIC_KEY, USER_DATA, NONCE];
    let mut decoded: [Option<Vec<u8>>; 3] = Default::default();
    for ((name, values), out) in names.into_iter().zip(&raw).zip(&mut decoded) {
        *out = match values.as_slice() {
            [] => None,
            [value] => Some(decode_value(name, value)?),
            many => {
                return Err(QueryError::Repeated {
                    name,
                    count: many.len(),
                });
            }
        };
    }
    let [public_key, user_data, nonce] = decoded;
    Ok(AttestationRequest {
        public_key,
        user_data,
        nonce,
    })
}

/// Decodes one raw parameter value: percent-decoding, then base64url, then the size limit.
fn decode_value(name: &'static str, raw: &str) -> Result<Vec<u8>, QueryError> {
    let text =
        percent_decode(raw).map_err(|position| QueryError::PercentEncoding { name, position })?;
    if text.is_empty() {
        return Err(QueryError::Empty { name });
    }
    check_alphabet(name, &text)?;

    let bytes =
        BASE64URL_PADDED_OR_NOT
            .decode(&text)
            .map_err(|error| QueryError::InvalidBase64Url {
                name,
                detail: base64_detail(&error),
            })?;
    if bytes.len() > MAX_FIELD_LEN {
        return Err(QueryError::TooLarge {
            name,
            length: bytes.len(),
        });
    }
    Ok(bytes)
}

/// Rejects any byte outside the base64url alphabet and `=`, naming the first one found.
fn check_alphabet(name: &'static str, text: &[u8]) -> Result<(), QueryError> {
    let is_url_safe = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'=');
    let Some(position) = text.iter().position(|&byte| !is_url_safe(byte)) else {
        return Ok(());
    };
    let byte = text[position];
    let found = match byte {
        b'+' => "'+'".to_owned(),
        b'/' => "'/'".to_owned(),
        b' ' => "a space".to_owned(),
        0x21..=0x7e => format!("'{}'", char::from(byte)),
        _ => format!("byte 0x{byte:02x}"),
    };
    // A client that sends standard base64 without encoding `+` as %2B may see it arrive as a
    // space after some proxy or library applied form decoding on the way.
    let space_note = if byte == b' ' {
        "; a space is often a + that form decoding turned into a space"
    } else {
        ""
    };
    Err(QueryError::NotBase64Url {
        name,
        found,
        position: position + 1,
        space_note,
    })
}

fn base64_detail(error: &base64::DecodeError) -> String {
    match error {
        base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
        base64::DecodeError::InvalidLength(_) => {
            "invalid length (a base64url value is never 4n+1 characters long)".to_owned()
        }
        base64::DecodeError::InvalidLastSymbol { .. } => {
            "the last character sets bits beyond the encoded data".to_owned()
        }
        base64::DecodeError::InvalidByte(offset, byte) if *byte == b'=' => {
            format!("'=' at character {} is not padding at the end", offset + 1)
        }
        other => other.to_string(),
    }
}

/// Percent-decodes `text` without treating `+` specially. Returns the 1-based position of the
/// first `%` not followed by two hex digits.
fn percent_decode(text: &str) -> Result<Vec<u8>, usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            out.push(bytes[index]);
            index += 1;
            continue;
        }
        let hex = bytes.get(index + 1..index + 3).ok_or(index + 1)?;
        let high = hex_value(hex[0]).ok_or(index + 1)?;
        let low = hex_value(hex[1]).ok_or(index + 1)?;
        out.push(high << 4 | low);
        index += 3;
    }
    Ok(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_padded_and_unpadded_values() {
        let padded = parse_report_query("userData=aGk=&nonce=bg==").unwrap();
        let unpadded = parse_report_query("userData=aGk&nonce=bg").unwrap();
        assert_eq!(padded.user_data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(padded.nonce.as_deref(), Some(&b"n"[..]));
        assert_eq!(padded, unpadded);
        assert_eq!(padded.public_key, None);
    }

    #[test]
    fn keeps_plus_as_plus() {
        let error = parse_report_query("publicKey=ab+c").unwrap_err();
        assert_eq!(
            error.to_string(),
            "publicKey: not base64url: '+' at character 3 (standard base64's + and / are \
             not allowed; use - and _)"
        );
    }

    #[test]
    fn explains_space_in_value() {
        let error = parse_report_query("nonce=ab%20c").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("nonce: not base64url: a space")
        );
        assert!(error.to_string().contains("form decoding"), "{error}");
    }

    #[test]
    fn rejects_percent_encoded_plus_and_slash() {
        for query in ["userData=ab%2Bc", "userData=ab%2fc"] {
            let error = parse_report_query(query).unwrap_err();
            assert!(
                error.to_string().starts_with("userData: not base64url"),
                "{query}: {error}"
            );
        }
    }

    #[test]
    fn decodes_percent_encoded_url_safe_characters() {
        let plain = parse_report_query("userData=-_8=").unwrap();
        let encoded = parse_report_query("userData=%2D%5F8%3D").unwrap();
        assert_eq!(plain, encoded);
        assert_eq!(plain.user_data.as_deref(), Some(&[0xfb, 0xff][..]));
    }

    #[test]
    fn matches_percent_encoded_names() {
        let request = parse_report_query("%6Eonce=bg").unwrap();
        assert_eq!(request.nonce.as_deref(), Some(&b"n"[..]));
    }

    #[test]
    fn rejects_empty_and_valueless_parameters() {
        for query in ["nonce=", "nonce", "a=1&nonce=&b=2"] {
            assert_eq!(
                parse_report_query(query).unwrap_err(),
                QueryError::Empty { name: NONCE },
                "{query}"
            );
        }
    }

    #[test]
    fn rejects_repeated_parameter() {
        let error = parse_report_query("nonce=bg&userData=aGk&nonce=bg").unwrap_err();
        assert_eq!(
            error.to_string(),
            "nonce: given 2 times; give it at most once"
        );
    }

    #[test]
    fn ignores_unknown_parameters() {
        let request = parse_report_query("foo=%%%&publickey=x&&userData=aGk").unwrap();
        assert_eq!(request.user_data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(request.public_key, None);
    }

    #[test]
    fn rejects_bad_percent_encoding() {
        let error = parse_report_query("userData=ab%zz").unwrap_err();
        assert_eq!(
            error.to_string(),
            "userData: invalid percent-encoding at character 3"
        );
    }

    #[test]
    fn rejects_misplaced_padding_and_bad_length() {
        let misplaced = parse_report_query("nonce=bg==bg").unwrap_err();
        assert!(matches!(misplaced, QueryError::InvalidBase64Url { .. }));
        let length = parse_report_query("nonce=bgbgb").unwrap_err();
        assert!(length.to_string().contains("invalid length"), "{length}");
        let bits = parse_report_query("nonce=bh").unwrap_err();
        assert!(bits.to_string().contains("last character"), "{bits}");
    }

    #[test]
    fn limits_decoded_size() {
        let at_limit = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 1024]);
        let over = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 1025]);
        let request = parse_report_query(&format!("publicKey={at_limit}")).unwrap();
        assert_eq!(request.public_key.map(|key| key.len()), Some(1024));
        let error = parse_report_query(&format!("userData={over}")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "userData: 1025 bytes after decoding, limit 1024"
        );
    }
}
