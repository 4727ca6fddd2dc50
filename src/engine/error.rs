//! The typed refusals the engine answers with; the web layer sends them as `error` messages.

use serde::{Deserialize, Serialize};

/// The stable error codes of the contract (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is malformed or a field is invalid: fix the request.
    BadRequest,
    /// Wrong or missing token: pair again or fix the token.
    Unauthorized,
    /// This till's role or terminal list does not allow it.
    Forbidden,
    /// No terminal of that name.
    UnknownTerminal,
    /// The terminal runs another transaction: wait for it.
    TerminalBusy,
    /// The id is taken by a transaction with other parameters.
    IdConflict,
    /// No such transaction for this till.
    NotFound,
    /// The request already reached the terminal: cancel there.
    TooLate,
    /// Too many attempts: wait.
    RateLimited,
    /// The agent cannot do it now (journal, shutdown): nothing was sent.
    Internal,
    /// The terminal has an unresolved `unknown` payment (`pending`): resolve it first (§10).
    UnresolvedUnknown,
    /// The same payment was just approved (`previous`): confirm with `confirm_duplicate` (§10).
    PossibleDuplicate,
    /// The linked refund exceeds what is left of its debit (§10).
    RefundExceeds,
}

/// A refusal: a code, a human message saying what to do, and the transaction id when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// Transaction id, when the request named one.
    pub id: Option<String>,
    /// The other transaction the error names: for `terminal_busy` the one holding the
    /// terminal (`current`), for `unresolved_unknown` the one to resolve first (`pending`),
    /// for `possible_duplicate` the earlier one (`previous`).
    pub related: Option<String>,
    /// For `refund_exceeds`: what may still be refunded, in minor units.
    pub refundable: Option<u64>,
    /// For `rate_limited` where the wait is known (a terminal search): seconds to wait.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`, no id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            id: None,
            related: None,
            refundable: None,
            retry_after: None,
        }
    }

    /// The same error naming the transaction `id`.
    pub fn with_id(mut self, id: &str) -> ApiError {
        self.id = Some(id.to_owned());
        self
    }

    /// A `bad_request` with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
}
