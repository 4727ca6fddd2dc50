//! Compaction: which records are still kept (retention) and the crash-safe rewrite of the
//! journal with only those. The old file stays valid until the rename replaces it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::format::{self, Live};
use crate::engine::record::{Record, State};

/// Whether `record` is still kept at `now`: an `unknown` without resolution always (the
/// cashier has not decided yet), anything else until `retention` after its last update.
/// An unreadable `updated_at` keeps the record: losing a result is worse than a few bytes.
pub fn keep(record: &Record, now: SystemTime, retention: Duration) -> bool {
    if record.state == State::Unknown && record.resolution.is_none() {
        return true;
    }
    match OffsetDateTime::parse(&record.updated_at, &Rfc3339) {
        Ok(updated) => SystemTime::from(updated) + retention >= now,
        Err(_) => true,
    }
}

/// Rewrites `path` with `live`'s records: write `tmp`, fsync it, rename over `path`, fsync
/// `dir`. A crash at any point leaves either the old or the new file, both valid. Returns
/// the new file's length.
pub fn rewrite(dir: &Path, path: &Path, tmp: &Path, live: &Live) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(usize::try_from(live.bytes()).unwrap_or(0));
    for record in live.records() {
        buf.extend_from_slice(&format::encode(record));
    }
    let mut file =
        crate::datadir::private(OpenOptions::new().write(true).create(true).truncate(true))
            .open(tmp)?;
    file.write_all(&buf)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    sync_dir(dir)?;
    Ok(buf.len() as u64)
}

/// Makes a directory's entries (a created or renamed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
