//! The terminals of the configuration: one transaction at a time each, and their health.
//!
//! Each terminal has a one-permit semaphore taken with `try_acquire_owned`: a second `pay`
//! is refused at once, never queued. The permit lives in a [`Lease`] moved into the
//! transaction's task, so it is released however the task ends. Health (idle, busy,
//! unreachable, last seen) is learnt from real dialogs and the identification probe; reading
//! it never opens a socket.
//!
//! A reload ([`Registry::apply`]) keeps one [`Terminal`] per name, so its permit and health
//! survive a changed address: a running transaction keeps the settings it started with, the
//! next one reads the new ones. A removed terminal refuses new transactions at once but stays
//! listed until its running one ends.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

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
    name: String,
    // Replaced whole by a reload; a transaction keeps the copy it started with.
    config: Mutex<Arc<TerminalConfig>>,
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
            name: config.name.clone(),
            config: Mutex::new(Arc::new(config)),
            permit: Arc::new(Semaphore::new(1)),
            probe_lock: tokio::sync::Mutex::new(()),
            health: Mutex::new(Health::default()),
        }
    }

    /// Its configured name (never changes).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its current settings; a reload replaces them for later dialogs only.
    pub fn config(&self) -> Arc<TerminalConfig> {
        Arc::clone(&self.config.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes the settings of a reload. A new address forgets what the old one taught.
    fn reconfigure(&self, config: &TerminalConfig) {
        let mut current = self.config.lock().unwrap_or_else(|e| e.into_inner());
        if current.address != config.address {
            let mut health = self.health();
            health.unreachable = false;
            health.last_seen = None;
        }
        *current = Arc::new(config.clone());
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
        let address = self.config().address.clone();
        let health = self.health();
        let state = match (&health.current, health.unreachable) {
            (Some(_), _) => TerminalState::Busy,
            (None, true) => TerminalState::Unreachable,
            (None, false) => TerminalState::Idle,
        };
        TerminalStatus {
            name: self.name.clone(),
            address,
            state,
            current: health.current.clone(),
            last_seen: health.last_seen.clone(),
        }
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A terminal and its probe; `removed` ones linger while a transaction still holds them.
#[derive(Debug)]
struct Entry {
    terminal: Arc<Terminal>,
    probe: CancellationToken,
    removed: bool,
}

impl Entry {
    fn listed(&self) -> bool {
        !self.removed || self.terminal.is_busy()
    }
}

/// A terminal whose identification probe must start, stopping when `stop` is cancelled.
pub type ProbeStart = (Arc<Terminal>, CancellationToken);

/// The configured terminals, in configuration order, then removed ones still busy.
#[derive(Debug, Default)]
pub struct Registry {
    // A std lock: never held across an await.
    entries: RwLock<Vec<Entry>>,
}

impl Registry {
    /// Makes `configs` the configured terminals: new names are added, known ones take their
    /// new settings, missing ones are removed (their probe stops). Returns the probes to
    /// start; each stops with `stop` or when its terminal is removed.
    pub fn apply(&self, configs: &[TerminalConfig], stop: &CancellationToken) -> Vec<ProbeStart> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let mut old = std::mem::take(&mut *entries);
        let mut started = Vec::new();
        for config in configs {
            let found = old.iter().position(|e| e.terminal.name == config.name);
            let mut entry = match found {
                Some(index) => old.swap_remove(index),
                None => Entry {
                    terminal: Arc::new(Terminal::new(config.clone())),
                    probe: CancellationToken::new(),
                    removed: true,
                },
            };
            entry.terminal.reconfigure(config);
            // A new terminal, or one removed earlier and still finishing: (re)start its probe.
            if entry.removed {
                entry.removed = false;
                entry.probe = stop.child_token();
                started.push((Arc::clone(&entry.terminal), entry.probe.clone()));
            }
            entries.push(entry);
        }
        for mut gone in old {
            gone.removed = true;
            gone.probe.cancel();
            if gone.listed() {
                entries.push(gone);
            }
        }
        started
    }

    /// The configured terminal named `name` (a removed one is not found).
    pub fn get(&self, name: &str) -> Option<Arc<Terminal>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries
            .iter()
            .find(|e| !e.removed && e.terminal.name == name);
        entry.map(|e| Arc::clone(&e.terminal))
    }

    /// Every terminal to show: the configured ones, and removed ones until they are idle.
    pub fn iter(&self) -> impl Iterator<Item = Arc<Terminal>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let listed = entries.iter().filter(|e| e.listed());
        listed
            .map(|e| Arc::clone(&e.terminal))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(name: &str, address: &str) -> TerminalConfig {
        TerminalConfig {
            name: name.into(),
            address: address.into(),
            pos_number: "01".into(),
            timeout: Duration::from_secs(5),
            guard_unknown: true,
            ticket: None,
            send_reference: false,
        }
    }

    fn terminal() -> Arc<Terminal> {
        Arc::new(Terminal::new(config("tpe-1", "127.0.0.1:9")))
    }

    fn names(registry: &Registry) -> Vec<String> {
        registry.iter().map(|t| t.name().to_owned()).collect()
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

    #[test]
    fn a_reload_adds_changes_and_removes_terminals() {
        let stop = CancellationToken::new();
        let registry = Registry::default();
        let first = [
            config("tpe-1", "127.0.0.1:9"),
            config("tpe-2", "127.0.0.1:10"),
        ];
        let started = registry.apply(&first, &stop);
        let tpe_1 = registry.get("tpe-1").unwrap();
        let lease = tpe_1.try_begin("a").unwrap();
        let before = registry.get("tpe-2").unwrap().config();

        let second = [
            config("tpe-2", "127.0.0.1:11"),
            config("tpe-3", "127.0.0.1:12"),
        ];
        let restarted = registry.apply(&second, &stop);

        assert_eq!(started.len(), 2);
        let restarted: Vec<_> = restarted.iter().map(|(t, _)| t.name()).collect();
        assert_eq!(
            restarted,
            ["tpe-3"],
            "only the new terminal gets a new probe"
        );
        assert!(
            started[0].1.is_cancelled(),
            "the removed terminal's probe stops"
        );
        assert!(!started[1].1.is_cancelled());
        assert!(
            registry.get("tpe-1").is_none(),
            "a removed terminal takes no payment"
        );
        assert_eq!(
            names(&registry),
            ["tpe-2", "tpe-3", "tpe-1"],
            "listed while busy"
        );
        assert_eq!(
            before.address, "127.0.0.1:10",
            "a started dialog keeps its copy"
        );
        assert_eq!(
            registry.get("tpe-2").unwrap().config().address,
            "127.0.0.1:11"
        );
        drop(lease);
        assert_eq!(names(&registry), ["tpe-2", "tpe-3"]);
    }

    #[test]
    fn a_terminal_added_back_while_still_busy_keeps_its_one_transaction() {
        let stop = CancellationToken::new();
        let registry = Registry::default();
        let configs = [config("tpe-1", "127.0.0.1:9")];
        registry.apply(&configs, &stop);
        let _lease = registry.get("tpe-1").unwrap().try_begin("a").unwrap();
        registry.apply(&[], &stop);
        let restarted = registry.apply(&configs, &stop);

        assert_eq!(restarted.len(), 1);
        assert!(!restarted[0].1.is_cancelled(), "its probe runs again");
        let tpe_1 = registry.get("tpe-1").unwrap();
        assert_eq!(tpe_1.try_begin("b").unwrap_err().as_deref(), Some("a"));
        assert_eq!(names(&registry), ["tpe-1"]);
    }

    #[test]
    fn a_new_address_forgets_the_old_health() {
        let terminal = terminal();
        terminal.saw(false);
        terminal.reconfigure(&config("tpe-1", "127.0.0.1:9"));
        assert_eq!(terminal.status().state, TerminalState::Unreachable);
        terminal.reconfigure(&config("tpe-1", "127.0.0.1:10"));
        let status = terminal.status();
        assert_eq!(
            (status.state, status.address.as_str()),
            (TerminalState::Idle, "127.0.0.1:10")
        );
    }
}
