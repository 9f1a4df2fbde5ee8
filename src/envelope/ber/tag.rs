//! BER identifier octets and their names in error messages.

use std::fmt;

/// A BER identifier octet (class, constructed bit and a tag number of at most 30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag(pub(super) u8);

impl Tag {
    pub const INTEGER: Tag = Tag(0x02);
    pub const OCTET_STRING: Tag = Tag(0x04);
    pub const NULL: Tag = Tag(0x05);
    pub const OBJECT_IDENTIFIER: Tag = Tag(0x06);
    pub const SEQUENCE: Tag = Tag(0x30);
    pub const SET: Tag = Tag(0x31);

    const CONSTRUCTED: u8 = 0x20;
    const CONTEXT_SPECIFIC: u8 = 0x80;

    /// Context-specific tag `[number]` in primitive or constructed form; `number` is at most 30.
    pub(crate) const fn context(number: u8, constructed: bool) -> Tag {
        let form = if constructed { Self::CONSTRUCTED } else { 0 };
        Tag(Self::CONTEXT_SPECIFIC | form | (number & 0x1f))
    }

    /// Returns the identifier octet as it appears in the encoding.
    pub const fn byte(self) -> u8 {
        self.0
    }

    pub const fn is_constructed(self) -> bool {
        self.0 & Self::CONSTRUCTED != 0
    }

    /// Returns the same tag with the constructed bit set, as BER uses for segmented strings.
    pub(super) const fn constructed_form(self) -> Tag {
        Tag(self.0 | Self::CONSTRUCTED)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.0 & 0x1f;
        let form = if self.is_constructed() {
            "constructed"
        } else {
            "primitive"
        };
        match self.0 >> 6 {
            0 => {
                let name = match number {
                    0x00 => "end-of-contents",
                    0x01 => "BOOLEAN",
                    0x02 => "INTEGER",
                    0x03 => "BIT STRING",
                    0x04 => "OCTET STRING",
                    0x05 => "NULL",
                    0x06 => "OBJECT IDENTIFIER",
                    0x0c => "UTF8String",
                    0x10 => "SEQUENCE",
                    0x11 => "SET",
                    0x13 => "PrintableString",
                    _ => return write!(f, "universal {number} {form} (0x{:02x})", self.0),
                };
                if matches!(number, 0x10 | 0x11) || !self.is_constructed() {
                    write!(f, "{name} (0x{:02x})", self.0)
                } else {
                    write!(f, "{name} {form} (0x{:02x})", self.0)
                }
            }
            1 => write!(f, "[APPLICATION {number}] {form} (0x{:02x})", self.0),
            2 => write!(f, "[{number}] {form} (0x{:02x})", self.0),
            _ => write!(f, "[PRIVATE {number}] {form} (0x{:02x})", self.0),
        }
    }
}
