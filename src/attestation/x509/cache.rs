//! A cache of intermediate-certificate signatures that already verified.
//!
//! The regional and zonal CA certificates of AWS's chain repeat across many documents, so a
//! verifier that checks a stream of documents can skip their ECDSA checks after the first
//! time. The cache stores one fact per entry: "the certificate whose DER hashes to X carries
//! a valid signature by the key of the certificate whose DER hashes to Y". Both hashes are
//! SHA-256 over the whole DER, so a certificate with the same subject but other bytes (another
//! signature, key or validity) and a certificate under another issuer are both misses.
//!
//! The cache replaces nothing but the signature check. Names, extensions and validity times
//! are still checked for every certificate at every verification, so a cached certificate
//! that has expired is rejected like any other. Leaf certificates are never cached, because
//! NSM issues a new one for every document.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

/// Number of entries [`VerifierCache::new`] keeps. AWS's chains have three intermediates per
/// document, and regional and zonal certificates are shared by many instances, so a verifier
/// serving one fleet fills only a small part of it.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Intermediate-certificate signatures that already verified, keyed by the SHA-256 of the
/// certificate's DER and of its issuer's DER. The caller creates one, keeps it across
/// verifications and passes it to `verify::verify_with_cache`. It is `Sync`, so threads may share one through a
/// reference or an `Arc`.
pub struct VerifierCache {
    entries: RwLock<HashMap<SignatureFact, u64>>,
    capacity: usize,
}

/// The key of one entry: SHA-256 of a certificate's DER and of its issuer's DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SignatureFact {
    pub(crate) certificate_sha256: [u8; 32],
    pub(crate) issuer_sha256: [u8; 32],
}

impl VerifierCache {
    /// Creates an empty cache of at most [`DEFAULT_CAPACITY`] entries.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Creates an empty cache of at most `capacity` entries. A capacity of 0 caches nothing.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// Returns the number of cached signatures.
    pub fn len(&self) -> usize {
        self.read(HashMap::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.write(HashMap::clear);
    }

    /// True when the signature of `fact` verified before.
    pub(crate) fn contains(&self, fact: &SignatureFact) -> bool {
        self.read(|entries| entries.contains_key(fact))
    }

    /// Records that the signature of `fact` verified. `not_after_ms` is the certificate's
    /// notAfter. When the cache is full, entries whose certificate expired before
    /// `time_ms - skew_ms` go first, and if that frees nothing the cache is emptied.
    pub(crate) fn insert(
        &self,
        fact: SignatureFact,
        not_after_ms: u64,
        time_ms: u64,
        skew_ms: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        self.write(|entries| {
            if entries.len() >= self.capacity && !entries.contains_key(&fact) {
                let oldest_valid = time_ms.saturating_sub(skew_ms);
                entries.retain(|_, not_after| *not_after >= oldest_valid);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(fact, not_after_ms);
        });
    }

    // A panic while the lock was held cannot leave the map half-updated (every update is a
    // single HashMap call), so a poisoned lock is used as it is.
    fn read<T>(&self, read: impl FnOnce(&HashMap<SignatureFact, u64>) -> T) -> T {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        read(&entries)
    }

    fn write<T>(&self, write: impl FnOnce(&mut HashMap<SignatureFact, u64>) -> T) -> T {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        write(&mut entries)
    }
}

impl Default for VerifierCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for VerifierCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(certificate: u8, issuer: u8) -> SignatureFact {
        SignatureFact {
            certificate_sha256: [certificate; 32],
            issuer_sha256: [issuer; 32],
        }
    }

    #[test]
    fn fact_needs_both_hashes() {
        let cache = VerifierCache::new();
        cache.insert(fact(1, 2), 100, 0, 0);
        assert!(cache.contains(&fact(1, 2)));
        assert!(!cache.contains(&fact(1, 3)));
        assert!(!cache.contains(&fact(3, 2)));
    }

    #[test]
    fn full_cache_drops_expired_entries_first() {
        let cache = VerifierCache::with_capacity(2);
        cache.insert(fact(1, 0), 1_000, 0, 0);
        cache.insert(fact(2, 0), 5_000, 0, 0);
        cache.insert(fact(3, 0), 5_000, 2_000, 0);
        assert!(!cache.contains(&fact(1, 0)));
        assert!(cache.contains(&fact(2, 0)));
        assert!(cache.contains(&fact(3, 0)));
    }

    #[test]
    fn full_cache_without_expired_entries_empties() {
        let cache = VerifierCache::with_capacity(2);
        cache.insert(fact(1, 0), 9_000, 0, 0);
        cache.insert(fact(2, 0), 9_000, 0, 0);
        cache.insert(fact(3, 0), 9_000, 0, 0);
        assert_eq!(cache.len(), 1);
        assert!(cache.contains(&fact(3, 0)));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = VerifierCache::with_capacity(0);
        cache.insert(fact(1, 0), 9_000, 0, 0);
        assert!(cache.is_empty());
    }
}
