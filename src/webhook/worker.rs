//! One webhook's delivery loop: what it owes, when each delivery is next tried, and at most
//! [`MAX_IN_FLIGHT`] attempts at once.
//!
//! The loop reads the engine's bus through its own bounded subscription (a slow endpoint
//! only makes this subscription lag, never a payment); on a lag it derives what is owed from
//! the ledger again, for the records changed since the last one it took. A final record waits
//! until its transaction releases the terminal (the drain is over), then goes out as the
//! record stands. Attempts run as tasks of a `JoinSet`, each under [`ATTEMPT_DEADLINE`];
//! stopping drops the set, which aborts them at once, and what they did not deliver stays
//! owed in the log.
//!
//! Deliveries waiting for an attempt sit in a [`Schedule`] ordered by when they are due, so
//! a turn of the loop costs O(log n) whatever the backlog (an endpoint that never answers
//! keeps thousands owed); while [`MAX_IN_FLIGHT`] attempts run, the loop waits for one of
//! them to end, not for a due time it could not act on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{Endpoint, Outcome};
use super::delivered::{self, Delivered, Memory};
use super::event::{final_key, kind_of, Delivery, Kind};
use super::{sign, Health};
use crate::config::WebhookConfig;
use crate::engine::events::RecvError;
use crate::engine::record::Record;
use crate::engine::Engine;

/// One attempt's deadline (contract §9).
pub const ATTEMPT_DEADLINE: Duration = Duration::from_secs(10);
/// The first retry's delay; each further one doubles it…
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// …up to this.
pub const LAST_RETRY: Duration = Duration::from_secs(600);
/// Attempts of one webhook running at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// A delivery and its failed attempts so far.
struct Owed {
    delivery: Delivery,
    failures: u32,
}

/// The owed deliveries not being attempted, by when they are next due (then by arrival).
#[derive(Debug, Default)]
struct Schedule {
    due: BTreeMap<(Instant, u64), String>,
    arrivals: u64,
}

impl Schedule {
    /// Plans an attempt of `key` at `at`.
    fn plan(&mut self, key: String, at: Instant) {
        self.arrivals += 1;
        self.due.insert((at, self.arrivals), key);
    }

    /// The earliest key due by `now`, taken off the schedule.
    fn take_due(&mut self, now: Instant) -> Option<String> {
        let entry = self.due.first_entry()?;
        (entry.key().0 <= now).then(|| entry.remove())
    }

    /// When the loop must wake to launch an attempt, `running` being under way: the
    /// earliest due time, or never while every slot is taken (only an attempt's end can
    /// launch the next one then; waking for a past due time would spin).
    fn wake_at(&self, running: usize) -> Option<Instant> {
        if running >= MAX_IN_FLIGHT {
            return None;
        }
        self.due.first_key_value().map(|((at, _), _)| *at)
    }
}

/// One webhook's loop and everything it owns.
pub struct Worker {
    config: WebhookConfig,
    endpoint: Endpoint,
    engine: Engine,
    log: Arc<Delivered>,
    health: Arc<Health>,
    /// Delivered keys, forgotten with their records ([`delivered::forget_gone`], at the
    /// engine's prune period).
    done: HashSet<String>,
    /// Every delivery owed: planned in `schedule`, or being attempted.
    owed: HashMap<String, Owed>,
    schedule: Schedule,
    /// Owed keys written to the log (not again after a restart).
    logged: HashSet<String>,
    /// Final records whose transaction still holds its terminal, by id.
    held: HashSet<String>,
    /// Changes with a seq up to this are not owed (made before the webhook existed).
    since: u64,
    /// The highest seq taken from the bus or the ledger (a lag resumes after it).
    taken: u64,
    /// The backlog last published to [`Health`].
    published: Option<usize>,
}

