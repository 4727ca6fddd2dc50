//! The durable memory of webhooks: `data_dir/webhooks.log`, one line per fact.
//!
//! - `since NAME SEQ`: webhook NAME was first configured when the journal's last seq was
//!   SEQ; changes after it are owed to NAME (contract §9: owed while the name is configured).
//! - `owed NAME KEY`: the delivery KEY (see `event::Delivery::key`) became owed to NAME.
//! - `done NAME KEY`: the delivery KEY got a 2xx.
//!
//! What is owed is derived, at start, from the journal's records minus the `done` lines, so
//! a crash at any point at worst repeats a delivery (at least once). Lines are appended
//! without fsync for that reason. At start the file is rewritten keeping only the lines of
//! records the journal still holds; an `owed` line without its `done` whose record the
//! journal no longer holds (retention) is a delivery dropped with its record: one error line
//! per webhook says so (contract §9).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file's name in `data_dir`.
pub const FILE_NAME: &str = "webhooks.log";

/// What the file says about one webhook.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Memory {
    /// The seq after which changes are owed; `None` for a webhook never seen.
    pub since: Option<u64>,
    /// Delivered keys.
    pub done: HashSet<String>,
    /// Keys already written as owed and not delivered.
    pub owed: HashSet<String>,
    /// Keys owed and not delivered whose record the journal no longer holds (retention).
    pub dropped: Vec<String>,
}

/// The open log, shared by every webhook's worker.
#[derive(Debug)]
pub struct Delivered {
    path: PathBuf,
    file: Mutex<File>,
}

impl Delivered {
    /// Reads the log in `data_dir`, rewrites it keeping the lines whose transaction `live`
    /// still knows (the others owed and not delivered are listed in [`Memory::dropped`]),
    /// and opens it for appending.
    pub fn open(
        data_dir: &Path,
        live: impl Fn(&str) -> bool,
    ) -> io::Result<(Delivered, HashMap<String, Memory>)> {
        let path = data_dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err),
        };
        let mut memory = parse(&text);
        for webhook in memory.values_mut() {
            let Memory { done, owed, .. } = webhook;
            owed.retain(|key| !done.contains(key));
            forget_gone(done, &live);
            let gone = |key: &String| !live(transaction_of(key));
            webhook.dropped = owed.iter().filter(|key| gone(key)).cloned().collect();
            webhook.dropped.sort();
            owed.retain(|key| !gone(key));
        }
        rewrite(&path, &memory)?;
        let file = append_to(&path)?;
        let delivered = Delivered {
            path,
            file: Mutex::new(file),
        };
        Ok((delivered, memory))
    }

    /// Remembers that `webhook` is owed the changes after `seq`.
    pub fn since(&self, webhook: &str, seq: u64) {
        self.append(&format!("since {webhook} {seq}\n"));
    }

    /// Remembers that `webhook` is owed delivery `key`.
    pub fn owed(&self, webhook: &str, key: &str) {
        self.append(&format!("owed {webhook} {key}\n"));
    }

    /// Remembers that `webhook` got delivery `key`.
    pub fn done(&self, webhook: &str, key: &str) {
        self.append(&format!("done {webhook} {key}\n"));
    }

    fn append(&self, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = file.write_all(line.as_bytes()) {
            // Not fatal: the delivery is repeated after a restart (at least once).
            tracing::warn!(%err, file = %self.path.display(), "webhook log not written");
        }
    }
}

/// Forgets the delivered `keys` of transactions `live` no longer knows (journal retention):
/// nothing can owe them again. At start, and hourly in each worker, so that a long-running
/// agent holds the keys of the records it keeps, not of every delivery it ever made.
pub fn forget_gone(keys: &mut HashSet<String>, live: impl Fn(&str) -> bool) {
    keys.retain(|key| live(transaction_of(key)));
}

/// The transaction id inside a delivery key (`final:ID`, `resolved:ID.SEQ`, …).
fn transaction_of(key: &str) -> &str {
    let (kind, rest) = key.split_once(':').unwrap_or(("", key));
    match kind {
        "final" => rest,
        _ => rest.rsplit_once('.').map_or(rest, |(id, _)| id),
    }
}

