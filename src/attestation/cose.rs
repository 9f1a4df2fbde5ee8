//! COSE_Sign1 (RFC 9052, section 4.2) as the Nitro Security Module emits it, and the ES384
//! signature check over its `Sig_structure`.
//!
//! ```text
//! COSE_Sign1 = [
//!     protected:   bstr .cbor header_map,   ; NSM: A1 01 38 22, that is {1: -35} (ES384)
//!     unprotected: header_map,              ; NSM: {}
//!     payload:     bstr,                    ; the attestation document payload
//!     signature:   bstr                     ; ES384: r || s, 48 bytes each
//! ]
//! ```
//!
//! NSM sends it untagged; tag 18 (COSE_Sign1) is accepted too, and any other tag is rejected.
//! The signature is checked over the protected header and payload bytes exactly as received.

use std::borrow::Cow;

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};

use super::cbor::{self, CborError, Encoder, Item, Value};

/// CBOR tag of a tagged COSE_Sign1 (RFC 9052, section 2).
pub const COSE_SIGN1_TAG: u64 = 18;

/// COSE algorithm identifier of ECDSA with SHA-384 (ES384, RFC 9053).
pub const ES384: i64 = -35;

/// The protected header NSM writes: the map `{1: -35}` (alg: ES384).
pub const ES384_PROTECTED_HEADER: [u8; 4] = [0xa1, 0x01, 0x38, 0x22];

/// Length of an ES384 signature in COSE form: r and s as 48-byte big-endian integers.
pub const ES384_SIGNATURE_LEN: usize = 96;

/// Header parameter label of `alg` (RFC 9052, section 3.1).
const ALG_LABEL: u64 = 1;

/// A parsed COSE_Sign1 whose protected header is exactly `{1: -35}`. Its signature has not
/// been checked: see [`CoseSign1::verify_signature`].
#[derive(Debug, Clone)]
pub struct CoseSign1<'a> {
    tagged: bool,
    protected: &'a [u8],
    payload: &'a [u8],
    payload_offset: usize,
    signature: &'a [u8],
}

impl<'a> CoseSign1<'a> {
    /// Parses a COSE_Sign1, untagged or with tag 18, from the whole of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CoseError> {
        let item = cbor::decode(bytes).map_err(CoseError::Cbor)?;

        let (tagged, array) = match item.value() {
            Value::Tag {
                tag: COSE_SIGN1_TAG,
                item,
            } => (true, item.as_ref()),
            Value::Tag { tag, .. } => return Err(CoseError::Tag { found: *tag }),
            _ => (false, &item),
        };
        let fields = match array.value() {
            Value::Array { items, .. } if items.len() == 4 => items,
            Value::Array { items, .. } => {
                return Err(structure(format!(
                    "is an array of {} items; expected 4",
                    items.len()
                )));
            }
            Value::Tag { tag, .. } => return Err(CoseError::Tag { found: *tag }),
            other => {
                return Err(structure(format!(
                    "is {}; expected an array of 4 items",
                    other.type_name()
                )));
            }
        };

        let protected = definite_bytes(&fields[0], "protected header")?;
        check_protected_header(protected, fields[0].offset())?;
        check_unprotected_header(&fields[1])?;
        let payload = definite_bytes(&fields[2], "payload")?;
        let payload_offset = fields[2].offset() + fields[2].raw().len() - payload.len();
        let signature = definite_bytes(&fields[3], "signature")?;
        if signature.len() != ES384_SIGNATURE_LEN {
            return Err(structure(format!(
                "signature is {} bytes; expected {ES384_SIGNATURE_LEN} (ES384 r || s)",
                signature.len()
            )));
        }

        Ok(Self {
            tagged,
            protected,
            payload,
            payload_offset,
            signature,
        })
    }

    /// True when the input carried tag 18.
    pub fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// Content of the protected header byte string, as received.
    pub fn protected(&self) -> &'a [u8] {
        self.protected
    }

    /// Content of the payload byte string, as received.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Offset of the payload's first content byte in the parsed input.
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }

    pub fn signature(&self) -> &'a [u8] {
        self.signature
    }

    /// Builds the bytes that were signed (RFC 9052, section 4.4):
    /// `["Signature1", protected, external_aad = h'', payload]`, with the protected header and
    /// payload copied from the received bytes, never re-encoded from parsed values.
    pub fn signature_input(&self) -> Vec<u8> {
        signature_input(self.protected, self.payload)
    }

    /// Checks the ES384 signature with the signer's public key, an uncompressed P-384 point.
    pub fn verify_signature(&self, public_key: &[u8]) -> Result<(), SignatureRejected> {
        verify_es384(public_key, &self.signature_input(), self.signature)
    }
}

