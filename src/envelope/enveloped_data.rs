//! RFC 5652 ContentInfo, EnvelopedData, KeyTransRecipientInfo and EncryptedContentInfo, read
//! from BER or DER into typed values.

use std::borrow::Cow;

use super::EnvelopeError;
use super::algorithm::{AES_BLOCK_LEN, ContentEncryptionAlgorithm, KeyEncryptionAlgorithm};
use super::ber::{Reader, Tag};
use super::oid::{ID_DATA, ID_ENVELOPED_DATA};

/// Length of a subjectKeyIdentifier that KMS computes as SHA-256 of the recipient's
/// SubjectPublicKeyInfo DER.
pub(crate) const SUBJECT_KEY_IDENTIFIER_LEN: usize = 32;

/// An EnvelopedData with exactly one KeyTransRecipientInfo, as KMS `Decrypt` with `Recipient`
/// returns it in `CiphertextForRecipient` (RFC 5652 sections 3 and 6.1):
///
/// ```text
/// ContentInfo ::= SEQUENCE {
///     contentType ContentType,                -- id-envelopedData
///     content [0] EXPLICIT ANY DEFINED BY contentType }
///
/// EnvelopedData ::= SEQUENCE {
///     version CMSVersion,                     -- 0 or 2
///     originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
///     recipientInfos RecipientInfos,          -- SET OF RecipientInfo, exactly one here
///     encryptedContentInfo EncryptedContentInfo,
///     unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
/// ```
///
/// Real KMS sends BER with indefinite lengths and version 2; LocalStack sends DER with
/// version 0. originatorInfo and unprotectedAttrs are rejected because neither producer sends
/// them and key transport needs neither. Without them the RFC fixes the version to that of the
/// KeyTransRecipientInfo, and a different version is rejected.
#[derive(Debug)]
pub struct EnvelopedData<'a> {
    version: u32,
    recipient_info: KeyTransRecipientInfo<'a>,
    encrypted_content_info: EncryptedContentInfo<'a>,
}

/// The one recipient of an envelope (RFC 5652 section 6.2.1):
///
/// ```text
/// KeyTransRecipientInfo ::= SEQUENCE {
///     version CMSVersion,  -- always set to 0 or 2
///     rid RecipientIdentifier,
///     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
///     encryptedKey EncryptedKey }
/// ```
///
/// The version must be 0 with issuerAndSerialNumber and 2 with subjectKeyIdentifier, as the RFC
/// requires.
#[derive(Debug)]
pub struct KeyTransRecipientInfo<'a> {
    version: u32,
    rid: RecipientIdentifier,
    key_encryption_algorithm: KeyEncryptionAlgorithm,
    encrypted_key: Cow<'a, [u8]>,
}

/// Identifier of the recipient key in the envelope (RFC 5652 section 6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientIdentifier {
    /// `issuerAndSerialNumber`. LocalStack fills it with a placeholder issuer and serial 1, so
    /// its content is checked for shape only and not kept.
    IssuerAndSerialNumber,
    /// `subjectKeyIdentifier [0]`. KMS sets it to SHA-256 of the recipient's
    /// SubjectPublicKeyInfo DER; other lengths are rejected.
    SubjectKeyIdentifier([u8; SUBJECT_KEY_IDENTIFIER_LEN]),
}

/// The encrypted payload (RFC 5652 section 6.1):
///
/// ```text
/// EncryptedContentInfo ::= SEQUENCE {
///     contentType ContentType,                -- id-data
///     contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
///     encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
/// ```
///
/// encryptedContent may be primitive or constructed from OCTET STRING segments; the segments
/// are joined. An absent encryptedContent (detached content) is rejected.
#[derive(Debug)]
pub struct EncryptedContentInfo<'a> {
    content_encryption_algorithm: ContentEncryptionAlgorithm,
    encrypted_content: Cow<'a, [u8]>,
}

impl<'a> EnvelopedData<'a> {
    /// Parses a ContentInfo holding an EnvelopedData, in BER or DER, without decrypting
    /// anything. Every check that does not need the private key happens here, including the
    /// algorithm parameters, so a rejected envelope never reaches an RSA operation.
    pub fn parse(cms: &'a [u8]) -> Result<Self, EnvelopeError> {
        let mut reader = Reader::ber(cms);
        let enveloped_data =
            reader.read_constructed("ContentInfo", Tag::SEQUENCE, |content_info| {
                let content_type = content_info.read_oid("ContentInfo.contentType")?;
                if content_type != ID_ENVELOPED_DATA {
                    return Err(EnvelopeError::UnexpectedContentType {
                        field: "ContentInfo.contentType",
                        expected: "1.2.840.113549.1.7.3 (id-envelopedData)",
                        found: content_type.describe(),
                    });
                }
                content_info.read_constructed(
                    "ContentInfo.content",
                    Tag::context(0, true),
                    |content| content.read_constructed("EnvelopedData", Tag::SEQUENCE, read_fields),
                )
            })?;
        reader.finish_input("ContentInfo")?;
        Ok(enveloped_data)
    }

