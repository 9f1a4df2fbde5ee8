//! A simulated enclave for development: it issues attestation documents shaped like NSM's,
//! signed under a local development root instead of AWS's.
//!
//! Documents match what NSM sends:
//!
//! - an untagged COSE_Sign1 with protected header `A1 01 38 22` (ES384) and an empty
//!   unprotected map;
//! - a definite-length payload map with every field present, and `public_key`, `user_data`
//!   and `nonce` null when not given;
//! - 16 PCRs of 48 bytes;
//! - a `cabundle` of root, regional, zonal and instance CA certificates, root first.
//!
//! The chain below the root and the leaf key are issued fresh for every document. The leaf is
//! valid from one minute before the document time to three hours after it, as AWS's leaves are.
//!
//! Documents verify with `TrustRoot::from_pem` of `root.pem` and are rejected (`chain.root`)
//! with the AWS root. Like NSM's hypervisor, the simulator does not enforce the 1024-byte limit
//! on `public_key`, `user_data` and `nonce`; the verifier does.

mod ca;
mod state;

pub use ca::SimSigner;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA384, digest};
use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384};
use zeroize::Zeroizing;

use super::cbor::Encoder;
use super::cose::ES384_PROTECTED_HEADER;
use super::pcr::{PcrIndex, PcrValue, SHA384_LEN};
use super::roots::{TrustRoot, TrustRootError};
use super::x509::ParsedCertificate;
use state::{PCRS_FILE, PRIVATE_MODE, PUBLIC_MODE, ROOT_CERT_FILE, ROOT_KEY_FILE};

/// Module id written into simulated documents.
pub const SIM_MODULE_ID: &str = "i-sim0000000000000-enc0000000000000000";

/// Number of PCRs in a simulated document, as NSM reports for enclaves.
pub const SIM_PCR_COUNT: u8 = 16;

/// PCRs that get a non-zero default, so a simulated enclave is not in debug mode: the image
/// (0), kernel (1), application (2), IAM role (3), instance (4) and signing certificate (8).
pub const SIM_DEFAULT_NONZERO_PCRS: [u8; 6] = [0, 1, 2, 3, 4, 8];

/// Largest `public_key`, `user_data` or `nonce` the simulator signs: NSM's 4 KiB request limit.
/// Values above the verifier's 1024-byte limit are signed on purpose.
pub const SIM_MAX_FIELD_LEN: usize = 4096;

/// A development root CA and PCR set, stored in a directory.
pub struct SimulatedEnclave {
    dir: PathBuf,
    root_der: Vec<u8>,
    root_key: KeyPair,
    pcrs: BTreeMap<PcrIndex, PcrValue>,
}

impl SimulatedEnclave {
    /// Creates `dir` (mode 0700) with a new root CA and PCRs, or, when `dir` already has a
    /// CA, keeps it and replaces only the PCRs given. PCRs not given keep their stored value,
    /// or else get the default: SHA-384 of `enclave-broker sim PCR<n>` for PCR0–4 and PCR8,
    /// zero for the other of PCR0–15.
    pub fn init(dir: &Path, pcrs: &BTreeMap<PcrIndex, PcrValue>) -> Result<Self, SimError> {
        for (index, value) in pcrs {
            if value.as_bytes().len() != SHA384_LEN {
                return Err(SimError::InvalidPcr {
                    index: *index,
                    length: value.as_bytes().len(),
                });
            }
        }
        state::prepare_dir(dir)?;

        let certificate = state::read_optional(dir, ROOT_CERT_FILE)?;
        let key_present = dir.join(ROOT_KEY_FILE).exists();
        let (root_der, root_key) = match (certificate, key_present) {
            (Some(_), true) => load_root(dir)?,
            (None, false) => create_root(dir)?,
            (certificate, _) => {
                let missing = if certificate.is_none() {
                    ROOT_CERT_FILE
                } else {
                    ROOT_KEY_FILE
                };
                return Err(SimError::Inconsistent {
                    dir: dir.to_owned(),
                    detail: format!(
                        "{missing} is missing; remove the directory and run init again"
                    ),
                });
            }
        };

        let mut merged = match state::read_optional(dir, PCRS_FILE)? {
            Some(contents) => state::decode_pcrs(dir, &contents).map_err(add_repair_hint)?,
            None => default_pcrs(),
        };
        merged.extend(pcrs.iter().map(|(index, value)| (*index, value.clone())));
        state::write_file(dir, PCRS_FILE, &state::encode_pcrs(&merged), PRIVATE_MODE)?;

        Ok(Self {
            dir: dir.to_owned(),
            root_der,
            root_key,
            pcrs: merged,
        })
    }

