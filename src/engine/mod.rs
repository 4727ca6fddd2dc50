//! Transactions: the registry of terminals, the state machine, idempotency, the journal
//! and the event bus.
//!
//! [`Engine`] is the one entry point the web sessions use. It owns no socket to a browser:
//! sessions call it and listen to its bus, which routes each change to the sessions of
//! its till and the watchers of its terminal only; a session's subscription and the records
//! it is owed at once come together from [`feed`], so none falls between the two. Each `pay` runs in its own task holding the
//! terminal's lease (see [`transaction`]), so a browser going away never cuts a payment.
//! Final states and journal syncs are counted into the engine's [`Metrics`] (`/metrics`).

mod accepting;
mod control;
pub mod crashpoint;
mod error;
pub(crate) mod events;
mod feed;
mod guards;
pub(crate) mod inbox;
pub mod journal;
pub(crate) mod ledger;
pub(crate) mod metrics;
mod order;
pub mod probe;
pub mod record;
mod registry;
mod transaction;

mod api;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use api::{shown_to, CancelAnswer, PayAnswer};
pub use error::{ApiError, ErrorCode};
pub use order::{PayOrder, Payment};
pub use record::Record;
pub use registry::{TerminalState, TerminalStatus};

use control::Control;
use events::{EventBus, Subscription, BUS_CAPACITY};
use journal::Journal;
use ledger::{Ledger, Scope};
use metrics::Metrics;
use record::{now_rfc3339, State, TxResult};
use registry::Registry;

use crate::config::{Refunds, TerminalConfig, DEFAULT_DUPLICATE_WINDOW, DEFAULT_JOURNAL_RETENTION};
use crate::terminal::Timeouts;

/// How often announced changes that the journal refused are appended again.
pub const JOURNAL_RETRY: Duration = Duration::from_secs(1);

/// Tunables of the engine; the defaults are the contract's.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Identification probe period per idle terminal.
    pub probe_interval: Duration,
    /// Whether each terminal's first probe runs at once (at start, and for a terminal a
    /// reload adds) rather than one period later, so that a dead terminal is
    /// reported `unreachable` within seconds. Tests that count requests turn it off.
    pub probe_at_start: bool,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
    /// No answer after this → `waiting_card`.
    pub settle: Duration,
    /// Extra read time after a complete answer.
    pub drain: Duration,
    /// Unread announcements a session may hold before it resynchronises.
    pub bus_capacity: usize,
    /// Possible-duplicate window (contract §10); zero turns the guard off.
    pub duplicate_window: Duration,
    /// Which refunds are accepted (contract §10).
    pub refunds: Refunds,
    /// How long the journal keeps a finished record after its last change.
    pub retention: Duration,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        // The driver's defaults are the contract's; they live in `Timeouts::default`.
        let driver = Timeouts::default();
        EngineOptions {
            probe_interval: Duration::from_secs(60),
            probe_at_start: true,
            connect_timeout: driver.connect,
            settle: driver.settle,
            drain: driver.drain,
            bus_capacity: BUS_CAPACITY,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            refunds: Refunds::Free,
            retention: DEFAULT_JOURNAL_RETENTION,
        }
    }
}

impl EngineOptions {
    /// The driver's deadlines with these options, for a dialog bounded by `deadline`.
    pub fn timeouts(&self, deadline: Duration) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            settle: self.settle,
            drain: self.drain,
            deadline,
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal in `data_dir` cannot be opened or written: fix the directory.
    #[error("journal in {dir}: {source}")]
    Journal {
        /// The data directory.
        dir: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Handle to the transaction engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    ledger: Arc<Ledger>,
    bus: EventBus,
    // A std mutex: map lookups only, never held across an await.
    active: Mutex<HashMap<String, Arc<Control>>>,
    // Serialises `pay` from the idempotency check to the pending `accepted`.
    pay_lock: tokio::sync::Mutex<()>,
    // The payments whose `accepted` is not journaled yet.
    accepting: Arc<accepting::Accepting>,
    options: EngineOptions,
    tasks: TaskTracker,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    // Bumped each time a transaction's task ends (its terminal released, drain over).
    released: tokio::sync::watch::Sender<u64>,
}

impl Engine {
    /// Opens the journal in `data_dir`, settles records interrupted by a restart, and starts
    /// the probes of `terminals`. `seal` signs final and resolved changes (receipts).
    pub async fn start(
        terminals: &[TerminalConfig],
        data_dir: &Path,
        options: EngineOptions,
        seal: Option<ledger::Seal>,
    ) -> Result<Engine, EngineError> {
        let journal_error = |source| EngineError::Journal {
            dir: data_dir.display().to_string(),
            source,
        };
        let dir = data_dir.to_path_buf();
        let metrics = Arc::new(Metrics::new());
        let journal_options = journal_options(&metrics, options.retention);
        // Reading and checking the whole journal blocks: keep it off the runtime threads.
        let (journal, records) =
            tokio::task::spawn_blocking(move || Journal::open_with(&dir, journal_options))
                .await
                .map_err(std::io::Error::other)
                .and_then(|opened| opened)
                .map_err(journal_error)?;
        let bus = EventBus::new(options.bus_capacity);
        let engine = Engine {
            inner: Arc::new(Inner {
                registry: Registry::default(),
                ledger: Arc::new(Ledger::new(journal, records, bus.clone()).with_seal(seal)),
                bus,
                active: Mutex::new(HashMap::new()),
                pay_lock: tokio::sync::Mutex::new(()),
                accepting: Arc::default(),
                options,
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
                metrics,
                released: tokio::sync::watch::Sender::new(0),
            }),
        };
        engine.settle_interrupted().await.map_err(journal_error)?;
        engine.start_probes(engine.inner.registry.apply(terminals, &engine.inner.stop));
        engine.start_journal_retry();
        engine.start_pruning();
        engine.start_inbox(data_dir);
        Ok(engine)
    }

