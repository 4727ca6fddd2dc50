//! A rustls certificate resolver whose leaf can be replaced while the listener runs: new
//! handshakes get the new leaf, established connections keep theirs.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Serves one leaf to every handshake, replaceable at any time.
#[derive(Debug)]
pub(crate) struct HotSwap {
    current: RwLock<Arc<CertifiedKey>>,
}

impl HotSwap {
    /// A resolver serving `key`.
    pub(crate) fn new(key: Arc<CertifiedKey>) -> Self {
        HotSwap {
            current: RwLock::new(key),
        }
    }

    /// Serves `key` from the next handshake on.
    pub(crate) fn swap(&self, key: Arc<CertifiedKey>) {
        // The lock only guards a pointer swap, so a poisoned lock still holds a valid key.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for HotSwap {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
