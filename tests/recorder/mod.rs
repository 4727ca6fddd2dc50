//! A driver `Hooks` that records every progress step and may refuse the send: shared by the
//! driver's unit tests (`src/terminal/tests.rs`, through `#[path]`) and `tests/suite/driver.rs`.
//! The includer brings `Hooks`, `Outcome` and `Progress` into scope.

use super::*;

/// Records the steps and early outcomes; refuses to send when `refuse`.
#[derive(Default)]
pub struct Recorder {
    /// `before_send` answers `false`.
    pub refuse: bool,
    /// The steps seen, in order.
    pub steps: Vec<Progress>,
    /// The outcomes reported through `decided`, with when (tokio time).
    pub decided: Vec<(Outcome, tokio::time::Instant)>,
}

impl Hooks for Recorder {
    async fn before_send(&mut self) -> bool {
        !self.refuse
    }

    async fn progress(&mut self, step: Progress) {
        self.steps.push(step);
    }

    async fn decided(&mut self, outcome: &Outcome) {
        self.decided
            .push((outcome.clone(), tokio::time::Instant::now()));
    }
}
