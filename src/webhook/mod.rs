//! Webhooks (contract §9): results delivered server to server, signed as the Standard
//! Webhooks specification says, at least once and durably.
//!
//! The engine knows nothing of webhooks: each configured webhook has a [`worker`] that
//! follows the engine's bus and ledger (the journal's records) and owes a delivery for each
//! change its `events` select ([`event`]). What was delivered is remembered in
//! `data_dir/webhooks.log` ([`delivered`]); at start, what is owed is derived again from the
//! journal minus that log, so owed deliveries survive restarts and `kill -9`. Each worker has
//! its own HTTP client ([`client`]) and its own bus subscription, so a slow or dead endpoint
//! delays neither a payment nor another webhook, and stopping aborts its attempts at once.
//! [`Health`] feeds `/status` (backlog, last error) and the metrics.
//!
//! The workers run off the payment path: on a runtime of their own, on one thread whose
//! scheduling priority is lowered by [`NICE`] (Linux: niceness is per thread), so building,
//! signing and posting deliveries never queues behind or ahead of a payment's tasks, and
//! on a busy machine payments get the CPU first. Nothing the workers do holds a lock of the
//! engine beyond a lookup (`Engine::record`, `Engine::is_running`), except the ledger scan
//! after their bus subscription lagged.

mod client;
mod delivered;
mod event;
mod sign;
mod worker;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebhookConfig;
use crate::engine::metrics::Metrics;
use crate::engine::record::now_rfc3339;
use crate::engine::Engine;
use client::{ClientError, Endpoint, Outcome};
use delivered::Delivered;
use worker::Worker;

/// Why webhooks cannot start; one line (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A webhook's client cannot be built (its `ca`, its URL).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The delivered log in `data_dir` cannot be read or written.
    #[error("{file}: {source}")]
    Log {
        /// The log file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
}

/// One webhook as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStatus {
    /// Its name.
    pub name: String,
    /// Deliveries owed and not yet acknowledged (including finals waiting for the drain).
    pub pending: usize,
    /// The last failed attempt's reason (kept after later successes: `pending` says
    /// whether anything is still owed).
    pub last_error: Option<String>,
    /// When that attempt failed (RFC 3339).
    pub last_error_at: Option<String>,
}

/// The webhooks' backlog and errors, shared by the workers, `/status` and `/metrics`.
pub struct Health {
    metrics: Arc<Metrics>,
    by_name: Mutex<Vec<WebhookStatus>>,
}

impl Health {
    fn new(metrics: Arc<Metrics>, names: &[&str]) -> Health {
        let by_name = names
            .iter()
            .map(|name| WebhookStatus {
                name: (*name).to_owned(),
                ..WebhookStatus::default()
            })
            .collect();
        for name in names {
            metrics.webhook_pending(name, 0);
        }
        Health {
            metrics,
            by_name: Mutex::new(by_name),
        }
    }

    /// Every webhook's status, in configuration order.
    pub fn statuses(&self) -> Vec<WebhookStatus> {
        self.lock().clone()
    }

    fn pending(&self, name: &str, pending: usize) {
        self.with(name, |status| status.pending = pending);
        self.metrics.webhook_pending(name, pending);
    }

    fn attempted(&self, name: &str, outcome: &Outcome) {
        self.metrics.webhook_delivery(name, outcome.label());
        if *outcome != Outcome::Delivered {
            self.with(name, |status| {
                status.last_error = Some(outcome.to_string());
                status.last_error_at = Some(now_rfc3339());
            });
        }
    }

    fn with(&self, name: &str, change: impl FnOnce(&mut WebhookStatus)) {
        if let Some(status) = self.lock().iter_mut().find(|s| s.name == name) {
            change(status);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WebhookStatus>> {
        self.by_name.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How much the webhooks' thread lowers its scheduling priority (added to its niceness).
pub const NICE: i32 = 10;

/// Runs `workers` until `stop` on a single-threaded runtime on this thread, with its
/// priority lowered by [`NICE`]; attempts still running are dropped without waiting.
fn run_apart(workers: Vec<Worker>, stop: CancellationToken) {
    lower_priority();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(%err, "cannot start the webhooks' runtime: no delivery until the agent restarts (what is owed stays owed)");
            return;
        }
    };
    runtime.block_on(async {
        let mut running = tokio::task::JoinSet::new();
        for worker in workers {
            running.spawn(worker.run(stop.clone()));
        }
        while running.join_next().await.is_some() {}
    });
    // A DNS lookup on the blocking pool must not hold shutdown.
    runtime.shutdown_background();
}

/// Adds [`NICE`] to the calling thread's niceness (Linux sets it per thread); a failure only
/// costs the priority, so it is logged and ignored.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let this = Some(rustix::thread::gettid());
        let lowered = getpriority_process(this)
            .and_then(|nice| setpriority_process(this, (nice + NICE).min(19)));
        if let Err(err) = lowered {
            tracing::debug!(%err, "webhooks' thread priority not lowered");
        }
    }
}

/// The configured webhooks, ready to run.
pub struct Webhooks {
    workers: Mutex<Vec<Worker>>,
    health: Arc<Health>,
}

impl Webhooks {
    /// Builds each webhook's client and reads the delivered log in `data_dir` (forgetting
    /// the deliveries of transactions the journal no longer holds).
    pub fn prepare(
        configs: &[WebhookConfig],
        engine: &Engine,
        data_dir: &Path,
    ) -> Result<Webhooks, WebhookError> {
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        let health = Arc::new(Health::new(Arc::clone(engine.metrics()), &names));
        if configs.is_empty() {
            return Ok(Webhooks {
                workers: Mutex::new(Vec::new()),
                health,
            });
        }
        let endpoints = configs
            .iter()
            .map(|c| Endpoint::new(&c.name, &c.url, c.ca.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let live = |id: &str| engine.record(id).is_some();
        let (log, mut memory) =
            Delivered::open(data_dir, live).map_err(|source| WebhookError::Log {
                file: data_dir.join(delivered::FILE_NAME).display().to_string(),
                source,
            })?;
        let log = Arc::new(log);
        let workers = configs
            .iter()
            .zip(endpoints)
            .map(|(config, endpoint)| {
                let memory = memory.remove(&config.name).unwrap_or_default();
                Worker::new(
                    config.clone(),
                    endpoint,
                    engine.clone(),
                    Arc::clone(&log),
                    memory,
                    Arc::clone(&health),
                )
            })
            .collect();
        Ok(Webhooks {
            workers: Mutex::new(workers),
            health,
        })
    }

    /// Starts every worker on the webhooks' own thread until `stop`; `tasks` waits for that
    /// thread to end.
    pub fn spawn(&self, tasks: &TaskTracker, stop: &CancellationToken) {
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        if workers.is_empty() {
            return;
        }
        let (ended, end) = tokio::sync::oneshot::channel::<()>();
        let stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("webhooks".to_owned())
            .spawn(move || {
                run_apart(workers, stop);
                let _ = ended.send(());
            });
        match thread {
            Ok(_) => {
                tasks.spawn(async move {
                    let _ = end.await;
                });
            }
            Err(err) => tracing::error!(
                %err,
                "cannot start the webhooks' thread: no delivery until the agent restarts \
                 (what is owed stays owed)"
            ),
        }
    }

    /// Backlog and last error of each webhook.
    pub fn statuses(&self) -> Vec<WebhookStatus> {
        self.health.statuses()
    }
}
