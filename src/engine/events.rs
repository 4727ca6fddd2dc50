//! The event bus: every announced record change, routed to the sessions that follow it.
//!
//! A session subscribes for its till and adds each terminal it watches (both through
//! `feed`, which reads the session's snapshot in the same step); an announcement goes
//! to the subscriptions of the record's till and the watchers of its terminal only (once to a
//! session that is both), so a change wakes its few interested sessions, not every open
//! socket. Each subscription has its own bounded channel and sending never waits: a full
//! channel marks that subscription lagged (the session then resynchronises from the ledger),
//! so a slow session never slows the engine or the other sessions. Announcements are made in
//! seq order (the ledger holds its seq lock while announcing), so each subscription receives
//! increasing seqs. Dropping a [`Subscription`] removes it from every route.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::mpsc::{self, error::TrySendError};

use super::record::Record;

/// How many announcements a subscription may hold unread before it lags.
pub const BUS_CAPACITY: usize = 256;

/// The sending side of the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    routes: Arc<Mutex<Routes>>,
    capacity: usize,
}

/// Who follows what: subscriptions by id, by till name, by watched terminal, and those
/// taking every announcement.
#[derive(Debug, Default)]
struct Routes {
    next_id: u64,
    tills: HashMap<String, Outlets>,
    terminals: HashMap<String, Outlets>,
    everything: Outlets,
}

/// Subscriptions by id.
type Outlets = HashMap<u64, Arc<Outlet>>;

/// The subscriptions routed under `key` (none when nobody follows it).
fn route<'a>(
    map: &'a HashMap<String, Outlets>,
    key: &str,
) -> impl Iterator<Item = &'a Arc<Outlet>> {
    map.get(key).into_iter().flat_map(HashMap::values)
}

/// The bus's end of one subscription.
#[derive(Debug)]
struct Outlet {
    id: u64,
    /// The till this subscription follows (`None`: it takes every announcement).
    till: Option<String>,
    sender: mpsc::Sender<Arc<Record>>,
    /// Announcements dropped because the channel was full, not yet reported.
    missed: AtomicU64,
}

/// Why [`Subscription::recv`] returned no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// This many announcements were dropped because the channel was full: resynchronise.
    Lagged(u64),
    /// The bus is gone.
    Closed,
}

/// One session's end of the bus; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    outlet: Arc<Outlet>,
    receiver: mpsc::Receiver<Arc<Record>>,
    routes: Weak<Mutex<Routes>>,
}

