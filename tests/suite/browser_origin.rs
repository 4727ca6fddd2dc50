//! A POS page on a second origin, as a cloud POS vendor writes it: `docs/examples/pay-button.html`
//! served over plain HTTP by a small static server on another loopback port, listed in the
//! agent's `allowed_origins`. In headless Chromium trusting the agent's CA (no certificate
//! flag), it imports `client.js` straight from the agent (CORS, contract §7.4), pairs with a
//! one-time code, pays and shows `approved`, then posts the signed receipt to its own origin.

use crate::browser_support;
use crate::common;

use std::sync::{Arc, Mutex};

use browser_support::{available, Browser};
use caisse_ap_relay::config::Role;
use caisse_ap_relay::sim::Behaviour;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = include_str!("../../docs/examples/pay-button.html");

/// Serves the page at `/pay-button.html` and keeps the bodies POSTed to `/payments`.
async fn pos_site(listener: TcpListener, posted: Arc<Mutex<Vec<String>>>) {
    while let Ok((mut tcp, _)) = listener.accept().await {
        let posted = Arc::clone(&posted);
        tokio::spawn(async move {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body_start) = loop {
                let Ok(n) = tcp.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&raw[..end]).to_string(), end + 4);
                }
            };
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while raw.len() < body_start + length {
                let Ok(n) = tcp.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            let answer = if head.starts_with("GET /pay-button.html") {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                )
            } else if head.starts_with("POST /payments") {
                let body = &raw[body_start..body_start + length];
                posted
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(body).to_string());
                "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_owned()
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = tcp.write_all(answer.as_bytes()).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_imports_the_client_from_the_agent_pairs_and_pays() {
    if !available("a_page_on_another_origin_imports_the_client_from_the_agent_pairs_and_pays") {
        return;
    }
    let sim = spawn_sim(Behaviour::default()).await;
    let site = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", site.local_addr().unwrap().port());
    let posted = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(pos_site(site, Arc::clone(&posted)));

    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = config(dir.path(), vec![terminal("tpe-1", sim.addr(), WAIT)]);
    config.server.allowed_origins.push(origin.clone());
    let agent = spawn_agent_with(Arc::clone(&dir), &config, options()).await;
    let browser = Browser::launch(Some(&path_in(&agent, "certs/ca.pem"))).await;

    let page = browser.page().await;
    let agent_url = format!("https://localhost:{}", agent.addr.port());
    page.goto(&format!(
        "{origin}/pay-button.html?agent={agent_url}&terminal=tpe-1"
    ))
    .await;
    page.wait_for(
        "!document.querySelector('#pairing').hidden",
        "the pairing form",
    )
    .await;
    let code = issue_code(&agent, "web-pos", Role::Cashier);
    page.type_into("#code", &code).await;
    page.click("#pairing button").await;
    page.click("#pay").await;
    page.wait_state("#result", "approved").await;
    assert_eq!(page.text("#result").await, "Payé");
    page.screenshots("second-origin-paid").await;

    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let body: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
    assert!(
        body["receipt"]
            .as_str()
            .is_some_and(|r| r.split('.').count() == 3),
        "{body}"
    );
    assert_eq!(sim.request_count(), 1);
}
