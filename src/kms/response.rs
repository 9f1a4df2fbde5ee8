//! Text from KMS responses that the broker shows to people: the problem with a body the SDK
//! could not read, and KMS's own error text made safe for a terminal.
//!
//! Neither function quotes the response body: a Decrypt response carries ciphertext, and an
//! endpoint that is not KMS may send anything.

use base64::Engine;

/// Longest KMS `message` shown, in characters; longer text ends with "…".
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Longest KMS error code shown, in characters. Real codes are under 40.
pub const MAX_CODE_CHARS: usize = 80;

/// Fields of a Decrypt response that contain text.
const STRING_FIELDS: [&str; 3] = ["KeyId", "EncryptionAlgorithm", "KeyMaterialId"];

/// Fields of a Decrypt response that contain base64.
const BLOB_FIELDS: [&str; 2] = ["CiphertextForRecipient", "Plaintext"];

/// Names what is wrong with a response to `Decrypt` that the SDK could not read.
/// `body` is `None` when the SDK kept no copy of it.
pub fn describe_unreadable_response(status: u16, body: Option<&[u8]>) -> String {
    let is_success = (200..300).contains(&status);
    let Some(body) = body else {
        return "the body could not be read".to_owned();
    };
    if body.is_empty() && is_success {
        return "the body is empty".to_owned();
    }
    if body.is_empty() {
        return "the error response has an empty body, so it names no error code".to_owned();
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return "the body is not JSON".to_owned();
    };
    let Some(object) = value.as_object() else {
        return "the body is JSON but not an object".to_owned();
    };
    if !is_success {
        return "the error response names no error code (no __type or code field)".to_owned();
    }

    for field in STRING_FIELDS.iter().chain(BLOB_FIELDS.iter()) {
        if object
            .get(*field)
            .is_some_and(|value| !value.is_string() && !value.is_null())
        {
            return format!("{field} is not a string");
        }
    }
    for field in BLOB_FIELDS {
        let Some(text) = object.get(field).and_then(|value| value.as_str()) else {
            continue;
        };
        if base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_err()
        {
            return format!("{field} is not base64");
        }
    }
    "the body does not have the shape of a Decrypt response".to_owned()
}

/// Makes text that KMS (or any other server at the endpoint) sent fit for one line of a
/// terminal: drops ANSI escape sequences and bidirectional-text controls, turns other
/// control characters into spaces, collapses runs of spaces and cuts the result to
/// `max_chars` characters, the last of which is then "…".
pub fn clean_remote_text(text: &str, max_chars: usize) -> String {
    let mut cleaned = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        if character == '\u{1b}' {
            skip_escape_sequence(&mut chars);
            continue;
        }
        if is_bidi_control(character) {
            continue;
        }
        let character = if character.is_control() || character.is_whitespace() {
            ' '
        } else {
            character
        };
        if character == ' ' && (cleaned.is_empty() || cleaned.ends_with(' ')) {
            continue;
        }
        cleaned.push(character);
    }
    let cleaned = cleaned.trim_end();

    if cleaned.chars().count() <= max_chars {
        return cleaned.to_owned();
    }
    let mut cut: String = cleaned.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Skips the rest of an escape sequence whose ESC was just read: CSI (`ESC [` … final byte
/// 0x40–0x7E), OSC (`ESC ]` … BEL or `ESC \`), or ESC and one more character.
fn skip_escape_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => {
            for character in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&character) {
                    break;
                }
            }
        }
        Some(']') => {
            while let Some(character) = chars.next() {
                if character == '\u{7}' {
                    break;
                }
                if character == '\u{1b}' && chars.peek() == Some(&'\\') {
                    chars.next();
                    break;
                }
            }
        }
        _ => {}
    }
}

/// Characters that reorder how the text around them is displayed (Unicode bidi controls).
fn is_bidi_control(character: char) -> bool {
    matches!(
        character,
        '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_body_that_is_not_json() {
        assert_eq!(
            describe_unreadable_response(200, Some(b"<html>gateway</html>")),
            "the body is not JSON"
        );
        assert_eq!(
            describe_unreadable_response(400, Some(b"\x00\xff garbage")),
            "the body is not JSON"
        );
    }

    #[test]
    fn describes_ciphertext_for_recipient_that_is_not_base64() {
        let body = br#"{"KeyId": "arn:aws:kms:us-east-1:111122223333:key/a", "CiphertextForRecipient": "@@not base64@@"}"#;
        assert_eq!(
            describe_unreadable_response(200, Some(body)),
            "CiphertextForRecipient is not base64"
        );
    }

    #[test]
    fn describes_field_of_wrong_type() {
        let body = br#"{"KeyId": 7, "CiphertextForRecipient": "AAAA"}"#;
        assert_eq!(
            describe_unreadable_response(200, Some(body)),
            "KeyId is not a string"
        );
    }

    #[test]
    fn describes_error_response_without_code() {
        assert_eq!(
            describe_unreadable_response(400, Some(b"{\"message\": \"x\"}")),
            "the error response names no error code (no __type or code field)"
        );
        assert!(describe_unreadable_response(403, Some(b"")).contains("empty body"));
        assert_eq!(
            describe_unreadable_response(200, Some(b"[1, 2]")),
            "the body is JSON but not an object"
        );
    }

    #[test]
    fn cleans_newlines_and_ansi_escapes() {
        let text = "denied\r\n\u{1b}[31mFAKE: release approved\u{1b}[0m\tnext";
        assert_eq!(
            clean_remote_text(text, MAX_MESSAGE_CHARS),
            "denied FAKE: release approved next"
        );
    }

    #[test]
    fn cleans_osc_sequences_and_bidi_controls() {
        let text = "a\u{1b}]0;title\u{7}b\u{1b}]8;;http://x\u{1b}\\c\u{202e}d\u{85}e";
        assert_eq!(clean_remote_text(text, MAX_MESSAGE_CHARS), "abcd e");
    }

    #[test]
    fn caps_long_text_with_ellipsis() {
        let text = "x".repeat(1000);
        let cleaned = clean_remote_text(&text, MAX_MESSAGE_CHARS);
        assert_eq!(cleaned.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cleaned.ends_with('…'));
        assert_eq!(clean_remote_text("short", MAX_MESSAGE_CHARS), "short");
    }
}
