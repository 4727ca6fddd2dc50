//! The ledger: the current record of every transaction, kept in step with the journal.
//!
//! Every change goes through [`Ledger::commit`]: stamp the next `seq`, append to the journal
//! (fsynced), then store and announce it. One async lock spans the three steps so that `seq`
//! order, journal order and announce order are the same; the price is that fsyncs of
//! different terminals do not overlap, which a shop's handful of terminals never notices.
//!
//! A change that must be announced even when the disk refuses it ([`Ledger::commit_anyway`])
//! is remembered as unjournaled and appended again before the next append and by
//! [`Ledger::retry_unjournaled`], until the journal takes it: a full disk delays a result's
//! durability, it never loses it while the agent runs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::crashpoint;
use super::events::EventBus;
use super::journal::Journal;
use super::record::Record;

/// Current records by id, the journal behind them and the bus in front of them.
pub struct Ledger {
    journal: Journal,
    next_seq: tokio::sync::Mutex<u64>,
    // A std mutex: sections are short lookups and inserts, never held across an await.
    records: Mutex<HashMap<String, Arc<Record>>>,
    // Ids whose current record was announced but is not durable yet. Changed only under
    // the seq lock, so a retry never appends a record older than one already journaled.
    unjournaled: Mutex<BTreeSet<String>>,
    bus: EventBus,
}

impl Ledger {
    /// A ledger over `journal` holding `records` (their highest seq continues).
    pub fn new(journal: Journal, records: Vec<Record>, bus: EventBus) -> Ledger {
        let next_seq = records.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
        let records = records
            .into_iter()
            .map(|r| (r.id.clone(), Arc::new(r)))
            .collect();
        Ledger {
            journal,
            next_seq: tokio::sync::Mutex::new(next_seq),
            records: Mutex::new(records),
            unjournaled: Mutex::new(BTreeSet::new()),
            bus,
        }
    }

    /// Journals `record` with the next seq, then stores and announces it. On a journal
    /// failure nothing is stored or announced.
    pub async fn commit(&self, mut record: Record) -> std::io::Result<Arc<Record>> {
        let (_order, appended) = self.append_next(&mut record).await;
        appended?;
        self.mark_journaled(&record.id, true);
        Ok(self.publish(record))
    }

    /// Like [`Ledger::commit`], but a journal failure is logged and the change is still
    /// stored and announced: once a request may have reached a terminal, the screens must
    /// learn the truth even if the disk cannot keep it.
    pub async fn commit_anyway(&self, mut record: Record) -> Arc<Record> {
        let (_order, appended) = self.append_next(&mut record).await;
        if let Err(err) = &appended {
            tracing::error!(%err, id = %record.id, state = ?record.state, "journal append failed; kept in memory, retried later");
        }
        self.mark_journaled(&record.id, appended.is_ok());
        self.publish(record)
    }

    /// Appends again every record announced but not journaled; returns how many are still
    /// not durable.
    pub async fn retry_unjournaled(&self) -> usize {
        if self.unjournaled().is_empty() {
            return 0;
        }
        let _order = self.next_seq.lock().await;
        self.append_unjournaled().await
    }

    /// Appends the current record of each unjournaled id (same seq); the caller holds the
    /// seq lock.
    async fn append_unjournaled(&self) -> usize {
        let ids: Vec<String> = self.unjournaled().iter().cloned().collect();
        let mut left = 0;
        for id in ids {
            let Some(record) = self.get(&id) else {
                continue;
            };
            match self.journal.append(&record).await {
                Ok(()) => {
                    self.mark_journaled(&id, true);
                    tracing::info!(%id, state = ?record.state, "unjournaled record now durable");
                }
                Err(_) => left += 1,
            }
        }
        left
    }

    fn mark_journaled(&self, id: &str, journaled: bool) {
        let mut unjournaled = self.unjournaled();
        if journaled {
            unjournaled.remove(id);
        } else {
            unjournaled.insert(id.to_owned());
        }
    }

