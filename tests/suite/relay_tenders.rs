//! Contract v2 §11 through the real agent over wss: ANCV chèques-vacances, terminal tickets
//! (CK sent, ZT decoded into `result.ticket`, dropped from `raw`), the reference echo (CF),
//! application labels, and the duplicate-tag rule, against simulators and canned terminals.

use crate::common;

use std::time::Duration;

use caisse_ap_relay::config::TerminalConfig;
use caisse_ap_relay::protocol::fields::decode;
use caisse_ap_relay::protocol::{TicketCopy, TicketFormat, TicketRequest};
use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DEADLINE: Duration = Duration::from_secs(30);

fn behaviour(outcome: Outcome, fault: Option<Fault>) -> Behaviour {
    Behaviour {
        outcome,
        fault,
        ..Behaviour::default()
    }
}

fn with_ticket(mut t: TerminalConfig, copy: TicketCopy) -> TerminalConfig {
    t.ticket = Some(TicketRequest {
        copy,
        format: TicketFormat::Text,
    });
    t
}

/// Sends `message` as a cashier and returns the final record, waiting for the update that
/// carries the ticket when `tickets` (it may follow the decision, api.md §7.1).
async fn final_record(terminal: TerminalConfig, message: Value, tickets: bool) -> Value {
    let agent = spawn_agent(vec![terminal]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let id = message["id"].as_str().unwrap().to_owned();
    send(&mut ws, message).await;
    let mut last = until_final(&mut ws, &id).await.pop().unwrap();
    while tickets && last["result"]["ticket"].is_null() {
        let next = next_message(&mut ws).await;
        if next["id"] == id.as_str() {
            last = next;
        }
    }
    agent.stop().await;
    last
}

fn pay_with(id: &str, amount: u64, method: &str) -> Value {
    let mut message = pay(id, "tpe-1", amount);
    message["method"] = json!(method);
    message
}

#[tokio::test]
async fn ancv_is_sent_as_cc_00v_and_recorded_as_ancv() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None)).await;
    let t = terminal("tpe-1", sim.addr(), DEADLINE);
    let last = final_record(t, pay_with("v-1", 5000, "ancv"), false).await;
    assert_eq!(last["state"], "approved", "{last}");
    assert_eq!(last["method"], "ancv");
    assert_eq!(
        last["result"]["card"]["application"],
        "ANCV chèques-vacances"
    );
    let request = &sim.requests()[0];
    assert!(request.ends_with("BA0010CC00300V"), "{request}");
    assert!(
        !request.contains("CK") && !request.contains("CF"),
        "{request}"
    );
}

#[tokio::test]
async fn an_unknown_method_is_refused_naming_ancv() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None)).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), DEADLINE)]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay_with("v-2", 5000, "voucher")).await;
    let answer = next_message(&mut ws).await;
    assert_eq!(answer["code"], "bad_request", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("ancv"));
    assert_eq!(sim.request_count(), 0);
    agent.stop().await;
}

#[tokio::test]
async fn both_tickets_reach_the_cashier_record_and_leave_raw() {
    let sim = spawn_sim(behaviour(Outcome::CbContactless, None)).await;
    let t = with_ticket(terminal("tpe-1", sim.addr(), DEADLINE), TicketCopy::Both);
    let last = final_record(t, pay("k-1", "tpe-1", 2500), true).await;
    assert_eq!(last["state"], "approved", "{last}");
    assert!(
        sim.requests()[0].contains("CK003120"),
        "{:?}",
        sim.requests()
    );
    let tickets = last["result"]["ticket"].as_array().unwrap();
    assert_eq!(tickets.len(), 2, "{last}");
    assert_eq!(tickets[0]["kind"], "customer");
    assert_eq!(tickets[1]["kind"], "merchant");
    let text = tickets[0]["text"].as_str().unwrap();
    assert!(
        text.contains("DEBIT 25,00 EUR") && text.contains('\n'),
        "{text}"
    );
    let raw = last["result"]["raw"].as_str().unwrap();
    assert!(!raw.contains("ZT"), "{raw}");
    let parsed = decode(raw.as_bytes()).unwrap().expect("raw still parses");
    assert_eq!(parsed[0].get("AE"), Some("10"));
}

