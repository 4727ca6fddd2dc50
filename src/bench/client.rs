//! A till as a browser would be: TLS trusting only the agent's CA, a WebSocket on `/ws`,
//! `hello` with a static token, then `pay` and the `transaction` messages (contract §5).
//!
//! Only what the bench needs is decoded (`type`, `id`, `state`, `code`, `message`), to keep
//! the client's own cost low. Every wait is bounded by [`WAIT`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::certs;
use crate::engine::record::State;

/// Longest wait for any single answer from the agent.
pub const WAIT: Duration = Duration::from_secs(10);
/// How many times a `pay` refused with `terminal_busy` is sent again.
const BUSY_RETRIES: u32 = 1000;
/// Pause before sending a `pay` refused with `terminal_busy` again.
const BUSY_PAUSE: Duration = Duration::from_millis(1);
/// The name the client asks for: the generated leaf always carries it.
const SERVER_NAME: &str = "localhost";

/// Why a client step failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The agent's CA could not be loaded.
    #[error("agent CA: {0}")]
    Ca(#[from] certs::CertError),
    /// TCP or TLS failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    /// The agent sent something that is not a JSON message.
    #[error("bad message from the agent: {0}")]
    Json(#[from] serde_json::Error),
    /// The agent answered with an `error`.
    #[error("agent refused ({code}): {message}")]
    Refused {
        /// Error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The socket closed.
    #[error("the agent closed the socket")]
    Closed,
    /// No answer within [`WAIT`].
    #[error("no {0} within {WAIT:?}")]
    Timeout(&'static str),
}

/// TLS client settings trusting only the agent's CA.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
}

impl Tls {
    /// A client trusting only `ca_pem`.
    pub fn trusting(ca_pem: &str) -> Result<Tls, ClientError> {
        let roots = certs::root_store(ca_pem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| ClientError::Io(std::io::Error::other(err)))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// TCP from `source` (port chosen by the system) to `agent`, then a TLS handshake.
    pub async fn connect(
        &self,
        agent: SocketAddr,
        source: IpAddr,
    ) -> Result<TlsStream<TcpStream>, ClientError> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let tcp = socket.connect(agent).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
        Ok(self.connector.connect(name, tcp).await?)
    }
}

/// How a `pay` ended, and when its intermediate states arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    /// The final state.
    pub state: State,
    /// When the final state arrived.
    pub arrived: Instant,
    /// Arrival times of the states before it.
    pub marks: Marks,
}

/// Arrival times (from sending `pay`) of `accepted`, `connecting` and `sent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// `accepted` arrived.
    pub accepted: Option<Duration>,
    /// `connecting` arrived.
    pub connecting: Option<Duration>,
    /// `sent` arrived.
    pub sent: Option<Duration>,
}

impl Marks {
    fn note(&mut self, state: State, at: Duration) {
        let slot = match state {
            State::Accepted => &mut self.accepted,
            State::Connecting => &mut self.connecting,
            State::Sent => &mut self.sent,
            _ => return,
        };
        slot.get_or_insert(at);
    }
}

/// The fields of an agent → client message the bench looks at.
#[derive(Debug, Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    state: Option<State>,
    code: Option<String>,
    message: Option<String>,
}

/// An authenticated till connection.
pub struct Session {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    /// Final `transaction` messages that answered no open `pay` (duplicates).
    pub stray_finals: u64,
    /// `pay` messages refused with `terminal_busy` and sent again.
    pub busy_refusals: u64,
}

impl Session {
    /// Connects from `source`, sends `hello` with `token` and waits for `welcome`.
    pub async fn open(
        tls: &Tls,
        agent: SocketAddr,
        source: IpAddr,
        token: &str,
    ) -> Result<Session, ClientError> {
        let stream = tls.connect(agent, source).await?;
        let url = format!("wss://{SERVER_NAME}:{}/ws", agent.port());
        // Small buffers: ten thousand idle clients share the machine with the agent.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20));
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        let mut session = Session {
            ws,
            stray_finals: 0,
            busy_refusals: 0,
        };
        session
            .send(json!({"type": "hello", "token": token}))
            .await?;
        session.until("welcome", |m| m.kind == "welcome").await?;
        Ok(session)
    }

