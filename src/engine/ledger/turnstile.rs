//! Lets changes whose fsyncs complete in any order be announced in seq order.
//!
//! Each stamped seq gets a [`Ticket`]. [`Ticket::wait`] returns once every smaller seq has
//! gone through; dropping the ticket lets its own seq through. A ticket dropped early (a
//! failed append, a cancelled commit) is remembered and let through as soon as
//! its predecessors are, so nobody waits forever for a seq that will never be announced.

use std::collections::BTreeSet;

use tokio::sync::watch;

/// The seqs that went through.
#[derive(Debug)]
struct Passed {
    /// Every seq up to this one went through.
    last: u64,
    /// Seqs above `last + 1` that finished before their turn.
    early: BTreeSet<u64>,
}

/// The gate all commits of a ledger pass, in seq order.
#[derive(Debug)]
pub struct Turnstile {
    passed: watch::Sender<Passed>,
}

impl Turnstile {
    /// A turnstile whose next seq is `next`.
    pub fn new(next: u64) -> Turnstile {
        let passed = Passed {
            last: next.saturating_sub(1),
            early: BTreeSet::new(),
        };
        Turnstile {
            passed: watch::Sender::new(passed),
        }
    }

    /// The ticket of `seq`, which must be stamped once and never reused.
    pub fn ticket(&self, seq: u64) -> Ticket<'_> {
        Ticket {
            turnstile: self,
            seq,
        }
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
        let mut passed = self.turnstile.passed.subscribe();
        // The sender lives as long as the turnstile this ticket borrows: never closed here.
        let _ = passed.wait_for(|p| p.last + 1 >= self.seq).await;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.turnstile.passed.send_modify(|p| {
            p.early.insert(self.seq);
            while p.early.remove(&(p.last + 1)) {
                p.last += 1;
            }
        });
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
