//! The `nsm` attester: `Attestation` requests to the Nitro Secure Module through the
//! `aws-nitro-enclaves-nsm-api` driver binding.
//!
//! Device calls go through the [`NsmDevice`] seam, so the mapping of every NSM response can be
//! tested without `/dev/nsm`. Calls block in an `ioctl`, so they run on tokio's blocking pool,
//! at most `max_concurrent` at a time.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use aws_nitro_enclaves_nsm_api::api::{ErrorCode, Request, Response};
use aws_nitro_enclaves_nsm_api::driver::nsm_process_request;
use serde_bytes::ByteBuf;
use tokio::sync::Semaphore;

use super::{AttestFuture, AttestationRequest, Attester, AttesterError, NSM_DEVICE, run_blocking};

/// Something that processes one NSM request: the real device, or a fake in tests.
pub trait NsmDevice: Send + Sync + 'static {
    /// Sends `request` and waits for the response. Blocking.
    fn process(&self, request: Request) -> Response;
}

/// The `/dev/nsm` device, open for reading and writing.
pub struct NsmDriver {
    file: File,
}

impl NsmDriver {
    /// Opens [`NSM_DEVICE`]. A missing device is [`AttesterError::NsmUnavailable`], whose
    /// message points at the simulator.
    pub fn open() -> Result<Self, AttesterError> {
        match OpenOptions::new().read(true).write(true).open(NSM_DEVICE) {
            Ok(file) => Ok(Self { file }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(AttesterError::NsmUnavailable)
            }
            Err(source) => Err(AttesterError::NsmOpen { source }),
        }
    }
}

impl NsmDevice for NsmDriver {
    fn process(&self, request: Request) -> Response {
        // The binding takes a raw descriptor; `self.file` keeps it open for the whole call.
        // It reports a failed ioctl, and a response that is not CBOR, as InternalError.
        nsm_process_request(self.file.as_raw_fd(), request)
    }
}

/// Reason NSM returned no document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NsmError {
    #[error("NSM rejected the attestation request as invalid (InvalidArgument)")]
    InvalidArgument,
    #[error(
        "NSM request too large (InputTooLarge): the encoded request must fit in 4 KiB, and \
         public_key, user_data and nonce are at most 1024 bytes each"
    )]
    InputTooLarge,
    #[error("NSM's document does not fit the driver's 12 KiB response buffer (BufferTooSmall)")]
    BufferTooSmall,
    #[error("NSM cannot produce attestation documents in this enclave (InvalidOperation)")]
    InvalidOperation,
    #[error("NSM's response does not correspond to the request (InvalidResponse)")]
    InvalidResponse,
    #[error(
        "NSM internal error (InternalError): the device failed, the ioctl failed, or the \
         response was not valid CBOR"
    )]
    InternalError,
    #[error("NSM returned error code {code} to an attestation request")]
    UnexpectedErrorCode { code: &'static str },
    #[error("NSM returned a {variant} response to an attestation request")]
    UnexpectedResponse { variant: &'static str },
    #[error("NSM returned an empty attestation document")]
    EmptyDocument,
}

/// The Nitro Secure Module as an attester.
pub struct NsmAttester {
    device: Arc<dyn NsmDevice>,
    permits: Arc<Semaphore>,
}

impl NsmAttester {
    /// Wraps `device`, allowing at most `max_concurrent` calls at once (at least one).
    pub fn new(device: impl NsmDevice, max_concurrent: usize) -> Self {
        Self {
            device: Arc::new(device),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }
}

impl Attester for NsmAttester {
    fn attest<'a>(&'a self, request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async move {
            let nsm_request = attestation_request(request)?;
            let device = Arc::clone(&self.device);
            let response =
                run_blocking("nsm", &self.permits, move || device.process(nsm_request)).await?;
            Ok(document_from_response(response)?)
        })
    }

    fn name(&self) -> &'static str {
        "nsm"
    }
}

/// Builds NSM's `Attestation` request. An absent field is sent as absent, never as an empty
/// byte string.
fn attestation_request(request: &AttestationRequest) -> Result<Request, AttesterError> {
    let checked = request.checked()?;
    let to_buf = |field: Option<&[u8]>| field.map(|bytes| ByteBuf::from(bytes.to_vec()));
    Ok(Request::Attestation {
        user_data: to_buf(checked.user_data()),
        nonce: to_buf(checked.nonce()),
        public_key: to_buf(checked.public_key()),
    })
}

/// Maps NSM's response to an `Attestation` request onto the document or an [`NsmError`].
pub(crate) fn document_from_response(response: Response) -> Result<Vec<u8>, NsmError> {
    match response {
        Response::Attestation { document } if document.is_empty() => Err(NsmError::EmptyDocument),
        Response::Attestation { document } => Ok(document),
        Response::Error(code) => Err(error_from_code(code)),
        Response::DescribePCR { .. } => Err(unexpected("DescribePCR")),
        Response::ExtendPCR { .. } => Err(unexpected("ExtendPCR")),
        Response::LockPCR => Err(unexpected("LockPCR")),
        Response::LockPCRs => Err(unexpected("LockPCRs")),
        Response::DescribeNSM { .. } => Err(unexpected("DescribeNSM")),
        Response::GetRandom { .. } => Err(unexpected("GetRandom")),
        // `Response` is non-exhaustive: variants added by later versions of the binding.
        _ => Err(unexpected("unknown")),
    }
}

fn error_from_code(code: ErrorCode) -> NsmError {
    match code {
        ErrorCode::InvalidArgument => NsmError::InvalidArgument,
        ErrorCode::InputTooLarge => NsmError::InputTooLarge,
        ErrorCode::BufferTooSmall => NsmError::BufferTooSmall,
        ErrorCode::InvalidOperation => NsmError::InvalidOperation,
        ErrorCode::InvalidResponse => NsmError::InvalidResponse,
        ErrorCode::InternalError => NsmError::InternalError,
        // These belong to PCR operations, or mean no error at all; none fits an attestation.
        ErrorCode::Success => NsmError::UnexpectedErrorCode { code: "Success" },
        ErrorCode::InvalidIndex => NsmError::UnexpectedErrorCode {
            code: "InvalidIndex",
        },
        ErrorCode::ReadOnlyIndex => NsmError::UnexpectedErrorCode {
            code: "ReadOnlyIndex",
        },
    }
}

fn unexpected(variant: &'static str) -> NsmError {
    NsmError::UnexpectedResponse { variant }
}
