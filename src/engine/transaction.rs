//! One transaction's task: from `accepted` to its final state, holding the terminal's lease.
//!
//! The task is spawned by [`super::Engine::pay`] and owns everything it needs, so a till
//! that disconnects does not stop it. Every change is journaled before it is announced; the
//! `sent` mark is journaled before the first byte is written (in [`Hooks::before_send`]).

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use super::control::Control;
use super::ledger::Ledger;
use super::metrics::Metrics;
use super::record::{now_rfc3339, Record, State, TxResult};
use super::registry::{Lease, Terminal};
use crate::protocol::{Answer, Card, PaymentRequest};
use crate::terminal::{self, Hooks, Outcome, Progress, Timeouts, UnknownReason};

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
    pub record: Record,
    /// What to send.
    pub request: PaymentRequest,
    /// Driver deadlines.
    pub timeouts: Timeouts,
    /// The terminal's address when the transaction started (a reload changes later ones).
    pub address: String,
}

impl Transaction {
    /// Runs to the final state. The terminal is freed (by dropping `lease`) once the dialog
    /// is over and before the final state is announced: a till that pays again as soon as it
    /// sees the result must not find the terminal busy.
    pub async fn run(mut self, lease: Lease) {
        let span = tracing::info_span!("tx", id = %self.record.id, till = %self.record.till,
            terminal = %self.record.terminal);
        async move {
            let started = Instant::now();
            let outcome = self.drive().await;
            drop(lease);
            self.finish(outcome, started).await;
        }
        .instrument(span)
        .await
    }

    async fn drive(&mut self) -> Outcome {
        // A probe in progress finishes first; the lease keeps new probes away.
        tokio::select! {
            _ = self.terminal.probe_lock.lock() => {}
            _ = self.control.cancelled() => return cancelled(),
        }
        if self.control.is_cancelled() {
            return cancelled();
        }
        if let Err(err) = self.step(State::Connecting).await {
            return Outcome::NotSent {
                detail: format!("journal unavailable: {err}"),
            };
        }
        let (address, request) = (self.address.clone(), self.request.clone());
        let timeouts = self.timeouts;
        let control = Arc::clone(&self.control);
        let mut hooks = TxHooks {
            tx: self,
            connected: false,
            waiting: false,
            journal_failure: None,
        };
        // Dropping the driver is safe only before it commits to writing; `Control` makes the
        // cancel branch unreachable after that.
        let outcome = tokio::select! {
            biased;
            _ = control.cancelled() => cancelled(),
            outcome = terminal::transact(&address, &request, &timeouts, &mut hooks) => outcome,
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
        let mut next = self.record.clone();
        next.state = state;
        next.updated_at = now_rfc3339();
        self.record = (*self.ledger.commit(next).await?).clone();
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

    async fn finish(&mut self, outcome: Outcome, started: Instant) {
        self.control.finish();
        let mut next = self.record.clone();
        apply_outcome(&mut next, outcome);
        next.updated_at = now_rfc3339();
        let record = self.ledger.commit_anyway(next).await;
        let took = started.elapsed();
        self.metrics.transaction_finished(&record, Some(took));
        log_finished(&record, took);
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

/// Sets the final state and result from the driver's outcome.
pub fn apply_outcome(record: &mut Record, outcome: Outcome) {
    let (state, result) = match outcome {
        Outcome::Approved(answer) => (State::Approved, answer_result(answer)),
        Outcome::Declined(answer) => (State::Declined, answer_result(answer)),
        Outcome::NotSent { detail } => (
            State::NotSent,
            TxResult {
                detail: Some(detail),
                ..TxResult::default()
            },
        ),
        Outcome::Unknown {
            reason,
            detail,
            raw,
        } => (
            State::Unknown,
            TxResult {
                reason: Some(unknown_reason(reason).to_owned()),
                detail: Some(detail),
                raw,
                ..TxResult::default()
            },
        ),
    };
    record.state = state;
    record.result = Some(result);
}

fn answer_result(answer: Answer) -> TxResult {
    TxResult {
        ae: Some(answer.ae),
        af: answer.af,
        reason: answer.reason,
        label: answer.label,
        card: (answer.card != Card::default()).then_some(answer.card),
        authorization: answer.authorization,
        approved_amount: answer.approved_amount,
        partial: answer.partial,
        ticket: answer.ticket,
        raw: Some(answer.raw),
        detail: None,
    }
}

/// The contract's code for an unknown outcome's reason.
pub fn unknown_reason(reason: UnknownReason) -> &'static str {
    match reason {
        UnknownReason::Timeout => "timeout",
        UnknownReason::ConnectionLost => "connection_lost",
        UnknownReason::InvalidAnswer => "invalid_answer",
        UnknownReason::Mismatch => "mismatch",
    }
}

struct TxHooks<'a> {
    tx: &'a mut Transaction,
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
        let mut sent = self.tx.record.clone();
        sent.state = State::Sent;
        sent.updated_at = now_rfc3339();
        match self.tx.ledger.persist(sent).await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(%err, "journal append failed; not sending");
                self.journal_failure = Some(format!("journal unavailable, nothing sent: {err}"));
                false
            }
        }
    }

    async fn progress(&mut self, step: Progress) {
        if step == Progress::Sent {
            super::crashpoint::crash_at("send", "after");
        }
        let state = match step {
            Progress::Sent => State::Sent,
            Progress::WaitingCard if !self.waiting => State::WaitingCard,
            Progress::WaitingCard => return,
        };
        self.waiting |= state == State::WaitingCard;
        let mut next = self.tx.record.clone();
        next.state = state;
        next.updated_at = now_rfc3339();
        self.tx.record = (*self.tx.ledger.commit_anyway(next).await).clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::sample;

    fn record() -> Record {
        let record = sample("a", State::WaitingCard);
        Record {
            amount: 1245,
            seq: 3,
            ..record
        }
    }

    #[test]
    fn unknown_outcomes_carry_reason_code_and_detail() {
        let mut rec = record();
        apply_outcome(
            &mut rec,
            Outcome::Unknown {
                reason: UnknownReason::Mismatch,
                detail: "CB differs".into(),
                raw: Some("AE00210".into()),
            },
        );
        assert_eq!(rec.state, State::Unknown);
        let result = rec.result.unwrap();
        assert_eq!(result.reason.as_deref(), Some("mismatch"));
        assert_eq!(result.detail.as_deref(), Some("CB differs"));
        assert_eq!(result.raw.as_deref(), Some("AE00210"));
    }

    #[test]
    fn declined_answers_keep_af_reason_and_label() {
        let mut rec = record();
        let answer = Answer {
            ae: "01".into(),
            af: Some("04".into()),
            reason: Some("card refused".into()),
            label: Some("REFUS".into()),
            card: Card::default(),
            authorization: None,
            contract: None,
            approved_amount: None,
            partial: false,
            ticket: Vec::new(),
            raw: "raw".into(),
        };
        apply_outcome(&mut rec, Outcome::Declined(answer));
        let result = rec.result.unwrap();
        assert_eq!(rec.state, State::Declined);
        assert_eq!(
            (result.af.as_deref(), result.label.as_deref()),
            (Some("04"), Some("REFUS"))
        );
        assert!(result.card.is_none());
    }
}
