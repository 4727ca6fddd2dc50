//! One browser's WebSocket: `hello` first, then one `select!` loop over the browser's
//! frames, the session's subscription to the engine's bus, a ping timer, an idle timer and
//! the shutdown signal.
//!
//! Generic over any `Sink`/`Stream` of tungstenite messages, so tests can drive it through
//! channels or a real socket alike. Decisions where the contract is silent:
//! - close codes: 4401 (no/invalid `hello`, till revoked), 4408 (60 s without any frame),
//!   1001 (agent shutting down), 1009 (message over 64 KiB), 1012 (reconnect: the till's
//!   rights changed, or revocations were missed);
//! - `watch` answers with the terminal's latest record, if any, marked `"replay": true`
//!   (§7.1), then streams its changes;
//! - `discover` (operators, one a minute) is answered with `discovering` at once and with
//!   `discovered` when the sweep ends, seconds later; the session serves its other messages
//!   meanwhile;
//! - `resolve` is answered by the bus, except for another till's record (the blocked
//!   terminal's exception, §7.3), which is answered with the resolved record;
//! - a `pay` that starts a transaction is answered by the `accepted` record from the bus; a
//!   replayed `pay` (same id and parameters) by the current record;
//! - after `welcome` come the till's records still `unknown` (unresolved) or finished in the
//!   last 10 minutes (for an operator: every till's unresolved `unknown`), marked
//!   `"replay": true`, then live changes;
//! - every record leaves as the till may see it (§7.3, [`shown_to`]): in full for an
//!   operator and for a cashier's own records, redacted otherwise; `status` answers
//!   operators only;
//! - the engine hands the session its subscription together with the records replayed
//!   after `welcome`, and the latest record with each `watch`, so no change falls between
//!   a snapshot and the live stream nor comes in both (see `engine::feed`); the bus wakes
//!   the session only for those changes (an operator's: every till's), and unsubscribes it
//!   when the session ends;
//! - a session whose subscription overflowed (it was not reading) is resent every record it
//!   cares about that changed since the last one it forwarded;
//! - changes already announced when the session takes one (a payment's first states, made
//!   durable by one fsync) go out with it in one write: one TLS record, one syscall.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::budget::Slot;
use super::messages::{CertificateInfo, ClientMessage, ServerMessage, TillPresence, API_VERSION};
use super::App;
use crate::access::{AuthError, Closing, Till};
use crate::config::Role;
use crate::engine::events::{self, Subscription};
use crate::engine::record::format_rfc3339;
use crate::engine::{shown_to, ApiError, CancelAnswer, ErrorCode, PayAnswer, Record};

/// Close code: no valid `hello` in time.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: no frame from the browser for the idle timeout.
pub const CLOSE_IDLE: u16 = 4408;
/// Records listed by `status`.
const STATUS_RECORDS: usize = 100;
/// Most announcements a session forwards in one write (it then serves its socket again).
const BATCH: usize = 4;

/// Runs one WebSocket session to its end, on the connection holding `slot`.
pub async fn run<S>(mut socket: S, app: Arc<App>, peer: IpAddr, slot: Arc<Slot>)
where
    S: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin + Send,
{
    let Some(till) = authenticate(&mut socket, &app, peer).await else {
        return;
    };
    // An authenticated till keeps its place when a flood fills the connection budget.
    slot.authenticated();
    tracing::Span::current().record("till", tracing::field::display(&till.name));
    // The records replayed after `welcome` and the live changes, split by the engine.
    let (bus, replay) = app.engine.follow(&till);
    let session = Session {
        bus,
        replay,
        deferred: None,
        socket,
        app,
        till,
        watched: HashSet::new(),
        last_seq: 0,
    };
    session.run().await
}

