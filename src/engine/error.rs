//! The typed refusals the engine answers with; the web layer sends them as `error` messages.

use serde::Serialize;

/// The stable error codes of the contract (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// For `terminal_busy`: the transaction holding the terminal.
    pub current: Option<String>,
}

impl ApiError {
    /// An error with `code` and `message`, no id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            id: None,
            current: None,
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
