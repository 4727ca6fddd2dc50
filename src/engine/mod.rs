//! Transactions: the registry of terminals, the state machine, idempotency, the journal
//! and the event bus.

pub mod journal;
pub mod record;
