//! Decoding of one CBOR item in a single pass over the input, checking each length against
//! the bytes left before allocating.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::{CborError, CborErrorKind, Item, MAX_NESTING, Value};

/// Decodes exactly one item from `input`; bytes after it are an error.
pub fn decode(input: &[u8]) -> Result<Item<'_>, CborError> {
    decode_at(input, 0)
}

/// Like [`decode`], with offsets (in items and errors) counted from `base`, for input that is
/// itself a part of a larger buffer.
pub fn decode_at(input: &[u8], base: usize) -> Result<Item<'_>, CborError> {
    let mut decoder = Decoder {
        input,
        position: 0,
        base,
    };
    let item = decoder.read_item(0)?;
    let count = input.len() - decoder.position;
    if count > 0 {
        return Err(decoder.error_at(decoder.position, CborErrorKind::TrailingBytes { count }));
    }
    Ok(item)
}

/// The head of an item: major type and argument (`None` for an indefinite length).
struct Head {
    major: u8,
    additional: u8,
    argument: Option<u64>,
}

struct Decoder<'a> {
    input: &'a [u8],
    position: usize,
    base: usize,
}

impl<'a> Decoder<'a> {
    fn error_at(&self, position: usize, kind: CborErrorKind) -> CborError {
        CborError {
            offset: self.base + position,
            kind,
        }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn take(&mut self, length: u64) -> Result<&'a [u8], CborError> {
        let remaining = self.remaining();
        let length = match usize::try_from(length) {
            Ok(length) if length <= remaining => length,
            _ => {
                let needed = length - remaining as u64;
                return Err(self.error_at(self.position, CborErrorKind::UnexpectedEnd { needed }));
            }
        };
        let bytes = &self.input[self.position..self.position + length];
        self.position += length;
        Ok(bytes)
    }

    fn peek_is_break(&self) -> bool {
        self.input.get(self.position) == Some(&0xff)
    }

    fn read_head(&mut self) -> Result<Head, CborError> {
        let start = self.position;
        let initial_byte = self.take(1)?[0];
        let major = initial_byte >> 5;
        let additional = initial_byte & 0x1f;
        let argument = match additional {
            0..=23 => Some(u64::from(additional)),
            24 => Some(u64::from(self.take(1)?[0])),
            25 => Some(read_be(self.take(2)?)),
            26 => Some(read_be(self.take(4)?)),
            27 => Some(read_be(self.take(8)?)),
            28..=30 => {
                let kind = CborErrorKind::ReservedAdditionalInfo { initial_byte };
                return Err(self.error_at(start, kind));
            }
            _ => None,
        };
        Ok(Head {
            major,
            additional,
            argument,
        })
    }

    /// Checks that `count` elements, each at least `min_size` bytes, can fit in the input left,
    /// so that a `Vec` of that capacity is bounded by the input length.
    fn check_count(&self, start: usize, count: u64, min_size: u64) -> Result<usize, CborError> {
        let remaining = self.remaining();
        match count.checked_mul(min_size) {
            Some(needed) if needed <= remaining as u64 => Ok(count as usize),
            _ => Err(self.error_at(
                start,
                CborErrorKind::LengthExceedsInput {
                    length: count,
                    remaining,
                },
            )),
        }
    }

