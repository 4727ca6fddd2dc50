//! HTTP on the agent's TLS port: health, CA download and embedded pages.

use crate::common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use caisse_ap_relay::sim::Behaviour;
use common::*;

#[tokio::test]
async fn healthz_reports_terminals_from_the_engine() {
    let sim = spawn_sim(Behaviour::default()).await;
    let agent = spawn_agent(vec![
        terminal("tpe-1", sim.addr(), Duration::from_secs(30)),
        terminal("tpe-2", closed_port().await, Duration::from_secs(30)),
    ])
    .await;
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    send(&mut ws, pay("h-1", "tpe-2", 100)).await;
    until_state(&mut ws, "h-1", "not_sent").await;
    let (status, headers, body) = https_get(&agent, "/healthz").await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["terminals"][0]["name"], "tpe-1");
    assert_eq!(body["terminals"][0]["state"], "idle");
    assert_eq!(body["terminals"][1]["state"], "unreachable");
    assert_eq!(sim.request_count(), 0, "a health check opens no socket");
    // Contract §7.4: names and states only, no address or transaction id for anyone.
    for terminal in body["terminals"].as_array().unwrap() {
        let keys: Vec<&String> = terminal.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["name", "state"], "{terminal}");
    }
}

#[tokio::test]
async fn ca_pem_is_the_generated_ca() {
    let agent = spawn_agent(Vec::new()).await;
    let (status, headers, body) = https_get(&agent, "/ca.pem").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/x-pem-file")
    );
    assert_eq!(String::from_utf8(body).unwrap(), agent.ca_pem);
}

#[tokio::test]
async fn pages_are_embedded_uncached_and_unknown_paths_are_404() {
    let agent = spawn_agent(Vec::new()).await;
    let (status, headers, body) = https_get(&agent, "/").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    // Contract §7.4: no page of the agent can be framed (clickjacking of pay/resolve).
    assert_eq!(
        header(&headers, "content-security-policy"),
        Some("frame-ancestors 'none'")
    );
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    for path in ["/display", "/status", "/doctor"] {
        let (_, headers, _) = https_get(&agent, path).await;
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
    }
    let page = std::fs::read("static/index.html").unwrap();
    assert!(body == page, "/ serves static/index.html as embedded");
    let (status, _, _) = https_get(&agent, "/no-such-file.js").await;
    assert_eq!(status, 404);
    // Templates are served filled in (the doctor at `/doctor`), never raw with `{{…}}`.
    for template in ["/setup.html", "/profile.mobileconfig"] {
        let (status, _, body) = https_get(&agent, template).await;
        assert_eq!(
            status,
            404,
            "{template}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _, body) = https_get(&agent, "/doctor.html").await;
    let body = String::from_utf8_lossy(&body);
    assert!(status == 404 || !body.contains("{{"), "{status} {body}");
}

#[tokio::test]
async fn the_identification_probe_marks_an_idle_terminal_seen() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut options = options();
    options.engine.probe_interval = Duration::from_millis(50);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let terminals = vec![terminal("tpe-1", sim.addr(), Duration::from_secs(30))];
    let agent = spawn_agent_in(dir, terminals, options).await;
    // The second probe starts only after the first one's answer was recorded.
    tokio::time::timeout(WAIT, sim.wait_requests(2))
        .await
        .unwrap();
    assert!(
        sim.requests().iter().all(|r| r.contains("CD001I")),
        "identification only"
    );
    let terminals = terminal_states(&agent).await;
    assert_eq!(terminals[0]["state"], "idle");
    assert!(terminals[0]["last_seen"].is_string());
}

/// The terminals a cashier sees (`terminals`): states with `last_seen`, which `/healthz`
/// no longer shows.
async fn terminal_states(agent: &TestAgent) -> serde_json::Value {
    let (mut ws, _) = connect_as(agent, CASHIER).await;
    send(&mut ws, serde_json::json!({"type": "terminals"})).await;
    next_message(&mut ws).await["terminals"].take()
}

/// At start, one probe per terminal (not one period later, and with no payment): a dead
/// terminal is `unreachable` and a live one `idle` with `last_seen` within seconds.
#[tokio::test]
async fn a_probe_at_start_tells_dead_from_live_terminals_without_a_payment() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut options = options();
    options.engine.probe_at_start = true;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let terminals = vec![
        terminal("tpe-1", sim.addr(), Duration::from_secs(30)),
        terminal("tpe-2", closed_port().await, Duration::from_secs(30)),
    ];
    let agent = spawn_agent_in(dir, terminals, options).await;
    // No event tells that a probe's result was recorded: ask until it shows.
    let probed = async {
        loop {
            let terminals = terminal_states(&agent).await;
            let [live, dead] = [&terminals[0], &terminals[1]];
            if live["last_seen"].is_string() && dead["state"] == "unreachable" {
                return terminals;
            }
        }
    };
    let terminals = tokio::time::timeout(WAIT, probed)
        .await
        .expect("both terminals probed in time");
    assert_eq!(terminals[0]["state"], "idle");
    assert_eq!(sim.request_count(), 1, "one probe, the period is 60 s");
    assert!(sim.requests()[0].contains("CD001I"), "identification");
}

/// Contract §7.4: a page on an allowed origin may `import` the client from the agent; other
/// origins get no CORS header.
#[tokio::test]
async fn the_client_files_carry_cors_headers_for_allowed_origins_only() {
    let agent = spawn_agent(Vec::new()).await;
    for path in ["/client.js", "/client.d.ts"] {
        let (status, headers, body) =
            https_get_with(&agent, path, &[("Origin", ALLOWED_ORIGIN)]).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty());
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(ALLOWED_ORIGIN)
        );
        assert_eq!(header(&headers, "vary"), Some("Origin"));

        let (status, headers, _) =
            https_get_with(&agent, path, &[("Origin", "https://evil.example")]).await;
        assert_eq!(status, 200, "the file itself is public");
        assert_eq!(header(&headers, "access-control-allow-origin"), None);
        let (_, headers, _) = https_get(&agent, path).await;
        assert_eq!(header(&headers, "access-control-allow-origin"), None);
    }
    let (status, headers, _) =
        https_get_with(&agent, "/lna-probe", &[("Origin", ALLOWED_ORIGIN)]).await;
    assert_eq!(status, 204);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );
    assert_eq!(header(&headers, "vary"), Some("Origin"));
}

/// Reads one small response (head and a JSON body) off a kept-alive connection.
async fn read_response(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !response.ends_with(b"}") {
        let n = tokio::time::timeout(WAIT, tls.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before the response ended");
        response.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_within_30_seconds() {
    let agent = spawn_agent(vec![]).await;
    let mut tls = tls_connect(&agent).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
        agent.addr.port()
    );
    for _ in 0..2 {
        tls.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut tls).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "an idle keep-alive connection still open after 30 s"
    );
    assert!(rest.is_empty(), "nothing more was sent: {rest:?}");
}
