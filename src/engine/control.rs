//! The cancel/commit handshake between a `cancel` request and the transaction's driver.
//!
//! Whichever comes first wins, under one lock: `cancel` before the driver commits to sending
//! stops the transaction (`not_sent`); once committed, `cancel` is too late.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Cancelled,
    Committed,
    Done,
}

/// What `cancel` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReply {
    /// The request will not be sent; the `not_sent` record follows.
    Cancelled,
    /// The request is (being) written to the terminal.
    TooLate,
    /// The transaction already ended.
    Finished,
}

/// Shared between the engine (cancel) and the transaction task (commit).
#[derive(Debug)]
pub struct Control {
    phase: Mutex<Phase>,
    token: CancellationToken,
}

impl Default for Control {
    fn default() -> Control {
        Control {
            phase: Mutex::new(Phase::Pending),
            token: CancellationToken::new(),
        }
    }
}

impl Control {
    /// Asks to stop before sending.
    pub fn cancel(&self) -> CancelReply {
        let mut phase = self.lock();
        match *phase {
            Phase::Pending | Phase::Cancelled => {
                *phase = Phase::Cancelled;
                self.token.cancel();
                CancelReply::Cancelled
            }
            Phase::Committed => CancelReply::TooLate,
            Phase::Done => CancelReply::Finished,
        }
    }

    /// The driver is about to write: `false` when cancelled first.
    pub fn commit(&self) -> bool {
        let mut phase = self.lock();
        if *phase == Phase::Pending {
            *phase = Phase::Committed;
        }
        *phase == Phase::Committed
    }

    /// The transaction is ending; later cancels are answered `Finished`.
    pub fn finish(&self) {
        *self.lock() = Phase::Done;
    }

    /// Whether a cancel won.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when a cancel wins (never after a commit).
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_first_blocks_the_commit() {
        let control = Control::default();
        assert_eq!(control.cancel(), CancelReply::Cancelled);
        assert!(!control.commit());
        assert!(control.is_cancelled());
    }

    #[test]
    fn commit_first_makes_cancel_too_late() {
        let control = Control::default();
        assert!(control.commit());
        assert_eq!(control.cancel(), CancelReply::TooLate);
        assert!(!control.is_cancelled());
        control.finish();
        assert_eq!(control.cancel(), CancelReply::Finished);
    }
}
