//! Where attestation documents come from: the `Attester` trait and its sources.
//!
//! - `nsm`: the Nitro Secure Module device inside an enclave ([`NsmAttester`]).
//! - `anjuna[=URL]`: an endpoint speaking the Anjuna Nitro Runtime attestation API
//!   ([`AnjunaAttester`]).
//! - `sim=DIR`: the local development simulator ([`SimAttester`], never chosen silently).
//!
//! Every source takes the same [`AttestationRequest`] and returns the COSE_Sign1 bytes. A field
//! is either absent or 1 to [`MAX_FIELD_LEN`] bytes: a present-but-empty field is rejected
//! before any source receives it, because verifiers disagree on whether an empty byte string
//! means "none".

mod anjuna;
mod nsm;
mod sim;

pub use anjuna::{ANJUNA_MAX_RESPONSE_LEN, AnjunaAttester, AnjunaError};
pub use nsm::{NsmAttester, NsmDevice, NsmDriver, NsmError};
pub use sim::SimAttester;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

/// Default address of an Anjuna-compatible attestation endpoint.
pub const DEFAULT_ANJUNA_URL: &str = "http://localhost:50123/api/v1/attestation/report";

/// Path of the Nitro Secure Module device inside an enclave.
pub const NSM_DEVICE: &str = "/dev/nsm";

/// Largest `public_key`, `user_data` or `nonce` accepted, in bytes. AWS's attestation-process
/// document states 1024 for each field; the hypervisor does not enforce it, the verifier does.
pub const MAX_FIELD_LEN: usize = 1024;

/// Default number of attestation calls that may run at once in one attester.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 4;

/// The fields an attester puts into a document. `None` leaves a field out (null).
///
/// Each present field must be 1 to [`MAX_FIELD_LEN`] bytes; attesters reject anything else
/// with [`AttesterError::InvalidRequest`] before sending it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AttestationRequest {
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

/// An [`AttestationRequest`] whose fields are known to be absent or 1..=1024 bytes. Only
/// [`AttestationRequest::checked`] builds one, and attesters send nothing else.
#[derive(Debug, Clone, Copy)]
pub struct CheckedRequest<'a> {
    public_key: Option<&'a [u8]>,
    user_data: Option<&'a [u8]>,
    nonce: Option<&'a [u8]>,
}

impl AttestationRequest {
    /// Checks the size of each present field.
    pub fn checked(&self) -> Result<CheckedRequest<'_>, AttesterError> {
        Ok(CheckedRequest {
            public_key: check_field("public_key", self.public_key.as_deref())?,
            user_data: check_field("user_data", self.user_data.as_deref())?,
            nonce: check_field("nonce", self.nonce.as_deref())?,
        })
    }
}

impl<'a> CheckedRequest<'a> {
    pub fn public_key(&self) -> Option<&'a [u8]> {
        self.public_key
    }

    pub fn user_data(&self) -> Option<&'a [u8]> {
        self.user_data
    }

    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.nonce
    }
}

fn check_field<'a>(
    field: &'static str,
    value: Option<&'a [u8]>,
) -> Result<Option<&'a [u8]>, AttesterError> {
    match value {
        Some([]) => Err(AttesterError::InvalidRequest {
            field,
            detail: "present but empty; leave the field out instead".to_owned(),
        }),
        Some(bytes) if bytes.len() > MAX_FIELD_LEN => Err(AttesterError::InvalidRequest {
            field,
            detail: format!("{} bytes, limit {MAX_FIELD_LEN}", bytes.len()),
        }),
        other => Ok(other),
    }
}

/// Reason an attester produced no document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttesterError {
    #[error(
        "NSM device {NSM_DEVICE} not found: this is not a Nitro enclave; for local \
         development use --attester sim=DIR"
    )]
    NsmUnavailable,
    #[error("cannot open NSM device {NSM_DEVICE}: {source}")]
    NsmOpen {
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Nsm(#[from] NsmError),
    #[error(transparent)]
    Anjuna(#[from] AnjunaError),
    #[error("simulator: {0}")]
    Simulator(String),
    #[error("invalid --attester {value:?}: expected nsm, anjuna, anjuna=URL or sim=DIR")]
    InvalidSpec { value: String },
    #[error("invalid attestation request: {field}: {detail}")]
    InvalidRequest { field: &'static str, detail: String },
    #[error("attester {attester} returned no document within {} ms", .after.as_millis())]
    TimedOut {
        attester: &'static str,
        after: Duration,
    },
    #[error("attester {attester} worker task failed: {detail}")]
    Worker {
        attester: &'static str,
        detail: String,
    },
}

impl AttesterError {
    /// 2 for a bad `--attester` value, a missing simulator folder or an invalid request field,
    /// 3 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            AttesterError::InvalidSpec { .. }
            | AttesterError::Simulator(_)
            | AttesterError::InvalidRequest { .. } => 2,
            AttesterError::Anjuna(AnjunaError::InvalidUrl { .. }) => 2,
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
    /// Opens the source this value names: opens `/dev/nsm`, checks the Anjuna URL (without
    /// connecting), or loads the simulator folder.
    pub fn open(&self) -> Result<Box<dyn Attester>, AttesterError> {
        match self {
            AttesterSpec::Nsm => {
                let device = NsmDriver::open()?;
                Ok(Box::new(NsmAttester::new(
                    device,
                    DEFAULT_MAX_CONCURRENT_CALLS,
                )))
            }
            AttesterSpec::Anjuna { url } => Ok(Box::new(AnjunaAttester::new(url)?)),
            AttesterSpec::Sim { dir } => Ok(Box::new(SimAttester::open(dir)?)),
        }
    }
}

/// Runs the blocking `call` on tokio's blocking pool once one of `permits` is free. The permit
/// moves into the blocking task, so a call that never returns keeps counting against the bound
/// even after the caller stops waiting for it.
async fn run_blocking<T: Send + 'static>(
    attester: &'static str,
    permits: &std::sync::Arc<tokio::sync::Semaphore>,
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AttesterError> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|error| AttesterError::Worker {
            attester,
            detail: error.to_string(),
        })?;
    tokio::task::spawn_blocking(move || {
        let result = call();
        drop(permit);
        result
    })
    .await
    .map_err(|error| AttesterError::Worker {
        attester,
        detail: error.to_string(),
    })
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

    #[test]
    fn checked_request_rejects_empty_field() {
        let request = AttestationRequest {
            nonce: Some(Vec::new()),
            ..Default::default()
        };
        let error = request.checked().unwrap_err();
        assert!(
            error.to_string().contains("nonce: present but empty"),
            "{error}"
        );
    }

    #[test]
    fn checked_request_limits_field_size() {
        let mut request = AttestationRequest {
            user_data: Some(vec![1; MAX_FIELD_LEN]),
            ..Default::default()
        };
        assert_eq!(request.checked().unwrap().user_data().unwrap().len(), 1024);

        request.user_data = Some(vec![1; MAX_FIELD_LEN + 1]);
        let error = request.checked().unwrap_err();
        assert!(
            error
                .to_string()
                .contains("user_data: 1025 bytes, limit 1024"),
            "{error}"
        );
    }

    #[test]
    fn missing_nsm_device_points_at_simulator() {
        // This machine has no /dev/nsm; the open fails before any device call.
        if std::path::Path::new(NSM_DEVICE).exists() {
            return;
        }
        let error = AttesterSpec::Nsm.open().err().unwrap();
        assert!(matches!(error, AttesterError::NsmUnavailable));
        assert!(error.to_string().contains("--attester sim=DIR"), "{error}");
    }
}
