//! Lets changes whose fsyncs complete in any order be announced in seq order.
//!
//! Each stamped seq gets a [`Ticket`]. [`Ticket::wait`] returns once every smaller seq has
//! gone through; dropping the ticket lets its own seq through. A ticket dropped early (a
//! failed append, a cancelled commit) is remembered and let through as soon as
//! its predecessors are, so nobody waits forever for a seq that will never be announced.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The seqs that went through, and who waits for which.
#[derive(Debug)]
struct Passed {
    /// Every seq up to this one went through.
    last: u64,
    /// Seqs above `last + 1` that finished before their turn.
    early: BTreeSet<u64>,
    /// The ticket waiting for its turn, by seq: only the next one is woken when `last`
    /// moves, not every waiting ticket (many commits share an fsync and wait together).
    waiting: HashMap<u64, oneshot::Sender<()>>,
}

/// The gate all commits of a ledger pass, in seq order.
#[derive(Debug)]
pub struct Turnstile {
    passed: Mutex<Passed>,
}

impl Turnstile {
    /// A turnstile whose next seq is `next`.
    pub fn new(next: u64) -> Turnstile {
        let passed = Passed {
            last: next.saturating_sub(1),
            early: BTreeSet::new(),
            waiting: HashMap::new(),
        };
        Turnstile {
            passed: Mutex::new(passed),
        }
    }

    /// The ticket of `seq`, which must be stamped once and never reused.
    pub fn ticket(&self, seq: u64) -> Ticket<'_> {
        Ticket {
            turnstile: self,
            seq,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Passed> {
        self.passed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One seq's place in line; dropping it lets the seq through.
#[derive(Debug)]
pub struct Ticket<'a> {
    turnstile: &'a Turnstile,
    seq: u64,
}

impl Ticket<'_> {
    /// Waits until every smaller seq went through.
    pub async fn wait(&self) {
        let turn = {
            let mut passed = self.turnstile.lock();
            if passed.last + 1 >= self.seq {
                return;
            }
            let (tell, turn) = oneshot::channel();
            passed.waiting.insert(self.seq, tell);
            turn
        };
        // The sender is only dropped by sending: the predecessor's pass wakes this seq.
        let _ = turn.await;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut guard = self.turnstile.lock();
        let passed = &mut *guard;
        passed.waiting.remove(&self.seq);
        passed.early.insert(self.seq);
        while passed.early.remove(&(passed.last + 1)) {
            passed.last += 1;
        }
        let next = passed.last + 1;
        if let Some(tell) = passed.waiting.remove(&next) {
            let _ = tell.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn passes(ticket: &Ticket<'_>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), ticket.wait())
            .await
            .is_ok()
    }

    // Paused time: the timeouts elapse at once when nothing else can run.
    #[tokio::test(start_paused = true)]
    async fn a_seq_waits_for_every_smaller_one_even_those_dropped_early() {
        let turnstile = Turnstile::new(5);
        let (five, six, seven) = (
            turnstile.ticket(5),
            turnstile.ticket(6),
            turnstile.ticket(7),
        );
        assert!(passes(&five).await);
        assert!(!passes(&seven).await, "5 and 6 are still in line");
        drop(six);
        assert!(
            !passes(&seven).await,
            "6 finished early but 5 has not passed"
        );
        drop(five);
        assert!(passes(&seven).await);
    }
}
