//! Who may connect: tills with a static token from the config, or paired tills whose token
//! hash lives in `data_dir` (see [`store`]), and the per-address limit on wrong attempts.
//!
//! Pairing codes are issued by the CLI (`caisse-ap-relay pair`) into the store and exchanged
//! here by the agent for a fresh token. The agent re-reads the store when the file changes,
//! so a pairing or a revocation made by the CLI applies without restart; revocations are
//! announced on a broadcast channel so the relay can close that till's sockets. A reload
//! replaces the configured tills ([`Access::replace_tills`]) and announces the same way the
//! tills whose token stopped working or whose rights changed.
//! Tokens and codes are compared in constant time and never logged. Sessions, origins and
//! the wire format are the relay's business, not this module's.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Role, TillConfig};

mod limiter;
pub(crate) mod secret;
pub(crate) mod store;
pub(crate) mod throttle;

use limiter::RateLimiter;
pub use store::{Attempt, PairedTill, PairingCode, Store, StoreError, MAX_WRONG_ATTEMPTS};
use throttle::LogThrottle;

/// How often the watcher looks at the store for revocations.
const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// `last_used` is written at most this often per pairing, not on every hello.
const TOUCH_PERIOD: Duration = Duration::from_secs(60);
/// Revocations buffered for slow receivers (a lagging receiver should re-check its tills).
const REVOCATION_CAPACITY: usize = 64;

/// An authenticated till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Till {
    /// Till name.
    pub name: String,
    /// Cashier, display or operator.
    pub role: Role,
    /// Terminals this till may use; `None` = all.
    pub terminals: Option<Vec<String>>,
}

impl Till {
    /// Whether this till may use (pay on, watch) `terminal`.
    pub fn may_use(&self, terminal: &str) -> bool {
        self.terminals
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == terminal))
    }
}

impl From<&TillConfig> for Till {
    fn from(config: &TillConfig) -> Till {
        Till {
            name: config.name.clone(),
            role: config.role,
            terminals: config.terminals.clone(),
        }
    }
}

/// A till whose open sessions must end, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// Its token no longer works: pairing revoked, till removed or its token changed.
    Revoked(String),
    /// Its role or terminals changed: a new `hello` with the same token applies them.
    RightsChanged(String),
}

impl Closing {
    /// The till's name.
    pub fn till(&self) -> &str {
        match self {
            Closing::Revoked(name) | Closing::RightsChanged(name) => name,
        }
    }
}

/// Why authentication or pairing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong token or code: the till must pair again or fix its token.
    #[error("unknown token")]
    Unauthorized,
    /// Too many wrong attempts from this address: wait a minute.
    #[error("too many attempts, wait a minute")]
    RateLimited,
    /// The pairing store could not be read or written: the operator checks the agent's log.
    #[error("pairing store unavailable")]
    Unavailable,
}

/// The time source, injectable so tests can expire codes and windows without waiting.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The agent's view of the store: the paired tills as of the file version `stamp`.
#[derive(Debug, Default)]
struct PairedCache {
    stamp: Option<store::Stamp>,
    tills: Vec<PairedTill>,
}

/// The tills allowed to connect.
#[derive(Debug)]
pub struct Access {
    // A std lock: never held across an await.
    tills: RwLock<Vec<TillConfig>>,
    store: Store,
    clock: Arc<dyn Clock>,
    limiter: Mutex<RateLimiter>,
    failures: LogThrottle,
    paired: Mutex<PairedCache>,
    revocations: broadcast::Sender<Closing>,
}

