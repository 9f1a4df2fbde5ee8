//! Fixtures and a small BER/DER encoder for building envelope variants from real samples.
#![allow(dead_code)] // Each test crate uses a different part of this module.

use base64::Engine;
use enclave_broker::envelope::{
    ContentEncryptionAlgorithm, EnvelopedData, RecipientIdentifier, RecipientKey,
};

/// Returns the bytes of `tests/fixtures/kms/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/kms/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Real KMS envelope from edgebitio/nitro-enclaves-sdk-go: BER, encrypted content in one
/// OCTET STRING segment inside a constructed `[0]`.
pub fn edgebit_envelope() -> Vec<u8> {
    fixture("edgebit_sdkgo_ciphertext_for_recipient.ber")
}

pub fn edgebit_key() -> RecipientKey {
    RecipientKey::from_pkcs8_der(&fixture("edgebit_sdkgo_recipient_rsa2048_pkcs8.der")).unwrap()
}

pub fn edgebit_plaintext() -> Vec<u8> {
    let text = String::from_utf8(fixture("edgebit_sdkgo_expected_plaintext.hex")).unwrap();
    hex::decode(text.trim()).unwrap()
}

/// Real KMS envelope from edgebitio/enclaver, whose plaintext is `Hello, World`.
pub fn enclaver_envelope() -> Vec<u8> {
    fixture("enclaver_ciphertext_for_recipient.ber")
}

pub fn enclaver_key() -> RecipientKey {
    let pem = String::from_utf8(fixture("enclaver_recipient_rsa2048_pkcs8.pem")).unwrap();
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    RecipientKey::from_pkcs8_der(&der).unwrap()
}

pub fn enclaver_plaintext() -> Vec<u8> {
    fixture("enclaver_expected_plaintext.txt")
}

/// Content octets of the object identifiers used below.
pub mod oid {
    pub const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
    pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    pub const RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
    pub const P_SPECIFIED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09];
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const AES128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
    pub const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
}

/// How constructed elements are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lengths {
    /// DER: definite lengths in minimal form.
    Definite,
    /// BER as KMS writes it: `80` length and `00 00` end-of-contents.
    Indefinite,
}