    /// Sends `pay` for `amount` cents on `terminal` and waits for its final state. A
    /// `terminal_busy` refusal (the previous payment's lease not yet released) is counted
    /// and the same `pay` sent again after a millisecond, as a POS would.
    pub async fn pay(
        &mut self,
        id: &str,
        terminal: &str,
        amount: u64,
    ) -> Result<Paid, ClientError> {
        let mut retries = 0;
        loop {
            match self.pay_once(id, terminal, amount).await {
                Err(ClientError::Refused { code, .. })
                    if code == "terminal_busy" && retries < BUSY_RETRIES =>
                {
                    retries += 1;
                    self.busy_refusals += 1;
                    tokio::time::sleep(BUSY_PAUSE).await;
                }
                result => return result,
            }
        }
    }

    async fn pay_once(
        &mut self,
        id: &str,
        terminal: &str,
        amount: u64,
    ) -> Result<Paid, ClientError> {
        let pay = json!({"type": "pay", "id": id, "terminal": terminal,
            "amount": amount, "currency": "EUR"});
        let started = Instant::now();
        self.send(pay).await?;
        let mut marks = Marks::default();
        let last = self
            .until("final transaction", |m| {
                let ours = m.kind == "transaction" && m.id.as_deref() == Some(id);
                if let Some(state) = m.state.filter(|_| ours) {
                    marks.note(state, started.elapsed());
                }
                ours && is_final(m)
            })
            .await?;
        let state = last.state.expect("checked final");
        Ok(Paid {
            state,
            arrived: Instant::now(),
            marks,
        })
    }

    /// A `terminals` round trip: whatever the agent sent before its answer has arrived.
    pub async fn barrier(&mut self) -> Result<(), ClientError> {
        self.send(json!({"type": "terminals"})).await?;
        self.until("terminals", |m| m.kind == "terminals").await?;
        Ok(())
    }

    /// Reads (answering pings) until the socket closes or fails.
    pub async fn idle(mut self) {
        while let Some(Ok(_)) = self.ws.next().await {}
    }

    async fn send(&mut self, value: serde_json::Value) -> Result<(), ClientError> {
        Ok(self.ws.send(Message::text(value.to_string())).await?)
    }

    /// Reads until `wanted` matches; an `error` message fails, a final `transaction` that
    /// does not match is counted as stray.
    async fn until(
        &mut self,
        what: &'static str,
        mut wanted: impl FnMut(&Incoming) -> bool,
    ) -> Result<Incoming, ClientError> {
        loop {
            let message = self.next(what).await?;
            if wanted(&message) {
                return Ok(message);
            }
            if message.kind == "error" {
                return Err(ClientError::Refused {
                    code: message.code.unwrap_or_default(),
                    message: message.message.unwrap_or_default(),
                });
            }
            if message.kind == "transaction" && is_final(&message) {
                self.stray_finals += 1;
            }
        }
    }

    async fn next(&mut self, what: &'static str) -> Result<Incoming, ClientError> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout(what))?;
            match frame.ok_or(ClientError::Closed)?? {
                Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
                Message::Close(_) => return Err(ClientError::Closed),
                _ => {}
            }
        }
    }
}

fn is_final(message: &Incoming) -> bool {
    message.state.is_some_and(State::is_final)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_keep_the_first_arrival_of_each_intermediate_state() {
        let ms = Duration::from_millis;
        let mut marks = Marks::default();
        marks.note(State::Accepted, ms(1));
        marks.note(State::Accepted, ms(5));
        marks.note(State::Sent, ms(3));
        marks.note(State::Approved, ms(9));
        assert_eq!(marks.accepted, Some(ms(1)));
        assert_eq!(marks.connecting, None);
        assert_eq!(marks.sent, Some(ms(3)));
    }
}
