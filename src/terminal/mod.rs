//! The terminal driver: one Caisse-AP transaction over TCP.
//!
//! INTERFACE SKETCH (owned by the foundation work; internals free, names used elsewhere).

use std::future::Future;
use std::time::Duration;

use crate::protocol::{Answer, PaymentRequest};

/// The driver's deadlines, each named for the phase it bounds.
#[derive(Debug, Clone, Copy)]
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
}

/// Runs one transaction against the terminal at `address` ("host:port").
pub async fn transact(
    _address: &str,
    _request: &PaymentRequest,
    _timeouts: &Timeouts,
    _hooks: &mut impl Hooks,
) -> Outcome {
    todo!()
}
