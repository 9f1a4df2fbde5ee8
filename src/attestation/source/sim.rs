//! The `sim=DIR` attester: documents from the development simulator, signed under its local
//! root. Issuing a chain runs on tokio's blocking pool with a bound on concurrent calls;
//! documents signed with an already issued chain are signed inline.
//!
//! Issuing a chain costs four key generations and four certificate signatures, about nine
//! times the document's own signature, so the attester reuses one chain and leaf key for
//! [`SIGNER_REUSE_MS`] and then issues a new one. Documents still carry their own timestamp.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::{
    AttestFuture, AttestationRequest, Attester, AttesterError, DEFAULT_MAX_CONCURRENT_CALLS,
    run_blocking,
};
use crate::attestation::sim::{SimError, SimSigner, SimulatedEnclave};

/// How long one issued chain signs documents, in milliseconds. The leaf is valid from one
/// minute before its issue time to three hours after it, so every document signed within
/// this window verifies at its own timestamp.
pub const SIGNER_REUSE_MS: u64 = 10 * 60 * 1000;

/// The development simulator as an attester.
pub struct SimAttester {
    enclave: Arc<SimulatedEnclave>,
    signer: Arc<SignerCache>,
    permits: Arc<Semaphore>,
}

/// The chain in use and the time it was issued at.
#[derive(Default)]
struct SignerCache {
    current: Mutex<Option<(u64, Arc<SimSigner>)>>,
}

impl SignerCache {
    /// Returns the cached signer when it was issued within [`SIGNER_REUSE_MS`] before
    /// `now_ms`, otherwise issues and caches a new one. A clock that moved backwards also
    /// gets a new one.
    /// Returns the cached signer when it was issued within [`SIGNER_REUSE_MS`] before
    /// `now_ms`, without issuing a new one.
    fn cached(&self, now_ms: u64) -> Option<Arc<SimSigner>> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match current.as_ref() {
            Some((issued_ms, signer))
                if now_ms >= *issued_ms && now_ms - issued_ms < SIGNER_REUSE_MS =>
            {
                Some(Arc::clone(signer))
            }
            _ => None,
        }
    }

    fn get(&self, enclave: &SimulatedEnclave, now_ms: u64) -> Result<Arc<SimSigner>, SimError> {
        // A poisoned lock only means another thread panicked while swapping the cache; the
        // value inside is still a whole (time, signer) pair or None.
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((issued_ms, signer)) = current.as_ref()
            && now_ms >= *issued_ms
            && now_ms - issued_ms < SIGNER_REUSE_MS
        {
            return Ok(Arc::clone(signer));
        }
        let signer = Arc::new(enclave.issue_signer(now_ms)?);
        *current = Some((now_ms, Arc::clone(&signer)));
        Ok(signer)
    }
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
            signer: Arc::new(SignerCache::default()),
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
            // With a chain already issued, only the document's own ES384 signature is left
            // (well under a millisecond of CPU), so it is done inline. Issuing that chain
            // generated keys, so the RNG is initialized, and Linux getrandom never blocks
            // once it is.
            let now_ms = crate::clock::now_ms();
            if let Some(signer) = self.signer.cached(now_ms) {
                return self
                    .enclave
                    .attest_with_signer(
                        &signer,
                        public_key.as_deref(),
                        user_data.as_deref(),
                        nonce.as_deref(),
                        now_ms,
                    )
                    .map_err(|error| AttesterError::Simulator(error.to_string()));
            }

            // Issuing a chain (four key generations) runs on the blocking pool, bounded.
            let enclave = Arc::clone(&self.enclave);
            let cache = Arc::clone(&self.signer);
            let signed = run_blocking("sim", &self.permits, move || {
                let now_ms = crate::clock::now_ms();
                let signer = cache.get(&enclave, now_ms)?;
                enclave.attest_with_signer(
                    &signer,
                    public_key.as_deref(),
                    user_data.as_deref(),
                    nonce.as_deref(),
                    now_ms,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const T0: u64 = 1_748_779_200_000;

    #[test]
    fn reuses_signer_within_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let enclave = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
        let cache = SignerCache::default();

        let first = cache.get(&enclave, T0).unwrap();
        let same = cache.get(&enclave, T0 + SIGNER_REUSE_MS - 1).unwrap();
        let renewed = cache.get(&enclave, T0 + SIGNER_REUSE_MS).unwrap();
        let after_clock_step_back = cache.get(&enclave, T0).unwrap();

        assert!(Arc::ptr_eq(&first, &same));
        assert!(!Arc::ptr_eq(&first, &renewed));
        assert_ne!(first.certificate(), renewed.certificate());
        assert!(!Arc::ptr_eq(&renewed, &after_clock_step_back));
    }

    #[test]
    fn document_from_reused_signer_verifies_at_its_time() {
        use crate::attestation::verify::{VerifyOptions, verify};

        let dir = tempfile::tempdir().unwrap();
        let enclave = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).unwrap();
        let cache = SignerCache::default();
        let _ = cache.get(&enclave, T0).unwrap();

        let late = T0 + SIGNER_REUSE_MS - 1;
        let signer = cache.get(&enclave, late).unwrap();
        let bytes = enclave
            .attest_with_signer(&signer, None, Some(b"x"), None, late)
            .unwrap();

        let mut options = VerifyOptions::new(late);
        options.trust_roots = vec![enclave.trust_root().unwrap()];
        let verified = verify(&bytes, &options).unwrap();
        assert_eq!(verified.document().timestamp_ms(), late);
    }
}
