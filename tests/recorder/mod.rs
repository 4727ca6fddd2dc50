//! A driver `Hooks` that records every progress step and may refuse the send: shared by the
//! driver's unit tests (`src/terminal/tests.rs`, through `#[path]`) and `tests/driver.rs`.
//! The includer brings `Hooks` and `Progress` into scope.

use super::*;

/// Records the steps; refuses to send when `refuse`.
#[derive(Default)]
pub struct Recorder {
    /// `before_send` answers `false`.
    pub refuse: bool,
    /// The steps seen, in order.
    pub steps: Vec<Progress>,
}

impl Hooks for Recorder {
    async fn before_send(&mut self) -> bool {
        !self.refuse
    }

    async fn progress(&mut self, step: Progress) {
        self.steps.push(step);
    }
}
