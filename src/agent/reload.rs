//! Reloading a running agent's configuration (SIGHUP, or [`ReloadHandle::reload`] in tests):
//! terminals, tills and allowed origins change live, without dropping a transaction.
//!
//! Settings bound at start (listen and onboarding addresses, data directory, TLS, the
//! receipts' name, webhooks) keep their running values; a reload that changes them says they
//! need a restart. A file that does not validate is refused whole and the running
//! configuration stays.

use std::path::Path;
use std::sync::Arc;

use crate::config::{
    Config, ConfigError, ServerConfig, TerminalConfig, TillConfig, TlsConfig, WebhookConfig,
};
use crate::web::App;

/// Names added, changed and removed by a reload, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Names new in the file.
    pub added: Vec<String>,
    /// Names whose settings differ.
    pub changed: Vec<String>,
    /// Names gone from the file.
    pub removed: Vec<String>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// `[[terminal]]` entries.
    pub terminals: Changes,
    /// `[[till]]` entries.
    pub tills: Changes,
    /// Whether `server.allowed_origins` changed.
    pub origins_changed: bool,
    /// Changed settings ignored until a restart (`server.listen`, `server.onboarding`,
    /// `server.data_dir`, `tls`, …: every `[server]` setting but the origins, and webhooks).
    pub needs_restart: Vec<&'static str>,
}

/// Applies new configurations to a running agent; cheap to clone.
#[derive(Clone)]
pub struct ReloadHandle {
    app: Arc<App>,
    // What runs now; a tokio mutex also serialises reloads.
    running: Arc<tokio::sync::Mutex<Running>>,
}

/// The running settings a reload is compared with. The tills and allowed origins are not
/// here: their one homes are the agent's `Access` and `App::allowed_origins`, which a reload
/// replaces (and which say what changed).
struct Running {
    /// `[server]` without its `allowed_origins` (left empty).
    server: ServerConfig,
    tls: TlsConfig,
    terminals: Vec<TerminalConfig>,
    webhooks: Vec<WebhookConfig>,
}

impl ReloadHandle {
    pub(super) fn new(app: Arc<App>, config: &Config) -> ReloadHandle {
        ReloadHandle {
            app,
            running: Arc::new(tokio::sync::Mutex::new(Running::of(config))),
        }
    }

    /// Applies the live parts of `config` (validated by [`Config::load`]): terminals, tills,
    /// allowed origins. Running transactions finish with the settings they started with.
    pub async fn reload(&self, config: Config) -> ReloadReport {
        let mut running = self.running.lock().await;
        let terminals = diff(
            &running.terminals,
            &config.terminals,
            |t| &t.name,
            same_terminal,
        );
        // Terminals first: a till of the new file may name a new terminal.
        self.app.engine.set_terminals(&config.terminals).await;
        let old_tills = self.app.access.replace_tills(&config.tills);
        let needs_restart = running.needs_restart(&config);
        let report = ReloadReport {
            terminals,
            tills: diff(&old_tills, &config.tills, |t| &t.name, same_till),
            origins_changed: self
                .app
                .allowed_origins
                .replace(config.server.allowed_origins),
            needs_restart,
        };
        running.terminals = config.terminals;
        report.log();
        report
    }

    /// Reads and validates `path`, then [`ReloadHandle::reload`]s it. A bad file is refused
    /// (logged with its one-line reason) and the running configuration stays whole.
    pub async fn reload_file(&self, path: &Path) -> Result<ReloadReport, ConfigError> {
        match Config::load(path) {
            Ok(config) => Ok(self.reload(config).await),
            Err(err) => {
                tracing::error!(%err, "configuration reload refused; the running configuration stays");
                Err(err)
            }
        }
    }
}

impl ReloadReport {
    fn log(&self) {
        let (terminals, tills) = (&self.terminals, &self.tills);
        tracing::info!(
            terminals_added = ?terminals.added, terminals_changed = ?terminals.changed,
            terminals_removed = ?terminals.removed, tills_added = ?tills.added,
            tills_changed = ?tills.changed, tills_removed = ?tills.removed,
            origins_changed = self.origins_changed,
            "configuration reloaded"
        );
        if !self.needs_restart.is_empty() {
            tracing::warn!(settings = ?self.needs_restart,
                "changed settings need a restart; the running values stay");
        }
    }
}

