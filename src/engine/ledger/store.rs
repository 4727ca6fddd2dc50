//! The current record of every transaction, by id, by seq, by terminal and by till, and the
//! unresolved `unknown`s apart.
//!
//! Each look-up reads only what its caller wants (a [`Scope`]), in seq order without a sort:
//! a `pay`'s guards the unresolved `unknown`s (or, with the duplicate guard on, their
//! terminal's records), a `watch` its terminal's records, a till's `welcome` replay
//! its own, a lagged session or webhook the changes after its last seq. [`Store::retain`]
//! drops what retention no longer keeps from every index at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::engine::record::Record;

/// Which records a look-up reads.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every record.
    All,
    /// The records of one terminal.
    Terminal(&'a str),
    /// The records one till started.
    Till(&'a str),
    /// The records whose current change has a seq above this one.
    Since(u64),
    /// The records whose current change is an `unknown` without resolution.
    Unresolved,
}

/// Seqs of current records, by terminal or till name.
type Index = HashMap<String, BTreeSet<u64>>;

/// Current records, indexed. A current record's seq is unique (the ledger stamps it).
#[derive(Debug, Default)]
pub struct Store {
    by_id: HashMap<String, Arc<Record>>,
    by_seq: BTreeMap<u64, Arc<Record>>,
    by_terminal: Index,
    by_till: Index,
    unresolved: BTreeSet<u64>,
}

impl Store {
    /// A store holding `records` (the latest of each id wins).
    pub fn new(records: Vec<Record>) -> Store {
        let mut store = Store::default();
        for record in records {
            store.insert(Arc::new(record));
        }
        store
    }

    /// Makes `record` the current one of its id (every change of a transaction comes here:
    /// its id and names are copied only when first indexed).
    pub fn insert(&mut self, record: Arc<Record>) {
        let old = match self.by_id.get_mut(&record.id) {
            Some(current) => Some(std::mem::replace(current, Arc::clone(&record))),
            None => self.by_id.insert(record.id.clone(), Arc::clone(&record)),
        };
        if let Some(old) = old {
            self.unindex(&old);
        }
        link(&mut self.by_terminal, &record.terminal, record.seq);
        link(&mut self.by_till, &record.till, record.seq);
        if record.is_unresolved() {
            self.unresolved.insert(record.seq);
        }
        self.by_seq.insert(record.seq, record);
    }

    /// Forgets every record `keep` refuses; returns how many.
    pub fn retain(&mut self, keep: impl Fn(&Record) -> bool) -> usize {
        let gone: Vec<Arc<Record>> = self.all().filter(|r| !keep(r)).cloned().collect();
        for record in &gone {
            self.by_id.remove(&record.id);
            self.unindex(record);
        }
        gone.len()
    }

    /// The current record of `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.by_id.get(id)
    }

    /// The current records in `scope`, in seq order.
    pub fn scope<'s>(&'s self, scope: Scope<'_>) -> Box<dyn Iterator<Item = &'s Arc<Record>> + 's> {
        match scope {
            Scope::All => Box::new(self.all()),
            Scope::Since(seq) => {
                Box::new(self.by_seq.range(seq.saturating_add(1)..).map(|(_, r)| r))
            }
            Scope::Terminal(name) => self.indexed(&self.by_terminal, name),
            Scope::Till(name) => self.indexed(&self.by_till, name),
            Scope::Unresolved => {
                Box::new((self.unresolved.iter()).filter_map(|seq| self.by_seq.get(seq)))
            }
        }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.by_seq.values()
    }

    fn indexed<'s>(
        &'s self,
        index: &'s Index,
        name: &str,
    ) -> Box<dyn Iterator<Item = &'s Arc<Record>> + 's> {
        let seqs = index.get(name).into_iter().flatten();
        Box::new(seqs.filter_map(|seq| self.by_seq.get(seq)))
    }

    fn unindex(&mut self, old: &Record) {
        self.by_seq.remove(&old.seq);
        self.unresolved.remove(&old.seq);
        unlink(&mut self.by_terminal, &old.terminal, old.seq);
        unlink(&mut self.by_till, &old.till, old.seq);
    }
}

fn link(index: &mut Index, name: &str, seq: u64) {
    match index.get_mut(name) {
        Some(seqs) => {
            seqs.insert(seq);
        }
        None => {
            index.insert(name.to_owned(), BTreeSet::from([seq]));
        }
    }
}