/// Encodes the COSE_Sign1 `Sig_structure` with an empty external_aad:
/// `["Signature1", protected, h'', payload]`, wrapping the given bytes unchanged.
pub fn signature_input(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    encoder
        .array(4)
        .text("Signature1")
        .bytes(protected)
        .bytes(&[])
        .bytes(payload);
    encoder.into_bytes()
}

/// Checks an ECDSA P-384 / SHA-384 signature in IEEE P1363 form (r || s, 96 bytes), as COSE
/// carries it. `public_key` is an uncompressed point (0x04 || x || y). Any s value in range is
/// accepted, including high-S, as real NSM signatures use both.
pub fn verify_es384(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureRejected> {
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key)
        .verify(message, signature)
        .map_err(|_| SignatureRejected)
}

/// The signature does not verify with the given key (or the key is not a valid point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct SignatureRejected;

/// Error for bytes that are not a COSE_Sign1 this verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoseError {
    #[error("COSE_Sign1: {0}")]
    Cbor(CborError),
    #[error("COSE_Sign1 has tag {found}; expected no tag or tag 18")]
    Tag { found: u64 },
    #[error("COSE_Sign1 {detail}")]
    Structure { detail: String },
    #[error("COSE protected header {detail}")]
    Header { detail: String },
    #[error("unsupported COSE algorithm {found}; expected -35 (ES384)")]
    Algorithm { found: String },
}

impl CoseError {
    /// Stable identifier of the rule that failed.
    pub fn rule(&self) -> &'static str {
        match self {
            CoseError::Cbor(_) => "cose.cbor",
            CoseError::Tag { .. } => "cose.tag",
            CoseError::Structure { .. } => "cose.structure",
            CoseError::Header { .. } => "cose.header",
            CoseError::Algorithm { .. } => "cose.algorithm",
        }
    }
}

fn structure(detail: String) -> CoseError {
    CoseError::Structure { detail }
}

fn header(detail: String) -> CoseError {
    CoseError::Header { detail }
}

/// Returns the content of a definite-length byte string. Indefinite-length strings are
/// rejected because the signed bytes must be one contiguous span of the input.
fn definite_bytes<'a>(item: &Item<'a>, field: &str) -> Result<&'a [u8], CoseError> {
    match item.value() {
        Value::Bytes {
            content: Cow::Borrowed(content),
            indefinite: false,
        } => Ok(content),
        Value::Bytes { .. } => Err(structure(format!(
            "{field} is an indefinite-length byte string; expected a definite length"
        ))),
        other => Err(structure(format!(
            "{field} is {}; expected a byte string",
            other.type_name()
        ))),
    }
}

/// Requires the protected header to decode to exactly `{1: -35}`.
fn check_protected_header(protected: &[u8], offset: usize) -> Result<(), CoseError> {
    let item = cbor::decode_at(protected, offset + 1)
        .map_err(|error| header(format!("is not valid CBOR: {error}")))?;
    let Value::Map { entries, .. } = item.value() else {
        return Err(header(format!(
            "is {}; expected the map {{1: -35}}",
            item.type_name()
        )));
    };

    let algorithm = entries
        .iter()
        .find(|(label, _)| label.value() == &Value::Unsigned(ALG_LABEL));
    let Some((_, algorithm)) = algorithm else {
        return Err(header("has no alg (label 1)".to_owned()));
    };
    match algorithm.value() {
        Value::Negative(34) => {}
        Value::Negative(n) => {
            let found = format!("-{}", u128::from(*n) + 1);
            return Err(CoseError::Algorithm {
                found: algorithm_name(&found),
            });
        }
        Value::Unsigned(n) => {
            return Err(CoseError::Algorithm {
                found: algorithm_name(&n.to_string()),
            });
        }
        Value::Text { content, .. } => {
            return Err(CoseError::Algorithm {
                found: format!("{content:?}"),
            });
        }
        other => {
            return Err(header(format!(
                "alg is {}; expected an integer",
                other.type_name()
            )));
        }
    }

    if entries.len() != 1 {
        return Err(header(format!(
            "has {} parameters; expected only alg (label 1)",
            entries.len()
        )));
    }
    Ok(())
}

