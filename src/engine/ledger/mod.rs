//! The ledger: the current record of every transaction, kept in step with the journal.
//!
//! Every change goes through [`Ledger::commit`]: stamp the next `seq`, append to the journal
//! (fsynced), then store and announce it. Stamping and queuing to the journal's writer happen
//! under one short lock (`order`), so journal order = seq order; the fsync is awaited outside
//! it, so concurrent changes share one fsync (group commit); a [`turnstile`] then lets each
//! change be stored and announced only after every smaller seq was, so announce order = seq
//! order too (sessions rely on it: they skip `seq <= last_seq`). A change is never announced
//! before its fsync returned. [`Ledger::queue`] and [`Queued::commit`] are the two halves of
//! a commit: several changes queued at once share one write and one fsync, and commit in
//! seq order.
//! Storing and announcing happen under the records' lock, so [`Ledger::follow`] splits the
//! changes exactly between a snapshot and a subscription. The current records are kept by
//! id, seq, terminal and till ([`store`]): each look-up names its [`Scope`] and reads only
//! those records (a `pay`'s guards its terminal's, a lagged session the changes since its
//! last seq).
//!
//! Memory follows the journal's retention: [`Ledger::prune`] (run hourly by the engine)
//! forgets the records the journal's own rule (`journal::Journal::keeper`) no longer keeps,
//! so a long-running agent holds what a restart would load, not every record of its life.
//! A pruned id is then unknown everywhere, as after a restart: `get` answers `not_found`,
//! a `pay` under it starts a new transaction, a linked refund cannot name it.
//!
//! A final or resolved change is sealed (its signed receipt made, see `crate::receipt`) once
//! its seq is stamped and before it is queued, so the journal stores the receipt it carries.
//!
//! A change that must be announced even when the disk refuses it ([`Ledger::commit_anyway`])
//! is remembered as unjournaled and appended again before the next append and by
//! [`Ledger::retry_unjournaled`], until the journal takes it: a full disk delays a result's
//! durability, it never loses it while the agent runs. Those re-appends wait for their fsync
//! under the `order` lock (only after a journal failure), and skip an id while a newer change
//! of it is in flight, so an older record never reaches the journal after a newer one.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::crashpoint;
use super::events::EventBus;
use super::journal::{Durable, Journal, Request};
use super::record::Record;

mod store;
mod turnstile;

pub use store::Scope;
use store::Store;

use turnstile::{Ticket, Turnstile};

/// What seals a change once its seq is stamped (sets its `receipt`).
pub type Seal = Arc<dyn Fn(&mut Record) + Send + Sync>;

/// Current records by id, the journal behind them and the bus in front of them.
pub struct Ledger {
    journal: Journal,
    seal: Option<Seal>,
    // The next seq. Held to stamp and queue a record, never across its fsync.
    order: tokio::sync::Mutex<u64>,
    // A std mutex: sections are short lookups and inserts, never held across an await.
    records: Mutex<Store>,
    durability: Mutex<Durability>,
    turnstile: Turnstile,
    bus: EventBus,
}

/// What the retry of unjournaled records must know.
#[derive(Default)]
struct Durability {
    /// Ids whose current record was announced but is not durable yet. Changed in seq
    /// order (at a change's turn) or under `order` for an id with nothing in flight.
    unjournaled: BTreeSet<String>,
    /// Ids with a change queued whose turn has not ended: not re-appended meanwhile.
    in_flight: HashMap<String, usize>,
}

/// A stamped change between its queuing and the end of its turn.
struct Slot<'a> {
    ticket: Ticket<'a>,
    _in_flight: InFlight<'a>,
}

/// Counts an id as in flight while alive.
struct InFlight<'a> {
    ledger: &'a Ledger,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut durability = self.ledger.durability();
        if let Some(count) = durability.in_flight.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                durability.in_flight.remove(&self.id);
            }
        }
    }
}

impl Ledger {
    /// A ledger over `journal` holding `records` (their highest seq continues).
    pub fn new(journal: Journal, records: Vec<Record>, bus: EventBus) -> Ledger {
        let next_seq = records.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
        Ledger {
            journal,
            seal: None,
            order: tokio::sync::Mutex::new(next_seq),
            records: Mutex::new(Store::new(records)),
            durability: Mutex::new(Durability::default()),
            turnstile: Turnstile::new(next_seq),
            bus,
        }
    }

