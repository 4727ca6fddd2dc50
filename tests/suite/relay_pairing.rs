//! Pairing over the real WebSocket: a code issued into the store (as `caisse-ap-relay pair`
//! does) is exchanged for a token once; the token then authenticates; revoking the till
//! closes its live socket; wrong codes are rate-limited.

use crate::common;

use std::net::Ipv4Addr;

use caisse_ap_relay::access::MAX_WRONG_ATTEMPTS;
use tokio::net::TcpSocket;

use caisse_ap_relay::access::Store;
use caisse_ap_relay::config::Role;
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_code_pairs_once_and_its_token_authenticates() {
    let agent = spawn_agent(Vec::new()).await;
    let code = issue_code(&agent, "counter-2", Role::Cashier);

    let (mut ws, paired) = pair(&agent, &code).await;
    assert_eq!(paired["type"], "paired");
    assert_eq!(paired["till"], "counter-2");
    let token = paired["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64, "256 bits in hex");
    // The same socket goes on with hello.
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let welcome = next_message(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["till"], "counter-2");

    // A fresh socket authenticates with the token alone.
    let (_ws, welcome) = connect_as(&agent, &token).await;
    assert_eq!(welcome["till"], "counter-2");

    // The code is single use.
    let (mut again, refused) = pair(&agent, &code).await;
    assert_eq!(refused["code"], "unauthorized");
    assert_eq!(close_code(&mut again).await, 4401);

    // Only a hash of the token is stored.
    let stored = std::fs::read_to_string(path_in(&agent, "data/tills.json")).unwrap();
    assert!(!stored.contains(&token));
    assert!(!stored.contains(&code));
}

#[tokio::test]
async fn revoking_a_till_closes_its_socket() {
    let agent = spawn_agent(Vec::new()).await;
    let code = issue_code(&agent, "counter-3", Role::Cashier);
    let (_pairing, paired) = pair(&agent, &code).await;
    let token = paired["token"].as_str().unwrap().to_owned();
    let (mut ws, _) = connect_as(&agent, &token).await;

    let store = Store::open(&path_in(&agent, "data")).unwrap();
    assert_eq!(store.revoke("counter-3").unwrap(), 1);
    assert_eq!(close_code(&mut ws).await, 4401);

    let mut refused = ws_connect(&agent, None).await.unwrap();
    send(&mut refused, json!({"type": "hello", "token": token})).await;
    assert_eq!(next_message(&mut refused).await["code"], "unauthorized");
}

#[tokio::test]
async fn wrong_codes_are_rate_limited() {
    let agent = spawn_agent(Vec::new()).await;
    for _ in 0..5 {
        let (_ws, refused) = pair(&agent, "00000000").await;
        assert_eq!(refused["code"], "unauthorized");
    }
    // Even a right code is refused once the address is over its limit.
    let code = issue_code(&agent, "counter-4", Role::Cashier);
    let (_ws, limited) = pair(&agent, &code).await;
    assert_eq!(limited["code"], "rate_limited");
}

/// `pair` with `code` over a socket from `local` (another loopback address).
async fn pair_from(agent: &TestAgent, local: Ipv4Addr, code: &str) -> serde_json::Value {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((local, 0).into()).unwrap();
    let tcp = socket.connect(agent.addr).await.unwrap();
    let mut ws = ws_over(agent, tcp, None).await.unwrap();
    send(&mut ws, json!({"type": "pair", "code": code})).await;
    next_message(&mut ws).await
}

/// Finding 4 of the penetration test: wrong codes from many addresses, each under its own
/// limit. Contract §7.5: 20 wrong attempts in all burn the pending code, so the right code
/// is refused afterwards, from a fresh address.
#[tokio::test]
async fn wrong_codes_from_many_addresses_burn_the_pending_code() {
    let agent = spawn_agent(Vec::new()).await;
    let code = issue_code(&agent, "counter-5", Role::Cashier);
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for i in 0..25u8 {
        let refused = pair_from(&agent, Ipv4Addr::new(127, 0, 5, 1 + i), wrong).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
    }
    let refused = pair_from(&agent, Ipv4Addr::new(127, 0, 6, 1), &code).await;
    assert_eq!(
        refused["code"], "unauthorized",
        "the code is burnt: {refused}"
    );
    let store = Store::open(&path_in(&agent, "data")).unwrap();
    assert!(store.read().unwrap().pending.is_empty());
    assert_eq!(MAX_WRONG_ATTEMPTS, 20);
}
