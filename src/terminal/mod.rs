//! The terminal driver: one Caisse-AP transaction over TCP.
//!
//! [`transact`] connects, lets the caller make `sent` durable ([`Hooks::before_send`]),
//! writes the whole request, reports progress and reads until the answer is complete, then
//! judges it. An answer that decides the payment is reported at once ([`Hooks::decided`]);
//! the driver still drains the connection for the fields that follow (api.md §7.1). The point is telling [`Outcome::NotSent`] (provably nothing written: safe to
//! retry) from [`Outcome::Unknown`] (some bytes went out: the card may be charged). The
//! exchange after connect ([`transact_on`]) is generic over the stream; the completion rule
//! and the answer checks are pure functions in [`crate::protocol`]. [`probe`] is the
//! identification ping (CD=I) for health checks.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::protocol::answer::{identify, IdentifyError, Identity};
use crate::protocol::mask::mask_frame;
use crate::protocol::{interpret, request, Answer, PaymentRequest, RequestError, Verdict};

mod session;

use session::{exchange, Exchange};

/// The driver's deadlines, each named for the phase it bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect (default 5 s).
    pub connect: Duration,
    /// No answer yet after this → `waiting_card` (default 500 ms).
    pub settle: Duration,
    /// After a complete answer, keep reading this long for more fields (default 300 ms).
    pub drain: Duration,
    /// Whole transaction, from the send (default 180 s).
    pub deadline: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            settle: Duration::from_millis(500),
            drain: Duration::from_millis(300),
            deadline: Duration::from_secs(180),
        }
    }
}

/// A progress step the driver reports while the transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The whole request frame was written.
    Sent,
    /// The terminal holds the request (AE=11 or settle delay elapsed).
    WaitingCard,
}

/// Why an outcome is unknown: the request may have reached the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownReason {
    /// No complete answer before the deadline.
    Timeout,
    /// The connection closed or broke before a complete answer.
    ConnectionLost,
    /// The answer did not parse or lacked mandatory fields.
    InvalidAnswer,
    /// The answer did not match the request (echo check).
    Mismatch,
}

impl UnknownReason {
    /// The contract's code: `timeout`, `connection_lost`, `invalid_answer`, `mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::Timeout => "timeout",
            UnknownReason::ConnectionLost => "connection_lost",
            UnknownReason::InvalidAnswer => "invalid_answer",
            UnknownReason::Mismatch => "mismatch",
        }
    }
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// AE=10 and the echo check passed.
    Approved(Answer),
    /// AE=01.
    Declined(Answer),
    /// Nothing was written: safe to retry.
    NotSent {
        /// Human detail (connect refused, timed out, cancelled).
        detail: String,
    },
    /// Something was written and no valid answer came: check the ticket.
    Unknown {
        /// Why.
        reason: UnknownReason,
        /// Human detail.
        detail: String,
        /// Whatever bytes came back, Latin-1 decoded.
        raw: Option<String>,
    },
}

/// What the caller plugs into a transaction.
pub trait Hooks: Send {
    /// Connected; nothing written yet. Make `sent` durable here; `false` aborts → `NotSent`.
    fn before_send(&mut self) -> impl Future<Output = bool> + Send;
    /// A progress step; awaited before the driver goes on.
    fn progress(&mut self, step: Progress) -> impl Future<Output = ()> + Send;
    /// The answer decided the payment (first call), or fields that came afterwards added
    /// details (later calls, same kind of outcome). Awaited; the driver then goes on
    /// draining, and [`transact`] returns the last outcome reported when the drain ends.
    fn decided(&mut self, outcome: &Outcome) -> impl Future<Output = ()> + Send {
        let _ = outcome;
        async {}
    }
}

/// Hooks that send at once and ignore progress (probes, scripts).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {
    async fn before_send(&mut self) -> bool {
        true
    }

    async fn progress(&mut self, _step: Progress) {}
}

