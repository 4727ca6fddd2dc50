//! `caisse-ap-relay till list` / `till revoke NAME`: the tills that may connect, and
//! revocation of paired ones. Also the configuration lookup shared with `pair`.
//!
//! Revoking only edits the pairing store; a running agent notices within a second and closes
//! that till's sockets (see `access::Access::spawn_watcher`).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use super::locate_config;
use crate::access::store::{unix_seconds, PendingCode};
use crate::access::{PairedTill, Store};
use crate::config::{Role, TillConfig, DEFAULT_DATA_DIR};

/// Arguments of `till`.
#[derive(Debug, clap::Args)]
pub struct TillArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TillAction,
    /// Configuration file (default `./caisse-ap-relay.toml`; none → the demo's `data/`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// `till` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TillAction {
    /// List configured, paired and pending tills with their role, terminals and last use.
    List,
    /// Remove a paired till's token; the running agent closes its connections.
    Revoke {
        /// Till name.
        name: String,
    },
}

/// What `pair` and `till` need from the configuration.
#[derive(Debug)]
pub(super) struct Setup {
    /// Where the pairing store lives.
    pub data_dir: PathBuf,
    /// Configured tills.
    pub tills: Vec<TillConfig>,
    /// Configured terminal names.
    pub terminals: Vec<String>,
}

/// Reads the configuration as `serve` would; without a file, the demo's data directory and
/// terminal. A bad file has already been reported when this returns `Err`.
pub(super) fn setup(explicit: Option<&Path>) -> Result<Setup, ExitCode> {
    Ok(match locate_config(explicit)? {
        Some(config) => Setup {
            data_dir: config.server.data_dir,
            tills: config.tills,
            terminals: config.terminals.into_iter().map(|t| t.name).collect(),
        },
        None => Setup {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            tills: Vec::new(),
            terminals: vec!["demo".to_owned()],
        },
    })
}

/// Prints `error: …` and returns exit code `code`.
pub(super) fn fail(code: u8, err: impl Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(code)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds.
pub(super) fn format_utc(unix: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(unix)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| at.format(&format).ok())
        .map_or_else(|| unix.to_string(), |text| format!("{text} UTC"))
}

/// Runs `till`.
pub fn run(args: TillArgs) -> ExitCode {
    let setup = match setup(args.config.as_deref()) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let store = match Store::open(&setup.data_dir) {
        Ok(store) => store,
        Err(err) => return fail(1, err),
    };
    match args.action {
        TillAction::List => list(&setup, &store),
        TillAction::Revoke { name } => revoke(&setup, &store, &name),
    }
}

fn list(setup: &Setup, store: &Store) -> ExitCode {
    let contents = match store.read() {
        Ok(contents) => contents,
        Err(err) => return fail(1, err),
    };
    let now = unix_seconds(SystemTime::now());
    let paired = &contents.paired;
    let configured = setup.tills.iter();
    let mut rows = vec![Row::header()];
    rows.extend(configured.filter_map(|till| Row::configured(till, paired)));
    rows.extend(paired.iter().map(Row::paired));
    let live = contents.pending.iter().filter(|code| code.expires > now);
    rows.extend(live.map(Row::pending));
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for row in rows {
        println!("{}", row.render(width));
    }
    ExitCode::SUCCESS
}

fn revoke(setup: &Setup, store: &Store, name: &str) -> ExitCode {
    let command = format!("till revoke {name}");
    if let Err(message) = crate::datadir::check_owner(&setup.data_dir, &command) {
        return fail(2, message);
    }
    let removed = match store.revoke(name) {
        Ok(removed) => removed,
        Err(err) => return fail(1, err),
    };
    if removed > 0 {
        println!("Revoked till \"{name}\" ({removed} pairing(s)); a running agent closes its connections within a second.");
        return ExitCode::SUCCESS;
    }
    let static_token = setup
        .tills
        .iter()
        .any(|t| t.name == name && t.token.is_some());
    if static_token {
        fail(
            1,
            format!(
                "till \"{name}\" has a static token in the configuration: remove it there and restart the agent"
            ),
        )
    } else {
        fail(
            1,
            format!("no paired till named \"{name}\" (see `caisse-ap-relay till list`)"),
        )
    }
}

/// One line of `till list`.
struct Row {
    name: String,
    kind: &'static str,
    role: &'static str,
    terminals: String,
    paired: String,
    last_used: String,
}

impl Row {
    fn header() -> Row {
        Row {
            name: "NAME".to_owned(),
            kind: "KIND",
            role: "ROLE",
            terminals: "TERMINALS".to_owned(),
            paired: "PAIRED".to_owned(),
            last_used: "LAST USED".to_owned(),
        }
    }

    /// Static tills, and configured tills waiting to be paired (paired ones get their own rows).
    fn configured(till: &TillConfig, paired: &[PairedTill]) -> Option<Row> {
        let kind = match &till.token {
            Some(_) => "static",
            None if paired.iter().any(|p| p.name == till.name) => return None,
            None => "unpaired",
        };
        Some(Row::new(
            &till.name,
            kind,
            till.role,
            till.terminals.as_deref(),
        ))
    }

    fn paired(till: &PairedTill) -> Row {
        let row = Row::new(&till.name, "paired", till.role, till.terminals.as_deref());
        Row {
            paired: format_utc(till.created),
            last_used: till
                .last_used
                .map_or_else(|| "never".to_owned(), format_utc),
            ..row
        }
    }

    /// A code issued by `pair` and not used yet.
    fn pending(code: &PendingCode) -> Row {
        let row = Row::new(&code.till, "pending", code.role, code.terminals.as_deref());
        Row {
            last_used: format!("code expires {}", format_utc(code.expires)),
            ..row
        }
    }

    /// A row with the columns every kind has; `-` for pairing time and last use.
    fn new(name: &str, kind: &'static str, role: Role, terminals: Option<&[String]>) -> Row {
        Row {
            name: name.to_owned(),
            kind,
            role: Role::as_str(role),
            terminals: terminals_text(terminals),
            paired: "-".to_owned(),
            last_used: "-".to_owned(),
        }
    }

    fn render(&self, width: usize) -> String {
        let line = format!(
            "{:<width$}  {:<8}  {:<8}  {:<16}  {:<23}  {}",
            self.name, self.kind, self.role, self.terminals, self.paired, self.last_used
        );
        line.trim_end().to_owned()
    }
}

fn terminals_text(terminals: Option<&[String]>) -> String {
    terminals.map_or_else(|| "all".to_owned(), |list| list.join(","))
}
