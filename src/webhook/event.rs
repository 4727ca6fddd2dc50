//! What one record change owes a webhook (contract §9), and the delivery's body: pure
//! functions of the record, no I/O.

use std::sync::Arc;

use serde_json::json;

use crate::engine::record::Record;

/// The Standard Webhooks event types the agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `transaction.final`: once per transaction, the record when its terminal is released.
    Final,
    /// `transaction.resolved`: each resolution of an `unknown` transaction.
    Resolved,
    /// `transaction.updated`: a change before the final state (`events = "all"` only).
    Updated,
}

impl Kind {
    /// The body's `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Final => "transaction.final",
            Kind::Resolved => "transaction.resolved",
            Kind::Updated => "transaction.updated",
        }
    }
}

/// What a change owes: `None` for a change a `final`-only webhook does not receive. A final
/// state's detail updates (same state, higher seq) are summed up by the one
/// `transaction.final`, sent when the terminal is released.
pub fn kind_of(record: &Record, all_events: bool) -> Option<Kind> {
    if record.resolution.is_some() {
        Some(Kind::Resolved)
    } else if record.state.is_final() {
        Some(Kind::Final)
    } else {
        all_events.then_some(Kind::Updated)
    }
}

/// One owed delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its type.
    pub kind: Kind,
    /// The record it carries, receipt included.
    pub record: Arc<Record>,
}

impl Delivery {
    /// What the delivered log remembers it by: one `final` per transaction, one per change
    /// otherwise.
    pub fn key(&self) -> String {
        let Record { id, seq, .. } = &*self.record;
        match self.kind {
            Kind::Final => format!("final:{id}"),
            Kind::Resolved => format!("resolved:{id}.{seq}"),
            Kind::Updated => format!("updated:{id}.{seq}"),
        }
    }

    /// The `webhook-id` header: `<id>.<seq>`, the same on every attempt.
    pub fn webhook_id(&self) -> String {
        format!("{}.{}", self.record.id, self.record.seq)
    }

    /// The JSON body: `type`, `timestamp` (the record's `updated_at`) and `data`.
    pub fn body(&self) -> Vec<u8> {
        let body = json!({
            "type": self.kind.type_name(),
            "timestamp": self.record.updated_at,
            "data": &*self.record,
        });
        body.to_string().into_bytes()
    }
}

/// The key of transaction `id`'s final delivery (see [`Delivery::key`]).
pub fn final_key(id: &str) -> String {
    format!("final:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, Resolution, ResolvedAs, State};

    #[test]
    fn changes_map_to_event_types() {
        assert_eq!(kind_of(&sample("a", State::Sent), false), None);
        assert_eq!(
            kind_of(&sample("a", State::Sent), true),
            Some(Kind::Updated)
        );
        assert_eq!(
            kind_of(&sample("a", State::Declined), false),
            Some(Kind::Final)
        );
        let mut resolved = sample("a", State::Unknown);
        resolved.resolution = Some(Resolution {
            outcome: ResolvedAs::Approved,
            note: None,
            till: "till-1".into(),
            by_role: crate::engine::record::ResolvedBy::Cashier,
            at: String::new(),
        });
        assert_eq!(kind_of(&resolved, false), Some(Kind::Resolved));
    }

    #[test]
    fn the_body_carries_type_timestamp_and_the_record() {
        let mut record = sample("x.1", State::Approved);
        record.seq = 9;
        record.updated_at = "2026-03-01T10:00:00.000Z".into();
        let delivery = Delivery {
            kind: Kind::Final,
            record: Arc::new(record),
        };
        let body: serde_json::Value = serde_json::from_slice(&delivery.body()).unwrap();
        assert_eq!(body["type"], "transaction.final");
        assert_eq!(body["timestamp"], "2026-03-01T10:00:00.000Z");
        assert_eq!(body["data"]["id"], "x.1");
        assert_eq!(delivery.webhook_id(), "x.1.9");
        assert_eq!(delivery.key(), final_key("x.1"));
    }
}
