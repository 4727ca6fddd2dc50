//! The fault matrix, through the real agent over wss: every simulator outcome and fault, a
//! connect refused or timing out, and a browser leaving at each live state. For each: the
//! final state and reason the cashier is told, every state the journal went through, and
//! how many requests the terminal received (never two).

use crate::common;
use crate::fault_kit;

use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::engine::record::Record;
use caisse_ap_relay::sim::{Behaviour, Fault, Outcome, Simulator};
use common::*;
use fault_kit::{history, states};
use futures_util::future::join_all;
use serde_json::{json, Value};

/// A deadline no row reaches, except the rows about the deadline.
const LONG: Duration = Duration::from_secs(30);
/// The deadline of the rows about the deadline.
const SHORT: Duration = Duration::from_secs(1);
/// The simulator's "card reading" time: longer than the settle delay, so every answered row
/// goes through `waiting_card`.
const READING: Duration = Duration::from_millis(200);

/// One row: what the terminal does, and what the cashier must be told.
struct Case {
    name: &'static str,
    outcome: &'static str,
    fault: Option<Fault>,
    delay: Duration,
    timeout: Duration,
    state: &'static str,
    reason: Option<&'static str>,
}

const fn case(
    name: &'static str,
    outcome: &'static str,
    fault: Option<Fault>,
    state: &'static str,
    reason: Option<&'static str>,
) -> Case {
    Case {
        name,
        outcome,
        fault,
        delay: READING,
        timeout: LONG,
        state,
        reason,
    }
}

// A table reads best one row per line.
#[rustfmt::skip]
fn matrix() -> Vec<Case> {
    use Fault::*;
    let (ok, unknown) = ("approved", "unknown");
    let lost = Some("connection_lost");
    vec![
        case("approved",             ok,               None,             ok,         None),
        case("declined",             "declined:04",    None,             "declined", None),
        case("contactless",          "cb-contactless", None,             ok,         None),
        case("amex",                 "amex",           None,             ok,         None),
        case("partial",              "partial:1000",   None,             ok,         None),
        case("split inside fields",  ok,               Some(Split),      ok,         None),
        case("split declined",       "declined:11",    Some(Split),      "declined", None),
        case("keep-open",            ok,               Some(KeepOpen),   ok,         None),
        case("slow accept",          ok,               Some(SlowAccept), ok,         None),
        case("garbage",              ok,               Some(Garbage),    unknown,    Some("invalid_answer")),
        case("wrong echo",           ok,               Some(WrongEcho),  unknown,    Some("mismatch")),
        case("close without answer", ok,               Some(Close),      unknown,    lost),
        case("RST mid-answer",       ok,               Some(Reset),      unknown,    lost),
        Case { timeout: SHORT, ..case("hang", ok, Some(Hang), unknown, Some("timeout")) },
        // The terminal answers, but after the deadline.
        Case {
            delay: SHORT * 2,
            timeout: SHORT,
            ..case("answer after the deadline", ok, None, unknown, Some("timeout"))
        },
    ]
}

fn behaviour(case: &Case) -> Behaviour {
    Behaviour {
        outcome: case.outcome.parse::<Outcome>().unwrap(),
        fault: case.fault,
        delay: case.delay,
        magic_amounts: false,
    }
}

/// The journal of `id` in `agent`'s data dir, checked against what the browser saw: the same
/// states in the same order, each journaled once (`sent` before the first byte is written),
/// seqs increasing, the last line the final record.
fn check_journal(agent: &TestAgent, id: &str, seen: &[Value], row: &str) -> Vec<Record> {
    let lines = history(&path_in(agent, "data"), id);
    let journal = states(&lines);
    let browser: Vec<_> = seen.iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(journal, browser, "{row}: journal states, each once");
    let seqs: Vec<_> = lines.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{row}: {seqs:?}");
    let mut last = serde_json::to_value(lines.last().unwrap()).unwrap();
    last["type"] = json!("transaction");
    assert_eq!(&last, seen.last().unwrap(), "{row}: final record journaled");
    lines
}

async fn run_row(case: Case) {
    let sim = spawn_sim(behaviour(&case)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), case.timeout)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("f-1", "tpe-1", 2500)).await;
    let seen = until_final(&mut ws, "f-1").await;
    let states: Vec<_> = seen.iter().map(|m| m["state"].as_str().unwrap()).collect();
    let row = case.name;
    let expected = ["accepted", "connecting", "sent", "waiting_card", case.state];
    assert_eq!(states, expected, "{row}");
    let last = seen.last().unwrap();
    if let Some(reason) = case.reason {
        assert_eq!(last["result"]["reason"], reason, "{row}: {last}");
        assert!(last["result"]["detail"].is_string(), "{row}: {last}");
    } else {
        assert!(last["result"]["ae"].is_string(), "{row}: {last}");
    }
    check_journal(&agent, "f-1", &seen, row);
    assert_eq!(sim.request_count(), 1, "{row}: exactly one request");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_and_fault_ends_true_journaled_and_sent_once() {
    join_all(matrix().into_iter().map(run_row)).await;
}