/// Locks a mutex, going on if a panicking thread poisoned it (every section below leaves
/// its data consistent).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Access {
    /// Builds the access list from the configured tills and the pairing store in `data_dir`.
    pub fn new(tills: &[TillConfig], data_dir: &Path) -> Result<Access, StoreError> {
        Access::with_clock(tills, data_dir, Arc::new(SystemClock))
    }

    /// Like [`Access::new`], reading the time from `clock`.
    pub fn with_clock(
        tills: &[TillConfig],
        data_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Access, StoreError> {
        let access = Access {
            tills: RwLock::new(tills.to_vec()),
            store: Store::open(data_dir)?,
            clock,
            limiter: Mutex::default(),
            failures: LogThrottle::default(),
            paired: Mutex::default(),
            revocations: broadcast::channel(REVOCATION_CAPACITY).0,
        };
        access.refresh()?;
        Ok(access)
    }

    /// Finds the till holding `token` (static or paired).
    pub fn authenticate(&self, token: &str, peer: IpAddr) -> Result<Till, AuthError> {
        let now = self.clock.now();
        self.check_rate(peer, now)?;
        let found = match self.static_till(token) {
            Some(till) => Some(till),
            None => self.paired_till(token, now),
        };
        found.ok_or_else(|| self.fail(peer, now))
    }

    /// Exchanges a pairing code for a new till token; the code stops working. A wrong
    /// attempt counts against the address and against every pending code (contract §7.5).
    pub fn pair(&self, code: &str, peer: IpAddr) -> Result<(Till, String), AuthError> {
        let now = self.clock.now();
        self.check_rate(peer, now)?;
        let token = secret::new_token().map_err(|err| unavailable(&err.into()))?;
        let attempt = if secret::is_code_shaped(code) {
            self.store
                .consume_code(code, secret::token_hash(&token), now)
        } else {
            self.store.wrong_attempt(now)
        };
        let paired = match attempt.map_err(|err| unavailable(&err))? {
            Attempt::Paired(paired) => paired,
            Attempt::Wrong { burnt } => {
                for till in burnt {
                    warn!(%till, "pairing code invalidated after {MAX_WRONG_ATTEMPTS} wrong \
                        attempts: someone may be guessing; issue a new one with \
                        `caisse-ap-relay pair --till {till}`");
                }
                return Err(self.fail(peer, now));
            }
        };
        info!(till = %paired.name, %peer, "till paired");
        // The cache must hold the new pairing, so that revoking it is noticed.
        if let Err(err) = self.refresh() {
            warn!(%err, "pairing store unreadable after pairing");
        }
        Ok((paired.till(), token))
    }

    /// Tills whose sessions must end: pairings revoked as the store shows it (needs
    /// [`Access::spawn_watcher`]) and tills changed by [`Access::replace_tills`].
    pub fn revocations(&self) -> broadcast::Receiver<Closing> {
        self.revocations.subscribe()
    }

    /// The configured tills, in file order (the one list of them: `status` and reloads read it).
    pub fn configured(&self) -> Vec<Till> {
        let tills = self.tills.read().unwrap_or_else(|e| e.into_inner());
        tills.iter().map(Till::from).collect()
    }

    /// Whether an operator till exists: in the configuration or paired (contract §7.3).
    pub fn has_operator(&self) -> bool {
        let configured = self.configured().iter().any(|t| t.role == Role::Operator);
        configured
            || lock(&self.paired)
                .tills
                .iter()
                .any(|t| t.role == Role::Operator)
    }

    /// Makes `tills` the configured tills (a reload); new `hello`s see them at once. Announces
    /// the tills whose static token stopped working and those whose role or terminals changed.
    /// Returns the tills replaced.
    pub fn replace_tills(&self, tills: &[TillConfig]) -> Vec<TillConfig> {
        let mut current = self.tills.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *current, tills.to_vec());
        drop(current);
        for closing in closings(&old, tills) {
            info!(till = %closing.till(), revoked = matches!(closing, Closing::Revoked(_)),
                "till changed by a reload; closing its sessions");
            let _ = self.revocations.send(closing);
        }
        old
    }

    /// Polls the store every second until `shutdown`, announcing revocations.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let access = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(err) = access.refresh() {
                            warn!(%err, "pairing store unreadable");
                        }
                    }
                }
            }
        })
    }

    fn check_rate(&self, peer: IpAddr, now: SystemTime) -> Result<(), AuthError> {
        if lock(&self.limiter).allows(peer, now) {
            Ok(())
        } else {
            self.log_failure(peer, "rate-limited");
            Err(AuthError::RateLimited)
        }
    }

    fn fail(&self, peer: IpAddr, now: SystemTime) -> AuthError {
        lock(&self.limiter).record_failure(peer, now);
        self.log_failure(peer, "wrong token or pairing code");
        AuthError::Unauthorized
    }

    /// At most one line a minute per address, with the count (contract §7.4).
    fn log_failure(&self, peer: IpAddr, what: &str) {
        if let Some(count) = self.failures.hit(peer) {
            warn!(%peer, count, "authentication failed ({what}); one line a minute per address");
        }
    }

    fn static_till(&self, token: &str) -> Option<Till> {
        let mut found = None;
        let tills = self.tills.read().unwrap_or_else(|e| e.into_inner());
        // No early exit: the time taken does not depend on which till matched.
        for till in tills.iter() {
            let Some(secret) = &till.token else { continue };
            if secret::same(&secret.0, token) {
                found = Some(Till::from(till));
            }
        }
        found
    }

    fn paired_till(&self, token: &str, now: SystemTime) -> Option<Till> {
        if let Err(err) = self.refresh() {
            warn!(%err, "pairing store unreadable, using the last good copy");
        }
        let hash = secret::token_hash(token);
        let mut cache = lock(&self.paired);
        let mut found = None;
        for paired in cache.tills.iter_mut() {
            if secret::same(&paired.token_hash, &hash) {
                found = Some(paired);
            }
        }
        let paired = found?;
        let till = paired.till();
        if is_due(paired.last_used, now) {
            paired.last_used = Some(store::unix_seconds(now));
            drop(cache);
            if let Err(err) = self.store.touch(&hash, now) {
                warn!(%err, till = %till.name, "could not record the till's last use");
            }
        }
        Some(till)
    }

    /// Re-reads the store if the file changed and announces pairings that disappeared.
    fn refresh(&self) -> Result<(), StoreError> {
        let stamp = self.store.stamp()?;
        let mut cache = lock(&self.paired);
        if stamp.is_some() && cache.stamp == stamp {
            return Ok(());
        }
        let tills = self.store.read()?.paired;
        let revoked = revoked_names(&cache.tills, &tills);
        *cache = PairedCache { stamp, tills };
        drop(cache);
        for name in revoked {
            info!(till = %name, "till pairing revoked");
            // No receiver is fine: then no socket of that till can be open.
            let _ = self.revocations.send(Closing::Revoked(name));
        }
        Ok(())
    }
}

