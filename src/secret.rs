//! Zeroizing containers for plaintext secrets and key material.
//!
//! Types here have no `Clone`, and their `Debug` output names the type only, so a stray
//! `{:?}` or `tracing` field can never print their content.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes (a released plaintext, a content-encryption key) wiped from memory on drop.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; the buffer is wiped when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new zeroizing buffer.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// Returns the secret content. Callers must not copy it into non-zeroizing storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes")
    }
}

/// A secret that must be delivered as text (environment, JSON): UTF-8 without NUL bytes.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why secret bytes cannot be delivered as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotText {
    /// The bytes are not valid UTF-8; `valid_up_to` is the offset of the first bad byte.
    InvalidUtf8 { valid_up_to: usize },
    /// The bytes contain a NUL at this offset, which no environment variable can carry.
    ContainsNul { offset: usize },
}

impl fmt::Display for NotText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotText::InvalidUtf8 { valid_up_to } => {
                write!(
                    f,
                    "is not valid UTF-8 (first invalid byte at offset {valid_up_to})"
                )
            }
            NotText::ContainsNul { offset } => {
                write!(f, "contains a NUL byte at offset {offset}")
            }
        }
    }
}

impl TryFrom<&SecretBytes> for SecretString {
    type Error = NotText;

    fn try_from(secret: &SecretBytes) -> Result<Self, NotText> {
        let text = std::str::from_utf8(secret.expose()).map_err(|error| NotText::InvalidUtf8 {
            valid_up_to: error.valid_up_to(),
        })?;
        if let Some(offset) = text.bytes().position(|byte| byte == 0) {
            return Err(NotText::ContainsNul { offset });
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_type_name_only() {
        let secret = SecretBytes::from_slice(b"hunter2");
        assert_eq!(format!("{secret:?}"), "SecretBytes");
        let text = SecretString::try_from(&secret).unwrap();
        assert_eq!(format!("{text:?}"), "SecretString");
    }

    #[test]
    fn rejects_text_with_nul_byte() {
        let secret = SecretBytes::from_slice(b"ab\0c");
        let error = SecretString::try_from(&secret).unwrap_err();
        assert_eq!(error, NotText::ContainsNul { offset: 2 });
    }

    #[test]
    fn rejects_text_with_invalid_utf8() {
        let secret = SecretBytes::from_slice(&[b'a', 0xff]);
        let error = SecretString::try_from(&secret).unwrap_err();
        assert_eq!(error, NotText::InvalidUtf8 { valid_up_to: 1 });
    }
}
