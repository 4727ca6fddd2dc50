//! The agent's TLS identity: a local root CA and a leaf it signs, kept in `tls.dir` and
//! renewed in place, or the operator's own pair; and the rustls server configuration that
//! serves the current leaf. Listening and HTTP belong to `web`, not here.
//!
//! Files in `tls.dir`: `ca.pem`, `ca.key` (0600), `agent.pem`, `agent.key` (0600). The CA is
//! created once and never replaced; the leaf is re-issued whenever its names or lifetime no
//! longer fit (see [`Certificates::renew_if_needed`]).

mod ca;
mod error;
pub(crate) mod files;
mod host;
mod leaf;
mod resolver;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;
use ca::LocalCa;
pub use error::CertError;
use files::{LEAF_CERT, LEAF_KEY};
pub use host::{HostNames, SanName};
use leaf::{Leaf, LeafInfo};
use resolver::HotSwap;

/// How often the agent checks whether the leaf must be re-issued.
pub const RENEWAL_INTERVAL: Duration = Duration::from_secs(3600);

/// The agent's certificates and the TLS server configuration serving them; cheap to clone.
#[derive(Clone)]
pub struct Certificates {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` with the operator's own certificate: nothing to issue or renew.
    local: Option<Local>,
    provider: Arc<CryptoProvider>,
    resolver: Arc<HotSwap>,
    server_config: Arc<ServerConfig>,
    /// The served leaf; the lock also serialises renewals.
    leaf: Mutex<LeafInfo>,
}

struct Local {
    ca: LocalCa,
    dir: PathBuf,
    extra_names: Vec<String>,
    /// Names the CA's constraints kept out of the leaf, each warned about once.
    left_out: Mutex<BTreeSet<SanName>>,
}

impl Certificates {
    /// Loads or creates the certificates for this host (see the module docs).
    pub fn load_or_create(config: &TlsConfig) -> Result<Self, CertError> {
        Self::load_or_create_for(config, &HostNames::detect())
    }

    /// Like [`load_or_create`](Self::load_or_create) with given host facts.
    pub fn load_or_create_for(config: &TlsConfig, host: &HostNames) -> Result<Self, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let Some((cert, key)) = &config.own else {
            let local = Local::load_or_create(config, host)?;
            let leaf = local.current_leaf(&wanted(&local, host), &provider)?;
            return Self::assemble(Some(local), leaf, provider);
        };
        let leaf = Leaf::load(cert, key, &provider)?;
        if !leaf.keys_match() {
            let reason = format!("does not match {}", cert.display());
            return Err(CertError::invalid(key, reason));
        }
        Self::assemble(None, leaf, provider)
    }

    fn assemble(
        local: Option<Local>,
        leaf: Leaf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, CertError> {
        let resolver = Arc::new(HotSwap::new(leaf.key));
        let mut server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let inner = Inner {
            local,
            provider,
            resolver,
            server_config: Arc::new(server_config),
            leaf: Mutex::new(leaf.info),
        };
        Ok(Certificates {
            inner: Arc::new(inner),
        })
    }

    /// The TLS server configuration (ALPN `http/1.1`); it always serves the current leaf.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.server_config.clone()
    }

    /// The local CA certificate as PEM; `None` with the operator's own certificate.
    pub fn ca_pem(&self) -> Option<String> {
        self.inner
            .local
            .as_ref()
            .map(|local| local.ca.pem().to_string())
    }

    /// SHA-256 of the CA certificate, `AA:BB:…` as browsers show it; `None` without a local CA.
    pub fn fingerprint(&self) -> Option<String> {
        let local = self.inner.local.as_ref()?;
        Some(fingerprint(local.ca.der()))
    }

    /// When the served leaf expires.
    pub fn leaf_not_after(&self) -> OffsetDateTime {
        self.leaf().not_after
    }

    /// The names the served leaf carries.
    pub fn leaf_names(&self) -> BTreeSet<SanName> {
        self.leaf().names.clone()
    }

    fn leaf(&self) -> std::sync::MutexGuard<'_, LeafInfo> {
        // Renewal replaces the info in one assignment, so a poisoned lock still holds a valid one.
        self.inner
            .leaf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-issues the leaf if this host's names changed or its life is two-thirds over;
    /// `true` if it did. New handshakes get the new leaf at once.
    pub fn renew_if_needed(&self) -> Result<bool, CertError> {
        self.renew_for(&HostNames::detect())
    }

    /// Like [`renew_if_needed`](Self::renew_if_needed) with given host facts.
    pub fn renew_for(&self, host: &HostNames) -> Result<bool, CertError> {
        let Some(local) = &self.inner.local else {
            return Ok(false);
        };
        let mut current = self.leaf();
        let wanted = wanted(local, host);
        let Some(reason) = current.renewal_reason(&wanted, OffsetDateTime::now_utc()) else {
            return Ok(false);
        };
        tracing::info!(reason, "re-issuing the leaf certificate");
        let leaf = Leaf::issue(&local.ca, &local.dir, &wanted, &self.inner.provider)?;
        self.inner.resolver.swap(leaf.key);
        *current = leaf.info;
        Ok(true)
    }

    /// Runs [`renew_if_needed`](Self::renew_if_needed) every `interval` until `shutdown`.
    /// A failed renewal is logged and the current leaf kept.
    pub fn spawn_renewal(
        &self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let certificates = self.clone();
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticks.tick() => certificates.renew_in_background().await,
                }
            }
        })
    }

    async fn renew_in_background(&self) {
        let certificates = self.clone();
        // Interface listing, key generation and fsync block: keep them off the runtime threads.
        match tokio::task::spawn_blocking(move || certificates.renew_if_needed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(%err, "leaf renewal failed; keeping the current leaf"),
            Err(err) => tracing::error!(%err, "leaf renewal task failed"),
        }
    }
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("fingerprint", &self.fingerprint())
            .field("leaf_not_after", &self.leaf_not_after())
            .finish_non_exhaustive()
    }
}

impl Local {
    fn load_or_create(config: &TlsConfig, host: &HostNames) -> Result<Self, CertError> {
        files::ensure_dir(&config.dir)?;
        Ok(Local {
            ca: LocalCa::load_or_create(&config.dir, host, config)?,
            dir: config.dir.clone(),
            extra_names: config.extra_names.clone(),
            left_out: Mutex::default(),
        })
    }

    /// The leaf on disk if it still fits, else a new one. Corrupt files are errors; a
    /// missing, mismatched or foreign leaf is simply re-issued, since nobody trusts it directly.
    fn current_leaf(
        &self,
        wanted: &BTreeSet<SanName>,
        provider: &CryptoProvider,
    ) -> Result<Leaf, CertError> {
        let (cert, key) = (self.dir.join(LEAF_CERT), self.dir.join(LEAF_KEY));
        let reason = if files::exists(&cert)? && files::exists(&key)? {
            let leaf = Leaf::load(&cert, &key, provider)?;
            let now = OffsetDateTime::now_utc();
            let reason = self.unusable(&leaf);
            match reason.or_else(|| leaf.info.renewal_reason(wanted, now)) {
                Some(reason) => reason,
                None => return Ok(leaf),
            }
        } else {
            "there is none"
        };
        tracing::info!(reason, "issuing a leaf certificate");
        Leaf::issue(&self.ca, &self.dir, wanted, provider)
    }

    fn unusable(&self, leaf: &Leaf) -> Option<&'static str> {
        if !leaf.keys_match() {
            Some("its key does not match")
        } else if !self.ca.signed(leaf.end_entity()) {
            Some("it is not signed by the local CA")
        } else {
            None
        }
    }
}

/// The names the leaf should carry: those of the host and config that the CA may certify.
/// Each name left out is warned about once per run (the hourly checks would repeat it).
fn wanted(local: &Local, host: &HostNames) -> BTreeSet<SanName> {
    let (names, left_out): (BTreeSet<_>, BTreeSet<_>) =
        host::wanted_names(host, &local.extra_names)
            .into_iter()
            .partition(|name| local.ca.permits(name));
    let mut warned = local
        .left_out
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for name in left_out {
        if warned.insert(name.clone()) {
            tracing::warn!(
                %name,
                "left out of the TLS certificate: the local CA's name constraints do not \
                 permit it; tills reach the agent by another name, or set \
                 tls.name_constraints = false and create a new CA (move ca.pem and ca.key \
                 away, then trust the new CA on every till)"
            );
        }
    }
    names
}

/// SHA-256 of `der` as uppercase hex pairs joined by colons.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let pairs: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(":")
}

/// A root store trusting only the certificates of `ca_pem` (for clients and tests).
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, CertError> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|err| CertError::CaPem(err.to_string()))?;
        store
            .add(cert)
            .map_err(|err| CertError::CaPem(err.to_string()))?;
    }
    if store.is_empty() {
        return Err(CertError::CaPem("no certificate found".into()));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_look_like_browsers_show_them() {
        let print = fingerprint(b"abc");
        assert_eq!(print.len(), 32 * 3 - 1);
        assert!(print.starts_with("BA:78:16:BF:"));
    }

    #[test]
    fn a_root_store_needs_a_certificate() {
        let err = root_store("nothing here").unwrap_err();
        assert_eq!(err.to_string(), "CA PEM: no certificate found");
    }
}