/// Entries of `new` not in `old` by name, in both with other settings, and gone.
fn diff<T>(old: &[T], new: &[T], name: fn(&T) -> &String, same: fn(&T, &T) -> bool) -> Changes {
    let mut changes = Changes::default();
    for entry in new {
        match old.iter().find(|t| name(t) == name(entry)) {
            None => changes.added.push(name(entry).clone()),
            Some(before) if !same(before, entry) => changes.changed.push(name(entry).clone()),
            Some(_) => {}
        }
    }
    let gone = old
        .iter()
        .filter(|t| !new.iter().any(|n| name(n) == name(t)));
    changes.removed = gone.map(|t| name(t).clone()).collect();
    changes
}

fn same_terminal(a: &TerminalConfig, b: &TerminalConfig) -> bool {
    let settings = |t: &TerminalConfig| (t.timeout, t.ticket, t.send_reference);
    (&a.address, &a.pos_number, settings(a)) == (&b.address, &b.pos_number, settings(b))
}

fn same_till(a: &TillConfig, b: &TillConfig) -> bool {
    (&a.token, a.role, &a.terminals) == (&b.token, b.role, &b.terminals)
}

impl Running {
    fn of(config: &Config) -> Running {
        Running {
            server: ServerConfig {
                allowed_origins: Vec::new(),
                ..config.server.clone()
            },
            tls: config.tls.clone(),
            terminals: config.terminals.clone(),
            webhooks: config.webhooks.clone(),
        }
    }

    /// The settings bound at start that differ in `new`.
    fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let (old, a, b) = (&self.server, &self.tls, &new.tls);
        let tls_differs = (&a.dir, &a.own, &a.extra_names, a.name_constraints)
            != (&b.dir, &b.own, &b.extra_names, b.name_constraints);
        let checks = [
            ("server.listen", old.listen != new.server.listen),
            ("server.onboarding", old.onboarding != new.server.onboarding),
            ("server.data_dir", old.data_dir != new.server.data_dir),
            (
                "server.duplicate_window",
                old.duplicate_window != new.server.duplicate_window,
            ),
            ("server.refunds", old.refunds != new.server.refunds),
            (
                "server.journal_retention",
                old.journal_retention != new.server.journal_retention,
            ),
            ("tls", tls_differs),
            ("server.name", old.name != new.server.name),
            (
                "server.metrics_from",
                old.metrics_from != new.server.metrics_from,
            ),
            (
                "server.max_connections_per_address",
                old.max_connections_per_address != new.server.max_connections_per_address,
            ),
            ("webhook", self.webhooks != new.webhooks),
        ];
        let differing = checks.into_iter().filter(|(_, differs)| *differs);
        differing.map(|(setting, _)| setting).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Role, Secret};

    fn terminal(name: &str, address: &str) -> TerminalConfig {
        TerminalConfig {
            name: name.into(),
            address: address.into(),
            pos_number: "01".into(),
            timeout: Duration::from_secs(60),
            guard_unknown: true,
            ticket: None,
            send_reference: false,
        }
    }

    #[test]
    fn diff_names_added_changed_and_removed_entries() {
        let old = [terminal("a", "127.0.0.1:1"), terminal("b", "127.0.0.1:2")];
        let new = [
            terminal("c", "127.0.0.1:3"),
            terminal("b", "127.0.0.1:20"),
            terminal("d", "127.0.0.1:4"),
        ];
        let changes = diff(&old, &new, |t| &t.name, same_terminal);
        assert_eq!(changes.added, ["c", "d"]);
        assert_eq!(changes.changed, ["b"]);
        assert_eq!(changes.removed, ["a"]);
        assert_eq!(
            diff(&new, &new, |t| &t.name, same_terminal),
            Changes::default()
        );
    }

    #[test]
    fn a_new_till_token_is_a_change() {
        let till = |token: &str| TillConfig {
            name: "t".into(),
            token: Some(Secret(token.into())),
            terminals: None,
            role: Role::Cashier,
        };
        let changes = diff(&[till("x")], &[till("y")], |t| &t.name, same_till);
        assert_eq!(changes.changed, ["t"]);
    }

    #[test]
    fn only_settings_bound_at_start_need_a_restart() {
        let old = Config::demo(
            "127.0.0.1:9".into(),
            Secret("token".into()),
            Secret("operator-token".into()),
        );
        let mut new = old.clone();
        new.server.allowed_origins = vec!["https://pos.example.com".into()];
        new.terminals.clear();
        let old = Running::of(&old);
        assert!(old.needs_restart(&new).is_empty());
        new.server.data_dir = "elsewhere".into();
        new.tls.extra_names = vec!["till.lan".into()];
        assert_eq!(old.needs_restart(&new), ["server.data_dir", "tls"]);
    }
}
