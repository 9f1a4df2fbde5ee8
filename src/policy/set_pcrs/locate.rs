//! Finding the byte range of one value in JSON text, so that it can be replaced without
//! touching anything else.
//!
//! The scanner follows the JSON grammar only as far as needed to skip values; the caller
//! parses the text with the full loader before and after the edit.

/// Byte range `start..end` of the value at `path` (a sequence of object member names), or
/// `None` when the text does not have that shape. When a name repeats, the first member wins;
/// the policy loader rejects repeated names before this runs.
pub fn find_value(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        text,
        position: 0,
    };
    scanner.skip_whitespace();
    let mut range = (scanner.position, scanner.value_end()?);
    for name in path {
        scanner.position = range.0;
        range = scanner.find_member(name)?;
    }
    Some(range)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    position: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek() == Some(byte)).then(|| self.position += 1)
    }

    /// With the position at an object, returns the range of the value of member `name`.
    fn find_member(&mut self, name: &str) -> Option<(usize, usize)> {
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            return None;
        }
        loop {
            self.skip_whitespace();
            let key_start = self.position;
            let key_end = self.string_end()?;
            let key: String = serde_json::from_str(&self.text[key_start..key_end]).ok()?;
            self.position = key_end;
            self.expect(b':')?;
            self.skip_whitespace();
            let value_start = self.position;
            let value_end = self.value_end()?;
            if key == name {
                return Some((value_start, value_end));
            }
            self.position = value_end;
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.position += 1,
                _ => return None,
            }
        }
    }

    /// End (exclusive) of the value that starts at the current position.
    fn value_end(&self) -> Option<usize> {
        match self.peek()? {
            b'"' => self.string_end(),
            b'{' | b'[' => self.container_end(),
            _ => {
                // Numbers, true, false, null: up to the next delimiter.
                let rest = &self.bytes[self.position..];
                let length = rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len());
                Some(self.position + length)
            }
        }
    }

    /// End of the string starting at the current position, honouring backslash escapes.
    fn string_end(&self) -> Option<usize> {
        if self.peek()? != b'"' {
            return None;
        }
        let mut index = self.position + 1;
        while index < self.bytes.len() {
            match self.bytes[index] {
                b'\\' => index += 2,
                b'"' => return Some(index + 1),
                _ => index += 1,
            }
        }
        None
    }

    /// End of the object or array starting at the current position, skipping brackets that
    /// appear inside strings.
    fn container_end(&self) -> Option<usize> {
        let mut depth = 0usize;
        let mut index = self.position;
        while index < self.bytes.len() {
            match self.bytes[index] {
                b'"' => {
                    let inner = Scanner {
                        bytes: self.bytes,
                        text: self.text,
                        position: index,
                    };
                    index = inner.string_end()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(index + 1);
                    }
                }
                _ => {}
            }
            index += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_value() {
        let text = r#"{"a": 1, "keys": {"x": {"allow": [1]}, "app": {"key_id": "k", "allow": [ {"b": "]}"} ], "z": null}}}"#;
        let (start, end) = find_value(text, &["keys", "app", "allow"]).unwrap();
        assert_eq!(&text[start..end], r#"[ {"b": "]}"} ]"#);
    }

    #[test]
    fn decodes_escaped_member_names() {
        let text = r#"{"k\u0065ys": {"app": 5}}"#;
        let (start, end) = find_value(text, &["keys", "app"]).unwrap();
        assert_eq!(&text[start..end], "5");
    }

    #[test]
    fn missing_member_is_none() {
        assert_eq!(find_value(r#"{"keys": {}}"#, &["keys", "app"]), None);
    }
}
