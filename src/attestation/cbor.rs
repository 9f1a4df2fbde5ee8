//! A bounded CBOR (RFC 8949) reader that keeps the exact bytes of every item, and a small
//! writer ([`Encoder`]) for the simulator and for tests.
//!
//! The reader accepts definite- and indefinite-length strings, arrays and maps. It rejects
//! input that is not well-formed:
//!
//! - reserved additional information (28–30);
//! - a break code outside an indefinite-length item;
//! - indefinite-length integers and tags;
//! - two-byte simple values below 32;
//! - chunks of an indefinite-length string that are not definite strings of the same type.
//!
//! It also rejects duplicate map keys, nesting deeper than [`MAX_NESTING`] and bytes after the
//! top-level item. Every length is checked against the bytes
//! left before anything is allocated, so memory stays proportional to the input. Errors carry
//! the byte offset where decoding stopped.

mod decode;
mod encode;

pub use decode::{decode, decode_at};
pub use encode::Encoder;

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting of arrays, maps and tags accepted. Attestation documents need 3.
pub const MAX_NESTING: usize = 16;

/// A decoded data item and the exact bytes it was decoded from.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    offset: usize,
    raw: &'a [u8],
    value: Value<'a>,
}

impl<'a> Item<'a> {
    /// Offset of the item's first byte, counted from the start given to [`decode_at`].
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Returns the encoded item as received: head, content and, for indefinite lengths, the
    /// break code.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn value(&self) -> &Value<'a> {
        &self.value
    }

    /// Name of the item's type with its article, for messages ("a byte string", "an array").
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }
}

/// A CBOR data item. Definite-length strings borrow the input; indefinite-length strings own
/// the concatenation of their chunks.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Unsigned(u64),
    /// The negative integer `-1 - n`, stored as `n` so that the whole CBOR range fits.
    Negative(u64),
    Bytes {
        content: Cow<'a, [u8]>,
        indefinite: bool,
    },
    Text {
        content: Cow<'a, str>,
        indefinite: bool,
    },
    Array {
        items: Vec<Item<'a>>,
        indefinite: bool,
    },
    /// Map entries in the order received; keys are unique.
    Map {
        entries: Vec<(Item<'a>, Item<'a>)>,
        indefinite: bool,
    },
    Tag {
        tag: u64,
        item: Box<Item<'a>>,
    },
    Bool(bool),
    Null,
    Undefined,
    /// An unassigned simple value (0–19 or 32–255).
    Simple(u8),
    /// A half, single or double precision float, as its bits.
    Float {
        width_bytes: u8,
        bits: u64,
    },
}

impl Value<'_> {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Unsigned(_) => "an unsigned integer",
            Value::Negative(_) => "a negative integer",
            Value::Bytes { .. } => "a byte string",
            Value::Text { .. } => "a text string",
            Value::Array { .. } => "an array",
            Value::Map { .. } => "a map",
            Value::Tag { .. } => "a tagged item",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Undefined => "undefined",
            Value::Simple(_) => "a simple value",
            Value::Float { .. } => "a float",
        }
    }
}

/// Decoding error, with the byte offset where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CborError {
    offset: usize,
    kind: CborErrorKind,
}

impl CborError {
    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn kind(&self) -> &CborErrorKind {
        &self.kind
    }
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid CBOR at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for CborError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborErrorKind {
    #[error("input ends early; {needed} more bytes expected")]
    UnexpectedEnd { needed: u64 },
    #[error("initial byte 0x{initial_byte:02x} uses reserved additional information")]
    ReservedAdditionalInfo { initial_byte: u8 },
    #[error("break code (0xff) outside an indefinite-length item")]
    UnexpectedBreak,
    #[error("indefinite length is not allowed for major type {major}")]
    IndefiniteNotAllowed { major: u8 },
    #[error("two-byte simple value {value} is not well-formed (must be 32 or more)")]
    InvalidSimpleValue { value: u8 },
    #[error("length {length} exceeds the {remaining} bytes left in the input")]
    LengthExceedsInput { length: u64, remaining: usize },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    #[error("chunk of an indefinite-length {expected} is {found}")]
    InvalidChunk {
        expected: &'static str,
        found: &'static str,
    },
    #[error("duplicate map key {key}")]
    DuplicateKey { key: String },
    #[error("{count} bytes after the end of the item")]
    TrailingBytes { count: usize },
}

#[cfg(test)]
mod tests;
