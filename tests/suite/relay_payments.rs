//! Payments through the real agent over wss against simulated terminals: every final state
//! of the contract's table, the phase sequence, busy terminals, idempotency and cancel.

use crate::common;

use std::time::Duration;

use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::*;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

fn behaviour(outcome: Outcome, fault: Option<Fault>, delay_ms: u64) -> Behaviour {
    Behaviour {
        outcome,
        fault,
        delay: Duration::from_millis(delay_ms),
        magic_amounts: false,
    }
}

/// Pays `amount` on a terminal at `address` with `timeout`; returns every record seen.
async fn pay_on(address: impl ToString, timeout: Duration) -> Vec<serde_json::Value> {
    let agent = spawn_agent(vec![terminal("tpe-1", address, timeout)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("t-1", "tpe-1", 1245)).await;
    let seen = until_final(&mut ws, "t-1").await;
    agent.stop().await;
    seen
}

async fn final_of(fault: Option<Fault>, timeout: Duration) -> serde_json::Value {
    let sim = spawn_sim(behaviour(Outcome::Approved, fault, 0)).await;
    let seen = pay_on(sim.addr(), timeout).await;
    assert_eq!(
        sim.request_count(),
        1,
        "exactly one request reached the terminal"
    );
    seen.last().unwrap().clone()
}

#[tokio::test]
async fn approved_goes_through_every_phase_with_increasing_seq() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None, 400)).await;
    let seen = pay_on(sim.addr(), DEADLINE).await;
    let states: Vec<_> = seen.iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(
        states,
        ["accepted", "connecting", "sent", "waiting_card", "approved"]
    );
    let seqs: Vec<_> = seen.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let last = seen.last().unwrap();
    assert_eq!(last["till"], "till-1");
    assert_eq!(last["amount"], 1245);
    assert_eq!(last["currency"], "EUR");
    assert_eq!(last["action"], "debit");
    assert_eq!(last["method"], "card");
    assert_eq!(last["result"]["ae"], "10");
    assert!(last["result"]["raw"].is_string());
    assert!(last["created_at"].is_string() && last["updated_at"].is_string());
}

#[tokio::test]
async fn declined_carries_af_reason_and_label() {
    let sim = spawn_sim(behaviour(Outcome::Declined("04".into()), None, 0)).await;
    let last = pay_on(sim.addr(), DEADLINE).await.pop().unwrap();
    assert_eq!(last["state"], "declined");
    assert_eq!(last["result"]["ae"], "01");
    assert_eq!(last["result"]["af"], "04");
    assert!(last["result"]["reason"].is_string());
    assert!(last["result"]["label"].is_string());
}

#[tokio::test]
async fn a_refused_connection_is_not_sent() {
    let last = pay_on(closed_port().await, DEADLINE).await.pop().unwrap();
    assert_eq!(last["state"], "not_sent");
    assert!(last["result"]["detail"].is_string());
}

#[tokio::test]
async fn no_answer_before_the_deadline_is_unknown_timeout() {
    let last = final_of(Some(Fault::Hang), Duration::from_secs(1)).await;
    assert_eq!(last["state"], "unknown");
    assert_eq!(last["result"]["reason"], "timeout");
}

#[tokio::test]
async fn a_close_without_answer_is_unknown_connection_lost() {
    let last = final_of(Some(Fault::Close), DEADLINE).await;
    assert_eq!(last["state"], "unknown");
    assert_eq!(last["result"]["reason"], "connection_lost");
}

#[tokio::test]
async fn garbage_is_unknown_invalid_answer() {
    let last = final_of(Some(Fault::Garbage), DEADLINE).await;
    assert_eq!(last["state"], "unknown");
    assert_eq!(last["result"]["reason"], "invalid_answer");
}

#[tokio::test]
async fn a_wrong_echo_is_unknown_mismatch() {
    let last = final_of(Some(Fault::WrongEcho), DEADLINE).await;
    assert_eq!(last["state"], "unknown");
    assert_eq!(last["result"]["reason"], "mismatch");
}

