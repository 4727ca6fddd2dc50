//! Idle connections: many authenticated WebSocket clients that only answer pings, and the
//! agent's resident memory with them. Clients come from several 127.0.0.x source addresses
//! so that the ephemeral port range of one address never runs short.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::client::{ClientError, Session, Tls};
use super::setup::Till;

/// How many 127.0.0.x source addresses the clients are spread over.
const SOURCES: usize = 8;
/// TLS handshakes in flight at once, so opening stays steady instead of a thundering herd.
const OPENING: usize = 64;

/// Connected idle clients; dropping this closes them all.
pub struct IdleClients {
    tasks: JoinSet<()>,
}

impl IdleClients {
    /// Closes every client and waits for their tasks.
    pub async fn close(mut self) {
        self.tasks.shutdown().await;
    }
}

/// The source address of client `i`: 127.0.0.1 to 127.0.0.`SOURCES`.
fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % SOURCES) as u8))
}

/// Opens `count` clients as the `idle` till; returns once every one got its `welcome`.
pub async fn open(agent: SocketAddr, tls: &Tls, count: usize) -> Result<IdleClients, ClientError> {
    let token: Arc<str> = Till::idle().token.into();
    let opening = Arc::new(Semaphore::new(OPENING));
    let (opened, mut results) = mpsc::channel(OPENING);
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (tls, token, opening, opened) =
            (tls.clone(), token.clone(), opening.clone(), opened.clone());
        tasks.spawn(async move {
            let permit = opening.acquire_owned().await;
            let session = Session::open(&tls, agent, source(i), &token).await;
            drop(permit);
            match session {
                Ok(session) => {
                    let _ = opened.send(Ok(())).await;
                    session.idle().await;
                }
                Err(err) => {
                    let _ = opened.send(Err(err)).await;
                }
            }
        });
    }
    drop(opened);
    for _ in 0..count {
        match results.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => return Err(err),
            None => return Err(ClientError::Closed),
        }
    }
    Ok(IdleClients { tasks })
}
