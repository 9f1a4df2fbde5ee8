//! Platform Configuration Register indexes and values, as they appear in attestation
//! documents (`pcrs`: index → digest) and in release policies (index → 96 hex characters).

use std::fmt;

/// Highest PCR index an attestation document may carry (NSM exposes 32 PCRs, 0–31).
pub const MAX_PCR_INDEX: u8 = 31;

/// A PCR index, 0–31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PcrIndex(u8);

impl PcrIndex {
    pub fn new(index: u64) -> Result<Self, PcrError> {
        if index > u64::from(MAX_PCR_INDEX) {
            return Err(PcrError::IndexOutOfRange { index });
        }
        Ok(Self(index as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// Parses the decimal form used as a JSON key in policies (`"0"`–`"31"`, no sign, no
    /// leading zeros).
    pub fn parse_decimal(text: &str) -> Result<Self, PcrError> {
        let canonical = !text.is_empty()
            && text.bytes().all(|byte| byte.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'))
            && text.len() <= 2;
        if !canonical {
            return Err(PcrError::InvalidIndexText {
                text: text.to_owned(),
            });
        }
        let index: u64 = text.parse().map_err(|_| PcrError::InvalidIndexText {
            text: text.to_owned(),
        })?;
        Self::new(index)
    }
}

impl fmt::Display for PcrIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Length in bytes of a SHA-384 PCR, the only digest Nitro Enclaves use.
pub const SHA384_LEN: usize = 48;

/// A PCR value: a digest of 32, 48 or 64 bytes (SHA-256, SHA-384, SHA-512). Compared as
/// bytes; its text form is lowercase hex.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PcrValue(Vec<u8>);

impl PcrValue {
    /// Accepts a digest-sized byte string.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PcrError> {
        match bytes.len() {
            32 | 48 | 64 => Ok(Self(bytes.to_vec())),
            length => Err(PcrError::InvalidLength { length }),
        }
    }

    /// Parses the canonical policy form of a SHA-384 PCR: exactly 96 hex digits, either case.
    /// A `0x` prefix, whitespace, short forms such as `000000` and other lengths are errors.
    pub fn parse_sha384_hex(text: &str) -> Result<Self, PcrError> {
        if text.starts_with("0x") || text.starts_with("0X") {
            return Err(PcrError::HexPrefix);
        }
        if text.len() != SHA384_LEN * 2 {
            return Err(PcrError::InvalidHexLength {
                length: text.chars().count(),
            });
        }
        if let Some(position) = text.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(PcrError::InvalidHexDigit { position });
        }
        let bytes = hex::decode(text).map_err(|_| PcrError::InvalidHexDigit { position: 0 })?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when every byte is zero, as NSM reports PCR0/1/2 for debug-mode enclaves.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&byte| byte == 0)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for PcrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PcrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PcrValue({})", self.to_hex())
    }
}

/// Why a PCR index or value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcrError {
    #[error("PCR index {index} is out of range; valid indexes are 0 to 31")]
    IndexOutOfRange { index: u64 },
    #[error("PCR index {text:?} is not a decimal number from 0 to 31")]
    InvalidIndexText { text: String },
    #[error("PCR value is {length} bytes; expected 32, 48 or 64")]
    InvalidLength { length: usize },
    #[error("PCR value has a 0x prefix; expected exactly 96 hex digits without prefix")]
    HexPrefix,
    #[error("PCR value has {length} characters; expected exactly 96 hex digits (SHA-384)")]
    InvalidHexLength { length: usize },
    #[error(
        "PCR value has a non-hex character at position {position}; expected exactly 96 hex digits"
    )]
    InvalidHexDigit { position: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uppercase_hex_to_lowercase() {
        let value = PcrValue::parse_sha384_hex(&"AB".repeat(48)).unwrap();
        assert_eq!(value.to_hex(), "ab".repeat(48));
    }

    #[test]
    fn rejects_pcr_value_with_0x_prefix() {
        let text = format!("0x{}", "00".repeat(47));
        assert_eq!(PcrValue::parse_sha384_hex(&text), Err(PcrError::HexPrefix));
    }

    #[test]
    fn rejects_short_pcr_value() {
        assert_eq!(
            PcrValue::parse_sha384_hex("000000"),
            Err(PcrError::InvalidHexLength { length: 6 })
        );
    }

    #[test]
    fn rejects_sha256_sized_pcr_text() {
        assert_eq!(
            PcrValue::parse_sha384_hex(&"11".repeat(32)),
            Err(PcrError::InvalidHexLength { length: 64 })
        );
    }

    #[test]
    fn rejects_whitespace_in_pcr_value() {
        let text = format!(" {}", "0".repeat(95));
        assert_eq!(
            PcrValue::parse_sha384_hex(&text),
            Err(PcrError::InvalidHexDigit { position: 0 })
        );
    }

    #[test]
    fn rejects_pcr_index_32() {
        assert_eq!(
            PcrIndex::new(32),
            Err(PcrError::IndexOutOfRange { index: 32 })
        );
        assert!(PcrIndex::parse_decimal("32").is_err());
    }

    #[test]
    fn rejects_pcr_index_with_leading_zero() {
        assert!(PcrIndex::parse_decimal("08").is_err());
        assert_eq!(PcrIndex::parse_decimal("8").unwrap().get(), 8);
    }

    #[test]
    fn rejects_pcr_value_of_odd_length() {
        assert_eq!(
            PcrValue::from_bytes(&[0; 47]),
            Err(PcrError::InvalidLength { length: 47 })
        );
    }
}
