//! The journal alone, in the bench's process, on the same file system as the agent's data
//! dir: sequential appends of a typical record, each awaited until durable (fdatasync).
//! The agent journals four states on a payment's path (`accepted`, `connecting`, `sent`,
//! final), so four of these bound the added latency from below.

use std::path::Path;
use std::time::Instant;

use super::stats::Summary;
use super::{io_error, BenchError};
use crate::engine::journal::Journal;
use crate::engine::record::{now_rfc3339, Record, State};
use crate::protocol::{Action, Method};

/// Appends `count` records to a fresh journal in `dir`, one at a time.
pub async fn run(dir: &Path, count: usize) -> Result<Summary, BenchError> {
    let (journal, _) = Journal::open(dir).map_err(io_error("opening a scratch journal"))?;
    let mut samples = Vec::with_capacity(count);
    for seq in 0..count as u64 {
        let record = record(seq);
        let started = Instant::now();
        journal
            .append(&record)
            .await
            .map_err(io_error("appending to the scratch journal"))?;
        samples.push(started.elapsed());
    }
    Ok(Summary::of(samples))
}

fn record(seq: u64) -> Record {
    let now = now_rfc3339();
    Record {
        id: format!("journal-{seq}"),
        till: "till-000".to_owned(),
        terminal: "t000".to_owned(),
        amount: super::latency::AMOUNT,
        currency: "EUR".to_owned(),
        action: Action::Debit,
        method: Method::Card,
        refund_of: None,
        confirm_duplicate: false,
        state: State::Sent,
        result: None,
        resolution: None,
        created_at: now.clone(),
        updated_at: now,
        seq,
        receipt: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_append_is_measured_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let summary = run(dir.path(), 5).await.unwrap();
        assert_eq!(summary.count, 5);
        assert!(summary.p50 <= summary.p99);
        let records = Journal::read(dir.path()).unwrap();
        assert_eq!(records.len(), 5);
        assert!(records.iter().all(|r| r.state == State::Sent));
    }
}
