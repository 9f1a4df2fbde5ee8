//! A bounded reader for the subset of BER (ITU-T X.690) that CMS envelopes use.
//!
//! AWS KMS emits `CiphertextForRecipient` in BER: indefinite lengths and an encrypted content
//! split into OCTET STRING segments. DER is a subset of BER, so DER input reads too. The only
//! entry point is [`Reader::ber`], so no caller reads BER by accident.
//!
//! Every length is checked against the bytes that remain in the enclosing element before
//! anything is sliced or allocated, nesting is limited to [`MAX_DEPTH`] levels, and errors carry
//! the byte offset from the start of the input. Identifiers with tag numbers above 30 (the
//! multi-byte form) are rejected because no CMS structure read here uses them.

use std::borrow::Cow;

mod tag;
#[cfg(test)]
mod tests;
mod values;

pub use tag::Tag;

use super::EnvelopeError;

/// Maximum nesting of constructed elements, counting the outermost. KMS envelopes nest 10
/// levels deep, and an issuer Name in an issuerAndSerialNumber nests 6.
pub(crate) const MAX_DEPTH: usize = 32;

/// Maximum number of length octets in the long form. Four octets describe lengths up to
/// 4 GiB, far beyond any envelope.
const MAX_LENGTH_OCTETS: usize = 4;

/// Identifier and length of one element.
struct Header {
    tag: Tag,
    /// Offset of the identifier octet.
    offset: usize,
    /// Offset of the first content octet.
    content_offset: usize,
    /// Content length, or `None` for the indefinite form.
    length: Option<usize>,
}

/// Primitive content borrowed from the input, with the offset of its first octet.
#[derive(Debug)]
pub(crate) struct Primitive<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) offset: usize,
}

