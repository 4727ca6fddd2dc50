//! The agent's wiring: configuration → certificates → journal and engine → TLS front.
//!
//! [`Agent::start`] does everything that can fail at startup (certificates, journal), so a
//! caller can report it before serving; [`Agent::serve`] then runs until `shutdown`
//! resolves and stops gracefully: no new connections, sockets closed with 1001, running
//! transactions finished (each bounded by its terminal's deadline). [`Agent::reload_handle`]
//! applies a new configuration while it serves (see [`reload`]).

pub mod reload;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::access::{Access, StoreError};
use crate::certs::{CertError, Certificates, RENEWAL_INTERVAL};
use crate::config::rules::WEAK_TOKEN_LEN;
use crate::config::{Config, ServerConfig};
use crate::engine::ledger::Seal;
use crate::engine::{Engine, EngineError, EngineOptions};
use crate::receipt::Receipts;
use crate::web::budget::{self, Budget};
use crate::web::{onboarding, routes, server, App, WebOptions};
use crate::webhook::Webhooks;
use reload::ReloadHandle;

/// Connections the plain-HTTP onboarding port holds at most (contract §7.4).
pub const ONBOARDING_CONNECTIONS: usize = 64;

/// Tunables of a running agent; the defaults are the contract's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Engine periods and driver deadlines.
    pub engine: EngineOptions,
    /// Front limits and periods.
    pub web: WebOptions,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Certificates could not be loaded or created: the message names the file.
    #[error(transparent)]
    Certs(#[from] CertError),
    /// The journal could not be opened or settled.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The paired tills' store could not be read: the message names the file.
    #[error(transparent)]
    Access(#[from] StoreError),
    /// The data directory could not be created or its modes tightened.
    #[error("{}: {source}", path.display())]
    DataDir {
        /// `data_dir`.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The receipt key cannot be read or made: the message names the file (exit 2).
    #[error(transparent)]
    Receipt(#[from] crate::receipt::KeyError),
    /// A webhook cannot start (its `ca`, the delivered log): one line (exit 2).
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
    /// The onboarding port could not be opened.
    #[error("onboarding port {addr}: {source}")]
    Onboarding {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A started agent, ready to serve.
pub struct Agent {
    app: Arc<App>,
    listener: TcpListener,
    /// The plain-HTTP setup site, when configured and the CA is local.
    onboarding: Option<(TcpListener, axum::Router)>,
    /// Connections each client address may hold per port.
    per_address: usize,
    reload: ReloadHandle,
}

impl Agent {
    /// Loads certificates, opens the journal (settling interrupted transactions) and builds
    /// the front on the pre-bound `listener`.
    pub async fn start(
        config: &Config,
        listener: TcpListener,
        options: Options,
    ) -> Result<Agent, AgentError> {
        let data_dir = &config.server.data_dir;
        crate::datadir::secure(data_dir).map_err(|source| AgentError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let tls = config.tls.clone();
        // Key generation and fsyncs block: keep them off the runtime threads.
        let certs = tokio::task::spawn_blocking(move || Certificates::load_or_create(&tls))
            .await
            .expect("certificate task panicked")?;
        let receipts = Arc::new(load_receipts(&config.server).await?);
        let seal = Arc::clone(&receipts);
        let seal: Seal = Arc::new(move |record| seal.seal(record));
        let engine_options = EngineOptions {
            duplicate_window: config.server.duplicate_window,
            refunds: config.server.refunds,
            retention: config.server.journal_retention,
            ..options.engine
        };
        let engine = Engine::start(
            &config.terminals,
            &config.server.data_dir,
            engine_options,
            Some(seal),
        )
        .await?;
        let webhooks = Webhooks::prepare(&config.webhooks, &engine, &config.server.data_dir)?;
        warn_weak_tokens(config);
        let access = Arc::new(Access::new(&config.tills, &config.server.data_dir)?);
        if !access.has_operator() {
            tracing::info!(
                "no operator till: the status page (/status) needs one; pair one with \
                 `caisse-ap-relay pair --role operator --till operator`"
            );
        }
        let https_port = listener.local_addr().map_or(0, |addr| addr.port());
        let onboarding = bind_onboarding(config, &certs, https_port).await?;
        let app = App::new(
            engine,
            access,
            certs,
            receipts,
            Arc::new(webhooks),
            &config.server,
            https_port,
            options.web,
        );
        Ok(Agent {
            reload: ReloadHandle::new(Arc::clone(&app), config),
            app,
            listener,
            onboarding,
            per_address: config.server.max_connections_per_address,
        })
    }

    /// Applies new configurations while the agent serves (SIGHUP in `serve`).
    pub fn reload_handle(&self) -> ReloadHandle {
        self.reload.clone()
    }

    /// The TLS identity (for the console banner).
    pub fn certificates(&self) -> &Certificates {
        &self.app.certs
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The onboarding site's address, when it is served.
    pub fn onboarding_addr(&self) -> Option<std::net::SocketAddr> {
        let (listener, _) = self.onboarding.as_ref()?;
        listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let app = self.app;
        let renewal = app
            .certs
            .spawn_renewal(RENEWAL_INTERVAL, app.shutdown.clone());
        let watcher = app.access.spawn_watcher(app.shutdown.clone());
        app.webhooks.spawn(&app.tasks, &app.shutdown);
        let (https, onboarding) = fronts(&app, self.onboarding.is_some(), self.per_address);
        if let (Some((listener, router)), Some(budget)) = (self.onboarding, onboarding) {
            let front = server::Front {
                name: "onboarding",
                router,
                tls: None,
                budget,
            };
            app.tasks
                .spawn(server::serve(listener, Arc::clone(&app), front));
        }
        let stop = async {
            shutdown.await;
            tracing::info!("shutting down");
            app.shutdown.cancel();
        };
        tokio::join!(server::serve(self.listener, Arc::clone(&app), https), stop);
        app.engine.shutdown().await;
        app.tasks.close();
        app.tasks.wait().await;
        let _ = tokio::join!(renewal, watcher);
        tracing::info!("stopped");
    }
}

/// The TLS port's front and the onboarding port's budget (when it is served): the TLS
/// port's cap stays below the process's file-descriptor limit, less a reserve and what the
/// onboarding port may hold (contract §7.4).
fn fronts(
    app: &Arc<App>,
    onboarding: bool,
    per_address: usize,
) -> (server::Front, Option<Arc<Budget>>) {
    let onboarding = onboarding.then(|| Budget::new(ONBOARDING_CONNECTIONS, per_address));
    let others = onboarding.as_ref().map_or(0, |b| b.total());
    let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft);
    let total = budget::total_under(nofile, others, app.options.max_connections);
    tracing::info!(
        https = total,
        onboarding = others,
        per_address,
        open_files_limit = nofile,
        "connection budget"
    );
    let https = server::Front {
        name: "https",
        router: routes::router(Arc::clone(app)),
        tls: Some(TlsAcceptor::from(app.certs.server_config())),
        budget: Budget::new(total, per_address),
    };
    (https, onboarding)
}

/// One warning per static token of 16–23 characters (contract §7.5): accepted, so the
/// shop keeps running, but short enough to replace.
fn warn_weak_tokens(config: &Config) {
    for till in &config.tills {
        let short = till
            .token
            .as_ref()
            .is_some_and(|t| t.0.chars().count() < WEAK_TOKEN_LEN);
        if short {
            tracing::warn!(
                till = %till.name,
                "till token shorter than {WEAK_TOKEN_LEN} characters: replace it with a random \
                 secret (`openssl rand -hex 16`) or remove it and pair the till \
                 (`caisse-ap-relay pair --till {}`)",
                till.name
            );
        }
    }
}

/// Reads or creates the receipt key in `data_dir` (off the runtime threads: it may fsync).
pub(crate) async fn load_receipts(server: &ServerConfig) -> Result<Receipts, AgentError> {
    let data_dir = server.data_dir.clone();
    let issuer = server
        .name
        .clone()
        .unwrap_or_else(crate::receipt::default_issuer);
    let receipts =
        tokio::task::spawn_blocking(move || Receipts::load_or_create(&data_dir, &issuer))
            .await
            .expect("receipt key task panicked")?;
    Ok(receipts)
}

/// Binds the onboarding port when it is configured and the agent has a local CA to hand out.
async fn bind_onboarding(
    config: &Config,
    certs: &Certificates,
    https_port: u16,
) -> Result<Option<(TcpListener, axum::Router)>, AgentError> {
    let Some(addr) = config.server.onboarding else {
        return Ok(None);
    };
    let (Some(pem), Some(fingerprint)) = (certs.ca_pem(), certs.fingerprint()) else {
        tracing::warn!("onboarding port ignored: the agent serves its own certificate");
        return Ok(None);
    };
    let router = onboarding::onboarding_router(&pem, &fingerprint, https_port)
        .map_err(|err| CertError::CaPem(err.to_string()))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Onboarding { addr, source })?;
    Ok(Some((listener, router)))
}

/// Starts the agent from `config` on `listener` and serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    run_with(config, listener, Options::default(), shutdown).await
}

/// [`run`] with explicit options (tests shorten the periods).
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    Agent::start(&config, listener, options)
        .await?
        .serve(shutdown)
        .await;
    Ok(())
}