impl EventBus {
    /// A bus whose subscriptions each hold up to `capacity` unread announcements.
    pub fn new(capacity: usize) -> EventBus {
        EventBus {
            routes: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// A subscription to every announcement made from now on (tools and tests).
    pub fn subscribe(&self) -> Subscription {
        self.open(None)
    }

    /// A subscription to the announcements of `till`'s records made from now on; add
    /// terminals with [`Subscription::watch`]. Sessions get theirs from
    /// [`Engine::follow`](super::Engine::follow).
    pub(super) fn subscribe_till(&self, till: &str) -> Subscription {
        self.open(Some(till.to_owned()))
    }

    fn open(&self, till: Option<String>) -> Subscription {
        let (sender, receiver) = mpsc::channel(self.capacity);
        let mut routes = lock(&self.routes);
        routes.next_id += 1;
        let outlet = Arc::new(Outlet {
            id: routes.next_id,
            till,
            sender,
            missed: AtomicU64::new(0),
        });
        let route = match &outlet.till {
            Some(till) => routes.tills.entry(till.clone()).or_default(),
            None => &mut routes.everything,
        };
        route.insert(outlet.id, Arc::clone(&outlet));
        Subscription {
            outlet,
            receiver,
            routes: Arc::downgrade(&self.routes),
        }
    }

    /// Announces a change to the subscriptions that follow it; never waits, and nobody
    /// listening is fine.
    pub fn announce(&self, record: Arc<Record>) {
        let mut routes = lock(&self.routes);
        let mut closed = Vec::new();
        let by_till = route(&routes.tills, &record.till);
        // A watcher of the terminal that follows the record's till got it with its till, and
        // one that takes everything got it already.
        let watchers = route(&routes.terminals, &record.terminal)
            .filter(|o| o.till.as_deref().is_some_and(|till| till != record.till));
        for outlet in by_till.chain(routes.everything.values()).chain(watchers) {
            if !outlet.offer(&record) {
                closed.push(outlet.id);
            }
        }
        for id in closed {
            routes.remove(id);
        }
    }
}

impl Outlet {
    /// Queues `record` without waiting; `false` when the subscription is gone.
    fn offer(&self, record: &Arc<Record>) -> bool {
        match self.sender.try_send(Arc::clone(record)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.missed.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

impl Routes {
    /// Takes subscription `id` out of every route.
    fn remove(&mut self, id: u64) {
        self.everything.remove(&id);
        for routes in [&mut self.tills, &mut self.terminals] {
            routes.retain(|_, outlets| {
                outlets.remove(&id);
                !outlets.is_empty()
            });
        }
    }
}

impl Subscription {
    /// Also receives the announcements of `terminal`'s records; `false` when it already did.
    /// Only through [`Engine::watch`](super::Engine::watch), which reads the snapshot in step.
    pub(super) fn watch(&self, terminal: &str) -> bool {
        self.with_routes(|routes| {
            let watchers = routes.terminals.entry(terminal.to_owned()).or_default();
            watchers
                .insert(self.outlet.id, Arc::clone(&self.outlet))
                .is_none()
        })
        .unwrap_or(false)
    }

    /// The next announcement, in seq order; [`RecvError::Lagged`] as soon as some were
    /// dropped (the records still queued are newer than the last one received).
    pub async fn recv(&mut self) -> Result<Arc<Record>, RecvError> {
        let missed = self.outlet.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            return Err(RecvError::Lagged(missed));
        }
        self.receiver.recv().await.ok_or(RecvError::Closed)
    }

    fn with_routes<T>(&self, f: impl FnOnce(&mut Routes) -> T) -> Option<T> {
        let routes = self.routes.upgrade()?;
        let mut routes = lock(&routes);
        Some(f(&mut routes))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.with_routes(|routes| routes.remove(self.outlet.id));
    }
}

/// Locks the routes; a panic elsewhere cannot leave them half-changed (every change is a
/// single map operation), so a poisoned lock is taken as is.
fn lock(routes: &Mutex<Routes>) -> MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::engine::record::{sample, State};

    fn record(seq: u64, till: &str, terminal: &str) -> Arc<Record> {
        let record = sample(&format!("r{seq}"), State::Accepted);
        Arc::new(Record {
            seq,
            till: till.into(),
            terminal: terminal.into(),
            ..record
        })
    }

    fn is_empty(subscription: &mut Subscription) -> bool {
        subscription.recv().now_or_never().is_none()
    }

    #[tokio::test]
    async fn a_session_of_another_till_is_not_woken() {
        let bus = EventBus::new(8);
        let mut own = bus.subscribe_till("till-1");
        let mut other = bus.subscribe_till("till-2");
        bus.announce(record(1, "till-1", "tpe-1"));
        assert_eq!(own.recv().await.unwrap().seq, 1);
        assert!(is_empty(&mut other), "another till's change reached it");
    }

    #[tokio::test]
    async fn a_watcher_gets_its_terminal_once_even_when_it_follows_the_till_too() {
        let bus = EventBus::new(8);
        let mut display = bus.subscribe_till("display");
        let mut cashier = bus.subscribe_till("till-1");
        assert!(display.watch("tpe-1") && cashier.watch("tpe-1"));
        assert!(!display.watch("tpe-1"), "already watching");
        bus.announce(record(1, "till-1", "tpe-1"));
        bus.announce(record(2, "till-1", "tpe-2"));
        assert_eq!(display.recv().await.unwrap().seq, 1);
        assert!(is_empty(&mut display), "tpe-2 is not watched");
        assert_eq!(cashier.recv().await.unwrap().seq, 1);
        assert_eq!(cashier.recv().await.unwrap().seq, 2);
        assert!(is_empty(&mut cashier), "sent once, not once per route");
    }

    #[tokio::test]
    async fn a_subscription_to_everything_that_watches_gets_each_change_once() {
        let bus = EventBus::new(8);
        let mut operator = bus.subscribe();
        assert!(operator.watch("tpe-1"));
        bus.announce(record(1, "till-1", "tpe-1"));
        bus.announce(record(2, "till-2", "tpe-2"));
        assert_eq!(operator.recv().await.unwrap().seq, 1);
        assert_eq!(operator.recv().await.unwrap().seq, 2);
        assert!(is_empty(&mut operator), "sent once, not once per route");
    }

    #[tokio::test]
    async fn a_full_channel_lags_its_subscription_alone_without_blocking() {
        let bus = EventBus::new(2);
        let mut slow = bus.subscribe_till("till-1");
        for seq in 1..=3 {
            bus.announce(record(seq, "till-1", "tpe-1"));
        }
        let mut fast = bus.subscribe();
        bus.announce(record(4, "till-1", "tpe-1"));
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(2)));
        assert_eq!(
            slow.recv().await.unwrap().seq,
            1,
            "queued ones stay, in order"
        );
        assert_eq!(fast.recv().await.unwrap().seq, 4);
    }

    #[tokio::test]
    async fn a_dropped_subscription_leaves_every_route() {
        let bus = EventBus::new(2);
        let subscription = bus.subscribe_till("till-1");
        subscription.watch("tpe-1");
        drop(subscription);
        let routes = lock(&bus.routes);
        assert!(routes.tills.is_empty() && routes.terminals.is_empty());
    }
}