fn unavailable(err: &StoreError) -> AuthError {
    warn!(%err, "pairing store unavailable");
    AuthError::Unavailable
}

fn is_due(last_used: Option<u64>, now: SystemTime) -> bool {
    last_used.is_none_or(|last| store::unix_seconds(now) >= last + TOUCH_PERIOD.as_secs())
}

/// Names having a pairing in `old` whose token is gone from `new`, each once.
fn revoked_names(old: &[PairedTill], new: &[PairedTill]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for gone in old
        .iter()
        .filter(|o| !new.iter().any(|n| n.token_hash == o.token_hash))
    {
        if !names.contains(&gone.name) {
            names.push(gone.name.clone());
        }
    }
    names
}

/// What a reload from `old` to `new` static tills does to their open sessions. Tills without
/// a token have none: paired tills keep the rights they were paired with.
fn closings(old: &[TillConfig], new: &[TillConfig]) -> Vec<Closing> {
    let mut closings = Vec::new();
    for before in old.iter().filter(|t| t.token.is_some()) {
        let after = new.iter().find(|t| t.name == before.name);
        match after {
            Some(after) if after.token == before.token => {
                if (after.role, &after.terminals) != (before.role, &before.terminals) {
                    closings.push(Closing::RightsChanged(before.name.clone()));
                }
            }
            _ => closings.push(Closing::Revoked(before.name.clone())),
        }
    }
    closings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn till(name: &str, token: Option<&str>, role: Role) -> TillConfig {
        TillConfig {
            name: name.into(),
            token: token.map(|t| Secret(t.into())),
            terminals: None,
            role,
        }
    }

    #[test]
    fn a_reload_revokes_changed_tokens_and_reconnects_changed_rights() {
        let old = [
            till("kept", Some("k"), Role::Cashier),
            till("removed", Some("r"), Role::Cashier),
            till("new-token", Some("t"), Role::Cashier),
            till("demoted", Some("d"), Role::Cashier),
            till("template", None, Role::Cashier),
        ];
        let new = [
            till("kept", Some("k"), Role::Cashier),
            till("new-token", Some("t2"), Role::Cashier),
            till("demoted", Some("d"), Role::Display),
            till("added", Some("a"), Role::Cashier),
        ];
        assert_eq!(
            closings(&old, &new),
            [
                Closing::Revoked("removed".into()),
                Closing::Revoked("new-token".into()),
                Closing::RightsChanged("demoted".into()),
            ]
        );
    }
}