#[tokio::test]
async fn a_busy_terminal_refuses_at_once_naming_the_holder() {
    let sim = spawn_sim(behaviour(Outcome::Approved, Some(Fault::Hang), 0)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("first", "tpe-1", 100)).await;
    until_state(&mut ws, "first", "waiting_card").await;
    send(&mut ws, pay("second", "tpe-1", 200)).await;
    let error = next_message(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "terminal_busy");
    assert_eq!(error["id"], "second");
    assert_eq!(error["current"], "first");
    assert!(error["message"].as_str().unwrap().contains("first"));
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_replayed_pay_returns_the_record_without_a_second_request() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None, 0)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("once", "tpe-1", 1245)).await;
    let first = until_final(&mut ws, "once").await.pop().unwrap();
    send(&mut ws, pay("once", "tpe-1", 1245)).await;
    let replayed = next_message(&mut ws).await;
    assert_eq!(replayed, first);
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn the_same_id_with_other_parameters_is_a_conflict() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None, 0)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("dup", "tpe-1", 1245)).await;
    until_final(&mut ws, "dup").await;
    send(&mut ws, pay("dup", "tpe-1", 999)).await;
    let error = next_message(&mut ws).await;
    assert_eq!(
        (error["code"].as_str(), error["id"].as_str()),
        (Some("id_conflict"), Some("dup"))
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn cancel_during_connect_is_not_sent() {
    let (_listener, _filler, addr) = black_hole().await;
    let mut options = options();
    options.engine.connect_timeout = Duration::from_secs(60);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let agent = spawn_agent_in(dir, vec![terminal("tpe-1", addr, DEADLINE)], options).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("c-1", "tpe-1", 100)).await;
    until_state(&mut ws, "c-1", "connecting").await;
    send(&mut ws, json!({"type": "cancel", "id": "c-1"})).await;
    let last = until_final(&mut ws, "c-1").await.pop().unwrap();
    assert_eq!(last["state"], "not_sent");
    assert_eq!(last["result"]["detail"], "cancelled");
    let status = https_get(&agent, "/healthz").await;
    let body: serde_json::Value = serde_json::from_slice(&status.2).unwrap();
    assert_eq!(
        body["terminals"][0]["state"], "idle",
        "a cancel frees the terminal"
    );
}

#[tokio::test]
async fn cancel_after_send_is_too_late() {
    let sim = spawn_sim(behaviour(Outcome::Approved, Some(Fault::Hang), 0)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("late", "tpe-1", 100)).await;
    until_state(&mut ws, "late", "waiting_card").await;
    send(&mut ws, json!({"type": "cancel", "id": "late"})).await;
    let error = next_message(&mut ws).await;
    assert_eq!(error["code"], "too_late");
    assert_eq!(error["id"], "late");
    assert!(error["message"].as_str().unwrap().contains("red key"));
}

#[tokio::test]
async fn invalid_pay_fields_are_named_and_nothing_is_sent() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None, 0)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let cases = [
        (
            json!({"type": "pay", "id": "a", "terminal": "tpe-1", "amount": 12.45, "currency": "EUR"}),
            "amount",
        ),
        (
            json!({"type": "pay", "id": "a b", "terminal": "tpe-1", "amount": 1, "currency": "EUR"}),
            "id",
        ),
        (
            json!({"type": "pay", "id": "a", "terminal": "tpe-1", "amount": 1, "currency": "XXQ"}),
            "currency",
        ),
        (
            json!({"type": "pay", "id": "a", "terminal": "tpe-1", "amount": 1}),
            "currency",
        ),
    ];
    for (message, field) in cases {
        send(&mut ws, message).await;
        let error = next_message(&mut ws).await;
        assert_eq!(error["code"], "bad_request");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    send(&mut ws, pay("a", "nope", 1)).await;
    let error = next_message(&mut ws).await;
    assert_eq!(
        (error["code"].as_str(), error["id"].as_str()),
        (Some("unknown_terminal"), Some("a"))
    );
    assert_eq!(sim.request_count(), 0);
}

/// Every message until `id` is final (transactions of any id, errors), in arrival order.
async fn messages_until_final(ws: &mut common::Ws, id: &str) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    loop {
        let message = next_message(ws).await;
        let done = message["id"] == id
            && ["approved", "declined", "not_sent", "unknown"]
                .contains(&message["state"].as_str().unwrap_or_default());
        seen.push(message);
        if done {
            return seen;
        }
    }
}

fn of<'a>(seen: &'a [serde_json::Value], id: &str) -> Vec<&'a serde_json::Value> {
    let records = seen.iter().filter(|m| m["type"] == "transaction");
    records.filter(|m| m["id"] == id).collect()
}

fn position(seen: &[serde_json::Value], id: &str, state: &str) -> usize {
    let found = seen
        .iter()
        .position(|m| m["id"] == id && m["state"] == state);
    found.unwrap_or_else(|| panic!("no {state} for {id}: {seen:?}"))
}

/// An agent in front of `sim` that drains 300 ms after an answer, as in production (the
/// tests' default is shorter): long enough for the simulator's late fields.
async fn spawn_draining_agent(sim: &caisse_ap_relay::sim::Simulator) -> TestAgent {
    let mut options = options();
    options.engine.drain = caisse_ap_relay::engine::EngineOptions::default().drain;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    spawn_agent_in(dir, vec![terminal("tpe-1", sim.addr(), DEADLINE)], options).await
}