    /// Opens a directory made by [`SimulatedEnclave::init`].
    pub fn load(dir: &Path) -> Result<Self, SimError> {
        if !dir.join(ROOT_CERT_FILE).exists() {
            return Err(SimError::NotInitialized {
                dir: dir.to_owned(),
            });
        }
        let (root_der, root_key) = load_root(dir)?;
        let contents =
            state::read_optional(dir, PCRS_FILE)?.ok_or_else(|| SimError::Inconsistent {
                dir: dir.to_owned(),
                detail: format!("{PCRS_FILE} is missing; run init again to write it"),
            })?;
        let pcrs = state::decode_pcrs(dir, &contents).map_err(add_repair_hint)?;
        Ok(Self {
            dir: dir.to_owned(),
            root_der,
            root_key,
            pcrs,
        })
    }

    /// Issues a document at `now_ms` (milliseconds since the UNIX epoch, also its timestamp),
    /// signed by a freshly issued chain and leaf key.
    pub fn attest(
        &self,
        public_key: Option<&[u8]>,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Vec<u8>, SimError> {
        let signer = self.issue_signer(now_ms)?;
        self.attest_with_signer(&signer, public_key, user_data, nonce, now_ms)
    }

    /// Like [`SimulatedEnclave::attest`], signed by `signer`, a chain issued earlier by
    /// [`SimulatedEnclave::issue_signer`]. `now_ms` must lie within the leaf's validity for the
    /// document to verify.
    pub fn attest_with_signer(
        &self,
        signer: &SimSigner,
        public_key: Option<&[u8]>,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Vec<u8>, SimError> {
        let fields = [
            ("public_key", public_key),
            ("user_data", user_data),
            ("nonce", nonce),
        ];
        for (field, value) in fields {
            let length = value.map_or(0, <[u8]>::len);
            if length > SIM_MAX_FIELD_LEN {
                return Err(SimError::FieldTooLarge {
                    field,
                    length,
                    limit: SIM_MAX_FIELD_LEN,
                });
            }
        }
        if now_ms == 0 {
            return Err(SimError::InvalidTime {
                detail: "document time must be after 1970-01-01T00:00:00Z".to_owned(),
            });
        }

        let mut payload = Encoder::new();
        payload.map(9);
        payload.text("module_id").text(SIM_MODULE_ID);
        payload.text("digest").text("SHA384");
        payload.text("timestamp").unsigned(now_ms);
        payload.text("pcrs").map(self.pcrs.len());
        for (index, value) in &self.pcrs {
            payload
                .unsigned(u64::from(index.get()))
                .bytes(value.as_bytes());
        }
        payload.text("certificate").bytes(signer.certificate());
        payload.text("cabundle").array(signer.cabundle().len());
        for certificate in signer.cabundle() {
            payload.bytes(certificate);
        }
        for (field, value) in fields {
            payload.text(field);
            match value {
                Some(value) => payload.bytes(value),
                None => payload.null(),
            };
        }
        signer.sign(&ES384_PROTECTED_HEADER, &payload.into_bytes())
    }

    /// Issues a chain and leaf key valid around `now_ms`, to sign payloads built by hand.
    pub fn issue_signer(&self, now_ms: u64) -> Result<SimSigner, SimError> {
        let leaf_name = format!("{SIM_MODULE_ID}.simulator.enclave-broker");
        SimSigner::issue(&self.root_der, &self.root_key, &leaf_name, now_ms)
    }

    pub fn pcrs(&self) -> &BTreeMap<PcrIndex, PcrValue> {
        &self.pcrs
    }

    /// Path of the development root certificate, `DIR/root.pem`.
    pub fn root_pem_path(&self) -> PathBuf {
        self.dir.join(ROOT_CERT_FILE)
    }

    /// Returns the development root as a trust root, labelled with the path of `root.pem`.
    pub fn trust_root(&self) -> Result<TrustRoot, SimError> {
        let label = self.root_pem_path().display().to_string();
        TrustRoot::from_der(self.root_der.clone(), label).map_err(SimError::TrustRoot)
    }
}

/// Returns the default PCR set described at [`SimulatedEnclave::init`].
pub fn default_pcrs() -> BTreeMap<PcrIndex, PcrValue> {
    let mut pcrs = BTreeMap::new();
    for number in 0..SIM_PCR_COUNT {
        let value = if SIM_DEFAULT_NONZERO_PCRS.contains(&number) {
            let label = format!("enclave-broker sim PCR{number}");
            digest(&SHA384, label.as_bytes()).as_ref().to_vec()
        } else {
            vec![0; SHA384_LEN]
        };
        // Indexes below 16 and 48-byte values are always valid, so nothing is skipped here.
        if let (Ok(index), Ok(value)) = (
            PcrIndex::new(u64::from(number)),
            PcrValue::from_bytes(&value),
        ) {
            pcrs.insert(index, value);
        }
    }
    pcrs
}

fn create_root(dir: &Path) -> Result<(Vec<u8>, KeyPair), SimError> {
    let root_key = ca::generate_root_key()?;
    let root_der = ca::root_certificate(&root_key)?;
    let key_pem = Zeroizing::new(root_key.serialize_pem());
    state::write_file(dir, ROOT_KEY_FILE, key_pem.as_bytes(), PRIVATE_MODE)?;
    let certificate_pem =
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &root_der).map_err(
            |error| SimError::Certificate {
                detail: error.to_string(),
            },
        )?;
    state::write_file(dir, ROOT_CERT_FILE, certificate_pem.as_bytes(), PUBLIC_MODE)?;
    Ok((root_der, root_key))
}

/// Adds to an invalid-`pcrs.json` error what repairs it: `init` does not overwrite a file it
/// cannot read, because the PCRs in it may have been set on purpose.
fn add_repair_hint(error: SimError) -> SimError {
    match error {
        SimError::InvalidState { path, detail } => {
            let dir = path
                .parent()
                .unwrap_or(Path::new("."))
                .display()
                .to_string();
            let detail = format!(
                "{detail}; delete {} (the CA stays and the PCRs get their defaults) or the \
                 whole folder {dir}, then run `enclave-broker sim init --dir {dir}` again with \
                 the --pcr values you need",
                path.display()
            );
            SimError::InvalidState { path, detail }
        }
        other => other,
    }
}

/// Reads the root certificate and key, and checks that they belong together.
fn load_root(dir: &Path) -> Result<(Vec<u8>, KeyPair), SimError> {
    let certificate_pem = state::read_optional(dir, ROOT_CERT_FILE)?.unwrap_or_default();
    let root = TrustRoot::from_pem(&certificate_pem, ROOT_CERT_FILE.to_owned())
        .map_err(SimError::TrustRoot)?;

    state::check_private(dir, ROOT_KEY_FILE)?;
    let key_bytes = Zeroizing::new(state::read_optional(dir, ROOT_KEY_FILE)?.unwrap_or_default());
    let key_path = dir.join(ROOT_KEY_FILE);
    let key_pem = std::str::from_utf8(&key_bytes).map_err(|_| SimError::InvalidState {
        path: key_path.clone(),
        detail: "not UTF-8 PEM text".to_owned(),
    })?;
    let root_key =
        KeyPair::from_pem_and_sign_algo(key_pem, &PKCS_ECDSA_P384_SHA384).map_err(|error| {
            SimError::InvalidState {
                path: key_path.clone(),
                detail: format!("not a P-384 PKCS#8 private key: {error}"),
            }
        })?;

    let certificate =
        ParsedCertificate::parse(root.der()).map_err(|error| SimError::InvalidState {
            path: dir.join(ROOT_CERT_FILE),
            detail: error.to_string(),
        })?;
    if certificate.public_key() != root_key.public_key_raw() {
        return Err(SimError::Inconsistent {
            dir: dir.to_owned(),
            detail: format!("{ROOT_KEY_FILE} is not the key of {ROOT_CERT_FILE}"),
        });
    }
    Ok((root.der().to_vec(), root_key))
}

/// Error from setting up, loading or issuing with the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error(
        "simulator directory {} is not initialized; create it with `enclave-broker sim init --dir {}`",
        .dir.display(), .dir.display()
    )]
    NotInitialized { dir: PathBuf },
    #[error("simulator directory {} is not a directory", .dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{} has mode {mode:04o}; expected {expected}", .path.display())]
    InsecurePermissions {
        path: PathBuf,
        mode: u32,
        expected: &'static str,
    },
    #[error("simulator directory {} is inconsistent: {detail}", .dir.display())]
    Inconsistent { dir: PathBuf, detail: String },
    #[error("{}: {detail}", .path.display())]
    InvalidState { path: PathBuf, detail: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("PCR{index} is {length} bytes; the simulator uses 48-byte (SHA-384) PCRs")]
    InvalidPcr { index: PcrIndex, length: usize },
    #[error("{field} is {length} bytes; the simulator's limit is {limit}")]
    FieldTooLarge {
        field: &'static str,
        length: usize,
        limit: usize,
    },
    #[error("invalid document time: {detail}")]
    InvalidTime { detail: String },
    #[error("cannot issue simulator certificate: {detail}")]
    Certificate { detail: String },
    #[error("cannot sign simulated document: {detail}")]
    Signing { detail: String },
    #[error(transparent)]
    TrustRoot(TrustRootError),
}
