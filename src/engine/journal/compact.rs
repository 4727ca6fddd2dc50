//! Compaction: which records are still kept (retention) and the crash-safe rewrite of the
//! journal with only those. The old file stays valid until the rename replaces it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::format::{self, Live};
use crate::engine::record::Record;

/// Whether `record` is still kept at `now`: a transaction still running (not final yet:
/// its `sent` must survive a crash however long the card takes) and an `unknown` without
/// resolution (the cashier has not decided yet) always, anything else until `retention`
/// after its last update. An unreadable `updated_at` keeps the record: losing a result is
/// worse than a few bytes.
pub fn keep(record: &Record, now: SystemTime, retention: Duration) -> bool {
    if !record.state.is_final() || record.is_unresolved() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, State};

    #[test]
    fn retention_drops_only_finished_and_decided_records() {
        let retention = Duration::from_secs(1);
        let updated = "2026-12-01T03:00:00Z";
        let now = SystemTime::from(OffsetDateTime::parse(updated, &Rfc3339).unwrap());
        let kept_at = |state, resolved: bool, later: u64| {
            let mut record = sample("a", state);
            record.updated_at = updated.to_owned();
            if resolved {
                let resolution = serde_json::json!({
                    "outcome": "not_charged", "till": "till-1", "at": updated
                });
                record.resolution = Some(serde_json::from_value(resolution).unwrap());
            }
            keep(&record, now + Duration::from_secs(later), retention)
        };
        for running in [
            State::Accepted,
            State::Connecting,
            State::Sent,
            State::WaitingCard,
        ] {
            assert!(
                kept_at(running, false, 3600),
                "{running:?} dropped while running"
            );
        }
        assert!(
            kept_at(State::Unknown, false, 3600),
            "an undecided unknown is kept"
        );
        assert!(
            !kept_at(State::Unknown, true, 3600),
            "a resolved one follows retention"
        );
        assert!(!kept_at(State::Approved, false, 3600));
        assert!(kept_at(State::Approved, false, 1), "within retention");
    }
}