/// Waits for `hello` (a `pair` may come first: it is answered with `paired`, then `hello`
/// is still expected); answers anything else with an error and close 4401.
async fn authenticate<S>(socket: &mut S, app: &App, peer: IpAddr) -> Option<Till>
where
    S: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin,
{
    let deadline = Instant::now() + app.options.hello_timeout;
    let refusal =
        loop {
            let text = match timeout_at(deadline, socket.next()).await {
                Err(_) => {
                    close(socket, app, CLOSE_UNAUTHORIZED, "hello expected in time").await;
                    return None;
                }
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Binary(_) | Message::Frame(_)))) => "".into(),
                Ok(Some(Err(err))) => {
                    on_read_error(socket, app, err).await;
                    return None;
                }
                Ok(_) => return None,
            };
            match ClientMessage::parse(&text) {
                Ok(ClientMessage::Hello { token }) => match app.access.authenticate(&token, peer) {
                    Ok(till) => return Some(till),
                    Err(err) => break auth_refusal(err),
                },
                Ok(ClientMessage::Pair { code }) => match pair_apart(app, code, peer).await {
                    Ok((till, token)) => {
                        let paired = ServerMessage::Paired {
                            till: till.name,
                            token,
                        };
                        if !send(socket, app, paired).await {
                            return None;
                        }
                    }
                    Err(err) => break auth_refusal(err),
                },
                _ => break ApiError::new(
                    ErrorCode::Unauthorized,
                    "the first message must be hello with the till's token (or pair with a code)",
                ),
            }
        };
    // The access layer logs failures, one line a minute per address.
    tracing::debug!(%peer, code = ?refusal.code, "websocket authentication refused");
    if send(socket, app, ServerMessage::from(refusal)).await {
        close(socket, app, CLOSE_UNAUTHORIZED, "unauthorized").await;
    }
    None
}

/// Pairs on the blocking pool: pairing writes and fsyncs the till store, which must not hold
/// a runtime worker, and the sessions and payments waiting on it, for a slow disk's time.
async fn pair_apart(app: &App, code: String, peer: IpAddr) -> Result<(Till, String), AuthError> {
    let (access, span) = (Arc::clone(&app.access), tracing::Span::current());
    tokio::task::spawn_blocking(move || span.in_scope(|| access.pair(&code, peer)))
        .await
        .unwrap_or(Err(AuthError::Unavailable))
}

/// The `error` a failed `hello` or `pair` gets.
fn auth_refusal(err: AuthError) -> ApiError {
    match err {
        AuthError::Unauthorized => ApiError::new(
            ErrorCode::Unauthorized,
            "unknown token or code: check the till's token, or pair the till again with a new code",
        ),
        AuthError::RateLimited => ApiError::new(
            ErrorCode::RateLimited,
            "too many attempts from this address: wait a minute",
        ),
        AuthError::Unavailable => ApiError::new(
            ErrorCode::Internal,
            "the agent cannot read its paired tills: see the agent's log",
        ),
    }
}

/// Largest frame the agent writes. tungstenite keeps its write buffer at the size of the
/// largest frame it wrote, for the socket's whole life: a `welcome` listing 200 terminals
/// (~20 KB) sent whole doubled the memory of every idle display client. Longer messages go
/// out as a text frame and continuation frames (RFC 6455 §5.4), each flushed in turn; a
/// transaction record (about 1 KB with its receipt) still fits one frame.
const MAX_FRAME: usize = 2 * 1024;

/// Sends one message under the send deadline; `false` when the socket is gone or stuck.
async fn send<S>(socket: &mut S, app: &App, message: ServerMessage) -> bool
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    send_text(socket, app, message.to_json()).await
}

/// Sends one message's JSON text under the send deadline, in frames if it is long.
async fn send_text<S>(socket: &mut S, app: &App, text: String) -> bool
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let frames = async {
        for frame in frames(text) {
            socket.send(frame).await?;
        }
        Ok::<(), WsError>(())
    };
    matches!(timeout(app.options.send_timeout, frames).await, Ok(Ok(())))
}

/// `text` as one text message, or cut into frames of at most [`MAX_FRAME`] bytes.
fn frames(text: String) -> Vec<Message> {
    if text.len() <= MAX_FRAME {
        return vec![Message::text(text)];
    }
    let bytes = Bytes::from(text);
    let count = bytes.len().div_ceil(MAX_FRAME);
    let frame = |i: usize| {
        let part = bytes.slice(i * MAX_FRAME..bytes.len().min((i + 1) * MAX_FRAME));
        let data = if i == 0 { Data::Text } else { Data::Continue };
        Message::Frame(Frame::message(part, OpCode::Data(data), i + 1 == count))
    };
    (0..count).map(frame).collect()
}

