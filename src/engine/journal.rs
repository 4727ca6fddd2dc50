//! INTERFACE SKETCH (owned by the journal work).
//!
//! The durable journal: every state change of every transaction, appended and fsynced.

use std::path::Path;

use super::record::Record;

/// Append-only, fsynced, checksummed journal of transaction records in `data_dir`.
pub struct Journal {}

impl Journal {
    /// Opens (creating) the journal in `dir`; returns it and the latest record of every
    /// transaction still kept, oldest first. A torn or corrupt record is skipped with a warning.
    pub fn open(_dir: &Path) -> std::io::Result<(Journal, Vec<Record>)> {
        todo!()
    }

    /// Appends `record`; returns once it is durable (fsynced). Concurrent calls share fsyncs
    /// (group commit).
    pub async fn append(&self, _record: &Record) -> std::io::Result<()> {
        todo!()
    }
}
