//! One transaction's task: from `accepted` to its final state, holding the terminal's lease.
//!
//! The task is spawned by [`super::Engine::pay`] and owns everything it needs, so a till
//! that disconnects does not stop it. Every change is journaled before it is announced; the
//! `sent` state is journaled and announced once, before the first byte is written (in
//! [`Hooks::before_send`]; a write that then fails with nothing written ends `not_sent`).
//!
//! Two sequential fsyncs on a payment's path (the durability design, `docs/relay.md`):
//! `accepted` (made by `pay`) and `connecting` (made as the TCP connect starts) are not
//! journaled on their own: they wait, unannounced, to share one write and one fsync with
//! `sent`, queued once the connect is done. So a quick connect gives `accepted`,
//! `connecting`, `sent` in one fsync, then the request, then the final state in a second
//! one. Changes never wait longer than [`FLUSH_WAIT`]: when the terminal is slow to connect
//! (or still draining the previous payment) they are flushed on their own meanwhile, so the
//! till sees `accepted` and `connecting` promptly. `pay` answers once `accepted` is durable
//! (or refused: then nothing was stored or sent). A crash before that first fsync leaves
//! no trace: the till never saw `accepted` and the terminal got nothing, so a retry with the
//! same id pays once.
//!
//! Results at once (api.md §7.1): when the answer decides the payment, the final state is
//! journaled and announced at once ([`Hooks::decided`]) and the lease lets one next `pay`
//! wait; fields the drain brings later are journaled and announced as new changes of the same
//! final state. A final state never changes.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::Instrument;

use super::accepting::Held;
use super::control::Control;
use super::ledger::Ledger;
use super::metrics::Metrics;
use super::record::{now_rfc3339, Record, State, TxResult};
use super::registry::{Lease, Terminal};
use crate::protocol::PaymentRequest;
use crate::terminal::{self, Hooks, Outcome, Progress, Timeouts};

/// How long a change may wait, unannounced, to share its fsync with the next ones: long
/// enough for a connect on a shop's LAN, short enough that a till shows `accepted` and
/// `connecting` at once when the terminal is slow or unreachable.
pub const FLUSH_WAIT: Duration = Duration::from_millis(2);

/// The answer `pay` waits for: the `accepted` record once durable and announced, or why the
/// journal refused it (nothing was stored, the terminal is released).
pub type AcceptedAnswer = io::Result<Arc<Record>>;

/// The changes a transaction made and has not journaled yet.
pub struct Journaling {
    /// Oldest first.
    unflushed: Vec<Record>,
    /// When they are flushed at the latest.
    due: Option<Instant>,
    /// Until `accepted` is journaled: who waits for it, and its id held as pending.
    accepted: Option<(oneshot::Sender<AcceptedAnswer>, Held)>,
    /// Why the journal refused `accepted`; told once the terminal is released.
    refused: Option<io::Error>,
}