/// A cursor over the contents of one element (or over the whole input at the top level).
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    position: usize,
    /// Offset one past the last octet this reader may consume.
    limit: usize,
    /// The contents end with an end-of-contents marker (`00 00`) rather than at `limit`.
    indefinite: bool,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `input` as BER: definite and indefinite lengths, long-form lengths that
    /// are not minimal, and constructed OCTET STRINGs are all accepted.
    pub(crate) fn ber(input: &'a [u8]) -> Self {
        Reader {
            input,
            position: 0,
            limit: input.len(),
            indefinite: false,
            depth: 0,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    /// Returns whether every element of these contents has been read: the end of a definite
    /// length, or the end-of-contents marker of an indefinite one.
    pub(crate) fn is_at_end(&self) -> bool {
        if self.indefinite {
            self.remaining().starts_with(&[0, 0])
        } else {
            self.position >= self.limit
        }
    }

    /// Returns the tag of the next element without consuming it, or `None` at the end.
    pub(crate) fn peek_tag(&self) -> Option<Tag> {
        if self.is_at_end() {
            return None;
        }
        self.remaining().first().map(|&byte| Tag(byte))
    }

    /// Requires that the whole input has been read, for the outermost structure.
    pub(crate) fn finish_input(&self, structure: &'static str) -> Result<(), EnvelopeError> {
        if self.position < self.input.len() {
            return Err(EnvelopeError::TrailingData {
                structure,
                len: self.input.len() - self.position,
                offset: self.position,
            });
        }
        Ok(())
    }

    /// Reads a primitive element with tag `tag` and returns its content.
    pub(crate) fn read_primitive(
        &mut self,
        structure: &'static str,
        tag: Tag,
    ) -> Result<Primitive<'a>, EnvelopeError> {
        let header = self.read_expected(structure, tag)?;
        let bytes = self.definite_content(structure, &header)?;
        self.position = header.content_offset + bytes.len();
        Ok(Primitive {
            bytes,
            offset: header.content_offset,
        })
    }

    /// Reads a constructed element with tag `tag`, passing a reader over its contents to
    /// `read_contents`, which must consume every element inside.
    pub(crate) fn read_constructed<T>(
        &mut self,
        structure: &'static str,
        tag: Tag,
        read_contents: impl FnOnce(&mut Reader<'a>) -> Result<T, EnvelopeError>,
    ) -> Result<T, EnvelopeError> {
        let header = self.read_expected(structure, tag)?;
        let mut contents = self.contents_reader(structure, &header)?;
        let value = read_contents(&mut contents)?;
        contents.finish(structure)?;
        self.position = contents.position;
        Ok(value)
    }

    /// Skips one element of any tag and returns its tag. Constructed elements are walked, so
    /// their contents must be well-formed and within the depth limit too.
    pub(crate) fn skip(&mut self, structure: &'static str) -> Result<Tag, EnvelopeError> {
        let header = self.header(structure)?;
        if !header.tag.is_constructed() {
            let content = self.definite_content(structure, &header)?;
            self.position = header.content_offset + content.len();
            return Ok(header.tag);
        }

        let mut contents = self.contents_reader(structure, &header)?;
        while !contents.is_at_end() {
            contents.skip(structure)?;
        }
        contents.finish(structure)?;
        self.position = contents.position;
        Ok(header.tag)
    }

    /// Reads an OCTET STRING-like element: primitive `tag` with the value in one piece, or its
    /// constructed form holding OCTET STRING segments (themselves primitive or constructed),
    /// which are joined. Returns the value and the offset of the element.
    pub(crate) fn read_octet_string(
        &mut self,
        structure: &'static str,
        tag: Tag,
    ) -> Result<(Cow<'a, [u8]>, usize), EnvelopeError> {
        let offset = self.position;
        if self.peek_tag() == Some(tag.constructed_form()) {
            let mut value = Vec::new();
            self.read_constructed(structure, tag.constructed_form(), |segments| {
                segments.append_segments(structure, &mut value)
            })?;
            return Ok((Cow::Owned(value), offset));
        }

        let primitive = self.read_primitive(structure, tag)?;
        Ok((Cow::Borrowed(primitive.bytes), offset))
    }

    /// Appends the values of the OCTET STRING segments that make up these contents.
    fn append_segments(
        &mut self,
        structure: &'static str,
        value: &mut Vec<u8>,
    ) -> Result<(), EnvelopeError> {
        while let Some(tag) = self.peek_tag() {
            if tag == Tag::OCTET_STRING.constructed_form() {
                self.read_constructed(structure, tag, |nested| {
                    nested.append_segments(structure, value)
                })?;
            } else {
                // Each segment is a slice of the input, so `value` never outgrows the input.
                let segment = self.read_primitive(structure, Tag::OCTET_STRING)?;
                value.extend_from_slice(segment.bytes);
            }
        }
        Ok(())
    }

    /// Reads the next header and requires tag `expected`.
    fn read_expected(
        &mut self,
        structure: &'static str,
        expected: Tag,
    ) -> Result<Header, EnvelopeError> {
        if self.is_at_end() {
            return Err(EnvelopeError::Missing {
                structure,
                expected,
                offset: self.position,
            });
        }
        let header = self.header(structure)?;
        if header.tag != expected {
            return Err(EnvelopeError::UnexpectedTag {
                structure,
                expected,
                found: header.tag,
                offset: header.offset,
            });
        }
        Ok(header)
    }

    /// Parses the identifier and length octets at the current position without moving it.
    fn header(&self, structure: &'static str) -> Result<Header, EnvelopeError> {
        let offset = self.position;
        let bytes = self.remaining();
        let invalid = |reason| EnvelopeError::InvalidEncoding {
            structure,
            offset,
            reason,
        };
        let truncated = |needed: usize| EnvelopeError::Truncated {
            structure,
            offset,
            needed,
            available: bytes.len(),
        };

        let (&identifier, rest) = bytes.split_first().ok_or_else(|| truncated(2))?;
        let tag = Tag(identifier);
        if identifier == 0 {
            // A lone 0x00 at the end is most likely the start of a cut-off end-of-contents marker.
            if rest.is_empty() {
                return Err(truncated(2));
            }
            return Err(invalid(
                "end-of-contents marker where an element was expected",
            ));
        }
        if identifier & 0x1f == 0x1f {
            return Err(invalid("multi-byte tag numbers are not supported"));
        }

        let (&first_length_octet, rest) = rest.split_first().ok_or_else(|| truncated(2))?;
        let (length, length_octets) = match first_length_octet {
            0x00..=0x7f => (Some(usize::from(first_length_octet)), 0),
            0x80 if tag.is_constructed() => (None, 0),
            0x80 => return Err(invalid("indefinite length on a primitive element")),
            0xff => return Err(invalid("length octet 0xff is reserved")),
            _ => {
                let count = usize::from(first_length_octet & 0x7f);
                if count > MAX_LENGTH_OCTETS {
                    return Err(invalid("length needs more than 4 octets"));
                }
                let octets = rest.get(..count).ok_or_else(|| truncated(2 + count))?;
                let length = octets
                    .iter()
                    .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
                (Some(length), count)
            }
        };

        let content_offset = offset + 2 + length_octets;
        if let Some(length) = length {
            let available = self.limit.saturating_sub(content_offset);
            if length > available {
                return Err(EnvelopeError::Truncated {
                    structure,
                    offset: content_offset,
                    needed: length,
                    available,
                });
            }
        }
        Ok(Header {
            tag,
            offset,
            content_offset,
            length,
        })
    }

    /// Returns the content of a definite-length element, whose bounds `header` already checked.
    fn definite_content(
        &self,
        structure: &'static str,
        header: &Header,
    ) -> Result<&'a [u8], EnvelopeError> {
        let content = header.length.and_then(|length| {
            self.input
                .get(header.content_offset..header.content_offset.checked_add(length)?)
        });
        content.ok_or(EnvelopeError::Truncated {
            structure,
            offset: header.content_offset,
            needed: header.length.unwrap_or(0),
            available: self.limit.saturating_sub(header.content_offset),
        })
    }

    /// Creates a reader over the contents of the constructed element described by `header`.
    fn contents_reader(
        &self,
        structure: &'static str,
        header: &Header,
    ) -> Result<Reader<'a>, EnvelopeError> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(EnvelopeError::TooDeep {
                structure,
                offset: header.offset,
                max: MAX_DEPTH,
            });
        }
        let (limit, indefinite) = match header.length {
            Some(length) => (header.content_offset + length, false),
            None => (self.limit, true),
        };
        Ok(Reader {
            input: self.input,
            position: header.content_offset,
            limit,
            indefinite,
            depth,
        })
    }

    /// Requires that the contents were read completely and consumes the end-of-contents marker
    /// of an indefinite-length element.
    fn finish(&mut self, structure: &'static str) -> Result<(), EnvelopeError> {
        if self.is_at_end() {
            if self.indefinite {
                self.position += 2;
            }
            return Ok(());
        }
        let remaining = self.remaining();
        let end_marker_cut_off =
            self.indefinite && remaining.len() < 2 && remaining.iter().all(|&byte| byte == 0);
        match remaining.first() {
            Some(&byte) if !end_marker_cut_off => Err(EnvelopeError::UnexpectedElement {
                structure,
                found: Tag(byte),
                offset: self.position,
            }),
            // Nothing, or only the first octet of the end-of-contents marker, is left.
            _ => Err(EnvelopeError::Truncated {
                structure,
                offset: self.position,
                needed: 2,
                available: remaining.len(),
            }),
        }
    }

    fn remaining(&self) -> &'a [u8] {
        self.input.get(self.position..self.limit).unwrap_or(&[])
    }
}
