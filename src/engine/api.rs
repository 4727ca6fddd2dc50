//! The requests sessions make of the engine, each checked against the till's rights, and
//! how much of a record each till sees (contract §7.3: [`shown_to`]).

use std::sync::Arc;

use tokio::sync::oneshot;

use super::control::{CancelReply, Control};
use super::error::{ApiError, ErrorCode};
use super::guards::{self, Passed};
use super::ledger::Scope;
use super::order::{PayOrder, Payment};
use super::record::{now_rfc3339, Record, Resolution, ResolvedAs, ResolvedBy, State};
use super::registry::{Terminal, TerminalStatus};
use super::transaction::{AcceptedAnswer, Journaling, Transaction};
use super::Engine;
use crate::access::Till;
use crate::config::Role;
use crate::protocol::PaymentRequest;

/// What `pay` did.
#[derive(Debug, Clone)]
pub enum PayAnswer {
    /// A new transaction started; its records come on the bus.
    Started(Arc<Record>),
    /// The id was already known with the same parameters: its current record.
    Existing(Arc<Record>),
}

/// What `cancel` did.
#[derive(Debug, Clone)]
pub enum CancelAnswer {
    /// The request will not be sent; the `not_sent` record comes on the bus.
    Cancelled,
    /// The transaction had already ended `not_sent`: its record.
    AlreadyNotSent(Arc<Record>),
}

impl Engine {
    /// Starts a transaction (contract §5 `pay`).
    pub async fn pay(&self, till: &Till, order: &PayOrder) -> Result<PayAnswer, ApiError> {
        let payment = order.validate()?;
        let fail = |code, message: String| Err(ApiError::new(code, message).with_id(&payment.id));
        if till.role != Role::Cashier {
            return fail(
                ErrorCode::Forbidden,
                format!(
                    "a {} till may not pay; pay from a cashier till",
                    till.role.as_str()
                ),
            );
        }
        let ledger = &self.inner.ledger;
        let accepted = loop {
            let mut settled = self.inner.accepting.settled();
            // Taken before the lookup: a reload cannot remove the terminal in between. Held
            // until `accepted` is pending, not until it is journaled: `pay`s of other tills
            // go on meanwhile.
            let serial = self.inner.pay_lock.lock().await;
            let terminal = self
                .usable_terminal(till, &payment.terminal)
                .map_err(|e| e.with_id(&payment.id))?;
            if let Some(existing) = ledger.get(&payment.id) {
                return replay(till, &payment, existing);
            }
            if self.inner.accepting.contains(&payment.id) {
                // The same id is being accepted: its outcome decides this one's answer.
                drop(serial);
                let _ = settled.changed().await;
                continue;
            }
            if self.inner.stop.is_cancelled() {
                return fail(
                    ErrorCode::Internal,
                    "the agent is shutting down; retry in a moment".into(),
                );
            }
            let passed = self.guard(till, &payment, &terminal)?;
            let lease = terminal
                .try_begin(&payment.id)
                .map_err(|holder| busy(&payment, holder))?;
            let record = new_record(till, &payment, passed);
            // Under the lock: the next `pay`'s guards see this one as pending.
            break self.spawn_transaction(terminal, &payment, record, lease);
        };
        let refused = |detail: String| {
            ApiError::new(
                ErrorCode::Internal,
                format!(
                    "journal unavailable ({detail}); nothing was sent, fix the agent's data directory"
                ),
            )
            .with_id(&payment.id)
        };
        match accepted.await {
            Ok(Ok(record)) => Ok(PayAnswer::Started(record)),
            Ok(Err(err)) => Err(refused(err.to_string())),
            Err(_) => Err(refused("the transaction stopped".to_owned())),
        }
    }