/// Sends a close frame, best effort.
async fn close<S>(socket: &mut S, app: &App, code: u16, reason: &str)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = timeout(
        app.options.send_timeout,
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

/// The close a read error calls for when the browser broke a rule (rather than the
/// connection breaking): 1009 for a message over the limit, 1007 for text that is not UTF-8.
fn close_for(err: &WsError) -> Option<(CloseCode, &'static str)> {
    match err {
        WsError::Capacity(_) => Some((CloseCode::Size, "message too big")),
        WsError::Utf8(_) => Some((CloseCode::Invalid, "text frame is not UTF-8")),
        _ => None,
    }
}

/// Ends the socket after a read error, with the close code it calls for (before or after
/// `hello` alike).
async fn on_read_error<S>(socket: &mut S, app: &App, err: WsError)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    match close_for(&err) {
        Some((code, reason)) => {
            tracing::info!(%err, "websocket frame refused");
            close(socket, app, code.into(), reason).await;
        }
        None => tracing::debug!(%err, "websocket read failed"),
    }
}

/// The channel of a session's deferred answers, boxed: a channel allocates 32 slots at once
/// (5 KB of unboxed messages).
type Deferred = (
    UnboundedSender<Box<ServerMessage>>,
    UnboundedReceiver<Box<ServerMessage>>,
);

/// The next deferred answer; never, while no search was started.
async fn next_deferred(deferred: &mut Option<Deferred>) -> Option<Box<ServerMessage>> {
    match deferred {
        Some((_, answers)) => answers.recv().await,
        None => std::future::pending().await,
    }
}

struct Session<S> {
    socket: S,
    /// Announcements of this till's records and of the watched terminals' records.
    bus: Subscription,
    /// What `welcome` is followed by (taken by `greet`).
    replay: Vec<Arc<Record>>,
    /// Answers made later, off the loop (a terminal search): where they are sent and where
    /// the loop reads them. Opened by the first search: an idle session holds no channel.
    deferred: Option<Deferred>,
    app: Arc<App>,
    till: Till,
    watched: HashSet<String>,
    /// Bus position: records with a seq up to here were forwarded or skipped.
    last_seq: u64,
}

/// Why the loop stops.
struct Stop;

