//! Requests from commands run beside a running agent: `caisse-ap-relay resolve` cannot open
//! the journal the agent holds locked, so it drops its request as a file in
//! `data_dir/requests/` and the agent's engine answers it.
//!
//! A request `NAME.json` is written as `NAME.tmp` and renamed, so the agent never reads half
//! of one; the agent journals it like a till's `resolve` (resolver `cli`), writes the answer
//! `NAME.answer` the same way and removes the request. The command waits for the answer and
//! removes it. Files are 0600, the directory 0700 (contract §7.6). Only the agent's own
//! user can write there, and a request can do nothing a till's `resolve` could not.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::error::ErrorCode;
use super::record::{Record, ResolvedAs};
use super::Engine;

/// The directory in `data_dir`.
pub const DIR_NAME: &str = "requests";
/// How often the agent looks for requests.
pub const POLL: Duration = Duration::from_millis(200);

/// A command's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Resolve an `unknown` transaction (resolver `cli`).
    Resolve {
        /// Transaction id.
        id: String,
        /// What the ticket says.
        outcome: ResolvedAs,
        /// Free text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Done: the journaled record.
    Done {
        /// The record as journaled.
        record: Box<Record>,
    },
    /// Refused, as a till would be.
    Refused {
        /// The contract's error code.
        code: ErrorCode,
        /// What to do.
        message: String,
    },
}

impl Engine {
    /// Answers `request` (also what the command does itself when no agent runs).
    pub async fn answer(&self, request: Request) -> Answer {
        match request {
            Request::Resolve { id, outcome, note } => {
                match self.resolve_from_cli(&id, outcome, note).await {
                    Ok(record) => Answer::Done {
                        record: Box::new((*record).clone()),
                    },
                    Err(error) => Answer::Refused {
                        code: error.code,
                        message: error.message,
                    },
                }
            }
        }
    }

    /// Answers the requests dropped in `data_dir/requests/` until `stop`.
    pub(super) fn start_inbox(&self, data_dir: &Path) {
        let dir = data_dir.join(DIR_NAME);
        let engine = self.clone();
        let stop: CancellationToken = self.inner.stop.clone();
        self.inner.tasks.spawn(async move {
            let mut ticks = tokio::time::interval(POLL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => engine.answer_pending(&dir).await,
                }
            }
        });
    }

    async fn answer_pending(&self, dir: &Path) {
        for path in pending(dir) {
            let request = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Request>(&bytes).ok());
            let answer = match request {
                Some(request) => self.answer(request).await,
                None => Answer::Refused {
                    code: ErrorCode::BadRequest,
                    message: format!("unreadable request {}", path.display()),
                },
            };
            let written = write_atomically(&path.with_extension("answer"), &answer)
                .and_then(|()| fs::remove_file(&path));
            if let Err(err) = written {
                tracing::error!(%err, path = %path.display(), "cannot answer a command's request");
            }
        }
    }
}

/// The request files waiting in `dir`, oldest name first.
fn pending(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    found.sort();
    found
}

/// Drops `request` in `data_dir`'s inbox and waits up to `wait` for the running agent's
/// answer. `Ok(None)`: no answer came (the request is withdrawn).
pub fn submit(data_dir: &Path, request: &Request, wait: Duration) -> io::Result<Option<Answer>> {
    let dir = data_dir.join(DIR_NAME);
    create_private_dir(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{nanos}-{}", std::process::id());
    let path = dir.join(format!("{name}.json"));
    let answer_path = dir.join(format!("{name}.answer"));
    write_atomically(&path, request)?;
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if let Ok(bytes) = fs::read(&answer_path) {
            let _ = fs::remove_file(&answer_path);
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(io::Error::other);
        }
        std::thread::sleep(POLL / 4);
    }
    // Withdrawn unless the agent took it meanwhile; then its answer is left behind.
    let _ = fs::remove_file(&path);
    Ok(None)
}

fn write_atomically(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    serde_json::to_writer(&mut file, value).map_err(io::Error::other)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