    /// The guards of contract §10 for a `pay` that would start a new transaction.
    fn guard(
        &self,
        till: &Till,
        payment: &Payment,
        terminal: &Terminal,
    ) -> Result<Passed, ApiError> {
        let options = &self.inner.options;
        let settings = guards::Settings {
            guard_unknown: terminal.config().guard_unknown,
            duplicate_window: options.duplicate_window,
            refunds: options.refunds,
        };
        let relevant = guards::relevant(till, payment, settings);
        let ledger = &self.inner.ledger;
        // A linked refund's debit and other refunds may be on any terminal; look-alikes are
        // on the payment's own; without either, only the unresolved `unknown`s count (read
        // alone, not every record of the terminal at each `pay`).
        let scope = match (&payment.refund_of, options.duplicate_window.is_zero()) {
            (Some(_), _) => Scope::All,
            (None, false) => Scope::Terminal(&payment.terminal),
            (None, true) => Scope::Unresolved,
        };
        let mut records = ledger.select(scope, &relevant);
        records.extend(self.inner.accepting.select(&relevant));
        guards::check(
            &records,
            settings,
            till,
            payment,
            time::OffsetDateTime::now_utc(),
        )
    }

    /// The unresolved `unknown` that blocks `terminal` (contract §10), if any.
    fn blocking(&self, terminal: &str) -> Option<Arc<Record>> {
        let guarded = self
            .inner
            .registry
            .get(terminal)
            .is_some_and(|t| t.config().guard_unknown);
        let records = self
            .inner
            .ledger
            .select(Scope::Unresolved, |r| r.terminal == terminal);
        let now = time::OffsetDateTime::now_utc();
        guarded
            .then(|| guards::blocking(&records, terminal, now))
            .flatten()
    }

    /// True when `record` is the one blocking its terminal and `till` is a cashier allowed
    /// there: it may read and resolve it though another till started it (contract §7.3).
    fn may_unblock(&self, till: &Till, record: &Record) -> bool {
        till.role == Role::Cashier
            && till.may_use(&record.terminal)
            && self
                .blocking(&record.terminal)
                .is_some_and(|pending| pending.id == record.id)
    }

    /// Starts the transaction of `record` (`accepted`, not journaled yet), which journals it
    /// with its next changes (one fsync when the terminal connects quickly); the receiver
    /// learns once it is durable and announced, or why not.
    fn spawn_transaction(
        &self,
        terminal: Arc<Terminal>,
        payment: &Payment,
        record: Record,
        lease: super::registry::Lease,
    ) -> oneshot::Receiver<AcceptedAnswer> {
        let control = Arc::new(Control::default());
        self.active()
            .insert(payment.id.clone(), Arc::clone(&control));
        // Pending once cancellable: a `cancel` right after the `pay` finds its control.
        let record = Arc::new(record);
        let held = self.inner.accepting.hold(&record);
        let (journaling, accepted) = Journaling::accepted(&record, held);
        let options = self.inner.options;
        // The settings as of now: a reload during the transaction applies to the next one.
        let config = terminal.config();
        let transaction = Transaction {
            ledger: Arc::clone(&self.inner.ledger),
            metrics: Arc::clone(&self.inner.metrics),
            request: PaymentRequest {
                amount: payment.amount,
                currency: payment.currency,
                action: payment.action,
                method: payment.method,
                pos_number: config.pos_number.clone(),
                ticket: config.ticket,
                reference: config
                    .send_reference
                    .then(|| crate::protocol::request::reference(&payment.id)),
            },
            timeouts: options.timeouts(config.timeout),
            address: config.address.clone(),
            terminal,
            control,
            record,
            journaling,
            started: std::time::Instant::now(),
        };
        let engine = self.clone();
        let id = payment.id.clone();
        self.inner.tasks.spawn(async move {
            transaction.run(lease).await;
            engine.active().remove(&id);
            engine.inner.released.send_modify(|count| *count += 1);
        });
        accepted
    }

