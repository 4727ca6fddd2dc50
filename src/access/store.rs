//! The pairing store in `data_dir`: pending pairing codes and paired tills, hashes only.
//!
//! The agent and the CLI are separate processes sharing this file, so every change runs under
//! an exclusive lock on `tills.lock` and replaces `tills.json` atomically (temp file, fsync,
//! rename): readers never see half a file and concurrent writers never lose an entry.
//! What a code or token *means* (rate limits, the clock, revocation events) lives in the parent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::secret::{self, RandomError};
use super::Till;
use crate::config::Role;

/// How long a pairing code stays valid.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Wrong `pair` attempts in total (any address) that invalidate every pending code
/// (contract §7.5): with 10^8 possible codes, 20 guesses find one with odds 2×10^-7.
pub const MAX_WRONG_ATTEMPTS: u32 = 20;
const STORE_FILE: &str = "tills.json";
const LOCK_FILE: &str = "tills.lock";
const TEMP_FILE: &str = "tills.json.tmp";

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or directory is unreadable or unwritable: fix its permissions or disk.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not a valid store: restore it or move it away (this forgets paired tills).
    #[error("{path}: not a valid pairing store: {source}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// No randomness: no code can be issued.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Everything the store file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contents {
    /// Codes issued and not yet used (expired ones are dropped on the next write).
    #[serde(default)]
    pub pending: Vec<PendingCode>,
    /// Tills that exchanged a code for a token.
    #[serde(default)]
    pub paired: Vec<PairedTill>,
}

/// One issued pairing code, known only by its salted hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingCode {
    /// Random salt of `code_hash`.
    pub salt: String,
    /// SHA-256 of salt then code.
    pub code_hash: String,
    /// Till name the code pairs.
    pub till: String,
    /// Role the till gets.
    pub role: Role,
    /// Terminals the till may use; `None` = all.
    pub terminals: Option<Vec<String>>,
    /// Unix seconds after which the code is refused.
    pub expires: u64,
    /// Wrong `pair` attempts (from any address) during the code's life.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wrong_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a `pair` attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The code matched: the new pairing.
    Paired(PairedTill),
    /// No live code matched; the codes this attempt used up (tills named), if any.
    Wrong {
        /// Tills whose pending code reached [`MAX_WRONG_ATTEMPTS`] and was invalidated.
        burnt: Vec<String>,
    },
}

/// One paired till, known by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedTill {
    /// Till name (several pairings may share it: several browsers of one till).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Terminals the till may use; `None` = all.
    pub terminals: Option<Vec<String>>,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Unix seconds of the pairing.
    pub created: u64,
    /// Unix seconds of the last successful hello (updated at most once a minute).
    pub last_used: Option<u64>,
}

impl PairedTill {
    /// The till this pairing authenticates.
    pub fn till(&self) -> Till {
        Till {
            name: self.name.clone(),
            role: self.role,
            terminals: self.terminals.clone(),
        }
    }
}

/// A freshly issued code, to show once to the operator.
#[derive(Clone)]
pub struct PairingCode {
    /// The eight digits.
    pub code: String,
    /// When it stops working.
    pub expires: SystemTime,
}

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingCode")
            .field("code", &"***")
            .field("expires", &self.expires)
            .finish()
    }
}