#[tokio::test]
async fn partial_approval_and_card_details_reach_the_cashier() {
    let case = case("partial", "partial:1000", None, "approved", None);
    let sim = spawn_sim(behaviour(&case)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), LONG)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("p-1", "tpe-1", 2500)).await;
    let last = until_final(&mut ws, "p-1").await.pop().unwrap();
    assert_eq!(last["result"]["partial"], true);
    assert_eq!(last["result"]["approved_amount"], 1000);
    assert_eq!(last["result"]["card"]["pan"], "497010######1234", "{last}");
}

/// Pays on a terminal where nothing answers the connect; returns the final record.
async fn pay_unreachable(addr: impl ToString, connect: Duration) -> (TestAgent, Value) {
    let mut options = options();
    options.engine.connect_timeout = connect;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let agent = spawn_agent_in(dir, vec![terminal("tpe-1", addr, LONG)], options).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("u-1", "tpe-1", 100)).await;
    let mut seen = until_final(&mut ws, "u-1").await;
    let states: Vec<_> = seen.iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["accepted", "connecting", "not_sent"]);
    check_journal(&agent, "u-1", &seen, "unreachable");
    (agent, seen.pop().unwrap())
}

#[tokio::test]
async fn a_connect_refused_is_not_sent() {
    let (_agent, last) = pay_unreachable(closed_port().await, LONG).await;
    let detail = last["result"]["detail"].as_str().unwrap();
    assert!(detail.contains("failed"), "{detail}");
}

/// A real connect timeout on loopback: a listener whose accept queue is full drops SYNs.
#[tokio::test]
async fn a_connect_timeout_is_not_sent_and_marks_the_terminal_unreachable() {
    let (_listener, _filler, addr) = black_hole().await;
    let (agent, last) = pay_unreachable(addr, Duration::from_millis(300)).await;
    let detail = last["result"]["detail"].as_str().unwrap();
    assert!(detail.contains("timed out"), "{detail}");
    let (status, _, body) = https_get(&agent, "/healthz").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["terminals"][0]["state"], "unreachable");
}

/// A display screen watching `tpe-1`; returns once the watch is in place.
async fn observer(agent: &TestAgent) -> Ws {
    let (mut screen, _) = connect_as(agent, DISPLAY).await;
    send(&mut screen, json!({"type": "watch", "terminal": "tpe-1"})).await;
    // Messages are handled in order: once `terminals` is answered, the watch holds.
    send(&mut screen, json!({"type": "terminals"})).await;
    assert_eq!(next_message(&mut screen).await["type"], "terminals");
    screen
}

/// The browser pays, leaves without a close frame once it saw `state`, `release` lets the
/// terminal go on, and the browser comes back: the payment went on, its result follows the
/// next `welcome` and answers `get`. Returns the final record.
async fn leave_at(state: &str, agent: &TestAgent, release: impl FnOnce()) -> Value {
    let id = format!("leave-{state}");
    let mut screen = observer(agent).await;
    let (mut ws, _) = connect_as(agent, CASHIER).await;
    send(&mut ws, pay(&id, "tpe-1", 4200)).await;
    until_state(&mut ws, &id, state).await;
    drop(ws);
    release();
    let seen = until_final(&mut screen, &id).await.pop().unwrap();
    assert_eq!(seen["state"], "approved", "{state}: {seen}");

    // The till gets the record the display saw, in full (the display's is redacted).
    let (mut ws, _) = connect_as(agent, CASHIER).await;
    let done = unreplayed(next_message(&mut ws).await);
    assert_eq!(
        (&done["id"], &done["seq"], &done["state"]),
        (&seen["id"], &seen["seq"], &seen["state"]),
        "{state}: replayed after welcome"
    );
    send(&mut ws, json!({"type": "get", "id": id})).await;
    assert_eq!(next_message(&mut ws).await, done, "{state}: get");
    done
}

async fn leave_at_live_state(state: &'static str) {
    let sim = spawn_sim(Behaviour {
        delay: Duration::from_millis(300),
        ..Behaviour::default()
    })
    .await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), LONG)]).await;
    leave_at(state, &agent, || {}).await;
    assert_eq!(sim.request_count(), 1, "{state}: exactly one request");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_leaving_at_accepted_sent_or_waiting_card_loses_nothing() {
    join_all(["accepted", "sent", "waiting_card"].map(leave_at_live_state)).await;
}

/// The connect hangs (full accept queue) while the browser leaves; then the terminal starts
/// accepting and the agent's retransmitted SYN gets through.
#[tokio::test]
async fn a_browser_leaving_while_connecting_loses_nothing() {
    let (listener, filler, addr) = black_hole().await;
    let mut options = options();
    options.engine.connect_timeout = Duration::from_secs(20);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let agent = spawn_agent_in(dir, vec![terminal("tpe-1", addr, LONG)], options).await;
    let mut sim = None;
    leave_at("connecting", &agent, || {
        // The simulator accepts the filler first (it sends nothing, then goes), then the agent.
        sim = Some(Simulator::spawn(listener, Behaviour::default()));
        drop(filler);
    })
    .await;
    assert_eq!(sim.unwrap().request_count(), 1, "exactly one request");
    agent.stop().await;
}
