//! Typed readers for the payload map's fields, each rejecting the wrong type, size or value
//! with an error that names the field.

use std::collections::BTreeMap;

use super::{
    CABUNDLE, DocumentError, KNOWN_FIELDS, MAX_CERTIFICATE_LEN, MAX_OPTIONAL_FIELD_LEN, MAX_PCRS,
};
use crate::attestation::cbor::{Item, Value};
use crate::attestation::pcr::{PcrIndex, PcrValue, SHA384_LEN};

/// The payload map's values by field name.
pub(super) struct Fields<'i, 'a> {
    values: BTreeMap<&'static str, &'i Item<'a>>,
}

impl<'i, 'a> Fields<'i, 'a> {
    pub(super) fn collect(item: &'i Item<'a>) -> Result<Self, DocumentError> {
        let Value::Map { entries, .. } = item.value() else {
            return Err(DocumentError::NotAMap {
                found: item.type_name(),
            });
        };
        let mut values = BTreeMap::new();
        for (key, value) in entries {
            let Value::Text { content, .. } = key.value() else {
                return Err(DocumentError::NonTextKey {
                    offset: key.offset(),
                    found: key.type_name(),
                });
            };
            let Some(name) = KNOWN_FIELDS.iter().find(|name| **name == content.as_ref()) else {
                return Err(DocumentError::UnknownField {
                    name: content.to_string(),
                });
            };
            // The CBOR reader rejects duplicate keys, so each name is inserted once.
            values.insert(*name, value);
        }
        Ok(Self { values })
    }

    pub(super) fn get(&self, field: &'static str) -> Option<&'i Item<'a>> {
        self.values.get(field).copied()
    }

    pub(super) fn required(&self, field: &'static str) -> Result<&'i Item<'a>, DocumentError> {
        self.get(field).ok_or(DocumentError::MissingField { field })
    }
}

pub(super) fn wrong_type(field: &str, expected: &'static str, found: &Value<'_>) -> DocumentError {
    DocumentError::WrongType {
        field: field.to_owned(),
        expected,
        found: found.type_name(),
    }
}

pub(super) fn invalid(field: &str, detail: String) -> DocumentError {
    DocumentError::Invalid {
        field: field.to_owned(),
        detail,
    }
}

pub(super) fn text<'i>(item: &'i Item<'_>, field: &str) -> Result<&'i str, DocumentError> {
    match item.value() {
        Value::Text { content, .. } => Ok(content.as_ref()),
        other => Err(wrong_type(field, "a text string", other)),
    }
}

fn bytes<'i>(item: &'i Item<'_>, field: &str) -> Result<&'i [u8], DocumentError> {
    match item.value() {
        Value::Bytes { content, .. } => Ok(content.as_ref()),
        other => Err(wrong_type(field, "a byte string", other)),
    }
}

pub(super) fn bounded_bytes<'i>(
    item: &'i Item<'_>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<&'i [u8], DocumentError> {
    let content = bytes(item, field)?;
    if content.len() > max {
        return Err(DocumentError::TooLong {
            field: field.to_owned(),
            length: content.len(),
            limit: max,
        });
    }
    if content.len() < min {
        return Err(invalid(
            field,
            format!("is {} bytes; expected at least {min}", content.len()),
        ));
    }
    Ok(content)
}

/// Reads `public_key`, `user_data` or `nonce`: absent or null is `None`.
pub(super) fn optional_bytes(
    item: Option<&Item<'_>>,
    field: &str,
) -> Result<Option<Vec<u8>>, DocumentError> {
    let Some(item) = item else {
        return Ok(None);
    };
    match item.value() {
        Value::Null => Ok(None),
        Value::Bytes { .. } => {
            let content = bounded_bytes(item, field, 0, MAX_OPTIONAL_FIELD_LEN)?;
            Ok(Some(content.to_vec()))
        }
        other => Err(wrong_type(field, "a byte string or null", other)),
    }
}

pub(super) fn parse_pcrs(
    item: &Item<'_>,
    field: &str,
) -> Result<BTreeMap<PcrIndex, PcrValue>, DocumentError> {
    let Value::Map { entries, .. } = item.value() else {
        return Err(wrong_type(
            field,
            "a map of PCR index to digest",
            item.value(),
        ));
    };
    if entries.is_empty() || entries.len() > MAX_PCRS {
        return Err(invalid(
            field,
            format!("has {} entries; expected 1 to {MAX_PCRS}", entries.len()),
        ));
    }

    let mut pcrs = BTreeMap::new();
    for (key, value) in entries {
        let index = match key.value() {
            Value::Unsigned(index) => PcrIndex::new(*index)
                .map_err(|_| invalid(field, format!("has PCR index {index}; expected 0 to 31")))?,
            other => {
                return Err(wrong_type(
                    &format!("{field} key"),
                    "an unsigned integer",
                    other,
                ));
            }
        };
        let entry = format!("{field}[{index}]");
        let digest = bytes(value, &entry)?;
        if digest.len() != SHA384_LEN {
            return Err(invalid(
                &entry,
                format!("is {} bytes; expected {SHA384_LEN} (SHA384)", digest.len()),
            ));
        }
        let digest =
            PcrValue::from_bytes(digest).map_err(|error| invalid(&entry, error.to_string()))?;
        // Duplicate indexes were rejected as duplicate map keys.
        pcrs.insert(index, digest);
    }
    Ok(pcrs)
}

pub(super) fn parse_cabundle(item: &Item<'_>) -> Result<Vec<Vec<u8>>, DocumentError> {
    let Value::Array { items, .. } = item.value() else {
        return Err(wrong_type(
            CABUNDLE,
            "an array of byte strings",
            item.value(),
        ));
    };
    if items.is_empty() {
        return Err(invalid(
            CABUNDLE,
            "is empty; expected at least the root certificate".into(),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(position, item)| {
            let field = format!("{CABUNDLE}[{position}]");
            bounded_bytes(item, &field, 1, MAX_CERTIFICATE_LEN).map(<[u8]>::to_vec)
        })
        .collect()
}