impl<S> Session<S>
where
    S: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin + Send,
{
    async fn run(mut self) {
        let _seat = self.app.presence.join(&self.till.name, self.till.role);
        let mut revocations = self.app.access.revocations();
        if self.greet().await.is_err() {
            return;
        }
        let options = self.app.options;
        let mut ping = tokio::time::interval_at(
            Instant::now() + options.ping_interval,
            options.ping_interval,
        );
        let idle = sleep_until(Instant::now() + options.idle_timeout);
        tokio::pin!(idle);
        // Made once: a `cancelled()` made on each turn would join and leave the waiters of
        // the one token every session shares, under its lock, at every message.
        let shutdown = self.app.shutdown.clone();
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        loop {
            let step = tokio::select! {
                frame = self.socket.next() => {
                    idle.as_mut().reset(Instant::now() + options.idle_timeout);
                    // Boxed: a request's future (a `pay` through the engine) is the largest
                    // state here, and an idle session would otherwise keep room for it.
                    Box::pin(self.on_frame(frame)).await
                }
                event = self.bus.recv() => self.on_event(event).await,
                revoked = revocations.recv() => self.on_revocation(revoked).await,
                Some(answer) = next_deferred(&mut self.deferred) => self.reply(*answer).await,
                _ = ping.tick() => self.write(Message::Ping(Default::default())).await,
                _ = &mut idle => {
                    self.close(CLOSE_IDLE, "no frame for too long").await;
                    Err(Stop)
                }
                () = &mut stopping => {
                    self.close(CloseCode::Away.into(), "agent shutting down").await;
                    Err(Stop)
                }
            };
            if step.is_err() {
                break;
            }
        }
        tracing::debug!("session ended");
    }

    async fn greet(&mut self) -> Result<(), Stop> {
        let engine = &self.app.engine;
        let welcome = ServerMessage::Welcome {
            agent: crate::AGENT,
            api: API_VERSION,
            till: self.till.name.clone(),
            role: self.till.role,
            terminals: engine.terminals(&self.till),
        };
        let replay = std::mem::take(&mut self.replay);
        tracing::info!(replayed = replay.len(), "till connected");
        self.reply(welcome).await?;
        for record in replay {
            let shown = shown_to(&self.till, record);
            self.reply(ServerMessage::replayed(shown)).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Result<(), Stop> {
        match frame {
            Some(Ok(Message::Text(text))) => self.on_text(&text).await,
            Some(Ok(Message::Binary(_))) => {
                let error =
                    ApiError::bad_request("binary frames are not supported: send JSON text");
                self.reply(error.into()).await
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
            Some(Ok(Message::Close(_))) => {
                // Sends the close reply tungstenite queued, so the browser sees a clean close.
                let _ = timeout(self.app.options.send_timeout, self.socket.close()).await;
                Err(Stop)
            }
            None => Err(Stop),
            Some(Err(err)) => {
                on_read_error(&mut self.socket, &self.app, err).await;
                Err(Stop)
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Stop> {
        let reply = match ClientMessage::parse(text) {
            Ok(message) => self.on_message(message).await,
            Err(error) => Err(error),
        };
        match reply {
            Ok(Some(message)) => self.reply(message).await,
            Ok(None) => Ok(()),
            Err(error) => {
                tracing::debug!(code = ?error.code, message = %error.message, "request refused");
                self.reply(error.into()).await
            }
        }
    }

    async fn on_message(
        &mut self,
        message: ClientMessage,
    ) -> Result<Option<ServerMessage>, ApiError> {
        let engine = self.app.engine.clone();
        let till = &self.till;
        // `get` and `resolve` answer with what the engine lets this till see.
        let record = |r: Arc<Record>| Some(ServerMessage::Transaction(r));
        match message {
            ClientMessage::Hello { .. } | ClientMessage::Pair { .. } => Err(ApiError::bad_request(
                format!("already authenticated as till {}", till.name),
            )),
            ClientMessage::Pay(order) => match engine.pay(till, &order).await? {
                PayAnswer::Started(_) => Ok(None),
                PayAnswer::Existing(existing) => Ok(record(existing)),
            },
            ClientMessage::Cancel { id } => match engine.cancel(till, &id)? {
                CancelAnswer::Cancelled => Ok(None),
                CancelAnswer::AlreadyNotSent(done) => Ok(record(done)),
            },
            ClientMessage::Get { id } => Ok(record(engine.get(till, &id)?)),
            ClientMessage::Resolve { id, outcome, note } => {
                let resolved = engine.resolve(till, &id, outcome, note).await?;
                // Another till's record (the §7.3 exception) does not come on this bus.
                Ok((!self.cares(&resolved)).then(|| record(resolved)).flatten())
            }
            ClientMessage::Watch { terminal } => {
                let latest = engine.watch(till, &self.bus, &terminal)?;
                self.watched.insert(terminal);
                Ok(latest.map(|r| ServerMessage::replayed(shown_to(till, r))))
            }
            ClientMessage::Terminals => Ok(Some(ServerMessage::Terminals {
                terminals: engine.terminals(till),
            })),
            ClientMessage::Status => self.status().map(Some),
            ClientMessage::Discover { subnet, port } => {
                let terminals = engine.all_terminals();
                let sweep = self
                    .app
                    .discovery
                    .admit(till, subnet.as_deref(), port, &terminals)?;
                // Answered at once, then when done (seconds): the session goes on meanwhile.
                let started = sweep.started();
                let deferred = self.deferred.get_or_insert_with(unbounded_channel);
                let outbox = deferred.0.clone();
                tokio::spawn(async move {
                    let _ = outbox.send(Box::new(sweep.run().await));
                });
                Ok(Some(started))
            }
        }
    }

    /// The operator page's overview; other roles are refused (§7.3).
    fn status(&self) -> Result<ServerMessage, ApiError> {
        if self.till.role != Role::Operator {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the status overview is for operator tills, and till {} is a {}: sign in with an operator's token (caisse-ap-relay pair --role operator --till NAME)",
                    self.till.name,
                    self.till.role.as_str()
                ),
            ));
        }
        let app = &self.app;
        let tills = app
            .access
            .configured()
            .into_iter()
            .map(|till| TillPresence {
                sessions: app.presence.sessions(&till.name),
                name: till.name,
                role: till.role,
            });
        let recent = app.engine.recent(&self.till, STATUS_RECORDS);
        Ok(ServerMessage::Status {
            terminals: app.engine.terminals(&self.till),
            transactions: recent,
            tills: tills.collect(),
            certificate: CertificateInfo {
                not_after: format_rfc3339(app.certs.leaf_not_after()),
                fingerprint: app.certs.fingerprint(),
            },
            webhooks: app.webhooks.statuses(),
        })
    }

    /// Closes the socket when this till's token stops working (4401), or when its rights
    /// changed (1012: the browser reconnects and its new `hello` gets the new rights).
    async fn on_revocation(&mut self, revoked: Result<Closing, RecvError>) -> Result<(), Stop> {
        match revoked {
            Ok(closing) if closing.till() != self.till.name => Ok(()),
            Ok(Closing::Revoked(_)) => {
                tracing::info!("till revoked; closing its socket");
                self.close(CLOSE_UNAUTHORIZED, "till revoked").await;
                Err(Stop)
            }
            Ok(Closing::RightsChanged(_)) => {
                tracing::info!("till's rights changed; closing its socket");
                self.close(
                    CloseCode::Restart.into(),
                    "till's rights changed, reconnect",
                )
                .await;
                Err(Stop)
            }
            Err(RecvError::Lagged(_)) => {
                // Revocations were missed: reconnecting makes the till authenticate again.
                self.close(CloseCode::Restart.into(), "please reconnect")
                    .await;
                Err(Stop)
            }
            Err(RecvError::Closed) => Err(Stop),
        }
    }

    /// Forwards a change the till cares about, with every announcement already queued
    /// behind it (up to [`BATCH`] in all) in the same write: a payment's first states are often
    /// announced together, after one fsync.
    async fn on_event(
        &mut self,
        event: Result<Arc<Record>, events::RecvError>,
    ) -> Result<(), Stop> {
        let mut fed = 0;
        let (mut next, mut taken) = (Some(event), 0);
        while let Some(event) = next.take() {
            taken += 1;
            match event {
                Ok(record) if record.seq > self.last_seq => {
                    self.last_seq = record.seq;
                    if self.cares(&record) {
                        let shown = shown_to(&self.till, record);
                        self.feed(ServerMessage::Transaction(shown), &mut fed)
                            .await?;
                    }
                }
                Ok(_) => {}
                Err(events::RecvError::Lagged(missed)) => {
                    self.flush(&mut fed).await?;
                    self.resynchronise(missed).await?;
                }
                Err(events::RecvError::Closed) => return Err(Stop),
            }
            if taken < BATCH {
                next = self.bus.recv().now_or_never();
            }
        }
        self.flush(&mut fed).await
    }

    /// Resends every record the till cares about that changed since the last one forwarded.
    async fn resynchronise(&mut self, missed: u64) -> Result<(), Stop> {
        tracing::info!(missed, "session lagged; resynchronising");
        let records = {
            let session = &*self;
            session
                .app
                .engine
                .changed_since(session.last_seq, |r| session.cares(r))
        };
        let newest = records.iter().map(|r| r.seq).max().unwrap_or(0);
        self.forward_all(records).await?;
        // Later bus entries up to `newest` are older states of what was just sent.
        self.last_seq = self.last_seq.max(newest);
        Ok(())
    }

    /// Queues `message` for the next [`Session::flush`], `fed` counting the bytes queued.
    /// tungstenite keeps its write buffer at the largest size it reached, so the queue stays
    /// within [`MAX_FRAME`]: what would pass it is flushed first, and a longer message is
    /// sent in frames at once.
    async fn feed(&mut self, message: ServerMessage, fed: &mut usize) -> Result<(), Stop> {
        let text = message.to_json();
        if *fed + text.len() > MAX_FRAME {
            self.flush(fed).await?;
        }
        if text.len() > MAX_FRAME {
            return self.reply_text(text).await;
        }
        *fed += text.len();
        let queued = timeout(
            self.app.options.send_timeout,
            self.socket.feed(Message::text(text)),
        );
        match queued.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop),
        }
    }

    /// Writes what [`Session::feed`] queued, if anything.
    async fn flush(&mut self, fed: &mut usize) -> Result<(), Stop> {
        if std::mem::take(fed) == 0 {
            return Ok(());
        }
        match timeout(self.app.options.send_timeout, self.socket.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop),
        }
    }

    fn cares(&self, record: &Record) -> bool {
        let overseen = self.till.role == Role::Operator && self.till.may_use(&record.terminal);
        overseen || record.till == self.till.name || self.watched.contains(&record.terminal)
    }

    async fn forward_all(&mut self, records: Vec<Arc<Record>>) -> Result<(), Stop> {
        for record in records {
            self.forward(&record).await?;
        }
        Ok(())
    }

    async fn forward(&mut self, record: &Arc<Record>) -> Result<(), Stop> {
        let shown = shown_to(&self.till, Arc::clone(record));
        self.reply(ServerMessage::Transaction(shown)).await
    }

    async fn reply(&mut self, message: ServerMessage) -> Result<(), Stop> {
        self.reply_text(message.to_json()).await
    }

    async fn reply_text(&mut self, text: String) -> Result<(), Stop> {
        if send_text(&mut self.socket, &self.app, text).await {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    async fn write(&mut self, frame: Message) -> Result<(), Stop> {
        match timeout(self.app.options.send_timeout, self.socket.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop),
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        close(&mut self.socket, &self.app, code, reason).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use serde_json::{json, Value};
    use tokio::sync::mpsc;
    use tokio_util::sync::PollSender;

    use super::*;
    use crate::certs::Certificates;
    use crate::config::{Role, Secret, TillConfig, TlsConfig};
    use crate::engine::{Engine, EngineOptions, PayOrder};
    use crate::sim::{Behaviour, Simulator};
    use crate::web::WebOptions;

    #[tokio::test]
    async fn a_long_message_goes_out_in_frames_and_arrives_whole() {
        use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
        use tokio_tungstenite::WebSocketStream;
        let (agent_end, browser_end) = tokio::io::duplex(64 * 1024);
        let mut agent = WebSocketStream::from_raw_socket(agent_end, WsRole::Server, None).await;
        let mut browser = WebSocketStream::from_raw_socket(browser_end, WsRole::Client, None).await;
        // Multi-byte characters, so that some frame boundaries fall inside one.
        let long = "é€x".repeat(MAX_FRAME);
        let parts = frames(long.clone());
        assert!(parts.len() > 3, "{} frames", parts.len());
        assert_eq!(frames("short".into()), [Message::text("short")]);
        let sending = async {
            for part in parts {
                agent.send(part).await.unwrap();
            }
        };
        let (received, ()) = tokio::join!(browser.next(), sending);
        assert_eq!(received.unwrap().unwrap(), Message::text(long));
    }

    /// A socket made of two channels; the outgoing one holds a single message, so the
    /// session blocks on its second send until the test reads. Counts its flushes.
    struct Pipe {
        incoming: mpsc::Receiver<Result<Message, WsError>>,
        outgoing: PollSender<Message>,
        flushes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Pipe {
        fn new(
            incoming: mpsc::Receiver<Result<Message, WsError>>,
            outgoing: mpsc::Sender<Message>,
        ) -> Pipe {
            Pipe {
                incoming,
                outgoing: PollSender::new(outgoing),
                flushes: Arc::default(),
            }
        }
    }

    impl Stream for Pipe {
        type Item = Result<Message, WsError>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.incoming.poll_recv(cx)
        }
    }

    impl Sink<Message> for Pipe {
        type Error = WsError;
        fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Pin::new(&mut self.outgoing)
                .poll_ready(cx)
                .map_err(|_| WsError::ConnectionClosed)
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
            Pin::new(&mut self.outgoing)
                .start_send(item)
                .map_err(|_| WsError::ConnectionClosed)
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            self.flushes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
    }

    fn till(name: &str, token: &str) -> TillConfig {
        TillConfig {
            name: name.into(),
            token: Some(Secret(token.into())),
            terminals: None,
            role: Role::Cashier,
        }
    }

    /// An app with terminals tpe-1 and tpe-2 on one simulator, its directory and its
    /// simulator (kept alive with it).
    struct Shop {
        app: Arc<App>,
        _dir: tempfile::TempDir,
        _sim: Simulator,
    }

    /// A shop whose sessions' bus subscriptions hold `bus_capacity` announcements.
    async fn shop(bus_capacity: usize) -> Shop {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulator::spawn(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            Behaviour::default(),
        );
        let app = app(dir.path(), &sim, bus_capacity).await;
        Shop {
            app,
            _dir: dir,
            _sim: sim,
        }
    }

    async fn app(dir: &std::path::Path, sim: &Simulator, bus_capacity: usize) -> Arc<App> {
        let address = sim.addr().to_string();
        let terminals: Vec<_> = ["tpe-1", "tpe-2"]
            .map(|name| crate::engine::sample_terminal(name, &address))
            .into();
        let options = EngineOptions {
            bus_capacity,
            probe_at_start: false,
            ..EngineOptions::default()
        };
        let engine = Engine::start(&terminals, &dir.join("data"), options, None)
            .await
            .unwrap();
        let tls = TlsConfig {
            dir: dir.join("certs"),
            own: None,
            extra_names: Vec::new(),
            name_constraints: false,
        };
        let certs = Certificates::load_or_create(&tls).unwrap();
        let tills = [
            till("till-1", "token-one-0123456789"),
            till("till-2", "token-two-0123456789"),
        ];
        let access = crate::access::Access::new(&tills, &dir.join("data")).unwrap();
        let receipts = crate::receipt::Receipts::load_or_create(&dir.join("data"), "test").unwrap();
        let webhooks = crate::webhook::Webhooks::prepare(&[], &engine, &dir.join("data")).unwrap();
        App::new(
            engine,
            Arc::new(access),
            certs,
            Arc::new(receipts),
            Arc::new(webhooks),
            &crate::config::ServerConfig::default(),
            8443,
            WebOptions::default(),
        )
    }

    /// A place in a connection budget of its own.
    fn slot() -> Arc<Slot> {
        let budget = crate::web::budget::Budget::new(4, 4);
        Arc::new(budget.admit(IpAddr::from([127, 0, 0, 1])).unwrap())
    }

    fn text(message: Option<Message>) -> Value {
        match message {
            Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    async fn pay(app: &App, till: &str, id: &str, terminal: &str) {
        let till = cashier(till);
        let order: PayOrder = serde_json::from_value(
            json!({"id": id, "terminal": terminal, "amount": 100, "currency": "EUR"}),
        )
        .unwrap();
        app.engine.pay(&till, &order).await.unwrap();
    }

    fn cashier(name: &str) -> Till {
        Till {
            name: name.into(),
            role: Role::Cashier,
            terminals: None,
        }
    }

    /// Pays each `(id, terminal)` for `till`, then waits on the bus until all are final.
    async fn pay_to_the_end(app: &App, till: &str, payments: &[(&str, &str)]) {
        let mut bus = app.engine.subscribe();
        for (id, terminal) in payments {
            pay(app, till, id, terminal).await;
        }
        let done = || {
            payments.iter().all(|(id, _)| {
                let record = app.engine.get(&cashier(till), id);
                record.is_ok_and(|r| r.state.is_final())
            })
        };
        let wait = async {
            while !done() {
                let _ = bus.recv().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap();
    }

    /// A session of till-1 on `app` through a [`Pipe`] that holds one message, past its
    /// `welcome`: what it sends, its flush count, and the browser's end (kept open).
    async fn greeted(
        app: &Arc<App>,
    ) -> (
        mpsc::Receiver<Message>,
        Arc<std::sync::atomic::AtomicUsize>,
        mpsc::Sender<Result<Message, WsError>>,
    ) {
        let (to_session, incoming) = mpsc::channel(8);
        let (outgoing, mut from_session) = mpsc::channel(1);
        let pipe = Pipe::new(incoming, outgoing);
        let flushes = Arc::clone(&pipe.flushes);
        tokio::spawn(run(
            pipe,
            Arc::clone(app),
            IpAddr::from([127, 0, 0, 1]),
            slot(),
        ));
        let hello = json!({"type": "hello", "token": "token-one-0123456789"}).to_string();
        to_session.send(Ok(Message::text(hello))).await.unwrap();
        assert_eq!(text(from_session.recv().await)["type"], "welcome");
        (from_session, flushes, to_session)
    }

    #[tokio::test]
    async fn a_lagging_session_is_resent_what_it_missed() {
        let Shop { app, .. } = &shop(2).await;
        let (mut from_session, _, _to_session) = greeted(app).await;

        // The session blocks on its second record while its channel (capacity 2) overflows
        // with the rest of the till's records: the announcement never waits for it, and the
        // final records are dropped from its channel.
        pay_to_the_end(app, "till-1", &[("a", "tpe-1"), ("b", "tpe-2")]).await;

        // Reaching both `approved` at all is the proof: the resynchronisation resent them.
        let mut approved = HashSet::new();
        while approved.len() < 2 {
            let message = tokio::time::timeout(Duration::from_secs(5), from_session.recv()).await;
            let message = text(message.unwrap());
            if message["state"] == "approved" {
                approved.insert(message["id"].to_string());
            }
        }
    }

    #[tokio::test]
    async fn changes_announced_while_the_session_writes_go_out_in_one_flush() {
        let Shop { app, .. } = &shop(16).await;
        let (mut from_session, flushes, _to_session) = greeted(app).await;
        let before = flushes.load(std::sync::atomic::Ordering::Relaxed);

        // The session writes the first change, then blocks on the next one (the test does
        // not read) while the later states of both payments are announced: more than one
        // write's worth, none lost, fewer writes than messages.
        pay_to_the_end(app, "till-1", &[("a", "tpe-1"), ("b", "tpe-2")]).await;
        let mut states: HashMap<String, Vec<String>> = HashMap::new();
        let mut messages = 0;
        let finished = |states: &HashMap<String, Vec<String>>| {
            let last = |id: &str| states.get(id).and_then(|s| s.last()).map(String::as_str);
            last("a") == Some("approved") && last("b") == Some("approved")
        };
        while !finished(&states) {
            let message = tokio::time::timeout(Duration::from_secs(5), from_session.recv());
            let message = text(message.await.unwrap());
            let id = message["id"].as_str().unwrap().to_owned();
            let state = message["state"].as_str().unwrap().to_owned();
            states.entry(id).or_default().push(state);
            messages += 1;
        }
        for id in ["a", "b"] {
            assert_eq!(
                states[id],
                ["accepted", "connecting", "sent", "approved"],
                "{id}"
            );
        }
        let writes = flushes.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(
            writes < messages,
            "{writes} flushes for {messages} messages"
        );
    }

    #[tokio::test]
    async fn rule_breaking_frames_close_with_their_code_even_before_hello() {
        use tokio_tungstenite::tungstenite::error::CapacityError;
        let Shop { app, .. } = &shop(2).await;
        let too_long = CapacityError::MessageTooLong {
            size: 70_000,
            max_size: 65_536,
        };
        let cases = [
            (WsError::Utf8("invalid utf-8 sequence".into()), 1007),
            (WsError::Capacity(too_long), 1009),
        ];
        for (error, code) in cases {
            let (to_session, incoming) = mpsc::channel(8);
            let (outgoing, mut from_session) = mpsc::channel(1);
            let pipe = Pipe::new(incoming, outgoing);
            let session = tokio::spawn(run(
                pipe,
                Arc::clone(app),
                IpAddr::from([127, 0, 0, 1]),
                slot(),
            ));
            to_session.send(Err(error)).await.unwrap();
            match from_session.recv().await {
                Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), code),
                other => panic!("expected close {code}, got {other:?}"),
            }
            session.await.unwrap();
        }
    }
}
