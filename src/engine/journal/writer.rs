//! The single writer thread: drains every queued append, writes them with one `write` and
//! one `fdatasync` (group commit), acknowledges them, and compacts the file when it has
//! grown well past its live size. It owns the file and the data-dir lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::compact;
use super::format::{Live, Loaded};
use super::Options;
use crate::engine::record::Record;

/// One append waiting for durability.
pub struct Request {
    /// The record, kept for compaction (shared with the ledger, not copied).
    pub(super) record: Arc<Record>,
    /// Its encoded line.
    pub(super) line: Vec<u8>,
    /// Told once the line is durable, or why not.
    pub(super) done: oneshot::Sender<io::Result<()>>,
}

impl Request {
    /// Answers the request with `err` without writing it.
    pub fn refuse(self, err: io::Error) {
        let _ = self.done.send(Err(err));
    }
}

/// Counters shared with [`super::Journal::stats`].
#[derive(Debug, Default)]
pub struct Counters {
    pub appends: AtomicU64,
    pub syncs: AtomicU64,
    pub compactions: AtomicU64,
    pub file_bytes: AtomicU64,
}

/// The journal directory's file names.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
    pub file: PathBuf,
    pub tmp: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path) -> Paths {
        Paths {
            dir: dir.to_path_buf(),
            file: dir.join(super::FILE_NAME),
            tmp: dir.join(super::TMP_NAME),
        }
    }
}

/// The writer's state; lives on its own thread.
pub struct Writer {
    paths: Paths,
    options: Options,
    counters: Arc<Counters>,
    file: File,
    /// Durable length: everything before it was fsynced; anything after is garbage.
    len: u64,
    /// A failed write may have left bytes after `len`: reopen and cut them first.
    dirty: bool,
    live: Live,
    /// When retention was last applied to `live`.
    pruned_at: Instant,
    /// No compaction is tried below this length (raised after a failed attempt).
    compact_floor: u64,
    /// Held for the writer's whole life: two agents never share a data dir.
    _lock: File,
}

impl Writer {
    /// Prepares the file from what was loaded: compacts it (or at least cuts a torn tail)
    /// and positions it for appending.
    pub fn open(
        paths: Paths,
        loaded: Loaded,
        options: Options,
        lock: File,
        counters: Arc<Counters>,
    ) -> io::Result<Writer> {
        let len = prepare(&paths, &loaded)?;
        let existed = paths.file.exists();
        let mut file =
            crate::datadir::private(OpenOptions::new().write(true).create(true).truncate(false))
                .open(&paths.file)?;
        if !existed {
            compact::sync_dir(&paths.dir)?;
        }
        file.seek(SeekFrom::Start(len))?;
        counters.file_bytes.store(len, Ordering::Relaxed);
        let compact_floor = options.compact_min_bytes;
        Ok(Writer {
            paths,
            options,
            counters,
            file,
            len,
            dirty: false,
            live: loaded.live,
            compact_floor,
            pruned_at: Instant::now(),
            _lock: lock,
        })
    }

    /// Serves appends until every sender is gone. Each message is a batch submitted
    /// together: it is never split across two writes.
    pub fn run(mut self, requests: Receiver<Vec<Request>>) {
        while let Ok(mut batch) = requests.recv() {
            batch.extend(requests.try_iter().flatten());
            self.commit(batch);
            self.maybe_prune();
            self.maybe_compact();
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.line.len()).sum());
        for request in &batch {
            buf.extend_from_slice(&request.line);
        }
        match self.write(&buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.counters.file_bytes.store(self.len, Ordering::Relaxed);
                self.counters
                    .appends
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for request in batch {
                    self.live.update(request.record, request.line.len() as u64);
                    let _ = request.done.send(Ok(()));
                }
            }
            Err(err) => {
                tracing::error!(%err, records = batch.len(), "journal: append failed");
                self.dirty = true;
                for request in batch {
                    let failed =
                        io::Error::new(err.kind(), format!("journal append failed: {err}"));
                    let _ = request.done.send(Err(failed));
                }
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.dirty {
            self.recover()?;
        }
        let started = Instant::now();
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        if let Some(on_sync) = &self.options.on_sync {
            on_sync(started.elapsed());
        }
        Ok(())
    }

