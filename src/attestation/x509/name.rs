//! RFC 4514 text of certificate names, byte for byte as `x509_cert`'s `Display` writes it, but
//! without its attribute-name lookup. That lookup scans const-oid's whole OID database for
//! every attribute, and took about a tenth of the time of a cached verification.

use der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::oid::ObjectIdentifier;
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::Name;

/// The attribute types of AWS's and the simulator's certificates, each with the name `Display`
/// writes for it: the shortest of its names in const-oid's database, uppercased. A unit test
/// checks the names against the database.
const KNOWN_ATTRIBUTES: [(ObjectIdentifier, &str); 6] = [
    (ObjectIdentifier::new_unwrap("2.5.4.3"), "CN"),
    (ObjectIdentifier::new_unwrap("2.5.4.6"), "C"),
    (ObjectIdentifier::new_unwrap("2.5.4.7"), "L"),
    (ObjectIdentifier::new_unwrap("2.5.4.8"), "ST"),
    (ObjectIdentifier::new_unwrap("2.5.4.10"), "O"),
    (ObjectIdentifier::new_unwrap("2.5.4.11"), "OU"),
];

/// Formats `name` as `name.to_string()` does: RDNs in reverse order joined by `,`, the
/// attributes of one RDN joined by `+`.
pub fn format_name(name: &Name) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut text = String::new();
    for (position, rdn) in rdns.iter().rev().enumerate() {
        if position > 0 {
            text.push(',');
        }
        for (index, attribute) in rdn.iter().enumerate() {
            if index > 0 {
                text.push('+');
            }
            write_attribute(&mut text, attribute);
        }
    }
    text
}

/// Writes `TYPE=value` for a known type with a string value. Every other attribute is written
/// by `x509_cert` itself.
fn write_attribute(text: &mut String, attribute: &AttributeTypeAndValue) {
    let key = KNOWN_ATTRIBUTES
        .iter()
        .find(|(oid, _)| *oid == attribute.oid)
        .map(|(_, key)| *key);
    let (Some(key), Some(value)) = (key, string_value(attribute)) else {
        text.push_str(&attribute.to_string());
        return;
    };

    text.push_str(key);
    text.push('=');
    let mut characters = value.char_indices().peekable();
    while let Some((index, character)) = characters.next() {
        match character {
            '#' if index == 0 => text.push_str("\\#"),
            ' ' if index == 0 || characters.peek().is_none() => text.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                text.push('\\');
                text.push(character);
            }
            '\x00'..='\x1f' | '\x7f' => text.push_str(&format!("\\{:02x}", u32::from(character))),
            _ => text.push(character),
        }
    }
}

/// Returns the value of an attribute whose value is one of the string types `Display` prints
/// as text.
fn string_value(attribute: &AttributeTypeAndValue) -> Option<&str> {
    let value = &attribute.value;
    match value.tag() {
        Tag::PrintableString => PrintableStringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::TeletexString => TeletexStringRef::try_from(value).ok().map(|s| s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::str::FromStr;

    use der::oid::db::DB;

    use super::*;
    use crate::attestation::verify::inspect;
    use crate::attestation::x509::ParsedCertificate;

    #[test]
    fn known_names_match_oid_database() {
        for (oid, key) in KNOWN_ATTRIBUTES {
            let shortest = DB
                .find_names_for_oid(oid)
                .min_by_key(|name| name.len())
                .unwrap();
            assert_eq!(shortest.to_ascii_uppercase(), key, "{oid}");
        }
    }

    #[test]
    fn formats_real_names_like_display() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nitro");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|extension| extension != "cbor") {
                continue;
            }
            let document = inspect(&std::fs::read(&path).unwrap()).unwrap();
            let ders = document.cabundle().iter().map(Vec::as_slice);
            for der in ders.chain([document.certificate()]) {
                let certificate = ParsedCertificate::parse(der).unwrap();
                for name in [certificate.subject(), certificate.issuer()] {
                    assert_eq!(format_name(name), name.to_string(), "{}", path.display());
                    checked += 1;
                }
            }
        }
        assert!(checked >= 100, "{checked}");
    }

    #[test]
    fn formats_escapes_and_other_types_like_display() {
        let names = [
            "CN=a\\,b\\+c\\;d\\\"e\\<f\\>g\\\\h",
            "CN=\\#hash,O=trailing\\ ,OU=\\ leading",
            "CN=one+OU=two,C=US",
            "CN=plain,STREET=1 Main St,DC=example,UID=jdoe",
            "2.5.4.45=#0403616263,CN=x",
        ];
        for text in names {
            let name = Name::from_str(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(format_name(&name), name.to_string(), "{text}");
        }
    }
}
