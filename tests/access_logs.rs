//! No pairing code, token or static token reaches the logs during a whole pairing flow.
//!
//! Alone in its test binary: `tracing` caches per-callsite interest process-wide, so other
//! tests running in parallel threads could hide events from this test's scoped subscriber.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use caisse_ap_relay::access::{Access, Store, Till};
use caisse_ap_relay::config::{Role, Secret, TillConfig};

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const STATIC_TOKEN: &str = "static-secret-of-till-one";

/// A `tracing` writer collecting everything into one buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_code_or_token_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let (code, token) = tracing::subscriber::with_default(subscriber, || {
        let dir = tempfile::tempdir().unwrap();
        let tills = [TillConfig {
            name: "till-1".to_owned(),
            token: Some(Secret(STATIC_TOKEN.to_owned())),
            terminals: None,
            role: Role::Cashier,
        }];
        let access = Access::new(&tills, dir.path()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let till = Till {
            name: "screen".to_owned(),
            role: Role::Display,
            terminals: None,
        };
        let code = store
            .issue_code(&till, std::time::SystemTime::now())
            .unwrap()
            .code;
        let (_, token) = access.pair(&code, PEER).unwrap();
        access.authenticate(&token, PEER).unwrap();
        access.authenticate(STATIC_TOKEN, PEER).unwrap();
        let _ = access.pair(&code, PEER);
        let _ = access.authenticate(&format!("{token}x"), PEER);
        store.revoke("screen").unwrap();
        let _ = access.authenticate(&token, PEER);
        (code, token)
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("till paired"), "the flow was logged: {logs}");
    // Three failures from one address, one line (contract §7.4: once a minute, with a count).
    assert_eq!(logs.matches("authentication failed").count(), 1, "{logs}");
    assert!(logs.contains("till pairing revoked"), "{logs}");
    assert!(!logs.contains(&code), "code leaked: {logs}");
    assert!(!logs.contains(&token), "token leaked: {logs}");
    assert!(!logs.contains(STATIC_TOKEN));
}
