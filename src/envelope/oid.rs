//! Object identifiers that CMS envelopes from KMS use, compared by their encoded content octets.

use std::fmt;

/// The content octets of an OBJECT IDENTIFIER whose encoding has been checked: at least one
/// subidentifier, each in minimal base-128 form and at most 63 bits long.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectIdentifier<'a>(&'a [u8]);

/// id-data, RFC 5652 section 4: 1.2.840.113549.1.7.1.
pub(crate) const ID_DATA: ObjectIdentifier<'static> =
    ObjectIdentifier(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);
/// id-envelopedData, RFC 5652 section 6.1: 1.2.840.113549.1.7.3.
pub(crate) const ID_ENVELOPED_DATA: ObjectIdentifier<'static> =
    ObjectIdentifier(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03]);
/// id-RSAES-OAEP, RFC 8017 appendix C: 1.2.840.113549.1.1.7.
pub(crate) const ID_RSAES_OAEP: ObjectIdentifier<'static> =
    ObjectIdentifier(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07]);
/// id-mgf1, RFC 8017 appendix C: 1.2.840.113549.1.1.8.
pub(crate) const ID_MGF1: ObjectIdentifier<'static> =
    ObjectIdentifier(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08]);
/// id-sha256, RFC 5754 section 2.2: 2.16.840.1.101.3.4.2.1.
pub(crate) const ID_SHA256: ObjectIdentifier<'static> =
    ObjectIdentifier(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
/// id-aes256-CBC, RFC 3565 section 4.1: 2.16.840.1.101.3.4.1.42.
pub(crate) const ID_AES256_CBC: ObjectIdentifier<'static> =
    ObjectIdentifier(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]);

/// Names for identifiers that an unsupported envelope is likely to carry, so errors can show
/// more than the dotted form.
const KNOWN_NAMES: &[(&[u8], &str)] = &[
    (ID_DATA.0, "id-data"),
    (ID_ENVELOPED_DATA.0, "id-envelopedData"),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02],
        "id-signedData",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        "rsaEncryption",
    ),
    (ID_RSAES_OAEP.0, "id-RSAES-OAEP"),
    (ID_MGF1.0, "id-mgf1"),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09],
        "id-pSpecified",
    ),
    (&[0x2b, 0x0e, 0x03, 0x02, 0x1a], "id-sha1"),
    (ID_SHA256.0, "id-sha256"),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
        "id-sha384",
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
        "id-sha512",
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02],
        "id-aes128-CBC",
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16],
        "id-aes192-CBC",
    ),
    (ID_AES256_CBC.0, "id-aes256-CBC"),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e],
        "id-aes256-GCM",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07],
        "des-ede3-cbc",
    ),
];

/// Maximum octets in one subidentifier: 9 octets of 7 bits fit in a `u64`.
const MAX_SUBIDENTIFIER_OCTETS: usize = 9;

impl<'a> ObjectIdentifier<'a> {
    /// Checks the content octets of an OBJECT IDENTIFIER and returns the reason if they are
    /// not a valid encoding.
    pub(crate) fn from_content(content: &'a [u8]) -> Result<Self, &'static str> {
        if content.is_empty() {
            return Err("OBJECT IDENTIFIER has no content octets");
        }
        if content.last().is_some_and(|&byte| byte & 0x80 != 0) {
            return Err("OBJECT IDENTIFIER ends inside a subidentifier");
        }

        let mut octets_in_subidentifier = 0;
        for &byte in content {
            let starts_subidentifier = octets_in_subidentifier == 0;
            if starts_subidentifier && byte == 0x80 {
                return Err("OBJECT IDENTIFIER subidentifier has a redundant leading 0x80 octet");
            }
            octets_in_subidentifier += 1;
            if octets_in_subidentifier > MAX_SUBIDENTIFIER_OCTETS {
                return Err("OBJECT IDENTIFIER subidentifier is longer than 63 bits");
            }
            if byte & 0x80 == 0 {
                octets_in_subidentifier = 0;
            }
        }
        Ok(ObjectIdentifier(content))
    }

    /// Returns the well-known name of this identifier, if it is one that KMS envelopes or
    /// common alternatives use.
    pub(crate) fn name(&self) -> Option<&'static str> {
        KNOWN_NAMES
            .iter()
            .find(|(content, _)| *content == self.0)
            .map(|(_, name)| *name)
    }

    /// Formats the identifier for an error message: dotted form, then the name if known.
    pub(crate) fn describe(&self) -> String {
        match self.name() {
            Some(name) => format!("{self} ({name})"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for ObjectIdentifier<'_> {
    /// Writes the dotted-decimal form, such as `1.2.840.113549.1.7.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value: u64 = 0;
        let mut first = true;
        for &byte in self.0 {
            // `from_content` limits each subidentifier to 63 bits, so the shift cannot overflow.
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 != 0 {
                continue;
            }
            if first {
                // X.690 8.19.4: the first subidentifier packs the first two arcs.
                let (arc1, arc2) = match value {
                    0..=39 => (0, value),
                    40..=79 => (1, value - 40),
                    _ => (2, value - 80),
                };
                write!(f, "{arc1}.{arc2}")?;
                first = false;
            } else {
                write!(f, ".{value}")?;
            }
            value = 0;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectIdentifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectIdentifier({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_identifiers_in_dotted_form() {
        assert_eq!(ID_ENVELOPED_DATA.to_string(), "1.2.840.113549.1.7.3");
        assert_eq!(ID_AES256_CBC.to_string(), "2.16.840.1.101.3.4.1.42");
        assert_eq!(ID_SHA256.describe(), "2.16.840.1.101.3.4.2.1 (id-sha256)");
    }

    #[test]
    fn formats_unknown_identifier_without_name() {
        let oid = ObjectIdentifier::from_content(&[0x2a, 0x03]).unwrap();
        assert_eq!(oid.describe(), "1.2.3");
    }

    #[test]
    fn rejects_invalid_identifier_encodings() {
        assert!(ObjectIdentifier::from_content(&[]).is_err());
        assert!(ObjectIdentifier::from_content(&[0x2a, 0x86]).is_err());
        assert!(ObjectIdentifier::from_content(&[0x2a, 0x80, 0x01]).is_err());
        assert!(
            ObjectIdentifier::from_content(&[
                0x2a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .is_err()
        );
    }
}
