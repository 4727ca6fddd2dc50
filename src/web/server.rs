//! The accept loop and one connection's life: TLS, then HTTP/1.1 with upgrades.
//!
//! The loop only takes a connection permit, accepts and spawns; everything that can be slow
//! (TLS handshake, request heads) runs in the connection's task under a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::Service;
use tracing::Instrument;

use super::upgrade::{ConnectionPermit, Peer};
use super::{routes, App};

/// Longest pause after repeated accept errors (e.g. out of file descriptors).
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until the app's shutdown.
pub async fn serve(listener: TcpListener, app: Arc<App>, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    let permits = Arc::new(Semaphore::new(app.options.max_connections));
    let router = routes::router(Arc::clone(&app));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit,
            _ = app.shutdown.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = app.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(5);
                // Progress messages are small and come in bursts: without this, Nagle holds
                // `connecting` and `sent` back until the browser's delayed ACK (~40 ms).
                let _ = tcp.set_nodelay(true);
                let connection = Connection {
                    app: Arc::clone(&app),
                    acceptor: acceptor.clone(),
                    router: router.clone(),
                    permit,
                };
                let span = tracing::info_span!("conn", %peer);
                app.tasks.spawn(connection.run(tcp, peer).instrument(span));
            }
            Err(err) => {
                tracing::warn!(%err, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!("no longer accepting connections");
}

struct Connection {
    app: Arc<App>,
    acceptor: TlsAcceptor,
    router: axum::Router,
    permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, tcp: TcpStream, peer: SocketAddr) {
        let deadline = self.app.options.handshake_timeout;
        // A stalled handshake must not hold the agent's shutdown for its whole deadline.
        let handshake = tokio::select! {
            handshake = tokio::time::timeout(deadline, self.acceptor.accept(tcp)) => handshake,
            _ = self.app.shutdown.cancelled() => return,
        };
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => return tracing::debug!(%err, "TLS handshake failed"),
            Err(_) => return tracing::debug!("TLS handshake timed out"),
        };
        let permit = ConnectionPermit::new(self.permit);
        let router = self.router;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            request.extensions_mut().insert(permit.clone());
            router.clone().call(request)
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        // Bounds the request head, so a silent client cannot hold a permit.
        http.timer(TokioTimer::new()).header_read_timeout(deadline);
        let connection = http
            .serve_connection(TokioIo::new(tls), service)
            .with_upgrades();
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = self.app.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(%err, "HTTP connection ended with an error");
        }
    }
}