/// Runs one transaction against the terminal at `address` ("host:port").
pub async fn transact(
    address: &str,
    request: &PaymentRequest,
    timeouts: &Timeouts,
    hooks: &mut impl Hooks,
) -> Outcome {
    if let Err(err) = request.check() {
        return Outcome::NotSent {
            detail: err.to_string(),
        };
    }
    match connect(address, timeouts.connect).await {
        Ok(mut stream) => transact_on(&mut stream, request, timeouts, hooks).await,
        Err(detail) => Outcome::NotSent { detail },
    }
}

/// Runs one transaction over an already connected stream (the part after connect).
pub async fn transact_on<S>(
    stream: &mut S,
    request: &PaymentRequest,
    timeouts: &Timeouts,
    hooks: &mut impl Hooks,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = match request.to_message() {
        Ok(message) => message.encode(),
        Err(err) => {
            return Outcome::NotSent {
                detail: err.to_string(),
            }
        }
    };
    match exchange(stream, &frame, Some(request), timeouts, hooks).await {
        Exchange::NotSent(detail) => Outcome::NotSent { detail },
        Exchange::Lost {
            reason,
            detail,
            raw,
        } => Outcome::Unknown {
            reason,
            detail,
            raw: raw.map(|raw| mask_frame(&raw)),
        },
        Exchange::Answer {
            decided: Some(outcome),
            ..
        } => *outcome,
        Exchange::Answer { message, raw, .. } => judge(interpret(request, &message, &raw), &raw),
    }
}

/// The outcome a verdict on the answer `raw` gives.
fn judge(verdict: Verdict, raw: &str) -> Outcome {
    let unknown = |reason, detail| Outcome::Unknown {
        reason,
        detail,
        raw: Some(mask_frame(raw)),
    };
    match verdict {
        Verdict::Approved(answer) => Outcome::Approved(answer),
        Verdict::Declined(answer) => Outcome::Declined(answer),
        Verdict::Invalid(detail) => unknown(UnknownReason::InvalidAnswer, detail),
        Verdict::Mismatch(detail) => unknown(UnknownReason::Mismatch, detail),
    }
}

/// Opens the TCP connection within the connect timeout; the error is a human detail.
pub async fn connect(address: &str, limit: Duration) -> Result<TcpStream, String> {
    // Bounded because an unplugged terminal makes connect hang for minutes.
    match tokio::time::timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => {
            // Small frames: don't let Nagle hold the request back.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(err)) => Err(format!("connect to {address} failed: {err}")),
        Err(_) => Err(format!("connect to {address} timed out after {limit:?}")),
    }
}

/// Why an identification probe did not prove the terminal alive.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    /// The POS number is not valid; fix the configuration.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Could not connect (or nothing was written): the terminal is unreachable.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Connected and sent, but no valid answer came.
    #[error("no valid answer ({reason}): {detail}")]
    NoAnswer {
        /// Why.
        reason: UnknownReason,
        /// Human detail.
        detail: String,
    },
    /// The terminal answered but not with AE=10.
    #[error(transparent)]
    Refused(#[from] IdentifyError),
}

/// Sends an identification request (CD=I) and checks the terminal answers AE=10.
/// Never call it while a payment is open on that terminal.
pub async fn probe(
    address: &str,
    pos_number: &str,
    timeouts: &Timeouts,
) -> Result<Identity, ProbeError> {
    let frame = request::identification(pos_number)?.encode();
    let mut stream = connect(address, timeouts.connect)
        .await
        .map_err(ProbeError::Unreachable)?;
    match exchange(&mut stream, &frame, None, timeouts, &mut NoHooks).await {
        Exchange::NotSent(detail) => Err(ProbeError::Unreachable(detail)),
        Exchange::Lost { reason, detail, .. } => Err(ProbeError::NoAnswer { reason, detail }),
        Exchange::Answer { message, .. } => Ok(identify(&message)?),
    }
}

#[cfg(test)]
mod tests;