/// What identifies one version of the store file on disk, to re-read it only when replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The pairing store of one `data_dir`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Store {
    /// Opens (creating `data_dir` if needed) the store of `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Ok(Store {
            dir: data_dir.to_path_buf(),
        })
    }

    /// The store file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// Reads the whole store; a missing file is an empty store.
    pub fn read(&self) -> Result<Contents, StoreError> {
        let path = self.path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        serde_json::from_slice(&text).map_err(|source| StoreError::Corrupt { path, source })
    }

    /// The current file's stamp, `None` when there is no file yet.
    pub fn stamp(&self) -> Result<Option<Stamp>, StoreError> {
        let path = self.path();
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(Stamp {
                modified: meta.modified().ok(),
                len: meta.len(),
                inode: inode(&meta),
            })),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Applies `change` to the store under the lock; writes the file only if it changed.
    pub fn update<R>(&self, change: impl FnOnce(&mut Contents) -> R) -> Result<R, StoreError> {
        let lock_path = self.dir.join(LOCK_FILE);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let lock =
            crate::datadir::private(OpenOptions::new().create(true).truncate(false).write(true))
                .open(&lock_path)
                .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let before = self.read()?;
        let mut contents = before.clone();
        let result = change(&mut contents);
        if contents != before {
            self.write(&contents)?;
        }
        // Dropping `lock` closes the file, which releases the lock.
        Ok(result)
    }

    fn write(&self, contents: &Contents) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP_FILE);
        let path = self.path();
        let text = serde_json::to_vec_pretty(contents).expect("the store always serializes");
        let written = write_synced(&temp, &text).and_then(|()| fs::rename(&temp, &path));
        written.map_err(|source| StoreError::Io { path, source })?;
        sync_dir(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })
    }

    /// Issues a new code for `till`, valid `CODE_LIFETIME` from `now`.
    pub fn issue_code(&self, till: &Till, now: SystemTime) -> Result<PairingCode, StoreError> {
        let code = secret::new_code()?;
        let salt = secret::new_salt()?;
        let expires = now + CODE_LIFETIME;
        let pending = PendingCode {
            code_hash: secret::code_hash(&salt, &code),
            salt,
            till: till.name.clone(),
            role: till.role,
            terminals: till.terminals.clone(),
            expires: unix_seconds(expires),
            wrong_attempts: 0,
        };
        self.update(|contents| {
            drop_expired(contents, now);
            contents.pending.push(pending);
        })?;
        Ok(PairingCode { code, expires })
    }

    /// Exchanges `code` for a pairing holding `token_hash`; when no live code matches, the
    /// attempt counts against every pending code ([`Store::wrong_attempt`]).
    pub fn consume_code(
        &self,
        code: &str,
        token_hash: String,
        now: SystemTime,
    ) -> Result<Attempt, StoreError> {
        self.update(|contents| {
            drop_expired(contents, now);
            let mut found = None;
            // Every pending code is hashed and compared, so timing says nothing about which.
            for (index, pending) in contents.pending.iter().enumerate() {
                if secret::same(&secret::code_hash(&pending.salt, code), &pending.code_hash) {
                    found = Some(index);
                }
            }
            let Some(index) = found else {
                return burn(contents);
            };
            let pending = contents.pending.remove(index);
            let paired = PairedTill {
                name: pending.till,
                role: pending.role,
                terminals: pending.terminals,
                token_hash,
                created: unix_seconds(now),
                last_used: None,
            };
            contents.paired.push(paired.clone());
            Attempt::Paired(paired)
        })
    }

    /// Counts a wrong `pair` attempt (e.g. a malformed code) against every pending code;
    /// codes reaching [`MAX_WRONG_ATTEMPTS`] are invalidated.
    pub fn wrong_attempt(&self, now: SystemTime) -> Result<Attempt, StoreError> {
        self.update(|contents| {
            drop_expired(contents, now);
            burn(contents)
        })
    }

    /// Records a successful use of the pairing holding `token_hash`.
    pub fn touch(&self, token_hash: &str, now: SystemTime) -> Result<(), StoreError> {
        self.update(|contents| {
            let entry = contents.paired.iter_mut();
            for paired in entry.filter(|p| secret::same(&p.token_hash, token_hash)) {
                paired.last_used = Some(unix_seconds(now));
            }
        })
    }

    /// Removes every pairing of till `name`; returns how many there were.
    pub fn revoke(&self, name: &str) -> Result<usize, StoreError> {
        self.update(|contents| {
            let before = contents.paired.len();
            contents.paired.retain(|p| p.name != name);
            before - contents.paired.len()
        })
    }
}

/// One more wrong attempt for every pending code; those at the limit are removed.
fn burn(contents: &mut Contents) -> Attempt {
    let mut burnt = Vec::new();
    contents.pending.retain_mut(|pending| {
        pending.wrong_attempts += 1;
        let live = pending.wrong_attempts < MAX_WRONG_ATTEMPTS;
        if !live {
            burnt.push(pending.till.clone());
        }
        live
    });
    Attempt::Wrong { burnt }
}

fn drop_expired(contents: &mut Contents, now: SystemTime) {
    let now = unix_seconds(now);
    contents.pending.retain(|p| p.expires > now);
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file: File =
        crate::datadir::private(OpenOptions::new().write(true).create(true).truncate(true))
            .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename durable (on Unix a directory can be opened and synced).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn till(name: &str) -> Till {
        Till {
            name: name.to_owned(),
            role: Role::Display,
            terminals: Some(vec!["tpe-1".to_owned()]),
        }
    }

    #[test]
    fn the_file_keeps_no_code_or_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = SystemTime::now();
        let code = store.issue_code(&till("t1"), now).unwrap();
        let token = secret::new_token().unwrap();
        let paired = store
            .consume_code(&code.code, secret::token_hash(&token), now)
            .unwrap();
        let Attempt::Paired(paired) = paired else {
            panic!("not paired")
        };
        assert_eq!(paired.till(), till("t1"));
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(&code.code));
        assert!(!text.contains(&token));
        assert!(text.contains(&secret::token_hash(&token)));
    }

    #[test]
    fn twenty_wrong_attempts_burn_every_pending_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = SystemTime::now();
        let code = store.issue_code(&till("t1"), now).unwrap();
        for _ in 1..MAX_WRONG_ATTEMPTS {
            let wrong = store.consume_code("000000", "h".into(), now).unwrap();
            assert_eq!(wrong, Attempt::Wrong { burnt: Vec::new() });
        }
        let last = store.wrong_attempt(now).unwrap();
        assert_eq!(
            last,
            Attempt::Wrong {
                burnt: vec!["t1".into()]
            }
        );
        let right = store.consume_code(&code.code, "h".into(), now).unwrap();
        assert_eq!(
            right,
            Attempt::Wrong { burnt: Vec::new() },
            "the real code is dead"
        );
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = Store::open(dir.path()).unwrap();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        store.issue_code(&till(&format!("t{i}-{j}")), now).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read().unwrap().pending.len(), 80);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(store.path(), "{not json").unwrap();
        let err = store.read().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(err.to_string().contains("tills.json"), "{err}");
        assert!(store.update(|_| ()).is_err());
        assert_eq!(fs::read_to_string(store.path()).unwrap(), "{not json");
    }

    #[test]
    fn expired_codes_are_dropped_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let then = SystemTime::now();
        store.issue_code(&till("old"), then).unwrap();
        let later = then + CODE_LIFETIME + Duration::from_secs(1);
        store.issue_code(&till("new"), later).unwrap();
        let pending = store.read().unwrap().pending;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].till, "new");
    }
}
