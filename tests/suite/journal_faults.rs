//! The journal under faults: damaged records at start, a full disk, and a journal write
//! refused at each step of a payment. The agent keeps serving, sends nothing it could not
//! journal as `sent` first, and never loses a result it announced.

use crate::common;
use crate::fault_kit;

use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::engine::crashpoint::FAIL_VAR;
use caisse_ap_relay::engine::journal::FILE_NAME;
use caisse_ap_relay::sim::{Behaviour, Outcome};
use common::binary::{write_config, Process};
use common::*;
use fault_kit::{history, pay_and_follow, states};
use futures_util::future::join_all;
use serde_json::{json, Value};

/// `get id` on a fresh session of `process`, after the replay that follows `welcome`.
async fn get(process: &Process, dir: &Arc<tempfile::TempDir>, id: &str) -> Value {
    let agent = TestAgent::external(process.addr, Arc::clone(dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    // A probe message after `get`: everything before its answer is replay or the answer.
    send(&mut ws, json!({"type": "get", "id": id})).await;
    send(&mut ws, json!({"type": "terminals"})).await;
    let mut last = Value::Null;
    loop {
        let message = next_message(&mut ws).await;
        if message["type"] == "terminals" {
            return last;
        }
        last = message;
    }
}

/// Makes the JSON of `id`'s last journal line fail its checksum, and leaves a torn line at
/// the end, as a crash during a write would.
fn damage(data: &std::path::Path, id: &str) {
    let path = data.join(FILE_NAME);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let needle = format!("\"id\":\"{id}\"");
    let last = lines.iter().rposition(|l| l.contains(&needle)).unwrap();
    lines[last] = lines[last].replace("\"approved\"", "\"approvex\"");
    let damaged = lines.join("\n") + "\n0badc0de {\"id\":\"torn";
    std::fs::write(&path, damaged).unwrap();
}

/// A damaged record is skipped with a warning; the payment it belonged to falls back to its
/// previous journaled state (here `sent`/`waiting_card`: settled `unknown`, the cashier checks
/// the ticket), the other results stay, and the agent serves.
#[tokio::test]
async fn damaged_records_are_skipped_with_a_warning_and_the_agent_serves() {
    let sim = spawn_sim(Behaviour::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let data = dir.path().join("data");
    let mut first = Process::start(&config, &[]).await;
    let damaged = pay_and_follow(&first, &dir, "j-1").await.pop().unwrap();
    assert_eq!(damaged["state"], "approved");
    sim.set_behaviour(Behaviour {
        outcome: Outcome::Declined("04".into()),
        ..Behaviour::default()
    });
    let intact = pay_and_follow(&first, &dir, "j-2").await.pop().unwrap();
    assert_eq!(intact["state"], "declined");
    first.kill();
    damage(&data, "j-1");

    let mut second = Process::start(&config, &[]).await;
    second.log_line("journal: skipping damaged line").await;
    second.log_line("journal: skipping torn last line").await;
    let kept_aside = std::fs::read_dir(&data).unwrap().any(|entry| {
        let name = entry.unwrap().file_name();
        name.to_string_lossy().starts_with("journal.damaged-")
    });
    assert!(kept_aside, "the damaged file is kept for investigation");
    assert_eq!(get(&second, &dir, "j-2").await, intact);
    let fallen_back = get(&second, &dir, "j-1").await;
    assert_eq!(fallen_back["state"], "unknown", "{fallen_back}");
    assert_eq!(fallen_back["result"]["reason"], "agent_restart");
    sim.set_behaviour(Behaviour::default());
    let served = pay_and_follow(&second, &dir, "j-3").await.pop().unwrap();
    assert_eq!(served["state"], "approved");
    assert_eq!(sim.request_count(), 3, "nothing sent again");
}

/// A full disk: `journal.log` is a symlink to `/dev/full`, where every write fails with
/// ENOSPC as on a full filesystem (file permissions cannot make a directory unwritable for
/// root, who runs these tests in CI; a real full filesystem needs a mount). Space returns
/// when the name points at a regular file again: the journal reopens it by name after a
/// failed write.
#[tokio::test]
async fn a_full_disk_refuses_payments_sends_nothing_and_recovers() {
    let sim = spawn_sim(Behaviour::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let journal = dir.path().join("data").join(FILE_NAME);
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &journal).unwrap();
    let terminals = vec![terminal("tpe-1", sim.addr(), Duration::from_secs(30))];
    let agent = spawn_agent_in(Arc::clone(&dir), terminals, options()).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;

    for _attempt in 0..2 {
        send(&mut ws, pay("d-1", "tpe-1", 1000)).await;
        let error = next_message(&mut ws).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(
            (error["code"].as_str(), error["id"].as_str()),
            (Some("internal"), Some("d-1"))
        );
        let text = error["message"].as_str().unwrap();
        assert!(
            text.contains("journal unavailable") && text.contains("nothing was sent"),
            "{text}"
        );
    }
    send(&mut ws, json!({"type": "get", "id": "d-1"})).await;
    assert_eq!(next_message(&mut ws).await["code"], "not_found");
    send(&mut ws, json!({"type": "terminals"})).await;
    let terminals = next_message(&mut ws).await;
    assert_eq!(
        terminals["terminals"][0]["state"], "idle",
        "the terminal is not held"
    );
    assert_eq!(sim.request_count(), 0, "nothing reached the terminal");

    std::fs::remove_file(&journal).unwrap();
    std::fs::write(&journal, b"").unwrap();
    send(&mut ws, pay("d-1", "tpe-1", 1000)).await;
    let done = until_final(&mut ws, "d-1").await.pop().unwrap();
    assert_eq!(done["state"], "approved");
    assert_eq!(sim.request_count(), 1);
    let lines = history(&dir.path().join("data"), "d-1");
    assert_eq!(states(&lines).last(), Some(&"approved"));
    agent.stop().await;
}

/// One refused journal write: where, and what the cashier must be told.
struct Refusal {
    point: &'static str,
    /// The final state, or `None` when `pay` itself is refused: one of these. `accepted`
    /// and `connecting` wait up to `FLUSH_WAIT` to share `sent`'s write, which refuses them
    /// all when it fails (the common case); after a slow connect they were written before.
    states: &'static [Option<&'static str>],
    requests: usize,
    /// The refused record was announced, so the agent appends it again by itself.
    retried: bool,
}

const fn refusal(
    point: &'static str,
    states: &'static [Option<&'static str>],
    requests: usize,
) -> Refusal {
    Refusal {
        point,
        states,
        requests,
        retried: requests > 0,
    }
}

fn refusals() -> Vec<Refusal> {
    vec![
        refusal("accepted.fsync", &[None], 0),
        // Not journaled as `sent` → never written to the terminal.
        refusal("connecting.fsync", &[None, Some("not_sent")], 0),
        refusal("sent.fsync", &[None, Some("not_sent")], 0),
        refusal("waiting_card.fsync", &[Some("approved")], 1),
        // The result is announced anyway, and journaled by the retry.
        refusal("approved.fsync", &[Some("approved")], 1),
    ]
}

async fn refuse_once(case: Refusal) {
    let point = case.point;
    let sim = spawn_sim(Behaviour {
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    })
    .await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let data = dir.path().join("data");
    let mut faulty = Process::start(&config, &[(FAIL_VAR, point)]).await;
    let last = pay_and_follow(&faulty, &dir, "r-1").await.pop().unwrap();
    let state = check_told(&case, &last);
    if case.retried {
        // After `approved.fsync` nothing else is appended meanwhile: only the periodic retry
        // can journal it.
        faulty.log_line("unjournaled record now durable").await;
    }
    let next = pay_and_follow(&faulty, &dir, "r-2").await.pop().unwrap();
    assert_eq!(next["state"], "approved", "{point}: the agent serves");
    assert_eq!(sim.request_count(), case.requests + 1, "{point}");
    if state.is_some() {
        // Journaled before `r-2` was accepted: the retry runs before any later append.
        let lines = history(&data, "r-1");
        let mut journaled = serde_json::to_value(lines.last().unwrap()).unwrap();
        journaled["type"] = json!("transaction");
        assert_eq!(
            journaled, last,
            "{point}: the announced result is journaled"
        );
        let finals = lines.iter().filter(|r| r.state.is_final()).count();
        assert_eq!(finals, 1, "{point}: journaled once");
    }
    faulty.kill();

    let restarted = Process::start(&config, &[]).await;
    let after = get(&restarted, &dir, "r-1").await;
    match state {
        None => assert_eq!(after["code"], "not_found", "{point}: {after}"),
        Some(_) => assert_eq!(after, last, "{point}: the result survives a kill -9"),
    }
    assert_eq!(
        sim.request_count(),
        case.requests + 1,
        "{point}: nothing sent again"
    );
}

/// Checks what the cashier was told; returns the final state (`None`: `pay` refused).
fn check_told(case: &Refusal, last: &Value) -> Option<&'static str> {
    let point = case.point;
    let told = case.states.iter().copied().find(|state| match state {
        None => last["type"] == "error",
        Some(state) => last["state"] == *state,
    });
    let Some(state) = told.unwrap_or_else(|| panic!("{point}: told {last}")) else {
        assert_eq!(last["code"], "internal", "{point}: {last}");
        let text = last["message"].as_str().unwrap();
        assert!(text.contains("journal unavailable"), "{point}: {text}");
        return None;
    };
    if state == "not_sent" {
        let detail = last["result"]["detail"].as_str().unwrap();
        assert!(detail.contains("journal unavailable"), "{point}: {detail}");
    }
    Some(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_journal_write_never_sends_unjournaled_and_never_loses_a_result() {
    join_all(refusals().into_iter().map(refuse_once)).await;
}