    /// Journals the final state of every transaction a restart interrupted (contract §5).
    async fn settle_interrupted(&self) -> std::io::Result<()> {
        let ledger = &self.inner.ledger;
        for record in ledger.select(Scope::All, |r| !r.state.is_final()) {
            let settled = settle_after_restart((*record).clone());
            tracing::warn!(id = %settled.id, state = ?settled.state, "transaction interrupted by a restart");
            let settled = ledger.commit(settled).await?;
            self.inner.metrics.transaction_finished(&settled, None);
        }
        Ok(())
    }

    fn start_probes(&self, probes: Vec<registry::ProbeStart>) {
        for (terminal, stop) in probes {
            let options = &self.inner.options;
            let run = probe::run(
                terminal,
                options.probe_interval,
                options.probe_at_start,
                options.timeouts(probe::PROBE_DEADLINE),
                stop,
            );
            self.inner.tasks.spawn(run);
        }
    }

    /// Appends again, every [`JOURNAL_RETRY`], the announced changes the journal refused.
    fn start_journal_retry(&self) {
        let ledger = Arc::clone(&self.inner.ledger);
        let stop = self.inner.stop.clone();
        self.inner.tasks.spawn(async move {
            let mut ticks = tokio::time::interval(JOURNAL_RETRY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => { ledger.retry_unjournaled().await; }
                }
            }
        });
    }

    /// Prunes the ledger every [`journal::prune_period`] (hourly): a long-running agent
    /// holds the records a restart would load, not all it ever saw.
    fn start_pruning(&self) {
        let ledger = Arc::clone(&self.inner.ledger);
        let stop = self.inner.stop.clone();
        let every = self.prune_period();
        self.inner.tasks.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => {
                        let pruned = ledger.prune();
                        if pruned > 0 {
                            tracing::info!(records = pruned, "records past journal retention forgotten");
                        }
                    }
                }
            }
        });
    }

    /// How often what follows the journal's retention in memory is pruned (hourly, or the
    /// retention when shorter).
    pub fn prune_period(&self) -> Duration {
        journal::prune_period(self.inner.options.retention)
    }

    /// What the engine counts for `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Makes `terminals` the configured terminals (a reload): added ones take payments at
    /// once, changed ones from their next transaction, removed ones refuse new payments and
    /// are listed until their running transaction ends.
    pub async fn set_terminals(&self, terminals: &[TerminalConfig]) {
        // Under the pay lock: a `pay` finds the terminal and takes it in one step.
        let serial = self.inner.pay_lock.lock().await;
        let probes = self.inner.registry.apply(terminals, &self.inner.stop);
        drop(serial);
        self.start_probes(probes);
    }

    /// Whether the transaction `id` still runs in this process (its terminal is held: the
    /// request is out, or the answer is decided and the agent still drains).
    pub fn is_running(&self, id: &str) -> bool {
        self.inner
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
    }

    /// Changes each time a transaction ends and releases its terminal (see
    /// [`Engine::is_running`]).
    pub fn releases(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.released.subscribe()
    }

    /// The current record of `id`, whoever's it is (for the agent's own services).
    pub fn record(&self, id: &str) -> Option<Arc<Record>> {
        self.inner.ledger.get(id)
    }

    /// A receiver of every record change announced from now on.
    pub fn subscribe(&self) -> Subscription {
        self.inner.bus.subscribe()
    }

    /// Stops probes and new payments, then waits for running transactions to end (each is
    /// bounded by its terminal's deadline).
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        let left = self.inner.ledger.retry_unjournaled().await;
        if left > 0 {
            tracing::error!(records = left, "stopping with results the journal refused");
        }
    }
}

/// The journal's options: `retention`, and each sync timed into `metrics`.
fn journal_options(metrics: &Arc<Metrics>, retention: Duration) -> journal::Options {
    let metrics = Arc::clone(metrics);
    journal::Options {
        retention,
        on_sync: Some(Arc::new(move |took| metrics.journal_synced(took))),
        ..journal::Options::default()
    }
}

/// Terminal `name` at `address`, POS number 01, 30 s deadline, guarded: the unit tests' terminal.
#[cfg(test)]
pub(crate) fn sample_terminal(name: &str, address: &str) -> TerminalConfig {
    TerminalConfig {
        name: name.into(),
        address: address.into(),
        pos_number: "01".into(),
        timeout: Duration::from_secs(30),
        guard_unknown: true,
        ticket: None,
        send_reference: false,
    }
}

/// What a record interrupted by a restart becomes (contract §5).
fn settle_after_restart(mut record: Record) -> Record {
    let result = match record.state {
        State::Accepted | State::Connecting => {
            record.state = State::NotSent;
            TxResult {
                detail: Some("agent restarted before sending".to_owned()),
                ..TxResult::default()
            }
        }
        _ => {
            record.state = State::Unknown;
            TxResult {
                reason: Some("agent_restart".to_owned()),
                detail: Some("the agent restarted while waiting for the terminal".to_owned()),
                ..TxResult::default()
            }
        }
    };
    record.result = Some(result);
    record.updated_at = now_rfc3339();
    record
}