    /// CMSVersion of the EnvelopedData: 2 from KMS, 0 from LocalStack.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn recipient_info(&self) -> &KeyTransRecipientInfo<'a> {
        &self.recipient_info
    }

    pub fn encrypted_content_info(&self) -> &EncryptedContentInfo<'a> {
        &self.encrypted_content_info
    }
}

impl KeyTransRecipientInfo<'_> {
    /// CMSVersion of the recipient: 2 with subjectKeyIdentifier, 0 with issuerAndSerialNumber.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn rid(&self) -> &RecipientIdentifier {
        &self.rid
    }

    pub fn key_encryption_algorithm(&self) -> KeyEncryptionAlgorithm {
        self.key_encryption_algorithm
    }

    /// Returns the content-encryption key, encrypted with the recipient's RSA public key.
    pub fn encrypted_key(&self) -> &[u8] {
        &self.encrypted_key
    }
}

impl EncryptedContentInfo<'_> {
    pub fn content_encryption_algorithm(&self) -> ContentEncryptionAlgorithm {
        self.content_encryption_algorithm
    }

    /// Returns the ciphertext, with OCTET STRING segments joined.
    pub fn encrypted_content(&self) -> &[u8] {
        &self.encrypted_content
    }
}

/// Reads the fields inside the EnvelopedData SEQUENCE.
fn read_fields<'a>(fields: &mut Reader<'a>) -> Result<EnvelopedData<'a>, EnvelopeError> {
    let (version, offset) = fields.read_small_unsigned("EnvelopedData.version")?;
    if !matches!(version, 0 | 2) {
        return Err(EnvelopeError::UnsupportedVersion {
            structure: "EnvelopedData.version",
            found: version,
            expected: "0 or 2",
            offset,
        });
    }

    if fields.peek_tag() == Some(Tag::context(0, true)) {
        return Err(EnvelopeError::UnsupportedField {
            field: "EnvelopedData.originatorInfo",
            offset: fields.position(),
            reason: "key transport to one recipient does not use it",
        });
    }

    let recipient_info = fields.read_constructed(
        "EnvelopedData.recipientInfos",
        Tag::SET,
        read_recipient_infos,
    )?;

    // RFC 5652 section 6.1: without originatorInfo and unprotectedAttrs, and with key
    // transport recipients only, the version is 0 when every recipient is version 0, else 2.
    if version != recipient_info.version {
        return Err(EnvelopeError::UnsupportedVersion {
            structure: "EnvelopedData.version",
            found: version,
            expected: match recipient_info.version {
                0 => "0 (the recipientInfo is version 0)",
                _ => "2 (the recipientInfo is version 2)",
            },
            offset,
        });
    }

    let encrypted_content_info = fields.read_constructed(
        "EncryptedContentInfo",
        Tag::SEQUENCE,
        read_encrypted_content_info,
    )?;

    if fields.peek_tag() == Some(Tag::context(1, true)) {
        return Err(EnvelopeError::UnsupportedField {
            field: "EnvelopedData.unprotectedAttrs",
            offset: fields.position(),
            reason: "KMS does not send unprotected attributes",
        });
    }

    Ok(EnvelopedData {
        version,
        recipient_info,
        encrypted_content_info,
    })
}

/// Reads the RecipientInfos SET, which must hold exactly one KeyTransRecipientInfo.
fn read_recipient_infos<'a>(
    set: &mut Reader<'a>,
) -> Result<KeyTransRecipientInfo<'a>, EnvelopeError> {
    let offset = set.position();
    let recipient_info = match set.peek_tag() {
        None => return Err(EnvelopeError::RecipientCount { found: 0 }),
        Some(Tag::SEQUENCE) => read_key_trans_recipient_info(set)?,
        Some(tag) => {
            // RecipientInfo ::= CHOICE { ktri, kari [1], kekri [2], pwri [3], ori [4] }.
            let kind = match tag.byte() {
                0xa1 => "kari [1] (KeyAgreeRecipientInfo)",
                0xa2 => "kekri [2] (KEKRecipientInfo)",
                0xa3 => "pwri [3] (PasswordRecipientInfo)",
                0xa4 => "ori [4] (OtherRecipientInfo)",
                _ => {
                    return Err(EnvelopeError::UnexpectedChoice {
                        structure: "EnvelopedData.recipientInfos",
                        expected: "a RecipientInfo (SEQUENCE or [1] to [4])",
                        found: tag,
                        offset,
                    });
                }
            };
            return Err(EnvelopeError::UnsupportedRecipientInfo { kind, offset });
        }
    };

    let mut count = 1;
    while !set.is_at_end() {
        set.skip("EnvelopedData.recipientInfos")?;
        count += 1;
    }
    if count != 1 {
        return Err(EnvelopeError::RecipientCount { found: count });
    }
    Ok(recipient_info)
}