    /// Seals every change with `seal` from now on.
    pub fn with_seal(mut self, seal: Option<Seal>) -> Ledger {
        self.seal = seal;
        self
    }

    /// Journals `record` with the next seq, then stores and announces it. On a journal
    /// failure nothing is stored or announced.
    pub async fn commit(&self, record: Record) -> io::Result<Arc<Record>> {
        self.queue_one(record).await.commit().await
    }

    /// Like [`Ledger::commit`], but a journal failure is logged and the change is still
    /// stored and announced: once a request may have reached a terminal, the screens must
    /// learn the truth even if the disk cannot keep it.
    pub async fn commit_anyway(&self, record: Record) -> Arc<Record> {
        self.queue_one(record).await.commit_anyway().await
    }

    /// Stamps `records` with the next seqs and queues them to the journal as one batch (one
    /// write, one fsync: durable together or not at all) without waiting for it; committing
    /// each [`Queued`], in order, finishes. A transaction journals the changes that precede
    /// its request this way (see `super::transaction`).
    pub async fn queue(&self, records: Vec<Record>) -> Vec<Queued<'_>> {
        let mut next_seq = self.ordered().await;
        let (queued, batch): (Vec<_>, Vec<_>) = records
            .into_iter()
            .map(|record| self.stamp(&mut next_seq, record))
            .unzip();
        self.submit(&queued, batch);
        queued
    }

    async fn queue_one(&self, record: Record) -> Queued<'_> {
        let mut next_seq = self.ordered().await;
        let (queued, request) = self.stamp(&mut next_seq, record);
        self.submit(std::slice::from_ref(&queued), vec![request]);
        queued
    }

    /// Takes `order` (the next seq), after appending the older announced changes the journal
    /// refused, so the journal keeps seq order per id.
    async fn ordered(&self) -> tokio::sync::MutexGuard<'_, u64> {
        let next_seq = self.order.lock().await;
        if !self.durability().unjournaled.is_empty() {
            self.append_unjournaled().await;
        }
        next_seq
    }

    /// Stamps `record` with the next seq and seals it; returns it queued, and its journal
    /// append to submit.
    fn stamp(&self, next_seq: &mut u64, mut record: Record) -> (Queued<'_>, Request) {
        record.seq = *next_seq;
        *next_seq += 1;
        if let Some(seal) = &self.seal {
            seal(&mut record);
        }
        let record = Arc::new(record);
        let slot = self.slot(&record);
        let (request, durable) = Journal::request(Arc::clone(&record));
        let queued = Queued {
            ledger: self,
            record,
            slot,
            durable,
        };
        (queued, request)
    }

    /// Appends again every record announced but not journaled; returns how many are still
    /// not durable.
    pub async fn retry_unjournaled(&self) -> usize {
        if self.durability().unjournaled.is_empty() {
            return 0;
        }
        let _order = self.order.lock().await;
        self.append_unjournaled().await
    }

    /// Appends the current record of each unjournaled id (same seq), one fsync at a time;
    /// the caller holds `order`. An id with a newer change in flight is left to that change.
    async fn append_unjournaled(&self) -> usize {
        let ids: Vec<String> = self.durability().unjournaled.iter().cloned().collect();
        let mut left = 0;
        for id in ids {
            if self.durability().in_flight.contains_key(&id) {
                left += 1;
                continue;
            }
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
        let unjournaled = &mut self.durability().unjournaled;
        if journaled {
            unjournaled.remove(id);
        } else {
            unjournaled.insert(id.to_owned());
        }
    }

    fn durability(&self) -> MutexGuard<'_, Durability> {
        self.durability.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, record: &Record) -> Slot<'_> {
        *self
            .durability()
            .in_flight
            .entry(record.id.clone())
            .or_default() += 1;
        Slot {
            ticket: self.turnstile.ticket(record.seq),
            _in_flight: InFlight {
                ledger: self,
                id: record.id.clone(),
            },
        }
    }

    /// Submits `batch`, the appends of `queued`, through the crash and failure hooks of
    /// their states: an injected failure refuses the whole batch, as a failed write would.
    fn submit(&self, queued: &[Queued<'_>], batch: Vec<Request>) {
        let states = || queued.iter().map(|q| q.record.state.as_str());
        states().for_each(|state| crashpoint::crash_at(state, "before_fsync"));
        if states().any(|state| crashpoint::fail_at(state, "fsync")) {
            for request in batch {
                request.refuse(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected journal failure (test hook)",
                ));
            }
            return;
        }
        self.journal.submit(batch);
    }

    /// Stores and announces `record` in one step under the records' lock, so a
    /// [`Ledger::follow`] sees each change either in its snapshot or on its subscription.
    fn publish(&self, record: Arc<Record>) -> Arc<Record> {
        let mut records = self.lock();
        records.insert(Arc::clone(&record));
        self.bus.announce(Arc::clone(&record));
        record
    }

    /// Runs `subscribe` (which opens or widens a bus subscription) and selects the current
    /// records in `scope` that `keep` wants, in seq order, with no change published in
    /// between: every change is then either in the returned snapshot or announced to that
    /// subscription, never both, never neither. `subscribe` must not touch the ledger.
    pub fn follow<T>(
        &self,
        scope: Scope<'_>,
        subscribe: impl FnOnce() -> T,
        keep: impl Fn(&Record) -> bool,
    ) -> (T, Vec<Arc<Record>>) {
        let records = self.lock();
        let subscribed = subscribe();
        let found = records.scope(scope).filter(|r| keep(r)).cloned().collect();
        (subscribed, found)
    }

    /// The current record of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Record>> {
        self.lock().get(id).cloned()
    }

    /// The current records in `scope` for which `keep` holds, in seq order.
    pub fn select(&self, scope: Scope<'_>, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Record>> {
        self.follow(scope, || (), keep).1
    }

    /// Forgets the records the journal's retention no longer keeps (its rule, at this
    /// instant), as a restart would, except a change the journal refused and has not taken
    /// yet (kept until it is durable). Returns how many went.
    pub fn prune(&self) -> usize {
        let keep = self.journal.keeper();
        let unjournaled = self.durability().unjournaled.clone();
        self.lock()
            .retain(|r| keep(r) || unjournaled.contains(&r.id))
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A change stamped and queued to the journal, neither durable nor announced yet.
/// Dropping it lets its seq through unannounced (the journal may still get the line).
pub struct Queued<'a> {
    ledger: &'a Ledger,
    record: Arc<Record>,
    slot: Slot<'a>,
    durable: Durable,
}

