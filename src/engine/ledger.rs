//! The ledger: the current record of every transaction, kept in step with the journal.
//!
//! Every change goes through [`Ledger::commit`]: stamp the next `seq`, append to the journal
//! (fsynced), then store and announce it. One async lock spans the three steps so that `seq`
//! order, journal order and announce order are the same; the price is that fsyncs of
//! different terminals do not overlap, which a shop's handful of terminals never notices.

use std::collections::HashMap;
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
            bus,
        }
    }

    /// Journals `record` with the next seq, then stores and announces it. On a journal
    /// failure nothing is stored or announced.
    pub async fn commit(&self, mut record: Record) -> std::io::Result<Arc<Record>> {
        let (_order, appended) = self.append_next(&mut record).await;
        appended?;
        Ok(self.publish(record))
    }

    /// Like [`Ledger::commit`], but a journal failure is logged and the change is still
    /// stored and announced: once a request may have reached a terminal, the screens must
    /// learn the truth even if the disk cannot keep it.
    pub async fn commit_anyway(&self, mut record: Record) -> Arc<Record> {
        let (_order, appended) = self.append_next(&mut record).await;
        if let Err(err) = appended {
            tracing::error!(%err, id = %record.id, state = ?record.state, "journal append failed");
        }
        self.publish(record)
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