#[tokio::test]
async fn a_decided_answer_is_final_at_once_and_later_fields_amend_it() {
    let sim = spawn_sim(behaviour(Outcome::Approved, Some(Fault::SplitAfterAe), 0)).await;
    let agent = spawn_draining_agent(&sim).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("early", "tpe-1", 1245)).await;
    let decided = until_final(&mut ws, "early").await.pop().unwrap();
    assert_eq!(decided["state"], "approved");
    assert!(
        decided["result"]["card"].is_null(),
        "decided before the card fields: {decided}"
    );

    // The terminal drains: one pay waits for it, a further one is refused naming the waiting one.
    send(&mut ws, pay("next", "tpe-1", 500)).await;
    send(&mut ws, pay("third", "tpe-1", 700)).await;
    let seen = messages_until_final(&mut ws, "next").await;
    let busy = seen.iter().find(|m| m["type"] == "error").unwrap();
    assert_eq!(
        (&busy["code"], &busy["id"], &busy["current"]),
        (&json!("terminal_busy"), &json!("third"), &json!("next"))
    );
    let amended = of(&seen, "early");
    assert_eq!(amended.len(), 1, "{seen:?}");
    assert_eq!(
        amended[0]["state"], "approved",
        "a final state never changes"
    );
    assert!(amended[0]["seq"].as_u64() > decided["seq"].as_u64());
    assert_eq!(amended[0]["result"]["card"]["application"], "CB");
    assert_eq!(amended[0]["result"]["authorization"], "632145");
    assert_eq!(amended[0]["result"]["contract"], "4242424");
    let states: Vec<_> = of(&seen, "next")
        .iter()
        .map(|m| m["state"].clone())
        .collect();
    assert_eq!(states, ["accepted", "connecting", "sent", "approved"]);
    let early_done = seen.iter().position(|m| m["id"] == "early").unwrap();
    assert!(
        position(&seen, "next", "connecting") > early_done,
        "the waiting pay starts once the drain ended"
    );
    assert!(
        position(&seen, "next", "accepted") < early_done,
        "a waiting pay is accepted at once, not held back for its connect's fsync"
    );
    assert_eq!(sim.request_count(), 2, "the refused pay reached nobody");
}

#[tokio::test]
async fn a_waiting_pay_can_be_cancelled() {
    let sim = spawn_sim(behaviour(Outcome::Approved, Some(Fault::SplitAfterAe), 0)).await;
    let agent = spawn_draining_agent(&sim).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("early", "tpe-1", 1245)).await;
    until_final(&mut ws, "early").await;
    send(&mut ws, pay("waiting", "tpe-1", 500)).await;
    send(&mut ws, json!({"type": "cancel", "id": "waiting"})).await;
    let seen = messages_until_final(&mut ws, "waiting").await;
    let last = of(&seen, "waiting").pop().unwrap();
    assert_eq!(
        (&last["state"], &last["result"]["detail"]),
        (&json!("not_sent"), &json!("cancelled"))
    );
    send(&mut ws, pay("after", "tpe-1", 600)).await;
    let last = until_final(&mut ws, "after").await.pop().unwrap();
    assert_eq!(last["state"], "approved", "the terminal is free again");
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn ae_first_is_final_once_with_every_field() {
    let sim = spawn_sim(behaviour(Outcome::Approved, Some(Fault::AeFirst), 0)).await;
    let agent = spawn_draining_agent(&sim).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("ae", "tpe-1", 1245)).await;
    let first = until_final(&mut ws, "ae").await.pop().unwrap();
    assert_eq!(first["result"]["card"]["application"], "CB", "{first}");
    // The next payment starts after the first one's drain: nothing about `ae` came between.
    send(&mut ws, pay("then", "tpe-1", 500)).await;
    let seen = messages_until_final(&mut ws, "then").await;
    assert!(of(&seen, "ae").is_empty(), "no amendment: {seen:?}");
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn a_terminal_closing_after_its_answer_is_free_at_once() {
    let sim = spawn_sim(behaviour(
        Outcome::Declined("04".into()),
        Some(Fault::AnswerClose),
        0,
    ))
    .await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    for id in ["c-1", "c-2", "c-3"] {
        send(&mut ws, pay(id, "tpe-1", 1245)).await;
        let last = until_final(&mut ws, id).await.pop().unwrap();
        assert_eq!(
            (&last["state"], &last["result"]["af"]),
            (&json!("declined"), &json!("04"))
        );
    }
    assert_eq!(sim.request_count(), 3);
}