fn parse(text: &str) -> HashMap<String, Memory> {
    let mut memory: HashMap<String, Memory> = HashMap::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("since"), Some(name), Some(seq), None) => {
                if let Ok(seq) = seq.parse() {
                    let since = &mut memory.entry(name.to_owned()).or_default().since;
                    *since = Some(since.map_or(seq, |s: u64| s.min(seq)));
                }
            }
            (Some(fact @ ("done" | "owed")), Some(name), Some(key), None) => {
                let webhook = memory.entry(name.to_owned()).or_default();
                let keys = match fact {
                    "done" => &mut webhook.done,
                    _ => &mut webhook.owed,
                };
                keys.insert(key.to_owned());
            }
            // A line cut by a crash: the delivery is repeated, nothing is lost.
            _ => tracing::debug!(line, "webhook log line ignored"),
        }
    }
    memory
}

/// Writes `memory` to a temporary file, fsyncs it and renames it over `path`.
fn rewrite(path: &Path, memory: &HashMap<String, Memory>) -> io::Result<()> {
    let mut text = String::new();
    for (name, webhook) in memory {
        if let Some(seq) = webhook.since {
            text += &format!("since {name} {seq}\n");
        }
        for key in &webhook.done {
            text += &format!("done {name} {key}\n");
        }
        for key in &webhook.owed {
            text += &format!("owed {name} {key}\n");
        }
    }
    let staging = path.with_extension("log.tmp");
    let mut file = private_file(&staging, true)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staging, path)
}

fn append_to(path: &Path) -> io::Result<File> {
    private_file(path, false)
}

fn private_file(path: &Path, truncate: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_survive_a_reopen_and_forgotten_transactions_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (log, memory) = Delivered::open(dir.path(), |_| true).unwrap();
        assert!(memory.is_empty());
        log.since("hook", 4);
        log.done("hook", "final:a.b");
        log.done("hook", "resolved:c.12");
        log.done("other", "final:gone");
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap()
            .write_all(b"done hook final:cut")
            .unwrap();

        let (_, memory) = Delivered::open(dir.path(), |id| id != "gone").unwrap();
        let hook = &memory["hook"];
        assert_eq!(hook.since, Some(4));
        let done: HashSet<String> = ["final:a.b", "resolved:c.12", "final:cut"]
            .map(String::from)
            .into();
        assert_eq!(hook.done, done);
        assert!(memory["other"].done.is_empty());
        assert_eq!(memory["other"].since, None);
    }

    #[test]
    fn owed_deliveries_of_forgotten_records_are_listed_as_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Delivered::open(dir.path(), |_| true).unwrap();
        for key in ["final:paid", "final:lost", "resolved:lost.9", "final:kept"] {
            log.owed("hook", key);
        }
        log.done("hook", "final:paid");
        drop(log);

        let kept = |id: &str| id == "kept";
        let (_, memory) = Delivered::open(dir.path(), kept).unwrap();
        let hook = &memory["hook"];
        assert_eq!(
            hook.dropped,
            ["final:lost", "resolved:lost.9"],
            "paid was delivered"
        );
        assert_eq!(hook.owed, HashSet::from(["final:kept".to_owned()]));
        assert!(hook.done.is_empty());
        let (_, memory) = Delivered::open(dir.path(), kept).unwrap();
        assert!(memory["hook"].dropped.is_empty(), "reported once");
        assert_eq!(memory["hook"].owed.len(), 1, "still owed");
    }

    #[test]
    fn a_running_worker_forgets_the_keys_of_records_retention_dropped() {
        let mut done: HashSet<String> = [
            "final:kept",
            "updated:kept.4",
            "final:old",
            "resolved:old.9",
            "updated:old.2",
        ]
        .map(String::from)
        .into();
        forget_gone(&mut done, |id| id == "kept");
        let kept: HashSet<String> = ["final:kept", "updated:kept.4"].map(String::from).into();
        assert_eq!(done, kept);
    }

    #[test]
    fn keys_name_their_transaction() {
        assert_eq!(transaction_of("final:a.b"), "a.b");
        assert_eq!(transaction_of("resolved:a.b.7"), "a.b");
        assert_eq!(transaction_of("updated:x.3"), "x");
    }
}
