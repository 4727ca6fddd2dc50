//! The TLS front: one port for HTTP (pages, `/healthz`, `/ca.pem`) and WebSocket (`/ws`).
//!
//! [`server`] accepts and spawns, [`routes`] answers HTTP, [`upgrade`] checks the origin and
//! switches `/ws` to a WebSocket, [`session`] runs one browser's socket, [`messages`] is the
//! wire format; each imports only the ones after it in that list, and [`App`]. The web layer
//! holds no transaction state: it asks the [`Engine`] and forwards what the engine's bus
//! announces. The allowed origins, which a reload replaces, live in [`AllowedOrigins`]
//! alone (read by the `/ws` check and the CORS headers); the configured tills in [`Access`].

mod assets;
pub(crate) mod budget;
mod discovery;
mod headers;
pub mod messages;
pub mod onboarding;
mod origins;
mod presence;
pub(crate) mod routes;
pub(crate) mod server;
mod session;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Access;
use crate::certs::Certificates;
use crate::config::ServerConfig;
use crate::engine::Engine;
use crate::receipt::Receipts;
use crate::webhook::Webhooks;
use discovery::Discovery;
pub use origins::AllowedOrigins;
use presence::Presence;

/// Limits and periods of the front; the defaults are the contract's.
#[derive(Debug, Clone, Copy)]
pub struct WebOptions {
    /// First frame (`hello`) deadline.
    pub hello_timeout: Duration,
    /// Server ping period.
    pub ping_interval: Duration,
    /// Close after this long without any frame from the client.
    pub idle_timeout: Duration,
    /// TLS + HTTP request head deadline.
    pub handshake_timeout: Duration,
    /// A send to a browser that takes longer closes its socket.
    pub send_timeout: Duration,
    /// Simultaneous connections.
    pub max_connections: usize,
    /// Largest WebSocket message and frame.
    pub max_message: usize,
    /// At most one terminal search per this long (contract §11: a minute).
    pub discover_interval: Duration,
}

impl Default for WebOptions {
    fn default() -> WebOptions {
        WebOptions {
            hello_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            max_connections: 20_000,
            max_message: 64 * 1024,
            discover_interval: Duration::from_secs(60),
        }
    }
}

/// What every connection shares.
pub struct App {
    /// The transaction engine.
    pub engine: Engine,
    /// Till authentication.
    pub access: Arc<Access>,
    /// The TLS identity (for `/ca.pem` and `status`).
    pub certs: Certificates,
    /// The receipt key (for `/receipt-key`).
    pub receipts: Arc<Receipts>,
    /// The webhooks (for `status`).
    pub webhooks: Arc<Webhooks>,
    /// Allowed `Origin` values besides the agent's own (their one home, which a reload
    /// replaces).
    pub allowed_origins: AllowedOrigins,
    /// The TLS port, for the agent's own origins (`https://` + a leaf name + this port).
    pub https_port: u16,
    /// Client ranges `/metrics` answers.
    pub metrics_from: Vec<ipnet::IpNet>,
    /// Open sessions per till.
    pub presence: Presence,
    /// The terminal searches of the operator page.
    pub discovery: Discovery,
    /// Limits and periods.
    pub options: WebOptions,
    /// Cancelled when the agent shuts down.
    pub shutdown: CancellationToken,
    /// Every connection and session task, awaited at shutdown.
    pub tasks: TaskTracker,
}

impl App {
    /// Whether `origin` is the agent's own: `https://` + a name of the leaf certificate and
    /// the TLS port (no port for 443). Never taken from the request's `Host`.
    pub fn is_own_origin(&self, origin: &str) -> bool {
        let Some(rest) = origin.strip_prefix("https://") else {
            return false;
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok()),
            _ => (rest, Some(443)),
        };
        if port != Some(self.https_port) {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.certs
            .leaf_names()
            .iter()
            .any(|name| name.to_string().eq_ignore_ascii_case(host))
    }

    /// The shared state of the front serving `server` (its TLS port bound to `https_port`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        access: Arc<Access>,
        certs: Certificates,
        receipts: Arc<Receipts>,
        webhooks: Arc<Webhooks>,
        server: &ServerConfig,
        https_port: u16,
        options: WebOptions,
    ) -> Arc<App> {
        Arc::new(App {
            engine,
            access,
            certs,
            receipts,
            webhooks,
            allowed_origins: AllowedOrigins::new(server.allowed_origins.clone()),
            https_port,
            metrics_from: server.metrics_from.clone(),
            presence: Presence::default(),
            discovery: Discovery::new(options.discover_interval),
            options,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }
}
