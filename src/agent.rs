//! The agent's wiring: configuration → certificates → journal and engine → TLS front.
//!
//! [`Agent::start`] does everything that can fail at startup (certificates, journal), so a
//! caller can report it before serving; [`Agent::serve`] then runs until `shutdown`
//! resolves and stops gracefully: no new connections, sockets closed with 1001, running
//! transactions finished (each bounded by its terminal's deadline).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::access::Access;
use crate::certs::{CertError, Certificates, RENEWAL_INTERVAL};
use crate::config::Config;
use crate::engine::{Engine, EngineError, EngineOptions};
use crate::web::{server, App, WebOptions};

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
}

/// A started agent, ready to serve.
pub struct Agent {
    app: Arc<App>,
    listener: TcpListener,
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
        let engine =
            Engine::start(&config.terminals, &config.server.data_dir, options.engine).await?;
        let origins = config.server.allowed_origins.clone();
        let access = Access::new(&config.tills);
        let app = App::new(engine, access, certs, &config.tills, origins, options.web);
        Ok(Agent { app, listener })
    }

    /// The TLS identity (for the console banner).
    pub fn certificates(&self) -> &Certificates {
        &self.app.certs
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let app = self.app;
        let renewal = app
            .certs
            .spawn_renewal(RENEWAL_INTERVAL, app.shutdown.clone());
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
        let _ = renewal.await;
        tracing::info!("stopped");
    }
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
