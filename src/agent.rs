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

use crate::access::{Access, StoreError};
use crate::certs::{CertError, Certificates, RENEWAL_INTERVAL};
use crate::config::{Config, ServerConfig};
use crate::engine::ledger::Seal;
use crate::engine::{Engine, EngineError, EngineOptions};
use crate::receipt::Receipts;
use crate::web::{onboarding, server, App, WebOptions};
use crate::webhook::Webhooks;
use reload::ReloadHandle;

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
        let origins = config.server.allowed_origins.clone();
        let access = Arc::new(Access::new(&config.tills, &config.server.data_dir)?);
        let https_port = listener.local_addr().map_or(0, |addr| addr.port());
        let onboarding = bind_onboarding(config, &certs, https_port).await?;
        let app = App::new(
            engine,
            access,
            certs,
            receipts,
            Arc::new(webhooks),
            origins,
            options.web,
        );
        Ok(Agent {
            reload: ReloadHandle::new(Arc::clone(&app), config),
            app,
            listener,
            onboarding,
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
        if let Some((listener, router)) = self.onboarding {
            let shutdown = app.shutdown.clone();
            app.tasks.spawn(async move {
                if let Err(err) = onboarding::run_onboarding(listener, router, shutdown).await {
                    tracing::error!(%err, "onboarding site stopped");
                }
            });
        }
        let tls = app.certs.server_config();
        let stop = async {
            shutdown.await;
            tracing::info!("shutting down");
            app.shutdown.cancel();
        };
        tokio::join!(server::serve(self.listener, Arc::clone(&app), tls), stop);
        app.engine.shutdown().await;
        app.tasks.close();
        app.tasks.wait().await;
        let _ = tokio::join!(renewal, watcher);
        tracing::info!("stopped");
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