/// Encodes a primitive element with a definite length in minimal form.
pub fn primitive(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&byte| byte == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a constructed element holding `parts`, already encoded.
pub fn constructed(tag: u8, parts: &[&[u8]], lengths: Lengths) -> Vec<u8> {
    let content = parts.concat();
    match lengths {
        Lengths::Definite => primitive(tag, &content),
        Lengths::Indefinite => {
            let mut out = vec![tag, 0x80];
            out.extend(content);
            out.extend([0, 0]);
            out
        }
    }
}

pub fn oid(content: &[u8]) -> Vec<u8> {
    primitive(0x06, content)
}

pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

pub fn integer(value: u8) -> Vec<u8> {
    primitive(0x02, &[value])
}

pub fn octet_string(content: &[u8]) -> Vec<u8> {
    primitive(0x04, content)
}

/// `AlgorithmIdentifier { algorithm, parameters }` with optional parameters.
pub fn algorithm_identifier(algorithm: &[u8], parameters: Option<&[u8]>) -> Vec<u8> {
    let oid = oid(algorithm);
    match parameters {
        Some(parameters) => constructed(0x30, &[&oid, parameters], Lengths::Definite),
        None => constructed(0x30, &[&oid], Lengths::Definite),
    }
}

/// RSAES-OAEP keyEncryptionAlgorithm whose parameters SEQUENCE contains `params` as given.
pub fn oaep_algorithm(params: &[&[u8]]) -> Vec<u8> {
    let params = constructed(0x30, params, Lengths::Definite);
    algorithm_identifier(oid::RSAES_OAEP, Some(&params))
}

/// hashAlgorithm `[0]` with SHA-256; `with_null` chooses NULL or absent digest parameters.
pub fn oaep_hash_sha256(with_null: bool) -> Vec<u8> {
    let null = null();
    let sha256 = algorithm_identifier(oid::SHA256, with_null.then_some(null.as_slice()));
    constructed(0xa0, &[&sha256], Lengths::Definite)
}

/// maskGenAlgorithm `[1]` with MGF1 over the digest `hash`.
pub fn oaep_mask_mgf1(hash: &[u8], with_null: bool) -> Vec<u8> {
    let null = null();
    let digest = algorithm_identifier(hash, with_null.then_some(null.as_slice()));
    let mgf1 = algorithm_identifier(oid::MGF1, Some(&digest));
    constructed(0xa1, &[&mgf1], Lengths::Definite)
}

/// Encodes the keyEncryptionAlgorithm KMS sends: SHA-256 and MGF1-SHA-256, each with NULL parameters.
pub fn kms_oaep_algorithm() -> Vec<u8> {
    oaep_algorithm(&[&oaep_hash_sha256(true), &oaep_mask_mgf1(oid::SHA256, true)])
}

/// rid `issuerAndSerialNumber` with issuer `CN=recipient` and serial 1, the placeholder that
/// LocalStack 4.13.1 writes (`localstack/utils/crypto.py`, `pkcs7_envelope_encrypt`).
pub fn localstack_rid() -> Vec<u8> {
    let common_name = primitive(0x0c, b"recipient");
    let attribute = constructed(
        0x30,
        &[&oid(oid::COMMON_NAME), &common_name],
        Lengths::Definite,
    );
    let relative_name = constructed(0x31, &[&attribute], Lengths::Definite);
    let issuer = constructed(0x30, &[&relative_name], Lengths::Definite);
    constructed(0x30, &[&issuer, &integer(1)], Lengths::Definite)
}

/// The pieces of an EnvelopedData, each already encoded except where noted.
pub struct Envelope {
    pub lengths: Lengths,
    pub content_type: Vec<u8>,
    pub version: u8,
    pub recipient_infos: Vec<Vec<u8>>,
    pub encrypted_content_type: Vec<u8>,
    pub content_encryption_algorithm: Vec<u8>,
    /// The complete `[0]` encryptedContent element.
    pub encrypted_content: Vec<u8>,
}

/// Values taken from a real envelope.
pub struct SampleParts {
    pub subject_key_identifier: [u8; 32],
    pub encrypted_key: Vec<u8>,
    pub iv: [u8; 16],
    pub ciphertext: Vec<u8>,
}

impl SampleParts {
    pub fn from_envelope(cms: &[u8]) -> Self {
        let enveloped_data = EnvelopedData::parse(cms).unwrap();
        let recipient_info = enveloped_data.recipient_info();
        let RecipientIdentifier::SubjectKeyIdentifier(subject_key_identifier) =
            *recipient_info.rid()
        else {
            panic!("sample has no subjectKeyIdentifier");
        };
        let content_info = enveloped_data.encrypted_content_info();
        let ContentEncryptionAlgorithm::Aes256Cbc { iv } =
            content_info.content_encryption_algorithm()
        else {
            panic!("sample is not aes256-CBC");
        };
        SampleParts {
            subject_key_identifier,
            encrypted_key: recipient_info.encrypted_key().to_vec(),
            iv,
            ciphertext: content_info.encrypted_content().to_vec(),
        }
    }

    /// KeyTransRecipientInfo version 2 with the sample's subjectKeyIdentifier.
    pub fn kms_recipient_info(&self, key_encryption_algorithm: &[u8]) -> Vec<u8> {
        key_trans_recipient_info(
            2,
            &primitive(0x80, &self.subject_key_identifier),
            key_encryption_algorithm,
            &self.encrypted_key,
        )
    }

    /// Encodes the aes256-CBC contentEncryptionAlgorithm with the sample's IV.
    pub fn aes256_cbc_algorithm(&self) -> Vec<u8> {
        algorithm_identifier(oid::AES256_CBC, Some(&octet_string(&self.iv)))
    }

    /// encryptedContent as `[0]` constructed, holding the ciphertext in segments of
    /// `segment_len` bytes.
    pub fn segmented_content(&self, segment_len: usize, lengths: Lengths) -> Vec<u8> {
        let segments: Vec<Vec<u8>> = self
            .ciphertext
            .chunks(segment_len)
            .map(octet_string)
            .collect();
        let segments: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
        constructed(0xa0, &segments, lengths)
    }

    /// encryptedContent as `[0]` IMPLICIT primitive.
    pub fn primitive_content(&self) -> Vec<u8> {
        primitive(0x80, &self.ciphertext)
    }

    /// Builds the envelope as KMS shapes it, with the given length encoding.
    pub fn kms_envelope(&self, lengths: Lengths) -> Envelope {
        Envelope {
            lengths,
            content_type: oid(oid::ENVELOPED_DATA),
            version: 2,
            recipient_infos: vec![self.kms_recipient_info(&kms_oaep_algorithm())],
            encrypted_content_type: oid(oid::DATA),
            content_encryption_algorithm: self.aes256_cbc_algorithm(),
            encrypted_content: match lengths {
                Lengths::Definite => self.primitive_content(),
                Lengths::Indefinite => self.segmented_content(self.ciphertext.len(), lengths),
            },
        }
    }

    /// Builds the envelope as LocalStack 4.13.1 shapes it: DER, EnvelopedData and
    /// KeyTransRecipientInfo version 0, placeholder issuerAndSerialNumber, the same
    /// keyEncryptionAlgorithm as KMS, primitive encryptedContent. A test checks this layout
    /// against `localstack_4.13.1_ciphertext_for_recipient.der`.
    pub fn localstack_envelope(&self) -> Envelope {
        Envelope {
            lengths: Lengths::Definite,
            content_type: oid(oid::ENVELOPED_DATA),
            version: 0,
            recipient_infos: vec![key_trans_recipient_info(
                0,
                &localstack_rid(),
                &kms_oaep_algorithm(),
                &self.encrypted_key,
            )],
            encrypted_content_type: oid(oid::DATA),
            content_encryption_algorithm: self.aes256_cbc_algorithm(),
            encrypted_content: self.primitive_content(),
        }
    }
}

pub fn key_trans_recipient_info(
    version: u8,
    rid: &[u8],
    key_encryption_algorithm: &[u8],
    encrypted_key: &[u8],
) -> Vec<u8> {
    constructed(
        0x30,
        &[
            &integer(version),
            rid,
            key_encryption_algorithm,
            &octet_string(encrypted_key),
        ],
        Lengths::Definite,
    )
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let lengths = self.lengths;
        let recipient_infos: Vec<&[u8]> = self.recipient_infos.iter().map(Vec::as_slice).collect();
        let recipient_infos = constructed(0x31, &recipient_infos, Lengths::Definite);
        let encrypted_content_info = constructed(
            0x30,
            &[
                &self.encrypted_content_type,
                &self.content_encryption_algorithm,
                &self.encrypted_content,
            ],
            lengths,
        );
        let enveloped_data = constructed(
            0x30,
            &[
                &integer(self.version),
                &recipient_infos,
                &encrypted_content_info,
            ],
            lengths,
        );
        let content = constructed(0xa0, &[&enveloped_data], lengths);
        constructed(0x30, &[&self.content_type, &content], lengths)
    }
}