fn read_key_trans_recipient_info<'a>(
    reader: &mut Reader<'a>,
) -> Result<KeyTransRecipientInfo<'a>, EnvelopeError> {
    reader.read_constructed("KeyTransRecipientInfo", Tag::SEQUENCE, |fields| {
        let (version, version_offset) =
            fields.read_small_unsigned("KeyTransRecipientInfo.version")?;
        let rid = read_recipient_identifier(fields)?;

        let (expected_version, expected) = match rid {
            RecipientIdentifier::IssuerAndSerialNumber => (0, "0 (rid is issuerAndSerialNumber)"),
            RecipientIdentifier::SubjectKeyIdentifier(_) => (2, "2 (rid is subjectKeyIdentifier)"),
        };
        if version != expected_version {
            return Err(EnvelopeError::UnsupportedVersion {
                structure: "KeyTransRecipientInfo.version",
                found: version,
                expected,
                offset: version_offset,
            });
        }

        let key_encryption_algorithm = KeyEncryptionAlgorithm::read(fields)?;
        let (encrypted_key, _) =
            fields.read_octet_string("KeyTransRecipientInfo.encryptedKey", Tag::OCTET_STRING)?;
        Ok(KeyTransRecipientInfo {
            version,
            rid,
            key_encryption_algorithm,
            encrypted_key,
        })
    })
}

/// Reads `RecipientIdentifier ::= CHOICE { issuerAndSerialNumber, subjectKeyIdentifier [0] }`.
fn read_recipient_identifier(
    fields: &mut Reader<'_>,
) -> Result<RecipientIdentifier, EnvelopeError> {
    const STRUCTURE: &str = "KeyTransRecipientInfo.rid";
    let subject_key_identifier_tag = Tag::context(0, false);
    let offset = fields.position();

    match fields.peek_tag() {
        Some(Tag::SEQUENCE) => {
            // IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
            fields.read_constructed(STRUCTURE, Tag::SEQUENCE, |issuer_and_serial_number| {
                issuer_and_serial_number.read_constructed(
                    "KeyTransRecipientInfo.rid.issuer",
                    Tag::SEQUENCE,
                    |issuer| {
                        while !issuer.is_at_end() {
                            issuer.skip("KeyTransRecipientInfo.rid.issuer")?;
                        }
                        Ok(())
                    },
                )?;
                issuer_and_serial_number
                    .read_primitive("KeyTransRecipientInfo.rid.serialNumber", Tag::INTEGER)?;
                Ok(())
            })?;
            Ok(RecipientIdentifier::IssuerAndSerialNumber)
        }
        Some(tag) if tag == subject_key_identifier_tag || tag == Tag::context(0, true) => {
            let (identifier, offset) = fields.read_octet_string(
                "KeyTransRecipientInfo.rid.subjectKeyIdentifier",
                subject_key_identifier_tag,
            )?;
            let identifier = <[u8; SUBJECT_KEY_IDENTIFIER_LEN]>::try_from(identifier.as_ref())
                .map_err(|_| EnvelopeError::InvalidSubjectKeyIdentifierLength {
                    found: identifier.len(),
                    offset,
                })?;
            Ok(RecipientIdentifier::SubjectKeyIdentifier(identifier))
        }
        Some(found) => Err(EnvelopeError::UnexpectedChoice {
            structure: STRUCTURE,
            expected: "issuerAndSerialNumber (SEQUENCE) or subjectKeyIdentifier ([0])",
            found,
            offset,
        }),
        None => Err(EnvelopeError::Missing {
            structure: STRUCTURE,
            expected: subject_key_identifier_tag,
            offset,
        }),
    }
}

/// Reads the fields inside the EncryptedContentInfo SEQUENCE.
fn read_encrypted_content_info<'a>(
    fields: &mut Reader<'a>,
) -> Result<EncryptedContentInfo<'a>, EnvelopeError> {
    let content_type = fields.read_oid("EncryptedContentInfo.contentType")?;
    if content_type != ID_DATA {
        return Err(EnvelopeError::UnexpectedContentType {
            field: "EncryptedContentInfo.contentType",
            expected: "1.2.840.113549.1.7.1 (id-data)",
            found: content_type.describe(),
        });
    }

    let content_encryption_algorithm = ContentEncryptionAlgorithm::read(fields)?;

    if fields.is_at_end() {
        return Err(EnvelopeError::MissingEncryptedContent);
    }
    let (encrypted_content, _) = fields.read_octet_string(
        "EncryptedContentInfo.encryptedContent",
        Tag::context(0, false),
    )?;
    let block_len = match content_encryption_algorithm {
        ContentEncryptionAlgorithm::Aes256Cbc { .. } => AES_BLOCK_LEN,
    };
    if encrypted_content.is_empty() || !encrypted_content.len().is_multiple_of(block_len) {
        return Err(EnvelopeError::InvalidCiphertextLength {
            len: encrypted_content.len(),
        });
    }

    Ok(EncryptedContentInfo {
        content_encryption_algorithm,
        encrypted_content,
    })
}
