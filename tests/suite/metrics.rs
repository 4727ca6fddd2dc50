//! `/metrics` of a real agent over TLS after real transactions on simulated terminals:
//! names, labels and counts of every final state, the duration and journal histograms,
//! open sessions by role and an unreachable terminal's `relay_terminal_up`.

use crate::common;

use std::time::Duration;

use caisse_ap_relay::sim::{Behaviour, Fault, Outcome};
use common::*;

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> f64 {
    let found = text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
    let value = found.unwrap_or_else(|| panic!("no sample {series} in:\n{text}"));
    value.parse().unwrap()
}

/// The series of `relay_transactions_total` for one terminal and state.
fn transactions(terminal: &str, state: &str) -> String {
    format!(r#"relay_transactions_total{{terminal="{terminal}",state="{state}"}}"#)
}

#[tokio::test]
async fn metrics_count_real_transactions_sessions_and_terminal_health() {
    let approving = spawn_sim(Behaviour::default()).await;
    let declining = spawn_sim(Behaviour {
        outcome: Outcome::Declined("05".into()),
        ..Behaviour::default()
    })
    .await;
    let closing = spawn_sim(Behaviour::with_fault(Fault::Close)).await;
    let nowhere = closed_port().await;
    let timeout = Duration::from_secs(30);
    let agent = spawn_agent(vec![
        terminal("tpe-ok", approving.addr(), timeout),
        terminal("tpe-no", declining.addr(), timeout),
        terminal("tpe-off", nowhere, timeout),
        terminal("tpe-lost", closing.addr(), timeout),
    ])
    .await;
    let (mut cashier, _) = connect_as(&agent, CASHIER).await;
    let (_display, _) = connect_as(&agent, DISPLAY).await;

    let payments = [
        ("m-1", "tpe-ok", "approved"),
        ("m-2", "tpe-ok", "approved"),
        ("m-3", "tpe-no", "declined"),
        ("m-4", "tpe-off", "not_sent"),
        ("m-5", "tpe-lost", "unknown"),
    ];
    for (id, terminal, state) in payments {
        send(&mut cashier, pay(id, terminal, 1000)).await;
        let seen = until_final(&mut cashier, id).await;
        assert_eq!(seen.last().unwrap()["state"], state);
    }

    let (status, headers, body) = https_get(&agent, "/metrics").await;
    assert_eq!(status, 200);
    let kind = headers.iter().find(|(name, _)| name == "content-type");
    assert!(kind.unwrap().1.starts_with("application/openmetrics-text"));
    let text = String::from_utf8(body).unwrap();

    let count = |terminal, state| sample(&text, &transactions(terminal, state));
    assert_eq!(count("tpe-ok", "approved"), 2.0);
    assert_eq!(count("tpe-ok", "declined"), 0.0);
    assert_eq!(count("tpe-no", "declined"), 1.0);
    assert_eq!(count("tpe-off", "not_sent"), 1.0);
    assert_eq!(count("tpe-lost", "unknown"), 1.0);
    assert_eq!(count("tpe-lost", "approved"), 0.0);

    let timed = |terminal| {
        let series =
            format!(r#"relay_transaction_duration_seconds_count{{terminal="{terminal}"}}"#);
        sample(&text, &series)
    };
    assert_eq!(timed("tpe-ok"), 2.0);
    for terminal in ["tpe-no", "tpe-off", "tpe-lost"] {
        assert_eq!(timed(terminal), 1.0, "{terminal}");
    }
    let under_300s = r#"relay_transaction_duration_seconds_bucket{le="300.0",terminal="tpe-ok"}"#;
    assert_eq!(sample(&text, under_300s), 2.0);

    assert_eq!(
        sample(&text, r#"relay_terminal_up{terminal="tpe-off"}"#),
        0.0
    );
    assert_eq!(
        sample(&text, r#"relay_terminal_up{terminal="tpe-ok"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"relay_terminal_up{terminal="tpe-lost"}"#),
        1.0
    );

    assert_eq!(sample(&text, r#"relay_ws_clients{role="cashier"}"#), 1.0);
    assert_eq!(sample(&text, r#"relay_ws_clients{role="display"}"#), 1.0);

    // Payments ran one after the other, so each of their journaled states (at least
    // accepted and final) had a sync of its own.
    let syncs = sample(&text, "relay_journal_fsync_seconds_count");
    assert!(syncs >= 10.0, "{syncs} syncs");
    let all = sample(&text, r#"relay_journal_fsync_seconds_bucket{le="+Inf"}"#);
    assert_eq!(all, syncs);
    agent.stop().await;
}

/// Contract §7.4: `[server] metrics_from` restricts `/metrics`; loopback is in the default.
#[tokio::test]
async fn metrics_answer_only_the_configured_ranges() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = config(dir.path(), Vec::new());
    config.server.metrics_from = vec!["10.0.0.0/8".parse().unwrap()];
    let agent = spawn_agent_with(dir, &config, options()).await;
    let (status, _, _) = https_get(&agent, "/metrics").await;
    assert_eq!(status, 403, "127.0.0.1 is not in 10.0.0.0/8");
    let (status, _, _) = https_get(&agent, "/healthz").await;
    assert_eq!(status, 200, "health stays public");
    let open = spawn_agent(Vec::new()).await;
    let (status, _, _) = https_get(&open, "/metrics").await;
    assert_eq!(status, 200, "loopback is in the default ranges");
}