    /// Reopens the file by path and cuts it back to the durable length. Reopening rather
    /// than reusing the descriptor: after a failed fsync the kernel may have dropped the
    /// dirty pages, so nothing written through it since the last good sync is trusted.
    fn recover(&mut self) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(&self.paths.file)?;
        file.set_len(self.len)?;
        file.sync_all()?;
        file.seek(SeekFrom::Start(self.len))?;
        self.file = file;
        self.dirty = false;
        Ok(())
    }

    /// Drops expired records from `live` every [`super::prune_period`]: an agent that runs
    /// for months holds the retained records only, and expired ones no longer count as
    /// live, so the file compacts once it holds mostly them. Their lines stay in the file
    /// until then (a restart skips them).
    fn maybe_prune(&mut self) {
        if self.pruned_at.elapsed() < super::prune_period(self.options.retention) {
            return;
        }
        self.pruned_at = Instant::now();
        self.live.retain(self.options.keeper());
    }

    fn maybe_compact(&mut self) {
        let wasteful = self.len > self.live.bytes().saturating_mul(self.options.compact_ratio);
        if self.dirty || self.len <= self.compact_floor || !wasteful {
            return;
        }
        match self.compact() {
            Ok(()) => self.compact_floor = self.options.compact_min_bytes,
            Err(err) => {
                tracing::warn!(%err, "journal: compaction failed, appending to the old file");
                self.compact_floor = self.len.saturating_add(self.options.compact_min_bytes);
            }
        }
    }

    /// Rewrites the file with the kept records. Appends wait meanwhile: the live set is at
    /// most a few thousand records, a rewrite of a few MiB.
    fn compact(&mut self) -> io::Result<()> {
        self.live.retain(self.options.keeper());
        let len = compact::rewrite(
            &self.paths.dir,
            &self.paths.file,
            &self.paths.tmp,
            &self.live,
        )?;
        let mut file = OpenOptions::new().write(true).open(&self.paths.file)?;
        file.seek(SeekFrom::Start(len))?;
        self.file = file;
        self.len = len;
        self.counters.file_bytes.store(len, Ordering::Relaxed);
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// At open: rewrite the file when it holds anything besides the live records; if that
/// fails, keep the old file and only cut its torn tail. Returns the file's length.
fn prepare(paths: &Paths, loaded: &Loaded) -> io::Result<u64> {
    if loaded.len == loaded.live.bytes() {
        return Ok(loaded.len);
    }
    if loaded.damaged > 0 {
        keep_damaged_copy(paths);
    }
    match compact::rewrite(&paths.dir, &paths.file, &paths.tmp, &loaded.live) {
        Ok(len) => Ok(len),
        Err(err) => {
            tracing::warn!(%err, "journal: compaction at open failed, keeping the old file");
            if loaded.valid_len < loaded.len {
                let file = OpenOptions::new().write(true).open(&paths.file)?;
                file.set_len(loaded.valid_len)?;
                file.sync_all()?;
            }
            Ok(loaded.valid_len)
        }
    }
}

/// Keeps the damaged file's content under another name (a hard link: the rewrite then
/// replaces only the journal's name), for whoever investigates.
fn keep_damaged_copy(paths: &Paths) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let copy = paths.dir.join(format!("journal.damaged-{stamp}.log"));
    match std::fs::hard_link(&paths.file, &copy) {
        Ok(()) => tracing::warn!(copy = %copy.display(), "journal: damaged file kept"),
        Err(err) => tracing::warn!(%err, "journal: could not keep the damaged file"),
    }
}