    fn read_item(&mut self, depth: usize) -> Result<Item<'a>, CborError> {
        let start = self.position;
        let head = self.read_head()?;
        let value = self.read_value(start, head, depth)?;
        Ok(Item {
            offset: self.base + start,
            raw: &self.input[start..self.position],
            value,
        })
    }

    fn read_value(
        &mut self,
        start: usize,
        head: Head,
        depth: usize,
    ) -> Result<Value<'a>, CborError> {
        if matches!(head.major, 4..=6) && depth >= MAX_NESTING {
            let kind = CborErrorKind::TooDeep { limit: MAX_NESTING };
            return Err(self.error_at(start, kind));
        }
        match (head.major, head.argument) {
            (0, Some(value)) => Ok(Value::Unsigned(value)),
            (1, Some(value)) => Ok(Value::Negative(value)),
            (2, length) => self.read_bytes(length),
            (3, length) => self.read_text(start, length),
            (4, length) => self.read_array(start, length, depth),
            (5, length) => self.read_map(start, length, depth),
            (6, Some(tag)) => {
                let item = Box::new(self.read_item(depth + 1)?);
                Ok(Value::Tag { tag, item })
            }
            (7, argument) => self.read_simple(start, head.additional, argument),
            (major, _) => {
                let kind = CborErrorKind::IndefiniteNotAllowed { major };
                Err(self.error_at(start, kind))
            }
        }
    }

    fn read_bytes(&mut self, length: Option<u64>) -> Result<Value<'a>, CborError> {
        match length {
            Some(length) => Ok(Value::Bytes {
                content: Cow::Borrowed(self.take(length)?),
                indefinite: false,
            }),
            None => Ok(Value::Bytes {
                content: Cow::Owned(self.read_chunks(2)?),
                indefinite: true,
            }),
        }
    }

    fn read_text(&mut self, start: usize, length: Option<u64>) -> Result<Value<'a>, CborError> {
        let content = match length {
            Some(length) => {
                let bytes = self.take(length)?;
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| self.error_at(start, CborErrorKind::InvalidUtf8))?;
                Cow::Borrowed(text)
            }
            None => {
                let bytes = self.read_chunks(3)?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| self.error_at(start, CborErrorKind::InvalidUtf8))?;
                Cow::Owned(text)
            }
        };
        Ok(Value::Text {
            content,
            indefinite: length.is_none(),
        })
    }

    /// Reads the chunks of an indefinite-length string up to its break code. RFC 8949 requires
    /// each chunk to be a definite-length string of the same major type, and each text chunk
    /// to be valid UTF-8 on its own.
    fn read_chunks(&mut self, major: u8) -> Result<Vec<u8>, CborError> {
        let expected = if major == 2 {
            "byte string"
        } else {
            "text string"
        };
        let mut content = Vec::new();
        loop {
            if self.peek_is_break() {
                self.position += 1;
                return Ok(content);
            }
            let chunk_start = self.position;
            let head = self.read_head()?;
            let length = match (head.major == major, head.argument) {
                (true, Some(length)) => length,
                _ => {
                    let found = chunk_type_name(head.major, head.argument.is_none());
                    let kind = CborErrorKind::InvalidChunk { expected, found };
                    return Err(self.error_at(chunk_start, kind));
                }
            };
            let chunk = self.take(length)?;
            if major == 3 && std::str::from_utf8(chunk).is_err() {
                return Err(self.error_at(chunk_start, CborErrorKind::InvalidUtf8));
            }
            content.extend_from_slice(chunk);
        }
    }

    fn read_array(
        &mut self,
        start: usize,
        length: Option<u64>,
        depth: usize,
    ) -> Result<Value<'a>, CborError> {
        let mut items = Vec::new();
        match length {
            Some(count) => {
                let count = self.check_count(start, count, 1)?;
                items.reserve_exact(count);
                for _ in 0..count {
                    items.push(self.read_item(depth + 1)?);
                }
            }
            None => {
                while !self.consume_break()? {
                    items.push(self.read_item(depth + 1)?);
                }
            }
        }
        Ok(Value::Array {
            items,
            indefinite: length.is_none(),
        })
    }

    fn read_map(
        &mut self,
        start: usize,
        length: Option<u64>,
        depth: usize,
    ) -> Result<Value<'a>, CborError> {
        let mut entries = Vec::new();
        let mut keys = BTreeSet::new();
        let mut read_entry = |decoder: &mut Self| -> Result<(), CborError> {
            let key = decoder.read_item(depth + 1)?;
            if !keys.insert(KeyIdentity::of(&key)) {
                let kind = CborErrorKind::DuplicateKey {
                    key: describe_key(&key),
                };
                return Err(decoder.error_at(key.offset - decoder.base, kind));
            }
            let value = decoder.read_item(depth + 1)?;
            entries.push((key, value));
            Ok(())
        };
        match length {
            Some(count) => {
                let count = self.check_count(start, count, 2)?;
                for _ in 0..count {
                    read_entry(self)?;
                }
            }
            None => {
                while !self.consume_break()? {
                    read_entry(self)?;
                }
            }
        }
        Ok(Value::Map {
            entries,
            indefinite: length.is_none(),
        })
    }

    /// Consumes a break code if one is next; fails at the end of the input, where an
    /// indefinite-length item would still be open.
    fn consume_break(&mut self) -> Result<bool, CborError> {
        if self.position == self.input.len() {
            let kind = CborErrorKind::UnexpectedEnd { needed: 1 };
            return Err(self.error_at(self.position, kind));
        }
        if self.peek_is_break() {
            self.position += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn read_simple(
        &mut self,
        start: usize,
        additional: u8,
        argument: Option<u64>,
    ) -> Result<Value<'a>, CborError> {
        let Some(argument) = argument else {
            return Err(self.error_at(start, CborErrorKind::UnexpectedBreak));
        };
        match additional {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            23 => Ok(Value::Undefined),
            0..=19 => Ok(Value::Simple(additional)),
            // The one-byte argument of additional information 24 is at most 255.
            24 if argument >= 32 => Ok(Value::Simple(argument as u8)),
            24 => {
                let kind = CborErrorKind::InvalidSimpleValue {
                    value: argument as u8,
                };
                Err(self.error_at(start, kind))
            }
            _ => Ok(Value::Float {
                width_bytes: 1 << (additional - 24),
                bits: argument,
            }),
        }
    }
}

fn read_be(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0, |value, &byte| (value << 8) | u64::from(byte))
}

fn chunk_type_name(major: u8, indefinite: bool) -> &'static str {
    match (major, indefinite) {
        (2, true) => "an indefinite-length byte string",
        (3, true) => "an indefinite-length text string",
        (0, _) => "an unsigned integer",
        (1, _) => "a negative integer",
        (2, _) => "a byte string",
        (3, _) => "a text string",
        (4, _) => "an array",
        (5, _) => "a map",
        (6, _) => "a tagged item",
        _ => "a simple value or float",
    }
}

/// Identity of a map key for duplicate detection. Integers and strings compare by value, so a
/// key written twice with different head sizes is still a duplicate. Other keys compare by
/// their encoding.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum KeyIdentity<'a> {
    Unsigned(u64),
    Negative(u64),
    Bytes(Cow<'a, [u8]>),
    Text(Cow<'a, str>),
    Encoded(&'a [u8]),
}

impl<'a> KeyIdentity<'a> {
    fn of(key: &Item<'a>) -> Self {
        match &key.value {
            Value::Unsigned(value) => KeyIdentity::Unsigned(*value),
            Value::Negative(value) => KeyIdentity::Negative(*value),
            Value::Bytes { content, .. } => KeyIdentity::Bytes(content.clone()),
            Value::Text { content, .. } => KeyIdentity::Text(content.clone()),
            _ => KeyIdentity::Encoded(key.raw),
        }
    }
}

fn describe_key(key: &Item<'_>) -> String {
    match &key.value {
        Value::Unsigned(value) => value.to_string(),
        Value::Negative(value) => format!("-{}", u128::from(*value) + 1),
        Value::Text { content, .. } => format!("{content:?}"),
        Value::Bytes { content, .. } => format!("h'{}'", hex::encode(content)),
        other => other.type_name().to_owned(),
    }
}