impl Journaling {
    /// A transaction's first change, `accepted` (`record`, not stamped yet), with its id
    /// held as pending by `held`; the receiver gets [`AcceptedAnswer`].
    pub fn accepted(
        record: &Record,
        held: Held,
    ) -> (Journaling, oneshot::Receiver<AcceptedAnswer>) {
        let (tell, answer) = oneshot::channel();
        let journaling = Journaling {
            unflushed: vec![record.clone()],
            due: Some(Instant::now() + FLUSH_WAIT),
            accepted: Some((tell, held)),
            refused: None,
        };
        (journaling, answer)
    }
}

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
    /// The record as last journaled and announced (before the first flush: the `accepted`
    /// record, not stamped yet).
    pub record: Arc<Record>,
    /// What is not journaled yet.
    pub journaling: Journaling,
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
            // What is left when the path ended before `sent` (a failed connect, a cancel).
            let flushed = self.flush().await;
            drop(lease);
            if let Some((tell, _held)) = self.journaling.accepted.take() {
                // Never journaled: `pay` tells the till, there is nothing to conclude.
                let refused = self.journaling.refused.take();
                let _ = tell.send(Err(refused.unwrap_or_else(|| match flushed {
                    Err(err) => err,
                    Ok(()) => io::Error::other("the transaction ended before its record"),
                })));
                return;
            }
            self.finish(outcome).await;
        }
        .instrument(span)
        .await
    }

    async fn drive(&mut self, lease: &mut Lease) -> Outcome {
        let (control, terminal) = (Arc::clone(&self.control), Arc::clone(&self.terminal));
        // The outcome if the transaction ends before its connect.
        let ready = async {
            // Accepted while the previous transaction drained: wait for its end (≤ one drain).
            tokio::select! {
                ready = lease.ready() => if !ready {
                    return Some(Outcome::NotSent {
                        detail: "the terminal was not released".to_owned(),
                    });
                },
                _ = control.cancelled() => return Some(cancelled()),
            }
            // A probe in progress finishes first; the lease keeps new probes away.
            tokio::select! {
                _ = terminal.probe_lock.lock() => None,
                _ = control.cancelled() => Some(cancelled()),
            }
        };
        if let Err(outcome) | Ok(Some(outcome)) = self.meanwhile(ready).await {
            return outcome;
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
        // `connecting` waits for `sent` to share its fsync; connecting writes nothing to the
        // terminal, and no byte goes out before `sent` is durable.
        self.queue_change(State::Connecting);
        let connect = async {
            tokio::select! {
                biased;
                _ = control.cancelled() => None,
                stream = terminal::connect(&address, timeouts.connect) => Some(stream),
            }
        };
        let mut stream = match self.meanwhile(connect).await {
            Err(outcome) => return outcome,
            Ok(None) => return cancelled(),
            Ok(Some(Err(detail))) => {
                let outcome = Outcome::NotSent { detail };
                self.note_health(&outcome, false);
                return outcome;
            }
            Ok(Some(Ok(stream))) => stream,
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

    /// The newest change (journaled or not) moved to `state`, stamped now.
    fn next(&self, state: State) -> Record {
        let newest = self.journaling.unflushed.last();
        let mut next = newest.cloned().unwrap_or_else(|| (*self.record).clone());
        next.state = state;
        next.updated_at = now_rfc3339();
        next
    }

    /// Makes a change that waits to be journaled with the next ones (see [`FLUSH_WAIT`]).
    fn queue_change(&mut self, state: State) {
        let next = self.next(state);
        let journaling = &mut self.journaling;
        journaling.unflushed.push(next);
        journaling
            .due
            .get_or_insert_with(|| Instant::now() + FLUSH_WAIT);
    }

    /// Journals the waiting changes in one write and one fsync, then announces them in
    /// order. On a journal failure none is stored or announced.
    async fn flush(&mut self) -> io::Result<()> {
        let changes = std::mem::take(&mut self.journaling.unflushed);
        self.journaling.due = None;
        if changes.is_empty() {
            return Ok(());
        }
        let ledger = Arc::clone(&self.ledger);
        for queued in ledger.queue(changes).await {
            match queued.commit().await {
                Ok(record) => self.record = record,
                Err(err) => {
                    if self.journaling.accepted.is_some() {
                        self.journaling.refused = Some(io::Error::new(err.kind(), err.to_string()));
                    }
                    return Err(err);
                }
            }
            if let Some((tell, held)) = self.journaling.accepted.take() {
                let _ = tell.send(Ok(Arc::clone(&self.record)));
                // Settled once stored: a `pay` of the same id that waited now finds it.
                drop(held);
            }
        }
        Ok(())
    }

    /// Runs `work`, which does not touch the transaction; if the waiting changes come due
    /// first, journals them meanwhile. A journal failure is the outcome.
    async fn meanwhile<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Outcome> {
        let mut work = std::pin::pin!(work);
        let Some(due) = self.journaling.due else {
            return Ok(work.await);
        };
        tokio::select! {
            biased;
            done = &mut work => return Ok(done),
            () = tokio::time::sleep_until(due.into()) => {}
        }
        let (flushed, done) = tokio::join!(self.flush(), work);
        flushed.map(|()| done).map_err(|err| Outcome::NotSent {
            detail: format!("journal unavailable: {err}"),
        })
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
        let mut next = self.next(state);
        next.result = Some(result);
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
        self.tx.queue_change(State::Sent);
        match self.tx.flush().await {
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
        let next = self.tx.next(State::WaitingCard);
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