    /// Stops a transaction before its request reaches the terminal (contract §5 `cancel`).
    pub fn cancel(&self, till: &Till, id: &str) -> Result<CancelAnswer, ApiError> {
        if till.role != Role::Cashier {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "a {} till may not cancel; cancel from the till that started the payment",
                    till.role.as_str()
                ),
            )
            .with_id(id));
        }
        let record = self.own_record(till, id)?;
        let control = self.active().get(id).cloned();
        let reply = control.map_or(CancelReply::Finished, |c| c.cancel());
        match reply {
            CancelReply::Cancelled => Ok(CancelAnswer::Cancelled),
            CancelReply::TooLate => Err(too_late(id)),
            CancelReply::Finished => {
                let record = self.inner.ledger.get(id).unwrap_or(record);
                match record.state {
                    State::NotSent => Ok(CancelAnswer::AlreadyNotSent(record)),
                    State::Approved | State::Declined | State::Unknown => Err(ApiError::new(
                        ErrorCode::TooLate,
                        format!(
                            "the transaction already finished ({}); a refund reverses an approved payment",
                            record.state.as_str()
                        ),
                    )
                    .with_id(id)),
                    _ => Err(too_late(id)),
                }
            }
        }
    }

    /// The current record of `id`, if this till may read it, as it may see it (contract §5
    /// `get`, §7.3: the record blocking a cashier's terminal comes in full).
    pub fn get(&self, till: &Till, id: &str) -> Result<Arc<Record>, ApiError> {
        let record = self.inner.ledger.get(id).ok_or_else(|| not_found(id))?;
        if self.may_unblock(till, &record) {
            return Ok(record);
        }
        if may_read(till, &record) {
            return Ok(shown_to(till, record));
        }
        Err(not_found(id))
    }

    /// Journals the cashier's decision on an `unknown` record (contract §5 `resolve`).
    pub async fn resolve(
        &self,
        till: &Till,
        id: &str,
        outcome: ResolvedAs,
        note: Option<String>,
    ) -> Result<Arc<Record>, ApiError> {
        if till.role == Role::Display {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a display till may not resolve; resolve from the till that started the payment",
            )
            .with_id(id));
        }
        let record = self
            .inner
            .ledger
            .get(id)
            .filter(|r| may_resolve(till, r) || self.may_unblock(till, r))
            .ok_or_else(|| not_found(id))?;
        let by_role = match till.role {
            Role::Operator => ResolvedBy::Operator,
            _ => ResolvedBy::Cashier,
        };
        self.record_resolution(&record, &till.name, by_role, outcome, note)
            .await
    }

    /// Journals `caisse-ap-relay resolve` (resolver `cli`) on any till's `unknown` record.
    pub async fn resolve_from_cli(
        &self,
        id: &str,
        outcome: ResolvedAs,
        note: Option<String>,
    ) -> Result<Arc<Record>, ApiError> {
        let record = self.inner.ledger.get(id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no transaction {id:?} in the journal"),
            )
            .with_id(id)
        })?;
        self.record_resolution(&record, "cli", ResolvedBy::Cli, outcome, note)
            .await
    }

    async fn record_resolution(
        &self,
        record: &Record,
        till: &str,
        by_role: ResolvedBy,
        outcome: ResolvedAs,
        note: Option<String>,
    ) -> Result<Arc<Record>, ApiError> {
        let id = record.id.as_str();
        let mut record = record.clone();
        if record.state != State::Unknown {
            return Err(ApiError::bad_request(format!(
                "only an unknown transaction can be resolved; this one is {}",
                record.state.as_str()
            ))
            .with_id(id));
        }
        let now = now_rfc3339();
        record.resolution = Some(Resolution {
            outcome,
            note,
            till: till.to_owned(),
            by_role,
            at: now.clone(),
        });
        record.updated_at = now;
        self.inner.ledger.commit(record).await.map_err(|err| {
            ApiError::new(
                ErrorCode::Internal,
                format!("journal unavailable ({err}); resolve again later"),
            )
            .with_id(id)
        })
    }

    /// The terminals this till may use, with their state.
    pub fn terminals(&self, till: &Till) -> Vec<TerminalStatus> {
        let usable = self
            .inner
            .registry
            .iter()
            .filter(|t| till.may_use(t.name()));
        usable.map(|t| t.status()).collect()
    }

    /// Every terminal, with its state (for `/healthz`).
    pub fn all_terminals(&self) -> Vec<TerminalStatus> {
        self.inner.registry.iter().map(|t| t.status()).collect()
    }

    /// Records changed after `seq` that `keep` selects, in seq order (a lagged session's
    /// resynchronisation).
    pub fn changed_since(&self, seq: u64, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Record>> {
        self.inner.ledger.select(Scope::Since(seq), keep)
    }

    /// Up to `limit` records of terminals this till may use: unresolved `unknown` first, then
    /// newest first (the operator page).
    pub fn recent(&self, till: &Till, limit: usize) -> Vec<Arc<Record>> {
        let mut records = self
            .inner
            .ledger
            .select(Scope::All, |r| till.may_use(&r.terminal));
        records.sort_by_key(|r| {
            let unresolved = r.is_unresolved();
            (!unresolved, std::cmp::Reverse(r.seq))
        });
        records.truncate(limit);
        records
    }

    pub(super) fn usable_terminal(
        &self,
        till: &Till,
        name: &str,
    ) -> Result<Arc<Terminal>, ApiError> {
        let terminal = self.inner.registry.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTerminal,
                format!("no terminal named {name:?}; send `terminals` to list them"),
            )
        })?;
        if !till.may_use(name) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                "till {} may not use terminal {name}; the agent's configuration lists its terminals",
                till.name
            ),
            ));
        }
        Ok(terminal)
    }

    /// `till`'s record `id`, journaled or still pending (a `cancel` may follow its `pay` at once).
    fn own_record(&self, till: &Till, id: &str) -> Result<Arc<Record>, ApiError> {
        let record = self.inner.ledger.get(id);
        let record = record.or_else(|| self.inner.accepting.get(id));
        let record = record.filter(|r| r.till == till.name);
        record.ok_or_else(|| not_found(id))
    }

    fn active(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<Control>>> {
        self.inner.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `till` may `get` `record` (contract §5, §7.3): its own, and for a display or an
/// operator any record of the terminals it may use.
fn may_read(till: &Till, record: &Record) -> bool {
    record.till == till.name || (till.role != Role::Cashier && till.may_use(&record.terminal))
}

/// Whether `till` may `resolve` `record`: a cashier its own, an operator any record of the
/// terminals it may use (the blocked terminal's exception aside).
fn may_resolve(till: &Till, record: &Record) -> bool {
    match till.role {
        Role::Cashier => record.till == till.name,
        Role::Operator => till.may_use(&record.terminal),
        Role::Display => false,
    }
}

/// Whether `till` sees `record` in full (contract §7.3): an operator every record, a
/// cashier its own; a display, and a cashier watching another till's payment, see it
/// redacted ([`Record::redacted`]).
pub fn sees_in_full(till: &Till, record: &Record) -> bool {
    match till.role {
        Role::Operator => true,
        Role::Cashier => record.till == till.name,
        Role::Display => false,
    }
}

/// `record` as `till` may see it: itself, or its redacted copy.
pub fn shown_to(till: &Till, record: Arc<Record>) -> Arc<Record> {
    if sees_in_full(till, &record) {
        record
    } else {
        Arc::new(record.redacted())
    }
}

fn replay(till: &Till, payment: &Payment, existing: Arc<Record>) -> Result<PayAnswer, ApiError> {
    let same = existing.till == till.name
        && existing.terminal == payment.terminal
        && existing.amount == payment.amount
        && existing.currency == payment.currency.alpha
        && existing.action == payment.action
        && existing.method == payment.method
        && existing.refund_of == payment.refund_of;
    if same {
        return Ok(PayAnswer::Existing(existing));
    }
    Err(ApiError::new(
        ErrorCode::IdConflict,
        "this id is already used by a transaction with other parameters; use a new id",
    )
    .with_id(&payment.id))
}

fn busy(payment: &Payment, holder: Option<String>) -> ApiError {
    let mut error = ApiError::new(
        ErrorCode::TerminalBusy,
        format!(
            "terminal {} is busy with transaction {}; wait for it to finish",
            payment.terminal,
            holder.as_deref().unwrap_or("?")
        ),
    )
    .with_id(&payment.id);
    error.related = holder;
    error
}

fn new_record(till: &Till, payment: &Payment, passed: Passed) -> Record {
    let now = now_rfc3339();
    Record {
        id: payment.id.clone(),
        till: till.name.clone(),
        terminal: payment.terminal.clone(),
        amount: payment.amount,
        currency: payment.currency.alpha.to_owned(),
        action: payment.action,
        method: payment.method,
        refund_of: payment.refund_of.clone(),
        confirm_duplicate: passed.confirmed_duplicate,
        state: State::Accepted,
        result: None,
        resolution: None,
        created_at: now.clone(),
        updated_at: now,
        seq: 0,
        receipt: None,
    }
}

fn too_late(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::TooLate,
        "the request already reached the terminal: cancel on the terminal with the red key",
    )
    .with_id(id)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no transaction {id:?} for this till"),
    )
    .with_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineOptions;
    use crate::sim::{Behaviour, Simulator};

    /// An engine in a fresh data dir, its one terminal a simulator answering at once.
    async fn engine() -> (tempfile::TempDir, Simulator, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = Simulator::spawn(listener, Behaviour::default());
        let terminal = crate::engine::sample_terminal("tpe-1", &sim.addr().to_string());
        let options = EngineOptions {
            probe_at_start: false,
            ..EngineOptions::default()
        };
        let engine = Engine::start(&[terminal], dir.path(), options, None)
            .await
            .unwrap();
        (dir, sim, engine)
    }

    fn cashier() -> Till {
        Till {
            name: "till-1".into(),
            role: Role::Cashier,
            terminals: None,
        }
    }

    fn order(id: &str) -> PayOrder {
        serde_json::from_value(serde_json::json!(
            {"id": id, "terminal": "tpe-1", "amount": 2500, "currency": "EUR"}))
        .unwrap()
    }

    // One thread: the cancel runs before the transaction's first step.
    #[tokio::test(flavor = "current_thread")]
    async fn a_pay_cancelled_before_its_accepted_is_journaled_sends_nothing() {
        let (_dir, sim, engine) = engine().await;
        let (till, order) = (cashier(), order("c"));
        let cancel = async {
            while !engine.inner.accepting.contains("c") {
                tokio::task::yield_now().await;
            }
            engine.cancel(&till, "c")
        };
        let (paid, cancelled) = tokio::join!(engine.pay(&till, &order), cancel);
        assert!(matches!(paid, Ok(PayAnswer::Started(_))), "{paid:?}");
        assert!(
            matches!(cancelled, Ok(CancelAnswer::Cancelled)),
            "{cancelled:?}"
        );
        engine.shutdown().await;
        let record = engine.record("c").unwrap();
        assert_eq!(record.state, State::NotSent);
        assert_eq!(sim.request_count(), 0);
    }

    // One thread: every `pay` runs before the first one's `accepted` is journaled.
    #[tokio::test(flavor = "current_thread")]
    async fn the_same_id_paid_while_its_accepted_is_pending_starts_one_transaction() {
        let (_dir, sim, engine) = engine().await;
        let (till, order) = (cashier(), order("same"));
        let answers =
            futures_util::future::join_all((0..3).map(|_| engine.pay(&till, &order))).await;
        let started = answers
            .iter()
            .filter(|a| matches!(a, Ok(PayAnswer::Started(_))))
            .count();
        let existing = answers
            .iter()
            .filter(|a| matches!(a, Ok(PayAnswer::Existing(r)) if r.id == "same"))
            .count();
        assert_eq!((started, existing), (1, 2), "{answers:?}");
        sim.wait_requests(1).await;
        engine.shutdown().await;
        assert_eq!(sim.request_count(), 1);
    }
}
