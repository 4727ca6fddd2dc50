//! The current record of every transaction, by id and by terminal.
//!
//! The per-terminal index keeps the look-ups a `pay` makes (its terminal's guards, a
//! `watch`) proportional to that terminal's records rather than to the whole journal.

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::record::Record;

/// Current records, indexed.
#[derive(Debug, Default)]
pub struct Store {
    by_id: HashMap<String, Arc<Record>>,
    by_terminal: HashMap<String, HashMap<String, Arc<Record>>>,
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

    /// Makes `record` the current one of its id.
    pub fn insert(&mut self, record: Arc<Record>) {
        let terminal = self.by_terminal.entry(record.terminal.clone()).or_default();
        terminal.insert(record.id.clone(), Arc::clone(&record));
        self.by_id.insert(record.id.clone(), record);
    }

    /// The current record of `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Record>> {
        self.by_id.get(id)
    }

    /// Every current record.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.by_id.values()
    }

    /// The current records of `terminal`.
    pub fn of_terminal(&self, terminal: &str) -> impl Iterator<Item = &Arc<Record>> {
        self.by_terminal
            .get(terminal)
            .into_iter()
            .flat_map(HashMap::values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, State};

    #[test]
    fn the_terminal_index_follows_each_change() {
        let mut on_two = sample("b", State::Accepted);
        on_two.terminal = "tpe-2".into();
        let mut store = Store::new(vec![sample("a", State::Accepted), on_two]);
        store.insert(Arc::new(sample("a", State::Approved)));
        let of = |store: &Store, terminal| -> Vec<(String, State)> {
            let records = store.of_terminal(terminal);
            records.map(|r| (r.id.clone(), r.state)).collect()
        };
        assert_eq!(of(&store, "tpe-1"), [("a".to_owned(), State::Approved)]);
        assert_eq!(of(&store, "tpe-2"), [("b".to_owned(), State::Accepted)]);
        assert!(of(&store, "none").is_empty());
        assert_eq!(store.get("a").unwrap().state, State::Approved);
        assert_eq!(store.all().count(), 2);
    }
}
