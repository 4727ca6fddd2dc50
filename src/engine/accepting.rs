//! The payments started whose `accepted` record is not journaled yet.
//!
//! `pay` checks and reserves under the engine's pay lock and starts the transaction, which
//! journals `accepted` with its next changes (see `super::transaction`), outside that lock.
//! Until then the id is held here, by the transaction: a second `pay` with the same id waits
//! for the first to settle (then finds its record, or nothing if the journal refused it),
//! and the guards of contract §10 see the pending record as if it were stored, so two
//! concurrent `pay`s cannot both pass a check that one of them would have failed against
//! the other's record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::record::Record;

/// The pending `accepted` records by id.
#[derive(Debug)]
pub struct Accepting {
    pending: Mutex<HashMap<String, Arc<Record>>>,
    /// Bumped each time a pending id settles.
    settled: watch::Sender<u64>,
}

impl Default for Accepting {
    fn default() -> Accepting {
        Accepting {
            pending: Mutex::new(HashMap::new()),
            settled: watch::Sender::new(0),
        }
    }
}

impl Accepting {
    /// Changes each time a pending id settles. Subscribe before [`Accepting::contains`], so
    /// a settlement between the two is not missed.
    pub fn settled(&self) -> watch::Receiver<u64> {
        self.settled.subscribe()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// The pending record of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Record>> {
        self.lock().get(id).cloned()
    }

    /// Holds `record`'s id as pending until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, record: &Arc<Record>) -> Held {
        let id = record.id.clone();
        self.lock().insert(id.clone(), Arc::clone(record));
        Held {
            accepting: Arc::clone(self),
            id,
        }
    }

    /// The pending records for which `keep` holds (not stamped yet: no seq).
    pub fn select(&self, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Record>> {
        self.lock().values().filter(|r| keep(r)).cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Record>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pending id; dropping it settles the id (after the record was stored, or refused).
#[derive(Debug)]
pub struct Held {
    accepting: Arc<Accepting>,
    id: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.accepting.lock().remove(&self.id);
        self.accepting.settled.send_modify(|count| *count += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, State};

    #[tokio::test]
    async fn a_held_id_is_pending_until_dropped_and_waiters_are_told() {
        let accepting = Arc::new(Accepting::default());
        let mut settled = accepting.settled();
        let held = accepting.hold(&Arc::new(sample("a", State::Accepted)));
        assert!(accepting.contains("a"));
        assert_eq!(accepting.select(|r| r.id == "a").len(), 1);
        assert!(accepting.select(|r| r.id == "b").is_empty());
        drop(held);
        settled.changed().await.unwrap();
        assert!(!accepting.contains("a"));
    }
}
