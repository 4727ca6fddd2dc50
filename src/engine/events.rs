//! The event bus: every announced record change, fanned out to every session.
//!
//! One bounded `broadcast` channel: a slow session only lags its own receiver (it then
//! resynchronises from the ledger), it never slows the engine or other sessions.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::record::Record;

/// How many announcements a receiver may fall behind before it lags.
pub const BUS_CAPACITY: usize = 1024;

/// The sending side of the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Record>>,
}

impl EventBus {
    /// A bus holding up to `capacity` announcements per receiver.
    pub fn new(capacity: usize) -> EventBus {
        EventBus {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// A receiver of every announcement made from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.sender.subscribe()
    }

    /// Announces a change; nobody listening is fine.
    pub fn announce(&self, record: Arc<Record>) {
        let _ = self.sender.send(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, State};

    fn record(seq: u64) -> Arc<Record> {
        let record = sample(&format!("r{seq}"), State::Accepted);
        Arc::new(Record { seq, ..record })
    }

    #[tokio::test]
    async fn a_slow_receiver_lags_alone() {
        let bus = EventBus::new(2);
        let mut slow = bus.subscribe();
        for seq in 1..=3 {
            bus.announce(record(seq));
        }
        let mut fast = bus.subscribe();
        bus.announce(record(4));
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        assert_eq!(fast.recv().await.unwrap().seq, 4);
    }
}
