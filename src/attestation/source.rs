//! Where attestation documents come from: the `Attester` trait and its sources.
//!
//! - `nsm`: the Nitro Secure Module device inside an enclave.
//! - `anjuna[=URL]`: an endpoint speaking the Anjuna Nitro Runtime attestation API.
//! - `sim=DIR`: the local development simulator (never chosen silently).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;

use crate::attestation::sim::SimulatedEnclave;

/// Default address of an Anjuna-compatible attestation endpoint.
pub const DEFAULT_ANJUNA_URL: &str = "http://localhost:50123/api/v1/attestation/report";

/// Path of the Nitro Secure Module device inside an enclave.
pub const NSM_DEVICE: &str = "/dev/nsm";

/// The fields an attester puts into a document. `None` leaves a field out (null).
#[derive(Debug, Default, Clone)]
pub struct AttestationRequest {
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

/// Why an attester could not produce a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttesterError {
    #[error(
        "NSM device {NSM_DEVICE} not found: this is not a Nitro enclave; for local \
         development use --attester sim=DIR"
    )]
    NsmUnavailable,
    #[error("attester {name} is not available in this build")]
    NotBuilt { name: &'static str },
    #[error("simulator: {0}")]
    Simulator(String),
    #[error("invalid --attester {value:?}: expected nsm, anjuna, anjuna=URL or sim=DIR")]
    InvalidSpec { value: String },
}

impl AttesterError {
    /// 2 for a bad `--attester` value or a missing simulator folder, 3 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            AttesterError::InvalidSpec { .. } | AttesterError::Simulator(_) => 2,
            _ => 3,
        }
    }
}

pub type AttestFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, AttesterError>> + Send + 'a>>;

/// A source of signed attestation documents (COSE_Sign1 bytes).
pub trait Attester: Send + Sync {
    /// Requests one document carrying the given fields.
    fn attest<'a>(&'a self, request: &'a AttestationRequest) -> AttestFuture<'a>;

    /// Short name for logs and messages (`nsm`, `anjuna`, `sim`).
    fn name(&self) -> &'static str;

    /// True only for the development simulator, whose documents prove nothing.
    fn is_simulator(&self) -> bool {
        false
    }
}

/// The `--attester` value: `nsm`, `anjuna`, `anjuna=URL` or `sim=DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttesterSpec {
    Nsm,
    Anjuna { url: String },
    Sim { dir: PathBuf },
}

impl FromStr for AttesterSpec {
    type Err = AttesterError;

    fn from_str(value: &str) -> Result<Self, AttesterError> {
        let invalid = || AttesterError::InvalidSpec {
            value: value.to_owned(),
        };
        match value.split_once('=') {
            None if value == "nsm" => Ok(AttesterSpec::Nsm),
            None if value == "anjuna" => Ok(AttesterSpec::Anjuna {
                url: DEFAULT_ANJUNA_URL.to_owned(),
            }),
            Some(("anjuna", url)) if !url.is_empty() => Ok(AttesterSpec::Anjuna {
                url: url.to_owned(),
            }),
            Some(("sim", dir)) if !dir.is_empty() => Ok(AttesterSpec::Sim {
                dir: PathBuf::from(dir),
            }),
            _ => Err(invalid()),
        }
    }
}

impl AttesterSpec {
    /// Opens the source this value names.
    pub fn open(&self) -> Result<Box<dyn Attester>, AttesterError> {
        match self {
            AttesterSpec::Nsm => {
                if !Path::new(NSM_DEVICE).exists() {
                    return Err(AttesterError::NsmUnavailable);
                }
                // NOTE: the NSM driver binding is not part of this build; inside a real
                // enclave the broker stops here instead of running without attestation.
                Err(AttesterError::NotBuilt { name: "nsm" })
            }
            AttesterSpec::Anjuna { .. } => Err(AttesterError::NotBuilt { name: "anjuna" }),
            AttesterSpec::Sim { dir } => {
                let enclave = SimulatedEnclave::load(dir)
                    .map_err(|error| AttesterError::Simulator(error.to_string()))?;
                Ok(Box::new(SimAttester { enclave }))
            }
        }
    }
}

/// The development simulator as an attester.
pub struct SimAttester {
    enclave: SimulatedEnclave,
}

impl Attester for SimAttester {
    fn attest<'a>(&'a self, request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async move {
            let now_ms = crate::clock::now_ms();
            self.enclave
                .attest(
                    request.public_key.as_deref(),
                    request.user_data.as_deref(),
                    request.nonce.as_deref(),
                    now_ms,
                )
                .map_err(|error| AttesterError::Simulator(error.to_string()))
        })
    }

    fn name(&self) -> &'static str {
        "sim"
    }

    fn is_simulator(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attester_values() {
        assert_eq!("nsm".parse::<AttesterSpec>().unwrap(), AttesterSpec::Nsm);
        assert_eq!(
            "anjuna".parse::<AttesterSpec>().unwrap(),
            AttesterSpec::Anjuna {
                url: DEFAULT_ANJUNA_URL.into()
            }
        );
        assert_eq!(
            "sim=/tmp/x".parse::<AttesterSpec>().unwrap(),
            AttesterSpec::Sim {
                dir: "/tmp/x".into()
            }
        );
    }

    #[test]
    fn rejects_unknown_attester_value() {
        for value in ["", "sim", "sim=", "tpm", "nsm=1"] {
            assert!(value.parse::<AttesterSpec>().is_err(), "{value}");
        }
    }
}
