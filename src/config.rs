//! INTERFACE SKETCH (owned by the config work).
//!
//! The TOML configuration of the contract's §2, validated once into typed values, and the
//! demo default used when no file is found.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Add name constraints to a newly created CA.
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
}

/// What a till may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May pay, cancel, resolve, watch.
    Cashier,
    /// May only watch and read.
    Display,
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

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}
