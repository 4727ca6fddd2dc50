//! One transaction's task: from `accepted` to its final state, holding the terminal's lease.
//!
//! The task is spawned by [`super::Engine::pay`] and owns everything it needs, so a till
//! that disconnects does not stop it. Every change is journaled before it is announced; the
//! `sent` state is journaled and announced once, before the first byte is written (in
//! [`Hooks::before_send`]; a write that then fails with nothing written ends `not_sent`).
//! The TCP connect runs while `connecting` is being journaled (it writes nothing to the
//! terminal); `sent` is queued only once both are done, so the journal order stays
//! `connecting`, `sent` and the request still waits for `sent`'s fsync.
//!
//! Results at once (api.md §7.1): when the answer decides the payment, the final state is
//! journaled and announced at once ([`Hooks::decided`]) and the lease lets one next `pay`
//! wait; fields the drain brings later are journaled and announced as new changes of the same
//! final state. A final state never changes.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use super::control::Control;
use super::ledger::Ledger;
use super::metrics::Metrics;
use super::record::{now_rfc3339, Record, State, TxResult};
use super::registry::{Lease, Terminal};
use crate::protocol::PaymentRequest;
use crate::terminal::{self, Hooks, Outcome, Progress, Timeouts};

/// Everything a running transaction needs.
pub struct Transaction {
    /// The journal + store + bus.
    pub ledger: Arc<Ledger>,
    /// Where the final state is counted.
    pub metrics: Arc<Metrics>,
    /// The terminal it runs on.
    pub terminal: Arc<Terminal>,
    /// Cancel handshake.
    pub control: Arc<Control>,
    /// The record as last committed.
    pub record: Arc<Record>,
    /// What to send.
    pub request: PaymentRequest,
    /// Driver deadlines.
    pub timeouts: Timeouts,
    /// The terminal's address when the transaction started (a reload changes later ones).
    pub address: String,
    /// When `pay` accepted it.
    pub started: Instant,
}

impl Transaction {
    /// Runs to the final state. The terminal is freed (by dropping `lease`) once the dialog
    /// is over and before the final state is announced: a till that pays again as soon as it
    /// sees the result must not find the terminal busy.
    pub async fn run(mut self, mut lease: Lease) {
        let span = tracing::info_span!("tx", id = %self.record.id, till = %self.record.till,
            terminal = %self.record.terminal);
        async move {
            let outcome = self.drive(&mut lease).await;
            drop(lease);
            self.finish(outcome).await;
        }
        .instrument(span)
        .await
    }

    async fn drive(&mut self, lease: &mut Lease) -> Outcome {
        // Accepted while the previous transaction drained: wait for its end (≤ one drain).
        tokio::select! {
            ready = lease.ready() => if !ready {
                return Outcome::NotSent { detail: "the terminal was not released".to_owned() };
            },
            _ = self.control.cancelled() => return cancelled(),
        }
        // A probe in progress finishes first; the lease keeps new probes away.
        tokio::select! {
            _ = self.terminal.probe_lock.lock() => {}
            _ = self.control.cancelled() => return cancelled(),
        }
        if self.control.is_cancelled() {
            return cancelled();
        }
        if let Err(err) = self.request.check() {
            return Outcome::NotSent {
                detail: err.to_string(),
            };
        }
        let (address, request) = (self.address.clone(), self.request.clone());
        let timeouts = self.timeouts;
        let control = Arc::clone(&self.control);
        // `connecting` is journaled while the TCP connect runs: connecting writes nothing to
        // the terminal, and no byte goes out before `sent` is durable, which is queued only
        // after `connecting` is.
        let connect = async {
            tokio::select! {
                biased;
                _ = control.cancelled() => None,
                stream = terminal::connect(&address, timeouts.connect) => Some(stream),
            }
        };
        let (journaled, connected) = tokio::join!(self.step(State::Connecting), connect);
        if let Err(err) = journaled {
            return Outcome::NotSent {
                detail: format!("journal unavailable: {err}"),
            };
        }
        let mut stream = match connected {
            None => return cancelled(),
            Some(Err(detail)) => {
                let outcome = Outcome::NotSent { detail };
                self.note_health(&outcome, false);
                return outcome;
            }
            Some(Ok(stream)) => stream,
        };
        let mut hooks = TxHooks {
            tx: self,
            lease,
            connected: false,
            waiting: false,
            journal_failure: None,
        };
        // Dropping the driver is safe only before it commits to writing; `Control` makes the
        // cancel branch unreachable after that.
        let outcome = tokio::select! {
            biased;
            _ = control.cancelled() => cancelled(),
            outcome = terminal::transact_on(&mut stream, &request, &timeouts, &mut hooks) => outcome,
        };
        let (connected, journal_failure) = (hooks.connected, hooks.journal_failure);
        // The driver only knows `before_send` said no: tell the cashier why.
        let outcome = match (outcome, journal_failure) {
            (Outcome::NotSent { .. }, Some(detail)) => Outcome::NotSent { detail },
            (outcome, _) => outcome,
        };
        self.note_health(&outcome, connected);
        outcome
    }

