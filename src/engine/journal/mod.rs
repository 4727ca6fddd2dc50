//! The durable journal: every state change of every transaction, appended as one
//! checksummed line and fsynced before `append` returns.
//!
//! Layout in `data_dir`: `journal.log` (the lines, see `format`), `journal.lock` (held by the
//! running agent), `journal.log.tmp` (a compaction in progress) and, after damage was found,
//! `journal.damaged-<unix time>.log` (the damaged file as it was). One writer thread owns the
//! file (`writer`): concurrent appends share one write and one fdatasync (group commit), and
//! the records of one [`Journal::submit`] always do: they become durable together or not at all.
//! Compaction (`compact`) keeps the latest record of each id still within retention.
//! What a restart does to unfinished records is the engine's business, not the journal's.

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use super::record::Record;

mod compact;
mod format;
mod writer;

pub use writer::Request;
use writer::{Counters, Paths, Writer};

/// The journal file's name in `data_dir`.
pub const FILE_NAME: &str = "journal.log";
/// The lock file's name in `data_dir`.
pub const LOCK_NAME: &str = "journal.lock";
/// Where a compaction writes before renaming over the journal.
pub const TMP_NAME: &str = "journal.log.tmp";

/// The current time, injectable for tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Told how long each write + fdatasync took (for monitoring); runs on the writer thread.
pub type SyncHook = Arc<dyn Fn(Duration) + Send + Sync>;

/// Tuning of retention and compaction; `Default` is what the agent uses.
#[derive(Clone)]
pub struct Options {
    /// Finished records are kept this long after their last update (unresolved `unknown`
    /// records are kept until resolved).
    pub retention: Duration,
    /// The file is never compacted while smaller than this.
    pub compact_min_bytes: u64,
    /// Compact once the file is more than this many times its live size.
    pub compact_ratio: u64,
    /// The time used for retention.
    pub clock: Clock,
    /// Called after each successful sync, if set.
    pub on_sync: Option<SyncHook>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            retention: crate::config::DEFAULT_JOURNAL_RETENTION,
            compact_min_bytes: 1024 * 1024,
            compact_ratio: 4,
            clock: Arc::new(SystemTime::now),
            on_sync: None,
        }
    }
}

impl Options {
    /// The retention test at this instant.
    fn keeper(&self) -> impl Fn(&Record) -> bool {
        let (now, retention) = ((self.clock)(), self.retention);
        move |record| compact::keep(record, now, retention)
    }
}

/// What the journal has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// Records made durable.
    pub appends: u64,
    /// fdatasync calls that made them durable (fewer than `appends` under load).
    pub syncs: u64,
    /// Compactions done while running (the one at open is not counted).
    pub compactions: u64,
    /// Current length of the journal file.
    pub file_bytes: u64,
}

/// Append-only, fsynced, checksummed journal of transaction records in `data_dir`.
pub struct Journal {
    options: Options,
    requests: Option<mpsc::Sender<Vec<Request>>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Journal {
    /// Opens (creating) the journal in `dir`; returns it and the latest record of every
    /// transaction still kept, oldest first. A torn or corrupt record is skipped with a warning.
    /// Fails if another agent holds `dir`.
    pub fn open(dir: &Path) -> io::Result<(Journal, Vec<Record>)> {
        Journal::open_with(dir, Options::default())
    }

    /// [`Journal::open`] with explicit retention, compaction thresholds and clock.
    pub fn open_with(dir: &Path, options: Options) -> io::Result<(Journal, Vec<Record>)> {
        fs::create_dir_all(dir)?;
        let lock = lock(dir)?;
        let paths = Paths::new(dir);
        let mut loaded = format::load(&paths.file)?;
        loaded.live.retain(options.keeper());
        let records = loaded.live.records().cloned().collect();
        let counters = Arc::new(Counters::default());
        let writer = Writer::open(paths, loaded, options.clone(), lock, counters.clone())?;
        let (requests, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("journal-writer".to_owned())
            .spawn(move || writer.run(queue))?;
        let journal = Journal {
            options,
            requests: Some(requests),
            writer: Some(writer),
            counters,
        };
        Ok((journal, records))
    }

    /// Reads the latest record of every id in `dir`'s journal without locking, truncating or
    /// compacting (for `report`, beside a running agent). Includes records past retention
    /// that were not compacted away yet.
    pub fn read(dir: &Path) -> io::Result<Vec<Record>> {
        Ok(format::load(&dir.join(FILE_NAME))?.live.into_records())
    }

    /// Appends `record`; returns once it is durable (fsynced). Concurrent calls share fsyncs
    /// (group commit). An error means the record may not be durable: nothing was acknowledged.
    /// Dropping the future after the first poll does not withdraw the record.
    pub async fn append(&self, record: &Record) -> io::Result<()> {
        let (request, durable) = Journal::request(Arc::new(record.clone()));
        self.submit(vec![request]);
        durable.await
    }

    /// The append of `record` (encoded now), and the future of its durability, which
    /// resolves once a [`Journal::submit`] of it was written and fsynced, or with why not.
    pub fn request(record: Arc<Record>) -> (Request, Durable) {
        let (done, durable) = oneshot::channel();
        let line = format::encode(&record);
        (Request { record, line, done }, Durable(durable))
    }

    /// Queues `batch` for the writer and returns at once: its records share one write and one
    /// fdatasync. Records reach the file in the order they were submitted, so a caller that
    /// submits under its own lock fixes the journal order without waiting for the fsync
    /// there. Nothing is withdrawn if the futures are dropped; if the writer has stopped,
    /// they resolve with that error.
    pub fn submit(&self, batch: Vec<Request>) {
        if let Some(requests) = &self.requests {
            // A send fails only once the writer is gone: the dropped requests tell why.
            let _ = requests.send(batch);
        }
    }

    /// The retention rule at this instant: whether a record is still kept (by compaction
    /// and at open). The ledger prunes its memory with it.
    pub fn keeper(&self) -> impl Fn(&Record) -> bool {
        self.options.keeper()
    }

    /// Counters since open.
    pub fn stats(&self) -> JournalStats {
        let c = &self.counters;
        JournalStats {
            appends: c.appends.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            file_bytes: c.file_bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Journal {
    /// Stops the writer and waits for it, so the lock is free once the journal is gone.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The durability of one submitted record: resolves once it is fsynced, or with why not.
pub struct Durable(oneshot::Receiver<io::Result<()>>);

impl Future for Durable {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|done| done.map_err(|_| stopped()).and_then(|done| done))
    }
}

fn stopped() -> io::Error {
    io::Error::other("journal writer stopped")
}

/// Takes the data dir's lock, or explains who holds it.
fn lock(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK_NAME);
    let file = crate::datadir::private(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "data dir {} is in use by another caisse-ap-relay (lock {} is held)",
                dir.display(),
                path.display()
            ),
        )),
        Err(fs::TryLockError::Error(err)) => Err(err),
    }
}
