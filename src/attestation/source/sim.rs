//! The `sim=DIR` attester: documents from the development simulator, signed under its local
//! root. Signing is CPU work, so it runs on tokio's blocking pool with a bound on concurrent
//! calls.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{
    AttestFuture, AttestationRequest, Attester, AttesterError, DEFAULT_MAX_CONCURRENT_CALLS,
    run_blocking,
};
use crate::attestation::sim::SimulatedEnclave;

/// The development simulator as an attester.
pub struct SimAttester {
    enclave: Arc<SimulatedEnclave>,
    permits: Arc<Semaphore>,
}

impl SimAttester {
    /// Loads the simulator folder made by `sim init`.
    pub fn open(dir: &Path) -> Result<Self, AttesterError> {
        let enclave = SimulatedEnclave::load(dir)
            .map_err(|error| AttesterError::Simulator(error.to_string()))?;
        Ok(Self::new(enclave, DEFAULT_MAX_CONCURRENT_CALLS))
    }

    /// Wraps `enclave`, allowing at most `max_concurrent` signings at once (at least one).
    pub fn new(enclave: SimulatedEnclave, max_concurrent: usize) -> Self {
        Self {
            enclave: Arc::new(enclave),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }
}

impl Attester for SimAttester {
    fn attest<'a>(&'a self, request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async move {
            let checked = request.checked()?;
            let public_key = checked.public_key().map(<[u8]>::to_vec);
            let user_data = checked.user_data().map(<[u8]>::to_vec);
            let nonce = checked.nonce().map(<[u8]>::to_vec);
            let enclave = Arc::clone(&self.enclave);
            let signed = run_blocking("sim", &self.permits, move || {
                enclave.attest(
                    public_key.as_deref(),
                    user_data.as_deref(),
                    nonce.as_deref(),
                    crate::clock::now_ms(),
                )
            })
            .await?;
            signed.map_err(|error| AttesterError::Simulator(error.to_string()))
        })
    }

    fn name(&self) -> &'static str {
        "sim"
    }

    fn is_simulator(&self) -> bool {
        true
    }
}
