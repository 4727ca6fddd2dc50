//! A clock that moves only when told to, injected with `Access::with_clock` so that tests
//! expire pairing codes and rate-limit windows without waiting.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use caisse_ap_relay::access::Clock;

/// The clock, showing what it was last set to.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    #[allow(dead_code)] // not every test binary moves it
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