impl Worker {
    /// The worker of `config`, remembering `memory` from the log; a webhook never seen
    /// before is owed the changes from now on.
    pub fn new(
        config: WebhookConfig,
        endpoint: Endpoint,
        engine: Engine,
        log: Arc<Delivered>,
        memory: Memory,
        health: Arc<Health>,
    ) -> Worker {
        report_dropped(&config.name, memory.dropped);
        let since = memory.since.unwrap_or_else(|| {
            let last = engine
                .changed_since(0, |_| true)
                .last()
                .map_or(0, |r| r.seq);
            log.since(&config.name, last);
            last
        });
        Worker {
            config,
            endpoint,
            engine,
            log,
            health,
            done: memory.done,
            logged: memory.owed,
            owed: HashMap::new(),
            schedule: Schedule::default(),
            held: HashSet::new(),
            since,
            taken: since,
            published: None,
        }
    }

    /// Delivers until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut bus = self.engine.subscribe();
        let mut releases = self.engine.releases();
        self.derive_owed();
        let mut attempts: JoinSet<(String, Outcome)> = JoinSet::new();
        let every = self.engine.prune_period();
        let mut forgetting = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            self.launch_due(&mut attempts);
            self.publish_pending();
            let next_due = self.schedule.wake_at(attempts.len());
            tokio::select! {
                () = stop.cancelled() => return,
                change = bus.recv() => match change {
                    Ok(record) => self.take(&record),
                    Err(RecvError::Lagged(_)) => self.derive_owed(),
                    Err(RecvError::Closed) => return,
                },
                changed = releases.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.release_held();
                }
                Some(done) = attempts.join_next() => {
                    if let Ok((key, outcome)) = done {
                        self.settle(&key, outcome);
                    }
                }
                () = sleep_until(next_due) => {}
                _ = forgetting.tick() => {
                    let engine = &self.engine;
                    delivered::forget_gone(&mut self.done, |id| engine.record(id).is_some());
                }
            }
        }
    }

    /// What the records changed since the last one taken owe, according to the ledger and
    /// the log (start, and after a lag).
    fn derive_owed(&mut self) {
        let all = self.config.all_events;
        for record in self.engine.changed_since(self.taken, |_| true) {
            if record.resolution.is_some() {
                self.take_final(&record);
            }
            if kind_of(&record, all).is_some() {
                self.take(&record);
            }
            self.taken = self.taken.max(record.seq);
        }
    }

    /// What a change owes.
    fn take(&mut self, record: &Arc<Record>) {
        if record.seq <= self.since {
            return;
        }
        self.taken = self.taken.max(record.seq);
        match kind_of(record, self.config.all_events) {
            None => {}
            Some(Kind::Final) => self.take_final(record),
            Some(kind) => self.owe(Delivery {
                kind,
                record: Arc::clone(record),
            }),
        }
    }

    fn take_final(&mut self, record: &Arc<Record>) {
        let key = final_key(&record.id);
        if self.done.contains(&key) || self.owed.contains_key(&key) {
            return;
        }
        if self.engine.is_running(&record.id) {
            self.held.insert(record.id.clone());
            return;
        }
        self.held.remove(&record.id);
        // As the record stands now that the terminal is released.
        let record = self
            .engine
            .record(&record.id)
            .unwrap_or_else(|| Arc::clone(record));
        self.owe(Delivery {
            kind: Kind::Final,
            record,
        });
    }

    fn release_held(&mut self) {
        let released: Vec<String> = self
            .held
            .iter()
            .filter(|id| !self.engine.is_running(id))
            .cloned()
            .collect();
        for id in released {
            self.held.remove(&id);
            if let Some(record) = self.engine.record(&id) {
                self.take_final(&record);
            }
        }
    }

    fn owe(&mut self, delivery: Delivery) {
        let key = delivery.key();
        if self.done.contains(&key) || self.owed.contains_key(&key) {
            return;
        }
        // A final or resolved delivery is owed across restarts: remembered, so that a
        // start after the journal dropped its record can say so (`updated` ones live in
        // memory only).
        let durable = delivery.kind != Kind::Updated;
        if durable && self.logged.insert(key.clone()) {
            self.log.owed(&self.config.name, &key);
        }
        self.schedule.plan(key.clone(), Instant::now());
        let owed = Owed {
            delivery,
            failures: 0,
        };
        self.owed.insert(key, owed);
    }

    /// Starts the due deliveries while fewer than [`MAX_IN_FLIGHT`] attempts run.
    fn launch_due(&mut self, attempts: &mut JoinSet<(String, Outcome)>) {
        let now = Instant::now();
        while attempts.len() < MAX_IN_FLIGHT {
            let Some(key) = self.schedule.take_due(now) else {
                return;
            };
            let Some(owed) = self.owed.get(&key) else {
                continue;
            };
            let attempt = attempt(
                self.endpoint.clone(),
                self.config.secret.0.clone(),
                owed.delivery.clone(),
            );
            attempts.spawn(async move { (key, attempt.await) });
        }
    }

    fn settle(&mut self, key: &str, outcome: Outcome) {
        let name = &self.config.name;
        if outcome == Outcome::Delivered {
            // Logged before it is counted: whoever sees the count may restart the agent.
            self.owed.remove(key);
            self.log.done(name, key);
            self.done.insert(key.to_owned());
            self.logged.remove(key);
            self.health.attempted(name, &outcome);
            return;
        }
        self.health.attempted(name, &outcome);
        let Some(owed) = self.owed.get_mut(key) else {
            return;
        };
        owed.failures += 1;
        let delay = retry_delay(owed.failures);
        self.schedule.plan(key.to_owned(), Instant::now() + delay);
        tracing::warn!(webhook = %name, delivery = %owed.delivery.webhook_id(), %outcome, retry_in = ?delay, "webhook delivery failed");
    }

    /// Publishes the backlog when it changed.
    fn publish_pending(&mut self) {
        let pending = self.owed.len() + self.held.len();
        if self.published != Some(pending) {
            self.published = Some(pending);
            self.health.pending(&self.config.name, pending);
        }
    }
}