impl Queued<'_> {
    /// Waits for the fsync, then stores and announces the change in its turn. On a journal
    /// failure nothing is stored or announced.
    pub async fn commit(self) -> io::Result<Arc<Record>> {
        let (ledger, record, _slot, appended) = self.settle().await;
        appended?;
        ledger.mark_journaled(&record.id, true);
        Ok(ledger.publish(record))
    }

    /// Like [`Queued::commit`], but a journal failure is logged and the change is still
    /// stored and announced (see [`Ledger::commit_anyway`]).
    pub async fn commit_anyway(self) -> Arc<Record> {
        let (ledger, record, _slot, appended) = self.settle().await;
        if let Err(err) = &appended {
            tracing::error!(%err, id = %record.id, state = ?record.state, "journal append failed; kept in memory, retried later");
        }
        ledger.mark_journaled(&record.id, appended.is_ok());
        ledger.publish(record)
    }

    /// Waits for the fsync and then for the turn. The caller stores and announces while it
    /// holds the returned slot, so announce order = seq order; dropping the slot lets the
    /// next seq through.
    async fn settle<'a>(self) -> (&'a Ledger, Arc<Record>, Slot<'a>, io::Result<()>)
    where
        Self: 'a,
    {
        let Queued {
            ledger,
            record,
            slot,
            durable,
        } = self;
        let appended = durable.await;
        if appended.is_ok() {
            crashpoint::crash_at(record.state.as_str(), "after_fsync");
        }
        slot.ticket.wait().await;
        (ledger, record, slot, appended)
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

    /// A journal whose writer stops after its first fsync until `release` is sent (or dropped).
    fn held_journal(dir: &std::path::Path) -> (Journal, std::sync::mpsc::Sender<()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Mutex::new(Some(held));
        let on_sync: crate::engine::journal::SyncHook = Arc::new(move |_| {
            if let Some(held) = held.lock().unwrap().take() {
                let _ = held.recv();
            }
        });
        let options = crate::engine::journal::Options {
            on_sync: Some(on_sync),
            ..Default::default()
        };
        let (journal, _) = Journal::open_with(dir, options).unwrap();
        (journal, release)
    }

    #[tokio::test]
    async fn prune_forgets_what_retention_drops_from_every_look_up() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::macros::datetime!(2026-11-01 12:00 UTC);
        let options = crate::engine::journal::Options {
            retention: std::time::Duration::from_secs(3600),
            clock: Arc::new(move || now.into()),
            ..Default::default()
        };
        let (journal, _) = Journal::open_with(dir.path(), options).unwrap();
        let ledger = Ledger::new(journal, Vec::new(), EventBus::new(8));
        let at = |minutes_ago: i64| {
            let at = now - time::Duration::minutes(minutes_ago);
            crate::engine::record::format_rfc3339(at)
        };
        for (id, state, minutes_ago) in [
            ("old", State::Approved, 61),
            ("old-unknown", State::Unknown, 600),
            ("updated-recently", State::Declined, 59),
        ] {
            let mut changed = record(id, state);
            changed.updated_at = at(minutes_ago);
            ledger.commit(changed).await.unwrap();
        }
        assert_eq!(ledger.prune(), 1);
        assert!(ledger.get("old").is_none());
        let kept = ["old-unknown", "updated-recently"];
        for scope in [
            Scope::All,
            Scope::Since(0),
            Scope::Terminal("tpe-1"),
            Scope::Till("till-1"),
        ] {
            let ids: Vec<_> = ledger.select(scope, |_| true);
            let ids: Vec<&str> = ids.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, kept, "{scope:?}");
        }
        assert_eq!(ledger.prune(), 0, "what is kept stays");
    }

    #[tokio::test]
    async fn concurrent_commits_share_fsyncs_and_are_announced_in_seq_order() {
        const N: u64 = 64;
        let dir = tempfile::tempdir().unwrap();
        let (journal, release) = held_journal(dir.path());
        let ledger = Ledger::new(journal, Vec::new(), EventBus::new(2 * N as usize));
        let mut bus = ledger.bus.subscribe();
        let commits = (0..N).map(|i| ledger.commit(record(&format!("t{i}"), State::Accepted)));
        let all_queued = async {
            while *ledger.order.lock().await <= N {
                tokio::task::yield_now().await;
            }
            release.send(()).unwrap();
        };
        let (committed, ()) = tokio::join!(futures_util::future::join_all(commits), all_queued);
        assert!(committed.iter().all(Result::is_ok));

        let stats = ledger.journal.stats();
        assert_eq!(stats.appends, N);
        assert!(stats.syncs < stats.appends, "no group commit: {stats:?}");
        let mut announced = Vec::new();
        for _ in 0..N {
            announced.push(bus.recv().await.unwrap().seq);
        }
        assert_eq!(announced, (1..=N).collect::<Vec<_>>());
        let lines = std::fs::read_to_string(dir.path().join("journal.log")).unwrap();
        let seq = |line: &str| {
            let json: serde_json::Value =
                serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
            json["seq"].as_u64().unwrap()
        };
        let order: Vec<u64> = lines.lines().map(seq).collect();
        let expected: Vec<u64> = (1..=N).collect();
        assert_eq!(order, expected, "journal order = seq order");
    }

    #[tokio::test]
    async fn changes_queued_together_share_one_fsync_or_are_all_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let ledger = Ledger::new(journal, Vec::new(), EventBus::new(8));
        let mut bus = ledger.bus.subscribe();
        let states = [State::Accepted, State::Connecting, State::Sent];
        let batch = ledger.queue(states.map(|s| record("a", s)).into()).await;
        for queued in batch {
            queued.commit().await.unwrap();
        }
        assert_eq!(
            (ledger.journal.stats().appends, ledger.journal.stats().syncs),
            (3, 1)
        );
        for (seq, state) in (1..).zip(states) {
            let announced = bus.recv().await.unwrap();
            assert_eq!((announced.seq, announced.state), (seq, state));
        }
        assert_eq!(journaled(dir.path()), [("a".to_owned(), State::Sent)]);

        let dir = tempfile::tempdir().unwrap();
        let ledger = full_ledger(dir.path());
        let batch = ledger.queue(states.map(|s| record("b", s)).into()).await;
        for queued in batch {
            assert!(queued.commit().await.is_err());
        }
        assert!(ledger.get("b").is_none(), "nothing stored");
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
