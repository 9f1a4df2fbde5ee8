//! Readers for the primitive values CMS envelopes contain: OBJECT IDENTIFIER, NULL and small
//! INTEGERs.

use super::{Reader, Tag};
use crate::envelope::EnvelopeError;
use crate::envelope::oid::ObjectIdentifier;

impl<'a> Reader<'a> {
    /// Reads an OBJECT IDENTIFIER and checks its encoding.
    pub(crate) fn read_oid(
        &mut self,
        structure: &'static str,
    ) -> Result<ObjectIdentifier<'a>, EnvelopeError> {
        let primitive = self.read_primitive(structure, Tag::OBJECT_IDENTIFIER)?;
        ObjectIdentifier::from_content(primitive.bytes).map_err(|reason| {
            EnvelopeError::InvalidEncoding {
                structure,
                offset: primitive.offset,
                reason,
            }
        })
    }

    /// Reads a NULL, which must have no content.
    pub(crate) fn read_null(&mut self, structure: &'static str) -> Result<(), EnvelopeError> {
        let primitive = self.read_primitive(structure, Tag::NULL)?;
        if !primitive.bytes.is_empty() {
            return Err(EnvelopeError::InvalidEncoding {
                structure,
                offset: primitive.offset,
                reason: "NULL has content octets",
            });
        }
        Ok(())
    }

    /// Reads a non-negative INTEGER that fits in a `u32`, such as a CMSVersion. Returns the
    /// value and the offset of its content.
    pub(crate) fn read_small_unsigned(
        &mut self,
        structure: &'static str,
    ) -> Result<(u32, usize), EnvelopeError> {
        let primitive = self.read_primitive(structure, Tag::INTEGER)?;
        let invalid = |reason| EnvelopeError::InvalidEncoding {
            structure,
            offset: primitive.offset,
            reason,
        };
        let content = primitive.bytes;

        // X.690 8.3.2 applies to BER as well: the first nine bits are never all zero or all one.
        match content {
            [] => return Err(invalid("INTEGER has no content octets")),
            [first, ..] if first & 0x80 != 0 => return Err(invalid("INTEGER is negative")),
            [0, second, ..] if second & 0x80 == 0 => {
                return Err(invalid("INTEGER has a redundant leading zero octet"));
            }
            _ => {}
        }

        let significant = content.strip_prefix(&[0]).unwrap_or(content);
        if significant.len() > 4 {
            return Err(invalid("INTEGER does not fit in 32 bits"));
        }
        let value = significant
            .iter()
            .fold(0u32, |value, &byte| (value << 8) | u32::from(byte));
        Ok((value, primitive.offset))
    }
}
