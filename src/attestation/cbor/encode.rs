//! A minimal CBOR writer. Heads use the shortest form (RFC 8949 preferred serialization);
//! the caller writes container contents in order after each container head.

/// Appends CBOR items to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buffer: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buffer
    }

    fn head(&mut self, major: u8, argument: u64) -> &mut Self {
        let major = major << 5;
        // Each cast below is guarded by the range test in the same arm.
        match argument {
            0..=23 => self.buffer.push(major | argument as u8),
            24..=0xff => self.buffer.extend_from_slice(&[major | 24, argument as u8]),
            0x100..=0xffff => {
                self.buffer.push(major | 25);
                self.buffer
                    .extend_from_slice(&(argument as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.buffer.push(major | 26);
                self.buffer
                    .extend_from_slice(&(argument as u32).to_be_bytes());
            }
            _ => {
                self.buffer.push(major | 27);
                self.buffer.extend_from_slice(&argument.to_be_bytes());
            }
        }
        self
    }

    pub fn unsigned(&mut self, value: u64) -> &mut Self {
        self.head(0, value)
    }

    /// Writes the integer `value`, as major type 0 or 1.
    pub fn int(&mut self, value: i64) -> &mut Self {
        if value >= 0 {
            self.head(0, value.unsigned_abs())
        } else {
            // -1 - value is non-negative here and fits in u64.
            self.head(1, (-1 - value).unsigned_abs())
        }
    }

    pub fn bytes(&mut self, content: &[u8]) -> &mut Self {
        self.head(2, content.len() as u64);
        self.buffer.extend_from_slice(content);
        self
    }

    pub fn text(&mut self, content: &str) -> &mut Self {
        self.head(3, content.len() as u64);
        self.buffer.extend_from_slice(content.as_bytes());
        self
    }

    /// Writes the head of an array of `length` items; the items follow.
    pub fn array(&mut self, length: usize) -> &mut Self {
        self.head(4, length as u64)
    }

    /// Writes the head of a map of `length` entries; keys and values follow, alternating.
    pub fn map(&mut self, length: usize) -> &mut Self {
        self.head(5, length as u64)
    }

    /// Starts an indefinite-length map; close it with [`Encoder::end`].
    pub fn indefinite_map(&mut self) -> &mut Self {
        self.buffer.push(0xbf);
        self
    }

    /// Starts an indefinite-length array; close it with [`Encoder::end`].
    pub fn indefinite_array(&mut self) -> &mut Self {
        self.buffer.push(0x9f);
        self
    }

    /// Writes the break code that closes an indefinite-length item.
    pub fn end(&mut self) -> &mut Self {
        self.buffer.push(0xff);
        self
    }

    /// Writes the head of a tag; the tagged item follows.
    pub fn tag(&mut self, tag: u64) -> &mut Self {
        self.head(6, tag)
    }

    pub fn null(&mut self) -> &mut Self {
        self.buffer.push(0xf6);
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.buffer.push(if value { 0xf5 } else { 0xf4 });
        self
    }

    /// Appends bytes that already are encoded CBOR, unchanged.
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buffer.extend_from_slice(encoded);
        self
    }
}