/// Logs the deliveries owed to `webhook` that the journal's retention dropped with their
/// records: one error line, naming up to ten of them.
fn report_dropped(webhook: &str, mut dropped: Vec<String>) {
    if dropped.is_empty() {
        return;
    }
    let count = dropped.len();
    dropped.truncate(10);
    tracing::error!(
        webhook = %webhook,
        count,
        deliveries = %dropped.join(" "),
        "owed webhook deliveries dropped with their records (journal retention): the backend \
         never got them; check it against the agent's report"
    );
}

/// One attempt: signs with this attempt's timestamp and posts.
async fn attempt(endpoint: Endpoint, key: Vec<u8>, delivery: Delivery) -> Outcome {
    let body = delivery.body();
    let id = delivery.webhook_id();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("user-agent", crate::AGENT.to_owned()),
        (
            "webhook-signature",
            sign::signature(&key, &id, timestamp, &body),
        ),
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    endpoint.post(&headers, body, ATTEMPT_DEADLINE).await
}

/// The delay before the retry that follows `failures` failed attempts: 1 s doubling, at
/// most 10 min.
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    (FIRST_RETRY * 2u32.pow(doublings)).min(LAST_RETRY)
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_gives_due_keys_in_order_and_sleeps_while_every_slot_runs() {
        let now = Instant::now();
        let mut schedule = Schedule::default();
        schedule.plan("later".into(), now + Duration::from_secs(5));
        for n in 0..10_000 {
            schedule.plan(format!("due-{n}"), now);
        }
        assert_eq!(schedule.wake_at(0), Some(now));
        assert_eq!(
            schedule.wake_at(MAX_IN_FLIGHT),
            None,
            "a due delivery with every slot taken must not wake the loop"
        );
        assert_eq!(schedule.take_due(now).as_deref(), Some("due-0"));
        assert_eq!(schedule.take_due(now).as_deref(), Some("due-1"));
        while schedule.take_due(now).is_some() {}
        assert_eq!(schedule.wake_at(0), Some(now + Duration::from_secs(5)));
        assert_eq!(schedule.take_due(now), None, "not due yet");
    }

    #[test]
    fn retries_back_off_from_one_second_to_ten_minutes() {
        let delays: Vec<u64> = (1..=12).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(retry_delay(u32::MAX), LAST_RETRY);
    }
}
