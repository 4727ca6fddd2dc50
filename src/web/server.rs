//! The accept loop and one connection's life: TLS (on the TLS port), then HTTP/1.1 with
//! upgrades, under the port's connection [`Budget`].
//!
//! The loop only accepts, admits and spawns; everything that can be slow (TLS handshake,
//! request heads) runs in the connection's task under a deadline. Both ports (TLS and the
//! plain-HTTP onboarding site) run here, each with its own router and budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::Service;
use tracing::Instrument;

use super::budget::{Budget, Slot};
use super::upgrade::{ConnectionPermit, Peer};
use super::App;
use crate::access::throttle::LogThrottle;

/// Longest pause after repeated accept errors (e.g. out of file descriptors).
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// One listening port: what it answers and how many it holds.
pub struct Front {
    /// For log lines: `https` or `onboarding`.
    pub name: &'static str,
    /// The HTTP routes.
    pub router: axum::Router,
    /// TLS first (the TLS port), or plain HTTP (onboarding).
    pub tls: Option<TlsAcceptor>,
    /// The connection budget.
    pub budget: Arc<Budget>,
}

/// Accepts connections on `listener` until the app's shutdown.
pub async fn serve(listener: TcpListener, app: Arc<App>, front: Front) {
    let front = Arc::new(front);
    let refusals = LogThrottle::default();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = app.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(5);
                let slot = match front.budget.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refused) => {
                        if let Some(count) = refusals.hit(peer.ip()) {
                            tracing::warn!(port = front.name, %peer, count, %refused,
                                "connections refused");
                        }
                        continue;
                    }
                };
                // Progress messages are small and come in bursts: without this, Nagle holds
                // `connecting` and `sent` back until the browser's delayed ACK (~40 ms).
                let _ = tcp.set_nodelay(true);
                // `till` is recorded once the WebSocket session authenticates: one span per
                // connection, entered on every poll, costs less than a second one per session.
                let span = tracing::info_span!("conn", port = front.name, %peer,
                    till = tracing::field::Empty);
                let connection = run(Arc::clone(&app), Arc::clone(&front), tcp, peer, slot);
                app.tasks.spawn(connection.instrument(span));
            }
            Err(err) => {
                tracing::warn!(%err, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!(port = front.name, "no longer accepting connections");
}

/// One connection: cut when evicted from the budget, at shutdown, or by its deadlines.
async fn run(app: Arc<App>, front: Arc<Front>, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
    let slot = Arc::new(slot);
    let evicted = slot.evicted();
    let deadline = app.options.handshake_timeout;
    let served = async {
        match &front.tls {
            None => http(&app, &front, tcp, peer, slot).await,
            Some(acceptor) => {
                // A stalled handshake must not hold a place (or the shutdown) for long.
                let handshake = tokio::select! {
                    handshake = tokio::time::timeout(deadline, acceptor.accept(tcp)) => handshake,
                    _ = app.shutdown.cancelled() => return,
                };
                let tls = match handshake {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => return tracing::debug!(%err, "TLS handshake failed"),
                    Err(_) => return tracing::debug!("TLS handshake timed out"),
                };
                http(&app, &front, tls, peer, slot).await
            }
        }
    };
    tokio::select! {
        () = served => {}
        () = evicted => tracing::debug!("evicted: the connection cap was reached"),
    }
}

/// HTTP/1.1 over `io` until the client leaves, the head deadline passes or the shutdown.
async fn http<S>(app: &App, front: &Front, io: S, peer: SocketAddr, slot: Arc<Slot>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let permit = ConnectionPermit(slot);
    let router = front.router.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        request.extensions_mut().insert(permit.clone());
        router.clone().call(request)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // Bounds each request head, so a silent client cannot hold a place.
    http.timer(TokioTimer::new())
        .header_read_timeout(app.options.handshake_timeout);
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = app.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%err, "HTTP connection ended with an error");
    }
}
