//! Who is connected: open sessions per till, for the operator page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open sessions per till name; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open session; dropping it counts the session out.
#[derive(Debug)]
pub struct Seat {
    presence: Presence,
    till: String,
}

impl Presence {
    /// Counts a session of `till` in until the returned seat is dropped.
    pub fn join(&self, till: &str) -> Seat {
        *self.lock().entry(till.to_owned()).or_default() += 1;
        Seat {
            presence: self.clone(),
            till: till.to_owned(),
        }
    }

    /// Open sessions of `till`.
    pub fn sessions(&self, till: &str) -> usize {
        self.lock().get(till).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(count) = self.presence.lock().get_mut(&self.till) {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_count_in_and_out() {
        let presence = Presence::default();
        let a = presence.join("till-1");
        let b = presence.join("till-1");
        assert_eq!(presence.sessions("till-1"), 2);
        drop(a);
        drop(b);
        assert_eq!(presence.sessions("till-1"), 0);
    }
}
