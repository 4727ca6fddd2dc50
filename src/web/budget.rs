//! The connection budget of one port (contract §7.4): at most `per_address` connections per
//! client address (IPv6: per /64) and `total` in all; at the cap, the oldest connection
//! that has not authenticated is evicted to admit the new one. So no flood of idle,
//! unauthenticated sockets can keep a till out or use up the process's file descriptors.
//!
//! A [`Slot`] is one admitted connection: dropping it frees its place; a WebSocket session
//! marks it [`Slot::authenticated`] after `hello`, which makes it safe from eviction.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::net::address_key;

/// Descriptors kept free of client connections: terminals, the journal, the till store,
/// certificate files and the runtime's own.
pub const FD_RESERVE: usize = 128;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Its address already holds `per_address` connections.
    #[error("too many connections from this address")]
    PerAddress,
    /// Every place is taken by authenticated connections.
    #[error("connection cap reached, every connection authenticated")]
    Full,
}

#[derive(Debug)]
struct Entry {
    key: IpAddr,
    authenticated: bool,
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    /// By admission order: the first unauthenticated entry is the oldest.
    entries: BTreeMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(count) = self.per_address.get_mut(&entry.key) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&entry.key);
            }
        }
        Some(entry)
    }
}

/// One port's connection budget.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    per_address: usize,
    open: Mutex<Open>,
}

impl Budget {
    /// A budget of `total` connections, `per_address` per client address.
    pub fn new(total: usize, per_address: usize) -> Arc<Budget> {
        Arc::new(Budget {
            total: total.max(1),
            per_address: per_address.max(1),
            open: Mutex::default(),
        })
    }

    /// The cap on all connections.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Admits a connection from `peer`, evicting the oldest unauthenticated one at the cap.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let key = address_key(peer);
        let mut open = self.lock();
        if open.per_address.get(&key).copied().unwrap_or(0) >= self.per_address {
            return Err(Refused::PerAddress);
        }
        if open.entries.len() >= self.total {
            let oldest = open
                .entries
                .iter()
                .find(|(_, e)| !e.authenticated)
                .map(|(id, _)| *id)
                .ok_or(Refused::Full)?;
            if let Some(evicted) = open.remove(oldest) {
                evicted.evict.cancel();
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let evict = CancellationToken::new();
        let entry = Entry {
            key,
            authenticated: false,
            evict: evict.clone(),
        };
        open.entries.insert(id, entry);
        *open.per_address.entry(key).or_default() += 1;
        Ok(Slot {
            budget: Arc::clone(self),
            id,
            evict,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The client-connection cap under a process limit of `nofile` descriptors: `wanted`, but
/// never more than the limit less [`FD_RESERVE`] and what `others` (other ports) may hold.
pub fn total_under(nofile: u64, others: usize, wanted: usize) -> usize {
    let limit = usize::try_from(nofile).unwrap_or(usize::MAX);
    wanted.min(limit.saturating_sub(FD_RESERVE + others)).max(1)
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    budget: Arc<Budget>,
    id: u64,
    evict: CancellationToken,
}

impl Slot {
    /// The connection authenticated: it is no longer evicted to make room.
    pub fn authenticated(&self) {
        if let Some(entry) = self.budget.lock().entries.get_mut(&self.id) {
            entry.authenticated = true;
        }
    }

    /// Resolves when the connection was evicted: its task then closes it.
    pub fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.evict.clone().cancelled_owned()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.budget.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_holds_at_most_its_share() {
        let budget = Budget::new(100, 2);
        let _a = budget.admit(ip("127.0.0.2")).unwrap();
        let _b = budget.admit(ip("127.0.0.2")).unwrap();
        assert_eq!(
            budget.admit(ip("127.0.0.2")).unwrap_err(),
            Refused::PerAddress
        );
        let _c = budget.admit(ip("127.0.0.3")).unwrap();
        // IPv6 counts per /64.
        let _d = budget.admit(ip("fd00::1")).unwrap();
        let _e = budget.admit(ip("fd00::2")).unwrap();
        assert_eq!(
            budget.admit(ip("fd00::3")).unwrap_err(),
            Refused::PerAddress
        );
        drop(_a);
        assert!(budget.admit(ip("127.0.0.2")).is_ok());
    }

    #[test]
    fn at_the_cap_the_oldest_unauthenticated_is_evicted() {
        let budget = Budget::new(3, 10);
        let till = budget.admit(ip("127.0.0.1")).unwrap();
        till.authenticated();
        let old = budget.admit(ip("127.0.0.2")).unwrap();
        let newer = budget.admit(ip("127.0.0.3")).unwrap();
        let newest = budget.admit(ip("127.0.0.4")).unwrap();
        assert!(old.evict.is_cancelled(), "the oldest unauthenticated goes");
        assert!(!till.evict.is_cancelled() && !newer.evict.is_cancelled());
        assert_eq!(budget.lock().entries.len(), 3);
        drop(old);
        assert_eq!(
            budget.lock().entries.len(),
            3,
            "an evicted slot was already counted out"
        );
        newer.authenticated();
        newest.authenticated();
        assert_eq!(budget.admit(ip("127.0.0.5")).unwrap_err(), Refused::Full);
    }

    #[test]
    fn the_total_stays_below_the_descriptor_limit() {
        assert_eq!(total_under(1024, 64, 20_000), 1024 - FD_RESERVE - 64);
        assert_eq!(total_under(1_048_576, 64, 20_000), 20_000);
        assert_eq!(total_under(100, 64, 20_000), 1);
    }
}
