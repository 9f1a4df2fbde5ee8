//! The simulator's certificate authority, shaped like AWS's: a P-384 root, three intermediate
//! CAs (regional, zonal, instance, with pathLenConstraint 2, 1 and 0) and a leaf that signs the
//! document. Only the root key is kept on disk; the intermediates and the leaf get fresh keys
//! for every document.

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P384_SHA384,
};
use time::{Duration, OffsetDateTime};

use super::SimError;
use crate::attestation::cbor::Encoder;
use crate::attestation::cose::signature_input;

/// Validity of the simulator's root: fixed, so that `init` needs no clock.
const ROOT_NOT_BEFORE_UNIX: i64 = 1_577_836_800; // 2020-01-01T00:00:00Z
const ROOT_NOT_AFTER_UNIX: i64 = 2_524_607_999; // 2049-12-31T23:59:59Z

/// How long before the document time each issued certificate becomes valid.
const BACKDATE: Duration = Duration::minutes(1);

/// Lifetimes after the document time, close to what AWS issues: the leaf lives about three
/// hours, the instance CA a day, the zonal CA a few days and the regional CA a few weeks.
const LEAF_LIFETIME: Duration = Duration::hours(3);
const INSTANCE_LIFETIME: Duration = Duration::days(1);
const ZONAL_LIFETIME: Duration = Duration::days(5);
const REGIONAL_LIFETIME: Duration = Duration::days(20);

/// Generates a new root key.
pub(super) fn generate_root_key() -> Result<KeyPair, SimError> {
    KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(certificate_error)
}

/// Self-signs the root certificate for `root_key`; returns its DER.
pub(super) fn root_certificate(root_key: &KeyPair) -> Result<Vec<u8>, SimError> {
    let certificate = root_params()?
        .self_signed(root_key)
        .map_err(certificate_error)?;
    Ok(certificate.der().to_vec())
}

/// Builds the root's parameters. They are rebuilt the same way on every load, so the issuer name
/// written into intermediates matches the subject of the stored root certificate.
fn root_params() -> Result<CertificateParams, SimError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name("enclave-broker simulator root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = ca_key_usages();
    params.not_before = unix_seconds(ROOT_NOT_BEFORE_UNIX)?;
    params.not_after = unix_seconds(ROOT_NOT_AFTER_UNIX)?;
    Ok(params)
}

/// A leaf key and its chain, valid around one document time.
pub struct SimSigner {
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    key: EcdsaKeyPair,
}

impl SimSigner {
    /// Issues the three intermediates and the leaf under `root_key`, valid from one minute
    /// before `now_ms`.
    pub(super) fn issue(
        root_der: &[u8],
        root_key: &KeyPair,
        leaf_name: &str,
        now_ms: u64,
    ) -> Result<Self, SimError> {
        let now = unix_millis(now_ms)?;
        let root = Issuer::new(root_params()?, root_key);

        let tiers = [
            ("simulator regional CA", 2, REGIONAL_LIFETIME),
            ("simulator zonal CA", 1, ZONAL_LIFETIME),
            ("simulator instance CA", 0, INSTANCE_LIFETIME),
        ];
        let mut cabundle = vec![root_der.to_vec()];
        let mut issuer_params = root_params()?;
        let mut issuer_key = None::<KeyPair>;
        for (common_name, path_length, lifetime) in tiers {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(certificate_error)?;
            let mut params = CertificateParams::default();
            params.distinguished_name = name(common_name);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_length));
            params.key_usages = ca_key_usages();
            params.use_authority_key_identifier_extension = true;
            params.not_before = now - BACKDATE;
            params.not_after = now + lifetime;
            let certificate = match &issuer_key {
                None => params.signed_by(&key, &root),
                Some(parent) => {
                    params.signed_by(&key, &Issuer::from_params(&issuer_params, parent))
                }
            }
            .map_err(certificate_error)?;
            cabundle.push(certificate.der().to_vec());
            issuer_params = params;
            issuer_key = Some(key);
        }
        // The loop above ran three times, so the instance CA's key is set.
        let Some(instance_key) = issuer_key else {
            return Err(SimError::Certificate {
                detail: "no instance CA was issued".to_owned(),
            });
        };

        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(certificate_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(leaf_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_LIFETIME;
        let certificate = params
            .signed_by(
                &leaf_key,
                &Issuer::from_params(&issuer_params, &instance_key),
            )
            .map_err(certificate_error)?;

        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, leaf_key.serialized_der())
                .map_err(|error| SimError::Signing {
                detail: format!("leaf key: {error}"),
            })?;
        Ok(Self {
            certificate: certificate.der().to_vec(),
            cabundle,
            key,
        })
    }

    /// Returns the leaf certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Returns the root, regional, zonal and instance CA certificates (DER), root first.
    pub fn cabundle(&self) -> &[Vec<u8>] {
        &self.cabundle
    }

    /// Signs `payload` as an untagged COSE_Sign1 with the given protected header bytes (NSM
    /// uses `cose::ES384_PROTECTED_HEADER`) and an empty unprotected header. The payload is
    /// signed as given, so tests can sign payloads the verifier must reject.
    pub fn sign(&self, protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, SimError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = self
            .key
            .sign(&rng, &signature_input(protected, payload))
            .map_err(|error| SimError::Signing {
                detail: error.to_string(),
            })?;

        let mut sign1 = Encoder::new();
        sign1
            .array(4)
            .bytes(protected)
            .map(0)
            .bytes(payload)
            .bytes(signature.as_ref());
        Ok(sign1.into_bytes())
    }
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ]
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "US");
    name.push(DnType::OrganizationName, "enclave-broker");
    name.push(DnType::OrganizationalUnitName, "development");
    name.push(DnType::CommonName, common_name);
    name
}

fn unix_seconds(seconds: i64) -> Result<OffsetDateTime, SimError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|error| SimError::InvalidTime {
        detail: error.to_string(),
    })
}

fn unix_millis(ms: u64) -> Result<OffsetDateTime, SimError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|error| {
        SimError::InvalidTime {
            detail: format!("{ms} ms: {error}"),
        }
    })
}

fn certificate_error(error: rcgen::Error) -> SimError {
    SimError::Certificate {
        detail: error.to_string(),
    }
}