#[tokio::test]
async fn a_failed_payment_brings_its_failure_ticket() {
    let sim = spawn_sim(behaviour(Outcome::Declined("11".into()), None)).await;
    let t = with_ticket(
        terminal("tpe-1", sim.addr(), DEADLINE),
        TicketCopy::Customer,
    );
    let last = final_record(t, pay("k-2", "tpe-1", 2500), true).await;
    assert_eq!(last["state"], "declined");
    let ticket = &last["result"]["ticket"][0];
    assert_eq!(ticket["kind"], "customer");
    assert!(ticket["text"].as_str().unwrap().contains("ABANDON DEBIT"));
}

#[tokio::test]
async fn a_terminal_refusing_ck_declines_with_af_09() {
    let sim = spawn_sim(behaviour(Outcome::Approved, Some(Fault::StrictTags))).await;
    let t = with_ticket(
        terminal("tpe-1", sim.addr(), DEADLINE),
        TicketCopy::Customer,
    );
    let last = final_record(t, pay("k-3", "tpe-1", 2500), false).await;
    assert_eq!(last["state"], "declined");
    assert_eq!(last["result"]["af"], "09");
    assert!(last["result"]["ticket"].is_null());
}

#[tokio::test]
async fn the_reference_is_sent_and_its_echo_checked() {
    let sim = spawn_sim(behaviour(Outcome::Approved, None)).await;
    let mut t = terminal("tpe-1", sim.addr(), DEADLINE);
    t.send_reference = true;
    let id = "order-2026-11-30-0001-a-very-long-transaction-id";
    let last = final_record(t, pay(id, "tpe-1", 2500), false).await;
    assert_eq!(last["state"], "approved", "{last}");
    let sent = &id[..32];
    assert!(sim.requests()[0].contains(&format!("CF032{sent}")));
}

/// A terminal that answers every connection with `answer` once the request is whole.
async fn canned(answer: String) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 512];
                while !matches!(decode(&buf), Ok(Some(m)) if m[0].get("BA").is_some()) {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream.write_all(answer.as_bytes()).await;
                while matches!(stream.read(&mut chunk).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

const ECHO: &str = "CZ0040300CA00201CB0070002500CD0010CE003978";

#[tokio::test]
async fn a_different_reference_echo_is_a_mismatch() {
    let addr = canned(format!("{ECHO}AE00210CF005other")).await;
    let mut t = terminal("tpe-1", addr, DEADLINE);
    t.send_reference = true;
    let last = final_record(t, pay("ref-1", "tpe-1", 2500), false).await;
    assert_eq!(last["state"], "unknown", "{last}");
    assert_eq!(last["result"]["reason"], "mismatch");
}

#[tokio::test]
async fn a_tag_repeated_before_the_decision_makes_the_answer_invalid() {
    let addr = canned(format!("{ECHO}CE003978AE00210")).await;
    let t = terminal("tpe-1", addr, DEADLINE);
    let last = final_record(t, pay("dup-1", "tpe-1", 2500), false).await;
    assert_eq!(last["state"], "unknown", "{last}");
    assert_eq!(last["result"]["reason"], "invalid_answer");
}

#[tokio::test]
async fn a_tag_repeated_after_the_decision_is_ignored() {
    let addr = canned(format!("{ECHO}AE00210CC00300SAC003123AC003999CC003001")).await;
    let t = terminal("tpe-1", addr, DEADLINE);
    let last = final_record(t, pay("dup-2", "tpe-1", 2500), false).await;
    assert_eq!(last["state"], "approved", "{last}");
    assert_eq!(last["result"]["authorization"], "123");
    assert_eq!(last["result"]["card"]["application"], "Carte magasin");
}

#[tokio::test]
async fn an_unknown_application_code_is_shown_as_itself() {
    let addr = canned(format!("{ECHO}AE00210CC0039ZZ")).await;
    let t = terminal("tpe-1", addr, DEADLINE);
    let last = final_record(t, pay("cc-1", "tpe-1", 2500), false).await;
    assert_eq!(last["state"], "approved", "{last}");
    assert_eq!(last["result"]["card"]["application"], "9ZZ");
}
