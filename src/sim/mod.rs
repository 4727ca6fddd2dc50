//! A Caisse-AP terminal simulator on raw TCP, for `simulate`, the demo terminal and tests.
//!
//! Like a real terminal it reads one request per connection, answers it (after
//! [`Behaviour::delay`]), and keeps the socket open until the client closes it. It answers
//! identification (CD=I), echoes the amount zero-padded to 7 digits, answers requests missing a
//! mandatory field (CZ, CJ, CA, CB, CD, CE) with AE=01 AF=09, approves cheque (CC=00C) and
//! ANCV (CC=00V) requests with that CC, echoes CF, returns tickets (ZT, customer and/or
//! merchant, approved or failed) when the request's CK asks, and serves many connections at
//! once. Every outcome and fault of the
//! contract is a [`Behaviour`], changeable at runtime with [`Simulator::set_behaviour`].
//!
//! The demo terminal ([`Behaviour::demo`]) approves after 1.5 s, except for these amounts,
//! picked by their last two digits in minor units (e.g. 12.91 EUR):
//!
//! | cents | what happens | outcome at the POS |
//! |---|---|---|
//! | ,91 | declined AF=04 | declined, "Refusée" |
//! | ,92 | declined AF=11 (red key) | declined, "abandon opérateur" |
//! | ,93 | approved for half the amount | approved, partial |
//! | ,94 | closes without answering | unknown, `connection_lost` |
//! | ,95 | answers with the wrong currency | unknown, `mismatch` |
//! | ,96 | answers garbage | unknown, `invalid_answer` |
//! | ,97 | approved, CB contactless | approved |

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod answer;
mod behaviour;
mod conn;
mod ticket;

pub use behaviour::{Behaviour, Fault, Outcome, ParseError};

/// How long `slow-accept` waits before each accept.
pub const SLOW_ACCEPT: Duration = Duration::from_secs(1);

/// State shared by the accept loop, the connections and the handle.
struct Shared {
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<String>>,
    count: watch::Sender<usize>,
}

impl Shared {
    // std Mutex: sections are a clone or a push, never held across an await.
    fn behaviour(&self) -> Behaviour {
        self.behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, frame: String) {
        tracing::debug!(bytes = frame.len(), "simulator received a request");
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests.push(frame);
        self.count.send_replace(requests.len());
    }
}

/// A running simulator; stops on drop or [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Simulator {
    /// Starts serving on `listener` (bind port 0 in tests) with `behaviour`.
    pub fn spawn(listener: TcpListener, behaviour: Behaviour) -> Simulator {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(accept_loop(listener, shared.clone(), cancel.clone()));
        Simulator {
            addr,
            shared,
            cancel,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request frame received, in order (Latin-1 decoded).
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// Waits until at least `n` requests were received.
    pub async fn wait_requests(&self, n: usize) {
        let mut count = self.shared.count.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = count.wait_for(|c| *c >= n).await;
    }

    /// The current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.shared.behaviour()
    }

    /// Changes the behaviour for the next connections.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .shared
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(self) {
        self.cancel.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        if shared.behaviour().fault == Some(Fault::SlowAccept) {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(SLOW_ACCEPT) => {}
            }
        }
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (shared, cancel) = (shared.clone(), cancel.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        result = conn::serve(stream, &shared) => if let Err(err) = result {
                            tracing::debug!(%err, %peer, "simulator connection failed");
                        }
                    }
                });
            }
            Err(err) => {
                // Transient (e.g. out of file descriptors): back off instead of spinning.
                tracing::warn!(%err, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