/// Rejects an unprotected header that is not a map, or that repeats alg, which must be
/// protected (RFC 9052, section 3).
fn check_unprotected_header(item: &Item<'_>) -> Result<(), CoseError> {
    let Value::Map { entries, .. } = item.value() else {
        return Err(structure(format!(
            "unprotected header is {}; expected a map",
            item.type_name()
        )));
    };
    let has_alg = entries
        .iter()
        .any(|(label, _)| label.value() == &Value::Unsigned(ALG_LABEL));
    if has_alg {
        return Err(structure(
            "unprotected header contains alg (label 1); alg must be protected".to_owned(),
        ));
    }
    Ok(())
}

/// Names well-known COSE algorithms in messages ("-7 (ES256)").
fn algorithm_name(number: &str) -> String {
    let name = match number {
        "-7" => "ES256",
        "-35" => "ES384",
        "-36" => "ES512",
        "-8" => "EdDSA",
        "-37" => "PS256",
        "-257" => "RS256",
        _ => return number.to_owned(),
    };
    format!("{number} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign1(protected: &[u8], unprotected: &[u8], signature_len: usize) -> Vec<u8> {
        let mut encoder = Encoder::new();
        encoder
            .array(4)
            .bytes(protected)
            .raw(unprotected)
            .bytes(&[0xa0])
            .bytes(&vec![7; signature_len]);
        encoder.into_bytes()
    }

    #[test]
    fn parses_untagged_and_tag_18() {
        let bytes = sign1(&ES384_PROTECTED_HEADER, &[0xa0], 96);
        let untagged = CoseSign1::parse(&bytes).unwrap();
        assert!(!untagged.is_tagged());
        assert_eq!(untagged.payload(), [0xa0]);
        assert_eq!(untagged.payload_offset(), 8);
        let tagged = [&[0xd2][..], &bytes].concat();
        assert!(CoseSign1::parse(&tagged).unwrap().is_tagged());
    }

    #[test]
    fn builds_sig_structure_from_received_bytes() {
        let bytes = sign1(&ES384_PROTECTED_HEADER, &[0xa0], 96);
        let input = CoseSign1::parse(&bytes).unwrap().signature_input();
        let expected = hex::decode("846a5369676e61747572653144a10138224041a0").unwrap();
        assert_eq!(input, expected);
    }

    #[test]
    fn rejects_es256_header() {
        let bytes = sign1(&[0xa1, 0x01, 0x26], &[0xa0], 96);
        let error = CoseSign1::parse(&bytes).unwrap_err();
        assert_eq!(error.rule(), "cose.algorithm");
        assert_eq!(
            error.to_string(),
            "unsupported COSE algorithm -7 (ES256); expected -35 (ES384)"
        );
    }

    #[test]
    fn rejects_extra_protected_parameter() {
        let bytes = sign1(&[0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00], &[0xa0], 96);
        assert_eq!(CoseSign1::parse(&bytes).unwrap_err().rule(), "cose.header");
    }

    #[test]
    fn rejects_null_unprotected_header() {
        let bytes = sign1(&ES384_PROTECTED_HEADER, &[0xf6], 96);
        let error = CoseSign1::parse(&bytes).unwrap_err();
        assert_eq!(error.rule(), "cose.structure");
        assert!(error.to_string().contains("unprotected header is null"));
    }

    #[test]
    fn rejects_signature_of_other_length() {
        let bytes = sign1(&ES384_PROTECTED_HEADER, &[0xa0], 64);
        let error = CoseSign1::parse(&bytes).unwrap_err();
        assert_eq!(
            error.to_string(),
            "COSE_Sign1 signature is 64 bytes; expected 96 (ES384 r || s)"
        );
    }

    #[test]
    fn rejects_other_tag() {
        let bytes = [
            &[0xd8, 0x62][..],
            &sign1(&ES384_PROTECTED_HEADER, &[0xa0], 96),
        ]
        .concat();
        assert_eq!(
            CoseSign1::parse(&bytes).unwrap_err(),
            CoseError::Tag { found: 98 }
        );
    }

    #[test]
    fn rejects_indefinite_length_payload() {
        let mut encoder = Encoder::new();
        encoder.array(4).bytes(&ES384_PROTECTED_HEADER).map(0);
        encoder.raw(&[0x5f, 0x41, 0xa0, 0xff]).bytes(&[0; 96]);
        let error = CoseSign1::parse(&encoder.into_bytes()).unwrap_err();
        assert_eq!(error.rule(), "cose.structure");
    }
}
