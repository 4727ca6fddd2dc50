//! The TOML configuration of the contract's §2, validated once into typed values, and the
//! demo default used when no file is found.
//!
//! `raw` reads the file keeping spans, `rules` checks single values, and this module ties
//! them together, checks the cross-references (unique names, known terminals) and locates
//! the file. Nothing here opens sockets, resolves names or touches certificates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::TicketRequest;

mod raw;
pub(crate) mod rules;
mod validate;

pub use validate::ConfigError;

/// The file looked up in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "caisse-ap-relay.toml";
/// Default HTTPS + WSS listen address.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8443);
/// Default journal and secrets directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Default certificate directory.
pub const DEFAULT_TLS_DIR: &str = "certs";
/// Default connections per client address and port.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// Default Caisse-AP POS number (tag CA).
pub const DEFAULT_POS_NUMBER: &str = "01";
/// Default deadline for a terminal's answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
/// Default window of the possible-duplicate guard (contract §10).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(60);
/// Default time a finished record stays in the journal after its last change.
pub const DEFAULT_JOURNAL_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[tls]`.
    pub tls: TlsConfig,
    /// `[[terminal]]`, names unique.
    pub terminals: Vec<TerminalConfig>,
    /// `[[till]]`, names unique.
    pub tills: Vec<TillConfig>,
    /// `[[webhook]]`, names unique.
    pub webhooks: Vec<WebhookConfig>,
}

/// `[[webhook]]` (contract §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `[a-z0-9_-]{1,32}`; what its owed deliveries are remembered by.
    pub name: String,
    /// `https://…`, or `http://` to a loopback host.
    pub url: String,
    /// The HMAC key (the base64 after `whsec_`, decoded).
    pub secret: Secret<Vec<u8>>,
    /// Every change (`all`), or only final and resolved records (`final`, the default).
    pub all_events: bool,
    /// An extra trust anchor (PEM) besides the system's.
    pub ca: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS + WSS listen address (default 127.0.0.1:8443).
    pub listen: SocketAddr,
    /// Plain-HTTP onboarding address, if enabled.
    pub onboarding: Option<SocketAddr>,
    /// Allowed `Origin` values, exact match.
    pub allowed_origins: Vec<String>,
    /// Journal and paired-till secrets (default "data").
    pub data_dir: PathBuf,
    /// Client ranges `/metrics` answers (default loopback and private ranges).
    pub metrics_from: Vec<ipnet::IpNet>,
    /// Connections each client address (IPv6: each /64) may hold per port (default 64).
    pub max_connections_per_address: usize,
    /// The agent's name in receipts (`iss`); `None` = the hostname.
    pub name: Option<String>,
    /// A `pay` like an approved one younger than this needs `confirm_duplicate`
    /// (default 60 s, zero = off).
    pub duplicate_window: Duration,
    /// Which refunds are accepted (default free).
    pub refunds: Refunds,
    /// How long a finished record stays in the journal after its last change (default 30
    /// days); webhook deliveries still owed are dropped with it (contract §9).
    pub journal_retention: Duration,
}

/// `[server] refunds`: which refunds the agent accepts (contract §10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refunds {
    /// Any refund, as in v1.
    #[default]
    Free,
    /// A refund names the approved debit it reverses (`refund_of`) and may not exceed it.
    Linked,
    /// No refunds.
    Off,
}

/// `[tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Where the generated CA and leaf live (default "certs").
    pub dir: PathBuf,
    /// Bring-your-own leaf certificate and key (both or neither).
    pub own: Option<(PathBuf, PathBuf)>,
    /// Extra DNS names or IPs for the leaf.
    pub extra_names: Vec<String>,
    /// Add name constraints to a newly created CA (default true).
    pub name_constraints: bool,
}

/// `[[terminal]]`.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// "host:port".
    pub address: String,
    /// Caisse-AP CA tag, two digits (default "01").
    pub pos_number: String,
    /// Deadline for the terminal's answer (default 180 s).
    pub timeout: Duration,
    /// An unresolved `unknown` blocks new payments on it (default true).
    pub guard_unknown: bool,
    /// `ticket` (and `ticket_format`): the ticket asked with CK; `None` ("none", the
    /// default) sends no CK, since not every terminal accepts it.
    pub ticket: Option<TicketRequest>,
    /// `send_reference`: send the transaction id in CF and check its echo (default off).
    pub send_reference: bool,
}

/// What a till may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Pays, cancels and resolves its own transactions, watches; sees its own records in
    /// full and other tills' records redacted (contract §7.3).
    Cashier,
    /// Only watches and reads, records redacted.
    Display,
    /// Never pays: reads and resolves every till's records in full, and is the only role
    /// the `status` overview (and the discovery sweep) answers.
    Operator,
}

impl Role {
    /// Every role, in the configuration's order.
    pub const ALL: [Role; 3] = [Role::Cashier, Role::Display, Role::Operator];

    /// The configuration's (and the wire's) name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Display => "display",
            Role::Operator => "operator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| format!("expected cashier, display or operator, not {value:?}"))
    }
}

/// `[[till]]`.
#[derive(Debug, Clone)]
pub struct TillConfig {
    /// Till name.
    pub name: String,
    /// Static token, if any (never logged).
    pub token: Option<Secret>,
    /// Terminals this till may use; `None` = all.
    pub terminals: Option<Vec<String>>,
    /// Role.
    pub role: Role,
}

/// A secret (a string by default) whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T = String>(pub T);

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            onboarding: None,
            allowed_origins: Vec::new(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            metrics_from: crate::net::local_ranges(),
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            name: None,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            refunds: Refunds::Free,
            journal_retention: DEFAULT_JOURNAL_RETENTION,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            dir: PathBuf::from(DEFAULT_TLS_DIR),
            own: None,
            extra_names: Vec::new(),
            name_constraints: true,
        }
    }
}

impl Config {
    /// Finds and loads the configuration: `explicit` (`--config FILE`) must exist; else
    /// `./caisse-ap-relay.toml` if present; else `None` (the caller runs the demo).
    pub fn locate(explicit: Option<&Path>) -> Result<Option<(PathBuf, Config)>, ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(None),
        };
        let config = Config::load(&path)?;
        Ok(Some((path, config)))
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ConfigError::NotFound { file: file.clone() },
            _ => ConfigError::Read {
                file: file.clone(),
                source,
            },
        })?;
        Config::from_str_named(&text, &file)
    }

    /// Parses and validates `text`; errors name the file as `name`.
    pub fn from_str_named(text: &str, name: &str) -> Result<Config, ConfigError> {
        validate::parse(text, name)
    }

    /// The demo configuration: one terminal `demo` at `terminal_address` (the in-process
    /// simulator), a cashier till `demo` holding `token` and an operator till `operator`
    /// holding `operator_token` (for the status page), with every default.
    pub fn demo(terminal_address: String, token: Secret, operator_token: Secret) -> Config {
        Config {
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            terminals: vec![TerminalConfig {
                name: "demo".to_owned(),
                address: terminal_address,
                pos_number: DEFAULT_POS_NUMBER.to_owned(),
                ticket: None,
                send_reference: false,
                timeout: DEFAULT_TIMEOUT,
                guard_unknown: true,
            }],
            tills: vec![
                TillConfig {
                    name: "demo".to_owned(),
                    token: Some(token),
                    terminals: None,
                    role: Role::Cashier,
                },
                TillConfig {
                    name: "operator".to_owned(),
                    token: Some(operator_token),
                    terminals: None,
                    role: Role::Operator,
                },
            ],
            webhooks: Vec::new(),
        }
    }
}