    fn unjournaled(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.unjournaled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Journals `record` without storing or announcing it (the `sent` mark made durable
    /// before the first byte goes out).
    pub async fn persist(&self, mut record: Record) -> std::io::Result<()> {
        self.append_next(&mut record).await.1
    }

    /// Stamps the next seq and appends; the returned guard keeps announce order = seq order.
    async fn append_next(
        &self,
        record: &mut Record,
    ) -> (tokio::sync::MutexGuard<'_, u64>, std::io::Result<()>) {
        let mut next_seq = self.next_seq.lock().await;
        // Older announced changes first, so the journal keeps seq order per id.
        if !self.unjournaled().is_empty() {
            self.append_unjournaled().await;
        }
        record.seq = *next_seq;
        *next_seq += 1;
        let state = record.state.as_str();
        crashpoint::crash_at(state, "before_fsync");
        let appended = if crashpoint::fail_at(state, "fsync") {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "injected journal failure (test hook)",
            ))
        } else {
            self.journal.append(record).await
        };
        if appended.is_ok() {
            crashpoint::crash_at(state, "after_fsync");
        }
        (next_seq, appended)
    }

    fn publish(&self, record: Record) -> Arc<Record> {
        let record = Arc::new(record);
        self.lock().insert(record.id.clone(), Arc::clone(&record));
        self.bus.announce(Arc::clone(&record));
        record
    }

    /// The current record of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Record>> {
        self.lock().get(id).cloned()
    }

    /// Every current record for which `keep` holds, in seq order.
    pub fn select(&self, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Record>> {
        let mut found: Vec<_> = self.lock().values().filter(|r| keep(r)).cloned().collect();
        found.sort_by_key(|r| r.seq);
        found
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Record>>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample as record, State};

    /// A ledger whose journal file is `/dev/full` (every write fails with ENOSPC, like a full
    /// disk) until `space_returns` points the name at a real file again.
    fn full_ledger(dir: &std::path::Path) -> Ledger {
        std::os::unix::fs::symlink("/dev/full", dir.join(crate::engine::journal::FILE_NAME))
            .unwrap();
        let (journal, records) = Journal::open(dir).unwrap();
        Ledger::new(journal, records, EventBus::new(8))
    }

    fn space_returns(dir: &std::path::Path) {
        let path = dir.join(crate::engine::journal::FILE_NAME);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"").unwrap();
    }

    fn journaled(dir: &std::path::Path) -> Vec<(String, State)> {
        let records = Journal::read(dir).unwrap();
        records.into_iter().map(|r| (r.id, r.state)).collect()
    }

    #[tokio::test]
    async fn a_refused_result_is_announced_kept_and_journaled_once_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = full_ledger(dir.path());
        let mut bus = ledger.bus.subscribe();
        assert!(ledger.commit(record("a", State::Accepted)).await.is_err());
        assert!(ledger.get("a").is_none(), "a refused commit is not stored");
        let kept = ledger.commit_anyway(record("a", State::Approved)).await;
        assert_eq!(bus.recv().await.unwrap(), kept);
        assert_eq!(ledger.get("a").unwrap().state, State::Approved);
        assert_eq!(ledger.retry_unjournaled().await, 1, "still full");

        space_returns(dir.path());
        assert_eq!(ledger.retry_unjournaled().await, 0);
        assert_eq!(journaled(dir.path()), [("a".to_owned(), State::Approved)]);
        assert_eq!(Journal::read(dir.path()).unwrap()[0].seq, kept.seq);
    }

    #[tokio::test]
    async fn the_next_append_first_journals_what_was_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = full_ledger(dir.path());
        ledger.commit_anyway(record("a", State::Declined)).await;
        space_returns(dir.path());
        ledger.commit(record("b", State::Accepted)).await.unwrap();
        let expected = [("a", State::Declined), ("b", State::Accepted)];
        let expected: Vec<_> = expected.map(|(id, s)| (id.to_owned(), s)).into();
        assert_eq!(journaled(dir.path()), expected);
        assert_eq!(ledger.retry_unjournaled().await, 0);
    }

    #[tokio::test]
    async fn a_newer_change_supersedes_the_refused_one() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = full_ledger(dir.path());
        ledger.commit_anyway(record("a", State::WaitingCard)).await;
        space_returns(dir.path());
        ledger.commit_anyway(record("a", State::Approved)).await;
        assert_eq!(ledger.retry_unjournaled().await, 0);
        let lines = std::fs::read_to_string(dir.path().join("journal.log")).unwrap();
        let last = lines.lines().last().unwrap();
        assert!(last.contains("\"approved\""), "{lines}");
        assert_eq!(journaled(dir.path()), [("a".to_owned(), State::Approved)]);
    }
}