fn unlink(index: &mut Index, name: &str, seq: u64) {
    if let Some(seqs) = index.get_mut(name) {
        seqs.remove(&seq);
        if seqs.is_empty() {
            index.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, State};

    fn record(id: &str, seq: u64, terminal: &str, till: &str, state: State) -> Arc<Record> {
        let mut record = sample(id, state);
        (record.seq, record.terminal, record.till) = (seq, terminal.into(), till.into());
        Arc::new(record)
    }

    fn ids(store: &Store, scope: Scope<'_>) -> Vec<(String, State)> {
        let records = store.scope(scope);
        records.map(|r| (r.id.clone(), r.state)).collect()
    }

    fn pairs(expected: &[(&str, State)]) -> Vec<(String, State)> {
        expected
            .iter()
            .map(|(id, s)| ((*id).to_owned(), *s))
            .collect()
    }

    #[test]
    fn every_index_follows_each_change_in_seq_order() {
        let mut store = Store::default();
        store.insert(record("a", 1, "tpe-1", "till-1", State::Accepted));
        store.insert(record("b", 2, "tpe-2", "till-2", State::Accepted));
        store.insert(record("c", 3, "tpe-1", "till-2", State::Accepted));
        store.insert(record("a", 4, "tpe-1", "till-1", State::Approved));
        use State::{Accepted, Approved};
        assert_eq!(
            ids(&store, Scope::All),
            pairs(&[("b", Accepted), ("c", Accepted), ("a", Approved)])
        );
        assert_eq!(
            ids(&store, Scope::Terminal("tpe-1")),
            pairs(&[("c", Accepted), ("a", Approved)])
        );
        assert_eq!(
            ids(&store, Scope::Terminal("tpe-2")),
            pairs(&[("b", Accepted)])
        );
        assert_eq!(
            ids(&store, Scope::Till("till-2")),
            pairs(&[("b", Accepted), ("c", Accepted)])
        );
        assert_eq!(
            ids(&store, Scope::Since(2)),
            pairs(&[("c", Accepted), ("a", Approved)])
        );
        assert_eq!(ids(&store, Scope::Since(4)), []);
        assert!(ids(&store, Scope::Terminal("none")).is_empty());
        assert_eq!(store.get("a").unwrap().state, Approved);
    }

    #[test]
    fn a_record_retention_drops_is_gone_from_every_index() {
        let mut store = Store::default();
        store.insert(record("old", 1, "tpe-1", "till-1", State::Approved));
        store.insert(record("kept", 2, "tpe-1", "till-1", State::Unknown));
        store.insert(record("other", 3, "tpe-2", "till-2", State::Declined));
        assert_eq!(store.retain(|r| r.state == State::Unknown), 2);
        let kept = pairs(&[("kept", State::Unknown)]);
        assert_eq!(ids(&store, Scope::All), kept);
        assert_eq!(ids(&store, Scope::Since(0)), kept);
        assert_eq!(ids(&store, Scope::Terminal("tpe-1")), kept);
        assert_eq!(ids(&store, Scope::Till("till-1")), kept);
        assert_eq!(ids(&store, Scope::Unresolved), kept);
        assert!(store.get("old").is_none() && store.get("other").is_none());
        assert!(
            !store.by_terminal.contains_key("tpe-2"),
            "empty keys go too"
        );
        assert!(!store.by_till.contains_key("till-2"));
        assert_eq!(store.by_seq.len(), 1);
        assert_eq!(store.retain(|_| false), 1);
        assert_eq!(ids(&store, Scope::Unresolved), []);
    }

    #[test]
    fn the_unresolved_unknowns_are_read_alone_and_leave_once_resolved_or_replaced() {
        use crate::engine::record::{Resolution, ResolvedAs, ResolvedBy};
        let mut store = Store::default();
        let changes = [
            ("a", "tpe-1", State::Sent),
            ("b", "tpe-2", State::Unknown),
            ("c", "tpe-1", State::Approved),
            ("a", "tpe-1", State::Unknown),
        ];
        for (seq, (id, terminal, state)) in (1..).zip(changes) {
            store.insert(record(id, seq, terminal, "till-1", state));
        }
        assert_eq!(
            ids(&store, Scope::Unresolved),
            pairs(&[("b", State::Unknown), ("a", State::Unknown)])
        );
        // Resolved: the next change of `b` (same state, a resolution) is not unresolved.
        let mut resolved = sample("b", State::Unknown);
        (resolved.seq, resolved.terminal) = (5, "tpe-2".into());
        resolved.resolution = Some(Resolution {
            outcome: ResolvedAs::NotCharged,
            note: None,
            till: "till-1".into(),
            by_role: ResolvedBy::Cashier,
            at: String::new(),
        });
        store.insert(Arc::new(resolved));
        assert_eq!(
            ids(&store, Scope::Unresolved),
            pairs(&[("a", State::Unknown)])
        );
        assert_eq!(
            store.unresolved.len(),
            1,
            "a replaced change leaves the index"
        );
    }
}
