//! The terminals of the configuration: one transaction at a time each, and their health.
//!
//! Each terminal has a one-permit semaphore taken with `try_acquire_owned`: a second `pay`
//! is refused at once, never queued. The permit lives in a [`Lease`] moved into the
//! transaction's task, so it is released however the task ends. Health (idle, busy,
//! unreachable, last seen) is learnt from real dialogs and the identification probe; reading
//! it never opens a socket.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::record::now_rfc3339;
use crate::config::TerminalConfig;

/// What the screens see of a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalState {
    /// Free, and its last dialog went through (or none happened yet).
    Idle,
    /// A transaction holds it.
    Busy,
    /// Free, but its last dialog could not connect.
    Unreachable,
}

/// One terminal's entry in `terminals`, `welcome` and `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerminalStatus {
    /// Configured name.
    pub name: String,
    /// "host:port".
    pub address: String,
    /// Idle, busy or unreachable.
    pub state: TerminalState,
    /// Id of the transaction holding it.
    pub current: Option<String>,
    /// Last time it answered (RFC 3339), if ever since start.
    pub last_seen: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    current: Option<String>,
    unreachable: bool,
    last_seen: Option<String>,
}

/// One configured terminal.
#[derive(Debug)]
pub struct Terminal {
    /// Its configuration.
    pub config: TerminalConfig,
    permit: Arc<Semaphore>,
    /// Held by a running probe; a transaction waits for it before connecting.
    pub(super) probe_lock: tokio::sync::Mutex<()>,
    // A std mutex: short sections, never held across an await.
    health: Mutex<Health>,
}

/// The right to run one transaction on a terminal; dropping it frees the terminal.
#[derive(Debug)]
pub struct Lease {
    terminal: Arc<Terminal>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.terminal.health().current = None;
    }
}

impl Terminal {
    fn new(config: TerminalConfig) -> Terminal {
        Terminal {
            config,
            permit: Arc::new(Semaphore::new(1)),
            probe_lock: tokio::sync::Mutex::new(()),
            health: Mutex::new(Health::default()),
        }
    }

    /// Takes the terminal for transaction `id`, or returns the id holding it.
    pub fn try_begin(self: &Arc<Self>, id: &str) -> Result<Lease, Option<String>> {
        // Under the health lock so that `current` always names the permit's holder.
        let mut health = self.health();
        match Arc::clone(&self.permit).try_acquire_owned() {
            Ok(permit) => {
                health.current = Some(id.to_owned());
                Ok(Lease {
                    terminal: Arc::clone(self),
                    _permit: permit,
                })
            }
            Err(_) => Err(health.current.clone()),
        }
    }

    /// Whether a transaction holds the terminal.
    pub fn is_busy(&self) -> bool {
        self.permit.available_permits() == 0
    }

    /// Records a dialog: `true` when the terminal answered or accepted the connection.
    pub fn saw(&self, reachable: bool) {
        let mut health = self.health();
        health.unreachable = !reachable;
        if reachable {
            health.last_seen = Some(now_rfc3339());
        }
    }

    /// Its current status.
    pub fn status(&self) -> TerminalStatus {
        let health = self.health();
        let state = match (&health.current, health.unreachable) {
            (Some(_), _) => TerminalState::Busy,
            (None, true) => TerminalState::Unreachable,
            (None, false) => TerminalState::Idle,
        };
        TerminalStatus {
            name: self.config.name.clone(),
            address: self.config.address.clone(),
            state,
            current: health.current.clone(),
            last_seen: health.last_seen.clone(),
        }
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The configured terminals, in configuration order.
#[derive(Debug)]
pub struct Registry {
    terminals: Vec<Arc<Terminal>>,
}

impl Registry {
    /// One entry per configured terminal.
    pub fn new(configs: &[TerminalConfig]) -> Registry {
        Registry {
            terminals: configs
                .iter()
                .map(|c| Arc::new(Terminal::new(c.clone())))
                .collect(),
        }
    }

    /// The terminal named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Terminal>> {
        self.terminals.iter().find(|t| t.config.name == name)
    }

    /// Every terminal.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Terminal>> {
        self.terminals.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn terminal() -> Arc<Terminal> {
        Arc::new(Terminal::new(TerminalConfig {
            name: "tpe-1".into(),
            address: "127.0.0.1:9".into(),
            pos_number: "01".into(),
            timeout: Duration::from_secs(5),
        }))
    }

    #[test]
    fn a_second_begin_is_refused_with_the_holder() {
        let terminal = terminal();
        let lease = terminal.try_begin("a").unwrap();
        assert_eq!(terminal.try_begin("b").unwrap_err().as_deref(), Some("a"));
        assert_eq!(terminal.status().state, TerminalState::Busy);
        drop(lease);
        assert_eq!(terminal.status().state, TerminalState::Idle);
        assert!(terminal.try_begin("b").is_ok());
    }

    #[test]
    fn health_follows_dialogs() {
        let terminal = terminal();
        terminal.saw(false);
        assert_eq!(terminal.status().state, TerminalState::Unreachable);
        assert!(terminal.status().last_seen.is_none());
        terminal.saw(true);
        let status = terminal.status();
        assert_eq!(status.state, TerminalState::Idle);
        assert!(status.last_seen.is_some());
    }
}