    /// Journals and announces a new state (journal failure is returned, nothing announced).
    async fn step(&mut self, state: State) -> std::io::Result<()> {
        let mut next = (*self.record).clone();
        next.state = state;
        next.updated_at = now_rfc3339();
        self.record = self.ledger.commit(next).await?;
        Ok(())
    }

    fn note_health(&self, outcome: &Outcome, connected: bool) {
        let failed_connect = matches!(outcome, Outcome::NotSent { .. })
            && !connected
            && !self.control.is_cancelled();
        if connected {
            self.terminal.saw(true);
        } else if failed_connect {
            self.terminal.saw(false);
        }
    }

    async fn finish(&mut self, outcome: Outcome) {
        self.control.finish();
        self.conclude(outcome).await;
        log_finished(&self.record, self.started.elapsed());
    }

    /// Journals and announces the final state, or the details a later field added to it;
    /// an outcome that would change a final state, or adds nothing, is not a change.
    async fn conclude(&mut self, outcome: Outcome) {
        let state = State::from(&outcome);
        let result = TxResult::from(outcome);
        let already_final = self.record.state.is_final();
        if already_final && state != self.record.state {
            tracing::error!(
                state = state.as_str(),
                final_state = self.record.state.as_str(),
                "an outcome contradicting the final state was ignored"
            );
            return;
        }
        if already_final && self.record.result.as_ref() == Some(&result) {
            return;
        }
        let mut next = (*self.record).clone();
        next.state = state;
        next.result = Some(result);
        next.updated_at = now_rfc3339();
        self.record = self.ledger.commit_anyway(next).await;
        if !already_final {
            let took = self.started.elapsed();
            self.metrics.transaction_finished(&self.record, Some(took));
        }
    }
}

/// The one info line per outcome. Card data minimised: the (masked) PAN and authorization only.
fn log_finished(record: &Record, took: std::time::Duration) {
    let result = record.result.as_ref();
    let card = result.and_then(|r| r.card.as_ref());
    tracing::info!(
        id = %record.id, till = %record.till, terminal = %record.terminal,
        amount = record.amount, currency = %record.currency, state = record.state.as_str(),
        reason = result.and_then(|r| r.reason.as_deref()),
        detail = result.and_then(|r| r.detail.as_deref()),
        pan = card.and_then(|c| c.pan.as_deref()),
        authorization = result.and_then(|r| r.authorization.as_deref()),
        duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        "transaction finished"
    );
}

fn cancelled() -> Outcome {
    Outcome::NotSent {
        detail: "cancelled".to_owned(),
    }
}

struct TxHooks<'a> {
    tx: &'a mut Transaction,
    lease: &'a Lease,
    connected: bool,
    waiting: bool,
    /// Why `before_send` refused, when the journal did not take the `sent` mark.
    journal_failure: Option<String>,
}

impl Hooks for TxHooks<'_> {
    async fn before_send(&mut self) -> bool {
        self.connected = true;
        if !self.tx.control.commit() {
            return false;
        }
        match self.tx.step(State::Sent).await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(%err, "journal append failed; not sending");
                self.journal_failure = Some(format!("journal unavailable, nothing sent: {err}"));
                false
            }
        }
    }

    async fn progress(&mut self, step: Progress) {
        // `sent` was journaled and announced by `before_send`.
        if step == Progress::Sent {
            super::crashpoint::crash_at("send", "after");
            return;
        }
        if self.waiting {
            return;
        }
        self.waiting = true;
        let mut next = (*self.tx.record).clone();
        next.state = State::WaitingCard;
        next.updated_at = now_rfc3339();
        self.tx.record = self.tx.ledger.commit_anyway(next).await;
    }

    async fn decided(&mut self, outcome: &Outcome) {
        if !self.tx.record.state.is_final() {
            // Open the terminal to the next `pay` before the till learns the result.
            self.lease.decided();
            self.tx.control.finish();
        }
        self.tx.conclude(outcome.clone()).await;
    }
}
