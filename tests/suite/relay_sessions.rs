//! WebSocket sessions through the real agent: authentication, origins, roles, watching,
//! disconnection and delivery after reconnect, malformed input and frame limits.

use crate::common;

use std::time::Duration;

use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const DEADLINE: Duration = Duration::from_secs(30);

fn hang() -> Behaviour {
    Behaviour {
        outcome: Outcome::Approved,
        fault: Some(Fault::Hang),
        delay: Duration::ZERO,
        magic_amounts: false,
    }
}

async fn approving_agent() -> (caisse_ap_relay::sim::Simulator, TestAgent) {
    let sim = spawn_sim(Behaviour::default()).await;
    let terminals = vec![
        terminal("tpe-1", sim.addr(), DEADLINE),
        terminal("tpe-2", sim.addr(), DEADLINE),
    ];
    (sim, spawn_agent(terminals).await)
}

#[tokio::test]
async fn welcome_names_agent_api_till_role_and_terminals() {
    let (_sim, agent) = approving_agent().await;
    let (_ws, welcome) = connect_as(&agent, CASHIER).await;
    assert!(welcome["agent"]
        .as_str()
        .unwrap()
        .starts_with("caisse-ap-relay/"));
    assert_eq!(welcome["api"], 2);
    assert_eq!(welcome["till"], "till-1");
    assert_eq!(welcome["role"], "cashier");
    let terminals = welcome["terminals"].as_array().unwrap();
    assert_eq!(terminals.len(), 2);
    assert_eq!(terminals[0]["name"], "tpe-1");
    assert_eq!(terminals[0]["state"], "idle");
    assert!(terminals[0]["current"].is_null());
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403_and_own_and_listed_ones_work() {
    let (_sim, agent) = approving_agent().await;
    match ws_connect(&agent, Some("https://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let own = format!("https://localhost:{}", agent.addr.port());
    assert!(ws_connect(&agent, Some(&own)).await.is_ok());
    assert!(ws_connect(&agent, Some(ALLOWED_ORIGIN)).await.is_ok());
    assert!(ws_connect(&agent, None).await.is_ok());
}

#[tokio::test]
async fn a_bad_token_gets_an_error_and_close_4401() {
    let (_sim, agent) = approving_agent().await;
    let mut ws = ws_connect(&agent, None).await.unwrap();
    send(
        &mut ws,
        json!({"type": "hello", "token": "wrong-token-0000000000"}),
    )
    .await;
    let error = next_message(&mut ws).await;
    assert_eq!(error["code"], "unauthorized");
    assert_eq!(close_code(&mut ws).await, 4401);
}

#[tokio::test]
async fn no_hello_in_time_closes_with_4401() {
    let (_sim, agent) = approving_agent().await;
    let mut ws = ws_connect(&agent, None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4401);
}

#[tokio::test]
async fn each_malformed_message_gets_an_error_and_the_socket_stays_usable() {
    let (_sim, agent) = approving_agent().await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let frames = [
        "{not json",
        "[1,2]",
        r#"{"id":"x"}"#,
        r#"{"type":"dance"}"#,
        r#"{"type":"get"}"#,
        r#"{"type":"resolve","id":"x","outcome":"maybe"}"#,
        r#"{"type":"pay","id":"p","terminal":"tpe-1","currency":"EUR"}"#,
    ];
    for frame in frames {
        ws.send(Message::text(frame)).await.unwrap();
        let error = next_message(&mut ws).await;
        assert_eq!(error["type"], "error", "{frame}");
        assert_eq!(error["code"], "bad_request", "{frame}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next_message(&mut ws).await["code"], "bad_request");
    send(&mut ws, json!({"type": "terminals"})).await;
    let terminals = next_message(&mut ws).await;
    assert_eq!(terminals["type"], "terminals");
    assert_eq!(terminals["terminals"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_socket() {
    let (_sim, agent) = approving_agent().await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let big = format!(r#"{{"type":"get","id":"{}"}}"#, "x".repeat(70 * 1024));
    ws.send(Message::text(big)).await.unwrap();
    match next_frame(&mut ws).await {
        Some(Ok(Message::Close(frame))) => {
            assert_eq!(frame.map(|f| u16::from(f.code)), Some(1009));
        }
        Some(Ok(other)) => panic!("expected the socket to close, got {other:?}"),
        None | Some(Err(_)) => {}
    }
}

#[tokio::test]
async fn a_display_may_not_pay_cancel_or_resolve() {
    let (sim, agent) = approving_agent().await;
    let (mut ws, welcome) = connect_as(&agent, DISPLAY).await;
    assert_eq!(welcome["role"], "display");
    send(&mut ws, pay("d-1", "tpe-1", 100)).await;
    let error = next_message(&mut ws).await;
    assert_eq!(
        (error["code"].as_str(), error["id"].as_str()),
        (Some("forbidden"), Some("d-1"))
    );
    send(&mut ws, json!({"type": "cancel", "id": "d-1"})).await;
    assert_eq!(next_message(&mut ws).await["code"], "forbidden");
    send(
        &mut ws,
        json!({"type": "resolve", "id": "d-1", "outcome": "approved"}),
    )
    .await;
    assert_eq!(next_message(&mut ws).await["code"], "forbidden");
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn a_till_may_only_use_its_terminals() {
    let (sim, agent) = approving_agent().await;
    let (mut ws, welcome) = connect_as(&agent, RESTRICTED).await;
    let names: Vec<_> = welcome["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("tpe-2")]);
    send(&mut ws, pay("r-1", "tpe-1", 100)).await;
    assert_eq!(next_message(&mut ws).await["code"], "forbidden");
    send(&mut ws, json!({"type": "watch", "terminal": "tpe-1"})).await;
    assert_eq!(next_message(&mut ws).await["code"], "forbidden");
    send(&mut ws, pay("r-2", "tpe-2", 100)).await;
    assert_eq!(
        until_final(&mut ws, "r-2").await.pop().unwrap()["state"],
        "approved"
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_display_watching_a_terminal_sees_the_cashiers_transaction_live() {
    let (_sim, agent) = approving_agent().await;
    let (mut screen, _) = connect_as(&agent, DISPLAY).await;
    send(&mut screen, json!({"type": "watch", "terminal": "tpe-1"})).await;
    // `terminals` is answered after `watch` took effect: a barrier without sleeping.
    send(&mut screen, json!({"type": "terminals"})).await;
    assert_eq!(next_message(&mut screen).await["type"], "terminals");
    let (mut till, _) = connect_as(&agent, CASHIER).await;
    send(&mut till, pay("w-1", "tpe-1", 4200)).await;
    let cashier_view = until_final(&mut till, "w-1").await;
    let screen_view = until_final(&mut screen, "w-1").await;
    // The same records, redacted (§7.3): no card data and no receipt on a display.
    let redacted: Vec<_> = cashier_view
        .into_iter()
        .map(|mut record| {
            record.as_object_mut().unwrap().remove("receipt");
            if let Some(result) = record.get_mut("result").and_then(Value::as_object_mut) {
                for field in ["card", "authorization", "raw", "ticket"] {
                    result.remove(field);
                }
            }
            record
        })
        .collect();
    assert_eq!(screen_view, redacted);
    send(&mut screen, json!({"type": "get", "id": "w-1"})).await;
    assert_eq!(next_message(&mut screen).await["state"], "approved");
}

#[tokio::test]
async fn a_result_reached_while_disconnected_comes_by_get_and_after_the_next_welcome() {
    let sim = spawn_sim(hang()).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), Duration::from_secs(1))]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("gone", "tpe-1", 700)).await;
    until_state(&mut ws, "gone", "waiting_card").await;
    drop(ws);
    // The transaction goes on without its till and times out into `unknown`.
    let (mut watcher, _) = connect_as(&agent, DISPLAY).await;
    send(&mut watcher, json!({"type": "watch", "terminal": "tpe-1"})).await;
    until_state(&mut watcher, "gone", "unknown").await;

    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let replayed = next_message(&mut ws).await;
    assert_eq!(
        (replayed["id"].as_str(), replayed["state"].as_str()),
        (Some("gone"), Some("unknown"))
    );
    assert_eq!(replayed["replay"], true, "a replay says so (§7.1)");
    send(&mut ws, json!({"type": "get", "id": "gone"})).await;
    let mut current = next_message(&mut ws).await;
    assert!(current.get("replay").is_none(), "{current}");
    current["replay"] = json!(true);
    assert_eq!(current, replayed);
    let (mut other, _) = connect_as(&agent, RESTRICTED).await;
    send(&mut other, json!({"type": "get", "id": "gone"})).await;
    assert_eq!(next_message(&mut other).await["code"], "not_found");
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn resolve_is_journaled_on_unknown_records_only() {
    let sim = spawn_sim(hang()).await;
    let agent = spawn_agent(vec![terminal("tpe-1", sim.addr(), Duration::from_secs(1))]).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("u-1", "tpe-1", 700)).await;
    until_state(&mut ws, "u-1", "unknown").await;
    send(
        &mut ws,
        json!({"type": "resolve", "id": "u-1", "outcome": "not_charged", "note": "ticket says no"}),
    )
    .await;
    let resolved = next_message(&mut ws).await;
    assert_eq!(resolved["state"], "unknown");
    assert_eq!(resolved["resolution"]["outcome"], "not_charged");
    assert_eq!(resolved["resolution"]["till"], "till-1");
    assert_eq!(resolved["resolution"]["note"], "ticket says no");
    sim.set_behaviour(Behaviour::default());
    send(&mut ws, pay("a-1", "tpe-1", 700)).await;
    until_state(&mut ws, "a-1", "approved").await;
    send(
        &mut ws,
        json!({"type": "resolve", "id": "a-1", "outcome": "approved"}),
    )
    .await;
    assert_eq!(next_message(&mut ws).await["code"], "bad_request");
}

#[tokio::test]
async fn status_lists_terminals_transactions_tills_and_certificate() {
    let (_sim, agent) = approving_agent().await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("s-1", "tpe-1", 100)).await;
    until_final(&mut ws, "s-1").await;
    let (mut office, _) = connect_as(&agent, OPERATOR).await;
    send(&mut office, json!({"type": "status"})).await;
    let status = next_message(&mut office).await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["terminals"].as_array().unwrap().len(), 2);
    assert_eq!(status["transactions"][0]["id"], "s-1");
    let tills = status["tills"].as_array().unwrap();
    let me = tills.iter().find(|t| t["name"] == "till-1").unwrap();
    assert_eq!(me["sessions"], 1);
    let office = tills.iter().find(|t| t["name"] == "office").unwrap();
    assert_eq!(
        (&office["role"], &office["sessions"]),
        (&json!("operator"), &json!(1))
    );
    assert!(status["certificate"]["not_after"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        status["certificate"]["fingerprint"].as_str().unwrap().len(),
        95
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_with_4408() {
    let mut options = options();
    options.web.idle_timeout = Duration::from_millis(300);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let agent = spawn_agent_in(dir, Vec::new(), options).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    assert_eq!(close_code(&mut ws).await, 4408);
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_and_lets_the_payment_finish() {
    let sim = spawn_sim(Behaviour {
        delay: Duration::from_millis(300),
        ..Behaviour::default()
    })
    .await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let terminals = vec![terminal("tpe-1", sim.addr(), DEADLINE)];
    let agent = spawn_agent_in(dir.clone(), terminals.clone(), options()).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("end", "tpe-1", 100)).await;
    until_state(&mut ws, "end", "waiting_card").await;
    let stopping = tokio::spawn(agent.stop());
    assert_eq!(close_code(&mut ws).await, 1001);
    stopping.await.unwrap();

    let agent = spawn_agent_in(dir, terminals, options()).await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let record = next_message(&mut ws).await;
    assert_eq!(
        (record["id"].as_str(), record["state"].as_str()),
        (Some("end"), Some("approved"))
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close() {
    let (_sim, agent) = approving_agent().await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    ws.close(None).await.unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        Some(Ok(Message::Close(_)))
    ));
}
