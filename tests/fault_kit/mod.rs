//! Fixtures of the fault, crash and journal-fault tests: the journal read line by line (every
//! state a record went through, not only its latest), and a payment followed to its end on
//! the built binary (run by `common::binary`).
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use caisse_ap_relay::engine::journal::FILE_NAME;
use caisse_ap_relay::engine::record::Record;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::common::binary::Process;
use super::common::{connect_as, next_frame, pay, send, TestAgent, CASHIER};

/// Every complete record line of `data_dir`'s journal, in file order; each line's checksum
/// must hold (a torn last line is ignored: a crash may leave one).
pub fn journal_lines(data_dir: &Path) -> Vec<Record> {
    let bytes = std::fs::read(data_dir.join(FILE_NAME)).unwrap_or_default();
    let lines = bytes.split_inclusive(|b| *b == b'\n');
    let complete = lines.filter_map(|line| line.strip_suffix(b"\n"));
    complete.map(decode_line).collect()
}

fn decode_line(line: &[u8]) -> Record {
    let (crc, json) = line.split_at(9);
    let crc = std::str::from_utf8(&crc[..8]).expect("hex checksum");
    let crc = u32::from_str_radix(crc, 16).expect("hex checksum");
    assert_eq!(crc, crc32fast::hash(json), "checksum of a journal line");
    serde_json::from_slice(json).expect("a journaled record")
}

/// The journal lines of transaction `id`, in order.
pub fn history(data_dir: &Path, id: &str) -> Vec<Record> {
    let lines = journal_lines(data_dir).into_iter();
    lines.filter(|r| r.id == id).collect()
}

/// The state names of `records`.
pub fn states(records: &[Record]) -> Vec<&'static str> {
    records.iter().map(|r| r.state.as_str()).collect()
}

/// Pays `id` (31.00 EUR on `tpe-1`) on the agent `process` and returns the messages about
/// `id` up to a final record or an `error`, or as far as they got before the socket broke.
pub async fn pay_and_follow(
    process: &Process,
    dir: &Arc<tempfile::TempDir>,
    id: &str,
) -> Vec<Value> {
    let agent = TestAgent::external(process.addr, Arc::clone(dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay(id, "tpe-1", 3100)).await;
    let mut seen = Vec::new();
    while let Some(Ok(Message::Text(text))) = next_frame(&mut ws).await {
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["id"] != id {
            continue;
        }
        seen.push(message.clone());
        let state = message["state"].as_str().unwrap_or_default();
        let finals = ["approved", "declined", "not_sent", "unknown"];
        if message["type"] == "error" || finals.contains(&state) {
            break;
        }
    }
    seen
}
